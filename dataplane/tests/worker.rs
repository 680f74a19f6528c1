//! The worker loop over the memory backend: batches through the pipeline,
//! tables picked up once per batch, counters readable while it runs, held
//! fragments released, a clean stop.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use dataplane::forwarding::{ForwardingTable, TableHandle};
use dataplane::io::memory::{MemoryIo, MemoryIoConfig};
use dataplane::worker::Worker;
use synth::{fragment_ipv4, ClientFlow, Transport};

fn worker(frames: &[Vec<u8>]) -> (Worker<MemoryIo>, TableHandle) {
    let mut io = MemoryIo::new(MemoryIoConfig::default()).unwrap();
    for f in frames {
        assert!(io.push_from_wire(f));
    }
    let handle = TableHandle::new(table());
    let stop = Arc::new(AtomicBool::new(false));
    (Worker::new(io, state(), handle.clone(), stop), handle)
}

#[test]
fn a_batch_forwards_gre_and_passes_the_host_s_frames_through() {
    let frames: Vec<_> = (0..40)
        .map(|p| tunnel().encapsulate(&tcp4([198, 51, 100, 1], p).packet(b"")))
        .collect();
    let (mut w, _) = worker(&frames);
    assert!(w.io.push_from_host(b"kernel frame going out"));
    assert_eq!(
        w.run_once(0).unwrap(),
        32 + 1,
        "one batch of 32 and the host frame"
    );
    assert_eq!(w.run_once(1).unwrap(), 8);
    let counters = &w.state.counters;
    assert_eq!(counters.to_wire.packets.get(), 40);
    assert_eq!(counters.host_to_wire.get(), 1);
    assert_eq!(counters.batches.get(), 2);
    let mut out = 0;
    w.io.drain_wire_tx(|f| {
        if f != b"kernel frame going out" {
            assert!(backend_of(f).is_some());
        }
        out += 1;
    });
    assert_eq!(out, 41);
}

#[test]
fn a_published_table_is_used_from_the_next_batch() {
    let frame = tunnel().encapsulate(&tcp4([198, 51, 100, 2], 1).packet(b""));
    let (mut w, handle) = worker(std::slice::from_ref(&frame));
    w.run_once(0).unwrap();
    assert_eq!(w.state.counters.table_generation.get(), 1);
    let mut spec = spec_with(backend_specs());
    spec.generation = 2;
    for b in &mut spec.backends {
        b.mac = None; // every backend unresolved: nothing can be forwarded
    }
    handle.publish(ForwardingTable::build(&spec).unwrap());
    assert!(w.io.push_from_wire(&frame));
    w.run_once(1).unwrap();
    assert_eq!(w.state.counters.table_generation.get(), 2);
    assert_eq!(
        w.state.counters.drops_for(dataplane::DropReason::NoBackend),
        1
    );
}

#[test]
fn fragments_held_in_one_batch_leave_after_their_first_fragment() {
    let flow = ClientFlow {
        transport: Transport::Udp,
        ..tcp4([198, 51, 100, 3], 9)
    };
    let mut packet = flow.packet(&[1u8; 2000]);
    packet[6] &= !0x40;
    let mut frames: Vec<_> = fragment_ipv4(&packet, 800)
        .iter()
        .map(|f| tunnel().encapsulate(f))
        .collect();
    frames.reverse(); // last fragment first
    let (mut w, _) = worker(&frames);
    w.run_once(0).unwrap();
    assert_eq!(w.state.counters.held.packets.get(), 2);
    assert_eq!(
        w.state.counters.to_wire.packets.get(),
        3,
        "first fragment plus the two released"
    );
    let mut backends = Vec::new();
    w.io.drain_wire_tx(|f| backends.push(backend_of(f).unwrap()));
    assert_eq!(backends.len(), 3);
    assert!(backends.windows(2).all(|p| p[0] == p[1]), "{backends:?}");
}

#[test]
fn a_running_pinned_worker_is_readable_from_outside_and_stops_on_request() {
    let frames: Vec<_> = (0..500)
        .map(|p| tunnel().encapsulate(&tcp4([198, 51, 100, 4], p).packet(b"")))
        .collect();
    let (w, _) = worker(&frames);
    let counters = w.state.counters.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let w = Worker::new(w.io, w.state, TableHandle::new(table()), stop.clone()).pinned_to(0);
    let running = std::thread::spawn(move || w.run());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while counters.to_wire.packets.get() < 500 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    stop.store(true, Ordering::Relaxed);
    let w = running.join().unwrap().unwrap();
    assert_eq!(counters.to_wire.packets.get(), 500);
    assert_eq!(w.io.wire_tx_len(), 500);
}

#[test]
fn the_occupancy_gauge_counts_tracked_flows_once_a_sweep_completes() {
    let frames: Vec<_> = (0..20)
        .map(|p| tunnel().encapsulate(&tcp4([198, 51, 100, 4], p).packet(b"")))
        .collect();
    let (mut w, _) = worker(&frames);
    w.run_once(0).unwrap();
    let buckets = w.state.conntrack.capacity() / 4;
    // Enough idle batches to finish at least one full sweep after the inserts.
    for _ in 0..=buckets.div_ceil(32) {
        w.run_once(1).unwrap();
    }
    assert_eq!(w.state.counters.conntrack_entries.get(), 20);
    assert_eq!(w.state.conntrack.occupancy(0), 20);
}
