//! The per-thread tier: one small LIFO stack of idle objects per (pool, thread), found
//! through a per-thread registry of the crate's own.
//!
//! # Structure
//!
//! - A [`Node`] is one thread's cache for one pool: an array of slots (at most
//!   `thread_cache`, allocated as the thread returns objects: it starts with
//!   [`INITIAL_SLOTS`] and doubles when full), the pool's single-writer counters for
//!   that thread, and a `state` word. A pool keeps its nodes in an append-only,
//!   lock-free list ([`Caches`]) that `stats`, `trim` and the pool's drop walk. Nodes
//!   are never removed from the list while the pool lives.
//! - Each thread has a **registry** (a `thread_local!` `Vec` of `(pool id, node)`) and
//!   in front of it a **direct-mapped cache** of four `(pool id, node)` pairs, indexed
//!   by `id % 4`, in a `thread_local!` without a destructor (so reading it is a plain
//!   TLS load, with no lazy-init or liveness check). Pool ids come from a global
//!   counter and are never reused, so a stale pair can never match a live pool.
//!
//! # Node ownership: `state`
//!
//! | state | meaning | who touches the stack |
//! | --- | --- | --- |
//! | `OWNED` | in one thread's registry (or claimed for a moment by `trim`) | that thread only |
//! | `FREE` | its thread exited; idle objects stay in it | nobody, until claimed |
//! | `DEAD` | its pool is gone; the stack is empty | nobody; the last holder frees it |
//!
//! Transitions, with the orderings that carry the stack's contents across threads:
//!
//! - **first use on a thread**: claim a `FREE` node with `CAS FREE→OWNED (Acquire)`, or
//!   allocate an `OWNED` one and push it on the list (`CAS` on the head, `Release`).
//!   So a pool holds at most as many nodes as threads used it *at once* (counting a
//!   `trim` in progress as one).
//! - **thread exit** (the registry's destructor): empty the direct-mapped cache, then for
//!   every entry `CAS OWNED→FREE (Release)`; if that fails the state is `DEAD`
//!   (`Acquire`): the pool is gone and the thread frees the node. No user code runs
//!   here: the idle objects stay in the `FREE` node for the next thread that adopts it,
//!   for `trim`, or for the pool's drop.
//! - **trim**: also sweeps `FREE` nodes, claiming each with `CAS FREE→OWNED (Acquire)`
//!   and releasing it with a `Release` store of `FREE`.
//! - **pool drop**: for each node, drop its idle objects, then `swap DEAD (AcqRel)`;
//!   if the old state was `FREE` nobody else refers to the node and the pool frees it
//!   (the `Acquire` orders the thread's release before the free), if `OWNED` its thread
//!   frees it, at exit or when it prunes `DEAD` entries while registering another pool
//!   (the `Release` orders the drop of the objects before that free). The objects are
//!   dropped *before* the swap: afterwards the thread may free the node at any time.
//!   Dropping another thread's objects here is sound because a thread touches a stack
//!   only inside pool operations, which all ended before the pool's drop began (the
//!   borrow or `Arc` that ended them orders them before it), and never at thread exit.
//!   If a `T::drop` panics, the drop goes on with the rest of that node and the nodes
//!   after it before the panic goes on (`until_done_despite_panics`).
//!
//! A pool's drop never waits for other threads, and a thread's exit never waits for a
//! pool. User code (the hook, the create function, `T::drop`) never runs while the
//! registry is borrowed or a reference into a stack is live, so it may use any pool.
//!
//! # The hot path
//!
//! The stack length is not stored: it is `pushes - removed`, two single-writer counters
//! that `stats` reads too (`removed` counts gets served from the stack and objects trim
//! freed from it). So a get from the stack stores one counter and a return to it stores
//! one counter plus the slot, and `stats` needs no mirror of the length. Per operation,
//! on a hit in the direct-mapped cache (x86-64, measured on the `lto` bench build):
//!
//! | | loads | stores | branches |
//! | --- | --- | --- | --- |
//! | find the node | pool id, cached id, cached node | – | id match |
//! | trim check | pool epoch, node's `seen` | – | epoch moved |
//! | `get` from the stack | `pushes`, `removed`, slot ptr, the object (by words, see [`read_by_words`]) | `removed` | empty |
//! | return to the stack | `pushes`, `removed`, slots allocated, slot ptr | object + epoch tag, `pushes` | full |
//!
//! # Trim epochs
//!
//! Every idle object is tagged with the pool's trim epoch at the moment it was
//! returned. `Pool::trim` advances the epoch; the owning thread notices on its next
//! access (one relaxed load and a compare) and frees every object whose tag is two or
//! more epochs old, i.e. that sat idle through two consecutive trims. The stack is
//! LIFO and the owner's epoch loads never go backwards, so tags never decrease from the
//! bottom up: the oldest objects sit at the bottom and are freed first, while a busy
//! thread keeps re-tagging the few objects it really uses.
//!
//! A sweep's epoch can be *older* than a tag it meets: trims overlap (a `trim` sweeping
//! a cache an exited thread left behind, at the epoch it started with, while a newer
//! trim ran and that thread returned an object before exiting), or a `T::drop` run by a
//! sweep trims and returns. Such an object is young: staleness is `now - tag >= 2`
//! without wrapping (`Slot::is_stale`), and the epoch a stack records as reconciled
//! (`seen`) only moves forward. An object pushed after a sweep is tagged with that
//! `seen`, so the order of tags holds then too.
//!
//! # Orderings
//!
//! The epoch carries no data: it only decides *when* an object is dropped, and the
//! object belongs to this thread either way. `Relaxed` is enough. The counters have a
//! single writer at a time (the node's owner), which bumps them with a relaxed load and
//! store; readers on other threads see a slightly stale, never torn, value. Ownership
//! changes hands only through the `state` transitions above, whose `Release`/`Acquire`
//! pairs order the previous owner's writes before the next owner's.

use std::cell::{Cell, RefCell};
use std::marker::PhantomData;
use std::mem::{self, MaybeUninit};
use std::ptr::{self, NonNull};

use crate::stats::Stats;
use crate::sync::{
    AtomicPtr, AtomicU64, AtomicUsize, LeakTrack,
    Ordering::{AcqRel, Acquire, Relaxed, Release},
    UnsafeCell, thread_local_const, unique_id,
};

/// Slots a node starts with (fewer if `thread_cache` is smaller): the default
/// `thread_cache`, so that a default pool never grows a stack.
const INITIAL_SLOTS: usize = crate::pool::DEFAULT_THREAD_CACHE;

/// An idle object and the trim epoch it was returned in.
pub(crate) struct Slot<T> {
    pub(crate) value: T,
    pub(crate) epoch: u64,
}

/// Reads a `T` out of `src` (as [`ptr::read`] does) with one 8-byte load
/// per word when `T` is a few whole words, so that taking back an object returned a
/// moment ago does not stall.
///
/// A return writes the object into its slot field by field (the hook just changed some
/// of them, so they sit in registers), while an ordinary copy out of the slot loads it
/// 16 bytes at a time. A load that spans two pending stores cannot be forwarded from the
/// store buffer: it waits for them to reach the cache, some 20 to 30 cycles on the
/// development machine (AMD EPYC), which tripled the cost of a get right after a return
/// (`bench/pool/benches/pool.rs`, `1thread`). Word loads match the stores whatever their widths,
/// and `read_volatile` keeps the compiler from merging them back. Larger or less aligned
/// types are copied as usual: the stall costs little beside their copy.
///
/// # Safety
///
/// As for [`ptr::read`]: `src` is valid for reads, aligned, and points
/// to an initialised `T`, which the caller then treats as moved out.
#[inline(always)]
unsafe fn read_by_words<T>(src: *const T) -> T {
    const WORD: usize = size_of::<u64>();
    if size_of::<T>() % WORD != 0 || size_of::<T>() > 8 * WORD || align_of::<T>() < WORD {
        // SAFETY: the caller's contract is `ptr::read`'s.
        return unsafe { src.read() };
    }
    let mut out = MaybeUninit::<T>::uninit();
    let (from, to) = (
        src.cast::<MaybeUninit<u64>>(),
        out.as_mut_ptr().cast::<MaybeUninit<u64>>(),
    );
    for i in 0..size_of::<T>() / WORD {
        // SAFETY: `T` is a whole number of words (checked above) and at least
        // word-aligned, so word `i < size_of::<T>() / WORD` of `src` and of `out` are
        // in bounds and aligned. `MaybeUninit<u64>` copies any bytes, padding and
        // pointer provenance included, so `out` ends up a bytewise copy of `*src`.
        unsafe { to.add(i).write(from.add(i).read_volatile()) };
    }
    // SAFETY: `out` holds every byte of the initialised `T` at `src`; the caller
    // treats that one as moved out, so there is still exactly one owner.
    unsafe { out.assume_init() }
}

impl<T> Slot<T> {
    /// Whether a sweep at trim epoch `now` frees this object: it was returned before
    /// the trim that made epoch `now - 1` began. An object tagged with an epoch newer
    /// than `now` (returned after a trim that began after the sweeping one: two trims
    /// may overlap, or a `T::drop` in a sweep may trim and return) is young. Epochs
    /// never wrap (2^64 trims).
    #[inline]
    pub(crate) fn is_stale(&self, now: u64) -> bool {
        now.saturating_sub(self.epoch) >= 2
    }
}

/// A counter. Per-node counters have one writer at a time, the node's owner
/// ([`bump`](Counter::bump), [`set`](Counter::set)); the pool's own counters are
/// shared by all threads ([`add`](Counter::add)).
#[derive(Default)]
pub(crate) struct Counter(AtomicU64);

impl Counter {
    /// Adds one. Only the node's owner may call this (a load and a store, no RMW).
    #[inline]
    pub(crate) fn bump(&self) {
        self.set(self.get().wrapping_add(1));
    }

    /// Overwrites the value. Only the node's owner may call this.
    #[inline]
    fn set(&self, value: u64) {
        self.0.store(value, Relaxed);
    }

    /// Adds one from any thread (an atomic read-modify-write: cold paths only).
    pub(crate) fn add(&self) {
        self.0.fetch_add(1, Relaxed);
    }

    #[inline]
    pub(crate) fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// Counters kept per node, and once more per pool for what happens where no node can
/// be used (during thread exit, after the registry is gone, and when a hook panics).
#[derive(Default)]
pub(crate) struct Counters {
    /// Objects `trim` freed (from a node's stack, or, for the pool, the shared tier).
    pub(crate) trimmed: Counter,
    /// Gets served by the shared tier.
    pub(crate) hits: Counter,
    /// Objects the create function returned.
    pub(crate) misses: Counter,
    /// Returns kept in the shared tier.
    pub(crate) kept: Counter,
    /// Returns dropped for want of room in either tier (or because sweeping the
    /// thread's cache first panicked in a `T::drop`).
    pub(crate) discards: Counter,
    /// Returns the hook refused, or whose hook (or capacity check) panicked.
    pub(crate) refused: Counter,
    /// Returns over `max_capacity`.
    pub(crate) over_capacity: Counter,
    /// Young idle objects `trim` had to drop (pool only; see `Pool::trim`).
    pub(crate) evicted: Counter,
    pub(crate) detached: Counter,
    pub(crate) puts: Counter,
    /// `try_get` calls that found no idle object.
    pub(crate) empty_tries: Counter,
    /// Objects `Builder::prefill` made (pool only).
    pub(crate) prefilled: Counter,
}

impl Counters {
    /// Adds these counters to `stats` (a node adds its stack's share on top).
    pub(crate) fn add_to(&self, stats: &mut Stats) {
        stats.hits += self.hits.get();
        stats.misses += self.misses.get();
        let (no_room, refused) = (self.discards.get(), self.refused.get());
        let (over_capacity, evicted) = (self.over_capacity.get(), self.evicted.get());
        stats.returns += self.kept.get() + no_room + refused + over_capacity;
        stats.discards += no_room + refused + over_capacity + evicted;
        stats.no_room += no_room;
        stats.refused += refused;
        stats.over_capacity += over_capacity;
        stats.evicted += evicted;
        stats.trimmed += self.trimmed.get();
        stats.detached += self.detached.get();
        stats.puts += self.puts.get();
        stats.empty_tries += self.empty_tries.get();
        stats.prefilled += self.prefilled.get();
    }
}

const FREE: usize = 0;
const OWNED: usize = 1;
const DEAD: usize = 2;

/// The part of a node that the (untyped) registry uses.
#[repr(C)]
struct Header {
    /// `FREE`, `OWNED` or `DEAD`: see the module docs.
    state: AtomicUsize,
    /// `Node::<T>::free` for this node's `T`.
    free: unsafe fn(NonNull<Header>),
}

struct Stack<T> {
    /// INVARIANT: `slots[..len]` are initialised, `len = pushes - removed <= slots.len()
    /// <= capacity` (the node's counters), oldest first. Starts with at most
    /// [`INITIAL_SLOTS`] and grows (see [`Node::push`]) only as objects come back,
    /// so a large `thread_cache` costs memory only if the thread really holds that many.
    slots: Vec<MaybeUninit<Slot<T>>>,
    /// The last trim epoch this stack was reconciled with.
    seen: u64,
}

/// One thread's cache for one pool.
// `repr(C)`: a `*Node<T>` is a valid `*Header` (first field). Aligned to two cache
// lines so that two threads' hot counters never share one (adjacent-line prefetch).
#[repr(C, align(128))]
pub(crate) struct Node<T> {
    header: Header,
    /// The next node in the pool's list; written once, before the node is published.
    next: *mut Node<T>,
    /// Objects that left the stack: gets it served, and objects trim freed from it.
    removed: Counter,
    /// Returns kept in the stack.
    pushes: Counter,
    /// The most slots the stack may grow to (`thread_cache`), readable from any thread.
    capacity: usize,
    pub(crate) counters: Counters,
    /// INVARIANT: only the thread that owns this node (see the module docs) accesses
    /// `stack`, and never while user code (hook, create, `T::drop`) runs.
    stack: UnsafeCell<Stack<T>>,
    _track: LeakTrack,
}

impl<T> Node<T> {
    fn new(capacity: usize) -> Self {
        Self {
            header: Header {
                state: AtomicUsize::new(OWNED),
                free: Self::free,
            },
            next: ptr::null_mut(),
            removed: Counter::default(),
            pushes: Counter::default(),
            capacity,
            counters: Counters::default(),
            stack: UnsafeCell::new(Stack {
                slots: (0..capacity.min(INITIAL_SLOTS))
                    .map(|_| MaybeUninit::uninit())
                    .collect(),
                seen: 0,
            }),
            _track: LeakTrack::new(),
        }
    }

    /// Frees a node made by [`Caches::adopt`].
    ///
    /// # Safety
    ///
    /// `header` points to a `Node<T>` leaked from a `Box`, whose stack is empty, that
    /// nobody else refers to any more and that is never used again.
    unsafe fn free(header: NonNull<Header>) {
        // SAFETY: by the contract, this is the `Box` the node came from and we are its
        // last user. `Header` is the first field of the `repr(C)` `Node<T>`, so the
        // cast gives back the original pointer. The stack is empty, so no `T` is
        // dropped here (the `Drop` below finds nothing to drop).
        drop(unsafe { Box::from_raw(header.cast::<Node<T>>().as_ptr()) });
    }

    /// Idle objects in this node, for `stats` on any thread: a recent value, clamped
    /// (the two loads are not one snapshot, so they may be out of step either way).
    pub(crate) fn idle(&self) -> usize {
        let len = self.pushes.get().saturating_sub(self.removed.get());
        usize::try_from(len).map_or(self.capacity, |len| len.min(self.capacity))
    }

    /// `(pushes, removed, len)` as the owning thread sees them: exact, with
    /// `len = pushes - removed <= capacity`.
    #[inline(always)]
    fn counts(&self) -> (u64, u64, usize) {
        let (pushes, removed) = (self.pushes.get(), self.removed.get());
        (pushes, removed, pushes.wrapping_sub(removed) as usize)
    }

    /// Adds this node's counters to `stats`, its stack's share included.
    pub(crate) fn add_to(&self, stats: &mut Stats) {
        self.counters.add_to(stats);
        // A trimmed object left the stack without a get.
        stats.hits += self
            .removed
            .get()
            .saturating_sub(self.counters.trimmed.get());
        stats.returns += self.pushes.get();
        stats.idle += self.idle();
    }

    /// Runs `f` on the stack. Owning thread only (or a caller with exclusive access,
    /// see `Caches`' drop); `f` must not run user code.
    #[inline(always)]
    fn with_stack<R>(&self, f: impl FnOnce(&mut Stack<T>) -> R) -> R {
        self.stack.with_mut(|stack| {
            // SAFETY: by the INVARIANT on `stack` (which the callers uphold: owning
            // thread, no user code in `f`), nothing else accesses the stack while this
            // reference lives.
            f(unsafe { &mut *stack })
        })
    }

    /// The hot get: takes the most recently returned object if there is one and no
    /// trim happened since the stack was last reconciled; otherwise calls `slow`
    /// (which reconciles and looks further, see [`pop`](Node::pop)). Owning thread
    /// only.
    ///
    /// A closure rather than an `Option<T>`: the caller would test the option again
    /// (through `T`'s niche) after this function already knew which it was, and `slow`
    /// is a tail call, so the fast path saves no registers.
    #[inline(always)]
    pub(crate) fn pop_or(&self, epoch: u64, slow: impl FnOnce() -> T) -> T {
        let (_, removed, len) = self.counts();
        if len == 0 || !self.is_reconciled(epoch) {
            return slow();
        }
        self.take_top(removed, len)
    }

    /// Reconciles the stack with `epoch`, then takes the most recently returned
    /// object. Owning thread only.
    pub(crate) fn pop(&self, epoch: u64) -> Option<T> {
        self.reconcile(epoch);
        let (_, removed, len) = self.counts();
        (len > 0).then(|| self.take_top(removed, len))
    }

    /// Takes `slots[len - 1]`. Owning thread only; `removed` and `len > 0` are the
    /// counter and the length just read.
    #[inline(always)]
    fn take_top(&self, removed: u64, len: usize) -> T {
        let value = self.with_stack(|stack| {
            // SAFETY: `0 < len <= slots.len()` and `slots[len - 1]` is initialised
            // (INVARIANT on `slots`); `value` is a field of that `Slot<T>`, so it is
            // aligned for `T`; bumping `removed` below marks the slot uninitialised
            // again, so it is read exactly once.
            unsafe {
                read_by_words(&raw const (*stack.slots.get_unchecked(len - 1).as_ptr()).value)
            }
        });
        self.removed.set(removed.wrapping_add(1));
        value
    }

    /// The hot return: keeps `value` tagged with `epoch` if a slot is free and no
    /// trim happened since the stack was last reconciled; otherwise hands it to `slow`
    /// (see [`push`](Node::push)). Owning thread only.
    #[inline(always)]
    pub(crate) fn push_or(&self, value: T, epoch: u64, slow: impl FnOnce(T)) {
        let (pushes, _, len) = self.counts();
        if len >= self.slots() || !self.is_reconciled(epoch) {
            return slow(value);
        }
        self.put_top(pushes, len, value, epoch);
    }

    /// Keeps `value` if there is room, growing the slots up to `capacity` if they are
    /// all taken, or hands it back. Owning thread only, once the caller reconciled the
    /// stack (which runs user code, so the caller guards `value` across it).
    ///
    /// The object is tagged with the epoch the stack is reconciled with: at least the
    /// one the caller reconciled with, and newer if a `T::drop` in that sweep trimmed.
    pub(crate) fn push(&self, value: T) -> Result<(), T> {
        let (pushes, _, len) = self.counts();
        let (room, epoch) = self.with_stack(|stack| {
            let slots = stack.slots.len();
            if len == slots && slots < self.capacity {
                // All slots taken: double them, up to `capacity`. (The allocator is no
                // pool user code: it may not use a pool.)
                let grown = slots.saturating_mul(2).clamp(1, self.capacity);
                stack.slots.reserve_exact(grown - slots);
                stack.slots.resize_with(grown, MaybeUninit::uninit);
            }
            (len < stack.slots.len(), stack.seen)
        });
        if !room {
            return Err(value);
        }
        self.put_top(pushes, len, value, epoch);
        Ok(())
    }

    /// Writes `slots[len]`. Owning thread only; `pushes` and `len < slots.len()` are
    /// the counter and the length just read.
    #[inline(always)]
    fn put_top(&self, pushes: u64, len: usize, value: T, epoch: u64) {
        self.with_stack(|stack| {
            // SAFETY: `len < slots.len()` (the caller checked it). The slot at `len` is
            // uninitialised (INVARIANT on `slots`), so writing it leaks nothing; bumping
            // `pushes` below marks it initialised.
            unsafe { stack.slots.get_unchecked_mut(len) }.write(Slot { value, epoch });
        });
        self.pushes.set(pushes.wrapping_add(1));
    }

    /// Slots allocated so far (`<= capacity`). Owning thread only.
    #[inline(always)]
    fn slots(&self) -> usize {
        self.with_stack(|stack| stack.slots.len())
    }

    /// Whether the stack was reconciled with trim epoch `epoch`. Owning thread only.
    #[inline(always)]
    fn is_reconciled(&self, epoch: u64) -> bool {
        self.with_stack(|stack| stack.seen == epoch)
    }

    /// Frees the objects that have been idle through two trims, if a trim happened
    /// since the last call. Owning thread only.
    pub(crate) fn reconcile(&self, epoch: u64) {
        if !self.is_reconciled(epoch) {
            self.free_stale(epoch);
        }
    }

    #[cold]
    fn free_stale(&self, epoch: u64) {
        // One object at a time: `T::drop` is user code and may use this pool (and this
        // very stack) again, so it runs after each borrow has ended.
        while let Some(stale) = self.take_oldest_if_stale(epoch) {
            drop(stale);
        }
    }

    /// Takes the bottom object out of the stack if it is stale at `epoch`; otherwise
    /// records that the stack is reconciled with `epoch`. Owning thread only.
    fn take_oldest_if_stale(&self, epoch: u64) -> Option<Slot<T>> {
        let (_, removed, len) = self.counts();
        let slot = self.with_stack(|stack| {
            let base = stack.slots.as_mut_ptr();
            // SAFETY: when `len > 0`, `slots[0]` is initialised (INVARIANT on `slots`).
            let stale = len > 0 && unsafe { (*base).assume_init_ref() }.is_stale(epoch);
            if !stale {
                // Never backwards: a `T::drop` run by this sweep may have trimmed, and
                // reconciled the stack with a newer epoch, meanwhile.
                stack.seen = stack.seen.max(epoch);
                return None;
            }
            // SAFETY: `slots[..len]` are initialised and in bounds. The bottom one is
            // read out once, then the `len - 1` above it move down one place
            // (`ptr::copy` handles the overlap); bumping `removed` below makes
            // `slots[..len - 1]` the initialised prefix again, so nothing is read
            // twice or leaked.
            unsafe {
                let oldest = (*base).assume_init_read();
                ptr::copy(base.add(1), base, len - 1);
                Some(oldest)
            }
        })?;
        self.counters.trimmed.bump();
        self.removed.set(removed.wrapping_add(1));
        Some(slot)
    }

    /// Drops every idle object. The caller must have exclusive access to the stack
    /// (see `Caches`' drop). If a `T::drop` panics, the stack holds the objects not
    /// dropped yet, and calling `drain` again goes on with them.
    fn drain(&self) {
        loop {
            let (_, removed, len) = self.counts();
            if len == 0 {
                return;
            }
            drop(self.take_top(removed, len));
        }
    }
}

impl<T> Drop for Node<T> {
    fn drop(&mut self) {
        // Nodes are drained before they are freed; this only keeps a stray object from
        // leaking if that ever changed.
        self.drain();
        // Freeing the slots writes the stack: through `with_stack`, so that loom checks
        // that a node's free is ordered after every other thread's last use of it.
        drop(self.with_stack(|stack| mem::take(&mut stack.slots)));
    }
}

/// Calls `step` until it returns `false`, carrying on during the unwinding if a call
/// panics (a `T::drop`), as std's collections keep dropping their other elements when
/// one element's drop panics: the first panic then goes on (a second one aborts the
/// process). A `step` that panics must leave what it works on consistent, without the
/// element that panicked.
pub(crate) fn until_done_despite_panics(step: &mut dyn FnMut() -> bool) {
    /// Resumes the calls if dropped by the unwinding.
    struct Resume<'a>(&'a mut dyn FnMut() -> bool);
    impl Drop for Resume<'_> {
        fn drop(&mut self) {
            until_done_despite_panics(self.0);
        }
    }
    let resume = Resume(step);
    while (resume.0)() {}
    mem::forget(resume);
}

/// Releases a node that this thread's registry held (thread exit, or a `DEAD` entry).
fn release(node: NonNull<Header>) {
    // SAFETY: a registry entry keeps its node alive: nobody frees a node in the OWNED
    // state but the registry that holds it (this one).
    let header = unsafe { node.as_ref() };
    match header.state.compare_exchange(OWNED, FREE, Release, Acquire) {
        // The pool lives on and may hand the node (and its idle objects) to another
        // thread; this thread no longer touches it.
        Ok(_) => {}
        Err(state) => {
            debug_assert_eq!(state, DEAD);
            // SAFETY: DEAD means the pool is gone: it emptied the stack before its
            // `swap` (which the `Acquire` above synchronises with) and left the node to
            // this registry, its last holder. The entry is dropped right after.
            unsafe { (header.free)(node) };
        }
    }
}

/// A `(pool id, node)` pair of the direct-mapped cache. Pool id 0: empty (and the
/// node dangling: non-null even then, so that the compiler knows a hit is non-null).
/// One `Cell` for both, so that a lookup is two plain TLS loads.
struct Way(Cell<(u64, NonNull<Header>)>);

/// The pair an empty [`Way`] holds.
const EMPTY: (u64, NonNull<Header>) = (0, NonNull::dangling());

impl Way {
    fn clear(&self) {
        self.0.set(EMPTY);
    }
}

/// Ways of the direct-mapped cache in front of the registry.
const WAYS: usize = 4;

/// This thread's registry: every pool it has used, and its node for that pool.
struct Registry {
    /// INVARIANT: each node is `OWNED` by this thread (or `DEAD`, its pool gone) and
    /// stays allocated while its entry exists; ids are unique.
    entries: Vec<(u64, NonNull<Header>)>,
}

impl Registry {
    fn find(&self, pool: u64) -> Option<NonNull<Header>> {
        let (_, node) = self.entries.iter().find(|(id, _)| *id == pool)?;
        remember(pool, *node);
        Some(*node)
    }

    /// The node for `pool`, registering the one `adopt` gives if there is none.
    fn find_or_insert(
        &mut self,
        pool: u64,
        adopt: impl FnOnce() -> NonNull<Header>,
    ) -> NonNull<Header> {
        if let Some(node) = self.find(pool) {
            return node;
        }
        // Drop the entries of pools that are gone, so that a thread that uses many
        // short-lived pools keeps a registry as long as the pools alive.
        self.entries.retain(|&(id, node)| {
            // SAFETY: INVARIANT on `entries`: the node is allocated.
            let dead = unsafe { node.as_ref() }.state.load(Acquire) == DEAD;
            if dead {
                forget(id);
                release(node);
            }
            !dead
        });
        let node = adopt();
        self.entries.push((pool, node));
        remember(pool, node);
        node
    }
}

impl Drop for Registry {
    /// Thread exit: hands every node back to its pool (or frees it, pool gone).
    fn drop(&mut self) {
        // Under loom, a failed model's threads are dropped outside any execution,
        // where loom's types panic: leave the nodes (the model has failed anyway).
        if cfg!(loom) && std::thread::panicking() {
            return;
        }
        // First make the fast path forget every node: a pool used from a later
        // thread-local destructor must not reach a node this thread gave up. (Under
        // loom the cache may already be gone, which is just as good.)
        let _ = CACHE.try_with(|cache| cache.iter().for_each(Way::clear));
        for (_, node) in self.entries.drain(..) {
            release(node);
        }
    }
}

thread_local_const! {
    /// The direct-mapped cache: `CACHE[id % WAYS]` may hold pool `id`'s node.
    /// INVARIANT: a non-empty pair names a node that this thread's registry holds.
    static CACHE: [Way; WAYS] = [const { Way(Cell::new(EMPTY)) }; WAYS];
}

thread_local_const! {
    static REGISTRY: RefCell<Registry> = RefCell::new(Registry { entries: Vec::new() });
}

/// Puts `(pool, node)` in the direct-mapped cache. `node` must be in the registry.
fn remember(pool: u64, node: NonNull<Header>) {
    let _ = CACHE.try_with(|cache| {
        cache[pool as usize % WAYS].0.set((pool, node));
    });
}

/// Removes `pool` from the direct-mapped cache (its entry is leaving the registry).
fn forget(pool: u64) {
    let _ = CACHE.try_with(|cache| {
        let way = &cache[pool as usize % WAYS];
        if way.0.get().0 == pool {
            way.clear();
        }
    });
}

/// A pool's per-thread caches: the list of its nodes and its id in the registries.
pub(crate) struct Caches<T> {
    /// Never reused by another pool, never 0.
    id: u64,
    /// Slots per node (`thread_cache`).
    capacity: usize,
    /// The list of nodes, newest first. INVARIANT: every node in it was made by
    /// `adopt` and stays allocated until `drop` (this struct's) hands it over.
    head: AtomicPtr<Node<T>>,
    /// The pool owns its idle objects (for the drop check).
    _owns: PhantomData<T>,
}

// SAFETY: objects only ever move between threads (`T: Send`), never are shared: a
// node's stack is accessed by its owner alone (see the module docs), and what other
// threads read through `&Caches` (states, counters, list links) is atomic or immutable.
unsafe impl<T: Send> Sync for Caches<T> {}

// SAFETY: as for `Sync`; dropping the `Caches` (which drops idle objects) on another
// thread than the one that returned them is fine for `T: Send`.
unsafe impl<T: Send> Send for Caches<T> {}

impl<T: Send> Caches<T> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            id: unique_id(),
            capacity,
            head: AtomicPtr::new(ptr::null_mut()),
            _owns: PhantomData,
        }
    }

    /// Slots per thread.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// This thread's node if the direct-mapped cache has it (the hot path; see
    /// [`local`](Caches::local) for the rest).
    #[inline(always)]
    pub(crate) fn cached(&self) -> Option<&Node<T>> {
        // Infallible in a normal build (no destructor); under loom, `None` once gone.
        let node = CACHE
            .try_with(|cache| {
                let (pool, node) = cache[self.id as usize % WAYS].0.get();
                (pool == self.id).then_some(node)
            })
            .ok()??;
        // SAFETY: INVARIANT on `CACHE`: a pair with this pool's id (never 0, never
        // reused, so `self`) names a node this thread's registry holds for `self`: a
        // live `Node<T>` that this thread owns, allocated while `self` lives (the
        // pool's drop needs `&mut self`).
        Some(unsafe { node.cast::<Node<T>>().as_ref() })
    }

    /// This thread's cache, made (or adopted) on first use. `None` only while the
    /// thread exits, once its registry is gone: the caller then works with the shared
    /// tier and the pool's own counters.
    pub(crate) fn local(&self) -> Option<&Node<T>> {
        match self.cached() {
            Some(node) => Some(node),
            None => self.register(),
        }
    }

    fn register(&self) -> Option<&Node<T>> {
        let node = REGISTRY
            .try_with(|registry| {
                let mut registry = registry.try_borrow_mut().ok()?;
                Some(registry.find_or_insert(self.id, || self.adopt()))
            })
            .ok()??;
        // SAFETY: as in `cached`: the registry holds `node` for this pool.
        Some(unsafe { node.cast::<Node<T>>().as_ref() })
    }

    /// This thread's cache if it has one (`trim` makes none).
    pub(crate) fn find(&self) -> Option<&Node<T>> {
        if let Some(node) = self.cached() {
            return Some(node);
        }
        let node = REGISTRY
            .try_with(|registry| registry.try_borrow().ok()?.find(self.id))
            .ok()??;
        // SAFETY: as in `cached`: the registry holds `node` for this pool.
        Some(unsafe { node.cast::<Node<T>>().as_ref() })
    }

    /// A node for the calling thread: one a thread left behind at exit, or a new one.
    fn adopt(&self) -> NonNull<Header> {
        for node in self.nodes() {
            // SAFETY: `nodes` yields allocated nodes.
            let state = unsafe { &node.as_ref().header.state };
            if state.load(Relaxed) == FREE
                && state
                    .compare_exchange(FREE, OWNED, Acquire, Relaxed)
                    .is_ok()
            {
                return node.cast();
            }
        }
        let node = Box::into_raw(Box::new(Node::new(self.capacity)));
        let mut head = self.head.load(Relaxed);
        loop {
            // SAFETY: `node` is not published yet: this thread is its only user.
            unsafe { (*node).next = head };
            match self
                .head
                .compare_exchange_weak(head, node, Release, Relaxed)
            {
                Ok(_) => break,
                Err(current) => head = current,
            }
        }
        // SAFETY: `Box::into_raw` never returns null.
        unsafe { NonNull::new_unchecked(node.cast::<Header>()) }
    }

    /// Every node of the pool, in any state, as the pointers `adopt` made (whose
    /// provenance covers the whole node, so a node can be freed through them).
    fn nodes(&self) -> impl Iterator<Item = NonNull<Node<T>>> {
        // INVARIANT on `head`: listed nodes stay allocated while `self` lives, and each
        // was fully written before the `Release` that published it, which this
        // `Acquire` synchronises with (later pushes are RMWs, so they continue the
        // release sequence of the earlier ones). `next` is immutable once published.
        let head = NonNull::new(self.head.load(Acquire));
        // SAFETY: by the above, `node` is allocated and its `next` initialised.
        std::iter::successors(head, |node| NonNull::new(unsafe { node.as_ref().next }))
    }

    /// Every node of the pool, in any state.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Node<T>> {
        // SAFETY: `nodes` yields nodes that stay allocated while `self` lives.
        self.nodes().map(|node| unsafe { node.as_ref() })
    }

    /// Reconciles the caches that exited threads left behind, so that their idle
    /// objects age out like any other.
    pub(crate) fn reconcile_unowned(&self, epoch: u64) {
        for node in self.iter() {
            let state = &node.header.state;
            if state.load(Relaxed) != FREE
                || state
                    .compare_exchange(FREE, OWNED, Acquire, Relaxed)
                    .is_err()
            {
                continue;
            }
            /// Hands the node back even if a `T::drop` panics.
            struct Unclaim<'a>(&'a AtomicUsize);
            impl Drop for Unclaim<'_> {
                fn drop(&mut self) {
                    self.0.store(FREE, Release);
                }
            }
            let _unclaim = Unclaim(state);
            // This thread owns the node until `_unclaim` drops.
            node.reconcile(epoch);
        }
    }
}

impl<T> Drop for Caches<T> {
    fn drop(&mut self) {
        // `&mut self`: no other thread uses the list (a load, for loom's `AtomicPtr`).
        let mut next = NonNull::new(self.head.load(Relaxed));
        // If a `T::drop` panics in `drain`, `next` still names the node being drained
        // and the step runs again on it: every object and every node is still dropped.
        until_done_despite_panics(&mut || {
            let Some(ptr) = next else { return false };
            // SAFETY: INVARIANT on `head`: a listed node is allocated until its state
            // becomes DEAD below, and this reference is not used after that.
            let node = unsafe { ptr.as_ref() };
            // Exclusive access: see "pool drop" in the module docs.
            node.drain();
            next = NonNull::new(node.next);
            match node.header.state.swap(DEAD, AcqRel) {
                // SAFETY: FREE: no registry holds the node and the list is going away,
                // so this is its last user; the stack was just emptied. `ptr` comes
                // from `Box::into_raw` (through the list), so it may free the node.
                FREE => unsafe { Node::<T>::free(ptr.cast()) },
                // The registry that owns it frees it (`release`).
                state => debug_assert_eq!(state, OWNED),
            }
            true
        });
    }
}
