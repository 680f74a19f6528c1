//! One direction of an impaired link: for each packet offered at a time,
//! what netem's enqueue would do with it. Pure and seeded: the same seed and
//! the same offered packets (times and lengths) give the same decisions,
//! packet for packet, whatever moves the bytes.
//!
//! The order is netem's (`netem_enqueue`), and so are its surprises:
//!
//! 1. **Duplicate** is drawn first. **Loss** then takes one copy away: a
//!    packet drawn for both still leaves once, and only a packet lost and
//!    not duplicated is dropped.
//! 2. **Corrupt** flips one random bit of one random byte of the packet
//!    (not of its duplicate, cloned before).
//! 3. **Limit**: when `limit` packets wait already, the packet (and its
//!    duplicate) is dropped. `rate` never drops: it delays, and the queue
//!    it builds is what `limit` cuts.
//! 4. The duplicate goes through all of this again on its own (its own
//!    loss, corruption, delay), except being duplicated, and takes its
//!    place in the queue before the packet.
//! 5. **Reorder** (with a delay only; the parser refuses it without one):
//!    once `gap - 1` packets have been delayed since the last reordered
//!    one, each packet leaves at once with the reorder probability, ahead of
//!    the delayed ones; otherwise it is delayed.
//! 6. **Delay** ([`super::delay`]); with a **rate**, the packet starts after
//!    the last one queued (what that one already waits comes off its own
//!    delay) and takes its transmission time: packets keep their order.
//!    Without a rate, jitter reorders.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use super::delay::DelayModel;
use super::loss::LossModel;
use super::random::{Correlated, Draws, Probability};
use super::spec::{Chance, NetemSpec, RateSpec};

/// Why a packet did not get through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropCause {
    /// The loss model lost it.
    Loss,
    /// The link already held `limit` packets.
    Limit,
}

/// What happens to one copy of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    Dropped(DropCause),
    Sent {
        /// When it leaves the link, on the offering clock.
        at: Duration,
        /// Flip bit `.1` of byte `.0` (netem's corrupt).
        corrupt: Option<(usize, u8)>,
    },
}

/// What netem does with one offered packet: the packet's fate and, when it
/// was duplicated, its duplicate's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offer {
    pub packet: Fate,
    pub duplicate: Option<Fate>,
}

impl Offer {
    /// The copies that leave, the duplicate first (it was queued first).
    pub fn sent(&self) -> impl Iterator<Item = (Duration, Option<(usize, u8)>)> {
        [self.duplicate, Some(self.packet)]
            .into_iter()
            .flatten()
            .filter_map(|fate| match fate {
                Fate::Sent { at, corrupt } => Some((at, corrupt)),
                Fate::Dropped(_) => None,
            })
    }
}

/// A chance with netem's correlated draw.
#[derive(Debug, Clone)]
struct CorrelatedChance {
    p: Probability,
    draw: Correlated,
}

impl CorrelatedChance {
    fn new(chance: Chance, draws: &mut Draws) -> Self {
        Self {
            p: Probability::from_fraction(chance.probability),
            draw: Correlated::new(Probability::from_fraction(chance.correlation), draws),
        }
    }

    /// netem's `q->p && q->p >= get_crandom(...)`.
    fn happens(&mut self, draws: &mut Draws) -> bool {
        !self.p.is_zero() && self.p.admits(self.draw.next(draws))
    }
}

/// netem's reorder: probability, correlation and gap.
#[derive(Debug, Clone)]
struct Reorder {
    chance: CorrelatedChance,
    gap: u32,
}

impl RateSpec {
    /// netem's `packet_time_ns`: the time `len` bytes take at the rate,
    /// with the packet overhead and, with a cell size, whole cells.
    /// Overheads that would make a size negative count as zero.
    pub fn transmission_nanos(&self, len: usize) -> u64 {
        let len = i64::try_from(len).unwrap_or(i64::MAX);
        let mut bytes =
            u64::try_from(len.saturating_add(i64::from(self.packet_overhead))).unwrap_or(0);
        if self.cell_size > 0 {
            let cells = bytes.div_ceil(u64::from(self.cell_size));
            let cell = i64::from(self.cell_size) + i64::from(self.cell_overhead);
            bytes = cells * u64::try_from(cell).unwrap_or(0);
        }
        // At most 2^32 cells of 2^32 bytes: no overflow of the u128.
        (u128::from(bytes) * 1_000_000_000 / u128::from(self.bytes_per_second.max(1))) as u64
    }
}

/// The decisions of one link direction.
#[derive(Debug, Clone)]
pub struct ImpairedLink {
    draws: Draws,
    delay: Option<DelayModel>,
    loss: Option<LossModel>,
    duplicate: Option<CorrelatedChance>,
    corrupt: Option<CorrelatedChance>,
    reorder: Option<Reorder>,
    /// Packets delayed since the last one reordered (netem's `counter`).
    counter: u32,
    rate: Option<RateSpec>,
    limit: usize,
    /// The latest departure of any packet queued so far.
    last_departure: Option<Duration>,
    in_flight: BinaryHeap<Reverse<Duration>>,
}

impl ImpairedLink {
    /// A link applying `spec`, drawing from `seed` (the spec's own `seed` wins).
    pub fn new(spec: &NetemSpec, seed: u64) -> Self {
        let mut draws = Draws::new(spec.seed.unwrap_or(seed));
        let delay = spec.delay.map(|d| DelayModel::new(d, &mut draws));
        let loss = spec.loss.map(|l| LossModel::new(l, &mut draws));
        let duplicate = spec.duplicate.map(|c| CorrelatedChance::new(c, &mut draws));
        let corrupt = spec.corrupt.map(|c| CorrelatedChance::new(c, &mut draws));
        let reorder = spec.reorder.map(|r| Reorder {
            chance: CorrelatedChance::new(r.chance, &mut draws),
            gap: r.gap.max(1),
        });
        Self {
            draws,
            delay,
            loss,
            duplicate,
            corrupt,
            reorder,
            counter: 0,
            rate: spec.rate.filter(|r| r.bytes_per_second > 0),
            limit: spec.limit,
            last_departure: None,
            in_flight: BinaryHeap::new(),
        }
    }

    /// What happens to a packet of `len` bytes offered at `now`.
    pub fn offer(&mut self, now: Duration, len: usize) -> Offer {
        self.enqueue(now, len, false)
    }

    /// netem's enqueue; `is_duplicate` for the copy it re-enqueues.
    fn enqueue(&mut self, now: Duration, len: usize, is_duplicate: bool) -> Offer {
        let draws = &mut self.draws;
        let mut copies = 1;
        if !is_duplicate && self.duplicate.as_mut().is_some_and(|d| d.happens(draws)) {
            copies += 1;
        }
        if self.loss.as_mut().is_some_and(|l| l.lose(draws)) {
            copies -= 1;
        }
        if copies == 0 {
            return Offer {
                packet: Fate::Dropped(DropCause::Loss),
                duplicate: None,
            };
        }
        let corrupt = (len > 0 && self.corrupt.as_mut().is_some_and(|c| c.happens(draws)))
            .then(|| (draws.below(len), draws.below(8) as u8));
        while self.in_flight.peek().is_some_and(|Reverse(t)| *t <= now) {
            self.in_flight.pop();
        }
        if self.in_flight.len() >= self.limit {
            return Offer {
                packet: Fate::Dropped(DropCause::Limit),
                duplicate: None,
            };
        }
        let duplicate = (copies > 1).then(|| self.enqueue(now, len, true).packet);
        let at = self.departure(now, len);
        self.in_flight.push(Reverse(at));
        self.last_departure = Some(self.last_departure.map_or(at, |last| last.max(at)));
        Offer {
            packet: Fate::Sent { at, corrupt },
            duplicate,
        }
    }

    /// When the packet leaves: at once when reordered, else after its delay
    /// (and behind the queue at the rate).
    fn departure(&mut self, now: Duration, len: usize) -> Duration {
        if let Some(reorder) = &mut self.reorder {
            // netem's test, in its order: inside the gap no draw is taken.
            let delayed =
                self.counter < reorder.gap - 1 || !reorder.chance.happens(&mut self.draws);
            if !delayed {
                self.counter = 0;
                return now;
            }
        }
        let mut delay = self
            .delay
            .as_mut()
            .map_or(0, |d| d.next_nanos(&mut self.draws));
        let mut start = now;
        if let Some(rate) = &self.rate {
            if let Some(last) = self.last_departure.filter(|last| *last > now) {
                let waiting =
                    i64::try_from(last.saturating_sub(now).as_nanos()).unwrap_or(i64::MAX);
                delay = delay.saturating_sub(waiting).max(0);
                start = last;
            }
            delay = delay
                .saturating_add(i64::try_from(rate.transmission_nanos(len)).unwrap_or(i64::MAX));
        }
        self.counter = self.counter.wrapping_add(1);
        // A negative delay (jitter beyond the mean) leaves at once.
        start + Duration::from_nanos(u64::try_from(delay).unwrap_or(0))
    }
}
