//! The per-thread tier: a small LIFO stack of idle objects per (pool, thread).
//!
//! A [`Local`] is reached through `ThreadLocal::get_or`, which hands each thread its
//! own. Its stack lives in an `UnsafeCell` that only the owning thread touches, so the
//! get/put hot path does no atomic read-modify-write. Other threads (`Pool::stats`)
//! read only the atomic mirrors: the stack length and the counters.
//!
//! # Trim epochs
//!
//! Every idle object is tagged with the pool's trim epoch at the moment it was
//! returned. `Pool::trim` advances the epoch; the owning thread notices on its next
//! access (one relaxed load and a compare) and frees every object whose tag is two or
//! more epochs old, i.e. that sat idle through two consecutive trims. The stack is
//! LIFO, so the oldest objects sit at the bottom and are freed first, while a busy
//! thread keeps re-tagging the few objects it really uses.
//!
//! # Orderings
//!
//! The epoch carries no data: it only decides *when* an object is dropped, and the
//! object belongs to this thread either way. `Relaxed` is enough. The counters have a
//! single writer (this thread), which bumps them with a relaxed load and store; readers
//! on other threads see a slightly stale, never torn, value.

use crate::sync::{AtomicU64, AtomicUsize, Ordering::Relaxed, UnsafeCell};

/// An idle object and the trim epoch it was returned in.
pub(crate) struct Slot<T> {
    pub(crate) value: T,
    pub(crate) epoch: u64,
}

impl<T> Slot<T> {
    /// Whether this object has been idle through two trims, at global epoch `now`.
    #[inline]
    pub(crate) fn is_stale(&self, now: u64) -> bool {
        now.wrapping_sub(self.epoch) >= 2
    }
}

/// A counter with one writer: bumped by its owning thread, read by anyone.
#[derive(Default)]
pub(crate) struct Counter(AtomicU64);

impl Counter {
    /// Adds one. Only the owning thread may call this (a load and a store, no RMW).
    #[inline]
    pub(crate) fn bump(&self) {
        self.0.store(self.0.load(Relaxed).wrapping_add(1), Relaxed);
    }

    pub(crate) fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// Per-thread counters, summed by `Pool::stats`.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) hits: Counter,
    pub(crate) misses: Counter,
    pub(crate) returns: Counter,
    pub(crate) discards: Counter,
    pub(crate) trimmed: Counter,
    pub(crate) detached: Counter,
}

struct Stack<T> {
    /// Idle objects, oldest first.
    /// INVARIANT: `slots.len() <= capacity`, and `slots.capacity()` was reserved up
    /// front, so a push never allocates.
    slots: Vec<Slot<T>>,
    /// The last trim epoch this thread has reconciled its stack with.
    seen: u64,
}

/// One thread's cache for one pool.
pub(crate) struct Local<T> {
    /// INVARIANT: only the thread that `ThreadLocal::get_or` handed this `Local` to
    /// accesses `stack`, and never while user code (hook, create, `T::drop`) runs.
    stack: UnsafeCell<Stack<T>>,
    capacity: usize,
    /// Mirror of `stack.slots.len()` for `Pool::stats` on other threads.
    len: AtomicUsize,
    pub(crate) counters: Counters,
}

// SAFETY: the only non-`Sync` part is `stack`, and by its INVARIANT only the owning
// thread touches it; other threads read `len` and `counters`, which are atomics.
unsafe impl<T: Send> Sync for Local<T> {}

impl<T> Local<T> {
    pub(crate) fn new(capacity: usize, epoch: u64) -> Self {
        Self {
            stack: UnsafeCell::new(Stack {
                slots: Vec::with_capacity(capacity),
                seen: epoch,
            }),
            capacity,
            len: AtomicUsize::new(0),
            counters: Counters::default(),
        }
    }

    /// Number of idle objects, as last published by the owning thread.
    pub(crate) fn idle(&self) -> usize {
        self.len.load(Relaxed)
    }

    /// Takes the most recently returned object. Owning thread only.
    #[inline]
    pub(crate) fn pop(&self, epoch: u64) -> Option<T> {
        self.reconcile(epoch);
        self.stack.with_mut(|stack| {
            // SAFETY: by the INVARIANT on `stack`, this thread has exclusive access,
            // and no user code runs while the reference lives.
            let stack = unsafe { &mut *stack };
            let slot = stack.slots.pop()?;
            self.len.store(stack.slots.len(), Relaxed);
            Some(slot.value)
        })
    }

    /// Keeps `value` if there is room, or hands it back. Owning thread only.
    #[inline]
    pub(crate) fn push(&self, value: T, epoch: u64) -> Result<(), Slot<T>> {
        self.reconcile(epoch);
        let slot = Slot { value, epoch };
        self.stack.with_mut(|stack| {
            // SAFETY: as in `pop`.
            let stack = unsafe { &mut *stack };
            if stack.slots.len() == self.capacity {
                return Err(slot);
            }
            stack.slots.push(slot);
            self.len.store(stack.slots.len(), Relaxed);
            Ok(())
        })
    }

    /// Frees the objects that have been idle through two trims, if a trim happened
    /// since the last call. Owning thread only.
    #[inline]
    pub(crate) fn reconcile(&self, epoch: u64) {
        // SAFETY: as in `pop`; a plain read of this thread's own field.
        let seen = self.stack.with(|stack| unsafe { (*stack).seen });
        if seen != epoch {
            self.free_stale(epoch);
        }
    }

    #[cold]
    fn free_stale(&self, epoch: u64) {
        loop {
            let stale = self.stack.with_mut(|stack| {
                // SAFETY: as in `pop`.
                let stack = unsafe { &mut *stack };
                if stack.slots.first().is_some_and(|s| s.is_stale(epoch)) {
                    let slot = stack.slots.remove(0);
                    self.len.store(stack.slots.len(), Relaxed);
                    Some(slot)
                } else {
                    stack.seen = epoch;
                    None
                }
            });
            match stale {
                // `T::drop` is user code: it runs after the borrow above has ended, so
                // it may use this pool again.
                Some(slot) => {
                    self.counters.trimmed.bump();
                    drop(slot);
                }
                None => return,
            }
        }
    }
}
