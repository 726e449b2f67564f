//! The shared tier: a bounded, lock-free MPMC queue whose memory follows what it holds.
//!
//! # Why not `ArrayQueue`
//!
//! `crossbeam_queue::ArrayQueue` is bounded and lock-free, but allocates all its slots
//! when it is made: a pool built with `max_idle(1 << 22)` and never used held some
//! 160 MB. Users of every pool crate read such a bound as a ceiling, not as a
//! reservation.
//!
//! # What instead
//!
//! An unbounded `crossbeam_queue::SegQueue` (lock-free; it allocates blocks of 31 slots
//! as they fill and frees each block once it is emptied, so its memory follows the
//! objects it holds: nothing for a tier never used) and an atomic count of *reserved*
//! places, which bounds it:
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
//! The cost: a push that opens a block allocates it (one allocation per 31 objects
//! that pass through the tier), and a push or pop does one more atomic operation than
//! `ArrayQueue`'s. The shared tier is off the hot path (the per-thread caches serve a
//! thread's own gets and returns), so neither shows in a get and return on one thread.

use crate::sync::{AtomicUsize, Ordering::Relaxed, SegQueue};

/// A bounded lock-free MPMC queue that allocates only for what it holds (see the
/// module docs).
pub(crate) struct Shared<T> {
    items: SegQueue<T>,
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
    /// An empty tier of `capacity` places. Allocates nothing.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            items: SegQueue::new(),
            reserved: AtomicUsize::new(0),
            capacity,
            #[cfg(loom)]
            weak: false,
        }
    }

    /// Adds `value` if the tier has room, or hands it back.
    pub(crate) fn push(&self, value: T) -> Result<(), T> {
        if !self.reserve() {
            return Err(value);
        }
        self.items.push(value);
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
        let value = self.items.pop()?;
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
        self.items.len()
    }
}
