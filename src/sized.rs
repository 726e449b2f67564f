//! [`SizedPool`]: byte buffers in power-of-two size classes that learn, from the sizes
//! asked for, which size to hand out by default and which sizes are worth keeping.
//!
//! # Classes
//!
//! [`SizedPool::get(n)`](SizedPool::get) returns a `Vec<u8>` with capacity at least `n`
//! from the smallest class that fits: 64 B, 128 B, … up to [`MAX_CLASS`] (4 MiB) by
//! default ([`SizedBuilder::max_size`]). Each class is a bounded [`Pool<Vec<u8>>`]:
//! per-thread caches and a shared tier, `Vec`'s hook (cleared on return, capacity kept)
//! and [`Pool::trim`]. A request above the largest class is a plain allocation, never
//! kept.
//!
//! A buffer comes back to the class its *capacity* fits (the largest class not bigger
//! than its capacity), not to the class it came from: one that grew moves up, and every
//! buffer in class `c` has capacity at least `c`. A buffer whose capacity exceeds the
//! largest class is dropped, so nothing bigger than the largest class is ever kept.
//!
//! Big classes hold few buffers: each class's shared tier holds at most
//! [`CLASS_IDLE_BYTES`] (4 MiB) worth counted at the class's size (at most
//! [`DEFAULT_MAX_IDLE`] buffers, each of capacity under twice the class), and
//! only classes up to [`THREAD_CACHE_MAX_CLASS`] (16 KiB) have per-thread caches, of
//! at most [`THREAD_IDLE_BYTES`] (256 KiB) worth per thread. So classes above 16 KiB
//! keep their idle buffers in the shared tier only, where a calibration or two
//! [`SizedPool::trim`]s free them from any thread.
//!
//! # Calibration
//!
//! Go's [valyala/bytebufferpool](https://github.com/valyala/bytebufferpool) learns two
//! sizes from the traffic, and so does a `SizedPool` (unless built with
//! [`calibrate(false)`](SizedBuilder::calibrate)):
//!
//! - the **default size**: the most requested class, what
//!   [`get_default`](SizedPool::get_default) hands out (4 KiB until the first
//!   calibration);
//! - the **ceiling**: the largest class among the most requested classes that together
//!   make up 95% of the requests ([`SizedBuilder::percentile`]). A returned buffer
//!   bigger than the ceiling is dropped instead of kept, and every calibration frees
//!   the idle buffers of the classes above the ceiling: all of them for classes above
//!   16 KiB; for the classes up to 16 KiB, those in the shared tier, in the
//!   calibrating thread's cache and in exited threads' caches, while another live
//!   thread's cache (at most 256 KiB per class) is freed the next time that thread
//!   gets from the class. So a burst of 50 MiB requests, or of 1 MiB ones among 4 KiB
//!   traffic, does not pin their memory once the traffic is normal again.
//!
//! A calibration looks at the requests made since the previous one and runs once
//! [`SizedBuilder::calibrate_every`] requests (16,384 by default) have been made, at
//! every [`SizedPool::trim`] (call it on a timer: traffic too thin to reach
//! `calibrate_every` then calibrates too), or when [`SizedPool::calibrate`] is called. As in
//! bytebufferpool, the largest class among the classes that together cover the
//! percentile is the ceiling, so a class that is rare but not rarer than the top 5%
//! keeps its buffers.
//!
//! ## What it costs on the hot path
//!
//! bytebufferpool adds one to a shared atomic counter per call, which two threads
//! then fight over. Here the requests are not counted again at all: each class's pool
//! already counts its gets per thread (single-writer counters, see [`Stats`]), and a
//! calibration reads those. They also trigger it: after a get, the thread reads its
//! own count of gets from that class (per pool, class and thread; no shared write),
//! and at 1, 2, 4, … 1,024 gets and then every [`CHECK_EVERY`] (1,024), it adds the
//! gets since the previous such point to a shared estimate of the pool's requests
//! (about one shared add per 1,024 gets; a short-lived thread still credits more
//! than half of its gets). Once the estimate says `calibrate_every` more requests were
//! made, it attempts a calibration (a try-lock: a thread that finds another one
//! calibrating goes on at once). The ceiling is one relaxed load per return. `benches/sized.rs` (`sized/counting`)
//! measures both ways on two threads.
//!
//! # Examples
//!
//! ```
//! use recycle_pool::sized::SizedPool;
//!
//! let pool = SizedPool::new();
//! let mut buf = pool.get(1000); // from the 1 KiB class
//! assert!(buf.capacity() >= 1000);
//! buf.extend_from_slice(b"hello");
//! drop(buf); // cleared and kept in the 1 KiB class
//!
//! // Mostly 1 KiB requests, a few 1 MiB ones: 1 KiB becomes the default size and
//! // the ceiling stays below 1 MiB.
//! for i in 0..100 {
//!     drop(pool.get(if i % 50 == 0 { 1 << 20 } else { 1000 }));
//! }
//! pool.calibrate();
//! let stats = pool.stats();
//! assert_eq!(stats.default_size, 1024);
//! assert_eq!(stats.ceiling, 1024);
//! assert!(pool.get_default().capacity() >= 1024);
//! drop(pool.get(1 << 20)); // handed out, then dropped on return: above the ceiling
//! assert_eq!(pool.stats().idle_bytes_in(1 << 20), 0);
//! ```

use std::fmt;
use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};

use crate::pool::Pool;
use crate::stats::Stats;
use crate::sync::{Arc, AtomicU64, AtomicUsize, Ordering, UnsafeCell};

/// The smallest class: 64 bytes (a cache line; smaller requests get 64).
pub const MIN_CLASS: usize = 64;
/// The largest class unless [`SizedBuilder::max_size`] says otherwise: 4 MiB.
pub const MAX_CLASS: usize = 4 << 20;
/// The largest class [`SizedBuilder::max_size`] accepts: 1 GiB.
pub const MAX_CLASS_LIMIT: usize = 1 << 30;
/// A class's shared tier keeps at most this many bytes of idle buffers counted at the
/// class's size (and at most [`DEFAULT_MAX_IDLE`] buffers): 4 MiB. A buffer in a class
/// has less than twice the class's size (one that grew, or one given to
/// [`SizedPool::put`]), so the memory really held is under 8 MiB per class.
pub const CLASS_IDLE_BYTES: usize = 4 << 20;
/// A class's per-thread cache keeps at most this many bytes of idle buffers per
/// thread, counted at the class's size: 256 KiB (under 512 KiB really held, as for
/// [`CLASS_IDLE_BYTES`]).
pub const THREAD_IDLE_BYTES: usize = 256 << 10;
/// The largest class with a per-thread tier: 16 KiB. Bigger classes keep their idle
/// buffers in the shared tier only, where a calibration (or two [`SizedPool::trim`]s)
/// frees them from any thread.
pub const THREAD_CACHE_MAX_CLASS: usize = 16 << 10;
/// The default for [`SizedBuilder::max_idle`]: the most idle buffers a class's shared
/// tier keeps.
pub const DEFAULT_MAX_IDLE: usize = 64;
/// The default for [`SizedBuilder::calibrate_every`].
pub const DEFAULT_CALIBRATE_EVERY: u64 = 16 * 1024;
/// Every this many gets, a thread checks whether a calibration is due.
pub const CHECK_EVERY: u32 = 1024;
/// The size [`SizedPool::get_default`] hands out before the first calibration: 4 KiB.
pub const INITIAL_DEFAULT_SIZE: usize = 4096;

const MIN_SHIFT: u32 = MIN_CLASS.trailing_zeros();

/// The index of the smallest class that holds `n` bytes.
#[inline]
fn class_for_request(n: usize) -> usize {
    if n <= MIN_CLASS {
        0
    } else {
        // ceil(log2(n)) - MIN_SHIFT; n > 64 so n - 1 > 0.
        (usize::BITS - (n - 1).leading_zeros() - MIN_SHIFT) as usize
    }
}

/// The index of the largest class not bigger than `capacity` (`capacity >= MIN_CLASS`).
#[inline]
fn class_for_capacity(capacity: usize) -> usize {
    (usize::BITS - 1 - capacity.leading_zeros() - MIN_SHIFT) as usize
}

/// The size of class `index`.
#[inline]
fn class_size(index: usize) -> usize {
    MIN_CLASS << index
}

/// A mutual exclusion that never waits: [`try_with`](TryLock::try_with) runs `f` on
/// the value if no other thread is, and returns `None` at once otherwise.
///
/// The protocol: acquiring is a compare-exchange of the flag from 0 to 1 with
/// `Acquire` (it sees everything the previous holder wrote); releasing stores 0 with
/// `Release` (it publishes this holder's writes to the next). Modelled in
/// `tests/loom.rs` (`calibrations_from_two_threads`).
struct TryLock<T> {
    locked: AtomicUsize,
    value: UnsafeCell<T>,
}

// SAFETY: the value is reached only by the one thread that holds the flag (see
// `try_with`), and handed from one holder to the next through the flag's
// release/acquire: it needs `T: Send`, as a `Mutex<T>` does.
unsafe impl<T: Send> Sync for TryLock<T> {}

impl<T> TryLock<T> {
    fn new(value: T) -> Self {
        Self {
            locked: AtomicUsize::new(0),
            value: UnsafeCell::new(value),
        }
    }

    fn try_with<R>(&self, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        if self
            .locked
            .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return None;
        }
        /// Releases the flag, also when `f` panics.
        struct Unlock<'a>(&'a AtomicUsize);
        impl Drop for Unlock<'_> {
            fn drop(&mut self) {
                self.0.store(0, Ordering::Release);
            }
        }
        let _unlock = Unlock(&self.locked);
        Some(self.value.with_mut(|value| {
            // SAFETY: this thread set the flag from 0 to 1 and clears it only after `f`
            // returns (or unwinds): no other thread reaches the value meanwhile, and the
            // acquire above orders this access after the previous holder's.
            f(unsafe { &mut *value })
        }))
    }
}

/// What a calibration remembers: the request counts it last saw.
struct Calibrator {
    /// Per class, then (last) requests above the largest class: totals at the last
    /// calibration.
    seen: Vec<u64>,
}

/// A pool of byte buffers in power-of-two size classes that calibrates its default
/// size and its ceiling from the sizes requested. See the [module docs](self).
///
/// `Send + Sync`: share it by reference or in an [`Arc`] (needed for
/// [`get_owned`](SizedPool::get_owned) and [`OwnedSizedBuf::freeze`]).
pub struct SizedPool {
    classes: Box<[Pool<Vec<u8>>]>,
    /// The largest class's size.
    max_size: usize,
    calibrate: bool,
    calibrate_every: u64,
    percentile: f64,
    default_size: AtomicUsize,
    ceiling: AtomicUsize,
    /// Requests above the largest class (cold: each one allocates anyway).
    huge: AtomicU64,
    /// Returns dropped because they were above the ceiling.
    over_ceiling: AtomicU64,
    /// Returns dropped because they were above the largest class or below the smallest.
    out_of_classes: AtomicU64,
    calibrations: AtomicU64,
    /// The gets credited at the (class, thread) credit points (see `tick`): more than
    /// half the gets made, with about one shared add per `CHECK_EVERY` gets.
    ticks: AtomicU64,
    /// `ticks` at which the next check tries to calibrate.
    due_at: AtomicU64,
    calibrator: TryLock<Calibrator>,
}

/// Configures a [`SizedPool`]; made by [`SizedPool::builder`].
#[derive(Clone, Debug)]
pub struct SizedBuilder {
    max_size: usize,
    max_idle: usize,
    thread_cache: usize,
    calibrate: bool,
    calibrate_every: u64,
    percentile: f64,
}

impl Default for SizedBuilder {
    fn default() -> Self {
        Self {
            max_size: MAX_CLASS,
            max_idle: DEFAULT_MAX_IDLE,
            thread_cache: crate::pool::DEFAULT_THREAD_CACHE,
            calibrate: true,
            calibrate_every: DEFAULT_CALIBRATE_EVERY,
            percentile: 0.95,
        }
    }
}

impl SizedBuilder {
    /// The largest class (default [`MAX_CLASS`]), rounded up to a power of two, at
    /// least [`MIN_CLASS`] and at most [`MAX_CLASS_LIMIT`] (clamped).
    pub fn max_size(mut self, bytes: usize) -> Self {
        self.max_size = bytes.clamp(MIN_CLASS, MAX_CLASS_LIMIT).next_power_of_two();
        self
    }

    /// The most idle buffers each class's shared tier keeps (default
    /// [`DEFAULT_MAX_IDLE`]); a class also keeps no more than [`CLASS_IDLE_BYTES`]
    /// worth counted at the class's size (and at least one buffer).
    pub fn max_idle(mut self, n: usize) -> Self {
        self.max_idle = n;
        self
    }

    /// The most idle buffers each class keeps per thread (default
    /// [`DEFAULT_THREAD_CACHE`](crate::pool::DEFAULT_THREAD_CACHE)); a class also keeps
    /// no more than [`THREAD_IDLE_BYTES`] worth per thread, and classes above
    /// [`THREAD_CACHE_MAX_CLASS`] have no per-thread tier.
    pub fn thread_cache(mut self, n: usize) -> Self {
        self.thread_cache = n;
        self
    }

    /// Whether the pool calibrates itself (default `true`). Without calibration the
    /// default size stays [`INITIAL_DEFAULT_SIZE`] and every buffer up to the largest
    /// class is kept.
    pub fn calibrate(mut self, on: bool) -> Self {
        self.calibrate = on;
        self
    }

    /// How many requests a calibration waits for (default
    /// [`DEFAULT_CALIBRATE_EVERY`]; at least 1). Checked every [`CHECK_EVERY`] gets
    /// per class and thread (and at 1, 2, 4, … gets before); [`SizedPool::calibrate`]
    /// and [`SizedPool::trim`] calibrate from any number of requests but none.
    pub fn calibrate_every(mut self, requests: u64) -> Self {
        self.calibrate_every = requests.max(1);
        self
    }

    /// The share of requests whose classes set the ceiling (default 0.95), clamped to
    /// `0.0..=1.0`.
    pub fn percentile(mut self, p: f64) -> Self {
        self.percentile = if p.is_nan() { 0.95 } else { p.clamp(0.0, 1.0) };
        self
    }

    /// Builds the pool (one [`Pool`] per class; no buffer is made until asked for).
    pub fn build(self) -> SizedPool {
        let count = class_for_capacity(self.max_size) + 1;
        let classes: Box<[Pool<Vec<u8>>]> = (0..count)
            .map(|index| {
                let size = class_size(index);
                Pool::builder(move || Vec::with_capacity(size))
                    .max_idle(self.max_idle.min(CLASS_IDLE_BYTES / size).max(1))
                    .thread_cache(if size <= THREAD_CACHE_MAX_CLASS {
                        self.thread_cache.min(THREAD_IDLE_BYTES / size)
                    } else {
                        0
                    })
                    .build()
            })
            .collect();
        SizedPool {
            classes,
            max_size: self.max_size,
            calibrate: self.calibrate,
            calibrate_every: self.calibrate_every,
            percentile: self.percentile,
            default_size: AtomicUsize::new(INITIAL_DEFAULT_SIZE.min(self.max_size)),
            ceiling: AtomicUsize::new(self.max_size),
            huge: AtomicU64::new(0),
            over_ceiling: AtomicU64::new(0),
            out_of_classes: AtomicU64::new(0),
            calibrations: AtomicU64::new(0),
            ticks: AtomicU64::new(0),
            due_at: AtomicU64::new(self.calibrate_every),
            calibrator: TryLock::new(Calibrator {
                seen: vec![0; count + 1],
            }),
        }
    }
}

impl Default for SizedPool {
    fn default() -> Self {
        Self::new()
    }
}

impl SizedPool {
    /// A pool with classes from [`MIN_CLASS`] to [`MAX_CLASS`] that calibrates itself.
    pub fn new() -> Self {
        SizedBuilder::default().build()
    }

    /// Starts a [`SizedBuilder`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = recycle_pool::sized::SizedPool::builder()
    ///     .max_size(1 << 20) // classes 64 B ..= 1 MiB
    ///     .calibrate(false)
    ///     .build();
    /// let big = pool.get(2 << 20); // above the largest class: allocated, never kept
    /// drop(big);
    /// assert_eq!(pool.stats().dropped_out_of_classes, 1);
    /// ```
    pub fn builder() -> SizedBuilder {
        SizedBuilder::default()
    }

    /// The largest class's size.
    pub fn max_size(&self) -> usize {
        self.max_size
    }

    /// A buffer with capacity at least `n`, empty, from the smallest class that fits
    /// (a fresh allocation above the largest class).
    ///
    /// # Panics
    ///
    /// If `n` exceeds `isize::MAX` bytes, as [`Vec::with_capacity`] does (such a
    /// request is above every class, so it is a fresh allocation); and if the
    /// allocator fails, it aborts as `Vec` does.
    #[must_use = "dropping the guard returns the buffer at once"]
    #[inline]
    pub fn get(&self, n: usize) -> SizedBuf<'_> {
        SizedBuf {
            pool: self,
            buf: ManuallyDrop::new(self.take(n)),
        }
    }

    /// A buffer of the default size (the most requested class, learned by
    /// calibration; [`INITIAL_DEFAULT_SIZE`] before). Counted as a request of that size.
    #[must_use = "dropping the guard returns the buffer at once"]
    pub fn get_default(&self) -> SizedBuf<'_> {
        self.get(self.default_size())
    }

    /// [`get`](SizedPool::get) with a guard that owns an `Arc` of the pool, to store in
    /// structs, send to other threads, or [`freeze`](OwnedSizedBuf::freeze).
    ///
    /// # Panics
    ///
    /// As [`get`](SizedPool::get): if `n` exceeds `isize::MAX` bytes.
    #[must_use = "dropping the guard returns the buffer at once"]
    #[cfg(not(loom))]
    pub fn get_owned(self: &Arc<Self>, n: usize) -> OwnedSizedBuf {
        OwnedSizedBuf {
            buf: ManuallyDrop::new(self.take(n)),
            pool: Arc::clone(self),
        }
    }

    /// Returns a buffer explicitly (made anywhere): kept in the class its capacity
    /// fits, or dropped if it is above the ceiling, above the largest class or below
    /// the smallest. Cleared first.
    pub fn put(&self, buf: Vec<u8>) {
        self.give_back(buf);
    }

    /// The default size now (see [`get_default`](SizedPool::get_default)).
    pub fn default_size(&self) -> usize {
        self.default_size.load(Ordering::Relaxed)
    }

    /// The ceiling now: returned buffers with more capacity are dropped.
    pub fn ceiling(&self) -> usize {
        self.ceiling.load(Ordering::Relaxed)
    }

    #[inline]
    fn take(&self, n: usize) -> Vec<u8> {
        let index = class_for_request(n);
        match self.classes.get(index) {
            Some(class) => {
                // Taken out of the class's guard: it returns to the class its capacity
                // fits, through `put`, which need not be this one.
                let buf = class.get().detach();
                if self.calibrate {
                    tick(self, class.local_gets());
                }
                buf
            }
            None => self.take_huge(n),
        }
    }

    #[cold]
    fn take_huge(&self, n: usize) -> Vec<u8> {
        self.huge.fetch_add(1, Ordering::Relaxed);
        Vec::with_capacity(n)
    }

    #[inline]
    fn give_back(&self, buf: Vec<u8>) {
        let capacity = buf.capacity();
        if !(MIN_CLASS..=self.max_size).contains(&capacity) {
            return self.drop_counted(&self.out_of_classes, buf);
        }
        if capacity > self.ceiling.load(Ordering::Relaxed) {
            return self.drop_counted(&self.over_ceiling, buf);
        }
        self.classes[class_for_capacity(capacity)].put(buf);
    }

    #[cold]
    fn drop_counted(&self, counter: &AtomicU64, buf: Vec<u8>) {
        counter.fetch_add(1, Ordering::Relaxed);
        drop(buf);
    }

    /// Requests made so far, per class and (last) above the largest class.
    fn requests(&self) -> Vec<u64> {
        let mut counts: Vec<u64> = self
            .classes
            .iter()
            .map(|class| {
                let s = class.stats();
                s.hits + s.misses
            })
            .collect();
        counts.push(self.huge.load(Ordering::Relaxed));
        counts
    }

    /// Calibrates now from the requests made since the last calibration (if there
    /// were any), without waiting for [`SizedBuilder::calibrate_every`] requests. Does
    /// nothing if another thread is calibrating, or if the pool was built with
    /// `calibrate(false)`. Returns whether it calibrated.
    pub fn calibrate(&self) -> bool {
        self.calibrate && self.calibrate_if(1)
    }

    /// Calibrates if at least `min_requests` were made since the last calibration.
    fn calibrate_if(&self, min_requests: u64) -> bool {
        let done = self.calibrator.try_with(|calibrator| {
            let now = self.requests();
            let delta: Vec<u64> = now
                .iter()
                .zip(&calibrator.seen)
                .map(|(now, seen)| now.saturating_sub(*seen))
                .collect();
            let total: u64 = delta.iter().sum();
            if total < min_requests {
                return false;
            }
            calibrator.seen = now;
            let (default_size, ceiling) = self.learn(&delta, total);
            self.default_size.store(default_size, Ordering::Relaxed);
            self.ceiling.store(ceiling, Ordering::Relaxed);
            self.calibrations.fetch_add(1, Ordering::Relaxed);
            // Free the idle buffers the ceiling does not keep: two trims free
            // everything idle in the shared tier, this thread's cache and exited
            // threads' caches (classes above THREAD_CACHE_MAX_CLASS have no
            // per-thread tier). At every calibration, not only when the ceiling
            // drops: a return that read the old ceiling may have kept a buffer above
            // the new one after the previous calibration's trims.
            for class in self.classes.iter().skip(class_for_capacity(ceiling) + 1) {
                class.trim();
                class.trim();
            }
            true
        });
        done.unwrap_or(false)
    }

    /// bytebufferpool's rule: the default is the most requested class; the ceiling the
    /// largest class among the most requested ones that together reach the percentile.
    fn learn(&self, delta: &[u64], total: u64) -> (usize, usize) {
        let max = self.max_size();
        let size = |index: usize| class_size(index).min(max);
        let mut order: Vec<usize> = (0..delta.len()).collect();
        // Most requested first; between equals, the smaller class.
        order.sort_by(|&a, &b| delta[b].cmp(&delta[a]).then(a.cmp(&b)));
        let default_size = size(order[0]);
        let target = (total as f64 * self.percentile) as u64;
        let (mut sum, mut ceiling) = (0, default_size);
        for &index in &order {
            if sum >= target || delta[index] == 0 {
                break;
            }
            sum += delta[index];
            ceiling = ceiling.max(size(index));
        }
        (default_size, ceiling)
    }

    /// Frees the idle buffers that stayed idle since the call before last, in every
    /// class ([`Pool::trim`]), after attempting a calibration from the requests made
    /// since the last one (if any were, and unless built with `calibrate(false)`):
    /// call it on a timer and traffic too thin or too spread over short-lived threads
    /// to reach [`SizedBuilder::calibrate_every`] still calibrates.
    pub fn trim(&self) {
        if self.calibrate {
            self.calibrate_if(1);
        }
        for class in self.classes.iter() {
            class.trim();
        }
    }

    /// A snapshot of what the pool did and holds.
    pub fn stats(&self) -> SizedStats {
        SizedStats {
            classes: self
                .classes
                .iter()
                .enumerate()
                .map(|(index, class)| (class_size(index), class.stats()))
                .collect(),
            huge_requests: self.huge.load(Ordering::Relaxed),
            dropped_over_ceiling: self.over_ceiling.load(Ordering::Relaxed),
            dropped_out_of_classes: self.out_of_classes.load(Ordering::Relaxed),
            calibrations: self.calibrations.load(Ordering::Relaxed),
            default_size: self.default_size(),
            ceiling: self.ceiling(),
        }
    }
}

/// After a get: `gets` is this thread's count of gets from the class just used (its
/// cache's single-writer counter, so per pool, class and thread). At 1, 2, 4, … up to
/// [`CHECK_EVERY`] and then every `CHECK_EVERY`, credits the pool with the gets since
/// the previous such point and checks whether a calibration is due: a thread that
/// makes `n` gets from a class credits more than `n / 2` of them, whatever `n`.
#[inline]
fn tick(pool: &SizedPool, gets: u64) {
    let every = u64::from(CHECK_EVERY);
    if gets != 0 && (gets % every == 0 || gets.is_power_of_two()) {
        check(
            pool,
            if gets <= every {
                gets - gets / 2
            } else {
                every
            },
        );
    }
}

/// At a credit point of a (class, thread): one shared add, and, once about
/// `calibrate_every` gets were made since the last attempt, an attempt (which reads
/// the classes' counters and calibrates if enough requests were really made).
#[cold]
#[inline(never)]
fn check(pool: &SizedPool, step: u64) {
    let ticks = pool.ticks.fetch_add(step, Ordering::Relaxed) + step;
    if ticks < pool.due_at.load(Ordering::Relaxed) {
        return;
    }
    // Racy on purpose: two threads may both attempt, and the try-lock lets one in.
    pool.due_at
        .store(ticks + pool.calibrate_every, Ordering::Relaxed);
    pool.calibrate_if(pool.calibrate_every);
}

impl fmt::Debug for SizedPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SizedPool")
            .field("max_size", &self.max_size())
            .field("calibrate", &self.calibrate)
            .field("default_size", &self.default_size())
            .field("ceiling", &self.ceiling())
            .finish_non_exhaustive()
    }
}

impl crate::io::BufferPool for SizedPool {
    /// A buffer of the default size.
    fn get(&self) -> Vec<u8> {
        self.take(self.default_size())
    }

    fn put(&self, buf: Vec<u8>) {
        self.give_back(buf);
    }
}

/// A snapshot of a [`SizedPool`], from [`SizedPool::stats`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SizedStats {
    /// Each class's size and its pool's [`Stats`]: a class's `hits + misses` are the
    /// requests it served (each also counted as `detached`: the buffer leaves the
    /// class's guard), and its `puts` the buffers that came back to it (those whose
    /// capacity it fits, which need not be the ones it handed out).
    pub classes: Vec<(usize, Stats)>,
    /// Requests above the largest class (allocated, never kept).
    pub huge_requests: u64,
    /// Returns dropped because their capacity was above the ceiling.
    pub dropped_over_ceiling: u64,
    /// Returns dropped because their capacity was above the largest class (or below
    /// the smallest).
    pub dropped_out_of_classes: u64,
    /// Calibrations so far.
    pub calibrations: u64,
    /// The default size at the snapshot.
    pub default_size: usize,
    /// The ceiling at the snapshot.
    pub ceiling: usize,
}

impl SizedStats {
    /// Idle buffers in all classes.
    pub fn idle(&self) -> usize {
        self.classes.iter().map(|(_, s)| s.idle).sum()
    }

    /// Bytes held by idle buffers, counting each at its class's size (a lower bound:
    /// a buffer that grew may hold up to twice its class).
    pub fn idle_bytes(&self) -> usize {
        self.classes.iter().map(|(size, s)| size * s.idle).sum()
    }

    /// [`idle_bytes`](SizedStats::idle_bytes) of the class of `size` only (0 for a
    /// size above the largest class).
    pub fn idle_bytes_in(&self, size: usize) -> usize {
        self.classes
            .get(class_for_request(size))
            .map_or(0, |(size, s)| size * s.idle)
    }
}

macro_rules! sized_guard {
    ($name:ident $(<$lt:lifetime>)?, $pool:ty, $doc:literal) => {
        #[doc = $doc]
        pub struct $name$(<$lt>)? {
            pool: $pool,
            buf: ManuallyDrop<Vec<u8>>,
        }

        impl$(<$lt>)? $name$(<$lt>)? {
            /// Takes the buffer out for good: it is never returned to the pool.
            pub fn detach(self) -> Vec<u8> {
                let mut this = ManuallyDrop::new(self);
                // SAFETY: `this` is never dropped, so `buf` is taken exactly once; the
                // pool handle is dropped in place right after, and never used again.
                unsafe {
                    let buf = ManuallyDrop::take(&mut this.buf);
                    std::ptr::drop_in_place(&mut this.pool);
                    buf
                }
            }
        }

        impl$(<$lt>)? Deref for $name$(<$lt>)? {
            type Target = Vec<u8>;
            fn deref(&self) -> &Vec<u8> {
                &self.buf
            }
        }

        impl$(<$lt>)? DerefMut for $name$(<$lt>)? {
            fn deref_mut(&mut self) -> &mut Vec<u8> {
                &mut self.buf
            }
        }

        impl$(<$lt>)? AsRef<[u8]> for $name$(<$lt>)? {
            fn as_ref(&self) -> &[u8] {
                &self.buf
            }
        }

        impl$(<$lt>)? Drop for $name$(<$lt>)? {
            fn drop(&mut self) {
                // SAFETY: `drop` runs once and `buf` is not used after it.
                let buf = unsafe { ManuallyDrop::take(&mut self.buf) };
                self.pool.give_back(buf);
            }
        }

        impl$(<$lt>)? fmt::Debug for $name$(<$lt>)? {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("len", &self.buf.len())
                    .field("capacity", &self.buf.capacity())
                    .finish()
            }
        }
    };
}

sized_guard!(
    SizedBuf<'a>,
    &'a SizedPool,
    "A buffer from a [`SizedPool`], returned to the class its capacity fits when dropped. Derefs to `Vec<u8>`."
);
sized_guard!(
    OwnedSizedBuf,
    Arc<SizedPool>,
    "A buffer from [`SizedPool::get_owned`]: like [`SizedBuf`], holding an `Arc` of the pool instead of a borrow."
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_arithmetic() {
        assert_eq!(class_for_request(0), 0);
        assert_eq!(class_for_request(64), 0);
        assert_eq!(class_for_request(65), 1);
        assert_eq!(class_for_request(128), 1);
        assert_eq!(class_for_request(4 << 20), 16);
        assert_eq!(class_for_request((4 << 20) + 1), 17);
        assert_eq!(class_for_capacity(64), 0);
        assert_eq!(class_for_capacity(127), 0);
        assert_eq!(class_for_capacity(128), 1);
        assert_eq!(class_for_capacity(4 << 20), 16);
        for n in [1, 63, 64, 65, 1000, 4096, 4097, 1 << 20, (1 << 20) + 3] {
            let c = class_for_request(n);
            assert!(class_size(c) >= n && (c == 0 || class_size(c - 1) < n));
        }
    }
}
