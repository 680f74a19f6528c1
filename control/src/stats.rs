//! A point-in-time reading of every worker's counters, and their sum: what
//! `GET /stats` and `GET /metrics` are made from. Reading never blocks a
//! worker: each counter is a relaxed atomic load.

use std::net::IpAddr;
use std::sync::Arc;

use crossbeam_utils::CachePadded;
use dataplane::counters::{Traffic, WorkerCounters, SERVICE_DROP_REASONS};
use dataplane::forwarding::ServiceCounter;
use dataplane::verdict::DropReason;
use serde::Serialize;

use crate::backends::{Backend, NamedServices};

/// The counters one worker shares with control.
pub type SharedCounters = Arc<CachePadded<WorkerCounters>>;

/// Packets and bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TrafficCount {
    pub packets: u64,
    pub bytes: u64,
}

impl TrafficCount {
    fn read(t: &Traffic) -> Self {
        Self {
            packets: t.packets.get(),
            bytes: t.bytes.get(),
        }
    }

    fn add(&mut self, other: Self) {
        self.packets = self.packets.wrapping_add(other.packets);
        self.bytes = self.bytes.wrapping_add(other.bytes);
    }
}

/// Packets and bytes by verdict.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct VerdictCounts {
    pub to_wire: TrafficCount,
    pub to_host: TrafficCount,
    pub dropped: TrafficCount,
    pub held: TrafficCount,
}

impl VerdictCounts {
    /// The verdicts with their metric label values.
    pub fn labelled(&self) -> [(&'static str, TrafficCount); 4] {
        [
            ("to_wire", self.to_wire),
            ("to_host", self.to_host),
            ("dropped", self.dropped),
            ("held", self.held),
        ]
    }
}

/// What the connection table did, and how full it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ConntrackCounts {
    pub hits: u64,
    pub misses: u64,
    pub inserts: u64,
    pub evictions: u64,
    /// New flows not recorded: their bucket held only established flows.
    pub full: u64,
    pub rate_limited: u64,
    /// Live entries as of the last full sweep.
    pub entries: u64,
}

/// One worker's counters (or the sum of all).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterSnapshot {
    pub verdicts: VerdictCounts,
    /// Host frames passed to the wire.
    pub host_to_wire: u64,
    /// ICMP "too big" errors sent for VIP packets.
    pub icmp_too_big: u64,
    /// Indexed by `DropReason as usize`.
    pub drops: [u64; DropReason::COUNT],
    pub conntrack: ConntrackCounts,
    /// Packets sent per backend slot, for slots below the count asked for.
    pub backend_packets: Vec<u64>,
    /// Their bytes (as received), per slot.
    pub backend_bytes: Vec<u64>,
    /// New flows sent to each slot.
    pub backend_new_flows: Vec<u64>,
    pub batches: u64,
    /// The forwarding-table generation the worker's last batch used (for the
    /// sum: the oldest any worker used).
    pub table_generation: u64,
}

impl CounterSnapshot {
    fn zero(slots: usize) -> Self {
        Self {
            verdicts: VerdictCounts::default(),
            host_to_wire: 0,
            icmp_too_big: 0,
            drops: [0; DropReason::COUNT],
            conntrack: ConntrackCounts::default(),
            backend_packets: vec![0; slots],
            backend_bytes: vec![0; slots],
            backend_new_flows: vec![0; slots],
            batches: 0,
            table_generation: u64::MAX,
        }
    }

    /// Reads one worker's counters, backend slots `0..slots`.
    pub fn read(c: &WorkerCounters, slots: usize) -> Self {
        Self {
            verdicts: VerdictCounts {
                to_wire: TrafficCount::read(&c.to_wire),
                to_host: TrafficCount::read(&c.to_host),
                dropped: TrafficCount::read(&c.dropped),
                held: TrafficCount::read(&c.held),
            },
            host_to_wire: c.host_to_wire.get(),
            icmp_too_big: c.icmp_too_big.get(),
            drops: core::array::from_fn(|i| c.drops[i].get()),
            conntrack: ConntrackCounts {
                hits: c.conntrack_hits.get(),
                misses: c.conntrack_misses.get(),
                inserts: c.conntrack_inserts.get(),
                evictions: c.conntrack_evictions.get(),
                full: c.conntrack_full.get(),
                rate_limited: c.conntrack_rate_limited.get(),
                entries: c.conntrack_entries.get(),
            },
            backend_packets: read_slots(&c.backend_packets[..], slots),
            backend_bytes: read_slots(&c.backend_bytes[..], slots),
            backend_new_flows: read_slots(&c.backend_new_flows[..], slots),
            batches: c.batches.get(),
            table_generation: c.table_generation.get(),
        }
    }

    fn add(&mut self, o: &Self) {
        self.verdicts.to_wire.add(o.verdicts.to_wire);
        self.verdicts.to_host.add(o.verdicts.to_host);
        self.verdicts.dropped.add(o.verdicts.dropped);
        self.verdicts.held.add(o.verdicts.held);
        self.host_to_wire = self.host_to_wire.wrapping_add(o.host_to_wire);
        self.icmp_too_big = self.icmp_too_big.wrapping_add(o.icmp_too_big);
        for (sum, n) in self.drops.iter_mut().zip(o.drops) {
            *sum = sum.wrapping_add(n);
        }
        let (c, oc) = (&mut self.conntrack, o.conntrack);
        c.hits = c.hits.wrapping_add(oc.hits);
        c.misses = c.misses.wrapping_add(oc.misses);
        c.inserts = c.inserts.wrapping_add(oc.inserts);
        c.evictions = c.evictions.wrapping_add(oc.evictions);
        c.full = c.full.wrapping_add(oc.full);
        c.rate_limited = c.rate_limited.wrapping_add(oc.rate_limited);
        c.entries = c.entries.wrapping_add(oc.entries);
        add_slots(&mut self.backend_packets, &o.backend_packets);
        add_slots(&mut self.backend_bytes, &o.backend_bytes);
        add_slots(&mut self.backend_new_flows, &o.backend_new_flows);
        self.batches = self.batches.wrapping_add(o.batches);
        self.table_generation = self.table_generation.min(o.table_generation);
    }

    /// Drop reasons with a nonzero count.
    pub fn nonzero_drops(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL
            .iter()
            .map(|&r| (r, self.drops[r as usize]))
            .filter(|&(_, n)| n > 0)
    }

    /// Packets sent to `backend` (by its slot).
    pub fn packets_to(&self, backend: &Backend) -> u64 {
        of_slot(&self.backend_packets, backend)
    }

    /// Bytes sent to `backend`.
    pub fn bytes_to(&self, backend: &Backend) -> u64 {
        of_slot(&self.backend_bytes, backend)
    }

    /// New flows sent to `backend`.
    pub fn new_flows_to(&self, backend: &Backend) -> u64 {
        of_slot(&self.backend_new_flows, backend)
    }
}

/// The first `slots` of a per-slot counter array.
fn read_slots(counters: &[dataplane::counters::Counter], slots: usize) -> Vec<u64> {
    counters
        .iter()
        .take(slots)
        .map(dataplane::counters::Counter::get)
        .collect()
}

fn add_slots(sums: &mut [u64], counts: &[u64]) {
    for (sum, n) in sums.iter_mut().zip(counts) {
        *sum = sum.wrapping_add(*n);
    }
}

fn of_slot(by_slot: &[u64], backend: &Backend) -> u64 {
    by_slot.get(usize::from(backend.slot)).copied().unwrap_or(0)
}

/// Every worker's counters and their sum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub workers: Vec<CounterSnapshot>,
    pub total: CounterSnapshot,
    /// Named services' drops summed over the workers, by service counter
    /// (filled by [`Snapshot::with_services`]).
    pub service_drops: std::collections::BTreeMap<ServiceCounter, Vec<(DropReason, u64)>>,
    /// Named services' traffic summed over the workers, by service counter
    /// (filled by [`Snapshot::with_services`]).
    pub service_traffic: std::collections::BTreeMap<ServiceCounter, ServiceTraffic>,
}

/// What a named service's backends were sent, those that left it included.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ServiceTraffic {
    pub packets: u64,
    pub bytes: u64,
    pub new_flows: u64,
}

impl ServiceTraffic {
    /// Sums `slots` over every worker.
    fn read(counters: &[SharedCounters], slots: &[u16]) -> Self {
        let mut sum = Self::default();
        for worker in counters {
            for &slot in slots {
                let at = usize::from(slot);
                sum.packets = sum.packets.wrapping_add(worker.backend_packets[at].get());
                sum.bytes = sum.bytes.wrapping_add(worker.backend_bytes[at].get());
                sum.new_flows = sum
                    .new_flows
                    .wrapping_add(worker.backend_new_flows[at].get());
            }
        }
        sum
    }
}

impl Snapshot {
    /// Reads every worker, backend slots `0..slots`. With no workers the
    /// total is all zeros with table generation 0.
    pub fn read(counters: &[SharedCounters], slots: usize) -> Self {
        let workers: Vec<_> = counters
            .iter()
            .map(|c| CounterSnapshot::read(c, slots))
            .collect();
        let mut total = CounterSnapshot::zero(slots);
        for w in &workers {
            total.add(w);
        }
        if workers.is_empty() {
            total.table_generation = 0;
        }
        Self {
            workers,
            total,
            service_drops: std::collections::BTreeMap::new(),
            service_traffic: std::collections::BTreeMap::new(),
        }
    }

    /// Adds the drops and traffic of every service of `services`, whose
    /// backends are among `backends`.
    #[must_use]
    pub fn with_services(
        mut self,
        counters: &[SharedCounters],
        services: &NamedServices,
        backends: &[Backend],
    ) -> Self {
        // One map for all services: a scrape stays linear in the backends.
        let slot_of: std::collections::HashMap<IpAddr, u16> =
            backends.iter().map(|b| (b.addr, b.slot)).collect();
        for s in &services.0 {
            let counter = s.template.counter;
            self.service_drops
                .insert(counter, service_drops(counters, counter));
            let slots = s.counted_slots(&slot_of);
            self.service_traffic
                .insert(counter, ServiceTraffic::read(counters, &slots));
        }
        self
    }

    /// A service's traffic (zeros for a service not read).
    pub fn traffic_of(&self, counter: ServiceCounter) -> ServiceTraffic {
        self.service_traffic
            .get(&counter)
            .copied()
            .unwrap_or_default()
    }

    /// A service's drops by reason, every reason counted per service
    /// (zeros included, so that each series exists from the start).
    pub fn drops_of(&self, counter: ServiceCounter) -> Vec<(DropReason, u64)> {
        self.service_drops
            .get(&counter)
            .cloned()
            .unwrap_or_else(|| SERVICE_DROP_REASONS.iter().map(|&r| (r, 0)).collect())
    }
}

/// A named service's drops by reason, summed over the workers.
pub fn service_drops(
    counters: &[SharedCounters],
    counter: ServiceCounter,
) -> Vec<(DropReason, u64)> {
    let mut sums: Vec<(DropReason, u64)> = SERVICE_DROP_REASONS.iter().map(|&r| (r, 0)).collect();
    for worker in counters {
        for ((_, sum), (_, n)) in sums.iter_mut().zip(worker.service_drops_for(counter)) {
            *sum = sum.wrapping_add(n);
        }
    }
    sums
}

impl Snapshot {
    /// Reads the slots `backends` use.
    pub fn for_backends(counters: &[SharedCounters], backends: &[Backend]) -> Self {
        let slots = backends.iter().map(|b| b.slot as usize + 1).max();
        Self::read(counters, slots.unwrap_or(0))
    }
}

/// `GET /stats`: totals and per worker.
#[derive(Debug, Serialize)]
pub struct StatsReport {
    /// The generation of the table control published last.
    pub table_generation: u64,
    pub total: CountersReport,
    pub workers: Vec<CountersReport>,
}

/// One worker (or the total) as JSON.
#[derive(Debug, Serialize)]
pub struct CountersReport {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker: Option<usize>,
    #[serde(flatten)]
    pub verdicts: VerdictCounts,
    pub host_to_wire: u64,
    pub icmp_too_big: u64,
    /// Nonzero drop counts by reason name.
    pub drops: std::collections::BTreeMap<&'static str, u64>,
    pub conntrack: ConntrackCounts,
    /// Packets sent to each current backend.
    pub backend_packets: std::collections::BTreeMap<IpAddr, u64>,
    pub batches: u64,
    pub table_generation: u64,
}

impl CountersReport {
    fn new(worker: Option<usize>, s: &CounterSnapshot, backends: &[Backend]) -> Self {
        Self {
            worker,
            verdicts: s.verdicts,
            host_to_wire: s.host_to_wire,
            icmp_too_big: s.icmp_too_big,
            drops: s.nonzero_drops().map(|(r, n)| (r.name(), n)).collect(),
            conntrack: s.conntrack,
            backend_packets: backends.iter().map(|b| (b.addr, s.packets_to(b))).collect(),
            batches: s.batches,
            table_generation: s.table_generation,
        }
    }
}

impl StatsReport {
    pub fn new(snapshot: &Snapshot, backends: &[Backend], table_generation: u64) -> Self {
        Self {
            table_generation,
            total: CountersReport::new(None, &snapshot.total, backends),
            workers: snapshot
                .workers
                .iter()
                .enumerate()
                .map(|(i, w)| CountersReport::new(Some(i), w, backends))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataplane::verdict::Verdict;

    #[test]
    fn the_total_sums_the_workers() {
        let a = WorkerCounters::new_shared();
        let b = WorkerCounters::new_shared();
        a.count(Verdict::ToWire, 100);
        b.count(Verdict::ToWire, 50);
        b.count(Verdict::Drop(DropReason::NoBackend), 60);
        a.backend_packets[1].add(3);
        b.backend_packets[1].add(4);
        a.conntrack_entries.set(10);
        b.conntrack_entries.set(5);
        a.table_generation.set(7);
        b.table_generation.set(6);
        let s = Snapshot::read(&[a, b], 2);
        assert_eq!(s.workers.len(), 2);
        assert_eq!(
            s.total.verdicts.to_wire,
            TrafficCount {
                packets: 2,
                bytes: 150
            }
        );
        assert_eq!(s.total.backend_packets, [0, 7]);
        assert_eq!(s.total.conntrack.entries, 15);
        assert_eq!(s.total.table_generation, 6, "the oldest in use");
        assert_eq!(
            s.total.nonzero_drops().collect::<Vec<_>>(),
            [(DropReason::NoBackend, 1)]
        );
    }

    #[test]
    fn no_workers_read_as_zeros() {
        let s = Snapshot::read(&[], 3);
        assert!(s.workers.is_empty());
        assert_eq!(s.total.backend_packets, [0, 0, 0]);
        assert_eq!(s.total.table_generation, 0);
    }
}
