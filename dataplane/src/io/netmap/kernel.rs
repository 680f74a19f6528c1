//! `KernelPort`: one worker's share of a netmap port of the real kernel,
//! through `/dev/netmap`.
//!
//! [`KernelPort::open_rings`] registers the interface once per ring pair
//! and worker, with `NIOCCTRL` / `NETMAP_REQ_REGISTER`, each registration
//! its own descriptor: NIC ring pair `i` in mode `NR_REG_ONE_NIC`
//! (`nr_ringid = i`) and host ring pair `i` in mode `NR_REG_ONE_SW`. The
//! first registration asks for as many host ring pairs as workers
//! (`nr_host_tx_rings`, `nr_host_rx_rings`: netmap applies them when it
//! puts the adapter in netmap mode), so every worker bridges its own NIC
//! and host rings and nothing crosses between workers (see
//! `served_rings.rs`). What the kernel granted is checked before more rings
//! are registered: a worker per NIC RX ring, a TX ring and a host ring pair
//! for each (netmap would otherwise bind ring 0 twice).
//!
//! All registrations of a hardware port share its memory allocator (the
//! same `nr_mem_id`, checked), so the region is mapped once, from the first
//! descriptor (`nr_memsize`), as `libnetmap`'s `nmport_mmap` reuses a
//! mapping per `nr_mem_id`; each worker views it through the `netmap_if`s
//! of its two registrations (`nr_offset`). Asked for headroom, every
//! registration carries the `NETMAP_REQ_OPT_OFFSETS` option (every slot's
//! packet starts that far into its buffer; see the backend's docs for why)
//! and, where the kernel or the driver refuses the option, all are
//! registered again without it: the backend then moves the frames it grows
//! at the front. The syncs are `ioctl(NIOCTXSYNC)`, `ioctl(NIOCRXSYNC)` and
//! `poll` on the worker's two descriptors. Nothing else differs from
//! [`EmulatedPort`](super::emulated::EmulatedPort).
//!
//! Needs the netmap module on Linux (`modprobe netmap`; `/dev/netmap`) or a
//! FreeBSD kernel (netmap is in `GENERIC`), and root or access to the
//! device.

use std::ffi::CString;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use netmap_sys::{
    nmreq_header, nmreq_opt_offsets, nmreq_option, nmreq_register, NETMAP_API, NETMAP_DEVICE_NAME,
    NETMAP_REQ_IFNAMSIZ, NETMAP_REQ_OPT_OFFSETS, NETMAP_REQ_REGISTER, NIOCCTRL, NIOCRXSYNC,
    NIOCTXSYNC, NR_REG_ONE_NIC, NR_REG_ONE_SW,
};

use super::mapping::Mapping;
use super::region::{NetmapRegion, RegionError};
use super::NetmapPort;

/// Why a [`KernelPort`] could not be opened.
#[derive(Debug)]
pub enum KernelPortError {
    /// The port name does not fit `nr_name`, or holds a NUL.
    Name(String),
    /// `/dev/netmap` could not be opened.
    Device(io::Error),
    /// The kernel refused the registration.
    Register { name: String, error: io::Error },
    /// The kernel refused to describe the port (`NETMAP_REQ_PORT_INFO_GET`).
    PortInfo { name: String, error: io::Error },
    /// The kernel refused the registration's `NETMAP_REQ_OPT_OFFSETS`
    /// option (the port is then registered without it).
    OffsetsRefused { name: String, error: io::Error },
    /// The port's rings do not give each of `workers` workers a NIC ring
    /// pair and a host ring pair of its own.
    Rings {
        name: String,
        workers: u16,
        register: nmreq_register,
    },
    /// Two registrations of the port came back in different memory
    /// regions (`nr_mem_id`), so buffers could not be swapped between them.
    MemoryRegions { name: String, ids: (u16, u16) },
    /// The region could not be mapped.
    Map { name: String, error: io::Error },
    /// The kernel's region failed the view's checks.
    Region { name: String, error: RegionError },
}

impl fmt::Display for KernelPortError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let device = NETMAP_DEVICE_NAME.to_string_lossy();
        match self {
            Self::Name(name) => write!(
                f,
                "netmap port name {name:?} is not 1 to {} bytes without NUL",
                NETMAP_REQ_IFNAMSIZ - 1
            ),
            Self::Device(e) if e.kind() == io::ErrorKind::NotFound => write!(
                f,
                "{device} does not exist: netmap is not loaded (Linux: build and `modprobe \
                 netmap`; FreeBSD: `kldload netmap` unless the kernel has it), or use the \
                 emulated port"
            ),
            Self::Device(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                write!(
                    f,
                    "{device}: {e}; netmap needs root or access to the device"
                )
            }
            Self::Device(e) => write!(f, "{device}: {e}"),
            Self::Register { name, error } => write!(
                f,
                "netmap register of {name} (API {NETMAP_API}, NR_REG_ONE_NIC and \
                 NR_REG_ONE_SW): {error}; is the interface up, and the kernel's netmap API \
                 {NETMAP_API}?"
            ),
            Self::PortInfo { name, error } => write!(
                f,
                "netmap port info of {name} (NETMAP_REQ_PORT_INFO_GET, API {NETMAP_API}): \
                 {error}; does the interface exist, and is the kernel's netmap API {NETMAP_API}?"
            ),
            Self::Rings {
                name,
                workers,
                register,
            } => write!(
                f,
                "netmap port {name} has {} receive and {} transmit rings and {} host ring \
                 pairs, and {workers} workers need one of each apiece: run as many workers as \
                 receive rings (RR_WORKERS={}), or give the interface {workers} queues \
                 (Linux: ethtool -L {name} combined {workers}; FreeBSD iflib drivers: \
                 dev.DRIVER.UNIT.iflib.override_nrxqs and override_ntxqs in loader.conf)",
                register.nr_rx_rings,
                register.nr_tx_rings,
                register.nr_host_rx_rings.min(register.nr_host_tx_rings),
                register.nr_rx_rings
            ),
            Self::MemoryRegions { name, ids } => write!(
                f,
                "netmap registrations of {name} came back in memory regions {} and {}; \
                 one port's rings must share one region",
                ids.0, ids.1
            ),
            Self::OffsetsRefused { name, error } => write!(
                f,
                "netmap register of {name} with NETMAP_REQ_OPT_OFFSETS (headroom): {error}"
            ),
            Self::Map { name, error } => write!(f, "mmap of {name}'s netmap region: {error}"),
            Self::Region { name, error } => {
                write!(f, "the kernel's netmap region for {name}: {error}")
            }
        }
    }
}

impl std::error::Error for KernelPortError {}

/// What one registration binds: a NIC ring pair (`NR_REG_ONE_NIC`) or a
/// host ring pair (`NR_REG_ONE_SW`), by index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding {
    NicRing(u16),
    HostRing(u16),
}

/// A `NIOCCTRL` request header of type `reqtype` naming port `name`, at
/// this ABI's API version; `nr_body` and `nr_options` are left 0.
pub(super) fn request_header(name: &str, reqtype: u16) -> Result<nmreq_header, KernelPortError> {
    let bytes = CString::new(name).map_err(|_| KernelPortError::Name(name.to_owned()))?;
    let bytes = bytes.as_bytes_with_nul();
    if bytes.len() < 2 || bytes.len() > NETMAP_REQ_IFNAMSIZ {
        return Err(KernelPortError::Name(name.to_owned()));
    }
    let mut header = nmreq_header {
        nr_version: NETMAP_API,
        nr_reqtype: reqtype,
        ..nmreq_header::default()
    };
    for (dst, &src) in header.nr_name.iter_mut().zip(bytes) {
        *dst = libc::c_char::from_ne_bytes([src]);
    }
    Ok(header)
}

/// The register request for `name` binding `binding`, asking for
/// `host_rings` host ring pairs (applied by the registration that puts the
/// port in netmap mode): header and body. The header's `nr_body` is left 0
/// (the caller points it at the body it keeps).
pub fn register_request(
    name: &str,
    binding: Binding,
    host_rings: u16,
) -> Result<(nmreq_header, nmreq_register), KernelPortError> {
    let header = request_header(name, NETMAP_REQ_REGISTER)?;
    let (nr_mode, nr_ringid) = match binding {
        Binding::NicRing(i) => (NR_REG_ONE_NIC, i),
        Binding::HostRing(i) => (NR_REG_ONE_SW, i),
    };
    let body = nmreq_register {
        nr_mode,
        nr_ringid,
        nr_host_tx_rings: host_rings,
        nr_host_rx_rings: host_rings,
        ..nmreq_register::default()
    };
    Ok((header, body))
}

/// Whether the port `register` describes gives each of `workers` workers
/// a NIC RX ring (all of them served), a TX ring and a host ring pair of
/// its own.
pub fn rings_suffice(register: &nmreq_register, workers: u16) -> bool {
    register.nr_rx_rings == workers
        && register.nr_tx_rings >= workers
        && register.nr_host_rx_rings >= workers
        && register.nr_host_tx_rings >= workers
}

/// Whether every registration came back in the first one's memory region
/// (`nr_mem_id`): the one mapping then serves them all, and buffers swap
/// between their rings. `Err` holds the first id and the one that differs.
fn one_memory_region<'a>(
    mut registers: impl Iterator<Item = &'a nmreq_register>,
) -> Result<(), (u16, u16)> {
    let Some(first) = registers.next() else {
        return Ok(());
    };
    match registers.find(|r| r.nr_mem_id != first.nr_mem_id) {
        Some(other) => Err((first.nr_mem_id, other.nr_mem_id)),
        None => Ok(()),
    }
}

/// Bytes of a `buf_size`-byte buffer a received frame may take after an
/// offset of `max_offset`, in the drivers' 1 KiB steps.
fn receive_room(buf_size: usize, max_offset: usize) -> usize {
    buf_size.saturating_sub(max_offset) & !(DRIVER_RX_STEP - 1)
}

/// The offsets option asking for `headroom` bytes in front of every
/// packet: the initial and the largest offset, the whole `ptr` for it.
pub fn offsets_option(headroom: u32) -> nmreq_opt_offsets {
    nmreq_opt_offsets {
        nro_opt: nmreq_option {
            nro_reqtype: NETMAP_REQ_OPT_OFFSETS,
            ..nmreq_option::default()
        },
        nro_max_offset: u64::from(headroom),
        nro_initial_offset: u64::from(headroom),
        ..nmreq_opt_offsets::default()
    }
}

/// One `NETMAP_REQ_REGISTER` of `name` on `device`, with `offsets` chained
/// as its option when given (the kernel writes its status and the granted
/// values back into it).
fn register_port(
    device: &File,
    name: &str,
    binding: Binding,
    host_rings: u16,
    offsets: Option<&mut nmreq_opt_offsets>,
) -> Result<nmreq_register, KernelPortError> {
    let (mut header, mut register) = register_request(name, binding, host_rings)?;
    header.nr_body = std::ptr::addr_of_mut!(register) as u64;
    if let Some(option) = offsets {
        header.nr_options = std::ptr::from_mut(option) as u64;
    }
    // SAFETY: NIOCCTRL takes a `nmreq_header` whose nr_body points at the
    // request's body and nr_options at its first option (or is 0); all of
    // them outlive the call, and the kernel writes only into them (the out
    // fields and the option's status).
    let rc = unsafe { libc::ioctl(device.as_raw_fd(), NIOCCTRL, &raw mut header) };
    if rc != 0 {
        return Err(KernelPortError::Register {
            name: name.to_owned(),
            error: io::Error::last_os_error(),
        });
    }
    Ok(register)
}

/// One registration: its descriptor (closing it unregisters), what the
/// kernel reported, and the offsets it granted (0: none).
#[derive(Debug)]
struct Registered {
    device: File,
    register: nmreq_register,
    max_offset: u64,
}

/// One worker's share of a port of the kernel's netmap: its NIC ring pair
/// and its host ring pair. See the module docs.
#[derive(Debug)]
pub struct KernelPort {
    /// Declared first: dropped before the mapping it views.
    region: NetmapRegion,
    /// Shared by the workers' ports; unmapped with the last.
    _mapping: Arc<Mapping>,
    /// The NIC ring pair's registration, then the host ring pair's; closed
    /// last (unregisters them).
    devices: [File; 2],
    /// What the kernel reported for the NIC ring pair's registration.
    register: nmreq_register,
    /// The offsets the kernel granted (0: registered without them).
    max_offset: usize,
    /// Why headroom was asked for and not used.
    headroom_refused: Option<String>,
    name: String,
}

/// The step in which several drivers size their receive buffers.
const DRIVER_RX_STEP: usize = 1024;

impl KernelPort {
    /// Registers `name` (an interface, as netmap names ports: `em0`,
    /// `eth1`) for `workers` workers: port `i` binds NIC ring pair `i` and
    /// host ring pair `i`. Where the kernel grants it and a frame of
    /// `frame_room` bytes still fits one buffer after it, `headroom` bytes
    /// in front of every received frame (0: none asked); without it,
    /// [`headroom_refused`](Self::headroom_refused) says why.
    pub fn open_rings(
        name: &str,
        workers: u16,
        headroom: u32,
        frame_room: usize,
    ) -> Result<Vec<Self>, KernelPortError> {
        if headroom == 0 {
            return Self::register_all(name, workers, None);
        }
        let why = match Self::register_all(name, workers, Some(headroom)) {
            Ok(ports) => {
                let first = &ports[0];
                let room = first.receive_room();
                if room >= frame_room {
                    return Ok(ports);
                }
                // Closing the descriptors (dropping `ports`) unregisters
                // the rings; they are registered again below without
                // offsets.
                format!(
                    "{} - {} bytes of headroom leave {room} bytes of receive buffer \
                     (drivers size receive buffers in 1 KiB steps), fewer than a \
                     {frame_room}-byte frame: raise netmap's buf_size",
                    first.region.buf_size(),
                    first.max_offset
                )
            }
            Err(KernelPortError::OffsetsRefused { error, .. }) => {
                format!("the kernel refused NETMAP_REQ_OPT_OFFSETS: {error}")
            }
            Err(e) => return Err(e),
        };
        let mut ports = Self::register_all(name, workers, None)?;
        for port in &mut ports {
            port.headroom_refused = Some(why.clone());
        }
        Ok(ports)
    }

    /// Why the port has no headroom although it was asked for (frames
    /// grown at the front are then moved; see the backend's docs).
    pub fn headroom_refused(&self) -> Option<&str> {
        self.headroom_refused.as_deref()
    }

    /// Bytes a received frame may take after the packet offset, as the
    /// drivers that size receive buffers in 1 KiB steps (ixgbe, igb,
    /// e1000: netmap's `*_netmap_bufcfg`) round them: a longer frame would
    /// arrive in two slots (`NS_MOREFRAG`), which this backend drops.
    fn receive_room(&self) -> usize {
        receive_room(self.region.buf_size() as usize, self.max_offset)
    }

    /// Every worker's two registrations, the region mapped once, each
    /// worker's view.
    fn register_all(
        name: &str,
        workers: u16,
        headroom: Option<u32>,
    ) -> Result<Vec<Self>, KernelPortError> {
        if workers == 0 {
            return Err(KernelPortError::Rings {
                name: name.to_owned(),
                workers,
                register: nmreq_register::default(),
            });
        }
        let mut registered = Vec::with_capacity(usize::from(workers) * 2);
        for i in 0..workers {
            for binding in [Binding::NicRing(i), Binding::HostRing(i)] {
                let one = Self::register_one(name, binding, workers, headroom)?;
                // Checked after the first registration, which put the port
                // in netmap mode with the host rings it could grant: a
                // worker short of rings would share ring 0 with worker 0.
                if registered.is_empty() && !rings_suffice(&one.register, workers) {
                    return Err(KernelPortError::Rings {
                        name: name.to_owned(),
                        workers,
                        register: one.register,
                    });
                }
                registered.push(one);
            }
        }
        let first = registered[0].register;
        one_memory_region(registered.iter().map(|r| &r.register)).map_err(|ids| {
            KernelPortError::MemoryRegions {
                name: name.to_owned(),
                ids,
            }
        })?;
        let map_error = |error| KernelPortError::Map {
            name: name.to_owned(),
            error,
        };
        let len = usize::try_from(first.nr_memsize)
            .map_err(|_| map_error(io::Error::other("nr_memsize exceeds the address space")))?;
        let mapping =
            Arc::new(Mapping::shared(registered[0].device.as_raw_fd(), len).map_err(map_error)?);
        let mut ports = Vec::with_capacity(usize::from(workers));
        let mut registered = registered.into_iter();
        while let (Some(nic), Some(host)) = (registered.next(), registered.next()) {
            let offsets = [nic.register.nr_offset, host.register.nr_offset]
                .map(|offset| usize::try_from(offset).unwrap_or(usize::MAX));
            // SAFETY: the mapping is the kernel's region of these
            // registrations (one nr_mem_id), kept mapped as long as the
            // view (the port drops it first); only we and the kernel
            // (inside our syncs) write it, and each worker's view binds its
            // own rings.
            let region =
                unsafe { NetmapRegion::with_interfaces(mapping.base(), mapping.len(), &offsets) }
                    .map_err(|error| KernelPortError::Region {
                    name: name.to_owned(),
                    error,
                })?;
            // What the kernel granted, bounded by a buffer (it may grant
            // more than asked; no offset can reach past one).
            let max_offset = usize::try_from(nic.max_offset.min(host.max_offset))
                .unwrap_or(usize::MAX)
                .min(region.buf_size() as usize);
            ports.push(Self {
                region,
                _mapping: Arc::clone(&mapping),
                register: nic.register,
                devices: [nic.device, host.device],
                max_offset,
                headroom_refused: None,
                name: name.to_owned(),
            });
        }
        Ok(ports)
    }

    /// One registration with its own descriptor.
    fn register_one(
        name: &str,
        binding: Binding,
        host_rings: u16,
        headroom: Option<u32>,
    ) -> Result<Registered, KernelPortError> {
        let device = OpenOptions::new()
            .read(true)
            .write(true)
            .open(NETMAP_DEVICE_NAME.to_string_lossy().as_ref())
            .map_err(KernelPortError::Device)?;
        let mut offsets = offsets_option(headroom.unwrap_or(0));
        let option = headroom.map(|_| &mut offsets);
        let register = match register_port(&device, name, binding, host_rings, option) {
            Ok(register) => register,
            // The kernel sets an option's status to the errno it failed
            // the request with when the option itself was refused (an
            // older netmap, a driver without offsets); any other failure
            // leaves them different.
            Err(KernelPortError::Register { name, error })
                if headroom.is_some()
                    && offsets.nro_opt.nro_status != 0
                    && error.raw_os_error() == i32::try_from(offsets.nro_opt.nro_status).ok() =>
            {
                return Err(KernelPortError::OffsetsRefused { name, error });
            }
            Err(e) => return Err(e),
        };
        let max_offset = if headroom.is_some() {
            offsets.nro_max_offset
        } else {
            0
        };
        Ok(Registered {
            device,
            register,
            max_offset,
        })
    }

    /// What the kernel reported at the NIC ring pair's registration.
    pub fn register_info(&self) -> nmreq_register {
        self.register
    }

    /// The port's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A sync `ioctl` on both registrations.
    fn sync(&self, request: netmap_sys::ioctl::IoctlRequest, what: &str) -> io::Result<()> {
        let mut result = Ok(());
        for device in &self.devices {
            // SAFETY: the sync ioctls take no argument; the descriptor is
            // ours.
            let rc = unsafe { libc::ioctl(device.as_raw_fd(), request) };
            if rc != 0 && result.is_ok() {
                let error = io::Error::last_os_error();
                result = Err(io::Error::new(
                    error.kind(),
                    format!("netmap {what} on {}: {error}", self.name),
                ));
            }
        }
        result
    }
}

impl NetmapPort for KernelPort {
    fn region(&self) -> &NetmapRegion {
        &self.region
    }

    fn max_offset(&self) -> usize {
        self.max_offset
    }

    fn txsync(&mut self) -> io::Result<()> {
        self.sync(NIOCTXSYNC, "NIOCTXSYNC")
    }

    fn rxsync(&mut self) -> io::Result<()> {
        self.sync(NIOCRXSYNC, "NIOCRXSYNC")
    }

    /// `poll` on both registrations syncs their TX rings (pending frames
    /// leave) and, on return, their RX rings, as netmap's `poll` does.
    fn poll(&mut self, timeout: Duration) -> io::Result<()> {
        let mut fds = self.devices.each_ref().map(|device| libc::pollfd {
            fd: device.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        });
        let millis = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
        // SAFETY: two valid pollfds for the call's duration.
        let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, millis) };
        if rc < 0 {
            let error = io::Error::last_os_error();
            if error.kind() != io::ErrorKind::Interrupted {
                return Err(error);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_register_requests_name_the_port_and_bind_one_nic_or_host_ring_pair() {
        let (header, body) = register_request("eth1", Binding::NicRing(2), 4).unwrap();
        assert_eq!(header.nr_version, 14);
        assert_eq!(header.nr_reqtype, NETMAP_REQ_REGISTER);
        let name: Vec<u8> = header.nr_name[..5]
            .iter()
            .map(|c| c.to_ne_bytes()[0])
            .collect();
        assert_eq!(name, b"eth1\0");
        assert_eq!(header.nr_options, 0);
        assert_eq!((body.nr_mode, body.nr_ringid), (NR_REG_ONE_NIC, 2));
        assert_eq!(
            (body.nr_host_tx_rings, body.nr_host_rx_rings),
            (4, 4),
            "a host ring pair per worker"
        );
        assert_eq!(body.nr_flags, 0);
        let (_, host) = register_request("eth1", Binding::HostRing(3), 4).unwrap();
        assert_eq!((host.nr_mode, host.nr_ringid), (NR_REG_ONE_SW, 3));
    }

    #[test]
    fn each_worker_needs_a_receive_ring_a_transmit_ring_and_a_host_ring_pair() {
        let port = nmreq_register {
            nr_rx_rings: 4,
            nr_tx_rings: 4,
            nr_host_rx_rings: 4,
            nr_host_tx_rings: 4,
            ..nmreq_register::default()
        };
        assert!(rings_suffice(&port, 4));
        assert!(!rings_suffice(&port, 2), "RX rings 2 and 3 would go unread");
        assert!(!rings_suffice(&port, 5));
        let one_host = nmreq_register {
            nr_host_rx_rings: 1,
            nr_host_tx_rings: 1,
            ..port
        };
        assert!(
            !rings_suffice(&one_host, 4),
            "workers would share host ring 0"
        );
        let few_tx = nmreq_register {
            nr_tx_rings: 2,
            ..port
        };
        assert!(!rings_suffice(&few_tx, 4), "workers would share TX ring 0");
        let message = KernelPortError::Rings {
            name: "eth1".into(),
            workers: 2,
            register: port,
        }
        .to_string();
        assert!(message.contains("RR_WORKERS=4"), "{message}");
        assert!(message.contains("ethtool -L eth1 combined 2"), "{message}");
    }

    #[test]
    fn the_offsets_option_asks_for_the_headroom_from_the_first_packet_on() {
        let option = offsets_option(128);
        assert_eq!(option.nro_opt.nro_reqtype, NETMAP_REQ_OPT_OFFSETS);
        assert_eq!(option.nro_opt.nro_next, 0, "the only option");
        assert_eq!(option.nro_opt.nro_size, 0, "a fixed-size option");
        assert_eq!(option.nro_max_offset, 128);
        assert_eq!(option.nro_initial_offset, 128);
        assert_eq!(option.nro_offset_bits, 0, "the whole ptr field");
        assert_eq!(option.nro_min_gap, 0, "reserved");
    }

    #[test]
    fn headroom_is_kept_only_where_a_full_frame_still_fits_the_driver_s_buffer() {
        // netmap's default 2048-byte buffers: 1920 bytes after 128 of
        // headroom, which ixgbe, igb and e1000 program as 1024.
        assert_eq!(receive_room(2048, 128), 1024);
        assert!(receive_room(2048, 128) < 1518);
        assert_eq!(receive_room(4096, 128), 3072);
        assert_eq!(receive_room(2048, 0), 2048);
        assert_eq!(receive_room(64, 128), 0, "no underflow");
    }

    #[test]
    fn the_registrations_of_a_port_must_share_one_memory_region() {
        let in_region = |nr_mem_id| nmreq_register {
            nr_mem_id,
            ..nmreq_register::default()
        };
        let same = [in_region(1), in_region(1), in_region(1)];
        assert_eq!(one_memory_region(same.iter()), Ok(()));
        let apart = [in_region(1), in_region(1), in_region(3)];
        assert_eq!(one_memory_region(apart.iter()), Err((1, 3)));
        assert_eq!(one_memory_region([].iter()), Ok(()));
    }

    #[test]
    fn port_names_that_do_not_fit_are_refused() {
        let request = |name: &str| register_request(name, Binding::NicRing(0), 1);
        assert!(request("").is_err());
        assert!(request("a\0b").is_err());
        assert!(request(&"x".repeat(64)).is_err());
        assert!(request(&"x".repeat(63)).is_ok());
        let message = request("a\0b").unwrap_err().to_string();
        assert!(message.contains("without NUL"), "{message}");
    }

    #[test]
    fn without_netmap_the_error_says_what_to_load() {
        if std::path::Path::new("/dev/netmap").exists() {
            return;
        }
        let message = KernelPort::open_rings("lo", 1, 128, 1518)
            .unwrap_err()
            .to_string();
        assert!(message.contains("/dev/netmap does not exist"), "{message}");
        assert!(message.contains("emulated port"), "{message}");
    }
}
