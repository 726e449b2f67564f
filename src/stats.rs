//! Counters and the [`Stats`] snapshot.

/// A snapshot of a pool's counters, from [`Pool::stats`](crate::Pool::stats).
///
/// The counters are kept per thread (no contended atomic on the hot path) and summed
/// when you ask, so a snapshot taken while other threads use the pool is approximate:
/// each field is a value it really had recently, but the fields are not read at one
/// instant. Once the other threads are quiet, the numbers add up:
///
/// - `hits + misses` objects were handed out;
/// - `returns` came back (through a guard's drop or [`Pool::put`](crate::Pool::put)),
///   and `discards` of those were dropped instead of kept;
/// - `hits + misses - detached` is at most `returns` plus the objects still out.
///
/// # Examples
///
/// ```
/// use recycle::Pool;
///
/// let pool = Pool::new(Vec::<u8>::new);
/// drop(pool.get()); // miss: created
/// drop(pool.get()); // hit: reused
/// let stats = pool.stats();
/// assert_eq!((stats.hits, stats.misses, stats.returns, stats.idle), (1, 1, 2, 1));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Stats {
    /// Gets served by an idle object from the per-thread or the shared tier.
    pub hits: u64,
    /// Gets that found no idle object and called the create function.
    pub misses: u64,
    /// Objects that came back to the pool (guard drop or `put`), kept or not.
    pub returns: u64,
    /// Returned objects that were dropped: the hook said [`Reuse::Discard`](crate::Reuse),
    /// the object was over [`max_capacity`](crate::Builder::max_capacity), or both tiers
    /// were full.
    pub discards: u64,
    /// Idle objects freed by [`Pool::trim`](crate::Pool::trim).
    pub trimmed: u64,
    /// Objects taken out for good with `detach`.
    pub detached: u64,
    /// Idle objects held right now, in all tiers (approximate while threads are busy).
    pub idle: usize,
}

impl Stats {
    /// Objects handed out and not yet returned or detached (approximate while threads
    /// are busy; saturates at zero).
    ///
    /// # Examples
    ///
    /// ```
    /// use recycle::Pool;
    ///
    /// let pool = Pool::new(String::new);
    /// let a = pool.get();
    /// let b = pool.get();
    /// assert_eq!(pool.stats().in_use(), 2);
    /// drop((a, b));
    /// assert_eq!(pool.stats().in_use(), 0);
    /// ```
    pub fn in_use(&self) -> u64 {
        (self.hits + self.misses).saturating_sub(self.returns + self.detached)
    }
}
