//! `KernelPort`: a netmap port of the real kernel, through `/dev/netmap`.
//!
//! Opening registers the interface with `NIOCCTRL` / `NETMAP_REQ_REGISTER`
//! in mode `NR_REG_NIC_SW` (every NIC ring and the host rings), maps the
//! region the kernel reports (`nr_memsize`), and builds the checked view at
//! `nr_offset`. Asked for headroom, it first registers with the
//! `NETMAP_REQ_OPT_OFFSETS` option (every slot's packet starts that far into
//! its buffer; see the backend's docs for why) and, where the kernel or the
//! driver refuses the option, registers without it: the backend then moves
//! the frames it grows at the front. The syncs are `ioctl(NIOCTXSYNC)`, `ioctl(NIOCRXSYNC)` and
//! `poll`. Nothing else differs from [`EmulatedPort`](super::emulated::EmulatedPort).
//!
//! Needs the netmap module on Linux (`modprobe netmap`; `/dev/netmap`) or a
//! FreeBSD kernel (netmap is in `GENERIC`), and root or access to the
//! device.

use std::ffi::CString;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::time::Duration;

use netmap_sys::{
    nmreq_header, nmreq_opt_offsets, nmreq_option, nmreq_register, NETMAP_API, NETMAP_DEVICE_NAME,
    NETMAP_REQ_IFNAMSIZ, NETMAP_REQ_OPT_OFFSETS, NETMAP_REQ_REGISTER, NIOCCTRL, NIOCRXSYNC,
    NIOCTXSYNC, NR_REG_NIC_SW,
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
                "netmap register of {name} (API {NETMAP_API}, NR_REG_NIC_SW): {error}; \
                 is the interface up, and the kernel's netmap API {NETMAP_API}?"
            ),
            Self::Map { name, error } => write!(f, "mmap of {name}'s netmap region: {error}"),
            Self::Region { name, error } => {
                write!(f, "the kernel's netmap region for {name}: {error}")
            }
        }
    }
}

impl std::error::Error for KernelPortError {}

/// The register request for `name`: header and body. The header's `nr_body`
/// is left 0 (the caller points it at the body it keeps).
pub fn register_request(name: &str) -> Result<(nmreq_header, nmreq_register), KernelPortError> {
    let bytes = CString::new(name).map_err(|_| KernelPortError::Name(name.to_owned()))?;
    let bytes = bytes.as_bytes_with_nul();
    if bytes.len() < 2 || bytes.len() > NETMAP_REQ_IFNAMSIZ {
        return Err(KernelPortError::Name(name.to_owned()));
    }
    let mut header = nmreq_header {
        nr_version: NETMAP_API,
        nr_reqtype: NETMAP_REQ_REGISTER,
        ..nmreq_header::default()
    };
    for (dst, &src) in header.nr_name.iter_mut().zip(bytes) {
        *dst = libc::c_char::from_ne_bytes([src]);
    }
    let body = nmreq_register {
        nr_mode: NR_REG_NIC_SW,
        ..nmreq_register::default()
    };
    Ok((header, body))
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
    offsets: Option<&mut nmreq_opt_offsets>,
) -> Result<nmreq_register, KernelPortError> {
    let (mut header, mut register) = register_request(name)?;
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

/// A port of the kernel's netmap. See the module docs.
#[derive(Debug)]
pub struct KernelPort {
    /// Declared first: dropped before the mapping it views.
    region: NetmapRegion,
    _mapping: Mapping,
    /// Closed last: unregisters the port.
    device: File,
    register: nmreq_register,
    /// The offsets the kernel granted (0: registered without them).
    max_offset: usize,
    name: String,
}

impl KernelPort {
    /// Registers `name` (an interface, as netmap names ports: `em0`,
    /// `eth1`) with its NIC and host rings and, where the kernel grants it,
    /// `headroom` bytes in front of every received frame (0: none asked).
    pub fn open(name: &str, headroom: u32) -> Result<Self, KernelPortError> {
        let device = OpenOptions::new()
            .read(true)
            .write(true)
            .open(NETMAP_DEVICE_NAME.to_string_lossy().as_ref())
            .map_err(KernelPortError::Device)?;
        let mut offsets = offsets_option(headroom);
        let (register, max_offset) =
            match register_port(&device, name, (headroom > 0).then_some(&mut offsets)) {
                Ok(register) => (register, offsets.nro_max_offset),
                // The option was refused (an older netmap, a driver without
                // offsets): the port works without it.
                Err(_) if headroom > 0 && offsets.nro_opt.nro_status != 0 => {
                    (register_port(&device, name, None)?, 0)
                }
                Err(e) => return Err(e),
            };
        let max_offset = usize::try_from(max_offset).unwrap_or(0);
        let map_error = |error| KernelPortError::Map {
            name: name.to_owned(),
            error,
        };
        let len = usize::try_from(register.nr_memsize)
            .map_err(|_| map_error(io::Error::other("nr_memsize exceeds the address space")))?;
        let mapping = Mapping::shared(device.as_raw_fd(), len).map_err(map_error)?;
        let if_offset = usize::try_from(register.nr_offset).unwrap_or(usize::MAX);
        // SAFETY: the mapping is the kernel's region for this descriptor,
        // kept mapped as long as the view (dropped first); only we and the
        // kernel (inside our syncs) write it.
        let region = unsafe { NetmapRegion::new(mapping.base(), mapping.len(), if_offset) }
            .map_err(|error| KernelPortError::Region {
                name: name.to_owned(),
                error,
            })?;
        Ok(Self {
            region,
            _mapping: mapping,
            device,
            register,
            max_offset,
            name: name.to_owned(),
        })
    }

    /// What the kernel reported at registration.
    pub fn register_info(&self) -> nmreq_register {
        self.register
    }

    /// The port's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn sync(&self, request: netmap_sys::ioctl::IoctlRequest, what: &str) -> io::Result<()> {
        // SAFETY: the sync ioctls take no argument; the descriptor is ours.
        let rc = unsafe { libc::ioctl(self.device.as_raw_fd(), request) };
        if rc == 0 {
            return Ok(());
        }
        let error = io::Error::last_os_error();
        Err(io::Error::new(
            error.kind(),
            format!("netmap {what} on {}: {error}", self.name),
        ))
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

    /// `poll` syncs the TX rings (pending frames leave) and, on return, the
    /// RX rings, as netmap's `poll` does.
    fn poll(&mut self, timeout: Duration) -> io::Result<()> {
        let mut fd = libc::pollfd {
            fd: self.device.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let millis = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
        // SAFETY: one valid pollfd for the call's duration.
        let rc = unsafe { libc::poll(&raw mut fd, 1, millis) };
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
    fn the_register_request_names_the_port_and_asks_for_nic_and_host_rings() {
        let (header, body) = register_request("eth1").unwrap();
        assert_eq!(header.nr_version, 14);
        assert_eq!(header.nr_reqtype, NETMAP_REQ_REGISTER);
        let name: Vec<u8> = header.nr_name[..5]
            .iter()
            .map(|c| c.to_ne_bytes()[0])
            .collect();
        assert_eq!(name, b"eth1\0");
        assert_eq!(header.nr_options, 0);
        assert_eq!(body.nr_mode, NR_REG_NIC_SW);
        assert_eq!(body.nr_flags, 0);
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
    fn port_names_that_do_not_fit_are_refused() {
        assert!(register_request("").is_err());
        assert!(register_request("a\0b").is_err());
        assert!(register_request(&"x".repeat(64)).is_err());
        assert!(register_request(&"x".repeat(63)).is_ok());
        let message = register_request("a\0b").unwrap_err().to_string();
        assert!(message.contains("without NUL"), "{message}");
    }

    #[test]
    fn without_netmap_the_error_says_what_to_load() {
        if std::path::Path::new("/dev/netmap").exists() {
            return;
        }
        let message = KernelPort::open("lo", 128).unwrap_err().to_string();
        assert!(message.contains("/dev/netmap does not exist"), "{message}");
        assert!(message.contains("emulated port"), "{message}");
    }
}
