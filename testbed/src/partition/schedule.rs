//! When partitions come and go: once, every interval for a duration (play's
//! bucket form), or at random with a mean time between failures (`--mtbf`).
//! Seeded, so a run's sequence of cuts can be replayed.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::grudge::Grudge;
use super::spec::PartitionSpec;

/// How a partition is timed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Timing {
    /// Applied at the start, healed at the end.
    Once,
    /// Cut at every multiple of `interval`, healed `duration` later.
    Every {
        interval: Duration,
        duration: Duration,
    },
    /// Cuts start at random, exponentially distributed gaps with this mean,
    /// and last `duration`.
    Mtbf { mean: Duration, duration: Duration },
}

/// One step of a schedule.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Cut(Grudge),
    Heal,
}

/// A step and when it happens, from the start of the run.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub at: Duration,
    pub action: Action,
}

/// The timing a spec implies on its own (the bucket form may carry one).
pub fn timing_of(spec: &PartitionSpec) -> Timing {
    match spec {
        PartitionSpec::Buckets {
            interval: Some(interval),
            duration,
            ..
        } => Timing::Every {
            interval: *interval,
            duration: duration.unwrap_or(*interval / 2),
        },
        _ => Timing::Once,
    }
}

/// Every cut and heal up to `horizon`. Random forms are dealt anew for each
/// cut, each from its own seed derived from `seed`.
pub fn schedule(
    spec: &PartitionSpec,
    timing: Timing,
    names: &[String],
    seed: u64,
    horizon: Duration,
) -> Result<Vec<Event>, String> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut events = Vec::new();
    let cut = |at: Duration, rng: &mut ChaCha8Rng| -> Result<Event, String> {
        Ok(Event {
            at,
            action: Action::Cut(Grudge::from_spec(spec, names, rng.gen())?),
        })
    };
    match timing {
        Timing::Once => events.push(cut(Duration::ZERO, &mut rng)?),
        Timing::Every { interval, duration } => {
            if interval.is_zero() {
                return Err("the interval of an intermittent partition must be above zero".into());
            }
            let mut at = Duration::ZERO;
            while at < horizon {
                events.push(cut(at, &mut rng)?);
                events.push(Event {
                    at: at + duration,
                    action: Action::Heal,
                });
                at += interval;
            }
        }
        Timing::Mtbf { mean, duration } => {
            if mean.is_zero() {
                return Err("--mtbf must be above zero".into());
            }
            let mut at = Duration::ZERO;
            loop {
                // Exponential gap: -mean * ln(U), U in (0, 1].
                let u: f64 = 1.0 - rng.gen::<f64>();
                at += Duration::from_secs_f64(-mean.as_secs_f64() * u.ln());
                if at >= horizon {
                    break;
                }
                events.push(cut(at, &mut rng)?);
                at += duration;
                events.push(Event {
                    at,
                    action: Action::Heal,
                });
            }
        }
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        (0..6).map(|i| i.to_string()).collect()
    }

    #[test]
    fn the_bucket_form_cuts_every_interval_and_heals_after_the_duration() {
        let spec = PartitionSpec::parse("0.5 0.5 interval 10s duration 5s").unwrap();
        let events = schedule(
            &spec,
            timing_of(&spec),
            &names(),
            1,
            Duration::from_secs(30),
        )
        .unwrap();
        let times: Vec<u64> = events.iter().map(|e| e.at.as_secs()).collect();
        assert_eq!(times, vec![0, 5, 10, 15, 20, 25]);
        assert!(matches!(events[0].action, Action::Cut(_)) && events[1].action == Action::Heal);
        let cuts: Vec<_> = events
            .iter()
            .filter_map(|e| {
                if let Action::Cut(g) = &e.action {
                    Some(g.clone())
                } else {
                    None
                }
            })
            .collect();
        assert!(
            cuts.windows(2).any(|w| w[0] != w[1]),
            "buckets are dealt anew"
        );
    }

    #[test]
    fn mtbf_gaps_average_the_mean_and_replay_with_the_seed() {
        let spec = PartitionSpec::Halves;
        let timing = Timing::Mtbf {
            mean: Duration::from_secs(10),
            duration: Duration::ZERO,
        };
        let events = schedule(&spec, timing, &names(), 3, Duration::from_secs(100_000)).unwrap();
        let cuts = events
            .iter()
            .filter(|e| matches!(e.action, Action::Cut(_)))
            .count();
        // 100,000 s / 10 s = 10,000 expected; Poisson sd 100.
        assert!((9_600..=10_400).contains(&cuts), "{cuts}");
        assert_eq!(
            events,
            schedule(&spec, timing, &names(), 3, Duration::from_secs(100_000)).unwrap()
        );
    }
}
