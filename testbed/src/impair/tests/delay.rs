//! Delay and jitter against netem's `tabledist`: `MU - SIGMA + rnd % 2
//! SIGMA` for `uniform`, `MU + SIGMA * t / 8192` with `t` a uniformly drawn
//! entry of netem's table for the others; a correlation that the modulo
//! takes away; negative draws leaving at once.

use super::stats::{binomial, ks_critical, ks_distance, lag1_correlation, SplitMix, Z};
use super::{run, SPACING};
use crate::impair::dist_table::{self, DIST_SCALE};
use crate::impair::link::Fate;

const N: usize = 50_000;
const MEAN: i64 = 100_000_000;
const JITTER: i64 = 10_000_000;

/// Each packet's delay in nanoseconds (nothing is lost or reordered).
fn delays(spec: &str, seed: u64) -> Vec<i64> {
    run(spec, seed, N)
        .iter()
        .enumerate()
        .map(|(i, offer)| match offer.packet {
            Fate::Sent { at, .. } => {
                let offered = SPACING * i as u32;
                at.checked_sub(offered)
                    .expect("never before it was offered")
                    .as_nanos() as i64
            }
            Fate::Dropped(_) => panic!("nothing is dropped"),
        })
        .collect()
}

fn as_f64(v: &[i64]) -> Vec<f64> {
    v.iter().map(|x| *x as f64).collect()
}

/// The CDF of `MEAN + JITTER * t / 8192` (rounded) over a table's entries,
/// each drawn with probability 1/4096.
fn table_cdf(table: &[i16]) -> impl Fn(i64) -> f64 {
    let mut values: Vec<i64> = table
        .iter()
        .map(|t| MEAN + (JITTER as f64 * f64::from(*t) / DIST_SCALE as f64).round() as i64)
        .collect();
    values.sort_unstable();
    move |x| values.partition_point(|v| *v <= x) as f64 / values.len() as f64
}

#[test]
fn uniform_jitter_is_uniform_over_the_mean_plus_minus_the_jitter() {
    // netem's draw: MU - SIGMA + rnd % (2 SIGMA), SIGMA in nanoseconds.
    let cdf = |x: i64| ((x - (MEAN - JITTER) + 1) as f64 / (2 * JITTER) as f64).clamp(0.0, 1.0);
    for spec in ["delay 100ms 10ms", "delay 100ms 10ms 25%"] {
        let d = delays(spec, 1);
        assert!(
            d.iter().all(|x| (MEAN - JITTER..MEAN + JITTER).contains(x)),
            "{spec}"
        );
        let distance = ks_distance(&d, cdf);
        assert!(distance < ks_critical(N), "{spec}: K-S distance {distance}");
    }
}

#[test]
fn each_table_distribution_is_netem_s_table_drawn_uniformly() {
    for (name, table) in [
        ("normal", dist_table::normal()),
        ("pareto", dist_table::pareto()),
        ("paretonormal", dist_table::paretonormal()),
    ] {
        for correlation in ["", " 25%"] {
            let spec = format!("delay 100ms 10ms{correlation} distribution {name}");
            let distance = ks_distance(&delays(&spec, 2), table_cdf(table));
            assert!(distance < ks_critical(N), "{spec}: K-S distance {distance}");
        }
    }
}

/// Delays `MEAN + JITTER * x` for `N` draws of `x`, rounded.
fn sample(mut x: impl FnMut(&mut SplitMix) -> f64) -> Vec<i64> {
    let mut uniform = SplitMix(21);
    (0..N)
        .map(|_| MEAN + (JITTER as f64 * x(&mut uniform)).round() as i64)
        .collect()
}

/// A Pareto of shape 3, standardised to mean 0 and deviation 1.
fn textbook_pareto(u: &mut SplitMix) -> f64 {
    ((1.0 - u.uniform()).powf(-1.0 / 3.0) - 1.5) / 0.75f64.sqrt()
}

/// A standard normal (Box-Muller).
fn textbook_normal(u: &mut SplitMix) -> f64 {
    let (a, b) = (1.0 - u.uniform(), u.uniform());
    (-2.0 * a.ln()).sqrt() * (std::f64::consts::TAU * b).cos()
}

#[test]
fn netem_s_pareto_and_paretonormal_are_not_the_textbook_ones_and_the_test_tells() {
    // netem scales its Pareto by 4/3 (one over the variance of a Pareto of
    // shape 3, not over its deviation) and cuts it at 4 jitters: a
    // deviation of 0.82 jitter and a mean 0.033 jitter low.
    let table = dist_table::pareto();
    let values: Vec<f64> = table
        .iter()
        .map(|t| f64::from(*t) / DIST_SCALE as f64)
        .collect();
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let sd = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / values.len() as f64).sqrt();
    assert!(
        (0.80..0.84).contains(&sd) && (-0.04..-0.03).contains(&mean),
        "{sd}, {mean}"
    );
    assert!(values.iter().all(|v| *v <= 4.0));
    // A model drawing the textbook distributions fails the K-S test above:
    // a standardised Pareto, and paretonormal as a quarter normal plus
    // three quarters Pareto drawn independently (netem's table combines
    // the same quantile of each).
    let pareto = ks_distance(&sample(textbook_pareto), table_cdf(table));
    assert!(pareto > ks_critical(N), "K-S distance {pareto}");
    let mixture = sample(|u| 0.25 * textbook_normal(u) + 0.75 * textbook_pareto(u));
    let paretonormal = ks_distance(&mixture, table_cdf(dist_table::paretonormal()));
    assert!(paretonormal > ks_critical(N), "K-S distance {paretonormal}");
}

#[test]
fn the_correlation_of_delays_is_lost_to_netem_s_modulo() {
    // netem correlates the 32-bit draw, then keeps `rnd % (2 SIGMA)` or
    // `rnd % 4096`: the low bits, nearly independent from packet to packet.
    for spec in [
        "delay 100ms 10ms 75%",
        "delay 100ms 10ms 75% distribution normal",
        "delay 100ms 10ms 75% distribution paretonormal",
    ] {
        let r = lag1_correlation(&as_f64(&delays(spec, 3)));
        assert!(
            r.abs() < Z / (N as f64).sqrt(),
            "{spec}: lag-1 correlation {r}"
        );
    }
}

#[test]
fn a_delay_without_jitter_is_exact() {
    assert!(delays("delay 10ms", 4).iter().all(|d| *d == 10_000_000));
    assert!(delays("delay 10ms 0ms 50%", 4)
        .iter()
        .all(|d| *d == 10_000_000));
}

#[test]
fn a_draw_below_zero_leaves_at_once_and_never_earlier() {
    // 1 ms +- a normal 10 ms: netem gives t < -819 (of 8192) a send time in
    // the past, which is sent at once.
    let d = delays("delay 1ms 10ms distribution normal", 5);
    assert!(d.iter().all(|x| *x >= 0));
    let table = dist_table::normal();
    let p = table
        .iter()
        .filter(|t| 1_000_000 + (JITTER as f64 * f64::from(**t) / 8192.0).round() as i64 <= 0)
        .count() as f64
        / table.len() as f64;
    let at_once = d.iter().filter(|x| **x == 0).count() as f64;
    assert!(
        binomial(N, p).contains(&at_once),
        "{at_once} of {N} at once, p {p}"
    );
}
