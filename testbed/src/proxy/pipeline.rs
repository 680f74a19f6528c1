//! What the proxy's toxics do to one direction of one connection: which of them apply
//! (stream, `clients`, the toxicity roll), and the chunk-by-chunk effect of those that
//! shape bytes. Pure bookkeeping, no I/O: `link` does the reading and writing.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;

use super::metrics::ProxyMetrics;
use super::seed;
use super::toxic::{Stream, Toxic};
use super::toxics::bounds::later;
use super::toxics::{Piece, ToxicKind};

/// The proxy's toxics, in the order they were added, as links see them.
pub type ToxicList = Arc<Vec<Arc<Toxic>>>;

/// The most copies of one datagram the `duplicate` toxics make between them: each
/// doubles, and 64 of them would make 2^64.
pub const DATAGRAM_COPIES_MAX: usize = 16;

/// Whether `toxic` acts on a connection from `source` whose seed is `connection_seed`
/// (its stream aside). Toxicity 0 never applies, 1 always does.
pub fn applies(toxic: &Toxic, source: IpAddr, connection_seed: u64) -> bool {
    toxic.targets(source) && seed::toxicity_roll(connection_seed, toxic.uid) < toxic.toxicity
}

/// What the stalling toxics ask of the direction right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stall {
    /// `timeout` is in effect: data is dropped; close at this time if any.
    pub silenced: bool,
    pub close_at: Option<Instant>,
    /// `reset_peer` is in effect: reset at this time.
    pub reset_at: Option<Instant>,
}

/// How a chunk left the pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piped {
    pub pieces: Vec<Piece>,
    /// `limit_data` used up its allowance: close the connection after these pieces.
    pub close_after: bool,
}

/// One direction of one connection: its rolls, generators and per-toxic state.
#[derive(Debug)]
pub struct DirectionToxics {
    stream: Stream,
    source: IpAddr,
    connection_seed: u64,
    rng: StdRng,
    metrics: ProxyMetrics,
    /// Per toxic uid: toxicity it was rolled for, and the outcome.
    rolls: HashMap<u64, (u64, bool)>,
    /// Per toxic uid: when it first took effect here.
    since: HashMap<u64, Instant>,
    bandwidth_free: HashMap<u64, Option<Instant>>,
    limit_passed: HashMap<u64, u64>,
    /// A datagram `reorder` holds back until the next one has gone.
    held: Option<Piece>,
}

impl DirectionToxics {
    pub fn new(
        stream: Stream,
        source: IpAddr,
        connection_seed: u64,
        metrics: ProxyMetrics,
    ) -> Self {
        let salt = match stream {
            Stream::Upstream => 1,
            Stream::Downstream => 2,
        };
        DirectionToxics {
            stream,
            source,
            connection_seed,
            rng: seed::generator(connection_seed, salt),
            metrics,
            rolls: HashMap::new(),
            since: HashMap::new(),
            bandwidth_free: HashMap::new(),
            limit_passed: HashMap::new(),
            held: None,
        }
    }

    /// The toxics acting on this direction now, in order. A toxic's roll is made
    /// once and kept until its toxicity changes.
    pub fn active(&mut self, list: &[Arc<Toxic>]) -> Vec<Arc<Toxic>> {
        let now = Instant::now();
        let mut active = Vec::new();
        for toxic in list.iter().filter(|toxic| toxic.stream == self.stream) {
            let bits = toxic.toxicity.to_bits();
            let applies = match self.rolls.get(&toxic.uid) {
                Some((rolled_for, outcome)) if *rolled_for == bits => *outcome,
                _ => {
                    let outcome = applies(toxic, self.source, self.connection_seed);
                    self.rolls.insert(toxic.uid, (bits, outcome));
                    outcome
                }
            };
            if applies {
                if let std::collections::hash_map::Entry::Vacant(entry) =
                    self.since.entry(toxic.uid)
                {
                    entry.insert(now);
                    self.metrics.toxic_applied(toxic.kind.type_name());
                }
                active.push(Arc::clone(toxic));
            }
        }
        self.forget_removed(list);
        active
    }

    /// Drops the state of toxics no longer on the list, once there is more of it
    /// than toxics: a connection that outlives many toxic edits would otherwise keep a
    /// roll for every toxic it ever saw. Each map only has uids that `rolls` has (a
    /// toxic is rolled before anything else is kept for it), so `rolls` tells.
    fn forget_removed(&mut self, list: &[Arc<Toxic>]) {
        if self.rolls.len() <= list.len() {
            return;
        }
        let live: std::collections::HashSet<u64> = list.iter().map(|toxic| toxic.uid).collect();
        self.rolls.retain(|uid, _| live.contains(uid));
        self.since.retain(|uid, _| live.contains(uid));
        self.bandwidth_free.retain(|uid, _| live.contains(uid));
        self.limit_passed.retain(|uid, _| live.contains(uid));
    }

    /// How many bytes one read may take so that the pieces the active toxics cut it
    /// into fit in `room` pieces. A toxic that cuts pieces of at least `s` bytes
    /// (slicer, bandwidth; the last of each piece may be shorter) turns `p` pieces of
    /// `n` bytes into at most `p + n / s`, so after `t` of them one chunk of `n` bytes
    /// is at most `1 + t * n / s_min` pieces.
    pub fn read_budget(active: &[Arc<Toxic>], room: usize) -> usize {
        let cuts: Vec<usize> = active
            .iter()
            .filter_map(|toxic| match &toxic.kind {
                ToxicKind::Slicer(slicer) => Some(slicer.smallest_slice()),
                ToxicKind::Bandwidth(bandwidth) => bandwidth.piece_size(),
                _ => None,
            })
            .collect();
        let Some(smallest) = cuts.iter().copied().min() else {
            // Nothing cuts: a read is one piece.
            return if room > 0 { usize::MAX } else { 0 };
        };
        (room.saturating_sub(1)).saturating_mul(smallest) / cuts.len()
    }

    /// What `timeout` and `reset_peer` ask for.
    pub fn stall(&self, active: &[Arc<Toxic>]) -> Stall {
        let mut stall = Stall::default();
        for toxic in active {
            let since = self
                .since
                .get(&toxic.uid)
                .copied()
                .unwrap_or_else(Instant::now);
            match &toxic.kind {
                // The first timeout in the list decides.
                ToxicKind::Timeout(timeout) if !stall.silenced => {
                    stall.silenced = true;
                    stall.close_at = timeout.close_at(since);
                }
                ToxicKind::ResetPeer(reset) => {
                    let at = reset.reset_at(since);
                    stall.reset_at = Some(stall.reset_at.map_or(at, |earlier| earlier.min(at)));
                }
                _ => {}
            }
        }
        stall
    }

    /// Runs one chunk through the byte-shaping toxics, in order.
    pub fn pipe(&mut self, active: &[Arc<Toxic>], data: Vec<u8>, arrived: Instant) -> Piped {
        let mut pieces = vec![Piece::new(data, arrived)];
        let mut close_after = false;
        for toxic in active {
            match &toxic.kind {
                ToxicKind::Latency(latency) => latency.apply(&mut pieces, &mut self.rng),
                ToxicKind::Bandwidth(bandwidth) => {
                    let free = self.bandwidth_free.entry(toxic.uid).or_default();
                    pieces = bandwidth.apply(pieces, free);
                }
                ToxicKind::Slicer(slicer) => pieces = slicer.apply(pieces, &mut self.rng),
                ToxicKind::LimitData(limit) => {
                    let passed = self.limit_passed.entry(toxic.uid).or_default();
                    close_after |= limit.apply(&mut pieces, passed);
                }
                ToxicKind::Blackhole(_) => pieces.clear(),
                _ => {}
            }
        }
        Piped {
            pieces,
            close_after,
        }
    }

    /// Runs one datagram through the datagram toxics (`loss`, `duplicate`,
    /// `reorder`, `latency`): zero, one or more datagrams to send, with their times.
    pub fn datagram(
        &mut self,
        active: &[Arc<Toxic>],
        data: Vec<u8>,
        arrived: Instant,
    ) -> Vec<Piece> {
        let mut out = vec![Piece::new(data, arrived)];
        for toxic in active {
            match &toxic.kind {
                ToxicKind::Loss(loss) => out.retain(|_| !loss.drops(&mut self.rng)),
                ToxicKind::Duplicate(duplicate) => {
                    let mut copies = Vec::with_capacity(out.len() * 2);
                    let mut room = DATAGRAM_COPIES_MAX.saturating_sub(out.len());
                    for piece in out {
                        // Past the cap a duplicate toxic still rolls (so seeded runs
                        // keep their sequence) but makes no copy.
                        if duplicate.duplicates(&mut self.rng) && room > 0 {
                            room -= 1;
                            copies.push(piece.clone());
                        }
                        copies.push(piece);
                    }
                    out = copies;
                }
                ToxicKind::Latency(latency) => latency.apply(&mut out, &mut self.rng),
                ToxicKind::Blackhole(_) => out.clear(),
                ToxicKind::Reorder(reorder) => {
                    let mut reordered = Vec::with_capacity(out.len() + 1);
                    for piece in out {
                        if let Some(held) = self.held.take() {
                            // The held datagram goes right after this one.
                            let after = piece.not_before;
                            reordered.push(piece);
                            reordered.push(Piece {
                                not_before: held.not_before.max(after),
                                ..held
                            });
                        } else if reorder.holds(&mut self.rng) {
                            self.held = Some(piece);
                        } else {
                            reordered.push(piece);
                        }
                    }
                    out = reordered;
                }
                _ => {}
            }
        }
        out
    }

    /// A datagram held by `reorder`, with the time it must go if nothing follows.
    pub fn held_datagram(&self, active: &[Arc<Toxic>]) -> Option<Instant> {
        let hold = active.iter().find_map(|toxic| match &toxic.kind {
            ToxicKind::Reorder(reorder) => Some(reorder.longest_hold()),
            _ => None,
        });
        let held = self.held.as_ref()?;
        Some(later(held.not_before, hold.unwrap_or_default()))
    }

    pub fn release_held(&mut self) -> Option<Piece> {
        self.held.take()
    }

    /// Whether a `limit_data` toxic is already used up (e.g. `bytes: 0`).
    pub fn limit_reached(&self, active: &[Arc<Toxic>]) -> bool {
        active.iter().any(|toxic| match &toxic.kind {
            ToxicKind::LimitData(limit) => {
                self.limit_passed.get(&toxic.uid).copied().unwrap_or(0) >= limit.bytes
            }
            _ => false,
        })
    }

    /// How long the end of stream waits (`slow_close`), and whether it vanishes
    /// (`blackhole`).
    pub fn end_of_stream(active: &[Arc<Toxic>]) -> (Duration, bool) {
        let mut delay = Duration::ZERO;
        let mut swallowed = false;
        for toxic in active {
            match &toxic.kind {
                ToxicKind::SlowClose(slow) => delay = delay.max(slow.close_delay()),
                ToxicKind::Blackhole(_) => swallowed = true,
                _ => {}
            }
        }
        (delay, swallowed)
    }

    /// `accept_delay`: how long a new connection waits before it is served.
    pub fn accept_delay(active: &[Arc<Toxic>]) -> Duration {
        active
            .iter()
            .filter_map(|toxic| match &toxic.kind {
                ToxicKind::AcceptDelay(delay) => Some(delay.accept_delay()),
                _ => None,
            })
            .max()
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::metrics::Metrics;
    use crate::proxy::toxic::ToxicInput;

    fn toxic(uid: u64, json: serde_json::Value) -> Arc<Toxic> {
        let input: ToxicInput = serde_json::from_value(json).unwrap();
        Arc::new(Toxic::create(input, uid).unwrap())
    }

    fn run(seed: u64) -> Vec<(usize, Duration)> {
        let list = vec![
            toxic(
                1,
                serde_json::json!({"type": "latency", "attributes": {"latency": 10, "jitter": 5}}),
            ),
            toxic(
                2,
                serde_json::json!({"type": "slicer", "attributes": {"average_size": 50, "size_variation": 30}}),
            ),
        ];
        let metrics = Metrics::new().for_proxy("p");
        let mut state = DirectionToxics::new(
            Stream::Downstream,
            "127.0.0.1".parse().unwrap(),
            seed,
            metrics,
        );
        let active = state.active(&list);
        let arrived = Instant::now();
        (0..5)
            .flat_map(|_| state.pipe(&active, vec![0; 500], arrived).pieces)
            .map(|piece| (piece.data.len(), piece.not_before - arrived))
            .collect()
    }

    #[test]
    fn the_same_seed_gives_the_same_slices_and_delays() {
        assert_eq!(run(9), run(9));
        assert_ne!(run(9), run(10));
    }

    fn downstream(seed: u64) -> DirectionToxics {
        DirectionToxics::new(
            Stream::Downstream,
            "127.0.0.1".parse().unwrap(),
            seed,
            Metrics::new().for_proxy("p"),
        )
    }

    proptest::proptest! {
        /// Whatever slicers and bandwidths are active, a read of the budget's size
        /// never becomes more pieces than the room it was given.
        #[test]
        fn a_read_of_the_budget_fits_in_the_room(
            cutters in proptest::collection::vec(
                (proptest::bool::ANY, 0_u64..64, 0_u64..64, 0_u64..200),
                0..4,
            ),
            room in 0_usize..5000,
            seed in proptest::prelude::any::<u64>(),
        ) {
            let list: Vec<Arc<Toxic>> = cutters
                .iter()
                .enumerate()
                .map(|(index, &(slicer, average, variation, rate))| {
                    let json = if slicer {
                        serde_json::json!({"type": "slicer", "name": format!("t{index}"),
                            "attributes": {"average_size": average, "size_variation": variation}})
                    } else {
                        serde_json::json!({"type": "bandwidth", "name": format!("t{index}"),
                            "attributes": {"rate": rate}})
                    };
                    toxic(index as u64 + 1, json)
                })
                .collect();
            let mut state = downstream(seed);
            let active = state.active(&list);
            let budget = DirectionToxics::read_budget(&active, room).min(64 * 1024);
            if budget > 0 {
                let piped = state.pipe(&active, vec![0; budget], Instant::now());
                proptest::prop_assert!(
                    piped.pieces.len() <= room,
                    "{} pieces from {budget} bytes in a room of {room}",
                    piped.pieces.len()
                );
            }
        }
    }

    #[test]
    fn a_one_byte_slicer_reads_no_more_than_the_room_in_pieces() {
        let slicer = toxic(
            1,
            serde_json::json!({"type": "slicer", "attributes": {"average_size": 1}}),
        );
        let active = [slicer];
        assert_eq!(DirectionToxics::read_budget(&active, 4096), 4095);
        assert_eq!(DirectionToxics::read_budget(&active, 1), 0);
        assert_eq!(DirectionToxics::read_budget(&[], 1), usize::MAX);
        assert_eq!(DirectionToxics::read_budget(&[], 0), 0);
    }

    #[test]
    fn a_connection_forgets_the_toxics_removed_while_it_lived() {
        let mut state = downstream(3);
        let kept = toxic(
            1,
            serde_json::json!({"type": "limit_data", "name": "kept", "attributes": {"bytes": 100}}),
        );
        for uid in 2..2000 {
            let churned = toxic(
                uid,
                serde_json::json!({"type": "bandwidth", "name": "churn", "attributes": {"rate": 1000}}),
            );
            let list = [Arc::clone(&kept), churned];
            let active = state.active(&list);
            state.pipe(&active, vec![0; 10], Instant::now());
        }
        assert!(state.rolls.len() <= 2, "{} rolls kept", state.rolls.len());
        assert!(state.since.len() <= 2);
        assert!(state.bandwidth_free.len() <= 2);
        // The toxic still there kept its count across the churn.
        assert_eq!(state.limit_passed.get(&1), Some(&100));
    }

    #[test]
    fn stacked_duplicate_toxics_make_at_most_the_copy_cap() {
        let mut state = downstream(4);
        let list: Vec<Arc<Toxic>> = (0..20)
            .map(|uid| {
                toxic(
                    uid + 1,
                    serde_json::json!({"type": "duplicate", "name": format!("d{uid}"),
                        "attributes": {"probability": 1.0}}),
                )
            })
            .collect();
        let active = state.active(&list);
        let out = state.datagram(&active, vec![1], Instant::now());
        assert_eq!(out.len(), DATAGRAM_COPIES_MAX);
    }

    #[test]
    fn a_roll_is_kept_until_the_toxicity_changes() {
        let metrics = Metrics::new().for_proxy("p");
        let source = "127.0.0.1".parse().unwrap();
        // Find a connection seed whose roll for uid 1 lies between 0.3 and 0.7.
        let seed = (0..1000)
            .find(|seed| (0.3..0.7).contains(&seed::toxicity_roll(*seed, 1)))
            .unwrap();
        let mut state = DirectionToxics::new(Stream::Downstream, source, seed, metrics);
        let half = toxic(1, serde_json::json!({"type": "noop", "toxicity": 0.9}));
        assert_eq!(state.active(&[Arc::clone(&half)]).len(), 1);
        let unrelated = toxic(2, serde_json::json!({"type": "noop", "name": "other"}));
        assert_eq!(state.active(&[Arc::clone(&half), unrelated]).len(), 2);
        let lowered = toxic(1, serde_json::json!({"type": "noop", "toxicity": 0.1}));
        assert!(state.active(&[lowered]).is_empty());
    }
}
