//! `latency`: every chunk leaves `latency` ms (± `jitter` ms) after it arrived.
//!
//! The delay counts from the chunk's arrival, not from the previous write, so a busy
//! stream is shifted in time rather than slowed down (as Toxiproxy does).

use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::bounds::{self, later, Bounded};
use super::Piece;

/// Attributes: `latency` and `jitter`, both in milliseconds, each at most an hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Latency {
    pub latency: u64,
    pub jitter: u64,
}

impl Bounded for Latency {
    fn check(&self) -> Result<(), String> {
        bounds::millis("latency", self.latency)?;
        bounds::millis("jitter", self.jitter)
    }
}

impl Latency {
    /// One draw: `latency + uniform(-jitter, +jitter)`, never below zero.
    pub fn delay(&self, rng: &mut impl Rng) -> Duration {
        let base = self.latency as i128;
        let offset = if self.jitter == 0 {
            0
        } else {
            let jitter = self.jitter as i128;
            rng.gen_range(-jitter..=jitter)
        };
        Duration::from_millis(u64::try_from(base + offset).unwrap_or(0))
    }

    /// Holds every piece until its arrival plus one delay drawn for the whole chunk.
    pub fn apply(&self, pieces: &mut [Piece], rng: &mut impl Rng) {
        let delay = self.delay(rng);
        for piece in pieces {
            piece.not_before = piece.not_before.max(later(piece.arrived, delay));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use std::time::Instant;

    #[test]
    fn delays_stay_within_latency_plus_or_minus_jitter() {
        let toxic = Latency {
            latency: 100,
            jitter: 20,
        };
        let mut rng = StdRng::seed_from_u64(7);
        let draws: Vec<Duration> = (0..1000).map(|_| toxic.delay(&mut rng)).collect();
        assert!(draws.iter().all(|d| (80..=120).contains(&d.as_millis())));
        assert!(draws.iter().any(|d| d.as_millis() < 90));
        assert!(draws.iter().any(|d| d.as_millis() > 110));
    }

    #[test]
    fn a_piece_is_held_from_its_arrival_not_from_now() {
        let arrived = Instant::now();
        let mut pieces = [Piece::new(vec![1], arrived)];
        let toxic = Latency {
            latency: 50,
            jitter: 0,
        };
        toxic.apply(&mut pieces, &mut StdRng::seed_from_u64(1));
        assert_eq!(pieces[0].not_before, arrived + Duration::from_millis(50));
    }
}
