//! Per-worker counters that other threads read while the worker runs.
//!
//! Each worker is the only writer of its counters, so a bump is a relaxed
//! load and store (no locked instruction on the packet path); readers see
//! values that are at most a few packets old. The block is cache-line padded
//! so two workers never share a line.

use core::sync::atomic::{AtomicU64, Ordering};

use crossbeam_utils::CachePadded;

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
