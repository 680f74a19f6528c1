//! The userspace link emulator: two packet I/O endpoints (the two ends of a
//! link, e.g. `AF_PACKET` on two veths) bridged frame by frame, each direction
//! through its own [`ImpairedLink`]. Frames the model delays wait in a
//! bounded queue (copies, netem's `limit`); due frames are sent on the other
//! side. Driven by an explicit clock, so tests can run it on virtual time.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::time::Duration;

use dataplane::io::PacketIo;
use dataplane::{Frame, Verdict};

use super::link::{DropCause, Fate, ImpairedLink};

/// Largest frame the emulator carries (jumbo frames are not emulated).
pub const MAX_FRAME: usize = 2048;

/// What one direction did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DirectionCounters {
    pub received: u64,
    pub sent: u64,
    /// Dropped by the loss model (a duplicate's own loss included).
    pub lost: u64,
    /// Dropped by netem's `limit` or a full queue of the emulator's.
    pub limited: u64,
    /// Duplicates sent.
    pub duplicated: u64,
    /// Copies sent with a bit flipped.
    pub corrupted: u64,
    /// Larger than [`MAX_FRAME`]: passed over, counted.
    pub oversized: u64,
}

/// Frames waiting for their departure time, in preallocated buffers.
#[derive(Debug)]
struct Pending {
    due: BinaryHeap<Reverse<(Duration, u64, usize)>>,
    buffers: Vec<Box<[u8]>>,
    lengths: Vec<usize>,
    free: Vec<usize>,
    sequence: u64,
}

impl Pending {
    fn new(slots: usize) -> Self {
        Self {
            due: BinaryHeap::with_capacity(slots),
            buffers: (0..slots)
                .map(|_| vec![0u8; MAX_FRAME].into_boxed_slice())
                .collect(),
            lengths: vec![0; slots],
            free: (0..slots).rev().collect(),
            sequence: 0,
        }
    }

    /// Queues a copy of `bytes` to leave at `at`; false when full.
    fn push(&mut self, at: Duration, bytes: &[u8], corrupt: Option<(usize, u8)>) -> bool {
        let Some(slot) = self.free.pop() else {
            return false;
        };
        self.buffers[slot][..bytes.len()].copy_from_slice(bytes);
        if let Some((byte, bit)) = corrupt {
            self.buffers[slot][byte] ^= 1 << bit;
        }
        self.lengths[slot] = bytes.len();
        // The sequence keeps frames with equal times in arrival order.
        self.due.push(Reverse((at, self.sequence, slot)));
        self.sequence += 1;
        true
    }

    /// Sends up to `most` frames due by `now` through `send` (which returns
    /// false when the other side has no room: the rest wait for the next
    /// step).
    fn release(
        &mut self,
        now: Duration,
        most: usize,
        mut send: impl FnMut(&[u8]) -> bool,
    ) -> usize {
        let mut sent = 0;
        while let Some(Reverse((at, _, slot))) = self.due.peek().copied() {
            if sent == most || at > now || !send(&self.buffers[slot][..self.lengths[slot]]) {
                break;
            }
            self.due.pop();
            self.free.push(slot);
            sent += 1;
        }
        sent
    }

    fn next_due(&self) -> Option<Duration> {
        self.due.peek().map(|Reverse((at, _, _))| *at)
    }
}

/// One direction: its model, its queue, its counters.
#[derive(Debug)]
struct Direction {
    link: ImpairedLink,
    pending: Pending,
    counters: DirectionCounters,
}

impl Direction {
    /// Takes a batch from `from`, queueing what the model lets through.
    fn receive(
        &mut self,
        from: &mut impl PacketIo,
        now: Duration,
        budget: usize,
    ) -> io::Result<usize> {
        let counts = from.run_batch(budget, |frame: &mut Frame<'_>| {
            self.offer(now, frame.data())
        })?;
        Ok(counts.from_wire)
    }

    fn offer(&mut self, now: Duration, bytes: &[u8]) -> Verdict {
        self.counters.received += 1;
        if bytes.len() > MAX_FRAME {
            self.counters.oversized += 1;
            return Verdict::Held;
        }
        let offer = self.link.offer(now, bytes.len());
        for fate in std::iter::once(offer.packet).chain(offer.duplicate) {
            match fate {
                Fate::Dropped(DropCause::Loss) => self.counters.lost += 1,
                Fate::Dropped(DropCause::Limit) => self.counters.limited += 1,
                Fate::Sent { .. } => {}
            }
        }
        // The duplicate was queued first, as netem queues it.
        for (at, corrupt) in offer.sent() {
            if self.pending.push(at, bytes, corrupt) {
                self.counters.corrupted += u64::from(corrupt.is_some());
            } else {
                self.counters.limited += 1;
            }
        }
        self.counters.duplicated += u64::from(matches!(offer.duplicate, Some(Fate::Sent { .. })));
        // The emulator keeps its own copy; the endpoint frees its buffer.
        Verdict::Held
    }
}

/// A link between endpoints `a` and `b`, impaired in each direction.
#[derive(Debug)]
pub struct Emulator<A: PacketIo, B: PacketIo> {
    pub a: A,
    pub b: B,
    a_to_b: Direction,
    b_to_a: Direction,
}

/// Frames taken from each side per step.
const BATCH: usize = 32;

/// What one [`Emulator::step`] moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Step {
    pub received: usize,
    pub sent: usize,
    /// A side gave, or was sent, a whole batch: more frames may be waiting.
    pub more_waiting: bool,
}

impl Step {
    pub fn moved(&self) -> usize {
        self.received + self.sent
    }
}

impl<A: PacketIo, B: PacketIo> Emulator<A, B> {
    /// `a_to_b` and `b_to_a` model the two directions; each queues at most
    /// `queue` frames.
    pub fn new(a: A, b: B, a_to_b: ImpairedLink, b_to_a: ImpairedLink, queue: usize) -> Self {
        let direction = |link| Direction {
            link,
            pending: Pending::new(queue.max(1)),
            counters: DirectionCounters::default(),
        };
        Self {
            a,
            b,
            a_to_b: direction(a_to_b),
            b_to_a: direction(b_to_a),
        }
    }

    /// One round at time `now`: receive a batch from each side, send a
    /// batch of what is due to each. A batch each way per step keeps a kick
    /// short and the receive rings served between kicks, however the
    /// frames' times bunch.
    pub fn step(&mut self, now: Duration) -> io::Result<Step> {
        let from_a = self.a_to_b.receive(&mut self.a, now, BATCH)?;
        let from_b = self.b_to_a.receive(&mut self.b, now, BATCH)?;
        let b = &mut self.b;
        let sent = self
            .a_to_b
            .pending
            .release(now, BATCH, |bytes| b.transmit_copy(bytes).unwrap_or(false));
        self.a_to_b.counters.sent += sent as u64;
        let a = &mut self.a;
        let sent_back = self
            .b_to_a
            .pending
            .release(now, BATCH, |bytes| a.transmit_copy(bytes).unwrap_or(false));
        self.b_to_a.counters.sent += sent_back as u64;
        Ok(Step {
            received: from_a + from_b,
            sent: sent + sent_back,
            more_waiting: [from_a, from_b, sent, sent_back].contains(&BATCH),
        })
    }

    /// Exchanges the two directions' models with `a_to_b` and `b_to_a`
    /// (an impairment switched on or off while the link runs): frames
    /// already queued leave when they were due, later ones meet the new
    /// models, as when netem's settings are changed in place.
    pub fn swap_models(&mut self, a_to_b: &mut ImpairedLink, b_to_a: &mut ImpairedLink) {
        std::mem::swap(&mut self.a_to_b.link, a_to_b);
        std::mem::swap(&mut self.b_to_a.link, b_to_a);
    }

    /// When the next queued frame is due, if any.
    pub fn next_due(&self) -> Option<Duration> {
        match (
            self.a_to_b.pending.next_due(),
            self.b_to_a.pending.next_due(),
        ) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        }
    }

    pub fn counters(&self) -> (DirectionCounters, DirectionCounters) {
        (self.a_to_b.counters, self.b_to_a.counters)
    }
}
