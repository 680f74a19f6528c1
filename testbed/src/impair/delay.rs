//! Delay with jitter drawn from netem's distributions.

use std::time::Duration;

use super::random::{Correlated, Draws};
use super::spec::{DelaySpec, Distribution};

/// Draws each packet's delay.
#[derive(Debug, Clone)]
pub struct DelayModel {
    mean: f64,
    jitter: f64,
    distribution: Distribution,
    draw: Correlated,
}

/// Pareto with shape 3, standardised to mean 0 and standard deviation 1,
/// from a uniform draw by the inverse CDF (netem ships it as a table).
fn pareto(u: f64) -> f64 {
    const ALPHA: f64 = 3.0;
    let x = (1.0 - u).max(f64::MIN_POSITIVE).powf(-1.0 / ALPHA);
    let mean = ALPHA / (ALPHA - 1.0);
    let sd = (ALPHA / ((ALPHA - 1.0).powi(2) * (ALPHA - 2.0))).sqrt();
    (x - mean) / sd
}

/// A standard normal value from a uniform draw (Acklam's inverse CDF).
// The coefficient and variable names are the published algorithm's, so the
// formula can be checked against it.
#[allow(clippy::many_single_char_names)]
fn normal(u: f64) -> f64 {
    let u = u.clamp(1e-12, 1.0 - 1e-12);
    let a = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    let b = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    let c = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    let d = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let tail = |q: f64| {
        (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5])
            / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0)
    };
    if u < 0.02425 {
        tail((-2.0 * u.ln()).sqrt())
    } else if u > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - u).ln()).sqrt())
    } else {
        let q = u - 0.5;
        let r = q * q;
        (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q
            / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0)
    }
}

impl DelayModel {
    pub fn new(spec: DelaySpec) -> Self {
        Self {
            mean: spec.mean.as_secs_f64(),
            jitter: spec.jitter.as_secs_f64(),
            distribution: spec.distribution,
            draw: Correlated::new(spec.correlation),
        }
    }

    /// The next packet's delay (never negative).
    pub fn next(&mut self, draws: &mut Draws) -> Duration {
        if self.jitter <= 0.0 {
            return Duration::from_secs_f64(self.mean);
        }
        let u = self.draw.next(draws);
        let offset = match self.distribution {
            // netem: uniform over [mean - jitter, mean + jitter].
            Distribution::Uniform => (2.0 * u - 1.0) * self.jitter,
            Distribution::Normal => normal(u) * self.jitter,
            Distribution::Pareto => pareto(u) * self.jitter,
            // netem mixes a quarter normal with three quarters Pareto.
            Distribution::ParetoNormal => {
                (0.25 * normal(u) + 0.75 * pareto(draws.uniform())) * self.jitter
            }
        };
        Duration::from_secs_f64((self.mean + offset).max(0.0))
    }
}
