//! The shared tier: a bounded, lock-free MPMC queue whose memory follows what it holds.
//!
//! # Why not an `ArrayQueue` alone
//!
//! `crossbeam_queue::ArrayQueue` is bounded and lock-free, but allocates all its slots
//! when it is made: a pool built with `max_idle(1 << 22)` and never used held some
//! 160 MB. Users of every pool crate read such a bound as a ceiling, not as a
//! reservation.
//!
//! # What instead
//!
//! An unbounded `crossbeam_queue::SegQueue` (lock-free; it allocates blocks of
//! [`BLOCK_CAP`] slots as they fill and frees each block once all its slots were used
//! and emptied) and an atomic count of *reserved* places, which bounds it:
//!
//! - `push` reserves a place first, with a compare-and-swap that never takes the count
//!   past the bound (a full tier refuses without touching the queue), then pushes;
//! - `pop` pops first, then releases the place.
//!
//! So the queue never holds more objects than places are reserved, and never more than
//! the bound. A push may be refused while a pop is between its two steps (the place is
//! not released yet): a tier that was full a moment ago refuses, which a bounded queue
//! may do. A compare-and-swap rather than a `fetch_add`, so that pushes racing at a
//! full tier never overshoot and refuse each other a place that was free.
//!
//! # Memory
//!
//! A tier that was never pushed to holds nothing. Once used, a `SegQueue` keeps the
//! block its tail is in, even when empty (it frees a block only after all of its slots
//! were used), so a tier in use holds at least one block: [`BLOCK_CAP`] slots of a `T`
//! and two words. For a tier bounded to [`BLOCK_CAP`] places or fewer that would be
//! more than the bound needs (`max_idle(1)` of a 4 KiB `T` would hold 31 slots, some
//! 127 KB, for one object), so such a tier is an `ArrayQueue` of exactly `capacity`
//! slots instead, made with the pool: never more than one block, and the bound is
//! exact. Either way a tier holds at most what its bound needs, rounded up to a block.
//!
//! The count needs no ordering beyond `Relaxed`: it only bounds the number of
//! objects, and coherence of that one location orders every reservation and release;
//! the objects themselves are handed over by the queue, which synchronises them. The
//! protocol is modelled in `tests/loom.rs`; a reservation split into a check and an
//! add (which lets two pushers into one free place) fails that model.
//!
//! The alternative, an `ArrayQueue` made on first overflow and replaced by larger
//! ones as it fills, needs a hand-over between queues that concurrent pushers and
//! poppers can see half-done (a second protocol to get right); `SegQueue` grows and
//! shrinks block by block with nothing of ours on top but one counter.
//!
//! Lock-free as `ArrayQueue` is: no locks, and a push or pop may only spin for a
//! moment while another thread finishes its step at the same slot, or installs the
//! next block.
//!
//! The cost: in a large tier, a push that opens a block allocates it (one allocation
//! per [`BLOCK_CAP`] objects that pass through the tier), and a push or pop does one more atomic operation than
//! `ArrayQueue`'s. The shared tier is off the hot path (the per-thread caches serve a
//! thread's own gets and returns), so neither shows in a get and return on one thread.

use crate::sync::{ArrayQueue, AtomicUsize, Ordering::Relaxed, SegQueue};

/// Slots in one of `SegQueue`'s blocks (`crossbeam-queue` 0.3's `BLOCK_CAP`, not
/// exported by it; only the memory rule above depends on it, not correctness).
pub(crate) const BLOCK_CAP: usize = 31;

/// A bounded lock-free MPMC queue that allocates only for what it holds (see the
/// module docs).
pub(crate) struct Shared<T> {
    items: Items<T>,
    /// Places reserved: objects in `items`, plus pushes between their reservation and
    /// their push. INVARIANT: `items.len() <= reserved <= capacity` at all times.
    reserved: AtomicUsize,
    capacity: usize,
    /// Under loom only: reserve with the weakened protocol that `tests/loom.rs` shows
    /// to fail.
    #[cfg(loom)]
    pub(crate) weak: bool,
}

impl<T> Shared<T> {
    /// An empty tier of `capacity` places. Allocates nothing, unless `capacity` is at
    /// most [`BLOCK_CAP`]: then its `capacity` slots (see the module docs).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            items: if capacity <= BLOCK_CAP {
                Items::Fixed(ArrayQueue::new(capacity.max(1)))
            } else {
                Items::Blocks(SegQueue::new())
            },
            reserved: AtomicUsize::new(0),
            capacity,
            #[cfg(loom)]
            weak: false,
        }
    }

    /// Under loom only: a tier of `capacity` places over a `SegQueue` whatever its
    /// size, so the models check the bound where the queue itself has none.
    #[cfg(loom)]
    pub(crate) fn new_blocks(capacity: usize) -> Self {
        Self {
            items: Items::Blocks(SegQueue::new()),
            ..Self::new(capacity)
        }
    }

    /// Adds `value` if the tier has room, or hands it back.
    pub(crate) fn push(&self, value: T) -> Result<(), T> {
        if !self.reserve() {
            return Err(value);
        }
        match &self.items {
            Items::Blocks(queue) => queue.push(value),
            // The reservation above leaves a free slot: the queue never holds more than
            // places are reserved, and `capacity` slots were made.
            Items::Fixed(queue) => {
                if let Err(value) = queue.push(value) {
                    debug_assert!(false, "a reserved place had no free slot");
                    self.reserved.fetch_sub(1, Relaxed);
                    return Err(value);
                }
            }
        }
        Ok(())
    }

    /// Reserves a place: a compare-and-swap loop that never takes the count past
    /// `capacity`.
    fn reserve(&self) -> bool {
        #[cfg(loom)]
        if self.weak {
            // The weakened protocol `tests/loom.rs` shows to fail: check, then add.
            if self.reserved.load(Relaxed) >= self.capacity {
                return false;
            }
            self.reserved.fetch_add(1, Relaxed);
            return true;
        }
        let mut reserved = self.reserved.load(Relaxed);
        loop {
            if reserved >= self.capacity {
                return false;
            }
            match self
                .reserved
                .compare_exchange_weak(reserved, reserved + 1, Relaxed, Relaxed)
            {
                Ok(_) => return true,
                Err(now) => reserved = now,
            }
        }
    }

    /// Takes the oldest object, if any.
    pub(crate) fn pop(&self) -> Option<T> {
        let value = match &self.items {
            Items::Fixed(queue) => queue.pop(),
            Items::Blocks(queue) => queue.pop(),
        }?;
        // After the pop: the place is free only once the object is out.
        self.reserved.fetch_sub(1, Relaxed);
        Some(value)
    }

    /// Objects held (a recent value while other threads push or pop; exact when none
    /// does).
    pub(crate) fn len(&self) -> usize {
        self.reserved.load(Relaxed)
    }

    /// The bound.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Objects really in the queue, for the loom models.
    #[cfg(loom)]
    pub(crate) fn items_len(&self) -> usize {
        match &self.items {
            Items::Fixed(queue) => queue.len(),
            Items::Blocks(queue) => queue.len(),
        }
    }
}

/// The queue under the bound: exactly `capacity` slots for a small tier, blocks that
/// come and go for a large one (see the module docs' # Memory).
enum Items<T> {
    Fixed(ArrayQueue<T>),
    Blocks(SegQueue<T>),
}
