//! Loss models as netem's `loss_event` defines them: independent loss with
//! netem's correlation, the 4-state Markov model (`loss state`) and
//! Gilbert-Elliott (`loss gemodel`).

use super::random::{Correlated, Draws, Probability};
use super::spec::LossSpec;

/// The state of a loss model between packets.
#[derive(Debug, Clone)]
pub enum LossModel {
    Random {
        p: Probability,
        draw: Correlated,
    },
    /// netem's `loss_4state`; the packet is lost when the chain enters a
    /// loss state.
    State {
        p13: Probability,
        p31: Probability,
        p32: Probability,
        p23: Probability,
        p14: Probability,
        state: FourState,
    },
    /// netem's `loss_gilb_ell`.
    GilbertElliott {
        p: Probability,
        r: Probability,
        /// netem's `h`: `u32::MAX` minus the `1-h` given.
        h: Probability,
        /// The `1-k` given: the loss probability in the good state.
        one_minus_k: Probability,
        bad: bool,
    },
}

/// The states of `loss state`, numbered as in netem's documentation (and
/// its parameters' names: `p13` leads from 1 to 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FourState {
    /// 1: packets get through, between bursts (the start).
    GapTx,
    /// 2: packets get through, within a burst.
    BurstTx,
    /// 3: packets are lost, in a burst.
    BurstLoss,
    /// 4: an isolated loss between bursts.
    GapLoss,
}

/// `a < b + c` without the wrap of netem's 32-bit sum (a sum above 100%
/// is a configuration no one means; here it saturates).
fn below_sum(draw: u32, b: Probability, c: Probability) -> bool {
    u64::from(draw) < u64::from(b.0) + u64::from(c.0)
}

impl LossModel {
    pub fn new(spec: LossSpec, draws: &mut Draws) -> Self {
        let p = Probability::from_fraction;
        match spec {
            LossSpec::Random(c) => Self::Random {
                p: p(c.probability),
                draw: Correlated::new(p(c.correlation), draws),
            },
            LossSpec::State {
                p13,
                p31,
                p32,
                p23,
                p14,
            } => Self::State {
                p13: p(p13),
                p31: p(p31),
                p32: p(p32),
                p23: p(p23),
                p14: p(p14),
                state: FourState::GapTx,
            },
            LossSpec::GilbertElliott {
                p: good_to_bad,
                r,
                one_minus_h,
                one_minus_k,
            } => Self::GilbertElliott {
                p: p(good_to_bad),
                r: p(r),
                // tc: "netem option is 1-h but kernel expects h".
                h: Probability(u32::MAX - p(one_minus_h).0),
                one_minus_k: p(one_minus_k),
                bad: false,
            },
        }
    }

    /// Whether the next packet is lost.
    pub fn lose(&mut self, draws: &mut Draws) -> bool {
        match self {
            Self::Random { p, draw } => !p.is_zero() && p.admits(draw.next(draws)),
            Self::State {
                p13,
                p31,
                p32,
                p23,
                p14,
                state,
            } => {
                let rnd = draws.next_u32();
                let (next, lost) = match *state {
                    FourState::GapTx if rnd < p14.0 => (FourState::GapLoss, true),
                    FourState::GapTx if below_sum(rnd, *p13, *p14) => (FourState::BurstLoss, true),
                    // A gap's packet kept, or the one after an isolated loss.
                    FourState::GapTx | FourState::GapLoss => (FourState::GapTx, false),
                    FourState::BurstTx if rnd < p23.0 => (FourState::BurstLoss, true),
                    FourState::BurstTx => (FourState::BurstTx, false),
                    FourState::BurstLoss if rnd < p32.0 => (FourState::BurstTx, false),
                    FourState::BurstLoss if below_sum(rnd, *p31, *p32) => (FourState::GapTx, false),
                    FourState::BurstLoss => (FourState::BurstLoss, true),
                };
                *state = next;
                lost
            }
            Self::GilbertElliott {
                p,
                r,
                h,
                one_minus_k,
                bad,
            } => {
                // netem decides the transition first but the packet meets
                // the loss rate of the state it found: the new state
                // counts from the next packet on.
                if *bad {
                    if draws.next_u32() < r.0 {
                        *bad = false;
                    }
                    draws.next_u32() > h.0
                } else {
                    if draws.next_u32() < p.0 {
                        *bad = true;
                    }
                    draws.next_u32() < one_minus_k.0
                }
            }
        }
    }
}
