//! `NetmapIo`: the [`PacketIo`] backend over a [`NetmapPort`], kernel or
//! emulated: one worker's, serving the one NIC ring pair and the one host
//! ring pair bound to its port ([`ServedRings`]; a port binding several of
//! a kind is refused with how to register one).
//!
//! One batch, as netmap's `bridge.c` runs one:
//!
//! 1. `rxsync`: the kernel takes back the RX slots the last batch released
//!    and fills free ones;
//! 2. the NIC RX ring's frames, bounded by the budget and by the free slots
//!    of **both** TX rings (a frame may go to either), are handed to the
//!    handler [`CHUNK`] at a time, each as a [`Frame`] over its own netmap
//!    buffer: no copy;
//! 3. each frame moves by its verdict: `ToWire` swaps its buffer into the
//!    NIC TX ring, `ToHost` into the host TX ring, `Drop` and `Held` leave
//!    it in its RX slot, released;
//! 4. the host RX ring's frames (what the host stack sent) swap into the
//!    NIC TX ring untouched, bounded by the budget and the TX space left;
//! 5. every ring's `head` is published once, and `txsync` hands the TX
//!    rings to the kernel (also when only earlier frames are still pending,
//!    so that a full TX ring is reclaimed).
//!
//! A full TX ring leaves frames in the RX ring for a later batch
//! (backpressure), never drops them.
//!
//! # Headroom without a copy
//!
//! VIP mode puts an outer IPv4 + GRE header in front of a frame, and a
//! netmap buffer has no room before byte 0. A port registered with
//! `NETMAP_REQ_OPT_OFFSETS` ([`NetmapPort::max_offset`] > 0) receives every
//! frame `max_offset` bytes into its buffer (each RX slot's `ptr` says
//! where), so the pipeline grows it into that room ([`Frame::push_front`])
//! and the TX slot's offset is set to where it now starts: the frame moves
//! by buffer swap alone, as in GRE mode. A port without the option, or a
//! start the NIC cannot send from (`buf_align`), falls back to growing into
//! the tailroom and moving the frame back to byte 0 before the swap (one
//! `memmove` of that frame, counted in [`NetmapIoStats::moved_to_start`]).
//!
//! # Frames in several slots
//!
//! A frame spanning several slots (`NS_MOREFRAG`) is dropped whole and
//! counted in [`NetmapIoStats::chains_dropped`] (and in `dropped`); a
//! chain whose last slot has not arrived ends the batch before it and is
//! taken whole at a later one, so a chain is never torn. Chains arrive only
//! where a received frame does not fit one slot: the interface's MTU above
//! what the driver puts in one buffer on a driver with `NS_MOREFRAG`
//! support (netmap refuses to register any other driver whose MTU exceeds
//! its buffers: `netmap_buf_size_validate`), or a driver that sizes its
//! receive buffers in 1 KiB steps after a packet offset (why headroom is
//! given up where a full frame would not fit; see `kernel.rs`). They cannot
//! be delivered whole anywhere: the pipeline reads contiguous frames, and
//! netmap's host TX ring passes each slot up as a frame of its own
//! (`netmap_grab_packets` does not follow `NS_MOREFRAG`), while its host RX
//! side drops a frame longer than a buffer (`netmap_transmit`), so the
//! host stack could only receive the pieces. Keep the MTU within
//! `dev.netmap.buf_size` (minus the headroom) and none arrive.

use std::io;
use std::time::Duration;

use arrayvec::ArrayVec;
use netmap_sys::{nm_tx_pending, NS_MOREFRAG};

use super::region::{swap_into, NetmapRegion, RingKind, RingView};
use super::served_rings::ServedRings;
use super::NetmapPort;
use crate::frame::Frame;
use crate::io::{BatchCounts, FrameHandler, PacketIo, CHUNK};
use crate::verdict::Verdict;

/// What the backend did that [`BatchCounts`] does not show.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct NetmapIoStats {
    /// Frames spanning several slots, dropped (counted in `dropped` too).
    pub chains_dropped: u64,
    /// Frames whose slot held a buffer index outside the region, dropped.
    pub bad_buffers: u64,
    /// Frames moved back to the start of their buffer before being sent
    /// (no offsets, or a start the NIC cannot send from).
    pub moved_to_start: u64,
}

/// The rings a batch uses: the one of each kind the worker serves.
struct Rings<'r> {
    nic_rx: RingView<'r>,
    nic_tx: RingView<'r>,
    host_rx: RingView<'r>,
    host_tx: RingView<'r>,
}

impl<'r> Rings<'r> {
    fn of(region: &'r NetmapRegion, served: ServedRings) -> Option<Self> {
        let ring = |kind| region.ring(kind, served.index(kind));
        Some(Self {
            nic_rx: ring(RingKind::NicRx)?,
            nic_tx: ring(RingKind::NicTx)?,
            host_rx: ring(RingKind::HostRx)?,
            host_tx: ring(RingKind::HostTx)?,
        })
    }
}

/// A [`PacketIo`] over a netmap port. See the module docs.
#[derive(Debug)]
pub struct NetmapIo<P: NetmapPort> {
    port: P,
    /// The rings of the port this worker serves.
    served: ServedRings,
    /// Frames were queued to a TX ring since the last `txsync`.
    tx_queued: bool,
    /// The port's room in front of each frame (see the module docs).
    max_offset: usize,
    stats: NetmapIoStats,
}

impl<P: NetmapPort> NetmapIo<P> {
    /// The backend over `port`, which must bind one NIC ring pair and one
    /// host ring pair (see [`ServedRings`]).
    pub fn new(port: P) -> io::Result<Self> {
        let served = ServedRings::of(port.region())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        Ok(Self {
            max_offset: port.max_offset(),
            port,
            served,
            tx_queued: false,
            stats: NetmapIoStats::default(),
        })
    }

    /// The rings this backend serves.
    pub fn served(&self) -> ServedRings {
        self.served
    }

    /// The port.
    pub fn port(&self) -> &P {
        &self.port
    }

    /// The port (tests drive an emulated port's device through it).
    pub fn port_mut(&mut self) -> &mut P {
        &mut self.port
    }

    /// What the backend did that batch counts do not show.
    pub fn stats(&self) -> NetmapIoStats {
        self.stats
    }

    /// Whether a `txsync` is due: frames were queued, or the kernel still
    /// holds TX slots it may have finished with.
    fn txsync_due(&self) -> bool {
        self.tx_queued
            || Rings::of(self.port.region(), self.served).is_some_and(|rings| {
                [&rings.nic_tx, &rings.host_tx]
                    .into_iter()
                    .any(|tx| nm_tx_pending(tx.num_slots(), tx.head(), tx.tail()))
            })
    }
}

/// Decides and moves at most `budget` frames from NIC RX.
fn wire_batch<H: FrameHandler>(
    rings: &Rings<'_>,
    max_offset: usize,
    budget: usize,
    mut handler: H,
    stats: &mut NetmapIoStats,
) -> BatchCounts {
    let Rings {
        nic_rx: rx,
        nic_tx: wire,
        host_tx: host,
        ..
    } = rings;
    let region = rx.region();
    let mut counts = BatchCounts::default();
    let mut left = budget.min(wire.space() as usize).min(host.space() as usize);
    // Private cursors, published once below.
    let (mut rx_cur, rx_tail) = (rx.head(), rx.tail());
    let mut wire_cur = wire.head();
    let mut host_cur = host.head();
    let mut verdicts = [Verdict::ToHost; CHUNK];
    let mut incomplete_chain = false;
    while left > 0 && rx_cur != rx_tail && !incomplete_chain {
        let mut positions = [0u32; CHUNK];
        let mut good = [false; CHUNK];
        let mut frames = ArrayVec::<Frame<'_>, CHUNK>::new();
        while frames.len() < CHUNK && left > frames.len() && rx_cur != rx_tail {
            let slot = rx.slot(rx_cur);
            if slot.flags & NS_MOREFRAG != 0 {
                let Some(end) = chain_end(rx, rx_cur, rx_tail) else {
                    // Its last slot has not arrived: the batch stops before it.
                    incomplete_chain = true;
                    break;
                };
                rx_cur = end;
                left -= 1;
                counts.from_wire += 1;
                counts.dropped += 1;
                stats.chains_dropped += 1;
                continue;
            }
            let k = frames.len();
            positions[k] = rx_cur;
            // The kernel crops offsets to the port's largest; a frame that
            // would run past its buffer is a bad slot, dropped below.
            let offset = rx.slot_offset(rx_cur).min(max_offset);
            let len = usize::from(slot.len);
            // SAFETY: slots head..tail of the RX ring are ours until `head`
            // is published; each holds its own buffer (netmap gives every
            // buffer to one slot, and this backend only swaps, which keeps
            // it so), so the frames of a chunk never share a buffer. They
            // end with the chunk, before any slot is touched again.
            match unsafe { region.buffer_mut(slot.buf_idx) } {
                Some(buf) if offset.checked_add(len).is_some_and(|end| end <= buf.len()) => {
                    good[k] = true;
                    frames.push(Frame::new(buf, offset, len));
                }
                _ => frames.push(Frame::whole(&mut [])),
            }
            rx_cur = rx.next(rx_cur);
        }
        let n = frames.len();
        if n == 0 {
            continue;
        }
        handler.decide_all(&mut frames, &mut verdicts);
        // Where each frame sits now; the frames (and their borrows of the
        // buffers) end here.
        let mut placed = [(0usize, 0usize); CHUNK];
        for (place, frame) in placed.iter_mut().zip(&frames) {
            *place = (frame.head(), frame.len());
        }
        drop(frames);
        for k in 0..n {
            let at = positions[k];
            let (head, len) = placed[k];
            let destination = match verdicts[k] {
                Verdict::ToWire => Some((wire, &mut wire_cur)),
                Verdict::ToHost => Some((host, &mut host_cur)),
                Verdict::Drop(_) => {
                    counts.dropped += 1;
                    None
                }
                Verdict::Held => {
                    counts.held += 1;
                    None
                }
            };
            let Some((tx, tx_cur)) = destination else {
                continue;
            };
            let Ok(len16) = u16::try_from(len) else {
                counts.dropped += 1;
                continue;
            };
            if !good[k] {
                stats.bad_buffers += 1;
                counts.dropped += 1;
                continue;
            }
            let slot = rx.slot(at);
            rx.set_len_flags(at, len16, slot.flags);
            // The chunk's frames have ended: the slot's buffer has no other
            // view.
            if move_to_tx(rx, at, tx, *tx_cur, head, max_offset) {
                stats.moved_to_start += 1;
            }
            *tx_cur = tx.next(*tx_cur);
            if tx.kind() == RingKind::NicTx {
                counts.to_wire += 1;
            } else {
                counts.to_host += 1;
            }
        }
        counts.from_wire += n;
        left -= n;
    }
    rx.publish(rx_cur);
    wire.publish(wire_cur);
    host.publish(host_cur);
    counts
}

/// Moves the frame of RX slot `at`, whose `len` bytes start at `head` of
/// its buffer, into TX slot `tx_at` by buffer swap, with the TX slot's
/// offset where it is sent from ([`tx_start`]); returns whether the frame
/// had to be moved within its buffer first. The RX slot must be ours
/// (between `head` and `tail`) with no other view of its buffer alive.
fn move_to_tx(
    rx: &RingView<'_>,
    at: u32,
    tx: &RingView<'_>,
    tx_at: u32,
    head: usize,
    max_offset: usize,
) -> bool {
    let start = tx_start(head, max_offset, tx.buf_align());
    let mut moved = false;
    if start != head {
        let len = usize::from(rx.slot(at).len);
        // SAFETY: the caller's promise: the slot is ours and this is the
        // only view of its buffer.
        if let Some(buf) = unsafe { rx.slot_buffer_mut(at) } {
            if let Some(end) = head.checked_add(len).filter(|&end| end <= buf.len()) {
                buf.copy_within(head..end, start);
                moved = true;
            }
        }
    }
    swap_into(rx, at, tx, tx_at);
    tx.set_slot_offset(tx_at, start);
    moved
}

/// Where a frame now at `head` is sent from: where it is, when the port's
/// offsets reach it and the NIC can send from there, else byte 0 (the
/// frame is moved).
fn tx_start(head: usize, max_offset: usize, buf_align: u64) -> usize {
    let align = usize::try_from(buf_align).unwrap_or(usize::MAX).max(1);
    if head <= max_offset && head.is_multiple_of(align) {
        head
    } else {
        0
    }
}

/// The position after the `NS_MOREFRAG` chain starting at `from`, or
/// `None` when its last slot is not before `tail` yet.
fn chain_end(rx: &RingView<'_>, from: u32, tail: u32) -> Option<u32> {
    let mut at = from;
    while at != tail {
        let flags = rx.slot(at).flags;
        at = rx.next(at);
        if flags & NS_MOREFRAG == 0 {
            return Some(at);
        }
    }
    None
}

/// Moves at most `budget` frames from host RX to NIC TX untouched (moved
/// within its buffer only where the NIC cannot send from its offset).
fn host_passthrough(rings: &Rings<'_>, max_offset: usize, budget: usize) -> usize {
    let Rings {
        host_rx: rx,
        nic_tx: tx,
        ..
    } = rings;
    let n = budget.min(rx.space() as usize).min(tx.space() as usize);
    let (mut rx_cur, mut tx_cur) = (rx.head(), tx.head());
    for _ in 0..n {
        let offset = rx.slot_offset(rx_cur).min(max_offset);
        move_to_tx(rx, rx_cur, tx, tx_cur, offset, max_offset);
        rx_cur = rx.next(rx_cur);
        tx_cur = tx.next(tx_cur);
    }
    rx.publish(rx_cur);
    tx.publish(tx_cur);
    n
}

impl<P: NetmapPort> PacketIo for NetmapIo<P> {
    fn run_batch<H: FrameHandler>(&mut self, budget: usize, handler: H) -> io::Result<BatchCounts> {
        self.port.rxsync()?;
        let counts = {
            let Some(rings) = Rings::of(self.port.region(), self.served) else {
                return Ok(BatchCounts::default());
            };
            let mut counts = wire_batch(&rings, self.max_offset, budget, handler, &mut self.stats);
            counts.host_to_wire = host_passthrough(&rings, self.max_offset, budget);
            counts
        };
        if counts.to_wire + counts.to_host + counts.host_to_wire > 0 {
            self.tx_queued = true;
        }
        if self.txsync_due() {
            self.tx_queued = false;
            self.port.txsync()?;
        }
        Ok(counts)
    }

    /// Copies `bytes` into the next free NIC TX slot; the frame leaves at
    /// the next batch's `txsync` or the next `wait`.
    fn transmit_copy(&mut self, bytes: &[u8]) -> io::Result<bool> {
        let region = self.port.region();
        let Some(tx) = region.ring(RingKind::NicTx, self.served.nic_tx) else {
            return Ok(false);
        };
        let buf_size = region.buf_size() as usize;
        let Ok(len) = u16::try_from(bytes.len()) else {
            return Err(too_long(bytes.len(), buf_size));
        };
        if bytes.len() > buf_size {
            return Err(too_long(bytes.len(), buf_size));
        }
        if tx.space() == 0 {
            return Ok(false);
        }
        let at = tx.head();
        // SAFETY: slot `head` of a TX ring with space is ours; no other
        // view of its buffer is alive.
        let Some(buf) = (unsafe { tx.slot_buffer_mut(at) }) else {
            self.stats.bad_buffers += 1;
            return Ok(false);
        };
        buf[..bytes.len()].copy_from_slice(bytes);
        tx.set_len_flags(at, len, 0);
        tx.set_slot_offset(at, 0);
        tx.publish(tx.next(at));
        self.tx_queued = true;
        Ok(true)
    }

    /// `poll`: pushes pending TX and waits for frames on either RX ring.
    fn wait(&mut self, timeout: Duration) -> io::Result<()> {
        self.tx_queued = false;
        self.port.poll(timeout)
    }
}

fn too_long(len: usize, buf_size: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("frame of {len} bytes does not fit a {buf_size}-byte netmap buffer"),
    )
}

#[cfg(test)]
mod tests;
