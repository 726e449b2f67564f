//! The per-thread tier: one small LIFO stack of idle objects per (pool, thread), found
//! through a per-thread registry of the crate's own.
//!
//! # Structure
//!
//! - A [`Node`] is one thread's cache for one pool: an array of slots (at most
//!   `thread_cache`, allocated as the thread returns objects: it starts with
//!   [`INITIAL_SLOTS`] and doubles when full) and a front place for one of them (see
//!   *The front place*), the pool's single-writer counters for
//!   that thread, the id of the thread that owns it, and a pointer to its [`Header`]
//!   (the `state` word, allocated apart so that it can outlive the rest). A pool keeps
//!   its nodes in an append-only, lock-free list ([`Caches`]) that `stats`, `trim` and
//!   the pool's drop walk. Nodes are never removed from the list while the pool lives.
//! - Each pool has a **dense index** ([`DenseIndex`]): unique among live pools, reused
//!   smallest first once a pool is dropped. Each thread has a **table** indexed by it:
//!   `table[index]` is `(pool id, node, header)` for the pool that has that index, or
//!   for a dropped pool that had it (whose id, never reused, then matches no live
//!   pool), or empty. The table lives in the thread's registry (a `thread_local!` with
//!   a destructor); its pointer and length are mirrored in a `thread_local!` without
//!   one, so the lookup is two plain TLS loads, a bounds check, and an id compare,
//!   whatever the number of pools, and no two live pools ever share an entry.
//! - A **guard remembers its node** ([`Home`]): its return compares the node's owner
//!   with the thread's id (both never reused, 0 for none) and, if they match, skips the
//!   lookup. A guard dropped on another thread looks that thread's node up instead.
//!
//! ## Why not the `thread_local` crate
//!
//! The per-thread tier used `thread_local::ThreadLocal` before. It indexes the other
//! way round: each thread gets a small id (from a free list, reused after the thread
//! exits) that indexes buckets of growing size in each `ThreadLocal`, so a lookup is
//! O(1) with no hashing. This module keeps that shape, mirrored (the pool's dense
//! index, from a free list, indexes the thread's table), and what it matches of it: an
//! O(1) lookup independent of the number of pools and threads, no collisions, small
//! dense indexes that are reused. What it does that the crate does not:
//!
//! - it works **inside thread-local destructors**: the table is read through a
//!   destructor-free `thread_local!`, and once the registry is gone every operation
//!   falls back to the shared tier instead of touching a dead thread-local (the crate
//!   reaches its thread id through a `thread_local!` with a destructor, which aborted
//!   the process at thread exit, issue 11);
//! - it allocates a node only **for threads that used the pool**, and hands an exited
//!   thread's node, idle objects and all, to the next thread (the crate allocates
//!   buckets by thread id and keeps an exited thread's value in place);
//! - a pool's drop frees every node at once and leaves one header per thread that
//!   used it (the crate's values live as long as the `ThreadLocal`).
//!
//! # Node ownership: `state`
//!
//! | state | meaning | who touches the stack |
//! | --- | --- | --- |
//! | `OWNED` | in one thread's registry (or claimed for a moment by `trim`) | that thread only |
//! | `FREE` | its thread exited; idle objects stay in it | nobody, until claimed |
//! | `DEAD` | its pool is gone, and so is all of the node but its header | nobody; the registry frees the header |
//!
//! Transitions, with the orderings that carry the stack's contents across threads:
//!
//! - **first use on a thread**: claim a `FREE` node with `CAS FREE→OWNED (Acquire)` and
//!   store the thread's id in its `owner`, or allocate an `OWNED` one and push it on
//!   the list (`CAS` on the head, `Release`). So a pool holds at most as many nodes as
//!   threads used it *at once* (counting a `trim` in progress as one).
//! - **thread exit** (the registry's destructor): empty the table mirror and the
//!   thread's id, then for every entry `CAS OWNED→FREE (Release)` on the header; if
//!   that fails the state is `DEAD` (`Acquire`): the pool is gone and the thread frees
//!   the header. No user code runs here and nothing but the header is touched: the
//!   idle objects stay in the `FREE` node for the next thread that adopts it, for
//!   `trim`, or for the pool's drop. The same release runs when a new pool takes over
//!   a dropped pool's index in the table.
//! - **trim**: also sweeps `FREE` nodes, claiming each with `CAS FREE→OWNED (Acquire)`
//!   and releasing it with a `Release` store of `FREE` (the `owner` still names the
//!   exited thread, so no guard's return touches the node meanwhile).
//! - **pool drop**: for each node, drop its idle objects, free the node (slots,
//!   counters and all), then `swap DEAD (AcqRel)` on the header; if the old state was
//!   `FREE` no registry refers to the header and the pool frees it too (the `Acquire`
//!   orders the thread's release before the free), if `OWNED` the thread's registry
//!   frees it, at exit or when a new pool takes the index (the `Release` orders the
//!   pool's work before that free). Freeing another thread's node here is sound
//!   because a thread touches a node (its stack, counters, `owner`) only inside pool
//!   operations, which all ended before the pool's drop began (the borrow or `Arc`
//!   that ended them orders them before it), and only the header at thread exit.
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
//! one counter plus the slot, and `stats` needs no mirror of the length. Per operation
//! (x86-64, the `lto` bench build; the instruction counts per round are in the crate's
//! `BENCHMARKS.md`, section 1):
//!
//! | | loads | stores | branches |
//! | --- | --- | --- | --- |
//! | find the node (get) | pool index, table pointer and length, entry id, pool id, entry node | – | in bounds, id match |
//! | find the node (the guard's return) | guard's node, its owner, thread id | – | owner match |
//! | trim check | pool epoch, node's `seen` | – | epoch moved |
//! | `get` from the front place | `pushes`, `removed`, front position, the object | `removed`, front position | empty, front holds the top |
//! | `get` from a slot | as above, plus slot ptr (and once per batch, the front's object put back in its slot) | as above | as above, front empty |
//! | return to the front place | `pushes`, `removed`, slots allocated, front position | object, front position, `pushes` | full, front empty |
//! | return to a slot | as above, plus slot ptr | object + epoch tag, `pushes` | as above |
//!
//! ## The front place
//!
//! Everything a get and a return of one object at a time touch in the node sits in its
//! first cache line: the owner, the two counters, the reconciled epoch, the slots
//! allocated, and a *front place* that holds one object of the stack (a `T` of up to
//! 24 bytes, 8-aligned: a `Vec`, a `String`; a larger `T` has none) with its position
//! in the stack, whose slot is then a hole. A return takes the front place when it is
//! empty; a get takes it when it holds the top, and when it holds an object further
//! down puts that one back in its slot first, so that the next return finds it empty.
//! A thread that takes and returns one object at a time keeps it there, and a round
//! touches the node's first line and not the slot's (with 512 pools used in turn, one
//! line fewer of the five a round reads, see `BENCHMARKS.md`, section 1); a thread
//! that holds a batch uses it for one object of the batch and moves one object per
//! batch, never one per return (a front place that always held the top moved the
//! previous top down on every return, chaining each return of a batch to the one
//! before through the store buffer: holding 8, 16% slower). The stack stays last in,
//! first out. The front's object is tagged with the stack's reconciled epoch (`seen`
//! changes only in a sweep, which puts the object back in its slot first).
//!
//! # Trim epochs
//!
//! Every idle object is tagged with the pool's trim epoch at the moment it was
//! returned. `Pool::trim` advances the epoch; the owning thread notices on its next
//! access (one relaxed load and a compare) and frees every object whose tag is two or
//! more epochs old, i.e. that sat idle through two consecutive trims, in one pass
//! ([`Node::free_stale`]: linear in the stack, and no nested sweep when a `T::drop`
//! returns an object to the same pool). The stack is
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
    AtomicPtr, AtomicU64, AtomicUsize, DenseIndex, LeakTrack,
    Ordering::{AcqRel, Acquire, Relaxed, Release},
    UnsafeCell, thread_local_const, unique_id,
};

/// Slots a node starts with (fewer if `thread_cache` is smaller): the default
/// `thread_cache`, so that a default pool never grows a stack.
const INITIAL_SLOTS: usize = crate::pool::DEFAULT_THREAD_CACHE;

/// What [`Node::ready`] found: the stack's `removed` counter and its length (not 0).
#[derive(Clone, Copy)]
pub(crate) struct Top {
    removed: u64,
    len: usize,
}

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
pub(crate) unsafe fn read_by_words<T>(src: *const T) -> T {
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

    /// Adds `n`. Only the node's owner may call this.
    fn bump_by(&self, n: u64) {
        self.set(self.get().wrapping_add(n));
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

/// The part of a node that a registry entry hands back at thread exit: allocated on
/// its own, so that it is all that stays on a thread once the pool is gone (the pool
/// frees the rest of every node in its drop).
struct Header {
    /// `FREE`, `OWNED` or `DEAD`: see the module docs.
    state: AtomicUsize,
    /// Nothing (zero-sized): each side reads it right before its transition and the
    /// free writes it, so that loom checks that whoever frees the header does so
    /// after the other side's last use of it.
    touch: UnsafeCell<()>,
    _track: LeakTrack,
}

impl Header {
    /// Frees a header made by `adopt`.
    ///
    /// # Safety
    ///
    /// `header` comes from `Box::leak` in `adopt`, nobody else refers to it any more,
    /// and it is never used again.
    unsafe fn free(header: NonNull<Header>) {
        // SAFETY: by the contract, this is the last user of the header.
        unsafe { header.as_ref() }.touch.with_mut(|_| ());
        // SAFETY: by the contract, the `Box` it came from, freed once.
        drop(unsafe { Box::from_raw(header.as_ptr()) });
    }
}

/// `Stack::front_at` when the front place is empty.
const NO_FRONT: u32 = u32::MAX;

/// Room for the front place's object: 24 bytes, 8-aligned (a `Vec` or a `String`, or
/// anything smaller). A larger or more aligned `T` has no front place, so that a node
/// stays small whatever `T` is.
#[repr(C, align(8))]
struct FrontBuf(MaybeUninit<[u8; 24]>);

/// Whether a `T` fits the front place.
const fn front_fits<T>() -> bool {
    size_of::<T>() <= size_of::<FrontBuf>() && align_of::<T>() <= align_of::<FrontBuf>()
}

// `repr(C)`: `seen`, `front_at`, `allocated` and `front` first, so that with the node's
// owner and counters they fill its first cache line.
#[repr(C)]
struct Stack<T> {
    /// The last trim epoch this stack was reconciled with.
    seen: u64,
    /// The position in the stack whose object sits in `front` rather than in its slot
    /// (positions are below `MAX_THREAD_CACHE`, 2^16), or [`NO_FRONT`].
    ///
    /// A return takes the front place when it is empty, and goes to its slot as usual
    /// when it is not, so that a batch of returns writes each object once (moving the
    /// front's object down on each return of a batch chained every return to the one
    /// before through the store buffer: holding 8, 16% slower). A get takes the front
    /// place when it holds the top; when it holds an object further down, the get puts
    /// that one back in its slot ([`Stack::flush`]: once per batch of gets), so that
    /// the next return finds the front place empty. So a thread that takes and returns
    /// one object at a time keeps it in the front place, and one that holds a batch
    /// uses it for one object of the batch.
    front_at: u32,
    /// `slots.len()`, kept here (at most `MAX_THREAD_CACHE`) so that a return finds
    /// the room it checks in the node's first line.
    allocated: u32,
    /// The front place: one object of the stack, in the node's first cache line, so
    /// that a get and a return on a lone object touch that line and not a slot's.
    /// INVARIANT: holds a `T` iff `front_at != NO_FRONT` (never unless
    /// [`front_fits::<T>`]); then `front_at < len` and
    /// `slots[front_at]` is a hole (uninitialised). Its epoch tag is `seen`: it was
    /// returned with the epoch the stack was reconciled with, and `seen` changes only
    /// in a sweep, which puts the object back in its slot first.
    front: FrontBuf,
    /// INVARIANT: `slots[..len]` are initialised (but for the hole at `front_at`),
    /// `len = pushes - removed <= slots.len() <= capacity` (the node's counters),
    /// oldest first. Starts with at most [`INITIAL_SLOTS`] and grows (see
    /// [`Node::push`]) only as objects come back, so a large `thread_cache` costs
    /// memory only if the thread really holds that many.
    slots: Vec<MaybeUninit<Slot<T>>>,
}

impl<T> Stack<T> {
    /// The front place as a `T`. Only dereferenced when [`front_fits::<T>`].
    #[inline(always)]
    fn front(&mut self) -> *mut T {
        self.front.0.as_mut_ptr().cast()
    }

    /// Puts the front place's object back in its slot (the hole), emptying the front.
    #[inline(always)]
    fn flush(&mut self) {
        if self.front_at == NO_FRONT {
            return;
        }
        let at = self.front_at as usize;
        debug_assert!(at < self.slots.len(), "flush: {at}");
        // SAFETY: INVARIANT on `front`: it is initialised, and `slots[front_at]` is an
        // uninitialised slot in bounds; emptying the front below moves the object
        // (read once) into that slot, tagged with `seen` as the invariant says.
        unsafe {
            let value = self.front().read();
            self.slots
                .as_mut_ptr()
                .add(at)
                .cast::<Slot<T>>()
                .write(Slot {
                    value,
                    epoch: self.seen,
                });
        }
        self.front_at = NO_FRONT;
    }
}

/// One thread's cache for one pool.
// `repr(C)`, hot fields first: everything a get and a return of one object at a time
// touch (owner, counters, reconciled epoch, slots allocated, the front place) sits in
// the node's first cache line (a unit test holds them there).
// Aligned to two cache lines so that two threads' hot counters never share one
// (adjacent-line prefetch).
#[repr(C, align(128))]
pub(crate) struct Node<T> {
    /// The id ([`thread_id`]) of the thread that adopted the node last. Written by the
    /// adopting thread, read by any thread (a guard's return asks whether it is its
    /// own). Ids are never reused, so only the owner ever reads its own id here.
    owner: AtomicU64,
    /// Objects that left the stack: gets it served, and objects trim freed from it.
    removed: Counter,
    /// Returns kept in the stack.
    pushes: Counter,
    /// INVARIANT: only the thread that owns this node (see the module docs) accesses
    /// `stack`, and never while user code (hook, create, `T::drop`) runs.
    stack: UnsafeCell<Stack<T>>,
    /// Allocated by `adopt` with the node; freed by the pool's drop or by the last
    /// registry that held the node (see the module docs).
    header: NonNull<Header>,
    /// The next node in the pool's list; written once, before the node is published.
    next: *mut Node<T>,
    /// The most slots the stack may grow to (`thread_cache`), readable from any thread.
    capacity: usize,
    pub(crate) counters: Counters,
    _track: LeakTrack,
}

impl<T> Node<T> {
    fn new(capacity: usize, header: NonNull<Header>, owner: u64) -> Self {
        Self {
            header,
            owner: AtomicU64::new(owner),
            next: ptr::null_mut(),
            removed: Counter::default(),
            pushes: Counter::default(),
            capacity,
            counters: Counters::default(),
            stack: UnsafeCell::new(Stack {
                front_at: NO_FRONT,
                allocated: capacity.min(INITIAL_SLOTS) as u32,
                front: FrontBuf(MaybeUninit::uninit()),
                slots: (0..capacity.min(INITIAL_SLOTS))
                    .map(|_| MaybeUninit::uninit())
                    .collect(),
                seen: 0,
            }),
            _track: LeakTrack::new(),
        }
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

    /// Gets this node's thread made from the pool while it owned the node (stack
    /// pops, shared-tier hits and creations; a trim's removals are not gets). Owning
    /// thread only for an exact count; a single-writer read, no shared write.
    #[inline]
    pub(crate) fn gets(&self) -> u64 {
        let c = &self.counters;
        self.removed
            .get()
            .wrapping_sub(c.trimmed.get())
            .wrapping_add(c.hits.get())
            .wrapping_add(c.misses.get())
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

    /// `Some` when a get can take the top of the stack at once (it is not empty and
    /// no trim happened since it was reconciled): what [`take_ptr`](Node::take_ptr) needs.
    /// Owning thread only.
    #[inline(always)]
    pub(crate) fn ready(&self, epoch: u64) -> Option<Top> {
        let (_, removed, len) = self.counts();
        (len != 0 && self.is_reconciled(epoch)).then_some(Top { removed, len })
    }

    /// Takes the top of the stack that [`ready`](Node::ready) found: marks its slot
    /// free and returns a pointer to the object, still in that slot, for the caller to
    /// move out at once (with [`read_by_words`]).
    ///
    /// A pointer rather than a `T`: the caller merges it with the slow path's (an
    /// object in a scratch place), so that both paths meet on a pointer in a register
    /// and the object is read once, word by word, straight into the guard. Merging
    /// the objects themselves made the compiler assemble the guard in a stack
    /// temporary and copy it 16 bytes at a time, right after writing it 8 bytes at a
    /// time: two store-forwarding stalls per `get` (see `Pool::take_with`).
    ///
    /// Owning thread only, with nothing else done to the stack since `ready`. The
    /// object must be moved out before the stack is used again (a return would
    /// overwrite the slot) and before any user code runs.
    #[inline(always)]
    pub(crate) fn take_ptr(&self, top: Top) -> *const T {
        let value = self.with_stack(|stack| {
            let pos = top.len - 1;
            if stack.front_at as usize == pos {
                stack.front_at = NO_FRONT;
                // INVARIANT on `front`: it held the top, now marked taken.
                return stack.front().cast_const();
            }
            // The front place is empty, or holds an object further down: put that one
            // back in its slot, so that the next return can use the front place.
            stack.flush();
            debug_assert!(
                0 < top.len && top.len <= stack.slots.len(),
                "take_ptr: len {}",
                top.len
            );
            // SAFETY: `0 < len <= slots.len()` (`ready` read them, nothing changed
            // since), so the slot is in bounds, and it is no hole (the front is
            // empty); a raw pointer to its `value` field, no reference made.
            unsafe { &raw const (*stack.slots.as_ptr().add(pos).cast::<Slot<T>>()).value }
        });
        self.removed.set(top.removed.wrapping_add(1));
        value
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
            debug_assert!(0 < len && len <= stack.slots.len(), "take_top: len {len}");
            if stack.front_at as usize == len - 1 {
                stack.front_at = NO_FRONT;
                // SAFETY: INVARIANT on `front`: initialised, the top; marked taken
                // above, so it is read exactly once.
                return unsafe { read_by_words(stack.front()) };
            }
            // SAFETY: `0 < len <= slots.len()` and `slots[len - 1]` is initialised
            // (INVARIANT on `slots`: the hole, if any, is below the top); `value` is a
            // field of that `Slot<T>`, so it is aligned for `T`; bumping `removed`
            // below marks the slot uninitialised again, so it is read exactly once.
            unsafe {
                read_by_words(
                    &raw const (*stack.slots.as_ptr().add(len - 1).cast::<Slot<T>>()).value,
                )
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
                stack.allocated = grown as u32;
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
            debug_assert!(len < stack.slots.len(), "put_top: len {len}");
            debug_assert_eq!(epoch, stack.seen);
            if front_fits::<T>() && stack.front_at == NO_FRONT {
                // SAFETY: `T` fits the front place (size and alignment), which is
                // empty (INVARIANT on `front`), so writing it leaks nothing; `len <
                // slots.len()`, and `slots[len]` (uninitialised) becomes the hole.
                unsafe { stack.front().write(value) };
                stack.front_at = len as u32;
                return;
            }
            // SAFETY: `len < slots.len()` (the caller checked it). The slot at `len` is
            // uninitialised (INVARIANT on `slots`), so writing it leaks nothing; bumping
            // `pushes` below marks it initialised.
            unsafe {
                stack
                    .slots
                    .as_mut_ptr()
                    .add(len)
                    .cast::<Slot<T>>()
                    .write(Slot { value, epoch })
            };
        });
        self.pushes.set(pushes.wrapping_add(1));
    }

    /// Slots allocated so far (`<= capacity`). Owning thread only.
    #[inline(always)]
    fn slots(&self) -> usize {
        self.with_stack(|stack| stack.allocated as usize)
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

    /// Frees every stale object in one pass: they form the bottom of the stack (tags
    /// never decrease upwards), so they are moved out together, the young ones above
    /// move down once, and the stack is marked reconciled before any of them is
    /// dropped. `T::drop` is user code and may use this pool, this very stack
    /// included: it runs after the borrow ended, on a stack that is consistent and
    /// reconciled, so a return from it is an ordinary return (no nested sweep).
    #[cold]
    fn free_stale(&self, epoch: u64) {
        let (_, removed, len) = self.counts();
        let stale = self.with_stack(|stack| {
            // The slots alone, contiguous, with the front's object tagged `seen`.
            stack.flush();
            // Never backwards: a `T::drop` run by an earlier sweep may have trimmed,
            // and reconciled the stack with a newer epoch, meanwhile.
            stack.seen = stack.seen.max(epoch);
            debug_assert!(len <= stack.slots.len(), "free_stale: len {len}");
            let base = stack.slots.as_mut_ptr().cast::<Slot<T>>();
            let count = (0..len)
                // SAFETY: `i < len` and `slots[..len]` are initialised (INVARIANT on
                // `slots`); `MaybeUninit<Slot<T>>` has `Slot<T>`'s layout.
                .take_while(|&i| unsafe { &*base.add(i) }.is_stale(epoch))
                .count();
            let mut stale = Vec::with_capacity(count);
            // SAFETY: `count <= len <= slots.len()`. The `count` initialised slots at
            // the bottom are moved into `stale`'s fresh buffer (no overlap), then the
            // `len - count` above them move down (`ptr::copy` handles the overlap).
            // Bumping `removed` by `count` below makes `slots[..len - count]` the
            // initialised prefix again, so nothing is read twice or leaked.
            unsafe {
                ptr::copy_nonoverlapping(base, stale.as_mut_ptr(), count);
                stale.set_len(count);
                ptr::copy(base.add(count), base, len - count);
            }
            stale
        });
        if stale.is_empty() {
            return;
        }
        self.counters.trimmed.bump_by(stale.len() as u64);
        self.removed.set(removed.wrapping_add(stale.len() as u64));
        // User code, no borrow held. If one `T::drop` panics, the `Vec`'s drop still
        // drops the others before the panic goes on.
        drop(stale);
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

/// Releases a node that this thread's registry held (thread exit, or an entry of a
/// dropped pool whose place a new pool takes): touches the header only, since the
/// pool's drop frees the rest of the node.
fn release(header: NonNull<Header>) {
    // SAFETY: a registry entry keeps its header alive: nobody frees a header in the
    // OWNED state but the registry that holds it (this one).
    let header_ref = unsafe { header.as_ref() };
    header_ref.touch.with(|_| ());
    match header_ref
        .state
        .compare_exchange(OWNED, FREE, Release, Acquire)
    {
        // The pool lives on and may hand the node (and its idle objects) to another
        // thread; this thread no longer touches it.
        Ok(_) => {}
        Err(state) => {
            debug_assert_eq!(state, DEAD);
            // SAFETY: DEAD means the pool is gone and freed the rest of the node before
            // its `swap` (which the `Acquire` above synchronises with), leaving the
            // header to this registry, its last holder. `header` comes from `adopt`;
            // the entry is dropped right after.
            unsafe { Header::free(header) };
        }
    }
}

/// One pool's place in a thread's table: the pool's never-reused id (0: empty), the
/// thread's node for it, and that node's header.
#[derive(Clone, Copy)]
struct Entry {
    id: u64,
    /// A `Node<T>` for the pool's `T`; dangling when empty (non-null, so that the
    /// compiler knows a hit is non-null).
    node: NonNull<()>,
    header: Option<NonNull<Header>>,
}

const EMPTY: Entry = Entry {
    id: 0,
    node: NonNull::dangling(),
    header: None,
};

/// This thread's registry: its node for every pool it has used, at the pool's index.
struct Registry {
    /// The table `TABLE` points into: `entries[index]` is the entry of the pool that
    /// has `index`, or of a dropped pool that had it, or empty. Only ever replaced as a
    /// whole (to grow it), never borrowed mutably, so the pointer in `TABLE` stays
    /// valid until the next replacement.
    /// INVARIANT: each entry's node is `OWNED` by this thread (or `DEAD`, its pool
    /// gone, and then only the header is still allocated); ids are unique.
    entries: Vec<Cell<Entry>>,
}

impl Registry {
    /// The node for the pool with `index` and `id`, registering the one `adopt` gives
    /// if there is none.
    fn find_or_insert(
        &mut self,
        index: usize,
        id: u64,
        adopt: impl FnOnce(u64) -> (NonNull<()>, NonNull<Header>),
    ) -> NonNull<()> {
        if index >= self.entries.len() {
            // Double (so that n pools cost O(n) copies), at least to `index`.
            let len = (index + 1).max(self.entries.len() * 2).max(4);
            let mut grown: Vec<Cell<Entry>> = Vec::with_capacity(len);
            grown.extend(self.entries.iter().map(|entry| Cell::new(entry.get())));
            grown.resize_with(len, || Cell::new(EMPTY));
            let _ = TABLE.try_with(|table| table.set((grown.as_ptr(), grown.len())));
            self.entries = grown;
        }
        let entry = &self.entries[index];
        let old = entry.get();
        if old.id == id {
            return old.node;
        }
        // A dropped pool's entry (indexes of live pools are unique): its node was freed
        // by the pool's drop, its header is this registry's to free.
        if let Some(header) = old.header {
            entry.set(EMPTY);
            release(header);
        }
        let (node, header) = adopt(thread_id());
        entry.set(Entry {
            id,
            node,
            header: Some(header),
        });
        node
    }
}

impl Drop for Registry {
    /// Thread exit: hands every node back to its pool (or frees its header, pool gone).
    fn drop(&mut self) {
        // Under loom, a failed model's threads are dropped outside any execution,
        // where loom's types panic: leave the nodes (the model has failed anyway).
        if cfg!(loom) && std::thread::panicking() {
            return;
        }
        // First make the fast paths forget every node: a pool used from a later
        // thread-local destructor must not reach a node this thread gave up, neither
        // through the table nor through a guard that remembers its node. (Under loom
        // the thread-locals may already be gone, which is just as good.)
        let _ = TABLE.try_with(|table| table.set(NO_TABLE));
        let _ = THREAD.try_with(|thread| thread.set(0));
        for entry in &self.entries {
            if let Some(header) = entry.replace(EMPTY).header {
                release(header);
            }
        }
    }
}

/// The table of a thread that has none (or no longer has one).
const NO_TABLE: (*const Cell<Entry>, usize) = (NonNull::dangling().as_ptr(), 0);

thread_local_const! {
    /// The registry's table as the hot path reads it: pointer and length. A
    /// thread-local without a destructor, so reading it is a plain TLS load with no
    /// lazy-init or liveness check.
    /// INVARIANT: `(ptr, len)` is `NO_TABLE` or this thread's `Registry::entries`.
    static TABLE: Cell<(*const Cell<Entry>, usize)> = Cell::new(NO_TABLE);
}

thread_local_const! {
    /// This thread's id for `Node::owner`: 0 until its registry is made and again once
    /// the registry is gone.
    static THREAD: Cell<u64> = Cell::new(0);
}

thread_local_const! {
    static REGISTRY: RefCell<Registry> = RefCell::new(Registry { entries: Vec::new() });
}

/// This thread's id for `Node::owner`, assigned on first use. Called with the registry
/// borrowed, so never after the registry is gone.
fn thread_id() -> u64 {
    THREAD
        .try_with(|thread| {
            if thread.get() == 0 {
                thread.set(unique_id());
            }
            thread.get()
        })
        .unwrap_or(0)
}

/// The node a guard's object came from: a hint that lets its return skip the lookup
/// when it is dropped on the thread that owns that node.
pub(crate) struct Home<T>(Option<NonNull<Node<T>>>);

// SAFETY: a `Home` is only dereferenced by `Caches::here`, which reads the node's
// atomic `owner` and uses the stack only on the thread that owns the node.
unsafe impl<T: Send> Send for Home<T> {}
// SAFETY: as for `Send`; a `&Home` gives access to nothing.
unsafe impl<T: Send> Sync for Home<T> {}

// A `Home` is a hint into the pool, which is unwind-safe for an unwind-safe `T` (see
// `Pool`'s docs: a panic leaves every node consistent).
impl<T: std::panic::UnwindSafe> std::panic::UnwindSafe for Home<T> {}
impl<T: std::panic::UnwindSafe> std::panic::RefUnwindSafe for Home<T> {}

impl<T> Home<T> {
    /// No node (the caller then looks the thread's node up).
    pub(crate) const NONE: Self = Home(None);

    /// `node`, remembered.
    pub(crate) fn of(node: Option<&Node<T>>) -> Self {
        Home(node.map(NonNull::from))
    }
}

/// A pool's per-thread caches: the list of its nodes and its place in the registries.
// `repr(C)`: `id` and `index`, which every `get` reads, first, so that they share a
// cache line with the rest of what the pool's hot path reads (see `Pool`).
#[repr(C)]
pub(crate) struct Caches<T> {
    /// Never reused by another pool, never 0.
    pub(crate) id: u64,
    /// The pool's place in every thread's table: unique among live pools, reused
    /// once the pool is dropped (so tables stay as long as the most pools alive at
    /// once), held until this struct's drop.
    pub(crate) index: DenseIndex,
    /// The list of nodes, newest first. INVARIANT: every node in it was made by
    /// `adopt` and stays allocated until `drop` (this struct's) frees it.
    head: AtomicPtr<Node<T>>,
    /// Slots per node (`thread_cache`).
    capacity: usize,
    /// The pool owns its idle objects (for the drop check).
    _owns: PhantomData<T>,
}

// SAFETY: objects only ever move between threads (`T: Send`), never are shared: a
// node's stack is accessed by its owner alone (see the module docs), and what other
// threads read through `&Caches` (states, owners, counters, list links) is atomic or
// immutable.
unsafe impl<T: Send> Sync for Caches<T> {}

// SAFETY: as for `Sync`; dropping the `Caches` (which drops idle objects) on another
// thread than the one that returned them is fine for `T: Send`.
unsafe impl<T: Send> Send for Caches<T> {}

impl<T: Send> Caches<T> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            id: unique_id(),
            index: DenseIndex::new(),
            capacity,
            head: AtomicPtr::new(ptr::null_mut()),
            _owns: PhantomData,
        }
    }

    /// Slots per thread.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// This thread's node if it has one (the hot path; see [`local`](Caches::local)
    /// to make one): the entry at the pool's index in the thread's table, if it is this
    /// pool's. A bounds check and an id compare, whatever the number of pools.
    #[inline(always)]
    pub(crate) fn cached(&self) -> Option<&Node<T>> {
        // Infallible in a normal build (no destructor); under loom, `None` once gone.
        let (table, len) = TABLE.try_with(Cell::get).ok()?;
        let index = self.index.get();
        if index >= len {
            return None;
        }
        debug_assert!(index < len, "table index {index} out of bounds ({len})");
        // SAFETY: INVARIANT on `TABLE`: `table[..len]` are the live entries of this
        // thread's registry, and `index < len`. Nothing borrows them mutably (the
        // registry only replaces the whole table).
        let entry = unsafe { (*table.add(index)).get() };
        if entry.id != self.id {
            return None;
        }
        // SAFETY: an entry with this pool's id (never 0, never reused, so `self`)
        // names a node this thread's registry holds for `self`: a live `Node<T>` that
        // this thread owns, allocated while `self` lives (the pool's drop needs `&mut
        // self`).
        Some(unsafe { entry.node.cast::<Node<T>>().as_ref() })
    }

    /// This thread's node, found through `home` (a guard's) if this thread owns that
    /// node, otherwise through the table: one TLS load and one relaxed load when the
    /// guard comes back to the thread that took it.
    ///
    /// # Safety
    ///
    /// `home` is `Home::NONE` or was made from a node of `self`.
    #[inline(always)]
    pub(crate) unsafe fn here(&self, home: &Home<T>) -> Option<&Node<T>> {
        if let Some(node) = home.0 {
            // SAFETY: by the contract, a node of `self`, which stays allocated while
            // `self` lives.
            let node = unsafe { node.as_ref() };
            let me = THREAD.try_with(Cell::get).unwrap_or(0);
            // Only the thread that adopted the node last wrote its id there, and ids
            // are never reused: equal means this thread owns the node (its own write,
            // which it sees). 0 (no registry) never matches an owner.
            if node.owner.load(Relaxed) == me {
                return Some(node);
            }
        }
        self.cached()
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

    #[cold]
    fn register(&self) -> Option<&Node<T>> {
        let node = REGISTRY
            .try_with(|registry| {
                let mut registry = registry.try_borrow_mut().ok()?;
                Some(registry.find_or_insert(self.index.get(), self.id, |owner| self.adopt(owner)))
            })
            .ok()??;
        // SAFETY: as in `cached`: the registry holds `node` for this pool.
        Some(unsafe { node.cast::<Node<T>>().as_ref() })
    }

    /// This thread's cache if it has one (`trim` makes none).
    pub(crate) fn find(&self) -> Option<&Node<T>> {
        self.cached()
    }

    /// A node for the calling thread, whose id is `owner`: one a thread left behind
    /// at exit, or a new one.
    fn adopt(&self, owner: u64) -> (NonNull<()>, NonNull<Header>) {
        for node in self.iter() {
            // SAFETY: a listed node's header is allocated while the node is.
            let state = &unsafe { node.header.as_ref() }.state;
            if state.load(Relaxed) == FREE
                && state
                    .compare_exchange(FREE, OWNED, Acquire, Relaxed)
                    .is_ok()
            {
                node.owner.store(owner, Relaxed);
                return (NonNull::from(node).cast(), node.header);
            }
        }
        let header = NonNull::from(Box::leak(Box::new(Header {
            state: AtomicUsize::new(OWNED),
            touch: UnsafeCell::new(()),
            _track: LeakTrack::new(),
        })));
        let node = Box::into_raw(Box::new(Node::new(self.capacity, header, owner)));
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
        (unsafe { NonNull::new_unchecked(node.cast()) }, header)
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
            // SAFETY: a listed node's header is allocated while the node is.
            let state = &unsafe { node.header.as_ref() }.state;
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
            // This thread owns the node until `_unclaim` drops. (Its `owner` still
            // names the thread that exited, so no guard's return touches it.)
            node.reconcile(epoch);
        }
    }
}

impl<T> Drop for Caches<T> {
    /// Frees every node (objects, slots and counters), so that what stays on a thread
    /// that used the pool is the node's header alone, until that thread's registry
    /// frees it.
    fn drop(&mut self) {
        // `&mut self`: no other thread uses the list (a load, for loom's `AtomicPtr`).
        let mut next = NonNull::new(self.head.load(Relaxed));
        // If a `T::drop` panics in `drain`, `next` still names the node being drained
        // and the step runs again on it: every object and every node is still dropped.
        until_done_despite_panics(&mut || {
            let Some(ptr) = next else { return false };
            // SAFETY: INVARIANT on `head`: a listed node is allocated until it is
            // freed below, and this reference is not used after that.
            let node = unsafe { ptr.as_ref() };
            // Exclusive access: see "pool drop" in the module docs.
            node.drain();
            next = NonNull::new(node.next);
            let header = node.header;
            // SAFETY: `ptr` comes from `Box::into_raw` in `adopt` (through the list).
            // Nobody else uses the node any more: other threads touched it only inside
            // pool operations, all ordered before this drop, and a registry entry
            // touches only the header. The stack was just emptied.
            drop(unsafe { Box::from_raw(ptr.as_ptr()) });
            // SAFETY: the header outlives the node: freed below or by its registry.
            let header_ref = unsafe { header.as_ref() };
            header_ref.touch.with(|_| ());
            match header_ref.state.swap(DEAD, AcqRel) {
                // SAFETY: FREE: no registry holds the header (the `Acquire` orders the
                // last one's release before this free) and the list is going away, so
                // this is its last user. It comes from `adopt`.
                FREE => unsafe { Header::free(header) },
                // The registry that holds it frees it (`release`; the `Release` orders
                // everything above before that free).
                state => debug_assert_eq!(state, OWNED),
            }
            true
        });
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::{Header, LeakTrack, Node, OWNED};
    use crate::sync::{AtomicUsize, UnsafeCell};
    use std::ptr::NonNull;

    /// Everything a get and a return of one object at a time touch in the node (its
    /// owner, the two counters, the reconciled epoch, the front place and its
    /// position, the slots allocated) sits in its first cache line, for a `Vec`: with
    /// many pools used in turn, each costs one line of the node and none of the slots.
    #[test]
    fn one_object_at_a_time_touches_one_line_of_the_node() {
        let mut header = Header {
            state: AtomicUsize::new(OWNED),
            touch: UnsafeCell::new(()),
            _track: LeakTrack::new(),
        };
        let node = Node::<Vec<u8>>::new(8, NonNull::from(&mut header), 1);
        let base = (&raw const node).addr();
        assert_eq!(base % 128, 0);
        let end = |addr: usize, size: usize| addr + size - base;
        let mut ends = vec![
            end((&raw const node.owner).addr(), 8),
            end((&raw const node.removed).addr(), 8),
            end((&raw const node.pushes).addr(), 8),
        ];
        node.with_stack(|stack| {
            ends.push(end((&raw const stack.seen).addr(), 8));
            ends.push(end((&raw const stack.front_at).addr(), 4));
            ends.push(end((&raw const stack.allocated).addr(), 4));
            ends.push(end((&raw const stack.front).addr(), size_of::<Vec<u8>>()));
        });
        assert!(
            ends.iter().all(|&end| end <= 64),
            "hot fields end at {ends:?}"
        );
    }
}
