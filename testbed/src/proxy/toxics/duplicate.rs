//! `duplicate` (beyond Toxiproxy, UDP proxies): each datagram is sent twice with
//! `probability`.

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::bounds::{self, Bounded};

/// Attributes: `probability` in [0, 1].
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Duplicate {
    pub probability: f64,
}

impl Bounded for Duplicate {
    fn check(&self) -> Result<(), String> {
        bounds::probability("probability", self.probability)
    }
}

impl Duplicate {
    pub fn duplicates(&self, rng: &mut impl Rng) -> bool {
        rng.gen::<f64>() < self.probability
    }
}
