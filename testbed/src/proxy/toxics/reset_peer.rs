//! `reset_peer`: data flows, and `timeout` ms after the toxic took effect on a
//! connection it is reset (TCP RST, as a crashed peer would), 0 for at once.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::bounds::{self, later, Bounded};

/// Attributes: `timeout` in milliseconds, at most an hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ResetPeer {
    pub timeout: u64,
}

impl Bounded for ResetPeer {
    fn check(&self) -> Result<(), String> {
        bounds::millis("timeout", self.timeout)
    }
}

impl ResetPeer {
    /// When the connection is reset.
    pub fn reset_at(&self, active_since: Instant) -> Instant {
        later(active_since, Duration::from_millis(self.timeout))
    }
}
