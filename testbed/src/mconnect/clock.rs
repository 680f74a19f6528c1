//! One run's clock: a monotonic start for measuring and the wall-clock time it stood for,
//! so every timestamp in a report or events file is RFC 3339 and consistent with the others.

use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};

/// The start of a run, in both clocks.
#[derive(Debug, Clone, Copy)]
pub struct RunClock {
    start: Instant,
    start_wall: DateTime<Utc>,
}

impl RunClock {
    pub fn start() -> Self {
        Self {
            start: Instant::now(),
            start_wall: Utc::now(),
        }
    }

    pub fn start_instant(&self) -> Instant {
        self.start
    }

    pub fn start_time(&self) -> DateTime<Utc> {
        self.start_wall
    }

    /// Time since the start, saturating at zero for instants before it.
    pub fn since_start(&self, at: Instant) -> Duration {
        at.saturating_duration_since(self.start)
    }

    /// The wall-clock time of `at`, derived from the start so that it never jumps
    /// with the system clock in the middle of a run.
    pub fn wall(&self, at: Instant) -> DateTime<Utc> {
        TimeDelta::from_std(self.since_start(at))
            .ok()
            .and_then(|delta| self.start_wall.checked_add_signed(delta))
            .unwrap_or(self.start_wall)
    }
}

/// RFC 3339 with nanoseconds and `Z`, as Go's `time.Time` marshals (mconnect's `start_time`).
pub fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// A count or a number of nanoseconds as a float, for rates and display. Exact
/// below 2^53, and beyond that the rounding cannot matter for either use.
#[allow(clippy::cast_precision_loss)]
pub fn approx_f64(value: u64) -> f64 {
    value as f64
}

/// Saturating nanoseconds, the unit of mconnect's JSON durations.
pub fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wall_time_advances_with_the_monotonic_clock() {
        let clock = RunClock::start();
        let later = clock.start_instant() + Duration::from_millis(1_500);
        let delta = clock.wall(later) - clock.start_time();
        assert_eq!(delta, TimeDelta::milliseconds(1_500));
    }

    #[test]
    fn rfc3339_has_nanoseconds_and_utc_zulu() {
        let time = DateTime::parse_from_rfc3339("2024-05-01T10:20:30.5+00:00")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(rfc3339(time), "2024-05-01T10:20:30.500000000Z");
    }
}
