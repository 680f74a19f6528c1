//! The host rings' syncs, as `netmap.c` performs them for every adapter,
//! native or emulated (`netmap_txsync_to_host`, `netmap_rxsync_from_host`):
//! they do not touch the driver, only the host stack's queues.
//!
//! - Host TX: every released slot's frame is passed up to the stack
//!   (`netmap_send_up`), and the slots are free again at once.
//! - Host RX: frames the stack sent on the interface (intercepted by
//!   `netmap_transmit`, which drops those longer than a buffer) are copied
//!   into free slots; one slot before `hwcur` stays empty.
//!
//! `NS_FORWARD` (transparent mode) is not emulated: the rings are never
//! marked `NR_FORWARD`.

use std::io;

use netmap_sys::{nm_ring_space, NS_FORWARD};

use super::device::Device;
use super::kring::{Kring, FIRST_BUFFER};
use super::EmulatedStats;
use crate::io::netmap::region::RingView;

/// The shortest frame `netmap_grab_packets` passes up: an Ethernet header.
const MIN_FRAME: usize = 14;

/// Host TX sync: passes slots `hwcur..head` up to the host stack, skipping
/// runts and over-long lengths (as netmap does, `NS_MOREFRAG` is not
/// followed: each slot is a frame), then frees them all
/// (`hwtail = head - 1`).
pub(super) fn txsync<D: Device>(
    kring: &mut Kring,
    ring: &RingView<'_>,
    device: &mut D,
    stats: &mut EmulatedStats,
) -> io::Result<()> {
    let Some(head) = kring.txsync_prologue(ring) else {
        kring.reinit(ring);
        stats.reinits += 1;
        return Ok(());
    };
    let region = ring.region();
    let buf_size = region.buf_size() as usize;
    let mut result = Ok(());
    let mut i = kring.hwcur;
    while i != head {
        let slot = ring.slot(i);
        let len = usize::from(slot.len);
        let offset = kring.packet_offset(ring, i);
        let buffer = if slot.buf_idx < FIRST_BUFFER {
            None
        } else {
            // SAFETY: slots hwcur..head are the kernel's during this sync; no
            // user slice of their buffers is alive, and this is the only one.
            unsafe { region.buffer(slot.buf_idx) }
        };
        match buffer {
            None => {
                stats.bad_buffers += 1;
                stats.dropped += 1;
            }
            Some(_) if !(MIN_FRAME..=buf_size - offset).contains(&len) => stats.dropped += 1,
            Some(bytes) if result.is_ok() => {
                result = device.send_up(&bytes[offset..offset + len]);
                stats.host_up += 1;
            }
            Some(_) => {}
        }
        ring.set_len_flags(i, slot.len, slot.flags & !NS_FORWARD);
        i = ring.next(i);
    }
    kring.hwcur = head;
    kring.hwtail = kring.prev(head);
    kring.finalize(ring);
    result
}

/// Host RX sync: copies frames the host stack sent into free slots from
/// `hwtail`, then takes back the slots the user released.
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
    let region = ring.region();
    let buf_size = region.buf_size() as usize;
    let stop = kring.prev(kring.hwcur);
    let free = nm_ring_space(kring.num_slots, kring.hwtail, stop) as usize;
    let mut at = kring.hwtail;
    let max_offset = kring.max_offset;
    let kring_offset = |i| ring.slot_offset(i).min(max_offset);
    let received = device.host_transmitted(free, |frame| {
        // netmap_transmit drops what does not fit a buffer; the device may
        // hand over more than asked, which is dropped too.
        if at == stop || frame.len() > buf_size - kring_offset(at) {
            stats.dropped += 1;
            return;
        }
        let slot = ring.slot(at);
        let buffer = if slot.buf_idx < FIRST_BUFFER {
            None
        } else {
            // SAFETY: slots hwtail..hwcur-1 are the kernel's during this
            // sync; no user slice of their buffers is alive, and this is the
            // only one.
            unsafe { region.buffer_mut(slot.buf_idx) }
        };
        let Some(buffer) = buffer else {
            stats.bad_buffers += 1;
            stats.dropped += 1;
            return;
        };
        let offset = kring_offset(at);
        buffer[offset..offset + frame.len()].copy_from_slice(frame);
        ring.set_len_flags(at, frame.len() as u16, 0);
        at = ring.next(at);
        stats.host_down += 1;
    });
    kring.hwtail = at;
    kring.hwcur = head;
    kring.finalize(ring);
    received.map(drop)
}
