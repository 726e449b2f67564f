//! [`Pool`], its [`Builder`], and the [`Pooled`] / [`OwnedPooled`] guards.
//!
//! # Design
//!
//! Two tiers, checked in this order by [`Pool::get`]:
//!
//! 1. **Per-thread cache** (`thread_cache` objects per thread, default
//!    [`DEFAULT_THREAD_CACHE`], at most [`MAX_THREAD_CACHE`]): a LIFO stack per (pool,
//!    thread), found through a per-thread registry of the crate's own (`src/local.rs`
//!    describes it), whose room grows as the thread returns objects. A `get` and a
//!    return on the same thread touch nothing shared and do no atomic read-modify-write.
//! 2. **Shared tier** (`max_idle` objects, default [`DEFAULT_MAX_IDLE`]): a lock-free
//!    `crossbeam_queue::SegQueue` bounded by an atomic count of reserved places, whose
//!    memory follows the objects it holds (blocks of 31 slots, allocated as they fill
//!    and freed as they empty, the last one kept; a tier of 31 places or fewer is
//!    exactly its places: a large `max_idle` is a ceiling, not a reservation). It
//!    absorbs what a full thread cache overflows and feeds threads whose cache is
//!    empty, so an object returned on a thread that never calls `get` (a consumer at
//!    the end of a channel) flows back to the producers.
//!
//! A miss calls the create function. A return runs the hook *first*, on the returning
//! thread, then tries that thread's cache (a guard dropped on another thread than the
//! one that took it feeds the dropping thread's cache), then the shared tier; an
//! object that fits nowhere is dropped and counted as a discard. Nothing grows without
//! bound: the pool never holds more than `max_idle + thread_cache × threads` idle
//! objects, where `threads` is the most threads that used the pool at the same time.
//!
//! No internal borrow is held while user code runs (the create function, the hook,
//! `T::drop`): each of them may use the same pool again.
//!
//! A `T::drop` that panics while the pool frees an object (trim, a discard, a sweep
//! during a return) loses nothing else: an object being returned meanwhile is dropped
//! by the unwinding and counted (see [`Stats`]), and the pool's own drop goes on
//! dropping its other idle objects before letting the panic through, as std's
//! collections do (a second panic then aborts the process, as it does for them).
//!
//! # The hot path
//!
//! One round (a `get`, then the guard's drop) on a thread whose cache has room costs:
//!
//! - **find the cache** (get): the pool's index and id, two thread-local loads (the
//!   pointer and length of the thread's table of `(pool id, cache)` entries, no
//!   lazy-init check) and the entry; a bounds check and an id compare. The same
//!   whatever the number of pools on the thread: each live pool has its own place in
//!   the table. Only a thread's first use of a pool goes to the registry.
//! - **trim check**: the pool's epoch and the cache's last seen epoch; one branch.
//! - **get**: loads of two single-writer counters (the stack length is their
//!   difference), the front place's position and the object; stores of a counter and
//!   the position; a branch for empty and one for where the top is. The top of the
//!   stack is in the node's *front place*, beside the counters, when the thread takes
//!   and returns one object at a time (for a `T` of up to 24 bytes, see
//!   `src/local.rs`), so such a round touches one line of the cache and no slot;
//!   otherwise it is in a slot (one more load, the slot pointer).
//! - **return**: the hook, inlined for a `T: Recycle` pool (the return path is
//!   compiled once per kind of hook and reached through one indirect call; without
//!   [`Builder::max_capacity`] it has no capacity check); the guard
//!   remembers its cache, so the return only checks that the cache's owner is this
//!   thread (one thread-local load, one load, one branch; a guard dropped on another
//!   thread looks that thread's cache up instead); the trim check, the two counters,
//!   and stores of the object, one counter, and the front place's position (or, when
//!   the front place is taken, the object's epoch tag in its slot); one branch for
//!   room, one for the front place.
//!
//! Nothing else: no counter needs a mirror for [`Pool::stats`] (hits, returns and the
//! idle count are derived from the two counters), and the slow paths (registry, shared
//! tier, create, trim) are out of line. On x86-64 with `lto`, a round on a 4 KiB
//! `Vec<u8>` (get, push a byte, return) executes a few more instructions than a bare
//! `thread_local!` `RefCell<Vec<_>>` stack; the counts (callgrind,
//! `bench/pool/benches/pool.rs`) are in the crate's `BENCHMARKS.md`, section 1, their
//! one source.
//!
//! # Thread exit
//!
//! When a thread exits, its registry hands each of its caches back to the pool, with
//! the idle objects still in it and without running any user code; the next thread
//! that uses the pool adopts the cache (objects and all), and [`Pool::trim`] ages its
//! objects out meanwhile. A pool used from a thread-local destructor that runs after
//! the registry's own (a guard kept in a `thread_local!`, say) still works: returns go
//! to the shared tier or are dropped, gets come from the shared tier or the create
//! function, and [`Pool::stats`] counts them all.
//!
//! # Memory: trim
//!
//! Go's `sync.Pool` frees idle objects at garbage collection through a victim
//! generation. Rust has no GC, so [`Pool::trim`] plays that part: call it
//! periodically (say, every few seconds from a housekeeping timer) and an object that
//! stayed idle through two consecutive calls is freed. The shared tier and the caches
//! that exited threads left behind are swept by `trim` itself; each live thread's
//! cache is swept by its own thread on its next access, when it sees that the trim
//! epoch moved, so `trim` never stops or waits for other threads. A live thread that
//! never touches the pool again keeps its cache until it exits or the pool is dropped:
//! bounded by `thread_cache` objects per such thread.
//!
//! `trim` frees objects, not the caches that hold them: a pool keeps one cache (a few
//! cache lines of counters, plus the slots the thread grew it to) for each thread that
//! used it *at the same time* (an exited thread's cache is adopted by the next thread),
//! until the pool is dropped. So the pool's own memory follows the peak number of
//! threads that used it at once, not the number of threads that ever did. The pool's
//! drop frees all of them, and what stays on a thread that used it is a header of a
//! few bytes (one word and the allocator's rounding), freed when the thread exits or
//! when that thread first uses a new pool that took the dropped pool's place in its
//! table. The table itself (24 bytes a place) is sized by the highest place among the
//! pools alive when the thread used one, and stays until the thread exits: a thread
//! that uses one pool while 4,096 others are alive holds a table of some 96 KiB.

use std::fmt;
use std::mem::{self, ManuallyDrop, MaybeUninit};
use std::ops::{Deref, DerefMut};
use std::panic::{RefUnwindSafe, UnwindSafe};

use crate::local::{
    Caches, Counter, Counters, Home, Node, Slot, read_by_words, until_done_despite_panics,
};
use crate::recycle::{Recycle, Reuse};
use crate::shared::Shared;
use crate::stats::Stats;
use crate::sync::{Arc, AtomicU64, CachePadded, Ordering::Relaxed};

/// Idle objects each thread keeps for itself unless [`Builder::thread_cache`] says
/// otherwise.
pub const DEFAULT_THREAD_CACHE: usize = 8;

/// Idle objects the shared tier holds unless [`Builder::max_idle`] says otherwise.
pub const DEFAULT_MAX_IDLE: usize = 64;

/// The largest [`Builder::thread_cache`] a pool accepts: 65,536 idle objects per
/// thread. A thread that needs more at once than this is better served by the shared
/// tier ([`Builder::max_idle`]).
pub const MAX_THREAD_CACHE: usize = 1 << 16;

type CreateFn<T> = dyn Fn() -> T + Send + Sync;
type RecycleFn<T> = dyn Fn(&mut T) -> Reuse + Send + Sync;
/// `(bound, capacity_of)`: an object whose `capacity_of` exceeds `bound` is discarded.
type CapacityBound<T> = (usize, fn(&T) -> usize);

/// The hook a pool runs on every return, and the return path compiled for it.
// `repr(C)`: the two fields every return reads first (see `Pool`'s layout).
#[repr(C)]
struct Hook<T> {
    /// `Pool::give_back_as::<ByTraitUnbounded>` (no `max_capacity`: no check at all),
    /// `::<ByTrait>` or `::<ByClosure>`: the whole return path, monomorphised so that a
    /// `T: Recycle` pool calls (and inlines) `T::recycle` and `T::capacity` directly.
    /// One indirect call per return. Same contract as `give_back_as`.
    give_back: unsafe fn(&Pool<T>, &mut ManuallyDrop<T>, &Home<T>),
    max_capacity: Option<CapacityBound<T>>,
    /// The closure from `builder_with` or `recycle_with`; `None`: `T`'s [`Recycle`].
    custom: Option<Box<RecycleFn<T>>>,
    /// The return path to switch to when [`Builder::max_capacity_with`] gives a
    /// function to measure with: `give_back_as::<ByTraitMeasured>` for a `T: Recycle`
    /// hook (whose own path calls `T::capacity` directly, so that nothing on it can
    /// unwind but the hook), the same `ByClosure` path for a closure.
    give_back_measured: unsafe fn(&Pool<T>, &mut ManuallyDrop<T>, &Home<T>),
}

impl<T: Send> Hook<T> {
    fn by_trait() -> Self
    where
        T: Recycle,
    {
        Hook {
            custom: None,
            max_capacity: None,
            give_back: Pool::give_back_as::<ByTraitUnbounded>,
            give_back_measured: Pool::give_back_as::<ByTraitMeasured>,
        }
    }

    fn by_closure(recycle: Box<RecycleFn<T>>, max_capacity: Option<CapacityBound<T>>) -> Self {
        Hook {
            custom: Some(recycle),
            max_capacity,
            give_back: Pool::give_back_as::<ByClosure>,
            give_back_measured: Pool::give_back_as::<ByClosure>,
        }
    }
}

/// What a return's hook and capacity bound decided, and so how a discard is counted.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Keep,
    /// The hook said [`Reuse::Discard`].
    Refused,
    /// Over [`Builder::max_capacity`].
    OverCapacity,
}

/// How a return decides whether to keep the object (runs the hook and checks the
/// capacity bound); one impl per kind of hook.
trait Decide<T> {
    fn keep(hook: &Hook<T>, value: &mut T) -> Verdict;
}

/// Checks the capacity bound, after the hook said `Keep`: `capacity` is the
/// object's.
#[inline(always)]
fn within_capacity<T>(hook: &Hook<T>, capacity: impl FnOnce() -> usize) -> Verdict {
    match &hook.max_capacity {
        Some((bound, _)) if capacity() > *bound => Verdict::OverCapacity,
        _ => Verdict::Keep,
    }
}

/// `T`'s own [`Recycle`] impl, with no capacity bound (the default: no check at all).
enum ByTraitUnbounded {}

/// `T`'s own [`Recycle`] impl, bounded by [`Recycle::capacity`].
enum ByTrait {}

/// `T`'s own [`Recycle`] impl, bounded by the function given to
/// [`Builder::max_capacity_with`].
enum ByTraitMeasured {}

/// A closure from `builder_with` or `recycle_with`.
enum ByClosure {}

impl<T: Recycle> Decide<T> for ByTraitUnbounded {
    #[inline(always)]
    fn keep(hook: &Hook<T>, value: &mut T) -> Verdict {
        debug_assert!(hook.max_capacity.is_none(), "a bound needs `ByTrait`");
        match value.recycle() {
            Reuse::Keep => Verdict::Keep,
            Reuse::Discard => Verdict::Refused,
        }
    }
}

impl<T: Recycle> Decide<T> for ByTrait {
    #[inline(always)]
    fn keep(hook: &Hook<T>, value: &mut T) -> Verdict {
        if value.recycle() == Reuse::Discard {
            return Verdict::Refused;
        }
        within_capacity(hook, || value.capacity())
    }
}

impl<T: Recycle> Decide<T> for ByTraitMeasured {
    #[inline(always)]
    fn keep(hook: &Hook<T>, value: &mut T) -> Verdict {
        if value.recycle() == Reuse::Discard {
            return Verdict::Refused;
        }
        within_capacity(hook, || hook.max_capacity.map_or(0, |(_, of)| of(value)))
    }
}

impl<T> Decide<T> for ByClosure {
    #[inline(always)]
    fn keep(hook: &Hook<T>, value: &mut T) -> Verdict {
        if let Some(recycle) = &hook.custom {
            if recycle(value) == Reuse::Discard {
                return Verdict::Refused;
            }
        }
        within_capacity(hook, || hook.max_capacity.map_or(0, |(_, of)| of(value)))
    }
}

/// A lock-free pool of reusable `T`s, with a reset-on-return hook.
///
/// See the [module docs](crate::pool) for how the tiers work. `Pool<T>` is `Send +
/// Sync` for `T: Send`; share it by reference (scoped threads) or in an [`Arc`].
///
/// # Performance characteristics
///
/// A `get` and its return on the same thread touch only that thread's cache: no
/// atomic read-modify-write and no shared cache line, so threads do not slow each
/// other down. The round costs within 1.2x of what a hand-written `thread_local!`
/// stack read by words costs (within 1.21x of a `RefCell<Vec>` one), in instructions (callgrind on `bench/pool/benches/pool.rs`, 4 KiB
/// `Vec<u8>`, `lto`; the counts are in the crate's `BENCHMARKS.md`, section 1), on one
/// thread, with two threads sharing one pool, or with a thread holding 8 at once, and
/// no more with 512 pools on the thread than with one. The
/// [module docs](crate::pool#the-hot-path) list what those instructions do.
///
/// # Panics and unwind safety
///
/// `Pool<T>` is [`UnwindSafe`] and [`RefUnwindSafe`] when `T` is [`UnwindSafe`], so a
/// pool (or a guard) can be used inside [`catch_unwind`](std::panic::catch_unwind).
/// A panic in user code (the create function, the hook, [`Recycle::capacity`],
/// `T::drop`) or while a guard is held leaves the pool consistent: no object is handed
/// out twice or dropped twice, the [`Stats`] identities hold, and the pool goes on
/// working. What a panic can leave half-done is an *object*: a guard dropped by the
/// unwinding returns its object through the hook like any other return, so with a hook
/// that resets the object (every `Recycle` impl of this crate does; `WriteBuf`'s
/// refuses a writer with unflushed bytes) the next `get` never sees the half-made
/// change. A hook that keeps state across returns decides what a half-done change
/// means.
///
/// The impls vouch for the create function and the hook too: they are `Send + Sync`,
/// not required to be `RefUnwindSafe`. If they share state whose invariants a panic
/// can break without poisoning (a non-poisoning lock, a pair of atomics updated one
/// after the other) and `catch_unwind` goes on using the pool after one of them
/// panicked, that state is as the panic left it: `catch_unwind` cannot tell through
/// the pool. Memory safety does not depend on it (unwind safety is a lint, not a
/// soundness property).
///
/// # Examples
///
/// ```
/// use recycle_pool::Pool;
///
/// let pool: Pool<Vec<u8>> = Pool::new(|| Vec::with_capacity(4096));
/// {
///     let mut buf = pool.get(); // a guard that derefs to Vec<u8>
///     buf.extend_from_slice(b"hello");
/// } // dropped: cleared by `Vec`'s hook and kept for the next `get`
/// let buf = pool.get();
/// assert!(buf.is_empty());
/// assert!(buf.capacity() >= 4096);
/// ```
// `repr(C)`, the hot path's fields first, in the pool's first cache line (the pool is
// 64-byte aligned on every target: `align(64)`, since `CachePadded` gives less on
// some): the index and id that find the thread's node (`caches`), the trim epoch, and
// the return path with its capacity bound (`hook`). Left to the compiler they were
// spread over two lines, so that each of many pools used in turn cost one more line
// (`512pools` in `BENCHMARKS.md`). A pool with a closure hook (`builder_with`,
// `recycle_with`) also reads `hook.custom` on every return, which is in the second
// line on 64-bit targets: such pools touch two lines of the pool per round.
#[repr(C, align(64))]
pub struct Pool<T> {
    /// The per-thread tier.
    caches: Caches<T>,
    /// The trim epoch; see `local.rs`. Only `trim` writes it.
    epoch: AtomicU64,
    hook: Hook<T>,
    create: Box<CreateFn<T>>,
    /// `None` when `max_idle` is zero.
    shared: Option<Shared<Slot<T>>>,
    /// What no thread's cache can count: the shared tier's trims and evictions, and
    /// operations during thread exit or that panicked. Padded away from the read-mostly
    /// fields above, which every operation reads.
    cold: CachePadded<Counters>,
}

// === impl Pool ===

impl<T> Pool<T> {
    /// Returns `value` through the hook. Here, with no `T: Send` bound, for the guards'
    /// `Drop` (which must have their struct's bounds); every `Pool` was built with
    /// `T: Send`.
    ///
    /// # Safety
    ///
    /// As for `give_back_as`: `value` is initialised and never used or dropped again;
    /// `home` is `Home::NONE` or one that `take_with` on this pool gave.
    #[inline]
    unsafe fn give_back(&self, value: &mut ManuallyDrop<T>, home: &Home<T>) {
        // SAFETY: `give_back` is one of the `give_back_as` instances; the caller
        // upholds its contract.
        unsafe { (self.hook.give_back)(self, value, home) }
    }
}

impl<T: Recycle + Send> Pool<T> {
    /// Creates a pool with default bounds that makes new objects with `create` and
    /// resets returned ones with [`Recycle::recycle`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = recycle_pool::Pool::new(String::new);
    /// pool.get().push_str("scratch");
    /// assert_eq!(pool.get().as_str(), "");
    /// ```
    pub fn new(create: impl Fn() -> T + Send + Sync + 'static) -> Pool<T> {
        Self::builder(create).build()
    }

    /// Starts a [`Builder`] to set the bounds before building the pool.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = recycle_pool::Pool::builder(|| Vec::<u8>::with_capacity(4096))
    ///     .thread_cache(4)
    ///     .max_idle(256)
    ///     .max_capacity(64 * 1024)
    ///     .build();
    /// # drop(pool.get());
    /// ```
    pub fn builder(create: impl Fn() -> T + Send + Sync + 'static) -> Builder<T> {
        Builder::new(Box::new(create), Hook::by_trait())
    }
}

impl<T: Send> Pool<T> {
    /// Starts a [`Builder`] for a type that does not implement [`Recycle`] (a type from
    /// another crate, say): `recycle` is the hook.
    ///
    /// # Examples
    ///
    /// ```
    /// use recycle_pool::{Pool, Reuse};
    /// use std::collections::BTreeMap;
    ///
    /// let pool = Pool::builder_with(BTreeMap::<u32, String>::new, |map| {
    ///     map.clear();
    ///     Reuse::Keep
    /// })
    /// .build();
    /// pool.get().insert(1, "one".into());
    /// assert!(pool.get().is_empty());
    /// ```
    pub fn builder_with(
        create: impl Fn() -> T + Send + Sync + 'static,
        recycle: impl Fn(&mut T) -> Reuse + Send + Sync + 'static,
    ) -> Builder<T> {
        Builder::new(Box::new(create), Hook::by_closure(Box::new(recycle), None))
    }

    /// Takes an idle object, or creates one, wrapped in a guard that returns it to the
    /// pool when dropped.
    ///
    /// Looks in this thread's cache, then in the shared tier, then calls the create
    /// function (counted as a hit or a miss in [`stats`](Pool::stats)).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = recycle_pool::Pool::new(Vec::<u32>::new);
    /// let mut v = pool.get();
    /// v.push(1);
    /// assert_eq!(&*v, &[1]);
    /// ```
    #[must_use = "dropping the guard returns the object at once"]
    #[inline]
    pub fn get(&self) -> Pooled<'_, T> {
        self.take_with(|value, home| Pooled {
            pool: self,
            home,
            value: ManuallyDrop::new(value),
        })
    }

    /// Like [`get`](Pool::get), but the guard holds an [`Arc`] of the pool instead of a
    /// borrow, so it can be stored in structs, sent to other threads and outlive the
    /// scope that made it. The pool lives as long as its last owned guard.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use recycle_pool::{OwnedPooled, Pool};
    ///
    /// struct Connection {
    ///     buf: OwnedPooled<Vec<u8>>,
    /// }
    ///
    /// let pool = Arc::new(Pool::new(Vec::new));
    /// let conn = Connection { buf: pool.get_owned() };
    /// std::thread::spawn(move || drop(conn)).join().unwrap();
    /// assert_eq!(pool.stats().returns, 1);
    /// ```
    #[must_use = "dropping the guard returns the object at once"]
    #[cfg(not(loom))]
    pub fn get_owned(self: &Arc<Self>) -> OwnedPooled<T> {
        self.take_with(|value, home| OwnedPooled {
            value: ManuallyDrop::new(value),
            home,
            pool: Arc::clone(self),
        })
    }

    /// `get_owned` under loom, whose `Arc` cannot be a method receiver: call it as
    /// `Pool::get_owned(&pool)`.
    #[cfg(loom)]
    #[doc(hidden)]
    pub fn get_owned(this: &Arc<Self>) -> OwnedPooled<T> {
        this.take_with(|value, home| OwnedPooled {
            value: ManuallyDrop::new(value),
            home,
            pool: Arc::clone(this),
        })
    }

    /// Takes an idle object if there is one, wrapped in a guard like [`get`](Pool::get)'s;
    /// `None` if neither this thread's cache nor the shared tier holds one. Never calls
    /// the create function (object-pool's `try_pull`): for a caller that would rather
    /// wait, shed load or allocate something else than make a new object.
    ///
    /// Counted as a hit when it finds one, and in [`Stats::empty_tries`] when not.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = recycle_pool::Pool::new(|| Vec::<u8>::with_capacity(64));
    /// assert!(pool.try_get().is_none()); // nothing idle, nothing created
    /// drop(pool.get());
    /// assert!(pool.try_get().is_some()); // the one just returned
    /// let s = pool.stats();
    /// assert_eq!((s.misses, s.hits, s.empty_tries), (1, 1, 1));
    /// ```
    #[must_use = "dropping the guard returns the object at once"]
    pub fn try_get(&self) -> Option<Pooled<'_, T>> {
        self.try_take().map(|value| Pooled {
            // Taken off the fast path: the return looks its node up.
            home: Home::NONE,
            pool: self,
            value: ManuallyDrop::new(value),
        })
    }

    /// [`try_get`](Pool::try_get) with an owned guard, as [`get_owned`](Pool::get_owned).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = std::sync::Arc::new(recycle_pool::Pool::builder(String::new).prefill(1).build());
    /// let owned = pool.try_get_owned().expect("prefilled");
    /// assert!(pool.try_get_owned().is_none());
    /// # drop(owned);
    /// ```
    #[must_use = "dropping the guard returns the object at once"]
    #[cfg(not(loom))]
    pub fn try_get_owned(self: &Arc<Self>) -> Option<OwnedPooled<T>> {
        self.try_take().map(|value| OwnedPooled {
            // Taken off the fast path: the return looks its node up.
            home: Home::NONE,
            value: ManuallyDrop::new(value),
            pool: Arc::clone(self),
        })
    }

    /// `take` without the create function: counts a hit, or an empty try.
    fn try_take(&self) -> Option<T> {
        let local = self.caches.local();
        if let Some(value) = local.and_then(|node| node.pop(self.epoch.load(Relaxed))) {
            return Some(value); // counted by the node as a hit
        }
        if let Some(slot) = self.shared.as_ref().and_then(Shared::pop) {
            self.count(local, |c| &c.hits);
            return Some(slot.value);
        }
        self.count(local, |c| &c.empty_tries);
        None
    }

    /// Returns an object to the pool explicitly: runs the hook, then keeps the object
    /// if the hook said [`Reuse::Keep`] and there is room. Objects need not have come
    /// from this pool (a detached one, or one made elsewhere).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = recycle_pool::Pool::new(Vec::<u8>::new);
    /// pool.put(Vec::with_capacity(1024));
    /// assert!(pool.get().capacity() >= 1024);
    /// ```
    pub fn put(&self, value: T) {
        self.count(self.caches.local(), |c| &c.puts);
        // SAFETY: the `ManuallyDrop` is initialised and is a temporary: never used again.
        unsafe { self.give_back(&mut ManuallyDrop::new(value), &Home::NONE) };
    }

    /// A snapshot of the pool's counters, summed over all threads. See [`Stats`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = recycle_pool::Pool::new(String::new);
    /// drop(pool.get());
    /// assert_eq!(pool.stats().misses, 1);
    /// ```
    pub fn stats(&self) -> Stats {
        let mut stats = Stats {
            idle: self.shared.as_ref().map_or(0, |q| q.len()),
            ..Stats::default()
        };
        self.cold.add_to(&mut stats);
        for node in self.caches.iter() {
            node.add_to(&mut stats);
        }
        stats
    }

    /// The gets this thread made from the pool, counted in its cache's single-writer
    /// counters (0 when the thread has no cache, e.g. during its exit). For
    /// `SizedPool`'s calibration trigger: no shared write, no new counter.
    #[inline]
    pub(crate) fn local_gets(&self) -> u64 {
        self.caches.cached().map_or(0, Node::gets)
    }

    /// Frees the objects that have stayed idle since the call before last.
    ///
    /// Each call starts a new trim epoch. An idle object is freed once it has been idle
    /// through two consecutive calls: at once in the shared tier, in the calling
    /// thread's cache and in the caches of threads that have exited, and in another
    /// live thread's cache the next time that thread uses the pool. Never blocks; safe
    /// to call from a timer on any thread while other threads use the pool.
    ///
    /// Calls may overlap (two timers, or a `T::drop` that trims): a call frees only the
    /// objects returned before the call that began just before it, so an object
    /// returned after an overlapping call began is never freed by either.
    ///
    /// The shared tier is swept by taking each object out and putting the young ones
    /// back. If concurrent returns fill the tier meanwhile, a young object may find no
    /// room: it is dropped and counted as a discard, not as trimmed.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = recycle_pool::Pool::new(Vec::<u8>::new);
    /// drop(pool.get());
    /// pool.trim(); // idle through one trim: kept
    /// assert_eq!(pool.stats().idle, 1);
    /// pool.trim(); // idle through two: freed
    /// assert_eq!(pool.stats().idle, 0);
    /// ```
    pub fn trim(&self) {
        let now = self.epoch.fetch_add(1, Relaxed).wrapping_add(1);
        if let Some(node) = self.caches.find() {
            node.reconcile(now);
        }
        self.caches.reconcile_unowned(now);
        let Some(shared) = &self.shared else { return };
        // Walk the queue once: pop each object and push back the ones still young.
        // Concurrent gets and puts interleave freely.
        for _ in 0..shared.len() {
            let Some(slot) = shared.pop() else { break };
            if slot.is_stale(now) {
                self.cold.trimmed.add();
            } else {
                match shared.push(slot) {
                    Ok(()) => continue,
                    // Concurrent returns refilled the queue: a young object, dropped
                    // for want of room like any return that fits nowhere.
                    Err(_) => self.cold.evicted.add(),
                }
            }
            // The popped object drops here: user code (`T::drop`), no borrow is held.
        }
    }

    /// Counts an event in this thread's cache (`local`, single writer), or in the
    /// pool's shared counters when the thread has none (thread exit).
    #[inline]
    fn count(&self, local: Option<&Node<T>>, counter: fn(&Counters) -> &Counter) {
        match local {
            Some(node) => counter(&node.counters).bump(),
            None => counter(&self.cold).add(),
        }
    }

    /// The get path: thread cache, shared tier, create. Counts a hit or a miss; the
    /// caller counts nothing else. Hands `guard` the object and the node it came from
    /// (for the guard to remember, see `Caches::here`), and returns what `guard` made.
    ///
    /// The fast path (this thread's node has an object on top and no trim happened)
    /// and the slow one meet on a *pointer* to the object: the top slot, or `scratch`
    /// (on this frame) where the slow path put the object it found. The object is then
    /// read once, by words, into the guard. Merging the objects instead (`T` from
    /// either path) had the compiler build the guard in a temporary and copy it 16
    /// bytes at a time right after writing it 8 bytes at a time, a store-forwarding
    /// stall twice per `get`: 1.6x the time of holding 8 guards (`BENCHMARKS.md`,
    /// section 1).
    #[inline(always)]
    fn take_with<R>(&self, guard: impl FnOnce(T, Home<T>) -> R) -> R {
        let mut scratch = MaybeUninit::<T>::uninit();
        let epoch = self.epoch.load(Relaxed);
        let (src, home) = match self
            .caches
            .cached()
            .and_then(|node| Some((node, node.ready(epoch)?)))
        {
            Some((node, top)) => (node.take_ptr(top), Home::of(Some(node))),
            None => self.take_slow_into(&mut scratch),
        };
        // SAFETY: `src` is the top slot `take_ptr` just marked free (nothing touched the
        // stack since) or `scratch`, which `take_slow_into` initialised; either way an
        // initialised `T` nobody else will read or drop, moved out here exactly once.
        // `home` is `NONE` or one of this pool's nodes, as the guards require.
        guard(unsafe { read_by_words(src) }, home)
    }

    /// `take_with` off the fast path: puts the object in `scratch` and returns a
    /// pointer to it, with the thread's node (if it has one) for the guard.
    #[cold]
    #[inline(never)]
    fn take_slow_into(&self, scratch: &mut MaybeUninit<T>) -> (*const T, Home<T>) {
        let value = self.take_slow();
        (
            &raw const *scratch.write(value),
            Home::of(self.caches.cached()),
        )
    }

    /// `take` off the fast path: the thread's cache is empty, not made yet, gone
    /// (thread exit), or a trim happened.
    #[cold]
    #[inline(never)]
    fn take_slow(&self) -> T {
        let local = self.caches.local();
        if let Some(value) = local.and_then(|node| node.pop(self.epoch.load(Relaxed))) {
            return value;
        }
        if let Some(slot) = self.shared.as_ref().and_then(Shared::pop) {
            self.count(local, |c| &c.hits);
            return slot.value;
        }
        // User code. A panic here counts nothing: no object came to exist.
        let value = (self.create)();
        self.count(local, |c| &c.misses);
        value
    }

    /// The return path: hook, capacity bound, thread cache, shared tier, drop.
    /// Monomorphised per kind of hook and called through `hook.give_back`.
    ///
    /// # Safety
    ///
    /// `value` is initialised, and this call takes it: the caller never uses or drops
    /// it again. (A pointer rather than a `T`, which the caller would copy first.)
    /// `home` is `Home::NONE` or one that `take_with` on this pool gave.
    unsafe fn give_back_as<D: Decide<T>>(&self, value: &mut ManuallyDrop<T>, home: &Home<T>) {
        // SAFETY: by the contract, `value` is initialised and ours to take.
        let mut value = unsafe { ManuallyDrop::take(value) };
        // The hook is user code and may use this pool; it runs before any borrow. If it
        // (or the capacity check) panics, `value` is dropped by the unwinding and
        // `on_panic` counts it as returned and discarded.
        let on_panic = CountOnDrop(&self.cold.refused);
        let verdict = D::keep(&self.hook, &mut value);
        mem::forget(on_panic);
        if verdict == Verdict::Keep {
            // SAFETY: by the contract, `home` is `NONE` or one of this pool's nodes.
            if let Some(node) = unsafe { self.caches.here(home) } {
                let epoch = self.epoch.load(Relaxed);
                return node.push_or(value, epoch, |value| {
                    self.give_back_slow(value, Verdict::Keep);
                });
            }
        }
        self.give_back_slow(value, verdict);
    }

    /// `give_back_as` off the fast path: the object is refused, or the thread's cache
    /// is full, not made yet, gone (thread exit), or a trim happened.
    #[cold]
    #[inline(never)]
    fn give_back_slow(&self, value: T, verdict: Verdict) {
        let local = self.caches.local();
        match verdict {
            Verdict::Keep => {}
            Verdict::Refused => return self.discard(local, value, |c| &c.refused),
            Verdict::OverCapacity => return self.discard(local, value, |c| &c.over_capacity),
        }
        let value = match local {
            Some(node) => {
                // Reconciling the stack drops stale objects: user code (`T::drop`). If
                // one panics, `value` is dropped by the unwinding and `on_panic` counts
                // it as returned and discarded.
                let on_panic = CountOnDrop(&self.cold.discards);
                node.reconcile(self.epoch.load(Relaxed));
                mem::forget(on_panic);
                match node.push(value) {
                    Ok(()) => return,
                    Err(value) => value,
                }
            }
            None => value,
        };
        if let Some(shared) = &self.shared {
            let epoch = self.epoch.load(Relaxed);
            match shared.push(Slot { value, epoch }) {
                Ok(()) => return self.count(local, |c| &c.kept),
                Err(slot) => return self.discard(local, slot.value, |c| &c.discards),
            }
        }
        self.discard(local, value, |c| &c.discards);
    }

    /// Drops a returned object, counted by `cause`.
    fn discard(&self, local: Option<&Node<T>>, value: T, cause: fn(&Counters) -> &Counter) {
        self.count(local, cause);
        drop(value); // user code (`T::drop`): no borrow is held
    }

    /// Counts a `detach`.
    fn detached(&self) {
        self.count(self.caches.local(), |c| &c.detached);
    }
}

/// Counts one event when dropped: armed before user code that may panic, forgotten
/// once it returned.
struct CountOnDrop<'a>(&'a Counter);

impl Drop for CountOnDrop<'_> {
    #[cold]
    fn drop(&mut self) {
        self.0.add();
    }
}

impl<T> Drop for Pool<T> {
    fn drop(&mut self) {
        // The shared tier's objects, one at a time and carrying on past a panicking
        // `T::drop` (the queue's own drop would stop at the first and leak the rest).
        // The per-thread tier's drop (`Caches`) does the same.
        if let Some(shared) = &self.shared {
            until_done_despite_panics(&mut || shared.pop().map(drop).is_some());
        }
    }
}

impl<T: Send> fmt::Debug for Pool<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("thread_cache", &self.caches.capacity())
            .field(
                "max_idle",
                &self.shared.as_ref().map_or(0, |q| q.capacity()),
            )
            .finish_non_exhaustive()
    }
}

// The auto traits do not see this (the create function and the hook are `dyn Fn`, the
// tiers use `UnsafeCell`), but it holds: see "Panics and unwind safety" on `Pool`.
impl<T: UnwindSafe> UnwindSafe for Pool<T> {}
impl<T: UnwindSafe> RefUnwindSafe for Pool<T> {}

// === impl Builder ===

/// Configures a [`Pool`] before building it. Made by [`Pool::builder`] or
/// [`Pool::builder_with`].
///
/// # Examples
///
/// ```
/// use recycle_pool::{Pool, Reuse};
///
/// let pool = Pool::builder(|| Vec::<u8>::with_capacity(4096))
///     .thread_cache(16)        // idle objects per thread
///     .max_idle(1024)          // idle objects in the shared tier
///     .max_capacity(1 << 20)   // never keep a buffer that grew past 1 MiB
///     .build();
/// let mut buf = pool.get();
/// buf.resize(2 << 20, 0);
/// drop(buf);
/// assert_eq!(pool.stats().discards, 1);
/// ```
pub struct Builder<T> {
    create: Box<CreateFn<T>>,
    hook: Hook<T>,
    thread_cache: usize,
    max_idle: usize,
    prefill: usize,
}

impl<T: Send> Builder<T> {
    fn new(create: Box<CreateFn<T>>, hook: Hook<T>) -> Self {
        Self {
            create,
            hook,
            thread_cache: DEFAULT_THREAD_CACHE,
            max_idle: DEFAULT_MAX_IDLE,
            prefill: 0,
        }
    }

    /// Makes `n` objects with the create function when the pool is built and keeps
    /// them idle in the shared tier (opool's `new_prefilled`), so the first `n` gets,
    /// on any thread, are hits and a [`Pool::try_get`] finds them. At most
    /// [`max_idle`](Builder::max_idle) objects are made: the shared tier holds no
    /// more. Counted in [`Stats::prefilled`]; [`Pool::trim`] ages them out like any
    /// idle object.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = recycle_pool::Pool::builder(|| Vec::<u8>::with_capacity(4096))
    ///     .prefill(4)
    ///     .build();
    /// assert_eq!(pool.stats().idle, 4);
    /// let bufs: Vec<_> = (0..4).map(|_| pool.try_get().expect("prefilled")).collect();
    /// assert!(pool.try_get().is_none());
    /// let s = pool.stats();
    /// assert_eq!((s.prefilled, s.hits, s.misses), (4, 4, 0));
    /// # drop(bufs);
    /// ```
    pub fn prefill(mut self, n: usize) -> Self {
        self.prefill = n;
        self
    }

    /// Bounds the shared tier to `n` idle objects (default [`DEFAULT_MAX_IDLE`]).
    /// `0` disables the shared tier: objects then live only in thread caches and a
    /// full thread cache drops what it cannot hold. `n` is a ceiling: the shared tier
    /// allocates room as objects come in (blocks of 31 slots, each slot a `T` and two
    /// words; once used, one block stays until the pool is dropped) and frees it as
    /// they leave; an `n` of 31 or less is exactly `n` slots, made with the pool. So a
    /// pool with a large `n` that is never used costs nothing more than one with a
    /// small one.
    pub fn max_idle(mut self, n: usize) -> Self {
        self.max_idle = n;
        self
    }

    /// Bounds each thread's cache to `n` idle objects (default
    /// [`DEFAULT_THREAD_CACHE`], at most [`MAX_THREAD_CACHE`]). `0` disables the
    /// per-thread tier: every get and put then goes through the shared tier.
    ///
    /// A thread's cache starts with room for [`DEFAULT_THREAD_CACHE`] objects (or `n`
    /// if smaller) and grows, doubling, only when the thread returns more objects than
    /// it has room for, so a large `n` costs memory only on threads that hold that
    /// many. The room stays until the pool is dropped ([`Pool::trim`] frees objects,
    /// not room); the pool's drop frees every thread's cache, room and all, and leaves
    /// a few bytes per thread that used it until that thread exits or uses a new pool
    /// that took the dropped one's place (see the [module docs](crate::pool) for the
    /// per-thread table).
    ///
    /// [`build`](Builder::build) panics if `n` exceeds [`MAX_THREAD_CACHE`].
    pub fn thread_cache(mut self, n: usize) -> Self {
        self.thread_cache = n;
        self
    }

    /// Replaces the hook that runs on every return (by default, [`Recycle::recycle`]
    /// when the pool was made with [`Pool::builder`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use recycle_pool::{Pool, Reuse};
    ///
    /// // Keep only buffers that were left empty; discard the rest.
    /// let pool = Pool::builder(Vec::<u8>::new)
    ///     .recycle_with(|v: &mut Vec<u8>| if v.is_empty() { Reuse::Keep } else { Reuse::Discard })
    ///     .build();
    /// pool.get().push(1);
    /// assert_eq!(pool.stats().discards, 1);
    /// ```
    pub fn recycle_with(
        mut self,
        recycle: impl Fn(&mut T) -> Reuse + Send + Sync + 'static,
    ) -> Self {
        self.hook = Hook::by_closure(Box::new(recycle), self.hook.max_capacity);
        self
    }

    /// Builds the pool.
    ///
    /// # Panics
    ///
    /// If [`thread_cache`](Builder::thread_cache) was given more than
    /// [`MAX_THREAD_CACHE`].
    ///
    /// ```should_panic
    /// // panics: "thread_cache 100000 is over MAX_THREAD_CACHE (65536)"
    /// let pool = recycle_pool::Pool::builder(Vec::<u8>::new).thread_cache(100_000).build();
    /// ```
    #[track_caller]
    pub fn build(self) -> Pool<T> {
        assert!(
            self.thread_cache <= MAX_THREAD_CACHE,
            "thread_cache {} is over MAX_THREAD_CACHE ({MAX_THREAD_CACHE})",
            self.thread_cache
        );
        let pool = Pool {
            caches: Caches::new(self.thread_cache),
            epoch: AtomicU64::new(0),
            create: self.create,
            hook: self.hook,
            shared: (self.max_idle > 0).then(|| Shared::new(self.max_idle)),
            cold: CachePadded::new(Counters::default()),
        };
        if let Some(shared) = &pool.shared {
            for _ in 0..self.prefill.min(shared.capacity()) {
                // User code; if it panics, the pool drops with what was made so far.
                let value = (pool.create)();
                pool.cold.prefilled.add();
                if let Err(slot) = shared.push(Slot { value, epoch: 0 }) {
                    // Unreachable (no other thread sees the pool yet); counted all the same.
                    pool.cold.evicted.add();
                    drop(slot);
                }
            }
        }
        pool
    }
}

impl<T: Recycle + Send> Builder<T> {
    /// Discards, instead of keeping, a returned object whose [`Recycle::capacity`]
    /// exceeds `n` (checked after the hook ran), so that one huge request never pins a
    /// huge buffer for the life of the pool. Unbounded by default. Counted in
    /// [`Stats::over_capacity`].
    ///
    /// For a type without [`Recycle`], see
    /// [`max_capacity_with`](Builder::max_capacity_with).
    pub fn max_capacity(mut self, n: usize) -> Self {
        self.hook.max_capacity = Some((n, <T as Recycle>::capacity));
        if self.hook.custom.is_none() {
            // Back to `T::capacity`, called directly, if `max_capacity_with` was set.
            self.hook.give_back = Pool::give_back_as::<ByTrait>;
        }
        self
    }
}

impl<T: Send> Builder<T> {
    /// Like [`max_capacity`](Builder::max_capacity), with `capacity` measuring an
    /// object: for a pool of a type that does not implement [`Recycle`] (made with
    /// [`Pool::builder_with`]), or to measure differently from
    /// [`Recycle::capacity`]. Checked after the hook ran.
    ///
    /// # Examples
    ///
    /// ```
    /// use recycle_pool::{Pool, Reuse};
    /// use std::collections::HashMap;
    ///
    /// let pool = Pool::builder_with(HashMap::<u32, u32>::new, |map| {
    ///     map.clear();
    ///     Reuse::Keep
    /// })
    /// .max_capacity_with(1024, HashMap::capacity)
    /// .build();
    /// pool.get().extend((0..10_000).map(|i| (i, i))); // grew past 1024: dropped
    /// assert_eq!(pool.stats().over_capacity, 1);
    /// pool.get().insert(1, 1); // small: kept
    /// assert_eq!(pool.stats().idle, 1);
    /// ```
    pub fn max_capacity_with(mut self, n: usize, capacity: fn(&T) -> usize) -> Self {
        self.hook.max_capacity = Some((n, capacity));
        self.hook.give_back = self.hook.give_back_measured;
        self
    }
}

impl<T: Send> fmt::Debug for Builder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("thread_cache", &self.thread_cache)
            .field("max_idle", &self.max_idle)
            .field("max_capacity", &self.hook.max_capacity.map(|(n, _)| n))
            .finish_non_exhaustive()
    }
}

// === impl Pooled ===

/// A pooled object, borrowed from a [`Pool`]: derefs to `T` and goes back to the pool
/// (through its hook) when dropped. Made by [`Pool::get`].
///
/// `Pooled<T>` is `Send` for `T: Send`, so it may be dropped on another thread than
/// the one that took it (a scoped thread, say); the object then lands in that
/// thread's cache.
pub struct Pooled<'a, T> {
    pool: &'a Pool<T>,
    /// The node `value` came from, so that a return on the same thread finds it
    /// without a lookup. INVARIANT: `NONE` or one of `pool`'s nodes.
    home: Home<T>,
    /// INVARIANT: initialised until `drop` or `detach` takes it out, exactly once.
    value: ManuallyDrop<T>,
}

impl<T: Send> Pooled<'_, T> {
    /// Takes the object out of the pool for good: it will not be returned when dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = recycle_pool::Pool::new(Vec::<u8>::new);
    /// let mine: Vec<u8> = pool.get().detach();
    /// drop(mine);
    /// assert_eq!(pool.stats().returns, 0);
    /// assert_eq!(pool.stats().detached, 1);
    /// ```
    pub fn detach(self) -> T {
        let mut this = ManuallyDrop::new(self);
        this.pool.detached();
        // SAFETY: `this` is never dropped (ManuallyDrop), so `value` is taken exactly
        // once, here, and is initialised by the INVARIANT on `value`.
        unsafe { ManuallyDrop::take(&mut this.value) }
    }
}

impl<T> Deref for Pooled<'_, T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T> DerefMut for Pooled<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        &mut self.value
    }
}

impl<T> Drop for Pooled<'_, T> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: `drop` runs once and `detach` forgets the guard instead of dropping
        // it, so `value` is initialised here and never used again.
        unsafe { self.pool.give_back(&mut self.value, &self.home) };
    }
}

impl<T: fmt::Debug> fmt::Debug for Pooled<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

// === impl OwnedPooled ===

/// A pooled object that owns a reference count of its [`Pool`]: like [`Pooled`], but
/// `'static`, so it can live in structs, cross threads and outlive every other handle
/// to the pool. Made by [`Pool::get_owned`].
pub struct OwnedPooled<T> {
    pool: Arc<Pool<T>>,
    /// As for [`Pooled`]. INVARIANT: `NONE` or one of `pool`'s nodes.
    home: Home<T>,
    /// INVARIANT: initialised until `drop` or `detach` takes it out, exactly once.
    value: ManuallyDrop<T>,
}

impl<T: Send> OwnedPooled<T> {
    /// Takes the object out of the pool for good: it will not be returned when dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// let pool = Arc::new(recycle_pool::Pool::new(String::new));
    /// let s: String = pool.get_owned().detach();
    /// # drop(s);
    /// assert_eq!(pool.stats().detached, 1);
    /// ```
    pub fn detach(self) -> T {
        let mut this = ManuallyDrop::new(self);
        this.pool.detached();
        // SAFETY: `this` is never dropped, so `value` is taken exactly once, here; it
        // is initialised by the INVARIANT on `value`.
        let value = unsafe { ManuallyDrop::take(&mut this.value) };
        // SAFETY: `pool` is read exactly once and `this` is never dropped, so the
        // reference count it holds is released exactly once, by this drop.
        drop(unsafe { std::ptr::read(&this.pool) });
        value
    }

    /// The pool this object returns to.
    pub fn pool(&self) -> &Arc<Pool<T>> {
        &self.pool
    }
}

impl<T> Deref for OwnedPooled<T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T> DerefMut for OwnedPooled<T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        &mut self.value
    }
}

impl<T> Drop for OwnedPooled<T> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: as for `Pooled`: `drop` runs once, `detach` forgets the guard.
        unsafe { self.pool.give_back(&mut self.value, &self.home) };
    }
}

impl<T: fmt::Debug> fmt::Debug for OwnedPooled<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::Pool;
    use std::mem::{align_of, offset_of, size_of_val};

    /// What every `get` and return of a `T: Recycle` pool reads of the pool sits in
    /// its first cache line: with many pools used in turn, each costs one line of the
    /// pool, not two. (A closure hook's pointer is past it; see the comment on `Pool`.)
    #[test]
    fn the_hot_path_reads_one_line_of_the_pool() {
        type P = Pool<Vec<u8>>;
        assert!(align_of::<P>() >= 64);
        let pool = P::new(Vec::new);
        let hot = [
            offset_of!(P, caches.id) + size_of_val(&pool.caches.id),
            offset_of!(P, caches.index) + size_of_val(&pool.caches.index),
            offset_of!(P, epoch) + size_of_val(&pool.epoch),
            offset_of!(P, hook.give_back) + size_of_val(&pool.hook.give_back),
            offset_of!(P, hook.max_capacity) + size_of_val(&pool.hook.max_capacity),
        ];
        assert!(
            hot.iter().all(|&end| end <= 64),
            "hot fields end at {hot:?}"
        );
    }
}
