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
//! - [`Stats`]: what the pool did (hits, misses, returns, discards, idle).
//! - [`io`]: pooled read and write buffers whose hooks drain input and refuse dirty
//!   writers, blocking `Read`/`Write` adapters over them, and the [`io::BufferPool`]
//!   hook with [`io::copy`].
//! - [`status`]: a lock-free, bounded cache of HTTP status lines
//!   ([`status::StatusLines`]);
//! - [`date`]: the per-second `Date` header ([`date::DateCache`], also at
//!   `status::DateCache`).
//!
//! # Concurrency checking
//!
//! Every concurrent protocol in this crate goes through one facade (`src/sync.rs`) so
//! that `tests/loom.rs` can model-check it under `RUSTFLAGS="--cfg loom"`.
#![warn(missing_docs, unsafe_op_in_unsafe_fn, unreachable_pub)]
#![warn(clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]

pub mod date;
pub mod io;
mod local;
pub mod pool;
mod recycle;
mod stats;
pub mod status;
mod sync;

pub use io::BufferPool;
pub use pool::{Builder, OwnedPooled, Pool, Pooled};
pub use recycle::{Recycle, Reuse};
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
