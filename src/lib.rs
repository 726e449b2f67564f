//! A lock-free object pool with reset-on-return hooks.
//!
//! # Motivation
//!
//! Servers allocate the same things over and over: a read buffer per connection, a
//! write buffer per response, a header map per request. The usual first pool is a
//! `Mutex<Vec<T>>`:
//!
//! ```
//! use std::sync::Mutex;
//!
//! struct NaivePool(Mutex<Vec<Vec<u8>>>);
//!
//! impl NaivePool {
//!     fn get(&self) -> Vec<u8> {
//!         self.0.lock().unwrap().pop().unwrap_or_else(|| Vec::with_capacity(4096))
//!     }
//!     fn put(&self, mut buf: Vec<u8>) {
//!         buf.clear(); // forget this and the next user reads the last one's bytes
//!         self.0.lock().unwrap().push(buf); // grows without bound
//!     }
//! }
//! # let p = NaivePool(Mutex::new(Vec::new())); let b = p.get(); p.put(b);
//! ```
//!
//! It has four problems: every get and put takes a lock that all threads contend
//! for; nothing resets the object unless every caller remembers to; nothing bounds how
//! many idle objects (or how large) it keeps; and a caller that forgets `put` leaks
//! the object out of the pool.
//!
//! [`Pool`] fixes all four: a per-thread cache makes the common get/put pair touch no
//! shared memory, a bounded lock-free queue balances threads, a [`Recycle`] hook runs on
//! every return (and may refuse a dirty object), and a guard returns the object when it
//! goes out of scope.
//!
//! ```
//! use recycle_pool::Pool;
//!
//! let pool = Pool::builder(|| Vec::<u8>::with_capacity(4096))
//!     .max_capacity(64 * 1024) // a buffer that grew past 64 KiB is not kept
//!     .build();
//!
//! std::thread::scope(|s| {
//!     for _ in 0..2 {
//!         s.spawn(|| {
//!             for i in 0..100u8 {
//!                 let mut buf = pool.get();
//!                 assert!(buf.is_empty(), "the hook cleared it");
//!                 buf.push(i);
//!             } // returned here
//!         });
//!     }
//! });
//! let stats = pool.stats();
//! assert_eq!(stats.hits + stats.misses, 200);
//! assert!(stats.misses <= 4, "objects were reused, not created each time");
//! ```
//!
//! # Contents
//!
//! - [`Pool`], [`Builder`]: the pool and its bounds.
//! - [`Pooled`], [`OwnedPooled`]: guards that return the object on drop.
//! - [`Recycle`], [`Reuse`]: the reset-on-return hook, implemented for `Vec`, `String`,
//!   `VecDeque`, `HashMap`, `HashSet` and `bytes::BytesMut`.
//! - [`Stats`]: what the pool did (hits, misses, returns, idle, discards by cause);
//!   `Serialize`/`Deserialize` with the `serde` feature.
//! - [`io`]: pooled read and write buffers whose hooks drain input and refuse dirty
//!   writers, blocking `Read`/`Write` adapters over them, and the [`io::BufferPool`]
//!   hook with [`io::copy`]. With the `tokio` feature, `io::tokio` adds
//!   `AsyncRead + AsyncBufRead` and `AsyncWrite` adapters over the same buffers (see
//!   [below](#async-io-with-tokio)).
//! - [`sized`]: [`SizedPool`], byte buffers in power-of-two size classes that
//!   calibrate a default size and a ceiling from the sizes asked for (see
//!   [below](#buffers-of-every-size)).
//! - Pooled `Bytes`: [`OwnedPooled::freeze`] and
//!   [`OwnedSizedBuf::freeze`](sized::OwnedSizedBuf::freeze) turn a pooled buffer into
//!   a `bytes::Bytes` that goes home when its last view drops (see
//!   [below](#pooled-bytes)).
//! - [`status`]: a lock-free, bounded cache of HTTP status lines
//!   ([`status::StatusLines`]);
//! - [`date`]: the per-second `Date` header ([`date::DateCache`], also at
//!   `status::DateCache`).
//!
//! # Buffers of every size
//!
//! A [`SizedPool`] keeps `Vec<u8>` buffers in classes of 64 B, 128 B, … 4 MiB, each a
//! bounded [`Pool`]: [`get(n)`](SizedPool::get) hands out the smallest class that fits,
//! a buffer comes back to the class its capacity fits, and nothing above the largest
//! class is kept. From the sizes requested it learns a default size and a ceiling
//! above which returned buffers are dropped, so a burst of huge requests does not pin
//! its memory (details in [`sized`]).
//!
//! ```
//! use recycle_pool::SizedPool;
//!
//! let pool = SizedPool::new();
//! let mut buf = pool.get(1500); // from the 2 KiB class
//! buf.extend_from_slice(b"a body");
//! drop(buf); // cleared, back in its class
//! assert_eq!(pool.stats().idle_bytes_in(1500), 2048);
//! ```
//!
//! # Pooled `Bytes`
//!
//! An owned guard of bytes ([`OwnedPooled`] of a `Vec<u8>` and the like, or a
//! [`sized::OwnedSizedBuf`]) freezes into a `bytes::Bytes` without copying
//! (`Bytes::from_owner`): clones and slices share the buffer, and when the last of
//! them drops the buffer goes back to its pool, its hook running on that thread. Each
//! freeze allocates `Bytes`' shared header (40 bytes), never the buffer.
//!
//! ```
//! use std::sync::Arc;
//! use recycle_pool::Pool;
//!
//! let pool = Arc::new(Pool::new(|| Vec::<u8>::with_capacity(4096)));
//! let mut buf = pool.get_owned();
//! buf.extend_from_slice(b"hello, world");
//! let bytes: bytes::Bytes = buf.freeze(); // no copy
//! let hello = bytes.slice(..5);
//! drop(bytes);
//! assert_eq!(pool.stats().idle, 0); // `hello` still holds the buffer
//! drop(hello); // the last view: the buffer is home
//! assert_eq!(pool.stats().idle, 1);
//! ```
//!
//! A pooled `bytes::BytesMut` works differently: the handle stays in its guard.
//! `split().freeze()` hands out a `Bytes` over part of its storage, and the storage
//! comes home through the **handle's `reserve`**, which reclaims it once every frozen
//! part has dropped; freezing the handle itself (`BytesMut::freeze`) would give the
//! storage away for good, so it is not how a pooled `BytesMut` returns.
//!
//! ```
//! use recycle_pool::Pool;
//!
//! let pool = Pool::new(|| bytes::BytesMut::with_capacity(4096));
//! let mut buf = pool.get();
//! let at = buf.as_ptr();
//! buf.extend_from_slice(b"a frame");
//! let frame: bytes::Bytes = buf.split().freeze(); // shares the storage
//! drop(frame);
//! buf.reserve(4096); // the frame is gone: the storage is reclaimed, not reallocated
//! assert_eq!(buf.as_ptr(), at);
//! drop(buf); // back in the pool, cleared
//! assert_eq!(pool.stats().idle, 1);
//! ```
//!
//! # Async I/O with tokio
//!
//! With the `tokio` feature (off by default: the default build gains no dependency),
//! `recycle_pool::io::tokio` has `AsyncPooledReader` (`AsyncRead + AsyncBufRead`) and
//! `AsyncPooledWriter` (`AsyncWrite`) over pooled [`io::ReadBuf`] and [`io::WriteBuf`]
//! buffers, with the blocking adapters' promises: the read buffer is drained when it
//! goes home, a writer with unflushed bytes or a write error is refused by its pool (so
//! a task cancelled mid-write never hands its bytes on), and `poll_shutdown` flushes
//! first. `examples/tokio_echo.rs` serves TCP echo on the multi-thread runtime with
//! them:
//!
//! ```toml
//! recycle-pool = { version = "0.1", features = ["tokio"] }
//! ```
//!
//! This crate's `ReadBuf` and `tokio::io::ReadBuf` share a name: import one of them
//! under another (`use tokio::io::ReadBuf as TokioReadBuf;`).
//!
//! # Concurrency checking
//!
//! Every concurrent protocol in this crate goes through one facade (`src/sync.rs`) so
//! that `tests/loom.rs` can model-check it under `RUSTFLAGS="--cfg loom"`.
#![warn(missing_docs, unsafe_op_in_unsafe_fn, unreachable_pub)]
#![warn(clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]

pub mod date;
mod frozen;
pub mod io;
mod local;
pub mod pool;
mod recycle;
mod shared;
pub mod sized;
mod stats;
pub mod status;
mod sync;

pub use io::BufferPool;
pub use pool::{Builder, OwnedPooled, Pool, Pooled};
pub use recycle::{Recycle, Reuse};
pub use sized::SizedPool;
pub use stats::Stats;
pub use status::{StatusLines, Version};

/// Hooks for `tests/loom.rs` only: not part of the API.
#[cfg(loom)]
#[doc(hidden)]
pub mod __loom {
    use crate::local::Counter;
    use loom::sync::Arc;

    /// Bumps one single-writer counter from two threads: a violation of its protocol
    /// that loom must report as a lost update (it proves the facade routes through
    /// loom: with std atomics, no interleaving would ever be explored).
    pub fn single_writer_counter_bumped_by_two_threads() -> u64 {
        let counter = Arc::new(Counter::default());
        let other = Arc::clone(&counter);
        let handle = loom::thread::spawn(move || other.bump());
        counter.bump();
        handle.join().unwrap();
        counter.get()
    }

    /// The shared tier's bound (`src/shared.rs`) under a race: a tier of one place
    /// holding one object; one thread pops it and pushes it back, two others push.
    /// Checks that the tier never holds more than one object and that its count
    /// matches what it holds once all are done, then returns the objects it ended
    /// with. With `weak`, the reservation is a check then an add, which the bound
    /// does not survive.
    /// `blocks`: the queue under the bound is the `SegQueue` of large tiers (else the
    /// `ArrayQueue` of small ones).
    pub fn shared_tier_race(weak: bool, blocks: bool) -> usize {
        use crate::shared::Shared;
        #[allow(unused_mut)]
        let mut tier = if blocks {
            Shared::new_blocks(1)
        } else {
            Shared::new(1)
        };
        tier.weak = weak;
        tier.push(0u32).unwrap();
        let tier = Arc::new(tier);
        let popper = {
            let tier = Arc::clone(&tier);
            loom::thread::spawn(move || {
                if let Some(value) = tier.pop() {
                    let _ = tier.push(value);
                }
            })
        };
        let pusher = {
            let tier = Arc::clone(&tier);
            loom::thread::spawn(move || tier.push(1).is_ok())
        };
        let mine = tier.push(2).is_ok();
        popper.join().unwrap();
        let theirs = pusher.join().unwrap();
        let held = tier.items_len();
        assert!(held <= 1, "over the bound: {held} objects in one place");
        assert_eq!(tier.len(), held, "the count follows what is held");
        // The object popped went back or was refused; at most one push got in.
        assert!(usize::from(mine) + usize::from(theirs) <= 1);
        held
    }
}

/// The auto-trait promises, pinned down by doctests.
///
/// A pool of `!Send` objects cannot be built (`Pool<T>` needs `T: Send`), so no guard
/// can hold one:
///
/// ```compile_fail,E0277
/// let pool = recycle_pool::Pool::builder_with(|| std::rc::Rc::new(()), |_| recycle_pool::Reuse::Keep);
/// ```
///
/// A guard is `Send` whenever its object is (it may be dropped on another thread, and
/// the pool is `Sync`), and its `Send` twin compiles:
///
/// ```
/// fn assert_send<T: Send>(_: T) {}
/// let pool = recycle_pool::Pool::builder_with(|| std::cell::Cell::new(0u8), |_| recycle_pool::Reuse::Keep).build();
/// assert_send(pool.get());
/// assert_send(&pool);
/// let pool = std::sync::Arc::new(pool);
/// assert_send(pool.get_owned());
/// ```
///
/// but a guard is `Sync` only if its object is: a guard of a `Cell` cannot be shared
/// between threads (a `&` to it would let two threads set the `Cell` at once):
///
/// ```compile_fail,E0277
/// fn assert_sync<T: Sync>(_: T) {}
/// let pool = recycle_pool::Pool::builder_with(|| std::cell::Cell::new(0u8), |_| recycle_pool::Reuse::Keep).build();
/// assert_sync(pool.get());
/// ```
///
/// ```compile_fail,E0277
/// fn assert_sync<T: Sync>(_: T) {}
/// let pool = std::sync::Arc::new(recycle_pool::Pool::builder_with(|| std::cell::Cell::new(0u8), |_| recycle_pool::Reuse::Keep).build());
/// assert_sync(pool.get_owned());
/// ```
///
/// `Pool` is `UnwindSafe` and `RefUnwindSafe` for an unwind-safe `T`, so it works
/// inside `catch_unwind`, and a guard dropped by the unwinding goes back through the
/// hook:
///
/// ```
/// use std::panic::{RefUnwindSafe, UnwindSafe, catch_unwind};
/// use std::sync::Arc;
/// use recycle_pool::{OwnedPooled, Pool, Pooled};
///
/// fn assert_unwind_safe<T: UnwindSafe + RefUnwindSafe>() {}
/// assert_unwind_safe::<Pool<Vec<u8>>>();
/// assert_unwind_safe::<Pooled<'static, Vec<u8>>>();
/// assert_unwind_safe::<OwnedPooled<Vec<u8>>>();
///
/// let pool = Pool::new(Vec::<u8>::new);
/// let result = catch_unwind(|| {
///     let mut buf = pool.get();
///     buf.push(1);
///     panic!("half-way through");
/// });
/// assert!(result.is_err());
/// assert!(pool.get().is_empty()); // reset by the hook on the way back
/// assert_eq!(pool.stats().in_use(), 0);
///
/// let owned = Arc::new(Pool::new(String::new));
/// let guard = owned.get_owned();
/// catch_unwind(move || drop(guard)).unwrap();
/// ```
///
/// but not for an object that is not unwind safe (a `&mut`):
///
/// ```compile_fail,E0277
/// fn assert_unwind_safe<T: std::panic::UnwindSafe>() {}
/// assert_unwind_safe::<recycle_pool::Pool<&'static mut Vec<u8>>>();
/// ```
///
/// ```compile_fail,E0277
/// fn assert_ref_unwind_safe<T: std::panic::RefUnwindSafe>() {}
/// assert_ref_unwind_safe::<recycle_pool::Pool<&'static mut Vec<u8>>>();
/// ```
///
/// The `T: Send` bounds sit on the impls, not on the types (as std's do), so a type
/// generic over `T` can hold a pool, a builder or a guard without repeating them:
///
/// ```
/// use recycle_pool::{Builder, OwnedPooled, Pool, Pooled, Recycle};
///
/// struct Cache<T> {
///     pool: Pool<T>,
/// }
/// struct Pending<T> {
///     builder: Option<Builder<T>>,
///     owned: Vec<OwnedPooled<T>>,
/// }
/// struct Borrowed<'a, T> {
///     guard: Pooled<'a, T>,
/// }
///
/// impl<T: Recycle + Send + Default + 'static> Cache<T> {
///     fn new() -> Self {
///         Cache { pool: Pool::new(T::default) }
///     }
/// }
/// let cache = Cache::<String>::new();
/// let _b = Borrowed { guard: cache.pool.get() };
/// let _p = Pending::<String> { builder: None, owned: Vec::new() };
/// ```
///
/// A type without `Recycle` cannot go into `Pool::new` (the error points to
/// `Pool::builder_with`):
///
/// ```compile_fail,E0277
/// struct Connection;
/// let pool = recycle_pool::Pool::new(|| Connection);
/// ```
///
/// and with `builder_with` it can:
///
/// ```
/// struct Connection;
/// let pool = recycle_pool::Pool::builder_with(|| Connection, |_| recycle_pool::Reuse::Keep).build();
/// # drop(pool.get());
/// ```
///
/// A borrowed guard cannot outlive its pool:
///
/// ```compile_fail
/// let guard = {
///     let pool = recycle_pool::Pool::new(Vec::<u8>::new);
///     pool.get()
/// };
/// ```
///
/// and an owned one can:
///
/// ```
/// let guard = {
///     let pool = std::sync::Arc::new(recycle_pool::Pool::new(Vec::<u8>::new));
///     pool.get_owned()
/// };
/// assert!(guard.is_empty());
/// ```
#[cfg(doctest)]
mod compile_fail_tests {}

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod readme_doctests {}
