//! Whether each worker still runs batches, judged from its `batches`
//! counter. An idle worker still runs one every millisecond or two (it
//! wakes from its wait to look again), so a count that has not moved for
//! seconds means the worker is stuck: the process answers HTTP, but its
//! packets go nowhere.
//!
//! The count is read when `/healthz` is asked, so "has not moved for 2 s"
//! means: not since a probe at least 2 s ago. A checker polling every few
//! seconds sees a stuck worker from its second probe on.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::stats::SharedCounters;

/// How long a worker's batch count may stand still before `/healthz` calls
/// the worker stuck.
pub const DEFAULT_STALL_LIMIT: Duration = Duration::from_secs(2);

/// Each worker's batch count when last read, and when it last moved.
#[derive(Debug)]
pub struct Liveness {
    limit: Duration,
    seen: Mutex<Vec<Seen>>,
}

#[derive(Debug, Clone, Copy)]
struct Seen {
    batches: u64,
    moved: Instant,
}

impl Liveness {
    /// Starts watching `counters` now, as if every worker had just run a batch.
    pub fn new(counters: &[SharedCounters], limit: Duration) -> Self {
        let now = Instant::now();
        let seen = counters
            .iter()
            .map(|c| Seen {
                batches: c.batches.get(),
                moved: now,
            })
            .collect();
        Self {
            limit,
            seen: Mutex::new(seen),
        }
    }

    /// The workers (by index) whose batch count has not moved for longer
    /// than the limit, with how long it has stood still.
    pub fn stalled(&self, counters: &[SharedCounters]) -> Vec<(usize, Duration)> {
        let now = Instant::now();
        // A poisoned lock only means a reader panicked mid-update of plain
        // numbers: the numbers are still usable.
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        seen.iter_mut()
            .zip(counters)
            .enumerate()
            .filter_map(|(worker, (seen, counters))| {
                let batches = counters.batches.get();
                if batches != seen.batches {
                    *seen = Seen {
                        batches,
                        moved: now,
                    };
                }
                let still = now.duration_since(seen.moved);
                (still > self.limit).then_some((worker, still))
            })
            .collect()
    }
}
