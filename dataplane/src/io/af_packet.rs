//! `AfPacketIo`: Linux packet sockets with mmap'd RX and TX rings, the first
//! live [`PacketIo`] backend (the testbed's link emulator runs on it, the
//! balancer can).
//!
//! # Why `TPACKET_V2`
//!
//! `TPACKET_V3` packs RX frames into large blocks that the kernel hands over
//! whole, either full or when a retire timer (in milliseconds, default about
//! 8 ms) fires. That amortises wake-ups for capture, but for a forwarder it
//! means (a) a frame can sit in a half-filled block for up to the timer, so
//! `wait` could not promise to wake within a millisecond of a frame, and (b)
//! a block goes back to the kernel only when every frame in it is done, which
//! ties ring space to the slowest frame. V3's TX ring is per frame anyway.
//! `TPACKET_V2` gives per-frame slots on both rings with the same header,
//! which is exactly netmap's slot model: a batch is "the run of slots the
//! kernel has marked ours", and each slot is returned on its own. We batch
//! ourselves (one pass over the ready slots, one `sendto` per batch), which
//! is where V3's saving would come from.
//!
//! # Slot layout and headroom
//!
//! Each slot starts with a `tpacket2_hdr` (32 bytes), then the kernel's
//! `sockaddr_ll`, then `PACKET_RESERVE` bytes, then the frame. The
//! [`Frame`] handed to the pipeline spans the slot from byte 32 to its end, so
//! the `sockaddr_ll` (which we never read) and the reserve become headroom:
//! with `headroom = H` we ask for `PACKET_RESERVE = H - 34`, and an untagged
//! Ethernet frame lands exactly `H` bytes into the view. Encapsulation grows
//! into it in place. A VLAN tag the kernel stripped is written back first
//! (see `vlan.rs`), costing 4 bytes of that headroom.
//!
//! # Verdicts
//!
//! - `ToWire`: copied into a free TX slot. The RX and TX rings of a packet socket are
//!   separate memory with separate ownership words, so there is no netmap-style
//!   buffer swap: one copy per forwarded frame is the floor. One `sendto`
//!   (non-blocking) per batch hands all new TX slots to the kernel;
//!   `PACKET_QDISC_BYPASS` sends them straight to the driver.
//! - `ToHost`: nothing to do. A packet socket sees a *copy* of what the
//!   kernel receives; the kernel's own stack already has the frame, so in
//!   passthrough the "to host" verdict costs nothing. (For the same reason
//!   the kernel would answer traffic meant for the balancer unless it is told
//!   not to: with `AF_PACKET`, the host must not own the balancer's addresses.)
//! - `Drop` and `Held`: nothing either; the slot goes back to the kernel.
//! - Host-to-wire passthrough is done by the kernel itself, so
//!   `host_to_wire` is always 0.
//!
//! Frames longer than a slot (`tp_snaplen < tp_len`: GSO super-frames on a
//! veth with offloads on, jumbo frames) are not shown to the pipeline: they
//! would be forwarded cut short. They count as `to_host` (the kernel has
//! them) and in [`AfPacketStats::truncated`].
//!
//! Frames a local stack sent with checksum offload (through a veth, or from
//! a guest over virtio-net) may arrive with their TCP or UDP checksum
//! unfinished (`TP_STATUS_CSUMNOTREADY`): the ring fills it in before the
//! pipeline sees the frame ([`partial_checksum::complete`], counted in
//! [`AfPacketStats::checksums_completed`]), since a forwarded or
//! encapsulated frame would otherwise reach its backend with a bad checksum.
//!
//! A batch is bounded by the frames ready and by the free TX slots, so a full
//! TX ring leaves frames in the RX ring (backpressure), as in netmap.
//!
//! # Sharing an interface
//!
//! [`AfPacketConfig::fanout`] joins a `PACKET_FANOUT_HASH` group: the kernel
//! spreads frames over the group's sockets by flow hash, so each worker sees
//! whole flows. `PACKET_IGNORE_OUTGOING` keeps a socket from receiving what is
//! sent on the interface (its own transmissions included).

mod error;
mod ring;
mod socket;
mod vlan;

use std::io;
use std::time::Duration;

pub use error::{AfPacketConfigError, AfPacketError};

use arrayvec::ArrayVec;

use self::ring::{Mapping, Ring};
use self::socket::PacketSocket;
use super::{BatchCounts, FrameHandler, PacketIo, CHUNK};
use crate::frame::Frame;
use crate::verdict::Verdict;
use crate::wire::partial_checksum;

/// Where a frame view starts in a slot: right after the aligned
/// `tpacket2_hdr`, which is also where TX frames are read from by the kernel
/// (`TPACKET2_HDRLEN - sizeof(sockaddr_ll)`).
pub const SLOT_DATA_START: usize = 32;
const _: () = assert!(libc::TPACKET2_HDRLEN - size_of::<libc::sockaddr_ll>() == SLOT_DATA_START);
/// Bytes the kernel always puts between our view's start and an Ethernet
/// frame when `PACKET_RESERVE` is 0: the rest of `TPACKET2_HDRLEN` plus the
/// 14-byte MAC header rounded so the network header is 16-aligned.
const MIN_HEADROOM: u32 = 34;
/// Smallest and largest accepted `frame_size`.
pub const MIN_FRAME_SIZE: u32 = 2048;
pub const MAX_FRAME_SIZE: u32 = 65536;
/// Largest accepted `ring_frames`.
pub const MAX_RING_FRAMES: u32 = 1 << 18;
/// Longest untagged Ethernet frame at the standard MTU.
const MAX_ETHERNET_FRAME: u32 = 1514;

/// How to open an [`AfPacketIo`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AfPacketConfig {
    /// The interface, in the network namespace of the opening thread.
    pub interface: String,
    /// Slots in each of the RX and TX rings; a power of two.
    pub ring_frames: u32,
    /// Bytes per slot, header included; a power of two from 2048 to 65536.
    pub frame_size: u32,
    /// Bytes free in front of each received (untagged Ethernet) frame; values
    /// under 34 give 34, the kernel's minimum.
    pub headroom: u32,
    /// Join the `PACKET_FANOUT_HASH` group with this id (per network namespace).
    pub fanout: Option<u16>,
    /// Send with `PACKET_QDISC_BYPASS` (straight to the driver, no qdisc).
    pub qdisc_bypass: bool,
    /// Set `PACKET_IGNORE_OUTGOING`: do not receive frames sent on the interface.
    pub ignore_outgoing: bool,
    /// `EtherType` to receive, host order (`ETH_P_ALL`, 3, for everything).
    pub protocol: u16,
}

impl AfPacketConfig {
    /// Everything on `interface`: 1024-slot rings of 2048-byte slots, 128
    /// bytes of headroom, no fanout, qdisc bypass and outgoing frames ignored.
    pub fn new(interface: impl Into<String>) -> Self {
        Self {
            interface: interface.into(),
            ring_frames: 1024,
            frame_size: 2048,
            headroom: 128,
            fanout: None,
            qdisc_bypass: true,
            ignore_outgoing: true,
            protocol: libc::ETH_P_ALL as u16,
        }
    }

    /// Checks the configuration against the kernel's rules, given its page size.
    pub fn validate(&self, page_size: u32) -> Result<(), AfPacketConfigError> {
        let name = &self.interface;
        if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains('\0') {
            return Err(AfPacketConfigError::InterfaceName(name.clone()));
        }
        let frame_size = self.frame_size;
        if !frame_size.is_power_of_two() || !(MIN_FRAME_SIZE..=MAX_FRAME_SIZE).contains(&frame_size)
        {
            return Err(AfPacketConfigError::FrameSize(frame_size));
        }
        let min = frames_per_block(frame_size, page_size);
        let ring_frames = self.ring_frames;
        if !ring_frames.is_power_of_two() || ring_frames < min || ring_frames > MAX_RING_FRAMES {
            return Err(AfPacketConfigError::RingFrames { ring_frames, min });
        }
        let needed = SLOT_DATA_START as u64 + u64::from(self.headroom.max(MIN_HEADROOM));
        if needed + u64::from(MAX_ETHERNET_FRAME) > u64::from(frame_size) {
            return Err(AfPacketConfigError::HeadroomTooLarge {
                headroom: self.headroom,
                frame_size,
            });
        }
        Ok(())
    }

    /// The `tpacket_req` for one ring.
    fn ring_request(&self, page_size: u32) -> libc::tpacket_req {
        let block_size = self.frame_size.max(page_size);
        libc::tpacket_req {
            tp_block_size: block_size,
            tp_block_nr: self.ring_frames / frames_per_block(self.frame_size, page_size),
            tp_frame_size: self.frame_size,
            tp_frame_nr: self.ring_frames,
        }
    }
}

/// Slots in one memory block: blocks are a page, or one slot when slots are
/// larger, so slots are contiguous across blocks.
fn frames_per_block(frame_size: u32, page_size: u32) -> u32 {
    (page_size / frame_size).max(1)
}

fn page_size() -> u32 {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u32::try_from(size).unwrap_or(4096)
}

/// Counters of one socket since it was opened.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AfPacketStats {
    /// Frames the kernel queued to this socket (`PACKET_STATISTICS`).
    pub kernel_received: u64,
    /// Frames the kernel dropped because the RX ring was full.
    pub ring_full_drops: u64,
    /// Frames longer than a slot, left to the kernel (see the module docs).
    pub truncated: u64,
    /// `sendto` kicks that failed transiently (full device queue, interface
    /// down); their frames stay queued for the next kick.
    pub send_errors: u64,
    /// Frames received with their transport checksum left to offload
    /// (`TP_STATUS_CSUMNOTREADY`) whose checksum was filled in.
    pub checksums_completed: u64,
}

/// A packet socket with RX and TX rings on one interface. See the module docs.
#[derive(Debug)]
pub struct AfPacketIo {
    /// Held for its drop, which unmaps the rings. Declared (and so dropped)
    /// before `socket`: unmap, then close.
    _mapping: Mapping,
    socket: PacketSocket,
    rx: Ring,
    tx: Ring,
    /// Free-running position of the next RX slot to look at.
    rx_pos: u32,
    /// Free-running position of the next TX slot to fill.
    tx_pos: u32,
    /// TX slots from `tx_pos` already seen `AVAILABLE`: they stay ours until
    /// we fill them, so each slot's status is read once per use rather than
    /// once per batch that might use it.
    tx_known_free: u32,
    /// TX slots were marked `SEND_REQUEST` since the last successful kick.
    tx_pending: bool,
    ring_frames: u32,
    frame_size: u32,
    stats: AfPacketStats,
}

// SAFETY: the mapping and the socket are owned by this value alone; the raw
// pointers in `Ring` point into the mapping and are only used through
// `&mut self` (or `&self` reads of slots we own). Moving the owner to another
// thread (a worker) moves all of it.
unsafe impl Send for AfPacketIo {}

impl AfPacketIo {
    /// Opens a socket on `config.interface` (in the calling thread's network
    /// namespace), maps its rings and binds it.
    pub fn open(config: &AfPacketConfig) -> Result<Self, AfPacketError> {
        let page_size = page_size();
        config.validate(page_size)?;
        let interface = config.interface.as_str();
        let ifindex = socket::interface_index(interface)?;
        let socket = PacketSocket::open(interface)?;
        socket.set(
            &socket::PACKET_VERSION,
            &(libc::tpacket_versions::TPACKET_V2 as libc::c_int),
        )?;
        let reserve: libc::c_uint = config.headroom.saturating_sub(MIN_HEADROOM);
        socket.set(&socket::PACKET_RESERVE, &reserve)?;
        // A malformed TX frame is skipped instead of stopping the ring.
        socket.set(&socket::PACKET_LOSS, &(1 as libc::c_int))?;
        if config.qdisc_bypass {
            socket.set(&socket::PACKET_QDISC_BYPASS, &(1 as libc::c_int))?;
        }
        let request = config.ring_request(page_size);
        socket.set(&socket::PACKET_RX_RING, &request)?;
        socket.set(&socket::PACKET_TX_RING, &request)?;
        let ring_bytes = config.ring_frames as usize * config.frame_size as usize;
        let mapping = Mapping::new(socket.fd(), 2 * ring_bytes)
            .map_err(|e| socket.error("mmap(PACKET_RX_RING + PACKET_TX_RING)", e))?;
        if config.ignore_outgoing {
            socket.set(&socket::PACKET_IGNORE_OUTGOING, &(1 as libc::c_int))?;
        }
        socket.bind(ifindex, config.protocol)?;
        if let Some(group) = config.fanout {
            // The mode (a small constant) goes in the upper 16 bits, the group id in the lower.
            let mode = libc::c_int::from(group)
                | (libc::c_int::from(libc::PACKET_FANOUT_HASH as u16) << 16);
            socket.set(&socket::PACKET_FANOUT, &mode)?;
        }
        let frame_size = config.frame_size as usize;
        let base = mapping.base();
        // SAFETY: the kernel maps the RX ring first and the TX ring right after
        // it, each `ring_frames * frame_size` bytes; both live in `mapping`,
        // which `Self` owns and drops last among the users of these pointers.
        // `ring_frames` is a power of two and `frame_size` a power of two of
        // at least 2048 (validated above).
        let (rx, tx) = unsafe {
            let tx_base = base.add(ring_bytes);
            (
                Ring::new(base, config.ring_frames, frame_size),
                Ring::new(tx_base, config.ring_frames, frame_size),
            )
        };
        Ok(Self {
            _mapping: mapping,
            socket,
            rx,
            tx,
            rx_pos: 0,
            tx_pos: 0,
            tx_known_free: 0,
            tx_pending: false,
            ring_frames: config.ring_frames,
            frame_size: config.frame_size,
            stats: AfPacketStats::default(),
        })
    }

    /// The interface this socket is bound to.
    pub fn interface(&self) -> &str {
        self.socket.interface()
    }

    /// Counters since the socket was opened (reads the kernel's).
    pub fn stats(&mut self) -> io::Result<AfPacketStats> {
        let (received, dropped) = self.socket.take_statistics()?;
        self.stats.kernel_received += u64::from(received);
        self.stats.ring_full_drops += u64::from(dropped);
        Ok(self.stats)
    }

    /// The longest frame a TX slot holds.
    pub fn max_tx_frame(&self) -> usize {
        self.frame_size as usize - SLOT_DATA_START
    }

    /// Hands every TX slot filled since the last kick to the kernel. Called at
    /// the end of each batch and before waiting; call it after
    /// [`transmit_copy`](PacketIo::transmit_copy) when no batch follows.
    pub fn flush(&mut self) -> io::Result<()> {
        if !self.tx_pending {
            return Ok(());
        }
        let Err(error) = self.socket.kick() else {
            self.tx_pending = false;
            return Ok(());
        };
        if let Some(libc::EBADF | libc::ENOTSOCK | libc::EFAULT | libc::EINVAL) =
            error.raw_os_error()
        {
            return Err(self.socket.error("sendto(TX ring kick)", error).into());
        }
        // Transient (queue full, interface down): the frames that were not
        // sent stay marked, the next kick retries them.
        self.stats.send_errors += 1;
        Ok(())
    }

    /// Ready RX slots from `rx_pos`, at most `limit`.
    fn rx_ready(&self, limit: u32) -> u32 {
        (0..limit)
            .find(|&i| self.rx.status(self.rx_pos.wrapping_add(i)) & libc::TP_STATUS_USER == 0)
            .unwrap_or(limit)
    }

    /// Free TX slots from `tx_pos`, at most `limit`: the run already known
    /// free, extended by reading the statuses after it.
    fn tx_free(&mut self, limit: u32) -> u32 {
        while self.tx_known_free < limit {
            let pos = self.tx_pos.wrapping_add(self.tx_known_free);
            if self.tx.status(pos) != libc::TP_STATUS_AVAILABLE {
                break;
            }
            self.tx_known_free += 1;
        }
        self.tx_known_free.min(limit)
    }

    /// Checks the RX slot at `pos` (ours) and writes back a stripped VLAN tag.
    /// Returns the frame's `(head, len)` in the view from `SLOT_DATA_START`,
    /// or `None` when the frame is not for the pipeline (cut short). The
    /// result is stored in the slot's own header (`tp_mac`, `tp_snaplen`, 0
    /// for "not for the pipeline"), which is ours until the slot is returned,
    /// so the decide pass reads it back without a side table.
    fn normalize_rx(&mut self, pos: u32) -> Option<(usize, usize)> {
        let header = self.rx.rx_header(pos);
        let mac = header.mac as usize;
        let snaplen = header.snaplen as usize;
        let in_slot = mac >= SLOT_DATA_START && mac + snaplen <= self.frame_size as usize;
        let view = if header.snaplen < header.len || !in_slot {
            self.stats.truncated += 1;
            None
        } else if header.status & libc::TP_STATUS_VLAN_VALID != 0 {
            let tpid = if header.status & libc::TP_STATUS_VLAN_TPID_VALID != 0 {
                header.vlan_tpid
            } else {
                0x8100
            };
            // SAFETY: the slot is ours (status USER) until released at the end
            // of the batch; no other view of it is alive.
            let buf = unsafe { self.rx.slot_bytes(pos, SLOT_DATA_START) };
            vlan::reinsert_tag(buf, mac - SLOT_DATA_START, snaplen, tpid, header.vlan_tci)
        } else {
            Some((mac - SLOT_DATA_START, snaplen))
        };
        if let Some((head, len)) = view {
            if header.status & libc::TP_STATUS_CSUMNOTREADY != 0 {
                // SAFETY: as above; the VLAN view, if any, has ended.
                let buf = unsafe { self.rx.slot_bytes(pos, SLOT_DATA_START) };
                // Sent with offload from this machine or a neighbouring
                // guest: the transport checksum holds only the pseudo-header
                // sum, which no device would finish once we forward it.
                if partial_checksum::complete(&mut buf[head..head + len]) {
                    self.stats.checksums_completed += 1;
                }
            }
        }
        let (mac, snaplen) = view.map_or((0, 0), |(head, len)| {
            ((head + SLOT_DATA_START) as u16, len as u32)
        });
        self.rx.set_rx_view(pos, mac, snaplen);
        view
    }

    /// Copies `bytes` into the TX slot at `pos` (ours) and marks it for sending.
    /// The caller has checked that `bytes` fits a slot.
    fn fill_tx(tx: &mut Ring, pos: u32, bytes: &[u8]) {
        // SAFETY: the slot is ours (status AVAILABLE, checked by the caller);
        // no other view of it is alive.
        let slot = unsafe { tx.slot_bytes(pos, SLOT_DATA_START) };
        slot[..bytes.len()].copy_from_slice(bytes);
        tx.set_tx_len(pos, bytes.len() as u32);
        tx.set_status(pos, libc::TP_STATUS_SEND_REQUEST);
    }
}

/// The packet socket, so that a thread serving several sockets (the
/// testbed's link emulator) can wait on all of them at once with `poll`.
impl std::os::fd::AsRawFd for AfPacketIo {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.socket.fd()
    }
}

impl PacketIo for AfPacketIo {
    /// Takes at most `budget` frames from the RX ring (bounded also by the
    /// free TX slots), hands them to `handler.decide_all` ([`CHUNK`] at a
    /// time) to be decided in place, and copies `ToWire` frames to the TX
    /// ring; returns the RX slots and kicks the TX ring once at the end.
    fn run_batch<H: FrameHandler>(
        &mut self,
        budget: usize,
        mut handler: H,
    ) -> io::Result<BatchCounts> {
        let limit = budget.min(self.ring_frames as usize) as u32;
        let ready = self.rx_ready(limit);
        let n = self.tx_free(ready);
        let mut counts = BatchCounts {
            from_wire: n as usize,
            ..BatchCounts::default()
        };
        let start = self.rx_pos;
        for i in 0..n {
            self.normalize_rx(start.wrapping_add(i));
        }
        let mut tx_cur = self.tx_pos;
        let mut verdicts = [Verdict::ToHost; CHUNK];
        for first in (0..n).step_by(CHUNK) {
            let mut frames = ArrayVec::<Frame<'_>, CHUNK>::new();
            for i in first..n.min(first + CHUNK as u32) {
                let pos = start.wrapping_add(i);
                let header = self.rx.rx_header(pos);
                // A frame `normalize_rx` refused stays with the kernel's copy.
                if header.mac == 0 {
                    counts.to_host += 1;
                    continue;
                }
                // SAFETY: the slot is ours until released below, and the
                // batch's slots are distinct: no other view of this one is
                // alive. The views end with the chunk.
                let view = unsafe { self.rx.slot_bytes(pos, SLOT_DATA_START) };
                frames.push(Frame::new(
                    view,
                    header.mac as usize - SLOT_DATA_START,
                    header.snaplen as usize,
                ));
            }
            handler.decide_all(&mut frames, &mut verdicts);
            for (frame, verdict) in frames.iter().zip(verdicts) {
                match verdict {
                    Verdict::ToWire => {
                        // The RX view and a TX slot have the same capacity, so
                        // whatever the pipeline grew the frame to fits.
                        Self::fill_tx(&mut self.tx, tx_cur, frame.data());
                        tx_cur = tx_cur.wrapping_add(1);
                        counts.to_wire += 1;
                    }
                    Verdict::ToHost => counts.to_host += 1,
                    Verdict::Drop(_) => counts.dropped += 1,
                    Verdict::Held => counts.held += 1,
                }
            }
        }
        for i in 0..n {
            self.rx
                .set_status(start.wrapping_add(i), libc::TP_STATUS_KERNEL);
        }
        self.rx_pos = start.wrapping_add(n);
        self.tx_known_free -= tx_cur.wrapping_sub(self.tx_pos);
        self.tx_pos = tx_cur;
        if counts.to_wire > 0 {
            self.tx_pending = true;
        }
        self.flush()?;
        Ok(counts)
    }

    /// Copies `bytes` into the next TX slot; the frame leaves at the next
    /// batch's kick, the next `wait`, or [`AfPacketIo::flush`].
    fn transmit_copy(&mut self, bytes: &[u8]) -> io::Result<bool> {
        if bytes.len() > self.max_tx_frame() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "AF_PACKET on {}: frame of {} bytes does not fit a TX slot of {} bytes",
                    self.interface(),
                    bytes.len(),
                    self.max_tx_frame()
                ),
            ));
        }
        if self.tx_free(1) == 0 {
            return Ok(false);
        }
        Self::fill_tx(&mut self.tx, self.tx_pos, bytes);
        self.tx_pos = self.tx_pos.wrapping_add(1);
        self.tx_known_free -= 1;
        self.tx_pending = true;
        Ok(true)
    }

    /// Kicks pending TX, then returns at once if a frame is ready, else
    /// `ppoll`s the socket: the kernel wakes it as soon as it fills an RX slot.
    fn wait(&mut self, timeout: Duration) -> io::Result<()> {
        self.flush()?;
        if self.rx.status(self.rx_pos) & libc::TP_STATUS_USER != 0 {
            return Ok(());
        }
        self.socket.poll_readable(timeout)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
