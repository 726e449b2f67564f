//! The loom facade: every concurrency primitive the crate uses, behind one name.
//!
//! Built normally, this module re-exports `std`'s atomics, `thread_local::ThreadLocal`
//! and `crossbeam_queue::ArrayQueue`. Built with `RUSTFLAGS="--cfg loom"`, it swaps in
//! loom's instrumented atomics and `UnsafeCell`, plus two stand-ins that loom can see
//! through:
//!
//! - [`ThreadLocal`]: loom runs every model thread as a coroutine on one OS thread, so
//!   `thread_local::ThreadLocal` (keyed by OS thread) would hand *all* model threads the
//!   same per-thread cache and hide every cross-thread bug. The stand-in keys entries by
//!   `loom::thread::current().id()`.
//! - [`Queue`]: `crossbeam_queue::ArrayQueue` is not loom-instrumented; the stand-in is a
//!   bounded `loom::sync::Mutex<VecDeque<T>>` with the same interface.
//! - [`ArcCell`]: an `arc_swap::ArcSwap` with a compare-and-swap update loop; under loom
//!   a `loom::sync::Mutex<Arc<T>>` whose update runs the same optimistic protocol
//!   (build the new value outside any lock, install it only if nobody else did first).
//!
//! # What loom does and does not cover
//!
//! The models in `tests/loom.rs` check the crate's own protocol: the per-thread tier
//! (its `UnsafeCell` accesses are tracked, so a second thread touching another thread's
//! cache is reported), the trim epoch, the single-writer counters and the guards. The
//! shared tier is checked as a black box with `ArrayQueue`'s contract (bounded, MPMC,
//! each element popped at most once); crossbeam's algorithm itself is not re-checked
//! here. `arc_swap`'s internals are likewise trusted, not modelled: the models check
//! the read-copy-update protocol written on top of it (`ArcCell::update`).
//!
//! Nothing outside this module names `std::sync::atomic` or `core::sync::atomic`.

#[cfg(not(loom))]
mod inner {
    pub(crate) use crossbeam_queue::ArrayQueue as Queue;
    pub(crate) use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    pub(crate) use thread_local::ThreadLocal;

    /// A shared value replaced as a whole: lock-free reads, read-copy-update writes.
    pub(crate) struct ArcCell<T>(arc_swap::ArcSwap<T>);

    impl<T> ArcCell<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(arc_swap::ArcSwap::from_pointee(value))
        }

        /// Runs `f` on the current value (wait-free on the fast path).
        #[inline]
        pub(crate) fn with<R>(&self, f: impl FnOnce(&T) -> R) -> R {
            f(&self.0.load())
        }

        /// Read-copy-update: `f` builds a replacement from the current value (or says
        /// none is needed with `None`). If another writer replaced the value meanwhile,
        /// `f` runs again on the newer one, so no update is ever lost.
        pub(crate) fn update(&self, mut f: impl FnMut(&T) -> Option<T>) {
            let mut current = self.0.load_full();
            loop {
                let Some(new) = f(&current) else { return };
                let previous = self.0.compare_and_swap(&current, std::sync::Arc::new(new));
                if std::sync::Arc::ptr_eq(&previous, &current) {
                    return;
                }
                current = arc_swap::Guard::into_inner(previous);
            }
        }

        /// A handle that keeps its own reference to the current value and revalidates
        /// it with one relaxed pointer load per read (no shared write at all).
        pub(crate) fn cache(&self) -> CellCache<'_, T> {
            CellCache(arc_swap::Cache::new(&self.0))
        }
    }

    /// See [`ArcCell::cache`].
    pub(crate) struct CellCache<'a, T>(
        arc_swap::Cache<&'a arc_swap::ArcSwap<T>, std::sync::Arc<T>>,
    );

    impl<T> CellCache<'_, T> {
        #[inline]
        pub(crate) fn with<R>(&mut self, f: impl FnOnce(&T) -> R) -> R {
            f(self.0.load())
        }
    }

    /// `std::cell::UnsafeCell` with loom's closure-based API, so that the same code
    /// compiles against both.
    #[derive(Debug)]
    pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

    impl<T> UnsafeCell<T> {
        pub(crate) const fn new(value: T) -> Self {
            Self(std::cell::UnsafeCell::new(value))
        }

        /// Runs `f` with a shared pointer to the contents.
        #[inline(always)]
        pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
            f(self.0.get())
        }

        /// Runs `f` with a unique pointer to the contents.
        #[inline(always)]
        pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            f(self.0.get())
        }
    }
}

#[cfg(loom)]
mod inner {
    pub(crate) use loom::cell::UnsafeCell;
    pub(crate) use loom::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

    use loom::sync::Mutex;
    use loom::thread::ThreadId;
    use std::collections::VecDeque;

    /// `ArcCell` for loom: the same update protocol over a loom mutex.
    pub(crate) struct ArcCell<T>(Mutex<std::sync::Arc<T>>);

    impl<T> ArcCell<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(Mutex::new(std::sync::Arc::new(value)))
        }

        pub(crate) fn with<R>(&self, f: impl FnOnce(&T) -> R) -> R {
            let current = std::sync::Arc::clone(&self.0.lock().unwrap());
            f(&current)
        }

        pub(crate) fn update(&self, mut f: impl FnMut(&T) -> Option<T>) {
            let mut current = std::sync::Arc::clone(&self.0.lock().unwrap());
            loop {
                // Built outside the lock, as the lock-free version does.
                let Some(new) = f(&current) else { return };
                let mut slot = self.0.lock().unwrap();
                if std::sync::Arc::ptr_eq(&slot, &current) {
                    *slot = std::sync::Arc::new(new);
                    return;
                }
                current = std::sync::Arc::clone(&slot);
            }
        }

        pub(crate) fn cache(&self) -> CellCache<'_, T> {
            CellCache(self)
        }
    }

    /// Under loom, a cache is a plain load each time.
    pub(crate) struct CellCache<'a, T>(&'a ArcCell<T>);

    impl<T> CellCache<'_, T> {
        pub(crate) fn with<R>(&mut self, f: impl FnOnce(&T) -> R) -> R {
            self.0.with(f)
        }
    }

    /// Per-model-thread storage with `thread_local::ThreadLocal`'s interface.
    pub(crate) struct ThreadLocal<T> {
        /// INVARIANT: entries are only ever appended; a box is dropped only with `self`,
        /// so a `&T` handed out from one lives as long as `&self`.
        entries: Mutex<Vec<(ThreadId, Box<T>)>>,
    }

    impl<T: Send> ThreadLocal<T> {
        pub(crate) fn new() -> Self {
            Self {
                entries: Mutex::new(Vec::new()),
            }
        }

        pub(crate) fn get(&self) -> Option<&T> {
            let me = loom::thread::current().id();
            let entries = self.entries.lock().unwrap();
            let ptr: *const T = &*entries.iter().find(|(id, _)| *id == me)?.1;
            // SAFETY: the box behind `ptr` is never removed or dropped before `self`
            // (see INVARIANT on `entries`), and a box does not move when the `Vec` grows.
            Some(unsafe { &*ptr })
        }

        pub(crate) fn get_or(&self, create: impl FnOnce() -> T) -> &T {
            if let Some(value) = self.get() {
                return value;
            }
            // `create` runs without the lock held, as it does in `thread_local`.
            let boxed = Box::new(create());
            let ptr: *const T = &*boxed;
            let me = loom::thread::current().id();
            self.entries.lock().unwrap().push((me, boxed));
            // SAFETY: as in `get`: the box was just appended and lives as long as `self`.
            unsafe { &*ptr }
        }

        pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
            let entries = self.entries.lock().unwrap();
            let ptrs: Vec<*const T> = entries.iter().map(|(_, b)| &**b as *const T).collect();
            drop(entries);
            // SAFETY: as in `get`: every box lives as long as `self`.
            ptrs.into_iter().map(|ptr| unsafe { &*ptr })
        }
    }

    /// A bounded MPMC queue with `crossbeam_queue::ArrayQueue`'s interface.
    pub(crate) struct Queue<T> {
        capacity: usize,
        items: Mutex<VecDeque<T>>,
    }

    impl<T> Queue<T> {
        pub(crate) fn new(capacity: usize) -> Self {
            assert!(capacity > 0, "capacity must be non-zero");
            Self {
                capacity,
                items: Mutex::new(VecDeque::with_capacity(capacity)),
            }
        }

        pub(crate) fn push(&self, value: T) -> Result<(), T> {
            let mut items = self.items.lock().unwrap();
            if items.len() == self.capacity {
                return Err(value);
            }
            items.push_back(value);
            Ok(())
        }

        pub(crate) fn pop(&self) -> Option<T> {
            self.items.lock().unwrap().pop_front()
        }

        pub(crate) fn len(&self) -> usize {
            self.items.lock().unwrap().len()
        }

        pub(crate) fn capacity(&self) -> usize {
            self.capacity
        }
    }
}

pub(crate) use crossbeam_utils::CachePadded;
pub(crate) use inner::*;
