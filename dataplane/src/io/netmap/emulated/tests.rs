//! The emulated kernel driven directly, ring by ring: what a backend sees
//! after each sync, as netmap specifies it.

// Offsets are small and positive here; the casts between signed and
// unsigned offsets mirror the C they check.
#![allow(clippy::cast_possible_wrap, clippy::cast_sign_loss)]

use std::mem::offset_of;

use netmap_sys::{
    netmap_if, netmap_ring, netmap_slot, NS_BUF_CHANGED, NS_MOREFRAG, RING_DIR_RX, RING_DIR_TX,
};

use super::*;
use crate::io::netmap::region::{swap_into, RingView};
use crate::io::netmap::ServedRings;
use layout::Binding;

fn config(nic_slots: u32, host_slots: u32, buf_size: u32) -> EmulatedPortConfig {
    EmulatedPortConfig {
        name: "emu0".into(),
        nic_slots,
        host_slots,
        buf_size,
        offset: 0,
    }
}

fn port(nic_slots: u32, buf_size: u32, max_frame: usize) -> EmulatedPort<MemoryDevice> {
    EmulatedPort::open(
        &config(nic_slots, nic_slots, buf_size),
        MemoryDevice::new(max_frame),
    )
    .expect("valid config")
}

fn ring<D: Device>(port: &EmulatedPort<D>, kind: RingKind) -> RingView<'_> {
    port.region()
        .ring(kind, 0)
        .expect("the emulated port binds every ring")
}

/// Test frame `seq`: `len` bytes, the sequence number first, then a
/// pattern derived from it.
fn frame(seq: u32, len: usize) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(len);
    bytes.extend_from_slice(&seq.to_be_bytes());
    let mut b = seq as u8;
    while bytes.len() < len {
        bytes.push(b);
        b = b.wrapping_mul(29).wrapping_add(3);
    }
    bytes.truncate(len);
    bytes
}

fn seq_of(bytes: &[u8]) -> u32 {
    u32::from_be_bytes(bytes[..4].try_into().unwrap())
}

/// The user consumes every frame in RX ring `kind` (chains joined) and
/// releases the slots.
fn take_frames<D: Device>(port: &EmulatedPort<D>, kind: RingKind) -> Vec<Vec<u8>> {
    let ring = ring(port, kind);
    let mut frames = Vec::new();
    let mut current = Vec::new();
    let mut i = ring.head();
    while i != ring.tail() {
        // SAFETY: slots head..tail are ours; the slice ends in this iteration.
        current.extend_from_slice(unsafe { ring.slot_bytes(i) }.expect("a good buffer"));
        if ring.slot(i).flags & NS_MOREFRAG == 0 {
            frames.push(std::mem::take(&mut current));
        }
        i = ring.next(i);
    }
    assert!(current.is_empty(), "a chain cut at tail");
    ring.publish(i);
    frames
}

/// The user writes `bytes` into TX ring `kind` from `head`, over as many
/// slots as it takes, and publishes them. False (nothing written) when the
/// ring has too few free slots.
fn put_frame<D: Device>(port: &EmulatedPort<D>, kind: RingKind, bytes: &[u8]) -> bool {
    let ring = ring(port, kind);
    let buf_size = ring.region().buf_size() as usize;
    let slots = bytes.len().div_ceil(buf_size).max(1);
    if (ring.space() as usize) < slots {
        return false;
    }
    let mut i = ring.head();
    let mut chunks = bytes.chunks(buf_size).peekable();
    while let Some(chunk) = chunks.next() {
        // SAFETY: slot i is between head and tail: ours; the slice ends here.
        let buf = unsafe { ring.slot_buffer_mut(i) }.expect("a good buffer");
        buf[..chunk.len()].copy_from_slice(chunk);
        let flags = if chunks.peek().is_some() {
            NS_MOREFRAG
        } else {
            0
        };
        ring.set_len_flags(i, chunk.len() as u16, flags);
        i = ring.next(i);
    }
    ring.publish(i);
    true
}

/// Every buffer of the pool but the two reserved ones is in exactly one
/// slot.
fn assert_buffers_conserved<D: Device>(port: &EmulatedPort<D>) {
    assert!(
        port.buffers_conserved(),
        "buffer indices lost or duplicated: {:?}",
        port.slot_buffers()
    );
}

/// Reads a `T` at `offset` bytes into the port's mapping, bypassing the view.
fn raw<T: Copy, D: Device>(port: &EmulatedPort<D>, offset: usize) -> T {
    assert!(offset + size_of::<T>() <= port.mapping().len());
    // SAFETY: inside the mapping (checked above); an unaligned read of plain
    // integers; no slice of the mapping is alive.
    unsafe {
        port.mapping()
            .base()
            .as_ptr()
            .add(offset)
            .cast::<T>()
            .read_unaligned()
    }
}

// ---- the region ---------------------------------------------------------

#[test]
fn the_region_is_laid_out_at_the_abi_offsets() {
    let port = port(8, 256, 256);
    let region = port.region();
    assert_eq!(port.register_info().nr_memsize, region.len() as u64);
    let nifp = port.register_info().nr_offset as usize;
    let name: [u8; 16] = raw(&port, nifp + offset_of!(netmap_if, ni_name));
    assert_eq!(&name[..5], b"emu0\0");
    for field in [
        offset_of!(netmap_if, ni_tx_rings),
        offset_of!(netmap_if, ni_rx_rings),
        offset_of!(netmap_if, ni_host_tx_rings),
        offset_of!(netmap_if, ni_host_rx_rings),
    ] {
        assert_eq!(raw::<u32, _>(&port, nifp + field), 1);
    }
    let mut pool_start = None;
    for (position, kind) in RingKind::ALL.into_iter().enumerate() {
        // ring_ofs[]: 8-byte offsets from netmap_if, from byte 56.
        assert_eq!(offset_of!(netmap_if, ring_ofs), 56);
        let ofs: isize = raw(&port, nifp + 56 + 8 * position);
        let ring_at = (nifp as isize + ofs) as usize;
        assert_eq!(ring_at % 128, 0, "{kind} ring aligned as the ABI aligns it");
        assert_eq!(raw::<u32, _>(&port, ring_at + 8), 8, "num_slots at byte 8");
        assert_eq!(raw::<u32, _>(&port, ring_at + 12), 256, "nr_buf_size at 12");
        let (dir, tail) = if kind.is_tx() {
            (RING_DIR_TX, 7)
        } else {
            (RING_DIR_RX, 0)
        };
        assert_eq!(raw::<u16, _>(&port, ring_at + 18), dir, "{kind} dir at 18");
        assert_eq!(raw::<u32, _>(&port, ring_at + 20), 0, "head at 20");
        assert_eq!(raw::<u32, _>(&port, ring_at + 24), 0, "cur at 24");
        assert_eq!(
            raw::<u32, _>(&port, ring_at + 28),
            tail,
            "{kind} tail at 28"
        );
        let buf_ofs: i64 = raw(&port, ring_at + offset_of!(netmap_ring, buf_ofs));
        let start = ring_at as i64 + buf_ofs;
        assert_eq!(
            *pool_start.get_or_insert(start),
            start,
            "one pool for all rings"
        );
        let view = ring(&port, kind);
        for i in 0..8 {
            // Slots from byte 256, 16 bytes each.
            let slot: netmap_slot = raw(&port, ring_at + 256 + 16 * i as usize);
            assert_eq!(slot, view.slot(i));
            assert!(slot.buf_idx >= 2, "buffers 0 and 1 are reserved");
            assert_eq!(slot.len, 256);
            let end = start as usize + (slot.buf_idx as usize + 1) * 256;
            assert!(end <= region.len(), "buffer inside the region");
        }
    }
    assert_eq!(region.pool_start() as i64, pool_start.unwrap());
    assert_buffers_conserved(&port);
}

#[test]
fn config_errors_name_the_bad_value() {
    let open = |config: &EmulatedPortConfig| {
        EmulatedPort::open(config, MemoryDevice::new(64))
            .unwrap_err()
            .to_string()
    };
    assert!(open(&config(1, 8, 2048)).contains("1 slots"));
    assert!(open(&config(8, 1 << 20, 2048)).contains("1048576 slots"));
    assert!(open(&config(8, 8, 100)).contains("buffer size 100"));
    assert!(open(&config(8, 8, 65536)).contains("buffer size 65536"));
    let long_name = EmulatedPortConfig {
        name: "a-name-too-long-for-ifnamsiz".into(),
        ..config(8, 8, 2048)
    };
    assert!(open(&long_name).contains("a-name-too-long"));
}

// ---- NIC RX -------------------------------------------------------------

#[test]
fn rxsync_moves_frames_from_the_device_into_slots_and_tail() {
    let mut port = port(8, 256, 256);
    for seq in 0..3 {
        assert!(port
            .device_mut()
            .push_from_wire(&frame(seq, 60 + seq as usize)));
    }
    let rx = ring(&port, RingKind::NicRx);
    assert_eq!((rx.head(), rx.tail()), (0, 0), "nothing before a sync");
    port.rxsync().unwrap();
    let rx = ring(&port, RingKind::NicRx);
    assert_eq!((rx.head(), rx.cur(), rx.tail()), (0, 0, 3));
    assert_eq!(rx.slot(1).len, 61);
    assert_eq!(rx.slot(1).flags, 0);
    assert_ne!(rx.timestamp(), (0, 0), "an RX sync stamps its ring");
    let got = take_frames(&port, RingKind::NicRx);
    assert_eq!(
        got,
        (0..3)
            .map(|s| frame(s, 60 + s as usize))
            .collect::<Vec<_>>()
    );
    assert_eq!(port.stats().rx_frames, 3);
}

#[test]
fn an_rx_ring_wraps_around_keeping_order() {
    let mut port = port(8, 256, 256);
    let mut next_in = 0;
    let mut next_out = 0;
    for round in 0..200 {
        for _ in 0..(round % 7) {
            port.device_mut().push_from_wire(&frame(next_in, 64));
            next_in += 1;
        }
        port.rxsync().unwrap();
        for got in take_frames(&port, RingKind::NicRx) {
            assert_eq!(got, frame(next_out, 64));
            next_out += 1;
        }
        let rx = ring(&port, RingKind::NicRx);
        assert!(rx.head() < 8 && rx.tail() < 8);
    }
    port.rxsync().unwrap();
    next_out += take_frames(&port, RingKind::NicRx).len() as u32;
    assert_eq!(next_out, next_in, "every frame arrived once, in order");
    assert!(next_in > 8 * 10, "the ring wrapped many times");
    assert_buffers_conserved(&port);
}

#[test]
fn a_full_rx_ring_holds_num_slots_minus_one_and_leaves_the_rest_in_the_device() {
    let mut port = port(8, 256, 256);
    for seq in 0..20 {
        port.device_mut().push_from_wire(&frame(seq, 64));
    }
    port.rxsync().unwrap();
    assert_eq!(
        ring(&port, RingKind::NicRx).space(),
        7,
        "one slot stays empty"
    );
    assert_eq!(port.device().wire_pending(), 13);
    // Not released: another sync brings nothing.
    port.rxsync().unwrap();
    assert_eq!(ring(&port, RingKind::NicRx).space(), 7);
    assert_eq!(port.device().wire_pending(), 13);
    // Release three: three more arrive.
    let rx = ring(&port, RingKind::NicRx);
    rx.publish(3);
    port.rxsync().unwrap();
    let rx = ring(&port, RingKind::NicRx);
    assert_eq!((rx.head(), rx.tail()), (3, 2));
    assert_eq!(rx.space(), 7);
    assert_eq!(port.device().wire_pending(), 10);
    let seqs: Vec<u32> = take_frames(&port, RingKind::NicRx)
        .iter()
        .map(|f| seq_of(f))
        .collect();
    assert_eq!(seqs, (3..10).collect::<Vec<_>>());
}

#[test]
fn long_frames_arrive_over_slots_chained_by_ns_morefrag() {
    // Frames of up to 300 bytes take 3 slots: two fit the 7 free slots.
    let mut port = port(8, 128, 300);
    port.device_mut().push_from_wire(&frame(7, 300));
    port.device_mut().push_from_wire(&frame(8, 128));
    port.rxsync().unwrap();
    let rx = ring(&port, RingKind::NicRx);
    assert_eq!(rx.tail(), 4);
    let slots: Vec<(u16, u16)> = (0..4).map(|i| (rx.slot(i).len, rx.slot(i).flags)).collect();
    assert_eq!(
        slots,
        [(128, NS_MOREFRAG), (128, NS_MOREFRAG), (44, 0), (128, 0)]
    );
    assert_eq!(
        take_frames(&port, RingKind::NicRx),
        [frame(7, 300), frame(8, 128)]
    );
}

#[test]
fn rx_asks_the_device_only_for_frames_that_surely_fit() {
    // 512-byte frames take 4 slots of 128: a fresh 8-slot ring (7 usable)
    // takes one such frame per sync, whatever the frames' real lengths.
    let mut port = port(8, 128, 512);
    for seq in 0..3 {
        port.device_mut().push_from_wire(&frame(seq, 500));
    }
    port.rxsync().unwrap();
    assert_eq!(ring(&port, RingKind::NicRx).tail(), 4);
    assert_eq!(port.device().wire_pending(), 2);
}

// ---- NIC TX -------------------------------------------------------------

#[test]
fn txsync_sends_from_hwcur_to_head_and_frees_the_slots() {
    let mut port = port(8, 256, 256);
    for seq in 0..3 {
        assert!(put_frame(&port, RingKind::NicTx, &frame(seq, 80)));
    }
    let tx = ring(&port, RingKind::NicTx);
    assert_eq!((tx.head(), tx.tail(), tx.space()), (3, 7, 4));
    assert_eq!(
        port.device().to_wire_len(),
        0,
        "nothing leaves before a sync"
    );
    port.txsync().unwrap();
    let tx = ring(&port, RingKind::NicTx);
    assert_eq!(tx.tail(), 2, "tail = head - 1: everything sent");
    assert_eq!(tx.space(), 7);
    assert!(!netmap_sys::nm_tx_pending(8, tx.head(), tx.tail()));
    for seq in 0..3 {
        assert_eq!(port.device_mut().pop_to_wire(), Some(frame(seq, 80)));
    }
    assert_eq!(port.stats().tx_frames, 3);
}

#[test]
fn a_full_tx_ring_offers_no_slot_until_txsync_frees_them() {
    let mut port = port(8, 256, 256);
    for seq in 0..7 {
        assert!(put_frame(&port, RingKind::NicTx, &frame(seq, 64)));
    }
    assert_eq!(ring(&port, RingKind::NicTx).space(), 0);
    assert!(!put_frame(&port, RingKind::NicTx, &frame(7, 64)), "full");
    port.txsync().unwrap();
    assert_eq!(ring(&port, RingKind::NicTx).space(), 7);
    // Around the ring again, across the wrap.
    for seq in 7..14 {
        assert!(put_frame(&port, RingKind::NicTx, &frame(seq, 64)));
    }
    port.txsync().unwrap();
    let mut seqs = Vec::new();
    port.device_mut().drain_to_wire(|f| seqs.push(seq_of(f)));
    assert_eq!(seqs, (0..14).collect::<Vec<_>>());
    assert_buffers_conserved(&port);
}

#[test]
fn a_full_device_stops_txsync_and_the_frames_wait_in_the_ring() {
    let mut port = EmulatedPort::open(
        &config(8, 8, 256),
        MemoryDevice::new(256).with_tx_capacity(2),
    )
    .unwrap();
    for seq in 0..5 {
        assert!(put_frame(&port, RingKind::NicTx, &frame(seq, 64)));
    }
    port.txsync().unwrap();
    assert_eq!(port.device().to_wire_len(), 2);
    assert_eq!(port.stats().tx_device_full, 1);
    let tx = ring(&port, RingKind::NicTx);
    // Two sent and free again; three still the kernel's.
    assert_eq!((tx.head(), tx.tail()), (5, 1));
    assert_eq!(tx.space(), 4);
    let mut seqs = Vec::new();
    while seqs.len() < 5 {
        port.device_mut().drain_to_wire(|f| seqs.push(seq_of(f)));
        port.txsync().unwrap();
    }
    assert_eq!(seqs, (0..5).collect::<Vec<_>>(), "in order, none lost");
    assert_eq!(ring(&port, RingKind::NicTx).space(), 7);
}

#[test]
fn morefrag_chains_leave_as_one_frame() {
    let mut port = port(8, 128, 512);
    assert!(put_frame(&port, RingKind::NicTx, &frame(1, 300)));
    assert!(put_frame(&port, RingKind::NicTx, &frame(2, 60)));
    assert_eq!(ring(&port, RingKind::NicTx).head(), 4);
    port.txsync().unwrap();
    assert_eq!(port.device_mut().pop_to_wire(), Some(frame(1, 300)));
    assert_eq!(port.device_mut().pop_to_wire(), Some(frame(2, 60)));
    assert_eq!(port.device_mut().pop_to_wire(), None);
}

#[test]
fn a_chain_without_its_last_slot_waits_for_it() {
    let mut port = port(8, 128, 512);
    let whole = frame(3, 300);
    assert!(put_frame(&port, RingKind::NicTx, &whole));
    // Release only the first two slots of the three.
    let tx = ring(&port, RingKind::NicTx);
    tx.publish(2);
    port.txsync().unwrap();
    assert_eq!(port.device().to_wire_len(), 0, "half a frame is not sent");
    let tx = ring(&port, RingKind::NicTx);
    assert_eq!(tx.tail(), 7, "its slots stay the kernel's");
    tx.publish(3);
    port.txsync().unwrap();
    assert_eq!(port.device_mut().pop_to_wire(), Some(whole));
}

// ---- swaps --------------------------------------------------------------

#[test]
fn a_buffer_swapped_from_rx_to_tx_is_sent_and_rx_refills_into_the_tx_buffer() {
    let mut port = port(8, 256, 256);
    port.device_mut().push_from_wire(&frame(1, 90));
    port.rxsync().unwrap();
    let (rx, tx) = (ring(&port, RingKind::NicRx), ring(&port, RingKind::NicTx));
    let rx_buf = rx.slot(0).buf_idx;
    let tx_buf = tx.slot(0).buf_idx;
    swap_into(&rx, 0, &tx, 0);
    assert_eq!(tx.slot(0).buf_idx, rx_buf);
    assert_eq!(tx.slot(0).len, 90);
    assert_eq!(rx.slot(0).buf_idx, tx_buf);
    assert_eq!(tx.slot(0).flags & NS_BUF_CHANGED, NS_BUF_CHANGED);
    assert_eq!(rx.slot(0).flags & NS_BUF_CHANGED, NS_BUF_CHANGED);
    rx.publish(1);
    tx.publish(1);
    port.txsync().unwrap();
    assert_eq!(port.device_mut().pop_to_wire(), Some(frame(1, 90)));
    assert_eq!(
        ring(&port, RingKind::NicTx).slot(0).flags & NS_BUF_CHANGED,
        0,
        "the kernel clears the flag it has acted on"
    );
    // The RX slot, released, is refilled into the buffer it was given.
    for seq in 2..10 {
        port.device_mut().push_from_wire(&frame(seq, 70));
    }
    port.rxsync().unwrap();
    let rx = ring(&port, RingKind::NicRx);
    assert_eq!(rx.slot(0).flags & NS_BUF_CHANGED, 0);
    assert_eq!(
        (rx.head(), rx.tail()),
        (1, 0),
        "the ring wrapped into slot 0"
    );
    assert_eq!(rx.slot(0).buf_idx, tx_buf);
    let frames = take_frames(&port, RingKind::NicRx);
    assert_eq!(
        frames.last(),
        Some(&frame(8, 70)),
        "slot 0 holds the 7th frame"
    );
    assert_buffers_conserved(&port);
}

/// A port registered with `NETMAP_REQ_OPT_OFFSETS` of `offset`.
fn port_with_offset(offset: u32) -> EmulatedPort<MemoryDevice> {
    let config = EmulatedPortConfig {
        offset,
        ..config(8, 8, 512)
    };
    EmulatedPort::open(&config, MemoryDevice::new(512)).unwrap()
}

#[test]
fn with_offsets_frames_are_received_after_the_offset_and_sent_from_each_slot_s() {
    let mut port = port_with_offset(128);
    let rx = ring(&port, RingKind::NicRx);
    assert_eq!(rx.offset_mask(), u64::MAX, "the whole ptr holds the offset");
    assert_eq!(
        rx.slot_offset(3),
        128,
        "every slot starts at the initial offset"
    );
    port.device_mut().push_from_wire(&frame(1, 300));
    port.device_mut().push_from_wire(&frame(2, 384));
    port.device_mut().push_from_wire(&frame(3, 385));
    port.rxsync().unwrap();
    // 384 bytes fit after the offset; 385 take a second slot.
    let rx = ring(&port, RingKind::NicRx);
    assert_eq!(rx.slot(1).len, 384);
    assert_eq!(rx.slot(2).flags & NS_MOREFRAG, NS_MOREFRAG);
    assert_eq!(
        take_frames(&port, RingKind::NicRx),
        [frame(1, 300), frame(2, 384), frame(3, 385)]
    );
    // SAFETY: slot 0 is ours (head..tail) and no other view of it is alive.
    let whole = unsafe { rx.slot_buffer_mut(0) }.unwrap();
    assert_eq!(&whole[128..428], &frame(1, 300)[..], "at the offset");
    // Sent from where the TX slot says the frame starts: 28 bytes earlier.
    whole[100..128].fill(0xee);
    let tx = ring(&port, RingKind::NicTx);
    swap_into(&rx, 0, &tx, 0);
    assert_eq!(
        tx.slot_offset(0),
        128,
        "the swap carries the frame's offset"
    );
    assert_eq!(rx.slot_offset(0), 128, "the RX slot keeps its own");
    tx.set_slot_offset(0, 100);
    tx.set_len_flags(0, 328, 0);
    tx.publish(1);
    rx.publish(1);
    port.txsync().unwrap();
    let mut expected = vec![0xee; 28];
    expected.extend(frame(1, 300));
    assert_eq!(port.device_mut().pop_to_wire(), Some(expected));
    assert_buffers_conserved(&port);
}

#[test]
fn with_offsets_host_rings_read_and_write_at_each_slot_s_offset() {
    let mut port = port_with_offset(64);
    port.device_mut().push_from_host(&frame(7, 448));
    port.device_mut().push_from_host(&frame(8, 449));
    port.rxsync().unwrap();
    assert_eq!(
        take_frames(&port, RingKind::HostRx),
        [frame(7, 448)],
        "what does not fit after the offset is dropped, as netmap_transmit drops it"
    );
    let (host_rx, host_tx) = (ring(&port, RingKind::HostRx), ring(&port, RingKind::HostTx));
    swap_into(&host_rx, 0, &host_tx, 0);
    host_tx.publish(1);
    host_rx.publish(1);
    port.txsync().unwrap();
    assert_eq!(port.device_mut().pop_to_host(), Some(frame(7, 448)));
    assert_buffers_conserved(&port);
}

#[test]
fn an_offset_that_leaves_no_room_for_a_frame_is_refused() {
    let open = |offset| {
        let config = EmulatedPortConfig {
            offset,
            ..config(8, 8, 256)
        };
        EmulatedPort::open(&config, MemoryDevice::new(256)).err()
    };
    assert!(open(192).is_none());
    let error = open(193).expect("refused").to_string();
    assert!(
        error.contains("packet offset 193; expected at most 192"),
        "{error}"
    );
}

#[test]
fn host_and_nic_rings_swap_both_ways() {
    let mut port = port(8, 256, 256);
    port.device_mut().push_from_wire(&frame(10, 64));
    port.device_mut().push_from_host(&frame(20, 64));
    port.rxsync().unwrap();
    let nic_rx = ring(&port, RingKind::NicRx);
    let host_rx = ring(&port, RingKind::HostRx);
    let nic_tx = ring(&port, RingKind::NicTx);
    let host_tx = ring(&port, RingKind::HostTx);
    assert_eq!((nic_rx.space(), host_rx.space()), (1, 1));
    // Wire -> host stack, host stack -> wire, both zero-copy.
    swap_into(&nic_rx, 0, &host_tx, 0);
    swap_into(&host_rx, 0, &nic_tx, 0);
    for ring in [&nic_rx, &host_rx, &nic_tx, &host_tx] {
        ring.publish(1);
    }
    port.txsync().unwrap();
    assert_eq!(port.device_mut().pop_to_wire(), Some(frame(20, 64)));
    assert_eq!(port.device_mut().pop_to_host(), Some(frame(10, 64)));
    assert_eq!((port.stats().host_up, port.stats().host_down), (1, 1));
    port.rxsync().unwrap();
    assert_buffers_conserved(&port);
}

// ---- host rings ---------------------------------------------------------

#[test]
fn host_tx_passes_frames_up_and_frees_the_slots_at_once() {
    let mut port = port(8, 256, 256);
    for seq in 0..9 {
        if !put_frame(&port, RingKind::HostTx, &frame(seq, 64)) {
            port.txsync().unwrap();
            assert!(put_frame(&port, RingKind::HostTx, &frame(seq, 64)));
        }
    }
    port.txsync().unwrap();
    let host_tx = ring(&port, RingKind::HostTx);
    assert_eq!(host_tx.tail(), port.krings[1].prev(host_tx.head()));
    let mut seqs = Vec::new();
    port.device_mut().drain_to_host(|f| seqs.push(seq_of(f)));
    assert_eq!(seqs, (0..9).collect::<Vec<_>>());
}

#[test]
fn host_tx_drops_runts_as_netmap_does() {
    let mut port = port(8, 256, 256);
    assert!(put_frame(&port, RingKind::HostTx, &frame(1, 13)));
    assert!(put_frame(&port, RingKind::HostTx, &frame(2, 14)));
    port.txsync().unwrap();
    assert_eq!(port.device_mut().pop_to_host(), Some(frame(2, 14)));
    assert_eq!(port.device_mut().pop_to_host(), None);
    assert_eq!(port.stats().dropped, 1);
    assert_eq!(ring(&port, RingKind::HostTx).space(), 7);
}

#[test]
fn host_rx_receives_what_the_host_stack_sent_up_to_a_buffer() {
    let mut port = port(8, 256, 256);
    port.device_mut().push_from_host(&frame(1, 256));
    port.device_mut().push_from_host(&frame(2, 257));
    port.device_mut().push_from_host(&frame(3, 40));
    port.rxsync().unwrap();
    assert_eq!(
        take_frames(&port, RingKind::HostRx),
        [frame(1, 256), frame(3, 40)],
        "netmap_transmit drops what does not fit a buffer"
    );
    assert_eq!(port.stats().dropped, 1);
}

// ---- what the prologue refuses -----------------------------------------

#[test]
fn a_tx_head_moved_outside_the_free_slots_is_refused_and_nothing_is_sent() {
    // A device that takes nothing: the three frames stay the kernel's, so
    // the user may move head only within 3..=7.
    let mut port = EmulatedPort::open(
        &config(8, 8, 256),
        MemoryDevice::new(256).with_tx_capacity(0),
    )
    .unwrap();
    for seq in 0..3 {
        put_frame(&port, RingKind::NicTx, &frame(seq, 64));
    }
    port.txsync().unwrap();
    let tx = ring(&port, RingKind::NicTx);
    assert_eq!((tx.head(), tx.tail()), (3, 7));
    tx.publish(1);
    port.txsync().unwrap();
    assert_eq!(port.stats().reinits, 1);
    assert_eq!(
        port.device().to_wire_len(),
        0,
        "nothing sent from a bad head"
    );
    // In range, so netmap_ring_reinit leaves head where the user put it;
    // put right, the ring syncs again without complaint.
    let tx = ring(&port, RingKind::NicTx);
    assert_eq!(tx.head(), 1);
    tx.publish(3);
    port.txsync().unwrap();
    assert_eq!(port.stats().reinits, 1);
}

#[test]
fn a_head_out_of_range_is_reset_to_where_the_kernel_is() {
    let mut port = port(8, 256, 256);
    port.device_mut().push_from_wire(&frame(1, 64));
    port.rxsync().unwrap();
    let rx = ring(&port, RingKind::NicRx);
    rx.publish(1000);
    port.rxsync().unwrap();
    let rx = ring(&port, RingKind::NicRx);
    assert_eq!((rx.head(), rx.cur(), rx.tail()), (0, 0, 1));
    assert_eq!(port.stats().reinits, 1);
    let tx = ring(&port, RingKind::NicTx);
    tx.set_cur(99);
    port.txsync().unwrap();
    let tx = ring(&port, RingKind::NicTx);
    assert_eq!((tx.head(), tx.cur(), tx.tail()), (0, 0, 7));
    assert_eq!(take_frames(&port, RingKind::NicRx), [frame(1, 64)]);
}

#[test]
fn a_tail_written_by_the_user_is_put_back() {
    let mut port = port(8, 256, 256);
    let tx = ring(&port, RingKind::NicTx);
    tx.set_tail(3);
    port.txsync().unwrap();
    assert_eq!(ring(&port, RingKind::NicTx).tail(), 7);
}

#[test]
fn bad_buffer_indices_are_never_dereferenced() {
    let mut port = port(8, 256, 256);
    let outside = port.region().buf_count() + 5;
    let tx = ring(&port, RingKind::NicTx);
    for (i, buf_idx) in [(0, outside), (1, 1), (2, u32::MAX)] {
        tx.set_slot(
            i,
            netmap_slot {
                buf_idx,
                len: 64,
                flags: NS_BUF_CHANGED,
                ptr: 0,
            },
        );
    }
    tx.publish(3);
    port.txsync().unwrap();
    assert_eq!(port.device().to_wire_len(), 0);
    assert_eq!(port.stats().bad_buffers, 3);
    assert_eq!(port.stats().dropped, 3);
    // A bad index swapped into an RX slot: the RX sync reinitialises the
    // ring, zeroing it, and imports nothing.
    port.device_mut().push_from_wire(&frame(1, 64));
    let rx = ring(&port, RingKind::NicRx);
    rx.set_slot(
        0,
        netmap_slot {
            buf_idx: outside,
            ..rx.slot(0)
        },
    );
    port.rxsync().unwrap();
    let rx = ring(&port, RingKind::NicRx);
    assert_eq!(rx.slot(0).buf_idx, 0);
    assert_eq!(rx.tail(), 0);
    assert_eq!(port.stats().reinits, 1);
    // The view refuses the index as well.
    // SAFETY: no other slice of any buffer is alive.
    assert!(unsafe { port.region().buffer_mut(outside) }.is_none());
    // SAFETY: as above.
    assert!(unsafe { rx.slot_bytes(0) }.is_some_and(<[u8]>::is_empty));
}

// ---- conservation -------------------------------------------------------

/// Where the user sends frame `seq` from the NIC RX ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Wire,
    Host,
    Drop,
}

fn route(seq: u32, slots: usize) -> Route {
    match seq % 11 {
        // The host TX ring passes each slot up as a frame: chains go to
        // the wire or nowhere.
        0..=1 if slots == 1 => Route::Host,
        2 => Route::Drop,
        _ => Route::Wire,
    }
}

/// Length of wire frame `seq`: mostly one slot, every 16th over two or three.
fn wire_len(seq: u32) -> usize {
    if seq % 16 == 5 {
        300 + (seq as usize % 400)
    } else {
        60 + (seq as usize % 180)
    }
}

/// One batch of the user's forwarding loop, netmap `bridge.c` style: the
/// NIC RX ring's frames moved by swap to NIC TX or host TX (or released),
/// the host RX ring's frames moved to NIC TX; bounded by the free slots, each
/// ring's `head` published once.
fn forward<D: Device>(port: &EmulatedPort<D>, drops: &mut u64) {
    let nic_rx = ring(port, RingKind::NicRx);
    let host_rx = ring(port, RingKind::HostRx);
    let nic_tx = ring(port, RingKind::NicTx);
    let host_tx = ring(port, RingKind::HostTx);
    let (mut rx_at, mut wire_at, mut host_at) = (nic_rx.head(), nic_tx.head(), host_tx.head());
    let (mut wire_free, mut host_free) = (nic_tx.space() as usize, host_tx.space() as usize);
    let rx_tail = nic_rx.tail();
    while rx_at != rx_tail {
        // The chain starting at rx_at.
        let mut slots = 1;
        let mut last = rx_at;
        while nic_rx.slot(last).flags & NS_MOREFRAG != 0 {
            last = nic_rx.next(last);
            slots += 1;
        }
        // SAFETY: the slot is ours (between head and tail); the slice ends here.
        let seq = seq_of(unsafe { nic_rx.slot_bytes(rx_at) }.unwrap());
        match route(seq, slots) {
            Route::Wire if wire_free >= slots => {
                for _ in 0..slots {
                    swap_into(&nic_rx, rx_at, &nic_tx, wire_at);
                    rx_at = nic_rx.next(rx_at);
                    wire_at = nic_tx.next(wire_at);
                }
                wire_free -= slots;
            }
            Route::Host if host_free >= 1 => {
                swap_into(&nic_rx, rx_at, &host_tx, host_at);
                rx_at = nic_rx.next(rx_at);
                host_at = host_tx.next(host_at);
                host_free -= 1;
            }
            Route::Drop => {
                rx_at = nic_rx.next(last);
                *drops += 1;
            }
            // Backpressure: the frame waits for TX space.
            _ => break,
        }
    }
    let mut host_rx_at = host_rx.head();
    while host_rx_at != host_rx.tail() && wire_free > 0 {
        swap_into(&host_rx, host_rx_at, &nic_tx, wire_at);
        host_rx_at = host_rx.next(host_rx_at);
        wire_at = nic_tx.next(wire_at);
        wire_free -= 1;
    }
    nic_rx.publish(rx_at);
    host_rx.publish(host_rx_at);
    nic_tx.publish(wire_at);
    host_tx.publish(host_at);
}

/// Marks `seq` seen in `seen`, failing on a second sighting.
fn see(seen: &mut [u8], seq: u32, what: &str) {
    let slot = &mut seen[seq as usize];
    assert_eq!(*slot, 0, "{what} frame {seq} delivered twice");
    *slot = 1;
}

#[test]
fn every_buffer_index_is_conserved_after_ten_million_frames() {
    const FRAMES: u32 = 10_000_000;
    /// Host-stack frames are numbered from here up.
    const HOST_BASE: u32 = 1 << 28;
    let mut port = EmulatedPort::open(
        &config(256, 64, 256),
        // A device that fills up now and then: backpressure on the way.
        MemoryDevice::new(700).with_tx_capacity(100),
    )
    .unwrap();
    let mut seen_wire = vec![0u8; FRAMES as usize];
    let mut seen_host = vec![0u8; FRAMES as usize / 8 + 1];
    let (mut sent, mut host_sent) = (0u32, 0u32);
    let (mut to_wire, mut to_host, mut host_to_wire, mut drops) = (0u64, 0u64, 0u64, 0u64);
    let mut rounds = 0u64;
    let mut last_wire_seq = None;
    let mut last_host_seq = None;
    loop {
        // The wire and the host stack keep the device fed.
        while sent < FRAMES && port.device().wire_pending() < 400 {
            port.device_mut()
                .push_from_wire(&frame(sent, wire_len(sent)));
            if sent % 8 == 3 {
                port.device_mut()
                    .push_from_host(&frame(HOST_BASE + host_sent, 64));
                host_sent += 1;
            }
            sent += 1;
        }
        port.rxsync().unwrap();
        forward(&port, &mut drops);
        port.txsync().unwrap();
        let device = port.device_mut();
        device.drain_to_wire(|f| {
            let seq = seq_of(f);
            if seq >= HOST_BASE {
                let n = seq - HOST_BASE;
                assert_eq!(f, frame(seq, 64).as_slice());
                see(&mut seen_host, n, "host");
                host_to_wire += 1;
            } else {
                assert_eq!(f.len(), wire_len(seq), "frame {seq} joined whole");
                assert_eq!(
                    *f.last().unwrap(),
                    *frame(seq, wire_len(seq)).last().unwrap()
                );
                assert!(last_wire_seq < Some(seq), "wire order kept");
                last_wire_seq = Some(seq);
                see(&mut seen_wire, seq, "wire");
                to_wire += 1;
            }
        });
        device.drain_to_host(|f| {
            let seq = seq_of(f);
            assert_eq!(route(seq, 1), Route::Host);
            assert!(last_host_seq < Some(seq), "host order kept");
            last_host_seq = Some(seq);
            see(&mut seen_wire, seq, "host-bound");
            to_host += 1;
        });
        rounds += 1;
        if rounds.is_multiple_of(64) {
            assert_buffers_conserved(&port);
        }
        let idle = port.device().wire_pending() == 0
            && port.device().host_pending() == 0
            && ring(&port, RingKind::NicRx).space() == 0
            && ring(&port, RingKind::HostRx).space() == 0
            && !netmap_sys::nm_tx_pending(
                256,
                ring(&port, RingKind::NicTx).head(),
                ring(&port, RingKind::NicTx).tail(),
            );
        if sent == FRAMES && idle {
            break;
        }
    }
    assert_buffers_conserved(&port);
    assert_eq!(
        to_wire + to_host + drops,
        u64::from(FRAMES),
        "every wire frame sent, passed up or dropped by the user"
    );
    assert_eq!(host_to_wire, u64::from(host_sent));
    assert_eq!(port.stats().dropped, 0);
    assert_eq!(port.stats().reinits, 0);
    assert!(
        port.stats().tx_device_full > 0,
        "backpressure was exercised"
    );
    assert!(to_host > 0 && drops > 0);
}

// ---- the view refuses a region the kernel laid out wrong ----------------

/// Lays out an 8-slot, 256-byte-buffer region, lets `edit` corrupt it,
/// and hands the view's verdict on it to `check`.
fn with_corrupted_region(
    edit: impl FnOnce(&mut [u8], &Layout),
    check: impl FnOnce(Result<NetmapRegion, RegionError>),
) {
    let layout = Layout::new("emu0", 8, 8, 256, 0).unwrap();
    let mapping = Mapping::anonymous(layout.len).unwrap();
    {
        // SAFETY: the fresh mapping is ours alone; the slice ends before
        // the view is built.
        let bytes =
            unsafe { std::slice::from_raw_parts_mut(mapping.base().as_ptr(), mapping.len()) };
        layout.write(bytes);
        edit(bytes, &layout);
    }
    // SAFETY: the mapping outlives the view, which `check` consumes.
    check(unsafe { NetmapRegion::new(mapping.base(), mapping.len(), 0) });
}

fn poke<T: Copy>(bytes: &mut [u8], offset: usize, value: T) {
    let target = &mut bytes[offset..offset + size_of::<T>()];
    // SAFETY: `target` is exactly size_of::<T>() bytes; unaligned write of
    // plain data.
    unsafe { target.as_mut_ptr().cast::<T>().write_unaligned(value) };
}

fn refused(edit: impl FnOnce(&mut [u8], &Layout)) -> RegionError {
    let mut error = None;
    with_corrupted_region(edit, |result| error = result.err());
    error.expect("the view refuses the region")
}

const RING_OFS: usize = offset_of!(netmap_if, ring_ofs);

#[test]
fn the_view_accepts_the_emulated_layout() {
    with_corrupted_region(
        |_, _| {},
        |result| {
            let region = result.unwrap();
            assert_eq!(region.buf_size(), 256);
            // Every buffer that fits between the pool's start and the
            // region's (page-rounded) end is addressable: at least the 2
            // reserved ones and one per slot.
            assert!(region.buf_count() >= 2 + 4 * 8);
            assert_eq!(
                region.buf_count() as usize,
                (region.len() - region.pool_start()) / 256
            );
            assert!(region.ring(RingKind::HostRx, 0).is_some());
            assert!(
                region.ring(RingKind::HostRx, 1).is_none(),
                "no second host ring"
            );
        },
    );
}

#[test]
fn an_unbound_ring_has_offset_zero_and_no_view() {
    with_corrupted_region(
        |bytes, _| poke(bytes, RING_OFS + 8, 0isize),
        |result| {
            let region = result.unwrap();
            assert!(region.ring(RingKind::HostTx, 0).is_none());
            assert!(region.ring(RingKind::NicTx, 0).is_some());
        },
    );
}

#[test]
fn ring_offsets_outside_the_region_or_misaligned_are_refused() {
    for bad in [isize::MAX, -128, 1 << 40, 64, 129] {
        let error = refused(|bytes, _| poke(bytes, RING_OFS, bad));
        assert!(
            matches!(
                error,
                RegionError::RingOutOfRange {
                    kind: RingKind::NicTx,
                    ..
                }
            ),
            "{bad}: {error}"
        );
    }
    // A ring whose slots would run past the region's end.
    let error = refused(|bytes, layout| {
        poke(
            bytes,
            layout.ring_offsets[3] + offset_of!(netmap_ring, num_slots),
            u32::MAX,
        );
    });
    assert!(matches!(
        error,
        RegionError::RingOutOfRange {
            kind: RingKind::HostRx,
            ..
        }
    ));
    let error = refused(|bytes, layout| {
        poke(
            bytes,
            layout.ring_offsets[2] + offset_of!(netmap_ring, num_slots),
            0u32,
        );
    });
    assert_eq!(
        error,
        RegionError::NoSlots {
            kind: RingKind::NicRx,
            index: 0
        }
    );
}

#[test]
fn rings_must_share_one_buffer_pool_inside_the_region() {
    let buf_ofs = offset_of!(netmap_ring, buf_ofs);
    let error = refused(|bytes, layout| poke(bytes, layout.ring_offsets[1] + buf_ofs, i64::MAX));
    assert!(matches!(
        error,
        RegionError::BufferPool {
            kind: RingKind::HostTx,
            ..
        }
    ));
    let error = refused(|bytes, layout| {
        let elsewhere = (layout.pool_start + 256) as i64 - layout.ring_offsets[1] as i64;
        poke(bytes, layout.ring_offsets[1] + buf_ofs, elsewhere);
    });
    assert!(matches!(
        error,
        RegionError::BufferPool {
            kind: RingKind::HostTx,
            ..
        }
    ));
    let error = refused(|bytes, layout| {
        poke(
            bytes,
            layout.ring_offsets[2] + offset_of!(netmap_ring, nr_buf_size),
            512u32,
        );
    });
    assert!(matches!(error, RegionError::BufferSize { size: 512, .. }));
    // A pool that starts over the rings, moved there consistently.
    let error = refused(|bytes, layout| {
        for &ring in &layout.ring_offsets {
            poke(bytes, ring + buf_ofs, 128 - ring as i64);
        }
    });
    assert!(matches!(
        error,
        RegionError::BuffersOverlapRings {
            pool_start: 128,
            ..
        }
    ));
}

#[test]
fn ring_counts_beyond_the_region_are_refused() {
    let error = refused(|bytes, _| poke(bytes, offset_of!(netmap_if, ni_rx_rings), u32::MAX));
    assert!(matches!(error, RegionError::TooManyRings { .. }), "{error}");
    let layout = Layout::new("emu0", 8, 8, 256, 0).unwrap();
    let mapping = Mapping::anonymous(layout.len).unwrap();
    // SAFETY: the mapping outlives the view.
    let error = unsafe { NetmapRegion::new(mapping.base(), mapping.len(), mapping.len() - 8) };
    assert!(matches!(
        error,
        Err(RegionError::InterfaceOutOfRange { .. })
    ));
    // SAFETY: as above.
    let error = unsafe { NetmapRegion::new(mapping.base(), mapping.len(), 4) };
    assert!(matches!(
        error,
        Err(RegionError::InterfaceOutOfRange { .. })
    ));
}

// ---- on a live interface ------------------------------------------------

/// The local experimental `EtherType`: no stack answers these frames.
#[cfg(target_os = "linux")]
const TEST_ETHERTYPE: [u8; 2] = [0x88, 0xb5];

/// An Ethernet frame of the test `EtherType` carrying `seq`.
#[cfg(target_os = "linux")]
fn ethernet_frame(seq: u32) -> Vec<u8> {
    let mut bytes = vec![0x02, 0, 0, 0, 0, 0xbb, 0x02, 0, 0, 0, 0, 0xaa];
    bytes.extend_from_slice(&TEST_ETHERTYPE);
    bytes.extend_from_slice(&frame(seq, 80));
    bytes
}

#[cfg(target_os = "linux")]
#[test]
fn the_af_packet_device_carries_frames_between_the_rings_and_a_live_interface() {
    use std::time::Instant;

    use crate::io::af_packet::AfPacketConfig;

    ::host::skip_unless!(
        ::host::capability::Need::Root,
        ::host::capability::Need::Netns
    );
    // A fresh network namespace of this thread alone: its loopback sends
    // back what is sent on it, a wire whose far end is this port.
    std::thread::spawn(|| {
        // SAFETY: unshare has no memory-safety preconditions; it changes
        // only this thread's network namespace.
        assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNET) }, 0);
        let up = std::process::Command::new("ip")
            .args(["link", "set", "lo", "up"])
            .status()
            .unwrap();
        assert!(up.success());
        let device = AfPacketDevice::open(&AfPacketConfig::new("lo")).unwrap();
        let mut port = EmulatedPort::open(&EmulatedPortConfig::new("lo"), device).unwrap();
        for seq in 0..50 {
            assert!(put_frame(&port, RingKind::NicTx, &ethernet_frame(seq)));
        }
        port.txsync().unwrap();
        assert_eq!(port.stats().tx_frames, 50);
        let mut got = Vec::new();
        let started = Instant::now();
        while got.len() < 50 && started.elapsed() < Duration::from_secs(10) {
            port.poll(Duration::from_millis(10)).unwrap();
            got.extend(
                take_frames(&port, RingKind::NicRx)
                    .into_iter()
                    .filter(|f| f[12..14] == TEST_ETHERTYPE),
            );
        }
        let seqs: Vec<u32> = got.iter().map(|f| seq_of(&f[14..])).collect();
        assert_eq!(
            seqs,
            (0..50).collect::<Vec<_>>(),
            "each frame once, in order"
        );
        assert!(got
            .iter()
            .zip(0..)
            .all(|(f, seq)| *f == ethernet_frame(seq)));
        // The host rings: what goes up is left to the kernel's own copy,
        // and nothing comes down.
        assert!(put_frame(&port, RingKind::HostTx, &ethernet_frame(99)));
        port.txsync().unwrap();
        port.rxsync().unwrap();
        assert_eq!(port.device().stats().left_to_kernel, 1);
        assert_eq!(ring(&port, RingKind::HostRx).space(), 0);
        assert_buffers_conserved(&port);
    })
    .join()
    .unwrap();
}

// ---- a port of several ring pairs, one registration per worker ----------

/// A two-pair layout viewed through the interfaces of `bindings`.
fn two_pair_view(bindings: &[Binding]) -> Result<ServedRings, String> {
    let layout = Layout::with_rings("emu0", 2, 8, 8, 256, 0).unwrap();
    let mapping = Mapping::anonymous(layout.len).unwrap();
    {
        // SAFETY: the fresh mapping is ours alone; the slice ends before
        // the view is built.
        let bytes =
            unsafe { std::slice::from_raw_parts_mut(mapping.base().as_ptr(), mapping.len()) };
        layout.write(bytes);
    }
    let offsets: Vec<usize> = bindings.iter().map(|&b| layout.interface(b)).collect();
    // SAFETY: the mapping outlives the view, which ends in this function.
    let region = unsafe { NetmapRegion::with_interfaces(mapping.base(), mapping.len(), &offsets) }
        .map_err(|e| e.to_string())?;
    ServedRings::of(&region).map_err(|e| e.to_string())
}

#[test]
fn a_one_nic_and_a_one_sw_registration_serve_one_ring_pair_each() {
    use Binding::{All, OneHost, OneNic};
    assert_eq!(
        two_pair_view(&[OneNic(1), OneHost(1)]),
        Ok(ServedRings {
            nic_rx: 1,
            nic_tx: 1,
            host_rx: 1,
            host_tx: 1
        })
    );
    assert_eq!(
        two_pair_view(&[OneNic(0), OneHost(0)]).map(|r| r.nic_rx),
        Ok(0)
    );
    let every = two_pair_view(&[All]).unwrap_err();
    assert!(every.contains("binds 2 NIC RX rings"), "{every}");
    assert!(every.contains("NR_REG_ONE_NIC"), "{every}");
    let no_host = two_pair_view(&[OneNic(1)]).unwrap_err();
    assert!(no_host.contains("no host RX ring"), "{no_host}");
    assert!(no_host.contains("NR_REG_ONE_SW"), "{no_host}");
    let two_nic = two_pair_view(&[OneNic(0), OneNic(1), OneHost(0)]).unwrap_err();
    assert!(two_nic.contains("binds 2"), "{two_nic}");
}

#[test]
fn registrations_of_one_port_share_its_buffers_and_bind_disjoint_rings() {
    let config = config(8, 8, 256);
    let ports = EmulatedPort::open_rings(&config, (0..3).map(|_| MemoryDevice::new(256)).collect())
        .unwrap();
    let mut seen = Vec::new();
    for (i, port) in (0u32..).zip(&ports) {
        assert_eq!(port.ring_pair(), i);
        assert_eq!(port.region().ring_counts().of(RingKind::HostRx), 3);
        for kind in RingKind::ALL {
            for other in 0..3 {
                assert_eq!(
                    port.region().ring(kind, other).is_some(),
                    other == i,
                    "port {i} binds {kind} ring {other} only if it is its own"
                );
            }
        }
        assert_buffers_conserved(port);
        seen.extend(port.slot_buffers());
    }
    seen.sort_unstable();
    assert_eq!(
        seen,
        (2..ports[0].pool_buffers()).collect::<Vec<_>>(),
        "every buffer of the pool in exactly one registration's slots"
    );
    let error = EmulatedPort::open_rings(&config, Vec::<MemoryDevice>::new()).unwrap_err();
    assert!(error.to_string().contains("expected 1 to 256"), "{error}");
}

#[test]
fn interfaces_of_different_ports_cannot_share_a_view() {
    use Binding::{All, OneNic};
    let layout = Layout::with_rings("emu0", 2, 8, 8, 256, 0).unwrap();
    let mapping = Mapping::anonymous(layout.len).unwrap();
    let other = layout.interface(OneNic(0));
    {
        // SAFETY: the fresh mapping is ours alone; the slice ends before
        // the view is built.
        let bytes =
            unsafe { std::slice::from_raw_parts_mut(mapping.base().as_ptr(), mapping.len()) };
        layout.write(bytes);
        // The second interface counts one NIC RX ring: another port's.
        poke(bytes, other + offset_of!(netmap_if, ni_rx_rings), 1u32);
    }
    let offsets = [layout.interface(All), other];
    // SAFETY: the mapping outlives the view.
    let error = unsafe { NetmapRegion::with_interfaces(mapping.base(), mapping.len(), &offsets) }
        .unwrap_err();
    assert_eq!(error, RegionError::InterfacesDiffer { offset: other });
    // SAFETY: as above.
    let none = unsafe { NetmapRegion::with_interfaces(mapping.base(), mapping.len(), &[]) };
    assert_eq!(none.unwrap_err(), RegionError::NoInterface);
}
