//! One direction of an impaired link: for each packet offered at a time,
//! whether it is lost, duplicated, corrupted, and when it leaves. Pure and
//! seeded: the same seed and the same offered packets (times and lengths)
//! give the same decisions, packet for packet, whatever moves the bytes.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use super::delay::DelayModel;
use super::loss::LossModel;
use super::random::{Correlated, Draws};
use super::spec::NetemSpec;

/// Why a packet did not get through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropCause {
    /// The loss model lost it.
    Loss,
    /// The link already held `limit` packets.
    Limit,
}

/// What happens to one offered packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    Dropped(DropCause),
    Delivered {
        /// When it leaves the link, on the offering clock.
        at: Duration,
        /// A second copy leaves at the same time (netem's duplicate).
        duplicate: bool,
        /// Flip bit `.1` of byte `.0` (netem's corrupt).
        corrupt: Option<(usize, u8)>,
    },
}

/// The decisions of one link direction.
#[derive(Debug, Clone)]
pub struct ImpairedLink {
    draws: Draws,
    delay: Option<DelayModel>,
    loss: Option<LossModel>,
    duplicate: Option<(f64, Correlated)>,
    corrupt: Option<(f64, Correlated)>,
    reorder: Option<(f64, Correlated, u32)>,
    reorder_counter: u32,
    rate_bps: Option<u64>,
    limit: usize,
    last_departure: Option<Duration>,
    in_flight: BinaryHeap<Reverse<Duration>>,
}

impl ImpairedLink {
    /// A link applying `spec`, drawing from `seed` (the spec's own `seed` wins).
    pub fn new(spec: &NetemSpec, seed: u64) -> Self {
        let chance = |c: Option<super::spec::Chance>| {
            c.map(|c| (c.probability, Correlated::new(c.correlation)))
        };
        Self {
            draws: Draws::new(spec.seed.unwrap_or(seed)),
            delay: spec.delay.map(DelayModel::new),
            loss: spec.loss.map(LossModel::new),
            duplicate: chance(spec.duplicate),
            corrupt: chance(spec.corrupt),
            reorder: spec.reorder.map(|r| {
                (
                    r.chance.probability,
                    Correlated::new(r.chance.correlation),
                    r.gap,
                )
            }),
            reorder_counter: 0,
            rate_bps: spec.rate_bps,
            limit: spec.limit,
            last_departure: None,
            in_flight: BinaryHeap::new(),
        }
    }

    /// Decides the fate of a packet of `len` bytes offered at `now`.
    pub fn offer(&mut self, now: Duration, len: usize) -> Fate {
        while self.in_flight.peek().is_some_and(|Reverse(t)| *t <= now) {
            self.in_flight.pop();
        }
        if self.in_flight.len() >= self.limit {
            return Fate::Dropped(DropCause::Limit);
        }
        if let Some(loss) = &mut self.loss {
            if loss.lose(&mut self.draws) {
                return Fate::Dropped(DropCause::Loss);
            }
        }
        let draws = &mut self.draws;
        let duplicate = self
            .duplicate
            .as_mut()
            .is_some_and(|(p, c)| c.next(draws) < *p);
        let corrupt_now = len > 0
            && self
                .corrupt
                .as_mut()
                .is_some_and(|(p, c)| c.next(draws) < *p);
        let corrupt = corrupt_now.then(|| (draws.below(len), draws.below(8) as u8));
        let at = self.departure(now, len);
        self.in_flight.push(Reverse(at));
        Fate::Delivered {
            at,
            duplicate,
            corrupt,
        }
    }

    /// When the packet leaves: netem's order, reorder first (a reordered
    /// packet skips the delay), then the delay, then serialisation at the rate
    /// behind the packets already queued.
    fn departure(&mut self, now: Duration, len: usize) -> Duration {
        let reordered = match &mut self.reorder {
            Some((p, c, gap)) => {
                if self.reorder_counter + 1 < *gap || c.next(&mut self.draws) >= *p {
                    self.reorder_counter += 1;
                    false
                } else {
                    self.reorder_counter = 0;
                    true
                }
            }
            None => false,
        };
        if reordered {
            return now;
        }
        let mut delay = self
            .delay
            .as_mut()
            .map_or(Duration::ZERO, |d| d.next(&mut self.draws));
        let mut start = now;
        if let Some(bps) = self.rate_bps {
            if let Some(last) = self.last_departure.filter(|last| *last > now) {
                delay = delay.saturating_sub(last.saturating_sub(now));
                start = last;
            }
            delay += Duration::from_secs_f64(len as f64 * 8.0 / bps as f64);
        }
        let at = start + delay;
        self.last_departure = Some(at);
        at
    }
}
