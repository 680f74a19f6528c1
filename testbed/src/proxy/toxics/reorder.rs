//! `reorder` (beyond Toxiproxy, UDP proxies): with `probability` a datagram is held
//! back and sent after the next one (or after `delay` ms if none comes), so pairs swap.

use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::bounds::{self, Bounded};

/// Attributes: `probability` in [0, 1], `delay` the longest hold in milliseconds
/// (at most an hour).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Reorder {
    pub probability: f64,
    pub delay: u64,
}

impl Default for Reorder {
    fn default() -> Self {
        Reorder {
            probability: 0.0,
            delay: 10,
        }
    }
}

impl Bounded for Reorder {
    fn check(&self) -> Result<(), String> {
        bounds::probability("probability", self.probability)?;
        bounds::millis("delay", self.delay)
    }
}

impl Reorder {
    pub fn holds(&self, rng: &mut impl Rng) -> bool {
        rng.gen::<f64>() < self.probability
    }

    pub fn longest_hold(&self) -> Duration {
        Duration::from_millis(self.delay)
    }
}
