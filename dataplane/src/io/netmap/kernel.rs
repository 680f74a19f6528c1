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
    /// The kernel refused the registration's `NETMAP_REQ_OPT_OFFSETS`
    /// option (the port is then registered without it).
    OffsetsRefused { name: String, error: io::Error },
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
    /// Why headroom was asked for and not used.
    headroom_refused: Option<String>,
    name: String,
}

/// The step in which several drivers size their receive buffers.
const DRIVER_RX_STEP: usize = 1024;

impl KernelPort {
    /// Registers `name` (an interface, as netmap names ports: `em0`,
    /// `eth1`) with its NIC and host rings and, where the kernel grants it
    /// and a frame of `frame_room` bytes still fits one buffer after it,
    /// `headroom` bytes in front of every received frame (0: none asked).
    /// Without the headroom, [`headroom_refused`](Self::headroom_refused)
    /// says why.
    pub fn open(name: &str, headroom: u32, frame_room: usize) -> Result<Self, KernelPortError> {
        if headroom == 0 {
            return Self::register(name, None);
        }
        let why = match Self::register(name, Some(headroom)) {
            Ok(port) => {
                let room = port.receive_room();
                if room >= frame_room {
                    return Ok(port);
                }
                // Closing the descriptor unregisters the port; it is
                // registered again below without offsets.
                format!(
                    "{} - {} bytes of headroom leave {room} bytes of receive buffer \
                     (drivers size receive buffers in 1 KiB steps), fewer than a \
                     {frame_room}-byte frame: raise netmap's buf_size",
                    port.region.buf_size(),
                    port.max_offset
                )
            }
            Err(KernelPortError::OffsetsRefused { error, .. }) => {
                format!("the kernel refused NETMAP_REQ_OPT_OFFSETS: {error}")
            }
            Err(e) => return Err(e),
        };
        let mut port = Self::register(name, None)?;
        port.headroom_refused = Some(why);
        Ok(port)
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

    /// One registration with its own descriptor, mapped and viewed.
    fn register(name: &str, headroom: Option<u32>) -> Result<Self, KernelPortError> {
        let device = OpenOptions::new()
            .read(true)
            .write(true)
            .open(NETMAP_DEVICE_NAME.to_string_lossy().as_ref())
            .map_err(KernelPortError::Device)?;
        let mut offsets = offsets_option(headroom.unwrap_or(0));
        let register = match register_port(&device, name, headroom.map(|_| &mut offsets)) {
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
        // What the kernel granted, bounded by a buffer (it may grant more
        // than asked; no offset can reach past one).
        let max_offset = match headroom {
            Some(_) => usize::try_from(offsets.nro_max_offset)
                .unwrap_or(usize::MAX)
                .min(region.buf_size() as usize),
            None => 0,
        };
        Ok(Self {
            region,
            _mapping: mapping,
            device,
            register,
            max_offset,
            headroom_refused: None,
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
        let message = KernelPort::open("lo", 128, 1518).unwrap_err().to_string();
        assert!(message.contains("/dev/netmap does not exist"), "{message}");
        assert!(message.contains("emulated port"), "{message}");
    }
}
