//! The statistics the model tests hold it to: intervals computed from the
//! model's own definition, wide enough (99.9%) that a seed does not fail a
//! right model by bad luck, narrow enough that a wrong model fails.

use std::ops::RangeInclusive;

/// The normal quantile of a two-sided 99.9% interval.
pub const Z: f64 = 3.29;

/// The 99.9% interval of a binomial count (normal approximation).
pub fn binomial(n: usize, p: f64) -> RangeInclusive<f64> {
    let mean = n as f64 * p;
    let half = Z * (n as f64 * p * (1.0 - p)).sqrt();
    (mean - half)..=(mean + half)
}

/// The Kolmogorov-Smirnov distance at which a sample of `n` is refused at
/// the 0.1% level (conservative for a discrete distribution).
pub fn ks_critical(n: usize) -> f64 {
    1.95 / (n as f64).sqrt()
}

/// Largest distance between the sample's CDF and `cdf`, over `support`
/// (every value the sample can take, sorted) and the sample's own values.
pub fn ks_distance(sample: &[i64], cdf: impl Fn(i64) -> f64) -> f64 {
    let mut sorted = sample.to_vec();
    sorted.sort_unstable();
    let n = sorted.len() as f64;
    let mut worst: f64 = 0.0;
    let mut i = 0;
    while i < sorted.len() {
        let value = sorted[i];
        let below = i as f64 / n;
        while i < sorted.len() && sorted[i] == value {
            i += 1;
        }
        let at = i as f64 / n;
        // Just below `value` and at it.
        worst = worst
            .max((cdf(value - 1) - below).abs())
            .max((cdf(value) - at).abs());
    }
    worst
}

/// Lag-1 correlation coefficient of a series.
pub fn lag1_correlation(x: &[f64]) -> f64 {
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let variance = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>();
    let covariance = x
        .windows(2)
        .map(|w| (w[0] - mean) * (w[1] - mean))
        .sum::<f64>();
    covariance / variance
}

/// A finite Markov chain, `p[i][j]` the probability of moving from i to j.
#[derive(Debug, Clone)]
pub struct Chain {
    pub p: Vec<Vec<f64>>,
}

/// Solves `a x = b` by Gaussian elimination with partial pivoting.
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Vec<f64> {
    let n = b.len();
    for col in 0..n {
        let pivot = (col..n)
            .max_by(|&x, &y| a[x][col].abs().total_cmp(&a[y][col].abs()))
            .unwrap();
        a.swap(col, pivot);
        b.swap(col, pivot);
        for row in col + 1..n {
            let factor = a[row][col] / a[col][col];
            let pivot_row = a[col].clone();
            for (value, pivot) in a[row].iter_mut().zip(&pivot_row).skip(col) {
                *value -= factor * pivot;
            }
            b[row] -= factor * b[col];
        }
    }
    let mut x = vec![0.0; n];
    for row in (0..n).rev() {
        let rest: f64 = (row + 1..n).map(|k| a[row][k] * x[k]).sum();
        x[row] = (b[row] - rest) / a[row][row];
    }
    x
}

impl Chain {
    fn states(&self) -> usize {
        self.p.len()
    }

    /// The stationary distribution: `pi P = pi`, `sum pi = 1`.
    pub fn stationary(&self) -> Vec<f64> {
        let n = self.states();
        // Rows of (P^T - I), the last replaced by the normalisation.
        let mut a: Vec<Vec<f64>> = (0..n)
            .map(|i| {
                (0..n)
                    .map(|j| self.p[j][i] - f64::from(u8::from(i == j)))
                    .collect()
            })
            .collect();
        a[n - 1] = vec![1.0; n];
        let mut b = vec![0.0; n];
        b[n - 1] = 1.0;
        solve(a, b)
    }

    /// The mean of `f` over the stationary distribution.
    pub fn mean(&self, f: &[f64]) -> f64 {
        self.stationary().iter().zip(f).map(|(pi, f)| pi * f).sum()
    }

    /// The asymptotic variance of a sum of `f` along the chain, per step:
    /// `Var f + 2 sum_k Cov(f(X_0), f(X_k))`, through the fundamental
    /// matrix: `z = (I - P + 1 pi)^-1 g` with `g = f - mean`, then
    /// `2 <pi g, z> - <pi g, g>`.
    pub fn asymptotic_variance(&self, f: &[f64]) -> f64 {
        let states = self.states();
        let pi = self.stationary();
        let mean = self.mean(f);
        let centred: Vec<f64> = f.iter().map(|v| v - mean).collect();
        let fundamental: Vec<Vec<f64>> = (0..states)
            .map(|i| {
                (0..states)
                    .map(|j| f64::from(u8::from(i == j)) - self.p[i][j] + pi[j])
                    .collect()
            })
            .collect();
        let sums = solve(fundamental, centred.clone());
        (0..states)
            .map(|i| pi[i] * centred[i] * (2.0 * sums[i] - centred[i]))
            .sum()
    }

    /// The 99.9% interval of the sum of `f` over `n` steps.
    pub fn interval(&self, f: &[f64], n: usize) -> RangeInclusive<f64> {
        let mean = n as f64 * self.mean(f);
        let half = Z * (n as f64 * self.asymptotic_variance(f)).sqrt();
        (mean - half)..=(mean + half)
    }

    /// The chain of consecutive pairs (state `i * n + j`: from i to j), for
    /// quantities of two steps such as the start of a loss burst.
    pub fn pairs(&self) -> Chain {
        let n = self.states();
        let p = (0..n * n)
            .map(|from| {
                let j = from % n;
                (0..n * n)
                    .map(|to| if to / n == j { self.p[j][to % n] } else { 0.0 })
                    .collect()
            })
            .collect();
        Chain { p }
    }
}

/// What a loss model's chain predicts for `n` packets: 99.9% intervals of
/// the losses and of the bursts (runs of losses), and the mean burst length
/// they allow.
#[derive(Debug)]
pub struct LossPrediction {
    pub losses: RangeInclusive<f64>,
    pub bursts: RangeInclusive<f64>,
    pub rate: f64,
    pub mean_burst: f64,
}

impl LossPrediction {
    /// `lost[i]`: whether a packet whose chain is in state i is lost.
    pub fn new(chain: &Chain, lost: &[bool], n: usize) -> Self {
        let f: Vec<f64> = lost.iter().map(|l| f64::from(u8::from(*l))).collect();
        let states = lost.len();
        // A burst starts where a kept packet is followed by a lost one.
        let starts: Vec<f64> = (0..states * states)
            .map(|pair| f64::from(u8::from(!lost[pair / states] && lost[pair % states])))
            .collect();
        let pairs = chain.pairs();
        let rate = chain.mean(&f);
        Self {
            losses: chain.interval(&f, n),
            bursts: pairs.interval(&starts, n),
            rate,
            mean_burst: rate / pairs.mean(&starts),
        }
    }

    /// The lowest and highest mean burst length the two intervals allow.
    pub fn burst_bounds(&self) -> RangeInclusive<f64> {
        (self.losses.start() / self.bursts.end())..=(self.losses.end() / self.bursts.start())
    }
}

/// Losses and bursts of a run of fates.
pub fn losses_and_bursts(lost: &[bool]) -> (usize, usize) {
    let losses = lost.iter().filter(|l| **l).count();
    let bursts = lost.windows(2).filter(|w| !w[0] && w[1]).count() + usize::from(lost[0]);
    (losses, bursts)
}

/// `SplitMix64`: a generator independent of the model's, for references
/// computed from a definition in real numbers.
#[derive(Debug)]
pub struct SplitMix(pub u64);

impl SplitMix {
    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) as f64 / 2f64.powi(64)
    }
}

#[test]
fn the_chain_tools_know_a_two_state_chain_s_answers() {
    // Stays with 0.9, else moves: stationary 1/2 each; a run of a state
    // lasts 10 steps on average.
    let chain = Chain {
        p: vec![vec![0.9, 0.1], vec![0.1, 0.9]],
    };
    let pi = chain.stationary();
    assert!((pi[0] - 0.5).abs() < 1e-12 && (pi[1] - 0.5).abs() < 1e-12);
    // Var 1/4; lag-k correlation 0.8^k: 1/4 * (1 + 2 * 0.8 / 0.2) = 2.25.
    let variance = chain.asymptotic_variance(&[0.0, 1.0]);
    assert!((variance - 2.25).abs() < 1e-9, "{variance}");
    let prediction = LossPrediction::new(&chain, &[false, true], 1000);
    assert!((prediction.mean_burst - 10.0).abs() < 1e-9);
}
