//! The largest values toxic attributes may take, and the checks that hold them there.
//!
//! Toxiproxy takes any u64 for a time or a size, and some of them overflow once they
//! are added to a clock (slicer gaps add up per slice; a toxic's `duration` is added
//! to now). Here every toxic file states its attributes' bounds in [`Bounded::check`],
//! the registry runs it on every create and update, and a value out of bounds is a 400
//! naming the field, the value and what is accepted. [`later`] is the second line: a
//! deadline that would still overflow lands far in the future instead of panicking.

use std::time::{Duration, Instant};

/// The longest time in milliseconds (latency, jitter, delays, timeouts): one hour.
/// Longer is indistinguishable from forever for a test, and keeps every deadline,
/// summed over a full queue, far from the clock's end.
pub const MAX_MILLIS: u64 = 3_600_000;
/// The same hour in microseconds (`slicer`'s `delay`).
pub const MAX_MICROS: u64 = MAX_MILLIS * 1000;
/// The largest slice (`slicer`'s `average_size` and `size_variation`): 1 MiB, far
/// above a read (64 KiB), past which a slicer leaves chunks whole anyway.
pub const MAX_SLICE_BYTES: u64 = 1 << 20;

/// A toxic's attributes, checked against their bounds.
pub trait Bounded {
    /// Err names the attribute, its value and what is accepted.
    fn check(&self) -> Result<(), String>;
}

/// `value` (of `field`, in `unit`) is at most `max`.
pub fn at_most(field: &str, value: u64, max: u64, unit: &str) -> Result<(), String> {
    if value <= max {
        Ok(())
    } else {
        Err(format!(
            "{field} {value} {unit} is above the maximum, {max} {unit}"
        ))
    }
}

/// A time attribute in milliseconds, at most [`MAX_MILLIS`] (one hour).
pub fn millis(field: &str, value: u64) -> Result<(), String> {
    at_most(field, value, MAX_MILLIS, "ms")
}

/// A probability in [0, 1].
pub fn probability(field: &str, p: f64) -> Result<(), String> {
    if (0.0..=1.0).contains(&p) {
        Ok(())
    } else {
        Err(format!("{field} {p} is outside [0, 1]"))
    }
}

/// `at + by`, or a time a year on if that overflows the clock: bounded attributes
/// never get there, this keeps a deadline from ever being a panic.
pub fn later(at: Instant, by: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(365 * 24 * 3600);
    at.checked_add(by)
        .or_else(|| at.checked_add(FAR))
        .unwrap_or(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_past_the_clocks_end_is_far_away_not_a_panic() {
        let now = Instant::now();
        assert_eq!(
            later(now, Duration::from_secs(5)),
            now + Duration::from_secs(5)
        );
        let far = later(now, Duration::MAX);
        assert!(far > now + Duration::from_secs(300 * 24 * 3600));
    }

    #[test]
    fn out_of_bounds_messages_name_the_field_the_value_and_the_maximum() {
        assert!(millis("latency", MAX_MILLIS).is_ok());
        let error = millis("latency", u64::MAX).unwrap_err();
        assert_eq!(
            error,
            "latency 18446744073709551615 ms is above the maximum, 3600000 ms"
        );
        assert!(probability("probability", -0.5)
            .unwrap_err()
            .contains("-0.5"));
    }
}
