//! Human-readable counters: what a worker forwarded, passed to the host and
//! dropped (by reason), and the split over backends.

use std::fmt::Write as _;

use dataplane::counters::WorkerCounters;
use dataplane::forwarding::ForwardingTable;
use dataplane::DropReason;

/// The counters as a small text report.
pub fn render(counters: &WorkerCounters, table: &ForwardingTable) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{:<12} {:>10} {:>12}", "verdict", "packets", "bytes");
    for (name, traffic) in [
        ("to_wire", &counters.to_wire),
        ("to_host", &counters.to_host),
        ("dropped", &counters.dropped),
        ("held", &counters.held),
    ] {
        let _ = writeln!(
            out,
            "{name:<12} {:>10} {:>12}",
            traffic.packets.get(),
            traffic.bytes.get()
        );
    }
    let drops: Vec<_> = DropReason::ALL
        .iter()
        .map(|r| (r, counters.drops_for(*r)))
        .filter(|(_, n)| *n > 0)
        .collect();
    if !drops.is_empty() {
        let _ = writeln!(out, "\ndrops by reason:");
        for (reason, n) in drops {
            let _ = writeln!(out, "  {:<28} {n:>10}", reason.name());
        }
    }
    let forwarded: u64 = counters
        .backend_packets
        .iter()
        .map(dataplane::counters::Counter::get)
        .sum();
    let _ = writeln!(out, "\npackets per backend:");
    for (slot, backend) in table.backends().iter().enumerate() {
        let n = counters.backend_packets[slot].get();
        let share = if forwarded == 0 {
            0.0
        } else {
            100.0 * n as f64 / forwarded as f64
        };
        let addr = backend.ip().to_string();
        let _ = writeln!(out, "  {addr:<15} {n:>10}  {share:5.1}%");
    }
    let _ = writeln!(
        out,
        "\nconnection table: {} hits, {} misses, {} new entries, {} evictions, {} not recorded (bucket of established flows), {} not recorded (new-flow rate limit)",
        counters.conntrack_hits.get(),
        counters.conntrack_misses.get(),
        counters.conntrack_inserts.get(),
        counters.conntrack_evictions.get(),
        counters.conntrack_full.get(),
        counters.conntrack_rate_limited.get(),
    );
    let too_big = counters.icmp_too_big.get();
    if too_big > 0 {
        let _ = writeln!(
            out,
            "\nICMP errors sent for VIP packets too big to wrap:\n  {:<28} {too_big:>10}",
            "icmp_too_big"
        );
    }
    out
}
