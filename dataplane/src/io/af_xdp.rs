//! `AfXdpIo`: XDP sockets, the balancer on the kernel's fastest path into
//! userspace where netmap is absent.
//!
//! # The two halves
//!
//! - [`XdpAttachment`] (one per interface): the steering program
//!   ([`program`]), its `XSKMAP` and its VIP sets ([`vips`]: changed
//!   while it runs), attached through a BPF link. The
//!   program sends to the balancer's sockets only what the pipeline handles
//!   (GRE to the balancer's address, packets to the VIPs, one 802.1Q tag)
//!   and passes everything else to the kernel, untouched and uncopied: ARP,
//!   SSH and the host's services never leave the kernel. A link (not the
//!   older netlink attach) is what the kernel removes when its last
//!   descriptor closes, so even `kill -9` leaves the interface as it was.
//! - [`AfXdpIo`] (one per receive queue, one per worker): an XDP socket
//!   bound to that queue, its UMEM of 2 KiB frames and its four rings (the
//!   ownership protocol of every frame is in `ring.rs`).
//!
//! # Verdicts
//!
//! - `ToWire`: the received frame's UMEM address goes to the TX ring as it
//!   is (no copy); its completion hands it back to the fill ring.
//! - `ToHost`: written to a tap device (`host_path.rs`: why not
//!   `AF_PACKET`) and the frame returned to the fill ring. The program's
//!   tests hold it to the pipeline's `ToHost`, so this path is for
//!   disagreements only, counted in [`AfXdpStats::to_host`].
//! - `Drop`, `Held`: the frame goes straight back to the fill ring.
//!
//! # Headroom
//!
//! In aligned mode the kernel receives a frame `XDP_PACKET_HEADROOM` (256)
//! bytes into its chunk; the whole chunk is handed to the pipeline, so VIP
//! mode's encapsulation grows into those 256 bytes in place, and the TX
//! descriptor simply points at the frame's new start.
//!
//! # Modes, logged at start
//!
//! The program is attached in the driver (`XDP_FLAGS_DRV_MODE`) when the
//! driver has an XDP hook, else generically (`XDP_FLAGS_SKB_MODE`, after
//! the skb is built: slower, still no copy to the kernel's own traffic).
//! The socket binds with `XDP_ZEROCOPY` where the driver offers it, else
//! `XDP_COPY`; both with `XDP_USE_NEED_WAKEUP`, so a busy worker makes no
//! system call to receive and one per batch to send only when the kernel
//! asks for it.
//!
//! # Why `libc`, not a crate
//!
//! `xdpilone` and `xdp` are pure Rust, but the balancer also needs what
//! they leave out (`bpf(2)` to load and link the program, `XSKMAP`
//! updates, `BPF_PROG_TEST_RUN`), `xdpilone` is EUPL (copyleft), and the
//! rings are a hundred lines that read like `af_packet/ring.rs`.

pub mod asm;
pub mod bpf;
mod error;
mod host_path;
pub mod loaded;
pub mod program;
mod ring;
mod socket;
mod umem;
pub mod vips;

use std::io;
use std::time::Duration;

use arrayvec::ArrayVec;

pub use error::AfXdpError;

use self::bpf::{Link, Program, XskMap, XDP_FLAGS_DRV_MODE, XDP_FLAGS_SKB_MODE};
use self::host_path::HostPath;
use self::loaded::LoadedSteering;
use self::program::{Steering, XDP_PASS};
use self::ring::Ring;
use self::socket::XskSocket;
use self::umem::Umem;
use self::vips::VipMaps;
use super::{BatchCounts, FrameHandler, PacketIo, CHUNK};
use crate::frame::Frame;
use crate::verdict::Verdict;

/// Bytes of a UMEM frame: a page holds two.
pub const FRAME_SIZE: u32 = 2048;
/// Where the kernel puts a received frame in its chunk (aligned mode).
pub const RX_HEADROOM: usize = 256;
/// Frames kept out of the fill ring for [`PacketIo::transmit_copy`].
const SPARE_FRAMES: usize = 64;

/// Where the program runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachMode {
    /// In the driver, before an skb exists.
    Native,
    /// Generic XDP, after the skb is built (every driver has it).
    Generic,
}

/// The steering program attached to one interface, with the map its
/// sockets join. Dropping it detaches the program.
#[derive(Debug)]
pub struct XdpAttachment {
    map: XskMap,
    /// The VIPs the program redirects; [`Self::vips`] hands out handles.
    vips: VipMaps,
    interface: String,
    ifindex: u32,
    mode: AttachMode,
    /// Why driver mode was not used, when it was not.
    native_refused: Option<io::Error>,
    _link: Link,
    _program: Program,
}

impl XdpAttachment {
    /// Loads the program for `steering` and attaches it to `interface` (in
    /// this thread's namespace), in driver mode where the driver allows,
    /// else generic; `only` forces one. The map has room for `queues`.
    pub fn attach(
        interface: &str,
        steering: &Steering,
        queues: u32,
        only: Option<AttachMode>,
    ) -> Result<Self, AfXdpError> {
        let ifindex = interface_index(interface)?;
        let LoadedSteering {
            xsks: map,
            vips,
            program,
        } = LoadedSteering::load(interface, steering, queues, XDP_PASS)?;
        let unsupported = || io::Error::from_raw_os_error(libc::EOPNOTSUPP);
        let native = if only == Some(AttachMode::Generic) {
            Err(unsupported())
        } else {
            program.attach(ifindex, XDP_FLAGS_DRV_MODE)
        };
        let (link, mode, native_refused) = match native {
            Ok(link) => (link, AttachMode::Native, None),
            Err(native) => {
                let generic = if only == Some(AttachMode::Native) {
                    Err(unsupported())
                } else {
                    program.attach(ifindex, XDP_FLAGS_SKB_MODE)
                };
                match generic {
                    Ok(link) => (link, AttachMode::Generic, Some(native)),
                    Err(generic) => {
                        return Err(AfXdpError::Attach {
                            interface: interface.to_owned(),
                            native,
                            generic,
                        })
                    }
                }
            }
        };
        Ok(Self {
            map,
            vips,
            interface: interface.to_owned(),
            ifindex,
            mode,
            native_refused,
            _link: link,
            _program: program,
        })
    }

    pub fn mode(&self) -> AttachMode {
        self.mode
    }

    /// Why the driver's hook was not used (generic mode), if it was not.
    pub fn native_refused(&self) -> Option<&io::Error> {
        self.native_refused.as_ref()
    }

    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// A handle on the program's VIP sets: VIPs added or removed through it
    /// are steered, or left to the kernel, from the next frame on, while
    /// the program stays attached. It outlives the attachment harmlessly
    /// (the sets then steer nothing).
    pub fn vips(&self) -> io::Result<VipMaps> {
        self.vips.try_clone()
    }
}

/// How to open an [`AfXdpIo`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AfXdpConfig {
    /// The receive queue this socket serves.
    pub queue: u32,
    /// Entries of the RX and TX rings; a power of two.
    pub ring_size: u32,
    /// UMEM frames (also the fill and completion rings' size); a power of
    /// two, at least twice `ring_size`.
    pub umem_frames: u32,
    /// Try `XDP_ZEROCOPY` first.
    pub zero_copy: bool,
    /// Create a tap device for `ToHost` frames (see `host_path.rs`).
    pub host_path: bool,
}

impl Default for AfXdpConfig {
    /// Queue 0, rings of 2048, 4096 frames (8 MiB), zero-copy tried, a host path.
    fn default() -> Self {
        Self {
            queue: 0,
            ring_size: 2048,
            umem_frames: 4096,
            zero_copy: true,
            host_path: true,
        }
    }
}

/// Counters of one socket since it was opened.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AfXdpStats {
    /// Frames the kernel dropped for want of RX ring room or fill frames
    /// (`XDP_STATISTICS`: `rx_dropped`, `rx_ring_full`, fill ring empty).
    pub kernel_dropped: u64,
    /// Descriptors the kernel refused (a bug if ever non-zero).
    pub invalid_descs: u64,
    /// Frames written to the host path.
    pub to_host: u64,
    /// `ToHost` frames that could not be handed to the host (no tap, or
    /// its queue full).
    pub to_host_lost: u64,
}

/// One XDP socket on one receive queue. See the module docs.
#[derive(Debug)]
pub struct AfXdpIo {
    // Dropped in this order: rings unmapped, tap closed, socket closed,
    // then the UMEM the socket had registered.
    fill: Ring<u64>,
    completion: Ring<u64>,
    rx: Ring<libc::xdp_desc>,
    tx: Ring<libc::xdp_desc>,
    host: Option<HostPath>,
    socket: XskSocket,
    umem: Umem,
    /// Frames ours and idle, for copies.
    spare: Vec<u64>,
    interface: String,
    zero_copy: bool,
    /// TX descriptors published but not yet seen consumed: kick until they are.
    tx_unsent: bool,
    stats: AfXdpStats,
}

// SAFETY: the rings, the socket and the UMEM are owned by this value alone;
// the raw pointers in the rings and the UMEM point into mappings it owns and
// are used only through `&mut self`. Moving it to a worker moves all of it.
unsafe impl Send for AfXdpIo {}

impl AfXdpIo {
    /// Opens a socket on queue `config.queue` of the attachment's interface
    /// (in this thread's namespace) and joins the program's map.
    pub fn open(attachment: &XdpAttachment, config: &AfXdpConfig) -> Result<Self, AfXdpError> {
        let interface = attachment.interface.as_str();
        let fail = |call| move |e| AfXdpError::call(interface, call, e);
        let fail2 = |(call, e)| AfXdpError::call(interface, call, e);
        let ring_size = config.ring_size;
        let frames = config.umem_frames;
        if !ring_size.is_power_of_two() || !frames.is_power_of_two() || frames < 2 * ring_size {
            return Err(AfXdpError::call(
                interface,
                "ring sizes",
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "ring_size {ring_size} and umem_frames {frames}: expected powers of \
                         two with umem_frames >= 2 * ring_size"
                    ),
                ),
            ));
        }
        let socket = XskSocket::open().map_err(fail2)?;
        let umem = Umem::new(frames, FRAME_SIZE).map_err(fail("mmap(UMEM)"))?;
        socket
            .set(
                libc::XDP_UMEM_REG,
                "setsockopt(XDP_UMEM_REG)",
                &umem.registration(),
            )
            .map_err(fail2)?;
        socket
            .set(
                libc::XDP_UMEM_FILL_RING,
                "setsockopt(XDP_UMEM_FILL_RING)",
                &frames,
            )
            .map_err(fail2)?;
        socket
            .set(
                libc::XDP_UMEM_COMPLETION_RING,
                "setsockopt(XDP_UMEM_COMPLETION_RING)",
                &frames,
            )
            .map_err(fail2)?;
        socket
            .set(libc::XDP_RX_RING, "setsockopt(XDP_RX_RING)", &ring_size)
            .map_err(fail2)?;
        socket
            .set(libc::XDP_TX_RING, "setsockopt(XDP_TX_RING)", &ring_size)
            .map_err(fail2)?;
        let offsets: libc::xdp_mmap_offsets = socket
            .get(libc::XDP_MMAP_OFFSETS, "getsockopt(XDP_MMAP_OFFSETS)")
            .map_err(fail2)?;
        let fd = socket.fd();
        let mut fill = Ring::map(fd, libc::XDP_UMEM_PGOFF_FILL_RING, frames, &offsets.fr)
            .map_err(fail("mmap(fill ring)"))?;
        let completion = Ring::map(
            fd,
            libc::XDP_UMEM_PGOFF_COMPLETION_RING,
            frames,
            &offsets.cr,
        )
        .map_err(fail("mmap(completion ring)"))?;
        let rx = Ring::map(fd, libc::XDP_PGOFF_RX_RING as u64, ring_size, &offsets.rx)
            .map_err(fail("mmap(RX ring)"))?;
        let tx = Ring::map(fd, libc::XDP_PGOFF_TX_RING as u64, ring_size, &offsets.tx)
            .map_err(fail("mmap(TX ring)"))?;
        // Every frame but the spares goes to the fill ring before binding,
        // so the first frames find room.
        let spare: Vec<u64> = (0..SPARE_FRAMES as u64)
            .map(|i| i * u64::from(FRAME_SIZE))
            .collect();
        let to_fill = frames - SPARE_FRAMES as u32;
        let room = fill.free(to_fill);
        for i in 0..room {
            fill.put(
                i,
                u64::from(SPARE_FRAMES as u32 + i) * u64::from(FRAME_SIZE),
            );
        }
        fill.submit(room);
        let wakeup = libc::XDP_USE_NEED_WAKEUP;
        let ifindex = attachment.ifindex;
        let zero_copy = config.zero_copy
            && socket
                .bind(ifindex, config.queue, libc::XDP_ZEROCOPY | wakeup)
                .is_ok();
        if !zero_copy {
            socket
                .bind(ifindex, config.queue, libc::XDP_COPY | wakeup)
                .map_err(fail("bind(sockaddr_xdp)"))?;
        }
        attachment
            .map
            .insert(config.queue, fd)
            .map_err(fail("bpf(BPF_MAP_UPDATE_ELEM, XSKMAP)"))?;
        let host = if config.host_path {
            let name = format!("rrx{}q{}", ifindex, config.queue);
            interface_mac(interface)
                .and_then(|mac| HostPath::open(&name, mac))
                .ok()
        } else {
            None
        };
        Ok(Self {
            fill,
            completion,
            rx,
            tx,
            host,
            socket,
            umem,
            spare,
            interface: interface.to_owned(),
            zero_copy,
            tx_unsent: false,
            stats: AfXdpStats::default(),
        })
    }

    /// The interface this socket's queue belongs to.
    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// True when bound with `XDP_ZEROCOPY`, false in copy mode.
    pub fn is_zero_copy(&self) -> bool {
        self.zero_copy
    }

    /// The tap device `ToHost` frames go to, if it could be made.
    pub fn host_path(&self) -> Option<&str> {
        self.host.as_ref().map(HostPath::name)
    }

    /// Counters since the socket was opened (reads the kernel's).
    pub fn stats(&mut self) -> io::Result<AfXdpStats> {
        let kernel: libc::xdp_statistics = self
            .socket
            .get(libc::XDP_STATISTICS, "getsockopt(XDP_STATISTICS)")
            .map_err(|(call, e)| io::Error::from(AfXdpError::call(&self.interface, call, e)))?;
        self.stats.kernel_dropped =
            kernel.rx_dropped + kernel.rx_ring_full + kernel.rx_fill_ring_empty_descs;
        self.stats.invalid_descs = kernel.rx_invalid_descs + kernel.tx_invalid_descs;
        Ok(self.stats)
    }

    /// Frames the kernel has finished sending go back to the spares (up to
    /// their number) or to the fill ring.
    fn reclaim_completions(&mut self) {
        let done = self.completion.ready(u32::MAX);
        if done == 0 {
            return;
        }
        let room = self.fill.free(done);
        let mut filled = 0;
        for i in 0..done {
            let chunk = self.umem.chunk_of(self.completion.get(i));
            if self.spare.len() < SPARE_FRAMES || filled == room {
                self.spare.push(chunk);
            } else {
                self.fill.put(filled, chunk);
                filled += 1;
            }
        }
        self.completion.release(done);
        self.fill.submit(filled);
    }

    /// Kicks the TX ring when the kernel asked for it (copy mode always
    /// does), and remembers whether frames are still waiting.
    fn flush(&mut self) -> io::Result<()> {
        if !self.tx_unsent {
            return Ok(());
        }
        if self.tx.needs_wakeup() {
            self.socket.kick_tx().map_err(|e| {
                io::Error::from(AfXdpError::call(&self.interface, "sendto(TX kick)", e))
            })?;
        }
        self.tx_unsent = self.tx.pending() > 0;
        Ok(())
    }
}

impl PacketIo for AfXdpIo {
    /// Takes at most `budget` frames from the RX ring (bounded also by the
    /// free TX entries), hands them to `handler.decide_all` ([`CHUNK`] at a
    /// time) in place in the UMEM, and moves each by its verdict: its
    /// address to the TX ring or back to the fill ring. Ring indices are
    /// published once at the end, and TX is kicked if the kernel asks.
    fn run_batch<H: FrameHandler>(
        &mut self,
        budget: usize,
        mut handler: H,
    ) -> io::Result<BatchCounts> {
        self.reclaim_completions();
        let limit = u32::try_from(budget).unwrap_or(u32::MAX);
        let ready = self.rx.ready(limit);
        let n = self.tx.free(ready);
        let mut counts = BatchCounts {
            from_wire: n as usize,
            ..BatchCounts::default()
        };
        if n == 0 {
            self.flush()?;
            return Ok(counts);
        }
        // The fill ring holds every frame there is, so this is always `n`.
        let fill_room = self.fill.free(n);
        let (mut sent, mut filled) = (0u32, 0u32);
        let mut verdicts = [Verdict::ToHost; CHUNK];
        let mut first = 0;
        while first < n {
            let end = n.min(first + CHUNK as u32);
            let mut frames = ArrayVec::<Frame<'_>, CHUNK>::new();
            let mut chunks = ArrayVec::<u64, CHUNK>::new();
            for i in first..end {
                let desc = self.rx.get(i);
                let chunk = self.umem.chunk_of(desc.addr);
                let head = (desc.addr - chunk) as usize;
                // SAFETY: the frame was handed to us on the RX ring and is
                // ours until its address goes to the TX or fill ring below;
                // the batch's frames are distinct chunks, so no other view of
                // this one is alive. The views end with the chunk loop.
                let Some(buf) = (unsafe { self.umem.chunk(chunk) }) else {
                    continue;
                };
                frames.push(Frame::new(buf, head, desc.len as usize));
                chunks.push(chunk);
            }
            handler.decide_all(&mut frames, &mut verdicts);
            for ((frame, verdict), &chunk) in frames.iter().zip(verdicts).zip(&chunks) {
                if verdict == Verdict::ToWire {
                    self.tx.put(
                        sent,
                        libc::xdp_desc {
                            addr: chunk + frame.head() as u64,
                            len: frame.len() as u32,
                            options: 0,
                        },
                    );
                    sent += 1;
                    counts.to_wire += 1;
                    continue;
                }
                match verdict {
                    Verdict::ToHost => {
                        counts.to_host += 1;
                        match &self.host {
                            Some(host) if host.send(frame.data()) => self.stats.to_host += 1,
                            _ => self.stats.to_host_lost += 1,
                        }
                    }
                    Verdict::Drop(_) => counts.dropped += 1,
                    Verdict::Held | Verdict::ToWire => counts.held += 1,
                }
                if filled < fill_room {
                    self.fill.put(filled, chunk);
                    filled += 1;
                } else {
                    self.spare.push(chunk);
                }
            }
            first = end;
        }
        self.rx.release(n);
        self.fill.submit(filled);
        self.tx.submit(sent);
        if sent > 0 {
            self.tx_unsent = true;
        }
        self.flush()?;
        if self.fill.needs_wakeup() && self.rx.ready(1) == 0 {
            // The driver waits for a wake-up to look at the fill ring again.
            self.socket.poll_readable(Duration::ZERO)?;
        }
        Ok(counts)
    }

    /// Copies `bytes` into a spare frame and queues it on the TX ring; it
    /// leaves at once if the kernel asks for a kick, else with the next one.
    fn transmit_copy(&mut self, bytes: &[u8]) -> io::Result<bool> {
        let room = FRAME_SIZE as usize - RX_HEADROOM;
        if bytes.len() > room {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "AF_XDP on {}: frame of {} bytes does not fit a UMEM frame ({room} bytes)",
                    self.interface,
                    bytes.len()
                ),
            ));
        }
        if self.spare.is_empty() {
            self.reclaim_completions();
        }
        if self.tx.free(1) == 0 {
            return Ok(false);
        }
        let Some(chunk) = self.spare.pop() else {
            return Ok(false);
        };
        // SAFETY: a spare frame is ours (on no ring); no other view exists.
        let Some(buf) = (unsafe { self.umem.chunk(chunk) }) else {
            return Ok(false);
        };
        buf[RX_HEADROOM..RX_HEADROOM + bytes.len()].copy_from_slice(bytes);
        self.tx.put(
            0,
            libc::xdp_desc {
                addr: chunk + RX_HEADROOM as u64,
                len: bytes.len() as u32,
                options: 0,
            },
        );
        self.tx.submit(1);
        self.tx_unsent = true;
        self.flush()?;
        Ok(true)
    }

    /// Sends what is pending, then returns at once if frames are ready,
    /// else `ppoll`s the socket (which also wakes the driver's receive side).
    fn wait(&mut self, timeout: Duration) -> io::Result<()> {
        self.flush()?;
        self.reclaim_completions();
        if self.rx.ready(1) > 0 {
            return Ok(());
        }
        let timeout = if self.tx_unsent {
            timeout.min(Duration::from_micros(100))
        } else {
            timeout
        };
        self.socket.poll_readable(timeout)
    }
}

impl std::os::fd::AsRawFd for AfXdpIo {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.socket.fd()
    }
}

/// The index of interface `name` in this thread's network namespace.
fn interface_index(name: &str) -> Result<u32, AfXdpError> {
    super::kernel_socket::interface_index(name).map_err(|source| AfXdpError::NoSuchInterface {
        interface: name.to_owned(),
        source,
    })
}

/// The MAC address of `interface` (from sysfs, in this namespace's view).
fn interface_mac(interface: &str) -> io::Result<[u8; 6]> {
    let text = std::fs::read_to_string(format!("/sys/class/net/{interface}/address"))?;
    let mut mac = [0u8; 6];
    let mut parts = text.trim().split(':');
    for byte in &mut mac {
        let part = parts.next().ok_or_else(|| io::Error::other("short MAC"))?;
        *byte = u8::from_str_radix(part, 16).map_err(io::Error::other)?;
    }
    Ok(mac)
}

/// Receive queues of `interface` (`/sys/class/net/<if>/queues/rx-*`), which
/// `AF_XDP` serves one socket each.
pub fn rx_queues(interface: &str) -> io::Result<u32> {
    let dir = std::fs::read_dir(format!("/sys/class/net/{interface}/queues"))?;
    let count = dir
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
        .count();
    Ok(u32::try_from(count).unwrap_or(u32::MAX).max(1))
}
