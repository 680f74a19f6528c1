//! The exposition: names, labels and values, per worker and total.

use dataplane::counters::WorkerCounters;
use dataplane::verdict::Verdict;

use super::*;
use crate::backends::BackendSet;

fn backends() -> Vec<Backend> {
    let mut set = BackendSet::default();
    set.add([10, 1, 0, 1].into(), 3).unwrap();
    set.add([10, 1, 0, 2].into(), 1).unwrap();
    set.set_drain([10, 1, 0, 2].into(), true).unwrap();
    set.add("2001:db8::3".parse().unwrap(), 2).unwrap();
    set.iter().cloned().collect()
}

fn exposition() -> String {
    let a = WorkerCounters::new_shared();
    let b = WorkerCounters::new_shared();
    a.count(Verdict::ToWire, 100);
    b.count(Verdict::ToWire, 40);
    b.count(Verdict::Drop(DropReason::TtlExpired), 60);
    a.backend_packets[0].add(1);
    b.backend_packets[1].add(1);
    a.conntrack_entries.set(12);
    a.conntrack_evictions.add(2);
    b.conntrack_full.add(3);
    a.table_generation.set(5);
    let backends = backends();
    let snapshot = Snapshot::for_backends(&[a, b], &backends);
    render(&snapshot, &backends, 5).unwrap()
}

fn has(text: &str, line: &str) {
    assert!(
        text.lines().any(|l| l == line),
        "no line {line:?} in:\n{text}"
    );
}

#[test]
fn totals_and_workers_are_separate_metrics() {
    let t = exposition();
    has(&t, "rr_packets_total{verdict=\"to_wire\"} 2");
    has(&t, "rr_bytes_total{verdict=\"to_wire\"} 140");
    has(
        &t,
        "rr_worker_packets_total{worker=\"0\",verdict=\"to_wire\"} 1",
    );
    has(
        &t,
        "rr_worker_bytes_total{worker=\"1\",verdict=\"to_wire\"} 40",
    );
    has(
        &t,
        "rr_worker_packets_total{worker=\"1\",verdict=\"dropped\"} 1",
    );
}

#[test]
fn drops_are_counted_by_reason() {
    let t = exposition();
    has(&t, "rr_drops_total{reason=\"ttl_expired\"} 1");
    has(&t, "rr_drops_total{reason=\"no_backend\"} 0");
    has(
        &t,
        "rr_worker_drops_total{worker=\"1\",reason=\"ttl_expired\"} 1",
    );
    has(&t, "# TYPE rr_drops counter");
}

#[test]
fn the_text_format_names_counters_with_total_and_has_no_eof() {
    let t = to_text_format(&exposition());
    has(&t, "# TYPE rr_drops_total counter");
    has(&t, "# HELP rr_drops_total Dropped frames by reason.");
    has(&t, "# TYPE rr_conntrack_entries gauge");
    has(&t, "rr_drops_total{reason=\"ttl_expired\"} 1");
    assert!(!t.contains("# EOF"));
    assert!(!t.contains("# TYPE rr_drops counter"));
    assert_eq!(
        t.lines().count(),
        exposition().lines().count() - 1,
        "only the EOF line goes"
    );
}

#[test]
fn openmetrics_is_served_to_those_who_ask() {
    let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;\
                      version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    assert_eq!(Format::from_accept(Some(prometheus)), Format::OpenMetrics);
    assert_eq!(Format::from_accept(Some("*/*")), Format::Text);
    assert_eq!(Format::from_accept(None), Format::Text);
}

#[test]
fn backends_are_labelled_by_address() {
    let t = exposition();
    has(&t, "rr_backend_packets_total{backend=\"10.1.0.1\"} 1");
    has(
        &t,
        "rr_worker_backend_packets_total{worker=\"1\",backend=\"10.1.0.2\"} 1",
    );
    has(&t, "rr_backend_weight{backend=\"10.1.0.1\"} 3");
    has(&t, "rr_backend_up{backend=\"10.1.0.2\"} 1");
    has(&t, "rr_backend_draining{backend=\"10.1.0.2\"} 1");
    // Unresolved (no MAC yet) and draining: neither takes new flows.
    has(&t, "rr_backend_in_rotation{backend=\"10.1.0.1\"} 0");
    // An IPv6 backend's label is its address as written, no brackets.
    has(&t, "rr_backend_weight{backend=\"2001:db8::3\"} 2");
    has(&t, "rr_backend_packets_total{backend=\"2001:db8::3\"} 0");
}

#[test]
fn connection_tables_and_generations_are_exposed() {
    let t = exposition();
    has(&t, "rr_conntrack_entries 12");
    has(&t, "rr_worker_conntrack_entries{worker=\"0\"} 12");
    has(&t, "rr_conntrack_evictions_total 2");
    has(&t, "rr_conntrack_full_total 3");
    has(&t, "rr_worker_conntrack_full_total{worker=\"1\"} 3");
    has(&t, "rr_table_generation 5");
    has(&t, "rr_worker_table_generation{worker=\"0\"} 5");
    has(&t, "rr_worker_table_generation{worker=\"1\"} 0");
    assert!(t.ends_with("# EOF\n"));
}
