//! Whether the balancer can forward: some backend in rotation and every
//! worker running batches. `/healthz` answers with it, and the BGP speaker
//! announces the balancer's routes only while it holds, so that routers
//! and orchestrators see the same judgement.

use std::sync::Arc;

use crate::api::Liveness;
use crate::backends::Publisher;
use crate::stats::SharedCounters;

/// What the judgement reads: the backend set and the workers' counters.
#[derive(Debug, Clone)]
pub struct Readiness {
    pub publisher: Publisher,
    pub counters: Arc<[SharedCounters]>,
    pub liveness: Arc<Liveness>,
}

/// One judgement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// What keeps it from forwarding; empty when ready.
    pub problems: Vec<String>,
    pub backends: usize,
    pub in_rotation: usize,
}

impl Verdict {
    pub fn ready(&self) -> bool {
        self.problems.is_empty()
    }
}

impl Readiness {
    /// Judges now (a worker's batch count is compared with the last look).
    pub fn check(&self) -> Verdict {
        let backends = self.publisher.backends();
        let in_rotation = backends.iter().filter(|b| b.in_rotation()).count();
        let mut problems = Vec::new();
        if in_rotation == 0 {
            problems.push(format!(
                "no backend is in rotation (of {}): every packet for the balancer is dropped as no_backend",
                backends.len()
            ));
        }
        for (worker, still) in self.liveness.stalled(&self.counters) {
            problems.push(format!(
                "worker {worker} has run no batch for {:.1} s",
                still.as_secs_f64()
            ));
        }
        Verdict {
            problems,
            backends: backends.len(),
            in_rotation,
        }
    }
}
