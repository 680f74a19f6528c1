//! `AfPacketIo` on a veth pair between two namespaces (needs root; prints
//! `skipped: <reason>` otherwise). Each test owns the prefix `rrapN-`.

mod af_packet_lab;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use af_packet_lab::{run, VethLab};
use dataplane::io::af_packet::{AfPacketConfig, AfPacketIo};
use dataplane::io::{BatchCounts, PacketIo};
use dataplane::{DropReason, Frame, Verdict};

/// The local experimental `EtherType`: the kernel stacks ignore these frames.
const TEST_ETHERTYPE: u16 = 0x88B5;
const DEADLINE: Duration = Duration::from_secs(10);

/// The `EtherType` after the MAC addresses and any 802.1Q tag.
fn ethertype(frame: &[u8]) -> Option<u16> {
    let at = |i: usize| Some(u16::from_be_bytes([*frame.get(i)?, *frame.get(i + 1)?]));
    match at(12)? {
        0x8100 => at(16),
        other => Some(other),
    }
}

fn is_test_frame(frame: &[u8]) -> bool {
    ethertype(frame) == Some(TEST_ETHERTYPE)
}

/// Test frame `seq`: `len` bytes, optionally 802.1Q-tagged, its sequence
/// number after the `EtherType` and a pattern after that.
fn test_frame(seq: u16, len: usize, vlan: Option<u16>) -> Vec<u8> {
    let mut frame = vec![0x02, 0, 0, 0, 0, 0xbb, 0x02, 0, 0, 0, 0, 0xaa];
    if let Some(tci) = vlan {
        frame.extend_from_slice(&0x8100u16.to_be_bytes());
        frame.extend_from_slice(&tci.to_be_bytes());
    }
    frame.extend_from_slice(&TEST_ETHERTYPE.to_be_bytes());
    frame.extend_from_slice(&seq.to_be_bytes());
    let mut byte = seq as u8;
    while frame.len() < len {
        frame.push(byte);
        byte = byte.wrapping_mul(31).wrapping_add(7);
    }
    frame
}

/// Sends every frame from `io`, retrying while its TX ring is full.
fn send_all(io: &mut AfPacketIo, frames: &[Vec<u8>]) {
    let started = Instant::now();
    for frame in frames {
        while !io.transmit_copy(frame).unwrap() {
            io.flush().unwrap();
            assert!(started.elapsed() < DEADLINE, "TX ring stayed full");
        }
    }
    io.flush().unwrap();
}

/// Runs batches on `io` for `window`, keeping the test frames (dropped) and
/// leaving the rest to the host.
fn collect_for(io: &mut AfPacketIo, window: Duration) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    let started = Instant::now();
    while started.elapsed() < window {
        io.run_batch(64, |frame: &mut Frame<'_>| {
            if is_test_frame(frame.data()) {
                got.push(frame.data().to_vec());
                Verdict::Drop(DropReason::NoBackend)
            } else {
                Verdict::ToHost
            }
        })
        .unwrap();
        io.wait(Duration::from_millis(10)).unwrap();
    }
    got
}

#[test]
fn frames_forwarded_by_run_batch_arrive_byte_for_byte() {
    let Some(lab) = VethLab::start("rrap1-") else {
        return;
    };
    let mut sender = lab.open(&lab.ns_a(), AfPacketConfig::new("a0"));
    let mut echo = lab.open(&lab.ns_b(), AfPacketConfig::new("b0"));
    // Short, full-size and odd lengths; some with a VLAN tag the kernel takes
    // out on receive and the backend puts back.
    let frames: Vec<Vec<u8>> = (0..300u16)
        .map(|seq| {
            let len = [60, 1514, 61, 333, 1000, 64][usize::from(seq) % 6];
            let vlan = (seq % 5 == 0).then_some(0x2000 | seq);
            test_frame(seq, len, vlan)
        })
        .collect();
    send_all(&mut sender, &frames);

    let mut forwarded = BatchCounts::default();
    let mut received = Vec::new();
    let started = Instant::now();
    while received.len() < frames.len() && started.elapsed() < DEADLINE {
        let counts = echo
            .run_batch(64, |frame: &mut Frame<'_>| {
                if is_test_frame(frame.data()) {
                    Verdict::ToWire
                } else {
                    Verdict::ToHost
                }
            })
            .unwrap();
        forwarded.to_wire += counts.to_wire;
        sender
            .run_batch(64, |frame: &mut Frame<'_>| {
                if is_test_frame(frame.data()) {
                    received.push(frame.data().to_vec());
                }
                Verdict::Drop(DropReason::NoBackend)
            })
            .unwrap();
        sender.wait(Duration::from_millis(1)).unwrap();
    }
    assert_eq!(forwarded.to_wire, frames.len());
    let mut sent_sorted = frames.clone();
    sent_sorted.sort();
    received.sort();
    assert_eq!(received.len(), frames.len());
    assert!(received == sent_sorted, "frames changed on the way");
    let stats = echo.stats().unwrap();
    assert_eq!((stats.ring_full_drops, stats.truncated), (0, 0));
}

#[test]
fn frames_dropped_or_left_to_the_host_are_not_sent() {
    let Some(lab) = VethLab::start("rrap2-") else {
        return;
    };
    let mut sender = lab.open(&lab.ns_a(), AfPacketConfig::new("a0"));
    let mut sink = lab.open(&lab.ns_b(), AfPacketConfig::new("b0"));
    let frames: Vec<Vec<u8>> = (0..40u16).map(|seq| test_frame(seq, 100, None)).collect();
    send_all(&mut sender, &frames);
    let mut counts = BatchCounts::default();
    let started = Instant::now();
    while counts.dropped + counts.to_host < frames.len() && started.elapsed() < DEADLINE {
        let batch = sink
            .run_batch(64, |frame: &mut Frame<'_>| match frame.data().get(15) {
                Some(seq) if is_test_frame(frame.data()) && seq % 2 == 0 => {
                    Verdict::Drop(DropReason::NoBackend)
                }
                _ => Verdict::ToHost,
            })
            .unwrap();
        counts.dropped += batch.dropped;
        counts.to_host += batch.to_host;
        counts.to_wire += batch.to_wire;
        sink.wait(Duration::from_millis(10)).unwrap();
    }
    assert_eq!(counts.to_wire, 0);
    assert_eq!(counts.dropped, 20);
    let echoed = collect_for(&mut sender, Duration::from_millis(300));
    assert!(echoed.is_empty(), "{} frames came back", echoed.len());
}

/// A UDP-in-IPv4 frame of flow `port` (the source port), dst port 9999.
fn udp_frame(port: u16) -> Vec<u8> {
    let mut frame = vec![0x02, 0, 0, 0, 0, 0xbb, 0x02, 0, 0, 0, 0, 0xaa, 0x08, 0x00];
    let total_len: u16 = 20 + 8 + 18;
    frame.extend_from_slice(&[0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0]);
    frame[16..18].copy_from_slice(&total_len.to_be_bytes());
    frame.extend_from_slice(&[10, 99, 0, 1, 10, 99, 0, 2]);
    frame.extend_from_slice(&port.to_be_bytes());
    frame.extend_from_slice(&9999u16.to_be_bytes());
    frame.extend_from_slice(&(8u16 + 18).to_be_bytes());
    frame.extend_from_slice(&[0, 0]);
    frame.extend_from_slice(&[0x5a; 18]);
    frame
}

/// The source port of a frame built by `udp_frame`, if it is one.
fn udp_flow(frame: &[u8]) -> Option<u16> {
    let is_ours = frame.len() >= 38
        && frame[12..14] == [0x08, 0x00]
        && frame[23] == 17
        && frame[36..38] == 9999u16.to_be_bytes();
    is_ours.then(|| u16::from_be_bytes([frame[34], frame[35]]))
}

#[test]
fn fanout_spreads_flows_over_the_group_and_keeps_each_flow_whole() {
    let Some(lab) = VethLab::start("rrap3-") else {
        return;
    };
    let mut sender = lab.open(&lab.ns_a(), AfPacketConfig::new("a0"));
    let worker = || AfPacketConfig {
        fanout: Some(42),
        ..AfPacketConfig::new("b0")
    };
    let mut workers = [
        lab.open(&lab.ns_b(), worker()),
        lab.open(&lab.ns_b(), worker()),
    ];
    let flows: Vec<u16> = (40_000..40_064).collect();
    let per_flow = 4;
    let frames: Vec<Vec<u8>> = (0..per_flow)
        .flat_map(|_| flows.iter().map(|&port| udp_frame(port)))
        .collect();
    send_all(&mut sender, &frames);

    // Worker index -> flow -> frames seen.
    let mut seen: [BTreeMap<u16, usize>; 2] = [BTreeMap::new(), BTreeMap::new()];
    let started = Instant::now();
    let total =
        |seen: &[BTreeMap<u16, usize>; 2]| -> usize { seen.iter().flat_map(|m| m.values()).sum() };
    while total(&seen) < frames.len() && started.elapsed() < DEADLINE {
        for (io, flows_seen) in workers.iter_mut().zip(seen.iter_mut()) {
            io.run_batch(64, |frame: &mut Frame<'_>| {
                if let Some(port) = udp_flow(frame.data()) {
                    *flows_seen.entry(port).or_default() += 1;
                }
                Verdict::ToHost
            })
            .unwrap();
            io.wait(Duration::from_millis(1)).unwrap();
        }
    }
    assert_eq!(total(&seen), frames.len());
    let [first, second] = &seen;
    println!(
        "fanout: worker 0 got {} flows, worker 1 got {}",
        first.len(),
        second.len()
    );
    assert!(
        !first.is_empty() && !second.is_empty(),
        "one worker got every flow"
    );
    let first_flows: BTreeSet<_> = first.keys().collect();
    let second_flows: BTreeSet<_> = second.keys().collect();
    assert!(first_flows.is_disjoint(&second_flows), "a flow was split");
    assert!(first
        .values()
        .chain(second.values())
        .all(|&n| n == per_flow));
}

#[test]
fn wait_returns_when_a_frame_arrives_not_at_its_timeout() {
    let Some(lab) = VethLab::start("rrap4-") else {
        return;
    };
    let mut sender = lab.open(&lab.ns_a(), AfPacketConfig::new("a0"));
    let mut receiver = lab.open(&lab.ns_b(), AfPacketConfig::new("b0"));

    let idle = Instant::now();
    receiver.wait(Duration::from_millis(30)).unwrap();
    let idle = idle.elapsed();
    assert!(
        idle >= Duration::from_millis(29) && idle < Duration::from_secs(2),
        "{idle:?}"
    );

    let rounds = 20;
    let (sent_at_tx, sent_at_rx) = std::sync::mpsc::channel::<Instant>();
    let waiter = std::thread::spawn(move || {
        let mut delays = Vec::new();
        for _ in 0..rounds {
            receiver.wait(Duration::from_secs(5)).unwrap();
            let woke = Instant::now();
            let sent = sent_at_rx.recv().unwrap();
            delays.push(woke.saturating_duration_since(sent));
            // Consume the frame so that the next wait blocks again.
            receiver
                .run_batch(64, |_: &mut Frame<'_>| Verdict::ToHost)
                .unwrap();
        }
        delays
    });
    for seq in 0..rounds {
        std::thread::sleep(Duration::from_millis(20));
        let sent = Instant::now();
        sender.transmit_copy(&test_frame(seq, 64, None)).unwrap();
        sender.flush().unwrap();
        sent_at_tx.send(sent).unwrap();
    }
    let mut delays = waiter.join().unwrap();
    delays.sort();
    let median = delays[delays.len() / 2];
    println!(
        "wake-up after a frame: median {median:?}, max {:?}",
        delays[delays.len() - 1]
    );
    // The goal is under a millisecond (printed above); the bound is what the
    // claim needs, waking on the frame: it fails a wait that sleeps to its
    // 5 s timeout or polls on a tick of 50 ms or more, and leaves a loaded
    // two-core machine its scheduling delays.
    assert!(
        median < Duration::from_millis(25),
        "median wake-up {median:?}"
    );
}

#[test]
fn frames_longer_than_a_slot_are_left_to_the_host_and_counted() {
    let Some(lab) = VethLab::start("rrap5-") else {
        return;
    };
    run(&format!("ip -n {} link set a0 mtu 4000", lab.ns_a()));
    run(&format!("ip -n {} link set b0 mtu 4000", lab.ns_b()));
    let big_slots = AfPacketConfig {
        frame_size: 8192,
        ..AfPacketConfig::new("a0")
    };
    let mut sender = lab.open(&lab.ns_a(), big_slots);
    let mut receiver = lab.open(&lab.ns_b(), AfPacketConfig::new("b0"));
    send_all(
        &mut sender,
        &[test_frame(1, 3000, None), test_frame(2, 100, None)],
    );
    let mut counts = BatchCounts::default();
    let mut shown = Vec::new();
    let started = Instant::now();
    while receiver.stats().unwrap().truncated == 0 || shown.is_empty() {
        assert!(started.elapsed() < DEADLINE, "frames did not arrive");
        let batch = receiver
            .run_batch(64, |frame: &mut Frame<'_>| {
                if is_test_frame(frame.data()) {
                    shown.push(frame.len());
                }
                Verdict::ToHost
            })
            .unwrap();
        counts.to_host += batch.to_host;
        receiver.wait(Duration::from_millis(10)).unwrap();
    }
    assert_eq!(shown, [100]);
    assert_eq!(receiver.stats().unwrap().truncated, 1);
    assert!(counts.to_host >= 2);
}

#[test]
fn a_full_tx_ring_leaves_received_frames_for_the_next_batch() {
    let Some(lab) = VethLab::start("rrap7-") else {
        return;
    };
    let small = |interface: &str| AfPacketConfig {
        ring_frames: 2,
        ..AfPacketConfig::new(interface)
    };
    let mut sender = lab.open(&lab.ns_a(), AfPacketConfig::new("a0"));
    let mut echo = lab.open(&lab.ns_b(), small("b0"));
    send_all(&mut sender, &[test_frame(1, 80, None)]);
    // Wait until the frame is in the echo's RX ring.
    echo.wait(DEADLINE).unwrap();
    // Fill the echo's TX ring without kicking it: its slots stay taken.
    assert!(echo.transmit_copy(&test_frame(100, 60, None)).unwrap());
    assert!(echo.transmit_copy(&test_frame(101, 60, None)).unwrap());
    assert!(
        !echo.transmit_copy(&test_frame(102, 60, None)).unwrap(),
        "ring of 2 full"
    );
    let to_wire = |frame: &mut Frame<'_>| {
        if is_test_frame(frame.data()) {
            Verdict::ToWire
        } else {
            Verdict::ToHost
        }
    };
    // No TX slot: nothing is taken from RX (the batch still kicks the TX ring).
    let first = echo.run_batch(64, to_wire).unwrap();
    assert_eq!(first.from_wire, 0);
    // The kick freed the slots: the frame waiting in RX goes now.
    let started = Instant::now();
    let mut forwarded = 0;
    while forwarded == 0 {
        assert!(started.elapsed() < DEADLINE, "the frame never left RX");
        forwarded += echo.run_batch(64, to_wire).unwrap().to_wire;
    }
    assert_eq!(forwarded, 1);
    let back = collect_for(&mut sender, Duration::from_millis(300));
    let mut seqs: Vec<u8> = back.iter().map(|f| f[15]).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, [1, 100, 101]);
}
