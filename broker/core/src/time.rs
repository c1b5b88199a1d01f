//! Time as the core sees it: a monotonic [`Instant`] and the wall clock, both handed in by
//! the driver with every input.
//!
//! The core never reads a clock (STYLE.md rule 9). Monotonic time orders deadlines (fetch
//! long polls, produce timeouts, retention checks); the wall clock only stamps records
//! (LogAppendTime) and judges retention by record timestamps, so a wall-clock jump can
//! change which data is expired but never reorders the node's own deadlines.

use std::time::Duration;

/// A point in monotonic time, in nanoseconds since the driver's epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(u64);

impl Instant {
    /// The instant `nanos` nanoseconds after the driver's epoch.
    pub fn from_nanos(nanos: u64) -> Self {
        Instant(nanos)
    }

    /// Nanoseconds since the driver's epoch.
    pub fn as_nanos(self) -> u64 {
        self.0
    }

    /// `self + duration`, saturating at the end of time instead of overflowing.
    pub fn saturating_add(self, duration: Duration) -> Self {
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        Instant(self.0.saturating_add(nanos))
    }

    /// Time elapsed from `earlier` to `self`, zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    /// `self + ms` milliseconds (saturating); the unit most Kafka timeouts use.
    pub fn add_ms(self, ms: u64) -> Self {
        self.saturating_add(Duration::from_millis(ms))
    }
}

/// Everything the core knows about "now" for one input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Now {
    /// Monotonic time: orders deadlines.
    pub instant: Instant,
    /// Wall-clock milliseconds since the Unix epoch: record timestamps and retention.
    pub wall_ms: i64,
}

impl Now {
    /// Convenience constructor.
    pub fn new(instant: Instant, wall_ms: i64) -> Self {
        Now { instant, wall_ms }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: arithmetic never panics at the edges. Method: push values past u64::MAX and
    // below zero and check the saturation.
    #[test]
    fn saturates_at_both_ends() {
        let end = Instant::from_nanos(u64::MAX - 1);
        assert_eq!(
            end.saturating_add(Duration::from_secs(1)).as_nanos(),
            u64::MAX
        );
        assert_eq!(end.saturating_add(Duration::MAX).as_nanos(), u64::MAX);
        let early = Instant::from_nanos(5);
        let late = Instant::from_nanos(12);
        assert_eq!(early.saturating_duration_since(late), Duration::ZERO);
        assert_eq!(
            late.saturating_duration_since(early),
            Duration::from_nanos(7)
        );
        assert_eq!(early.add_ms(2).as_nanos(), 2_000_005);
    }
}
