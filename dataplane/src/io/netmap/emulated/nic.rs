//! The NIC rings' syncs, as netmap's generic adapter performs them
//! (`generic_netmap_txsync`, `generic_netmap_rxsync` in
//! `netmap_generic.c`), with the device in the driver's place.

use std::io;

use netmap_sys::{nm_ring_space, NETMAP_MAX_FRAGS, NS_BUF_CHANGED, NS_MOREFRAG, NS_REPORT};

use super::device::Device;
use super::kring::{Kring, FIRST_BUFFER};
use super::EmulatedStats;
use crate::io::netmap::region::RingView;

/// TX sync: sends the frames in slots `hwcur..head`, gathering each
/// `NS_MOREFRAG` chain into one frame, until the device is full; then every
/// slot sent is free again (`hwtail = hwcur - 1`), as the device copied it.
///
/// A chain whose last slot is not yet released stays for the next sync. A
/// slot whose buffer index is bad (reserved or outside the pool) drops its
/// frame; netmap's generic adapter would send buffer 0's bytes instead.
pub(super) fn txsync<D: Device>(
    kring: &mut Kring,
    ring: &RingView<'_>,
    device: &mut D,
    scratch: &mut Vec<u8>,
    stats: &mut EmulatedStats,
) -> io::Result<()> {
    let Some(head) = kring.txsync_prologue(ring) else {
        kring.reinit(ring);
        stats.reinits += 1;
        return Ok(());
    };
    let region = ring.region();
    let buf_size = region.buf_size() as usize;
    let max_frame = NETMAP_MAX_FRAGS as usize * buf_size;
    let mut i = kring.hwcur;
    let mut result = Ok(());
    'frames: while i != head {
        scratch.clear();
        let mut intact = true;
        let mut end = i;
        loop {
            if end == head {
                // The chain's last slot is not released yet.
                break 'frames;
            }
            let at = end;
            let slot = ring.slot(at);
            end = ring.next(at);
            let buffer = if slot.buf_idx < FIRST_BUFFER {
                None
            } else {
                // SAFETY: slots hwcur..head are the kernel's during this
                // sync; no user slice of their buffers is alive (a sync
                // takes the port by `&mut`), and this is the only one.
                unsafe { region.buffer(slot.buf_idx) }
            };
            if let Some(bytes) = buffer {
                let offset = kring.packet_offset(ring, at);
                let len = usize::from(slot.len).min(buf_size - offset);
                if scratch.len() + len <= max_frame {
                    scratch.extend_from_slice(&bytes[offset..offset + len]);
                } else {
                    intact = false;
                }
            } else {
                intact = false;
                stats.bad_buffers += 1;
            }
            if slot.flags & NS_MOREFRAG == 0 {
                break;
            }
        }
        if intact {
            match device.transmit(scratch) {
                Ok(true) => stats.tx_frames += 1,
                Ok(false) => {
                    // The device is full: this frame and the rest wait.
                    stats.tx_device_full += 1;
                    break;
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        } else {
            stats.dropped += 1;
        }
        while i != end {
            let slot = ring.slot(i);
            ring.set_len_flags(i, slot.len, slot.flags & !(NS_REPORT | NS_BUF_CHANGED));
            i = ring.next(i);
        }
    }
    kring.hwcur = i;
    let flushed = device.flush();
    // The device copied every frame it accepted: their slots are free.
    kring.hwtail = kring.prev(kring.hwcur);
    kring.finalize(ring);
    result.and(flushed)
}

/// RX sync: takes back the slots the user released (`hwcur..head`,
/// clearing `NS_BUF_CHANGED`), then fills free slots from `hwtail` with
/// frames from the device, a frame longer than a buffer over several slots
/// chained with `NS_MOREFRAG`. One slot before `hwcur` stays empty.
///
/// A free slot with a bad buffer index (the user swapped one in) makes the
/// sync give up its new frames and reinitialise the ring, as netmap's
/// does.
pub(super) fn rxsync<D: Device>(
    kring: &mut Kring,
    ring: &RingView<'_>,
    device: &mut D,
    stats: &mut EmulatedStats,
) -> io::Result<()> {
    let Some(head) = kring.rxsync_prologue(ring) else {
        kring.reinit(ring);
        stats.reinits += 1;
        return Ok(());
    };
    let mut i = kring.hwcur;
    while i != head {
        let slot = ring.slot(i);
        ring.set_len_flags(i, slot.len, slot.flags & !NS_BUF_CHANGED);
        i = ring.next(i);
    }
    kring.hwcur = head;

    let region = ring.region();
    let buf_size = region.buf_size() as usize;
    let free = nm_ring_space(kring.num_slots, kring.hwtail, kring.prev(kring.hwcur)) as usize;
    // Every slot has at least this much room after its offset.
    let room = buf_size - kring.max_offset;
    let slots_per_frame = device.max_frame_len().div_ceil(room).max(1);
    let mut at = kring.hwtail;
    let mut used = 0;
    let mut bad = false;
    let mut filled = 0u64;
    let received = device.receive(free / slots_per_frame, |frame| {
        // Checked per frame, whatever the device promised: a frame that
        // would not fit the free slots is dropped, never written over the
        // user's.
        let needed = frame.len().div_ceil(room);
        if bad || needed == 0 || used + needed > free {
            stats.dropped += 1;
            return;
        }
        used += needed;
        let mut rest = frame;
        while !rest.is_empty() {
            let slot = ring.slot(at);
            let buffer = if slot.buf_idx < FIRST_BUFFER {
                None
            } else {
                // SAFETY: slots hwtail..hwcur-1 are the kernel's during this
                // sync; no user slice of their buffers is alive, and this is
                // the only one.
                unsafe { region.buffer_mut(slot.buf_idx) }
            };
            let Some(buffer) = buffer else {
                bad = true;
                stats.bad_buffers += 1;
                stats.dropped += 1;
                return;
            };
            let offset = kring.packet_offset(ring, at);
            let len = rest.len().min(buf_size - offset);
            buffer[offset..offset + len].copy_from_slice(&rest[..len]);
            rest = &rest[len..];
            let flags = if rest.is_empty() { 0 } else { NS_MOREFRAG };
            ring.set_len_flags(at, len as u16, flags);
            at = ring.next(at);
        }
        filled += 1;
    });
    if bad {
        // As netmap's generic rxsync: what this sync imported is lost, the
        // ring is reinitialised (the bad index zeroed) and not finalised.
        kring.reinit(ring);
        stats.reinits += 1;
        return received.map(drop);
    }
    kring.hwtail = at;
    stats.rx_frames += filled;
    kring.finalize(ring);
    received.map(drop)
}
