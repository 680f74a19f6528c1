//! `loss` (beyond Toxiproxy, UDP proxies): each datagram is dropped with `probability`.

use rand::Rng;
use serde::{Deserialize, Serialize};

/// Attributes: `probability` in [0, 1].
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Loss {
    pub probability: f64,
}

impl Loss {
    pub fn drops(&self, rng: &mut impl Rng) -> bool {
        rng.gen::<f64>() < self.probability
    }
}
