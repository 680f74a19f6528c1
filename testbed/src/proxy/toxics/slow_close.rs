//! `slow_close`: the close (FIN) in the toxic's direction is passed on `delay` ms late.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::bounds::{self, Bounded};

/// Attributes: `delay` in milliseconds, at most an hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SlowClose {
    pub delay: u64,
}

impl Bounded for SlowClose {
    fn check(&self) -> Result<(), String> {
        bounds::millis("delay", self.delay)
    }
}

impl SlowClose {
    /// How long the end of stream waits before it is passed on.
    pub fn close_delay(&self) -> Duration {
        Duration::from_millis(self.delay)
    }
}
