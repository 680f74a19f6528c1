//! Each packet's delay, as netem's `tabledist` draws it.
//!
//! With a jitter SIGMA (nanoseconds, capped as netem caps it at `i32::MAX`,
//! 2.1 s) and a correlated 32-bit draw `rnd`:
//!
//! - `uniform` (the default): `MU - SIGMA + rnd % (2 SIGMA)`, uniform over
//!   `[MU - SIGMA, MU + SIGMA)`.
//! - `normal`, `pareto`, `paretonormal`: `MU + SIGMA * t / 8192` rounded,
//!   `t = table[rnd % 4096]` from netem's tables ([`super::dist_table`]).
//!
//! Two of netem's surprises follow from that arithmetic and are kept:
//!
//! - **The correlation hardly correlates.** The correlated draw is taken
//!   modulo `2 SIGMA` or 4096, which keeps only its low bits; those are
//!   nearly independent from one packet to the next unless `2 SIGMA` is
//!   close to 2^32 ns (about 4.3 s). `delay 100ms 10ms 25%` gives delays
//!   as uncorrelated as `delay 100ms 10ms`.
//! - **A delay can come out negative** (a normal jitter wider than the
//!   mean): netem then gives the packet a send time in the past, so it
//!   leaves at once; the model leaves it at once too.
//!
//! Jitter reorders packets: netem's queue sends by time, and a packet
//! drawn a shorter delay overtakes those before it, unless `rate` is set
//! (each packet then leaves after the last one queued; see [`super::link`]).

use super::dist_table::{self, DIST_SCALE};
use super::random::{Correlated, Draws, Probability};
use super::spec::{DelaySpec, Distribution};

/// Draws each packet's delay.
#[derive(Debug, Clone)]
pub struct DelayModel {
    /// Nanoseconds.
    mean: i64,
    /// Nanoseconds, at most `i32::MAX` (netem's cap).
    jitter: i64,
    table: Option<&'static [i16]>,
    draw: Correlated,
}

impl DelayModel {
    pub fn new(spec: DelaySpec, draws: &mut Draws) -> Self {
        let nanos = |d: std::time::Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
        Self {
            mean: nanos(spec.mean),
            jitter: nanos(spec.jitter).min(i64::from(i32::MAX)),
            table: match spec.distribution {
                Distribution::Uniform => None,
                Distribution::Normal => Some(dist_table::normal()),
                Distribution::Pareto => Some(dist_table::pareto()),
                Distribution::ParetoNormal => Some(dist_table::paretonormal()),
            },
            draw: Correlated::new(Probability::from_fraction(spec.correlation), draws),
        }
    }

    /// The next packet's delay in nanoseconds; negative when the jitter
    /// outweighs the mean (see the module docs).
    pub fn next_nanos(&mut self, draws: &mut Draws) -> i64 {
        let sigma = self.jitter;
        if sigma == 0 {
            return self.mean;
        }
        let rnd = self.draw.next(draws);
        let Some(table) = self.table else {
            // 2 SIGMA < 2^32: the jitter is capped at i32::MAX.
            let span = u32::try_from(2 * sigma).unwrap_or(u32::MAX);
            return i64::from(rnd % span) + self.mean - sigma;
        };
        let t = i64::from(table[rnd as usize % table.len()]);
        // netem's fixed-point product, rounded half away from zero.
        let mut x = (sigma % DIST_SCALE) * t;
        if x >= 0 {
            x += DIST_SCALE / 2;
        } else {
            x -= DIST_SCALE / 2;
        }
        x / DIST_SCALE + (sigma / DIST_SCALE) * t + self.mean
    }
}
