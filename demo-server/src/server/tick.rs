//! [`Tick`]: the event loop's clock, 32-bit milliseconds, for the deadlines every
//! connection carries (4 bytes where an `Instant` takes 16).

use std::time::{Duration, Instant};

use crate::state::MAX_TIMEOUT;

/// A time on the worker's clock, in milliseconds since the worker started: 4 bytes in
/// every connection where an `Instant` takes 16 (a connection holds three).
///
/// The count wraps after 49.7 days, so ticks are compared by their wrapping
/// difference: [`reached`](Tick::reached) and [`since`](Tick::since) are right while the
/// two ticks are less than 24.8 days apart. They always are: every deadline is set at
/// most [`MAX_TIMEOUT`] (a day) ahead, and the sweep acts on a passed deadline within a
/// [`TICK`](super::TICK), so no connection keeps a tick much older than its longest timeout.
///
/// A tick is a whole millisecond (rounded down), so a client-side timeout may fire up
/// to a millisecond before its exact `Duration`: far below any timeout one would set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Tick(u32);

impl Tick {
    /// `now` on the clock that started at `epoch`.
    pub(super) fn at(epoch: Instant, now: Instant) -> Tick {
        // Truncating to 32 bits is the wrap-around.
        Tick(now.saturating_duration_since(epoch).as_millis() as u32)
    }

    /// `d` later (at most [`MAX_TIMEOUT`] later: longer timeouts are refused by
    /// `Limits::check`, and clamped here for the ticks' sake).
    pub(super) fn after(self, d: Duration) -> Tick {
        Tick(self.0.wrapping_add(d.min(MAX_TIMEOUT).as_millis() as u32))
    }

    /// Whether `deadline` is now or past.
    pub(super) fn reached(self, deadline: Tick) -> bool {
        self.0.wrapping_sub(deadline.0) < 1 << 31
    }

    /// Time elapsed since `earlier`.
    pub(super) fn since(self, earlier: Tick) -> Duration {
        Duration::from_millis(u64::from(self.0.wrapping_sub(earlier.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_compare_across_the_wrap_around() {
        let before_wrap = Tick(u32::MAX - 5);
        let deadline = before_wrap.after(Duration::from_millis(10));
        assert_eq!(deadline, Tick(4), "wrapped");
        assert!(!before_wrap.reached(deadline));
        assert!(!Tick(u32::MAX).reached(deadline));
        assert!(!Tick(3).reached(deadline));
        assert!(Tick(4).reached(deadline));
        assert!(Tick(5).reached(deadline));
        // A deadline up to 24.8 days past still counts as past.
        assert!(Tick(deadline.0.wrapping_add((1 << 31) - 1)).reached(deadline));
        assert_eq!(Tick(3).since(before_wrap), Duration::from_millis(9));
        assert_eq!(Tick(3).since(Tick(3)), Duration::ZERO);
    }

    #[test]
    fn ticks_clamp_timeouts_to_a_day() {
        let start = Tick(7);
        let far = start.after(Duration::from_secs(40 * 24 * 60 * 60));
        assert_eq!(far, start.after(MAX_TIMEOUT));
        assert!(!start.reached(far), "40 days ahead is not already past");
    }

    #[test]
    fn ticks_count_milliseconds_from_the_epoch() {
        let epoch = Instant::now();
        assert_eq!(Tick::at(epoch, epoch), Tick(0));
        assert_eq!(
            Tick::at(epoch, epoch + Duration::from_millis(1500)),
            Tick(1500)
        );
        assert_eq!(Tick::at(epoch + Duration::from_secs(1), epoch), Tick(0));
    }
}
