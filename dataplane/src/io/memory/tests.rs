use proptest::prelude::*;

use super::*;
use crate::verdict::DropReason;

fn small(ring_size: usize) -> MemoryIo {
    MemoryIo::new(MemoryIoConfig {
        ring_size,
        buf_size: 256,
        headroom: 32,
    })
    .expect("valid config")
}

/// Every buffer index is in exactly one place: the free list or one ring.
fn assert_buffers_conserved(io: &MemoryIo) {
    let mut seen = vec![0u32; io.pool_buffers()];
    for &buf in &io.free {
        seen[buf as usize] += 1;
    }
    for ring in [&io.wire_rx, &io.wire_tx, &io.host_rx, &io.host_tx] {
        let mut pos = ring.head;
        while pos != ring.tail {
            seen[ring.slot(pos).buf as usize] += 1;
            pos = pos.wrapping_add(1);
        }
    }
    assert!(
        seen.iter().all(|&n| n == 1),
        "buffer owners per index: {seen:?}"
    );
    assert_eq!(
        io.free_buffers()
            + io.wire_rx_pending()
            + io.host_rx_pending()
            + io.wire_tx_len()
            + io.host_tx_len(),
        io.pool_buffers()
    );
}

/// Verdict by the frame's first byte: 0 to the wire, 1 to the host, else drop.
fn by_first_byte(frame: &mut Frame<'_>) -> Verdict {
    match frame.data().first() {
        Some(0) => Verdict::ToWire,
        Some(1) => Verdict::ToHost,
        _ => Verdict::Drop(DropReason::UnsupportedGreProtocol),
    }
}

#[test]
fn config_errors_name_the_bad_value() {
    let bad_ring = MemoryIo::new(MemoryIoConfig {
        ring_size: 3,
        ..MemoryIoConfig::default()
    })
    .unwrap_err();
    assert!(bad_ring.to_string().contains("ring_size 3"));
    let bad_headroom = MemoryIo::new(MemoryIoConfig {
        ring_size: 4,
        buf_size: 64,
        headroom: 64,
    })
    .unwrap_err();
    assert!(bad_headroom.to_string().contains("headroom 64"));
    assert!(MemoryIo::new(MemoryIoConfig {
        ring_size: 0,
        ..MemoryIoConfig::default()
    })
    .is_err());
}

#[test]
fn verdicts_land_in_their_rings_byte_for_byte() {
    let mut io = small(8);
    let to_wire = [0u8, 10, 11, 12];
    let to_host = [1u8, 20, 21];
    let dropped = [2u8, 30];
    assert!(io.push_from_wire(&to_wire));
    assert!(io.push_from_wire(&to_host));
    assert!(io.push_from_wire(&dropped));

    let counts = io.run_batch(16, by_first_byte).unwrap();

    assert_eq!(
        counts,
        BatchCounts {
            from_wire: 3,
            to_wire: 1,
            to_host: 1,
            dropped: 1,
            held: 0,
            host_to_wire: 0,
        }
    );
    assert_eq!(io.pop_wire_tx().as_deref(), Some(&to_wire[..]));
    assert_eq!(io.pop_host_tx().as_deref(), Some(&to_host[..]));
    assert_eq!(io.pop_wire_tx(), None);
    assert_eq!(io.pop_host_tx(), None);
    assert_eq!(io.free_buffers(), io.pool_buffers());
}

#[test]
fn frames_keep_their_order_within_a_ring() {
    let mut io = small(8);
    for i in 0..5u8 {
        assert!(io.push_from_wire(&[0, i]));
    }
    io.run_batch(8, by_first_byte).unwrap();
    let mut seen = Vec::new();
    io.drain_wire_tx(|bytes| seen.push(bytes[1]));
    assert_eq!(seen, [0, 1, 2, 3, 4]);
    assert_buffers_conserved(&io);
}

#[test]
fn frames_are_moved_not_copied() {
    let mut io = small(4);
    assert!(io.push_from_wire(&[0, 1, 2]));
    let rx_buf = io.wire_rx.slot(io.wire_rx.head).buf;
    io.run_batch(4, by_first_byte).unwrap();
    assert_eq!(io.wire_tx.slot(io.wire_tx.head).buf, rx_buf);
}

#[test]
fn frames_start_after_the_configured_headroom() {
    let mut io = small(4);
    assert!(io.push_from_wire(&[0, 1]));
    let mut seen = None;
    io.run_batch(4, |frame: &mut Frame<'_>| {
        seen = Some((frame.headroom(), frame.tailroom()));
        Verdict::ToWire
    })
    .unwrap();
    assert_eq!(seen, Some((32, 256 - 32 - 2)));
}

#[test]
fn a_batch_never_exceeds_its_budget() {
    let mut io = small(16);
    for _ in 0..10 {
        assert!(io.push_from_wire(&[0]));
    }
    let counts = io.run_batch(4, by_first_byte).unwrap();
    assert_eq!(counts.from_wire, 4);
    assert_eq!(io.wire_rx_pending(), 6);
    assert_eq!(
        io.run_batch(0, by_first_byte).unwrap(),
        BatchCounts::default()
    );
}

#[test]
fn a_full_wire_tx_ring_leaves_frames_in_rx() {
    let mut io = small(4);
    for _ in 0..4 {
        assert!(io.push_from_wire(&[0, 7]));
    }
    io.run_batch(4, by_first_byte).unwrap();
    assert_eq!(io.wire_tx_len(), 4);
    for _ in 0..4 {
        assert!(io.push_from_wire(&[0, 8]));
    }

    let mut decided = 0;
    let counts = io
        .run_batch(4, |frame: &mut Frame<'_>| {
            decided += 1;
            by_first_byte(frame)
        })
        .unwrap();

    assert_eq!(counts.from_wire, 0);
    assert_eq!(decided, 0, "no frame is looked at when it could not move");
    assert_eq!(io.wire_rx_pending(), 4);
    assert_buffers_conserved(&io);

    // Once the NIC has sent two, two more go through; nothing was lost.
    assert!(io.pop_wire_tx().is_some());
    assert!(io.pop_wire_tx().is_some());
    assert_eq!(io.run_batch(4, by_first_byte).unwrap().from_wire, 2);
    assert_eq!(io.wire_rx_pending(), 2);
    io.clear_tx();
    assert_eq!(io.run_batch(4, by_first_byte).unwrap().from_wire, 2);
    let mut eights = 0;
    io.drain_wire_tx(|bytes| eights += usize::from(bytes == [0, 8]));
    assert_eq!(eights, 2);
    assert_buffers_conserved(&io);
}

#[test]
fn a_full_host_tx_ring_also_holds_the_batch_back() {
    let mut io = small(2);
    for _ in 0..2 {
        assert!(io.push_from_wire(&[1]));
    }
    io.run_batch(2, by_first_byte).unwrap();
    assert!(io.push_from_wire(&[0]));
    // The verdict is not known before `decide`, so the batch needs room on
    // both sides, as in bridge.c.
    assert_eq!(io.run_batch(2, by_first_byte).unwrap().from_wire, 0);
    assert_eq!(io.wire_rx_pending(), 1);
}

#[test]
fn a_full_rx_ring_refuses_more_frames() {
    let mut io = small(2);
    assert!(io.push_from_wire(&[0]));
    assert!(io.push_from_wire(&[0]));
    assert!(!io.push_from_wire(&[0]));
    assert_eq!(io.wire_rx_pending(), 2);
    assert_buffers_conserved(&io);
}

#[test]
fn frames_longer_than_a_buffer_after_headroom_are_refused() {
    let mut io = small(2);
    assert!(io.push_from_wire(&[0; 256 - 32]));
    assert!(!io.push_from_wire(&[0; 256 - 32 + 1]));
    assert!(!io.push_from_host(&[0; 300]));
    assert_buffers_conserved(&io);
}

#[test]
fn encapsulation_is_reflected_in_the_transmitted_frame() {
    let mut io = small(4);
    assert!(io.push_from_wire(&[0xAA, 0xBB]));
    io.run_batch(4, |frame: &mut Frame<'_>| {
        assert!(frame.push_front(3));
        frame.data_mut()[..3].copy_from_slice(&[1, 2, 3]);
        Verdict::ToWire
    })
    .unwrap();
    assert_eq!(
        io.pop_wire_tx().as_deref(),
        Some(&[1, 2, 3, 0xAA, 0xBB][..])
    );
}

#[test]
fn trimming_a_frame_is_reflected_in_the_transmitted_frame() {
    let mut io = small(4);
    assert!(io.push_from_wire(&[9, 9, 1, 2, 3, 4]));
    io.run_batch(4, |frame: &mut Frame<'_>| {
        frame.pull_front(2);
        assert!(frame.set_len(3));
        Verdict::ToHost
    })
    .unwrap();
    assert_eq!(io.pop_host_tx().as_deref(), Some(&[1, 2, 3][..]));
}

#[test]
fn host_frames_pass_to_the_wire_untouched() {
    let mut io = small(4);
    assert!(io.push_from_host(&[5, 6, 7]));
    let mut decided = 0;
    let counts = io
        .run_batch(4, |_: &mut Frame<'_>| {
            decided += 1;
            Verdict::ToWire
        })
        .unwrap();
    assert_eq!(decided, 0, "host frames do not go through the pipeline");
    assert_eq!(counts.host_to_wire, 1);
    assert_eq!(counts.from_wire, 0);
    assert_eq!(io.pop_wire_tx().as_deref(), Some(&[5, 6, 7][..]));
    assert_buffers_conserved(&io);
}

#[test]
fn host_passthrough_is_bounded_by_wire_tx_space() {
    let mut io = small(4);
    for _ in 0..3 {
        assert!(io.push_from_wire(&[0]));
    }
    for _ in 0..3 {
        assert!(io.push_from_host(&[4]));
    }
    let counts = io.run_batch(8, by_first_byte).unwrap();
    assert_eq!((counts.to_wire, counts.host_to_wire), (3, 1));
    assert_eq!(io.host_rx_pending(), 2);
    assert_buffers_conserved(&io);
}

#[test]
fn transmit_copy_appends_to_wire_tx_until_full() {
    let mut io = small(2);
    assert!(io.transmit_copy(&[1, 2]).unwrap());
    assert!(io.transmit_copy(&[3]).unwrap());
    assert!(!io.transmit_copy(&[4]).unwrap());
    assert!(io.transmit_copy(&[0; 257]).is_err());
    assert_eq!(io.pop_wire_tx().as_deref(), Some(&[1, 2][..]));
    assert_eq!(io.pop_wire_tx().as_deref(), Some(&[3][..]));
    // A frame as large as the whole buffer fits, without headroom.
    assert!(io.transmit_copy(&[6; 256]).unwrap());
    assert_eq!(io.pop_wire_tx().map(|f| f.len()), Some(256));
    assert_buffers_conserved(&io);
}

#[test]
fn wait_returns_at_once() {
    let mut io = small(2);
    let start = std::time::Instant::now();
    io.wait(Duration::from_secs(5)).unwrap();
    assert!(start.elapsed() < Duration::from_secs(1));
}

#[test]
fn ring_positions_survive_wrapping_many_times() {
    let mut io = small(4);
    for round in 0..1000u32 {
        let b = (round % 3) as u8;
        assert!(io.push_from_wire(&[b, round as u8]));
        io.run_batch(1, by_first_byte).unwrap();
        io.clear_tx();
    }
    assert_buffers_conserved(&io);
    assert_eq!(io.free_buffers(), io.pool_buffers());
}

#[derive(Debug, Clone)]
enum Op {
    PushWire(u8, usize),
    PushHost(usize),
    Run(usize),
    PopWire,
    PopHost,
    DrainWire,
    Clear,
    TransmitCopy(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..4, 0usize..260).prop_map(|(b, len)| Op::PushWire(b, len)),
        (0usize..260).prop_map(Op::PushHost),
        (0usize..12).prop_map(Op::Run),
        Just(Op::PopWire),
        Just(Op::PopHost),
        Just(Op::DrainWire),
        Just(Op::Clear),
        (0usize..300).prop_map(Op::TransmitCopy),
    ]
}

proptest! {
    #[test]
    fn buffers_are_conserved_and_no_frame_is_lost(ops in proptest::collection::vec(op(), 0..200)) {
        let mut io = small(8);
        // Frames accepted from the wire: each is still in RX, or was decided.
        let mut accepted = 0usize;
        let mut decided = 0usize;
        for op in ops {
            match op {
                Op::PushWire(first, len) => {
                    if io.push_from_wire(&vec![first; len.max(1)]) {
                        accepted += 1;
                    }
                }
                Op::PushHost(len) => {
                    io.push_from_host(&vec![9; len]);
                }
                Op::Run(budget) => {
                    let before = (io.wire_tx_len(), io.host_tx_len());
                    let counts = io.run_batch(budget, |frame: &mut Frame<'_>| {
                        if frame.data().first() == Some(&3) {
                            // Encapsulate, as VIP mode would.
                            if !frame.push_front(20) {
                                return Verdict::Drop(DropReason::NoHeadroom);
                            }
                        }
                        by_first_byte(frame)
                    }).unwrap();
                    prop_assert!(counts.from_wire <= budget);
                    prop_assert!(counts.host_to_wire <= budget);
                    prop_assert_eq!(counts.from_wire, counts.to_wire + counts.to_host + counts.dropped);
                    prop_assert_eq!(io.wire_tx_len(), before.0 + counts.to_wire + counts.host_to_wire);
                    prop_assert_eq!(io.host_tx_len(), before.1 + counts.to_host);
                    decided += counts.from_wire;
                }
                Op::PopWire => { io.pop_wire_tx(); }
                Op::PopHost => { io.pop_host_tx(); }
                Op::DrainWire => io.drain_wire_tx(|_| {}),
                Op::Clear => io.clear_tx(),
                Op::TransmitCopy(len) => {
                    let _ = io.transmit_copy(&vec![7; len]);
                }
            }
            assert_buffers_conserved(&io);
            prop_assert_eq!(accepted, decided + io.wire_rx_pending());
        }
    }
}
