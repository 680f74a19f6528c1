//! Seeded, portable randomness in netem's own arithmetic.
//!
//! netem draws 32-bit numbers and compares them with probabilities scaled
//! to `u32::MAX` (`tc` stores P as `rint(P * UINT32_MAX)`; an event happens
//! when that value is at least the draw), and its correlation mixes 32-bit
//! draws in integers (`get_crandom`). The model does the same on the same
//! integers, so that the odd corners of netem's arithmetic carry over (a
//! delay's correlation, for one, is mostly lost to a modulo: see
//! [`super::delay`]). `ChaCha8` replaces the kernel's generator: the same
//! stream for a seed on every platform and version, which is what makes an
//! impaired run replayable.

use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A seeded stream of 32-bit draws.
#[derive(Debug, Clone)]
pub struct Draws(ChaCha8Rng);

impl Draws {
    pub fn new(seed: u64) -> Self {
        Self(ChaCha8Rng::seed_from_u64(seed))
    }

    /// A fresh draw, uniform over `u32`.
    #[inline]
    pub fn next_u32(&mut self) -> u32 {
        self.0.next_u32()
    }

    /// A uniform draw below `n` (n > 0), as the kernel's
    /// `get_random_u32_below`.
    #[inline]
    pub fn below(&mut self, n: usize) -> usize {
        self.0.gen_range(0..n.max(1))
    }
}

/// A probability as netem holds it: a fraction of `u32::MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probability(pub u32);

impl Probability {
    /// `tc`'s `set_percent`: `rint(p * UINT32_MAX)`, for `p` in 0..=1.
    pub fn from_fraction(p: f64) -> Self {
        // Within 0..=u32::MAX after the clamp.
        #[allow(clippy::cast_sign_loss)]
        let scaled = (p.clamp(0.0, 1.0) * f64::from(u32::MAX)).round_ties_even() as u32;
        Self(scaled)
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// netem's `q->p >= draw`: the event happens on this draw.
    #[inline]
    pub fn admits(self, draw: u32) -> bool {
        self.0 >= draw
    }
}

/// netem's correlated random (`get_crandom`): each draw is the weighted mean
/// of a fresh draw and the previous result, `(fresh * (2^32 - rho) + last *
/// rho) >> 32` with `rho` the correlation + 1. This is not a correlation of
/// the outcomes: it pulls every draw toward the middle, so a correlated
/// `loss 10% 50%` loses about 0.1% of packets, not 10% (netem's man page:
/// "not a true statistical correlation").
#[derive(Debug, Clone, Copy)]
pub struct Correlated {
    rho: u32,
    last: u32,
}

impl Correlated {
    /// Starts from a random previous value, as netem's `init_crandom`
    /// (here from the seeded stream).
    pub fn new(correlation: Probability, draws: &mut Draws) -> Self {
        Self {
            rho: correlation.0,
            last: draws.next_u32(),
        }
    }

    #[inline]
    pub fn next(&mut self, draws: &mut Draws) -> u32 {
        let fresh = u64::from(draws.next_u32());
        if self.rho == 0 {
            return fresh as u32;
        }
        let rho = u64::from(self.rho) + 1;
        // At most (2^32 - 1) * 2^32: no overflow.
        let answer = (fresh * ((1 << 32) - rho) + u64::from(self.last) * rho) >> 32;
        self.last = answer as u32;
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probabilities_are_tc_s_fractions_of_u32_max() {
        assert_eq!(Probability::from_fraction(0.0), Probability(0));
        assert_eq!(Probability::from_fraction(1.0), Probability(u32::MAX));
        assert_eq!(Probability::from_fraction(0.5), Probability(2_147_483_648));
        assert!(Probability(u32::MAX).admits(u32::MAX));
        assert!(!Probability(0).admits(1));
    }

    #[test]
    fn without_correlation_the_draws_are_the_stream_s() {
        let mut a = Draws::new(3);
        let mut b = Draws::new(3);
        let mut c = Correlated::new(Probability(0), &mut a);
        b.next_u32();
        for _ in 0..100 {
            assert_eq!(c.next(&mut a), b.next_u32());
        }
    }

    #[test]
    fn full_correlation_repeats_the_previous_value() {
        let mut draws = Draws::new(4);
        let mut c = Correlated::new(Probability(u32::MAX), &mut draws);
        let first = c.next(&mut draws);
        assert!((0..100).all(|_| c.next(&mut draws) == first));
    }
}
