//! Latency percentiles (p50, p90, p99, max) over one run's samples.
//!
//! Every sample is kept, so the percentiles are exact (nearest rank), not estimated:
//! a run holds at most a few million connections, eight bytes each.

use std::time::Duration;

use serde::Serialize;

/// The samples of one latency (connect time, or time to the first reply).
#[derive(Debug, Default, Clone)]
pub struct LatencySamples {
    nanos: Vec<u64>,
}

/// Percentiles of one latency, in nanoseconds (the unit mconnect's JSON uses for durations).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LatencySummary {
    pub count: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub max: u64,
}

impl LatencySamples {
    pub fn record(&mut self, latency: Duration) {
        self.nanos
            .push(u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX));
    }

    pub fn len(&self) -> usize {
        self.nanos.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nanos.is_empty()
    }

    /// The percentiles, or `None` when nothing was measured (every connect failed).
    pub fn summary(&mut self) -> Option<LatencySummary> {
        if self.nanos.is_empty() {
            return None;
        }
        self.nanos.sort_unstable();
        let sorted = &self.nanos;
        Some(LatencySummary {
            count: sorted.len() as u64,
            p50: nearest_rank(sorted, 50),
            p90: nearest_rank(sorted, 90),
            p99: nearest_rank(sorted, 99),
            max: sorted[sorted.len() - 1],
        })
    }
}

/// The smallest sample with at least `percent`% of the samples at or below it.
/// `sorted` is non-empty and ascending.
fn nearest_rank(sorted: &[u64], percent: u64) -> u64 {
    let count = sorted.len() as u64;
    let rank = (percent * count).div_ceil(100).max(1);
    sorted[(rank - 1) as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(values_us: impl IntoIterator<Item = u64>) -> LatencySamples {
        let mut samples = LatencySamples::default();
        for us in values_us {
            samples.record(Duration::from_micros(us));
        }
        samples
    }

    #[test]
    fn no_samples_give_no_summary() {
        assert_eq!(LatencySamples::default().summary(), None);
    }

    #[test]
    fn one_sample_is_every_percentile() {
        let summary = samples([7]).summary().unwrap();
        assert_eq!(
            summary,
            LatencySummary {
                count: 1,
                p50: 7_000,
                p90: 7_000,
                p99: 7_000,
                max: 7_000
            }
        );
    }

    #[test]
    fn percentiles_use_the_nearest_rank_of_unsorted_samples() {
        // 1..=100 µs, shuffled: p50 is the 50th value, p90 the 90th, p99 the 99th.
        let values: Vec<u64> = (1..=100).map(|i| (i * 37) % 100 + 1).collect();
        let summary = samples(values).summary().unwrap();
        assert_eq!(summary.count, 100);
        assert_eq!(summary.p50, 50_000);
        assert_eq!(summary.p90, 90_000);
        assert_eq!(summary.p99, 99_000);
        assert_eq!(summary.max, 100_000);
    }

    #[test]
    fn a_single_slow_sample_shows_in_max_but_not_in_p90() {
        let mut values = vec![10; 19];
        values.push(5_000);
        let summary = samples(values).summary().unwrap();
        assert_eq!(summary.p90, 10_000);
        assert_eq!(summary.max, 5_000_000);
    }
}
