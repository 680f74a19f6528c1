//! Loss models: independent (optionally correlated) loss, netem's 4-state
//! Markov model and the Gilbert-Elliott model, as netem defines them.

use super::random::{Correlated, Draws};
use super::spec::LossSpec;

/// The state of a loss model between packets.
#[derive(Debug, Clone)]
pub enum LossModel {
    Random {
        p: f64,
        draw: Correlated,
    },
    State {
        spec: [f64; 5],
        state: FourState,
    },
    GilbertElliott {
        p: f64,
        r: f64,
        loss_bad: f64,
        loss_good: f64,
        bad: bool,
    },
}

/// netem's `loss state` states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FourState {
    /// 1: packets get through, between bursts.
    GapTx,
    /// 2: packets are lost, in a burst.
    BurstLoss,
    /// 3: packets get through, within a burst.
    BurstTx,
    /// 4: an isolated loss between bursts.
    GapLoss,
}

impl LossModel {
    pub fn new(spec: LossSpec) -> Self {
        match spec {
            LossSpec::Random(c) => Self::Random {
                p: c.probability,
                draw: Correlated::new(c.correlation),
            },
            LossSpec::State {
                p13,
                p31,
                p32,
                p23,
                p14,
            } => Self::State {
                spec: [p13, p31, p32, p23, p14],
                state: FourState::GapTx,
            },
            LossSpec::GilbertElliott {
                p,
                r,
                one_minus_h,
                one_minus_k,
            } => Self::GilbertElliott {
                p,
                r,
                loss_bad: one_minus_h,
                loss_good: one_minus_k,
                bad: false,
            },
        }
    }

    /// Whether the next packet is lost.
    pub fn lose(&mut self, draws: &mut Draws) -> bool {
        match self {
            Self::Random { p, draw } => draw.next(draws) < *p,
            Self::State {
                spec: [p13, p31, p32, p23, p14],
                state,
            } => {
                let rnd = draws.uniform();
                // Transitions as in netem's loss_4state().
                match *state {
                    FourState::GapTx => {
                        if rnd < *p14 {
                            *state = FourState::GapLoss;
                            true
                        } else if rnd < *p14 + *p13 {
                            *state = FourState::BurstLoss;
                            true
                        } else {
                            false
                        }
                    }
                    FourState::BurstTx => {
                        if rnd < *p32 {
                            *state = FourState::BurstLoss;
                            true
                        } else {
                            false
                        }
                    }
                    FourState::BurstLoss => {
                        if rnd < *p23 {
                            *state = FourState::BurstTx;
                            false
                        } else if rnd < *p23 + *p31 {
                            *state = FourState::GapTx;
                            false
                        } else {
                            true
                        }
                    }
                    FourState::GapLoss => {
                        *state = FourState::GapTx;
                        false
                    }
                }
            }
            Self::GilbertElliott {
                p,
                r,
                loss_bad,
                loss_good,
                bad,
            } => {
                // The state moves first, then the packet meets the new state's loss rate.
                let leave = if *bad { *r } else { *p };
                if draws.uniform() < leave {
                    *bad = !*bad;
                }
                draws.uniform() < if *bad { *loss_bad } else { *loss_good }
            }
        }
    }
}
