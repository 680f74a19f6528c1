//! Per-worker counters that other threads read while the worker runs.
//!
//! Each worker is the only writer of its counters, so a bump is a relaxed
//! load and store (no locked instruction on the packet path); readers see
//! values that are at most a few packets old. The block is cache-line padded
//! so two workers never share a line.

use core::sync::atomic::{AtomicU64, Ordering};

use crossbeam_utils::CachePadded;

use crate::forwarding::ServiceCounter;
use crate::verdict::{DropReason, Verdict};

/// One single-writer counter.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`. Only the owning worker may call this.
    #[inline]
    pub fn add(&self, n: u64) {
        let v = self.0.load(Ordering::Relaxed);
        self.0.store(v.wrapping_add(n), Ordering::Relaxed);
    }

    /// Overwrites the value (a gauge). Only the owning worker may call this.
    #[inline]
    pub fn set(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed);
    }

    /// The current value (any thread).
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Packets and bytes.
#[derive(Debug, Default)]
pub struct Traffic {
    pub packets: Counter,
    pub bytes: Counter,
}

impl Traffic {
    #[inline]
    fn add(&self, bytes: usize) {
        self.packets.add(1);
        self.bytes.add(bytes as u64);
    }
}

/// Backend slots a counter block covers: every `u16`.
pub const BACKEND_SLOTS: usize = 1 << 16;

/// Named services whose drops a worker counts: the most services a
/// forwarding table takes (control hands out ids below this).
pub const SERVICE_COUNTERS: usize = 4096;

/// The drop reasons decided after a packet's service is known, counted
/// per service as well as in [`WorkerCounters::drops`]. Earlier reasons
/// (a malformed header, no service at all) belong to no service.
pub const SERVICE_DROP_REASONS: [DropReason; 3] = [
    DropReason::NoBackend,
    DropReason::EncapExceedsMtu,
    DropReason::NoHeadroom,
];

/// One service's drops in one worker, by [`SERVICE_DROP_REASONS`] index,
/// valid for the service counter generation it holds.
#[derive(Debug, Default)]
pub struct ServiceDrops {
    generation: AtomicU64,
    by_reason: [Counter; SERVICE_DROP_REASONS.len()],
}

impl ServiceDrops {
    /// Counts one drop for `generation`, zeroing the row first if it held
    /// another generation (the id's previous service). Owning worker only.
    fn add(&self, generation: u16, at: usize) {
        let generation = u64::from(generation);
        if self.generation.load(Ordering::Relaxed) != generation {
            for c in &self.by_reason {
                c.set(0);
            }
            // Release: a reader that sees the new generation sees the zeros.
            self.generation.store(generation, Ordering::Release);
        }
        if let Some(c) = self.by_reason.get(at) {
            c.add(1);
        }
    }

    /// The counts if the row holds `generation`, else zeros (this worker
    /// counted no drop for that service yet).
    fn read(&self, generation: u16) -> [u64; SERVICE_DROP_REASONS.len()] {
        if self.generation.load(Ordering::Acquire) != u64::from(generation) {
            return [0; SERVICE_DROP_REASONS.len()];
        }
        core::array::from_fn(|i| self.by_reason[i].get())
    }
}

/// Everything one worker counts.
#[derive(Debug)]
pub struct WorkerCounters {
    pub to_wire: Traffic,
    pub to_host: Traffic,
    pub dropped: Traffic,
    /// Early fragments copied aside until their first fragment arrives.
    pub held: Traffic,
    /// Frames the host sent, passed to the wire.
    pub host_to_wire: Counter,
    /// VIP packets too big to wrap, answered with ICMP "fragmentation
    /// needed" or "packet too big" (those are counted `to_wire` too).
    pub icmp_too_big: Counter,
    /// Drops by reason, indexed by `DropReason as usize`.
    pub drops: [Counter; DropReason::COUNT],
    /// Connection-table hits, misses and what inserts did.
    pub conntrack_hits: Counter,
    pub conntrack_misses: Counter,
    pub conntrack_inserts: Counter,
    pub conntrack_evictions: Counter,
    /// New flows balanced but not recorded: their bucket held only
    /// established flows, which are never evicted.
    pub conntrack_full: Counter,
    pub conntrack_rate_limited: Counter,
    /// Live connection-table entries (a gauge), as of the worker's last full
    /// sweep of its table (see `ConnTable::sweep_occupancy`).
    pub conntrack_entries: Counter,
    /// Packets forwarded per backend slot, one counter for every `u16`
    /// (every possible slot), so that counting by slot needs no bounds check.
    pub backend_packets: Box<[Counter; BACKEND_SLOTS]>,
    /// Bytes of those packets as received (before the rewrite), per slot.
    pub backend_bytes: Box<[Counter; BACKEND_SLOTS]>,
    /// New flows Maglev sent to each slot (connection-table misses).
    /// Slots belong to one service each, so control sums a service's
    /// packets, bytes and new flows over its backends' slots: nothing on
    /// the packet path looks a service up to count it.
    pub backend_new_flows: Box<[Counter; BACKEND_SLOTS]>,
    /// Drops after the service lookup, by service counter id.
    pub service_drops: Box<[ServiceDrops]>,
    /// Batches run, and the forwarding-table generation the last one used.
    pub batches: Counter,
    pub table_generation: Counter,
}

impl Default for WorkerCounters {
    fn default() -> Self {
        Self {
            to_wire: Traffic::default(),
            to_host: Traffic::default(),
            dropped: Traffic::default(),
            held: Traffic::default(),
            host_to_wire: Counter::default(),
            icmp_too_big: Counter::default(),
            drops: core::array::from_fn(|_| Counter::default()),
            conntrack_hits: Counter::default(),
            conntrack_misses: Counter::default(),
            conntrack_inserts: Counter::default(),
            conntrack_evictions: Counter::default(),
            conntrack_full: Counter::default(),
            conntrack_rate_limited: Counter::default(),
            conntrack_entries: Counter::default(),
            backend_packets: every_slot(),
            backend_bytes: every_slot(),
            backend_new_flows: every_slot(),
            service_drops: (0..SERVICE_COUNTERS)
                .map(|_| ServiceDrops::default())
                .collect(),
            batches: Counter::default(),
            table_generation: Counter::default(),
        }
    }
}

/// One zeroed counter per backend slot.
fn every_slot() -> Box<[Counter; BACKEND_SLOTS]> {
    (0..BACKEND_SLOTS)
        .map(|_| Counter::default())
        .collect::<Box<[Counter]>>()
        .try_into()
        .expect("BACKEND_SLOTS counters were collected")
}

impl WorkerCounters {
    /// A padded block, ready to share with readers.
    pub fn new_shared() -> std::sync::Arc<CachePadded<Self>> {
        std::sync::Arc::new(CachePadded::new(Self::default()))
    }

    /// Counts one frame's verdict.
    #[inline]
    pub fn count(&self, verdict: Verdict, bytes: usize) {
        match verdict {
            Verdict::ToWire => self.to_wire.add(bytes),
            Verdict::ToHost => self.to_host.add(bytes),
            Verdict::Held => self.held.add(bytes),
            Verdict::Drop(reason) => self.count_drop(reason, bytes),
        }
    }

    /// Counts a drop that happened outside a verdict (e.g. a held fragment
    /// that timed out).
    #[inline]
    pub fn count_drop(&self, reason: DropReason, bytes: usize) {
        self.dropped.add(bytes);
        self.drops[reason as usize].add(1);
    }

    /// Counts a packet of `bytes` sent to backend `slot`.
    #[inline]
    pub fn count_backend(&self, slot: u16, bytes: usize) {
        self.backend_packets[usize::from(slot)].add(1);
        self.backend_bytes[usize::from(slot)].add(bytes as u64);
    }

    /// Counts a drop of a packet of the named service `service` (also
    /// counted by [`Self::count`] under the verdict). Off the forwarding
    /// path: only drops come here.
    #[cold]
    pub fn count_service_drop(&self, service: ServiceCounter, reason: DropReason) {
        let Some(at) = SERVICE_DROP_REASONS.iter().position(|&r| r == reason) else {
            return;
        };
        if let Some(row) = self.service_drops.get(usize::from(service.id)) {
            row.add(service.generation, at);
        }
    }

    /// The drops this worker counted for `service`, by reason.
    pub fn service_drops_for(&self, service: ServiceCounter) -> Vec<(DropReason, u64)> {
        let Some(row) = self.service_drops.get(usize::from(service.id)) else {
            return Vec::new();
        };
        SERVICE_DROP_REASONS
            .iter()
            .copied()
            .zip(row.read(service.generation))
            .collect()
    }

    /// Drops counted under `reason`.
    pub fn drops_for(&self, reason: DropReason) -> u64 {
        self.drops[reason as usize].get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_land_in_their_own_counters() {
        let c = WorkerCounters::default();
        c.count(Verdict::ToWire, 100);
        c.count(Verdict::ToHost, 60);
        c.count(Verdict::Drop(DropReason::TtlExpired), 70);
        c.count(Verdict::Drop(DropReason::TtlExpired), 70);
        assert_eq!((c.to_wire.packets.get(), c.to_wire.bytes.get()), (1, 100));
        assert_eq!((c.to_host.packets.get(), c.to_host.bytes.get()), (1, 60));
        assert_eq!((c.dropped.packets.get(), c.dropped.bytes.get()), (2, 140));
        assert_eq!(c.drops_for(DropReason::TtlExpired), 2);
        assert_eq!(c.drops_for(DropReason::NoBackend), 0);
    }

    fn no_backend(c: &WorkerCounters, service: ServiceCounter) -> u64 {
        let drops = c.service_drops_for(service);
        assert_eq!(drops.len(), SERVICE_DROP_REASONS.len());
        drops
            .into_iter()
            .find(|&(reason, _)| reason == DropReason::NoBackend)
            .map_or(0, |(_, n)| n)
    }

    #[test]
    fn a_service_s_drops_count_to_its_id_and_a_new_generation_starts_at_zero() {
        let c = WorkerCounters::default();
        let old = ServiceCounter {
            id: 3,
            generation: 0,
        };
        let other = ServiceCounter {
            id: 4,
            generation: 0,
        };
        c.count_service_drop(old, DropReason::NoBackend);
        c.count_service_drop(old, DropReason::NoBackend);
        // Reasons decided before the service lookup are not the service's.
        c.count_service_drop(old, DropReason::TtlExpired);
        assert_eq!(no_backend(&c, old), 2, "counted to its own id");
        assert_eq!(no_backend(&c, other), 0);
        let reused = ServiceCounter {
            id: 3,
            generation: 1,
        };
        assert_eq!(
            no_backend(&c, reused),
            0,
            "a reused id does not show the old service's drops"
        );
        c.count_service_drop(reused, DropReason::NoBackend);
        assert_eq!(no_backend(&c, reused), 1);
        assert_eq!(no_backend(&c, old), 0);
    }

    #[test]
    fn ids_past_the_rows_are_ignored() {
        let c = WorkerCounters::default();
        let past = ServiceCounter {
            id: SERVICE_COUNTERS as u16,
            generation: 0,
        };
        c.count_service_drop(past, DropReason::NoBackend);
        assert!(c.service_drops_for(past).is_empty());
    }

    #[test]
    fn a_reader_thread_sees_the_writer_s_counts() {
        let c = WorkerCounters::new_shared();
        let writer = {
            let c = c.clone();
            std::thread::spawn(move || {
                for _ in 0..1000 {
                    c.to_wire.add(1);
                }
            })
        };
        writer.join().unwrap();
        assert_eq!(c.to_wire.packets.get(), 1000);
    }
}
