//! `accept_delay` (beyond Toxiproxy): a connect-phase fault. A new connection waits
//! `delay` ms before the proxy dials the upstream or reads a byte, as a backlogged
//! server would; connections already open are not affected.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::bounds::{self, Bounded};

/// Attributes: `delay` in milliseconds, at most an hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AcceptDelay {
    pub delay: u64,
}

impl Bounded for AcceptDelay {
    fn check(&self) -> Result<(), String> {
        bounds::millis("delay", self.delay)
    }
}

impl AcceptDelay {
    pub fn accept_delay(&self) -> Duration {
        Duration::from_millis(self.delay)
    }
}
