//! `timeout`: stops all data in the toxic's direction (it is dropped, as Toxiproxy
//! does) and closes the connection `timeout` ms after the toxic took effect on it;
//! with `timeout: 0` the connection stays open and silent until the toxic goes.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::bounds::{self, later, Bounded};

/// Attributes: `timeout` in milliseconds, 0 for never, at most an hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Timeout {
    pub timeout: u64,
}

impl Bounded for Timeout {
    fn check(&self) -> Result<(), String> {
        bounds::millis("timeout", self.timeout)
    }
}

impl Timeout {
    /// When the connection is closed, counting from when the toxic took effect on it.
    pub fn close_at(&self, active_since: Instant) -> Option<Instant> {
        (self.timeout > 0).then(|| later(active_since, Duration::from_millis(self.timeout)))
    }
}
