//! The backend on an emulated port with an in-memory device: frames in,
//! verdicts out, every buffer index conserved.

use proptest::prelude::*;

use super::*;
use crate::io::netmap::emulated::{EmulatedPort, EmulatedPortConfig, MemoryDevice};
use crate::verdict::DropReason;

type Io = NetmapIo<EmulatedPort<MemoryDevice>>;

fn io_with(nic_slots: u32, host_slots: u32, device: MemoryDevice) -> Io {
    io_with_offset(nic_slots, host_slots, device, 0)
}

/// A port registered with `NETMAP_REQ_OPT_OFFSETS` of `offset` (0: without),
/// its buffers 256 bytes longer than the offset.
fn io_with_offset(nic_slots: u32, host_slots: u32, device: MemoryDevice, offset: u32) -> Io {
    let config = EmulatedPortConfig {
        name: "emu0".into(),
        nic_slots,
        host_slots,
        buf_size: 256 + offset,
        offset,
    };
    NetmapIo::new(EmulatedPort::open(&config, device).unwrap()).unwrap()
}

fn io(nic_slots: u32) -> Io {
    io_with(nic_slots, nic_slots, MemoryDevice::new(256))
}

fn device(io: &mut Io) -> &mut MemoryDevice {
    io.port_mut().device_mut()
}

/// Verdict by the frame's first byte: 0 to the wire, 1 to the host, 3
/// held, anything else dropped.
fn by_first_byte(frame: &mut Frame<'_>) -> Verdict {
    match frame.data().first() {
        Some(0) => Verdict::ToWire,
        Some(1) => Verdict::ToHost,
        Some(3) => Verdict::Held,
        _ => Verdict::Drop(DropReason::UnsupportedGreProtocol),
    }
}

fn drain_wire(io: &mut Io) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    device(io).drain_to_wire(|f| frames.push(f.to_vec()));
    frames
}

fn drain_host(io: &mut Io) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    device(io).drain_to_host(|f| frames.push(f.to_vec()));
    frames
}

#[test]
fn verdicts_land_in_their_rings_byte_for_byte() {
    let mut io = io(16);
    let to_wire = [0u8, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23];
    let to_host = [1u8, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32];
    let dropped = [2u8, 30, 31];
    let held = [3u8, 40];
    for frame in [&to_wire[..], &to_host, &dropped, &held] {
        assert!(device(&mut io).push_from_wire(frame));
    }
    let counts = io.run_batch(32, by_first_byte).unwrap();
    assert_eq!(
        counts,
        BatchCounts {
            from_wire: 4,
            to_wire: 1,
            to_host: 1,
            dropped: 1,
            held: 1,
            host_to_wire: 0,
        }
    );
    assert_eq!(drain_wire(&mut io), [to_wire.to_vec()]);
    assert_eq!(drain_host(&mut io), [to_host.to_vec()]);
    assert!(io.port().buffers_conserved());
}

#[test]
fn frames_the_pipeline_rewrote_leave_rewritten() {
    let mut io = io(8);
    device(&mut io).push_from_wire(&[0, 1, 2, 3]);
    io.run_batch(8, |frame: &mut Frame<'_>| {
        frame.data_mut()[1] = 0xaa;
        assert!(frame.set_len(3));
        Verdict::ToWire
    })
    .unwrap();
    assert_eq!(drain_wire(&mut io), [vec![0, 0xaa, 2]]);
}

#[test]
fn a_frame_grown_at_the_front_is_sent_from_the_start_of_its_buffer() {
    let mut io = io(8);
    device(&mut io).push_from_wire(&[0, 1, 2, 3]);
    io.run_batch(8, |frame: &mut Frame<'_>| {
        // No headroom in a netmap buffer: the packet slides into the
        // tailroom, and the backend moves it back before the swap.
        assert_eq!(frame.headroom(), 0);
        assert!(frame.push_front(4));
        frame.data_mut()[..4].copy_from_slice(b"GRE!");
        Verdict::ToWire
    })
    .unwrap();
    assert_eq!(drain_wire(&mut io), [b"GRE!\x00\x01\x02\x03".to_vec()]);
    assert_eq!(io.stats().moved_to_start, 1);
}

#[test]
fn with_offsets_a_frame_grows_into_its_headroom_and_leaves_without_a_move() {
    let mut io = io_with_offset(8, 8, MemoryDevice::new(256), 128);
    device(&mut io).push_from_wire(&[0, 1, 2, 3]);
    let to_host = [1u8, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17];
    device(&mut io).push_from_wire(&to_host);
    device(&mut io).push_from_host(&[9, 8, 7]);
    for _ in 0..3 {
        io.run_batch(8, |frame: &mut Frame<'_>| {
            assert_eq!(frame.headroom(), 128, "received 128 bytes into the buffer");
            if frame.data()[0] == 1 {
                return Verdict::ToHost;
            }
            assert!(frame.push_front(24));
            frame.data_mut()[..4].copy_from_slice(b"GRE!");
            Verdict::ToWire
        })
        .unwrap();
    }
    let mut sent = b"GRE!".to_vec();
    sent.extend([0; 20]);
    sent.extend([0, 1, 2, 3]);
    assert_eq!(drain_wire(&mut io), [sent, vec![9, 8, 7]]);
    assert_eq!(drain_host(&mut io), [to_host.to_vec()]);
    assert_eq!(io.stats().moved_to_start, 0, "no copy");
    assert!(io.port().buffers_conserved());
}

#[test]
fn a_start_beyond_the_offsets_or_the_nic_s_alignment_is_moved_to_byte_0() {
    assert_eq!(tx_start(40, 64, 1), 40);
    assert_eq!(tx_start(40, 64, 0), 40);
    assert_eq!(tx_start(64, 64, 1), 64);
    assert_eq!(tx_start(65, 64, 1), 0, "past the largest offset");
    assert_eq!(tx_start(40, 64, 64), 0, "not aligned");
    assert_eq!(tx_start(0, 64, 64), 0);
    assert_eq!(tx_start(4, 0, 0), 0, "no offsets");
}

#[test]
fn host_frames_pass_through_to_the_wire_untouched() {
    let mut io = io(8);
    device(&mut io).push_from_host(&[9, 8, 7, 6]);
    let counts = io
        .run_batch(8, |_: &mut Frame<'_>| -> Verdict {
            unreachable!("host frames are not decided")
        })
        .unwrap();
    assert_eq!(counts.host_to_wire, 1);
    assert_eq!(counts.from_wire, 0);
    assert_eq!(drain_wire(&mut io), [vec![9, 8, 7, 6]]);
}

#[test]
fn a_batch_is_bounded_by_the_budget() {
    let mut io = io(16);
    for i in 0..10u8 {
        device(&mut io).push_from_wire(&[0, i]);
    }
    assert_eq!(io.run_batch(4, by_first_byte).unwrap().from_wire, 4);
    assert_eq!(io.run_batch(64, by_first_byte).unwrap().from_wire, 6);
    let seconds: Vec<u8> = drain_wire(&mut io).iter().map(|f| f[1]).collect();
    assert_eq!(seconds, (0..10).collect::<Vec<_>>());
}

#[test]
fn a_full_tx_ring_leaves_frames_in_rx_instead_of_dropping_them() {
    // The device takes 3 frames at a time: the TX ring (7 usable slots)
    // fills, the RX ring keeps the rest.
    let mut io = io_with(8, 8, MemoryDevice::new(256).with_tx_capacity(3));
    for i in 0..7u8 {
        device(&mut io).push_from_wire(&[0, i]);
    }
    let mut sent = Vec::new();
    let mut batches = 0;
    while sent.len() < 7 {
        let counts = io.run_batch(64, by_first_byte).unwrap();
        assert_eq!(counts.dropped, 0);
        sent.extend(drain_wire(&mut io).iter().map(|f| f[1]));
        batches += 1;
        assert!(batches < 20, "stuck: {sent:?}");
    }
    assert_eq!(sent, (0..7).collect::<Vec<_>>());
    assert!(batches > 1, "backpressure held frames back");
    assert!(io.port().buffers_conserved());
}

#[test]
fn a_multi_slot_frame_is_dropped_whole() {
    let mut io = io_with(8, 8, MemoryDevice::new(600));
    device(&mut io).push_from_wire(&[0; 500]);
    device(&mut io).push_from_wire(&[0, 1]);
    let counts = io.run_batch(8, by_first_byte).unwrap();
    assert_eq!(
        (counts.from_wire, counts.dropped, counts.to_wire),
        (2, 1, 1)
    );
    assert_eq!(io.stats().chains_dropped, 1);
    assert_eq!(drain_wire(&mut io), [vec![0, 1]]);
}

#[test]
fn transmit_copy_queues_a_frame_for_the_next_sync() {
    let mut io = io(4);
    assert!(io.transmit_copy(&[5, 5, 5]).unwrap());
    assert!(io.transmit_copy(&[6]).unwrap());
    assert!(io.transmit_copy(&[7]).unwrap());
    assert!(!io.transmit_copy(&[8]).unwrap(), "3 usable slots of 4");
    assert!(io.transmit_copy(&[0; 257]).is_err(), "longer than a buffer");
    io.wait(Duration::ZERO).unwrap();
    assert_eq!(drain_wire(&mut io), [vec![5, 5, 5], vec![6], vec![7]]);
    assert!(io.transmit_copy(&[8]).unwrap(), "the sync freed the slots");
}

/// Frame `seq`: its number, then a byte choosing the verdict.
fn numbered(seq: u32, verdict: u8) -> Vec<u8> {
    let mut frame = vec![verdict];
    frame.extend_from_slice(&seq.to_be_bytes());
    frame.resize(16 + (seq as usize % 200), seq as u8);
    frame
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn every_frame_is_delivered_once_and_every_buffer_index_conserved(
        verdicts in proptest::collection::vec(0u8..4, 1..2000),
        host_every in 2usize..20,
        budget in 1usize..80,
        tx_capacity in 1usize..40,
        offset in prop::sample::select(vec![0u32, 128]),
    ) {
        let memory = MemoryDevice::new(256).with_tx_capacity(tx_capacity);
        let mut io = io_with_offset(32, 16, memory, offset);
        let mut expected_wire = Vec::new();
        let mut expected_host = Vec::new();
        let mut expected_host_to_wire = Vec::new();
        let (mut wire, mut host) = (Vec::new(), Vec::new());
        let mut next = 0;
        let mut rounds = 0;
        while next < verdicts.len()
            || wire.len() + host.len() < expected_wire.len() + expected_host.len()
                + expected_host_to_wire.len()
        {
            while next < verdicts.len() && device(&mut io).wire_pending() < 40 {
                let frame = numbered(next as u32, verdicts[next]);
                match verdicts[next] {
                    0 => expected_wire.push(frame.clone()),
                    1 => expected_host.push(frame.clone()),
                    _ => {}
                }
                device(&mut io).push_from_wire(&frame);
                if next % host_every == 0 {
                    let from_host = numbered(1_000_000 + next as u32, 9);
                    expected_host_to_wire.push(from_host.clone());
                    device(&mut io).push_from_host(&from_host);
                }
                next += 1;
            }
            io.run_batch(budget, by_first_byte).unwrap();
            prop_assert!(io.port().buffers_conserved());
            wire.extend(drain_wire(&mut io));
            host.extend(drain_host(&mut io));
            rounds += 1;
            prop_assert!(rounds < 100_000, "stuck");
        }
        // The wire carries both streams, each in its own order.
        let (from_host_seen, from_wire_seen): (Vec<_>, Vec<_>) =
            wire.into_iter().partition(|f| f[0] == 9);
        prop_assert_eq!(from_wire_seen, expected_wire);
        prop_assert_eq!(from_host_seen, expected_host_to_wire);
        prop_assert_eq!(host, expected_host);
        prop_assert_eq!(io.port().stats().dropped, 0);
    }
}

// ---- one worker per ring pair -------------------------------------------

/// A port of `pairs` ring pairs, each registered for its own worker over
/// its own in-memory device.
fn ring_workers(pairs: usize, slots: u32) -> Vec<Io> {
    let config = EmulatedPortConfig {
        nic_slots: slots,
        host_slots: slots,
        buf_size: 256,
        ..EmulatedPortConfig::new("emu0")
    };
    let devices = (0..pairs).map(|_| MemoryDevice::new(256)).collect();
    EmulatedPort::open_rings(&config, devices)
        .unwrap()
        .into_iter()
        .map(|port| NetmapIo::new(port).unwrap())
        .collect()
}

#[test]
fn each_worker_serves_its_own_nic_and_host_ring_pair() {
    let workers = ring_workers(3, 8);
    for (i, io) in (0u32..).zip(&workers) {
        assert_eq!(
            io.served(),
            ServedRings {
                nic_rx: i,
                nic_tx: i,
                host_rx: i,
                host_tx: i,
            }
        );
        let register = io.port().register_info();
        assert_eq!(register.nr_mode, netmap_sys::NR_REG_ONE_NIC);
        assert_eq!(register.nr_ringid, i as u16);
        assert_eq!(register.nr_rx_rings, 3);
        assert_eq!(
            register.nr_host_rx_rings, 3,
            "a host ring pair per NIC pair"
        );
    }
}

/// A 16-byte frame: its verdict byte, its worker, its number.
fn frame16(verdict: u8, worker: u8, n: u8) -> Vec<u8> {
    let mut frame = vec![0; 16];
    frame[..3].copy_from_slice(&[verdict, worker, n]);
    frame
}

#[test]
fn workers_on_their_own_threads_move_only_their_rings_frames() {
    const FRAMES: u8 = 200;
    let handles: Vec<_> = ring_workers(2, 16)
        .into_iter()
        .zip(0u8..)
        .map(|(mut io, worker)| {
            std::thread::spawn(move || {
                let (mut wire, mut host, mut up) = (Vec::new(), Vec::new(), Vec::new());
                for n in 0..FRAMES {
                    // Even frames to the wire, odd to the host, each
                    // naming its worker; the host sends one of its own.
                    // (Frames of 16 bytes: the host rings drop runts.)
                    device(&mut io).push_from_wire(&frame16(n % 2, worker, n));
                    device(&mut io).push_from_host(&frame16(9, worker, n));
                    io.run_batch(32, by_first_byte).unwrap();
                    wire.extend(drain_wire(&mut io));
                    host.extend(drain_host(&mut io));
                }
                for _ in 0..4 {
                    io.run_batch(32, by_first_byte).unwrap();
                    wire.extend(drain_wire(&mut io));
                    host.extend(drain_host(&mut io));
                }
                up.extend(wire.iter().filter(|f| f[0] == 9).map(|f| f[2]));
                wire.retain(|f| f[0] != 9);
                assert!(io.port().buffers_conserved(), "worker {worker}");
                (worker, wire, host, up)
            })
        })
        .collect();
    for handle in handles {
        let (worker, wire, host, up) = handle.join().unwrap();
        let expected = |parity| -> Vec<Vec<u8>> {
            (0..FRAMES)
                .filter(|n| n % 2 == parity)
                .map(|n| frame16(parity, worker, n))
                .collect()
        };
        assert_eq!(wire, expected(0), "worker {worker}'s wire frames, in order");
        assert_eq!(host, expected(1), "worker {worker}'s host frames, in order");
        assert_eq!(
            up,
            (0..FRAMES).collect::<Vec<_>>(),
            "worker {worker}'s host stack frames"
        );
    }
}
