//! `EmulatedPort`: a netmap port whose kernel side runs in userspace, for
//! machines without netmap.
//!
//! It plays the kernel's part exactly where a backend can see it:
//!
//! - **The region** is laid out as netmap's allocator lays it out (see
//!   `layout.rs`): `netmap_if`s with `ring_ofs[]` (one binding every ring,
//!   and the two each worker's registrations get), one or more NIC ring
//!   pairs and as many host ring pairs with their slots at the ABI's
//!   offsets, and a buffer pool of `nr_buf_size` buffers reached through
//!   each ring's `buf_ofs`, buffers 0 and 1 reserved. A backend reads it
//!   through the same [`NetmapRegion`] view as a kernel's region, checks
//!   and all.
//! - **Registrations**: [`EmulatedPort::open`] is a one-pair port
//!   registered `NR_REG_NIC_SW`; [`EmulatedPort::open_rings`] gives each
//!   worker NIC ring pair `i` and host ring pair `i` (`NR_REG_ONE_NIC` and
//!   `NR_REG_ONE_SW`), viewed through those two interfaces as on the
//!   kernel, all in one region, with device `i` behind ring pair `i` (on a
//!   live interface: packet socket `i` of a fanout group, which spreads
//!   flows over the sockets as RSS spreads them over a NIC's rings).
//! - **The syncs** do what the kernel does at `NIOCTXSYNC`/`NIOCRXSYNC` for
//!   the registration's rings on a driver without native support:
//!   the prologue checks of `head` and `cur` (a bad ring is reinitialised,
//!   not synced), the NIC rings as netmap's generic adapter syncs them
//!   (`nic.rs`), the host rings as `netmap.c` syncs them for every adapter
//!   (`host.rs`), and `tail` published at the end. `NS_BUF_CHANGED` is
//!   honoured by reading each slot's buffer index afresh at every sync, and
//!   cleared as the kernel clears it.
//! - **The device** behind the rings is pluggable ([`Device`]): a
//!   [`MemoryDevice`] of frame queues for tests, or (Linux) an
//!   [`AfPacketDevice`] on a live interface.
//!
//! What differs from the kernel: frames are copied between the device and
//! the netmap buffers (a netmap driver DMAs into them); the syncs run only
//! when called (no interrupt fills a ring between syncs, which no backend
//! may rely on anyway); a TX slot with a bad buffer index drops its frame
//! (the generic adapter would send buffer 0); an RX prologue failure skips
//! the ring's sync (the kernel goes on to sync it); `NS_FORWARD`,
//! `NS_INDIRECT`, slot offsets (`NETMAP_REQ_OPT_OFFSETS`) and extra buffers
//! are not emulated. With `AF_PACKET`, the host rings differ as that
//! device's docs explain.

mod device;
mod host;
mod kring;
mod layout;
mod memory_device;
mod nic;

#[cfg(target_os = "linux")]
mod af_packet_device;

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use netmap_sys::{nmreq_register, IFNAMSIZ, NR_REG_NIC_SW, NR_REG_ONE_NIC};

#[cfg(target_os = "linux")]
pub use af_packet_device::{AfPacketDevice, AfPacketDeviceStats};
pub use device::Device;
pub use memory_device::MemoryDevice;

use self::kring::Kring;
use self::layout::{Binding, Layout};
use super::mapping::Mapping;
use super::region::{NetmapRegion, RegionError, RingKind};
use super::NetmapPort;

/// Most ring pairs a port may have (netmap ports have a few dozen).
pub const MAX_RING_PAIRS: usize = 256;
/// Fewest and most slots in a ring.
pub const MIN_SLOTS: u32 = 2;
pub const MAX_SLOTS: u32 = 16384;
/// Buffer sizes are multiples of this (netmap rounds them to its cache line).
pub const BUF_ALIGN: u32 = 128;
/// The largest buffer whose whole length a slot's 16-bit `len` can hold.
pub const MAX_BUF_SIZE: u32 = 65536 - BUF_ALIGN;
/// Fewest bytes a buffer must keep after the packet offset: a minimal
/// Ethernet frame.
pub const MIN_ROOM: u32 = 64;

/// How to lay out an [`EmulatedPort`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmulatedPortConfig {
    /// The interface's name, as `netmap_if::ni_name` shows it.
    pub name: String,
    /// Slots in each NIC ring.
    pub nic_slots: u32,
    /// Slots in each host ring.
    pub host_slots: u32,
    /// Bytes per buffer.
    pub buf_size: u32,
    /// Room in front of every packet: the port registered with
    /// `NETMAP_REQ_OPT_OFFSETS` of this initial and largest offset, every
    /// slot's `ptr` holding where its packet starts (0: without the option).
    pub offset: u32,
}

impl EmulatedPortConfig {
    /// netmap's generic adapter's defaults: 1024-slot rings of 2048-byte
    /// buffers.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            nic_slots: 1024,
            host_slots: 1024,
            buf_size: 2048,
            offset: 0,
        }
    }

    /// Checks the sizes against what netmap accepts.
    pub fn validate(&self) -> Result<(), EmulatedPortError> {
        let name = &self.name;
        if name.is_empty() || name.len() >= IFNAMSIZ || name.contains('\0') {
            return Err(EmulatedPortError::Name(name.clone()));
        }
        for slots in [self.nic_slots, self.host_slots] {
            if !(MIN_SLOTS..=MAX_SLOTS).contains(&slots) {
                return Err(EmulatedPortError::Slots(slots));
            }
        }
        let buf_size = self.buf_size;
        if buf_size == 0 || !buf_size.is_multiple_of(BUF_ALIGN) || buf_size > MAX_BUF_SIZE {
            return Err(EmulatedPortError::BufSize(buf_size));
        }
        if self.offset > buf_size.saturating_sub(MIN_ROOM) {
            return Err(EmulatedPortError::Offset {
                offset: self.offset,
                buf_size,
            });
        }
        Ok(())
    }
}

/// Why an [`EmulatedPort`] could not be opened.
#[derive(Debug)]
pub enum EmulatedPortError {
    /// The name does not fit `ni_name`.
    Name(String),
    /// A ring size outside `MIN_SLOTS..=MAX_SLOTS`.
    Slots(u32),
    /// A buffer size that is not a positive multiple of `BUF_ALIGN` up to
    /// `MAX_BUF_SIZE`.
    BufSize(u32),
    /// An offset that leaves less than `MIN_ROOM` bytes of a buffer.
    Offset { offset: u32, buf_size: u32 },
    /// A number of ring pairs (devices) outside `1..=MAX_RING_PAIRS`.
    RingPairs(usize),
    /// The region could not be allocated.
    Map(io::Error),
    /// The region as laid out failed its own view's checks (a bug here).
    Layout(RegionError),
}

impl fmt::Display for EmulatedPortError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name(name) => write!(
                f,
                "port name {name:?} does not fit netmap_if::ni_name; expected 1 to {} bytes",
                IFNAMSIZ - 1
            ),
            Self::Slots(slots) => write!(
                f,
                "{slots} slots per ring; expected {MIN_SLOTS} to {MAX_SLOTS}"
            ),
            Self::BufSize(size) => write!(
                f,
                "buffer size {size}; expected a multiple of {BUF_ALIGN} up to {MAX_BUF_SIZE}"
            ),
            Self::Offset { offset, buf_size } => write!(
                f,
                "packet offset {offset}; expected at most {} with {buf_size}-byte buffers \
                 (at least {MIN_ROOM} bytes left for the packet)",
                buf_size.saturating_sub(MIN_ROOM)
            ),
            Self::RingPairs(n) => write!(
                f,
                "{n} ring pairs (one per device); expected 1 to {MAX_RING_PAIRS}"
            ),
            Self::Map(e) => write!(f, "cannot allocate the emulated netmap region: {e}"),
            Self::Layout(e) => write!(f, "the emulated region's layout is wrong: {e}"),
        }
    }
}

impl std::error::Error for EmulatedPortError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Map(e) => Some(e),
            Self::Layout(e) => Some(e),
            _ => None,
        }
    }
}

/// What the emulated kernel did since the port was opened.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct EmulatedStats {
    /// Frames put into the NIC RX ring.
    pub rx_frames: u64,
    /// Frames handed to the device from the NIC TX ring.
    pub tx_frames: u64,
    /// TX syncs that stopped because the device was full.
    pub tx_device_full: u64,
    /// Frames passed up to the host stack from the host TX ring.
    pub host_up: u64,
    /// Frames from the host stack put into the host RX ring.
    pub host_down: u64,
    /// Frames dropped: bad buffers, runts and over-long frames on the host
    /// rings, frames that did not fit.
    pub dropped: u64,
    /// Slots met with a reserved or out-of-pool buffer index.
    pub bad_buffers: u64,
    /// Rings reinitialised after a failed prologue or a bad RX buffer.
    pub reinits: u64,
}

/// A netmap port with the kernel's part played in userspace. See the
/// module docs.
///
/// One value is one worker's registration: every ring of a one-pair port
/// ([`open`](Self::open), `NR_REG_NIC_SW`), or NIC ring pair `i` with host
/// ring pair `i` of a port with several ([`open_rings`](Self::open_rings),
/// `NR_REG_ONE_NIC` and `NR_REG_ONE_SW`). The registrations of one port
/// share its region, as the kernel's share one memory allocator; each
/// syncs only its own rings.
#[derive(Debug)]
pub struct EmulatedPort<D: Device> {
    /// Declared before the mapping it views.
    region: NetmapRegion,
    /// Shared by the port's registrations; unmapped with the last.
    #[cfg_attr(not(test), allow(dead_code))]
    mapping: Arc<Mapping>,
    layout: Arc<Layout>,
    /// The ring pair (NIC and host) this registration binds.
    ring: u32,
    /// `NR_REG_NIC_SW` or `NR_REG_ONE_NIC` (with its `NR_REG_ONE_SW`).
    mode: u32,
    /// The kernel's state of each of its rings, in `RingKind::ALL` order.
    krings: [Kring; 4],
    device: D,
    /// One TX frame gathered from its `NS_MOREFRAG` slots.
    scratch: Vec<u8>,
    stats: EmulatedStats,
}

/// One port's laid-out region, before its registrations view it.
struct Laid {
    mapping: Arc<Mapping>,
    layout: Arc<Layout>,
}

impl Laid {
    fn new(config: &EmulatedPortConfig, rings: usize) -> Result<Self, EmulatedPortError> {
        config.validate()?;
        if !(1..=MAX_RING_PAIRS).contains(&rings) {
            return Err(EmulatedPortError::RingPairs(rings));
        }
        let layout = Layout::with_rings(
            &config.name,
            u32::try_from(rings).map_err(|_| EmulatedPortError::RingPairs(rings))?,
            config.nic_slots,
            config.host_slots,
            config.buf_size,
            config.offset,
        )
        .ok_or(EmulatedPortError::Slots(
            config.nic_slots.max(config.host_slots),
        ))?;
        let mapping = Mapping::anonymous(layout.len).map_err(EmulatedPortError::Map)?;
        {
            // SAFETY: the mapping is `layout.len` bytes, zeroed, ours alone;
            // this slice ends before any region view is built.
            let bytes =
                unsafe { std::slice::from_raw_parts_mut(mapping.base().as_ptr(), mapping.len()) };
            layout.write(bytes);
        }
        Ok(Self {
            mapping: Arc::new(mapping),
            layout: Arc::new(layout),
        })
    }

    /// The registration of ring pair `ring` through `interfaces`, over
    /// `device`.
    fn register<D: Device>(
        &self,
        interfaces: &[Binding],
        ring: u32,
        mode: u32,
        device: D,
    ) -> Result<EmulatedPort<D>, EmulatedPortError> {
        let offsets: Vec<usize> = interfaces
            .iter()
            .map(|&binding| self.layout.interface(binding))
            .collect();
        // SAFETY: the mapping stays mapped as long as the port (which holds
        // it and drops the view first). Its registrations bind disjoint
        // rings, and each touches only its rings and the buffers in their
        // slots, through its view and its emulated kernel.
        let region = unsafe {
            NetmapRegion::with_interfaces(self.mapping.base(), self.mapping.len(), &offsets)
        }
        .map_err(EmulatedPortError::Layout)?;
        let max_offset = self.layout.offset as usize;
        let krings = RingKind::ALL.map(|kind| {
            let slots = self.layout.slots(kind);
            let kring = if kind.is_tx() {
                Kring::tx(slots)
            } else {
                Kring::rx(slots)
            };
            Kring {
                max_offset,
                ..kring
            }
        });
        Ok(EmulatedPort {
            region,
            mapping: Arc::clone(&self.mapping),
            layout: Arc::clone(&self.layout),
            ring,
            mode,
            krings,
            device,
            scratch: Vec::new(),
            stats: EmulatedStats::default(),
        })
    }
}

impl<D: Device> EmulatedPort<D> {
    /// Lays out a region for `config` with one NIC and one host ring pair
    /// and binds them all to `device`: what `NETMAP_REQ_REGISTER` with
    /// `NR_REG_NIC_SW` and `mmap` give.
    pub fn open(config: &EmulatedPortConfig, device: D) -> Result<Self, EmulatedPortError> {
        Laid::new(config, 1)?.register(&[Binding::All], 0, NR_REG_NIC_SW, device)
    }

    /// Lays out one region for `config` with a NIC ring pair and a host
    /// ring pair per device, and registers each pair for its own worker:
    /// port `i` binds NIC ring pair `i` (`NR_REG_ONE_NIC`, `nr_ringid = i`)
    /// and host ring pair `i` (`NR_REG_ONE_SW`), through the two
    /// `netmap_if`s those registrations get, with device `i` behind them.
    /// What a worker per ring sees of a multi-queue NIC.
    pub fn open_rings(
        config: &EmulatedPortConfig,
        devices: Vec<D>,
    ) -> Result<Vec<Self>, EmulatedPortError> {
        let laid = Laid::new(config, devices.len())?;
        devices
            .into_iter()
            .zip(0u32..)
            .map(|(device, i)| {
                laid.register(
                    &[Binding::OneNic(i), Binding::OneHost(i)],
                    i,
                    NR_REG_ONE_NIC,
                    device,
                )
            })
            .collect()
    }

    /// The device behind the rings.
    pub fn device(&self) -> &D {
        &self.device
    }

    /// The device behind the rings (tests push frames into it).
    pub fn device_mut(&mut self) -> &mut D {
        &mut self.device
    }

    /// What the emulated kernel did so far.
    pub fn stats(&self) -> EmulatedStats {
        self.stats
    }

    /// What `NETMAP_REQ_REGISTER` would have returned for this port (for
    /// a ring pair's port: its `NR_REG_ONE_NIC` registration).
    pub fn register_info(&self) -> nmreq_register {
        let layout = &self.layout;
        let rings = u16::try_from(layout.rings).unwrap_or(u16::MAX);
        let interface = if self.mode == NR_REG_NIC_SW {
            Binding::All
        } else {
            Binding::OneNic(self.ring)
        };
        nmreq_register {
            nr_offset: layout.interface(interface) as u64,
            nr_memsize: layout.len as u64,
            nr_tx_slots: layout.nic_slots,
            nr_rx_slots: layout.nic_slots,
            nr_tx_rings: rings,
            nr_rx_rings: rings,
            nr_host_tx_rings: rings,
            nr_host_rx_rings: rings,
            nr_mem_id: 1,
            nr_ringid: u16::try_from(self.ring).unwrap_or(u16::MAX),
            nr_mode: self.mode,
            nr_extra_bufs: 0,
            nr_flags: 0,
        }
    }

    /// The ring pair (NIC and host) this registration binds.
    pub fn ring_pair(&self) -> u32 {
        self.ring
    }

    /// Buffers in the pool, the two reserved ones included.
    pub fn pool_buffers(&self) -> u32 {
        self.layout.buffers
    }

    /// Every slot's buffer index, over this registration's four rings,
    /// sorted: a census for tests.
    pub fn slot_buffers(&self) -> Vec<u32> {
        let mut all = Vec::new();
        for kind in RingKind::ALL {
            if let Some(ring) = self.region.ring(kind, self.ring) {
                all.extend((0..ring.num_slots()).map(|i| ring.slot(i).buf_idx));
            }
        }
        all.sort_unstable();
        all
    }

    /// Whether every buffer its four rings started with is in exactly one
    /// of their slots: none lost, none duplicated (with one ring pair:
    /// every buffer of the pool but the two reserved ones). Holds between
    /// syncs as long as the user only swaps buffers between its slots.
    pub fn buffers_conserved(&self) -> bool {
        let mut initial: Vec<u32> = RingKind::ALL
            .into_iter()
            .flat_map(|kind| self.layout.initial_buffers(kind, self.ring))
            .collect();
        initial.sort_unstable();
        self.slot_buffers() == initial
    }

    /// The mapping, for tests that read the region's raw bytes.
    #[cfg(test)]
    fn mapping(&self) -> &Mapping {
        &self.mapping
    }

    fn kring_position(kind: RingKind) -> usize {
        match kind {
            RingKind::NicTx => 0,
            RingKind::HostTx => 1,
            RingKind::NicRx => 2,
            RingKind::HostRx => 3,
        }
    }

    /// Syncs one ring of `kind`.
    fn sync(&mut self, kind: RingKind) -> io::Result<()> {
        let Some(ring) = self.region.ring(kind, self.ring) else {
            return Ok(());
        };
        let kring = &mut self.krings[Self::kring_position(kind)];
        let device = &mut self.device;
        let stats = &mut self.stats;
        let result = match kind {
            RingKind::NicTx => nic::txsync(kring, &ring, device, &mut self.scratch, stats),
            RingKind::NicRx => nic::rxsync(kring, &ring, device, stats),
            RingKind::HostTx => host::txsync(kring, &ring, device, stats),
            RingKind::HostRx => host::rxsync(kring, &ring, device, stats),
        };
        if !kind.is_tx() {
            // The RX sync stamps its ring (netmap's default, NR_TIMESTAMP or not).
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            ring.set_timestamp(
                i64::try_from(now.as_secs()).unwrap_or(i64::MAX),
                i64::from(now.subsec_micros()),
            );
        }
        result
    }

    /// Whether an RX ring holds frames for the user.
    fn rx_ready(&self) -> bool {
        [RingKind::NicRx, RingKind::HostRx].into_iter().any(|kind| {
            self.region
                .ring(kind, self.ring)
                .is_some_and(|ring| ring.head() != ring.tail())
        })
    }
}

impl<D: Device> NetmapPort for EmulatedPort<D> {
    fn region(&self) -> &NetmapRegion {
        &self.region
    }

    fn max_offset(&self) -> usize {
        self.layout.offset as usize
    }

    /// NIC TX ring, then host TX ring, as the kernel walks its TX krings.
    fn txsync(&mut self) -> io::Result<()> {
        let nic = self.sync(RingKind::NicTx);
        let host = self.sync(RingKind::HostTx);
        nic.and(host)
    }

    /// NIC RX ring, then host RX ring.
    fn rxsync(&mut self) -> io::Result<()> {
        let nic = self.sync(RingKind::NicRx);
        let host = self.sync(RingKind::HostRx);
        nic.and(host)
    }

    fn poll(&mut self, timeout: Duration) -> io::Result<()> {
        self.txsync()?;
        self.rxsync()?;
        if self.rx_ready() {
            return Ok(());
        }
        self.device.wait(timeout)?;
        self.rxsync()
    }
}

#[cfg(test)]
mod tests;
