//! `KernelPort`: a netmap port of the real kernel, through `/dev/netmap`.
//!
//! Opening registers the interface with `NIOCCTRL` / `NETMAP_REQ_REGISTER`
//! in mode `NR_REG_NIC_SW` (every NIC ring and the host rings), maps the
//! region the kernel reports (`nr_memsize`), and builds the checked view at
//! `nr_offset`. The syncs are `ioctl(NIOCTXSYNC)`, `ioctl(NIOCRXSYNC)` and
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
    nmreq_header, nmreq_register, NETMAP_API, NETMAP_DEVICE_NAME, NETMAP_REQ_IFNAMSIZ,
    NETMAP_REQ_REGISTER, NIOCCTRL, NIOCRXSYNC, NIOCTXSYNC, NR_REG_NIC_SW,
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

/// A port of the kernel's netmap. See the module docs.
#[derive(Debug)]
pub struct KernelPort {
    /// Declared first: dropped before the mapping it views.
    region: NetmapRegion,
    _mapping: Mapping,
    /// Closed last: unregisters the port.
    device: File,
    register: nmreq_register,
    name: String,
}

impl KernelPort {
    /// Registers `name` (an interface, as netmap names ports: `em0`,
    /// `eth1`) with its NIC and host rings.
    pub fn open(name: &str) -> Result<Self, KernelPortError> {
        let (mut header, mut register) = register_request(name)?;
        let device = OpenOptions::new()
            .read(true)
            .write(true)
            .open(NETMAP_DEVICE_NAME.to_string_lossy().as_ref())
            .map_err(KernelPortError::Device)?;
        header.nr_body = std::ptr::addr_of_mut!(register) as u64;
        // SAFETY: NIOCCTRL takes a `nmreq_header` whose nr_body points at
        // the request's body; both live on this frame for the call, and the
        // kernel writes only into them (register's out fields).
        let rc = unsafe { libc::ioctl(device.as_raw_fd(), NIOCCTRL, &raw mut header) };
        if rc != 0 {
            return Err(KernelPortError::Register {
                name: name.to_owned(),
                error: io::Error::last_os_error(),
            });
        }
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
        let message = KernelPort::open("lo").unwrap_err().to_string();
        assert!(message.contains("/dev/netmap does not exist"), "{message}");
        assert!(message.contains("emulated port"), "{message}");
    }
}
