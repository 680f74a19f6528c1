//! `slow_close`: the close (FIN) in the toxic's direction is passed on `delay` ms late.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Attributes: `delay` in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SlowClose {
    pub delay: u64,
}

impl SlowClose {
    /// How long the end of stream waits before it is passed on.
    pub fn close_delay(&self) -> Duration {
        Duration::from_millis(self.delay)
    }
}
