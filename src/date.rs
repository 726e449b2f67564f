//! The `Date` header value, cached per second ([`DateCache`]), and the [`Clock`] it
//! reads. Also reachable as `recycle_pool::status::{DateCache, Clock, SystemClock}`.
//!
//! The value is shared by all threads behind the crate's read-copy-update cell (the
//! one the status-line cache uses, [`status`](crate::status) explains why): reads are
//! lock-free, and the thread that notices a new second publishes it.

use std::fmt;
use std::io::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::BufMut;

use crate::sync::ArcCell;

/// Where [`DateCache`] reads the time: the system clock, or a test's.
pub trait Clock: Send + Sync {
    /// The current wall-clock time.
    fn now(&self) -> SystemTime;
}

impl<C: Clock + ?Sized> Clock for Box<C> {
    fn now(&self) -> SystemTime {
        (**self).now()
    }
}

impl<C: Clock + ?Sized> Clock for std::sync::Arc<C> {
    fn now(&self) -> SystemTime {
        (**self).now()
    }
}

/// [`Clock`] that reads `SystemTime::now()`.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// Length of an IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`.
pub const DATE_LEN: usize = 29;

/// The last second `httpdate` can format (9999-12-31T23:59:59Z).
const MAX_SECOND: u64 = 253_402_300_799;

/// How far back (in seconds) the clock may go without [`DateCache`] following it.
const STEP_BACK_SLACK: u64 = 2;

/// The whole second `time` falls in, clamped to what an IMF-fixdate can show (a clock
/// before 1970 or after 9999 is broken; clamp rather than panic).
fn second_of(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        .min(MAX_SECOND)
}

/// Whether a clock reading in second `now` replaces the value published for second
/// `published`: a later second, or a step back of more than [`STEP_BACK_SLACK`].
fn replaces(now: u64, published: u64) -> bool {
    now > published || now + STEP_BACK_SLACK < published
}

#[derive(Clone, Copy)]
struct Date {
    second: u64,
    value: [u8; DATE_LEN],
}

impl Date {
    fn at(second: u64) -> Self {
        let mut value = [0u8; DATE_LEN];
        let date = httpdate::HttpDate::from(UNIX_EPOCH + Duration::from_secs(second));
        write!(&mut value[..], "{date}").expect("an IMF-fixdate is 29 bytes");
        Self { second, value }
    }
}

/// The `Date` header value (IMF-fixdate, RFC 9110 §5.6.7), shared by all threads:
/// reads are lock-free, and a thread that notices a new second formats it and swaps it
/// in. A value is formatted only when it changes (if threads race to publish the same
/// second, each of them formats it and one wins); a refresh that changes nothing costs
/// one clock reading and one load, whether the clock is in the published second or a
/// little behind it.
///
/// # When the clock goes back
///
/// The value follows a clock set back by more than 2 seconds (NTP setting right a
/// clock that ran ahead). A step back of 2 seconds or less (a leap second, a thread
/// that read the clock late) is not followed: the value stays on the later second until
/// the clock catches up, so it never flickers back and forth, and such a refresh takes
/// the fast path. Threads racing to publish never put an older second back: each reads
/// the clock again just before publishing, after the value it replaces was published.
///
/// # Examples
///
/// ```
/// use recycle_pool::date::DateCache;
///
/// let dates = DateCache::new();
/// let mut header = b"Date: ".to_vec();
/// dates.write(&mut header);
/// assert_eq!(header.len(), 6 + 29);
/// assert!(header.ends_with(b" GMT"));
/// ```
pub struct DateCache<C: Clock = SystemClock> {
    clock: C,
    current: ArcCell<Date>,
}

impl DateCache<SystemClock> {
    /// A cache on the system clock.
    pub fn new() -> Self {
        Self::with_clock(SystemClock)
    }
}

impl Default for DateCache<SystemClock> {
    fn default() -> Self {
        Self::new()
    }
}

impl<C: Clock> DateCache<C> {
    /// A cache on `clock` (tests drive time through their own).
    pub fn with_clock(clock: C) -> Self {
        let current = ArcCell::new(Date::at(second_of(clock.now())));
        Self { clock, current }
    }

    /// Reads the clock and, if a new second began (or the clock was set back by more
    /// than 2 seconds: see [above](Self#when-the-clock-goes-back)), formats and
    /// publishes it. Returns whether the value changed. An event loop calls this once
    /// per iteration and then uses [`write_cached`](Self::write_cached) for every
    /// response.
    pub fn refresh(&self) -> bool {
        // The fast path, whenever nothing is to be published (the same second, or
        // one within the slack behind): one clock reading and one load.
        let now = second_of(self.clock.now());
        if !self.current.with(|date| replaces(now, date.second)) {
            return false;
        }
        let mut changed = false;
        self.current.update(|date| {
            // The clock is read (again) here, after `date` was published, so it is
            // never older than the reading `date` was made from: a thread that lost
            // the race to publish reads the newer second and has nothing to do.
            let now = second_of(self.clock.now());
            changed = replaces(now, date.second);
            changed.then(|| Date::at(now))
        });
        changed
    }

    /// Refreshes (see [`refresh`](Self::refresh)) and appends the current value.
    pub fn write<B: BufMut + ?Sized>(&self, out: &mut B) {
        self.refresh();
        self.write_cached(out);
    }

    /// Appends the value as of the last refresh, without reading the clock.
    #[inline]
    pub fn write_cached<B: BufMut + ?Sized>(&self, out: &mut B) {
        self.current.with(|date| out.put_slice(&date.value));
    }

    /// The current value, refreshed.
    pub fn value(&self) -> [u8; DATE_LEN] {
        self.refresh();
        self.current.with(|date| date.value)
    }
}

impl<C: Clock> fmt::Debug for DateCache<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = self.current.with(|date| date.value);
        f.debug_struct("DateCache")
            .field("value", &String::from_utf8_lossy(&value))
            .finish_non_exhaustive()
    }
}
