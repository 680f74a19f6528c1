//! Seeded, portable randomness with netem's correlation.
//!
//! `ChaCha8` gives the same stream for a seed on every platform and version
//! of this program, which is what makes an impaired run replayable.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A seeded generator of uniform draws in `[0, 1)`.
#[derive(Debug, Clone)]
pub struct Draws(ChaCha8Rng);

impl Draws {
    pub fn new(seed: u64) -> Self {
        Self(ChaCha8Rng::seed_from_u64(seed))
    }

    /// A fresh uniform draw.
    #[inline]
    pub fn uniform(&mut self) -> f64 {
        self.0.gen::<f64>()
    }

    /// A uniform index below `n` (n > 0).
    #[inline]
    pub fn below(&mut self, n: usize) -> usize {
        self.0.gen_range(0..n.max(1))
    }
}

/// netem's correlated random: each draw leans on the previous one by the
/// correlation `rho` (0: independent; 1: always the same value).
#[derive(Debug, Clone, Copy)]
pub struct Correlated {
    rho: f64,
    last: f64,
}

impl Correlated {
    pub fn new(rho: f64) -> Self {
        Self {
            rho: rho.clamp(0.0, 1.0),
            last: 0.5,
        }
    }

    #[inline]
    pub fn next(&mut self, draws: &mut Draws) -> f64 {
        let fresh = draws.uniform();
        if self.rho <= 0.0 {
            return fresh;
        }
        self.last = (1.0 - self.rho) * fresh + self.rho * self.last;
        self.last
    }
}
