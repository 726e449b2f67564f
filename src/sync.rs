//! The loom facade: every concurrency primitive the crate uses, behind one name.
//!
//! Built normally, this module re-exports `std`'s atomics, `Arc` and `thread_local!`,
//! and `crossbeam_queue::SegQueue`. Built with `RUSTFLAGS="--cfg loom"`, it swaps in
//! loom's instrumented atomics, `Arc`, `UnsafeCell` and mock `thread_local!` (whose
//! destructors run when a model thread ends), plus two stand-ins that loom can see
//! through:
//!
//! - [`SegQueue`]: `crossbeam_queue::SegQueue` is not loom-instrumented; the stand-in is
//!   a `loom::sync::Mutex<VecDeque<T>>` with the same interface. (The bound on top of
//!   it, `src/shared.rs`, is the crate's own and goes through loom's atomics.)
//! - [`ArcCell`]: an `arc_swap::ArcSwap`; under loom a `loom::sync::Mutex<Arc<T>>`.
//!   As tokio's `src/loom/`, the facade provides only the primitives (`load_full`,
//!   `compare_and_swap`, `with`, `cache`); the read-copy-update loop
//!   ([`ArcCell::update`]) is written once above them, so loom checks the shipped loop.
//!
//! `Arc` goes through the facade because an owned guard's reference count is part of
//! the pool's teardown protocol: the pool may drop other threads' idle objects only
//! after their last use of it, and loom must see that edge.
//!
//! # What loom does and does not cover
//!
//! The models in `tests/loom.rs` check the crate's own protocol: the per-thread tier
//! (its `UnsafeCell` accesses are tracked, so a second thread touching another thread's
//! cache is reported), the per-thread registry and its hand-over of caches at thread
//! exit and pool drop (every cache carries a leak tracker), the trim epoch, the
//! single-writer counters, the guards and the shared tier's bound. The queue under
//! that bound is checked as a black box with `SegQueue`'s contract (MPMC, each element
//! popped at most once); crossbeam's algorithm itself is not re-checked here. `arc_swap`'s internals are
//! likewise trusted, not modelled: the models check the read-copy-update protocol
//! written on top of it (`ArcCell::update`).
//!
//! Nothing outside this module names `std::sync::atomic` or `core::sync::atomic`.

/// Declares a thread-local with a `const` initialiser (no lazy-init check on access;
/// a type with `Drop` gets a destructor at thread exit). Under loom, loom's mock, which
/// is initialised on first access and dropped when the model thread ends.
macro_rules! thread_local_const {
    ($(#[$attr:meta])* static $name:ident: $ty:ty = $init:expr;) => {
        #[cfg(not(loom))]
        std::thread_local! { $(#[$attr])* static $name: $ty = const { $init }; }
        #[cfg(loom)]
        loom::thread_local! { $(#[$attr])* static $name: $ty = $init; }
    };
}
pub(crate) use thread_local_const;

/// A process-wide unique, never reused, non-zero id (a pool's identity in the
/// per-thread registry). Plain `std` atomic in every build: only uniqueness matters,
/// and a loom atomic cannot live in a `static`.
pub(crate) fn unique_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    // 2^64 ids: at one per nanosecond, 584 years before a wrap.
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

#[cfg(not(loom))]
mod inner {
    pub(crate) use crossbeam_queue::SegQueue;
    pub(crate) use std::sync::Arc;
    pub(crate) use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};

    /// Leak tracking for loom; nothing in a normal build.
    #[derive(Debug)]
    pub(crate) struct LeakTrack;

    impl LeakTrack {
        pub(crate) fn new() -> Self {
            Self
        }
    }

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

        /// The current value, as an owned reference.
        #[inline]
        pub(crate) fn load_full(&self) -> std::sync::Arc<T> {
            self.0.load_full()
        }

        /// Installs `new` if the value is still `current` (by pointer); returns the
        /// value that was there, which is `current` exactly when `new` was installed.
        #[inline]
        pub(crate) fn compare_and_swap(
            &self,
            current: &std::sync::Arc<T>,
            new: std::sync::Arc<T>,
        ) -> std::sync::Arc<T> {
            arc_swap::Guard::into_inner(self.0.compare_and_swap(current, new))
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
    pub(crate) use loom::sync::Arc;
    pub(crate) use loom::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};

    use loom::sync::Mutex;
    use std::collections::VecDeque;

    /// Loom reports a `LeakTrack` that is never dropped by the end of an execution.
    #[derive(Debug)]
    pub(crate) struct LeakTrack(#[allow(dead_code)] loom::alloc::Track<()>);

    impl LeakTrack {
        pub(crate) fn new() -> Self {
            Self(loom::alloc::Track::new(()))
        }
    }

    /// `ArcCell`'s primitives for loom, over a loom mutex: `load_full` and
    /// `compare_and_swap` are each one critical section, so loom explores every
    /// interleaving of the shared update loop ([`ArcCell::update`]) between them.
    pub(crate) struct ArcCell<T>(Mutex<std::sync::Arc<T>>);

    impl<T> ArcCell<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(Mutex::new(std::sync::Arc::new(value)))
        }

        pub(crate) fn with<R>(&self, f: impl FnOnce(&T) -> R) -> R {
            f(&self.load_full())
        }

        pub(crate) fn load_full(&self) -> std::sync::Arc<T> {
            std::sync::Arc::clone(&self.0.lock().unwrap())
        }

        pub(crate) fn compare_and_swap(
            &self,
            current: &std::sync::Arc<T>,
            new: std::sync::Arc<T>,
        ) -> std::sync::Arc<T> {
            let mut slot = self.0.lock().unwrap();
            if std::sync::Arc::ptr_eq(&slot, current) {
                std::mem::replace(&mut *slot, new)
            } else {
                std::sync::Arc::clone(&slot)
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

    /// An unbounded MPMC queue with `crossbeam_queue::SegQueue`'s interface.
    pub(crate) struct SegQueue<T>(Mutex<VecDeque<T>>);

    impl<T> SegQueue<T> {
        pub(crate) fn new() -> Self {
            Self(Mutex::new(VecDeque::new()))
        }

        pub(crate) fn push(&self, value: T) {
            self.0.lock().unwrap().push_back(value);
        }

        pub(crate) fn pop(&self) -> Option<T> {
            self.0.lock().unwrap().pop_front()
        }

        /// For the models' checks only (`SegQueue::len` exists, the pool does not use
        /// it).
        pub(crate) fn len(&self) -> usize {
            self.0.lock().unwrap().len()
        }
    }
}

pub(crate) use crossbeam_utils::CachePadded;
pub(crate) use inner::*;

impl<T> ArcCell<T> {
    /// Read-copy-update: `f` builds a replacement from the current value (or says none
    /// is needed with `None`). If another writer replaced the value meanwhile, `f` runs
    /// again on the newer one, so no update is ever lost.
    ///
    /// Written once, above the facade's two primitives, so the loom models in
    /// `tests/loom.rs` check this loop, the one that ships; only `load_full` and
    /// `compare_and_swap` differ between the builds.
    pub(crate) fn update(&self, mut f: impl FnMut(&T) -> Option<T>) {
        let mut current = self.load_full();
        loop {
            let Some(new) = f(&current) else { return };
            let previous = self.compare_and_swap(&current, std::sync::Arc::new(new));
            if std::sync::Arc::ptr_eq(&previous, &current) {
                return;
            }
            current = previous;
        }
    }
}
