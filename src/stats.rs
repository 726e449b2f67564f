//! Counters and the [`Stats`] snapshot.

/// A snapshot of a pool's counters, from [`Pool::stats`](crate::Pool::stats).
///
/// The counters are kept per thread (no contended atomic on the hot path) and summed
/// when you ask, so a snapshot taken while other threads use the pool is approximate:
/// each field is a value it really had recently, but the fields are not read at one
/// instant.
///
/// # Identities
///
/// Once no other thread is using the pool (or in a snapshot of counts that only the
/// calling thread changed), these hold exactly, panics included:
///
/// 1. **Idle objects**: `idle == prefilled + returns - discards - hits - trimmed`.
///    Every prefilled object, and every returned object that is kept, stays idle until
///    a get (or a successful [`try_get`]) takes it (a hit) or [`trim`] frees it.
/// 2. **Objects in use**: `hits + misses == (returns - puts) + detached + in_use()`,
///    where [`in_use`](Stats::in_use) is the number of live guards ([`Pooled`],
///    [`OwnedPooled`]). Guards end by a drop (a return that is not a put) or a
///    `detach`; an object detached and later [`put`] back counts as detached and as a
///    put, so it cancels out.
/// 3. **Objects made**: `misses + prefilled` is the number of objects the create
///    function returned ([`try_get`] never calls it).
/// 4. **Discards by cause**: `discards == refused + over_capacity + no_room + evicted`.
///    The first three are returns that were not kept, `evicted` objects that had
///    been kept (idle) before `trim` dropped them, so identity 1 also reads
///    `idle == prefilled + (returns - refused - over_capacity - no_room) - hits -
///    trimmed - evicted`.
///
/// What happens on the edges:
///
/// - A **create function that panics** counts nothing (no object came to exist).
/// - A **hook that panics** (or a [`Recycle::capacity`] that panics) counts a return
///   and a discard (`refused`): the object is dropped by the unwinding.
/// - A **`T::drop` that panics** while the pool frees an idle object counts that
///   object as it would have been counted (trimmed, or discarded). If that happens
///   while a return sweeps the returning thread's cache (after a trim), the object
///   being returned is dropped by the unwinding and counted as a return and a discard
///   (`no_room`: it found no place before the unwinding dropped it).
/// - A return **during thread exit**, after the pool's per-thread state is gone, goes
///   to the shared tier or is discarded, and is counted like any other.
/// - `trim` sweeps the shared tier by taking objects out and putting the young ones
///   back; a young object that concurrent returns left no room for is dropped and
///   counted as a discard (`evicted`; it is not a return).
///
/// [`trim`]: crate::Pool::trim
/// [`try_get`]: crate::Pool::try_get
/// [`put`]: crate::Pool::put
/// [`Pooled`]: crate::Pooled
/// [`OwnedPooled`]: crate::OwnedPooled
/// [`Recycle::capacity`]: crate::Recycle::capacity
///
/// With the `serde` feature, `Stats` is `Serialize` and `Deserialize` (its fields,
/// by name; [`in_use`](Stats::in_use) is derived, not stored).
///
/// # Examples
///
/// ```
/// use recycle_pool::Pool;
///
/// let pool = Pool::new(Vec::<u8>::new);
/// drop(pool.get()); // miss: created
/// let held = pool.get(); // hit: reused
/// pool.put(Vec::new()); // a put: kept
/// let s = pool.stats();
/// assert_eq!((s.hits, s.misses, s.returns, s.puts, s.idle), (1, 1, 2, 1, 1));
/// assert_eq!(s.idle as u64, s.prefilled + s.returns - s.discards - s.hits - s.trimmed);
/// assert_eq!(s.hits + s.misses, (s.returns - s.puts) + s.detached + s.in_use());
/// assert_eq!(s.in_use(), 1);
/// # drop(held);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Stats {
    /// Gets served by an idle object from the per-thread or the shared tier.
    pub hits: u64,
    /// Gets that found no idle object: objects the create function returned.
    pub misses: u64,
    /// Objects that came back to the pool (guard drop or [`Pool::put`](crate::Pool::put)),
    /// kept or not.
    pub returns: u64,
    /// Objects dropped instead of kept, all causes:
    /// `refused + over_capacity + no_room + evicted`.
    pub discards: u64,
    /// Returns the hook refused ([`Reuse::Discard`](crate::Reuse)), or whose hook (or
    /// [`Recycle::capacity`](crate::Recycle::capacity)) panicked.
    pub refused: u64,
    /// Returns the hook kept but whose capacity was over
    /// [`max_capacity`](crate::Builder::max_capacity).
    pub over_capacity: u64,
    /// Returns kept by the hook that found no room in this thread's cache nor in the
    /// shared tier ([`max_idle`](crate::Builder::max_idle)).
    pub no_room: u64,
    /// Young idle objects that [`Pool::trim`](crate::Pool::trim), sweeping the shared
    /// tier, found no room to put back (concurrent returns filled it meanwhile). Not
    /// returns: objects freed because they *aged* are counted in `trimmed`.
    pub evicted: u64,
    /// Idle objects freed by [`Pool::trim`](crate::Pool::trim).
    pub trimmed: u64,
    /// Objects taken out for good with `detach`.
    pub detached: u64,
    /// Returns made through [`Pool::put`](crate::Pool::put) (also counted in `returns`).
    pub puts: u64,
    /// [`Pool::try_get`](crate::Pool::try_get) calls that found no idle object (and so
    /// returned `None` without creating one). A `try_get` that found one is a hit.
    pub empty_tries: u64,
    /// Objects made at build time by [`Builder::prefill`](crate::Builder::prefill) (not
    /// counted in `misses`, which counts gets).
    pub prefilled: u64,
    /// Idle objects held right now, in all tiers (approximate while threads are busy).
    pub idle: usize,
}

impl Stats {
    /// Live guards: objects handed out and not yet returned or detached,
    /// `hits + misses - (returns - puts) - detached` (approximate while threads are
    /// busy; saturates at zero).
    ///
    /// # Examples
    ///
    /// ```
    /// use recycle_pool::Pool;
    ///
    /// let pool = Pool::new(String::new);
    /// let a = pool.get();
    /// let b = pool.get();
    /// assert_eq!(pool.stats().in_use(), 2);
    /// pool.put(b.detach()); // detached, then put back: no longer in use
    /// assert_eq!(pool.stats().in_use(), 1);
    /// drop(a);
    /// assert_eq!(pool.stats().in_use(), 0);
    /// ```
    pub fn in_use(&self) -> u64 {
        (self.hits + self.misses + self.puts).saturating_sub(self.returns + self.detached)
    }
}
