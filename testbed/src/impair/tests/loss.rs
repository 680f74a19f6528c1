//! Loss against netem's `loss_event`: `loss random` (with netem's
//! correlation, which is not one), `loss state` (4-state Markov) and `loss
//! gemodel` (Gilbert-Elliott), each against its chain's stationary loss
//! rate and mean burst length.

use super::run;
use super::stats::{binomial, losses_and_bursts, Chain, LossPrediction, SplitMix, Z};
use crate::impair::link::{DropCause, Fate};

fn lost(spec: &str, seed: u64, n: usize) -> Vec<bool> {
    run(spec, seed, n)
        .iter()
        .map(|offer| offer.packet == Fate::Dropped(DropCause::Loss))
        .collect()
}

/// Checks a run against a chain's prediction; returns the mean burst.
fn assert_follows(spec: &str, lost: &[bool], prediction: &LossPrediction) -> f64 {
    let (losses, bursts) = losses_and_bursts(lost);
    let mean_burst = losses as f64 / bursts as f64;
    assert!(
        prediction.losses.contains(&(losses as f64)),
        "{spec}: {losses} lost, expected {:?} (rate {})",
        prediction.losses,
        prediction.rate
    );
    assert!(
        prediction.bursts.contains(&(bursts as f64)),
        "{spec}: {bursts} bursts, expected {:?}",
        prediction.bursts
    );
    assert!(
        prediction.burst_bounds().contains(&mean_burst),
        "{spec}: mean burst {mean_burst}, model {}",
        prediction.mean_burst
    );
    mean_burst
}

#[test]
fn random_loss_of_1_and_10_percent_falls_in_the_binomial_interval() {
    const N: usize = 200_000;
    for p in [0.01, 0.10] {
        let spec = format!("loss random {}%", p * 100.0);
        let losses = lost(&spec, 4, N).iter().filter(|l| **l).count();
        assert!(
            binomial(N, p).contains(&(losses as f64)),
            "{spec}: {losses} lost"
        );
    }
}

#[test]
fn correlated_random_loss_loses_less_as_netem_s_draws_shrink_to_the_middle() {
    // netem: x = (1 - rho) fresh + rho x_prev, lost when x <= P. The mean
    // draw stays 1/2 but its spread shrinks, so `loss 10% 50%` loses
    // about 0.1%, in clusters. Reference: the definition in real numbers,
    // from an independent generator.
    const N: usize = 200_000;
    const REFERENCE: usize = 4_000_000;
    let (p, rho) = (0.10, 0.50);
    let mut uniform = SplitMix(11);
    let mut x = uniform.uniform();
    let reference: Vec<bool> = (0..REFERENCE)
        .map(|_| {
            x = (1.0 - rho) * uniform.uniform() + rho * x;
            x <= p
        })
        .collect();
    let rate = reference.iter().filter(|l| **l).count() as f64 / REFERENCE as f64;
    // Losses are correlated: the variance of a count grows by the
    // integrated autocorrelation of the loss indicator.
    let autocorrelation = |lag: usize| {
        let both = reference
            .windows(lag + 1)
            .filter(|w| w[0] && w[lag])
            .count() as f64;
        (both / (REFERENCE - lag) as f64 - rate * rate) / (rate * (1.0 - rate))
    };
    let tau = 1.0 + 2.0 * (1..40).map(autocorrelation).sum::<f64>();
    assert!(rate < 0.005 && tau > 1.0, "rate {rate}, tau {tau}");

    let spec = "loss random 10% 50%";
    let model = lost(spec, 12, N);
    let losses = model.iter().filter(|l| **l).count() as f64;
    let variance = N as f64 * rate * (1.0 - rate) * tau * (1.0 + N as f64 / REFERENCE as f64);
    let expected = N as f64 * rate;
    assert!(
        (losses - expected).abs() <= Z * variance.sqrt(),
        "{spec}: {losses} lost, the definition {expected} (rate {rate}, tau {tau})"
    );
    let after_loss = model.windows(2).filter(|w| w[0] && w[1]).count() as f64 / losses;
    assert!(
        after_loss > 2.0 * rate,
        "a loss follows a loss with {after_loss}"
    );
}

/// netem's `loss state` chain over states 1 (gap, sent), 2 (burst, sent),
/// 3 (burst, lost), 4 (gap, lost), in that order.
fn four_state(p13: f64, p31: f64, p32: f64, p23: f64, p14: f64) -> Chain {
    Chain {
        p: vec![
            vec![1.0 - p13 - p14, 0.0, p13, p14],
            vec![0.0, 1.0 - p23, p23, 0.0],
            vec![p31, p32, 1.0 - p31 - p32, 0.0],
            vec![1.0, 0.0, 0.0, 0.0],
        ],
    }
}

#[test]
fn the_four_state_model_loses_at_its_chain_s_rate_in_bursts_of_its_length() {
    const N: usize = 400_000;
    let spec = "loss state 2% 30% 50% 10% 1%";
    let lost_in = [false, false, true, true];
    let prediction = LossPrediction::new(&four_state(0.02, 0.30, 0.50, 0.10, 0.01), &lost_in, N);
    assert_follows(spec, &lost(spec, 6, N), &prediction);
    // p32 leads from a burst's loss to a burst's delivery, p23 back: the
    // two swapped are another chain, which the run does not follow.
    let swapped = LossPrediction::new(&four_state(0.02, 0.30, 0.10, 0.50, 0.01), &lost_in, N);
    assert!(!prediction.losses.contains(&(N as f64 * swapped.rate)));
}

/// netem's Gilbert-Elliott chain over (state, fate) pairs: good kept, good
/// lost, bad kept, bad lost. A packet meets the loss rate of the state it
/// finds; the state then moves for the next one.
fn gilbert_elliott(p: f64, r: f64, loss_bad: f64, loss_good: f64) -> Chain {
    let step = |from_bad: bool| {
        let to_bad = if from_bad { 1.0 - r } else { p };
        [
            (1.0 - to_bad) * (1.0 - loss_good),
            (1.0 - to_bad) * loss_good,
            to_bad * (1.0 - loss_bad),
            to_bad * loss_bad,
        ]
        .to_vec()
    };
    Chain {
        p: vec![step(false), step(false), step(true), step(true)],
    }
}

#[test]
fn gilbert_elliott_loses_at_its_chain_s_rate_in_bursts_of_its_length() {
    const N: usize = 400_000;
    let lost_in = [false, true, false, true];
    let spec = "loss gemodel 2% 25% 70% 1%";
    let prediction = LossPrediction::new(&gilbert_elliott(0.02, 0.25, 0.70, 0.01), &lost_in, N);
    assert_follows(spec, &lost(spec, 5, N), &prediction);
    // The third number is 1-h, the loss rate in the bad state (tc turns it
    // into netem's h): read as h, the run would lose far less.
    let as_h = LossPrediction::new(&gilbert_elliott(0.02, 0.25, 0.30, 0.01), &lost_in, N);
    assert!(!prediction.losses.contains(&(N as f64 * as_h.rate)));
    // Simple Gilbert (everything lost when bad): bursts of 1/r packets.
    let spec = "loss gemodel 1% 10%";
    let prediction = LossPrediction::new(&gilbert_elliott(0.01, 0.10, 1.0, 0.0), &lost_in, N);
    assert!((prediction.mean_burst - 10.0).abs() < 1e-9);
    let mean = assert_follows(spec, &lost(spec, 7, N), &prediction);
    assert!((9.0..11.0).contains(&mean), "{mean}");
}

#[test]
fn gilbert_elliott_s_first_packet_meets_the_good_state_it_leaves() {
    // Always to bad, never back, all lost when bad, none when good: netem
    // moves to bad on the first packet but gives it the good state's rate.
    let lost = lost("loss gemodel 100% 0% 100% 0%", 8, 100);
    assert!(!lost[0]);
    assert!(lost[1..].iter().all(|l| *l));
}
