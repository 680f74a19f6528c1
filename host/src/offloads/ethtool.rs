//! The legacy `SIOCETHTOOL` commands, one `ethtool_value` each, on a socket
//! of the calling thread's network namespace.

use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::Offload;

/// `struct ethtool_value` from `<linux/ethtool.h>`: a command and one word.
#[repr(C)]
struct EthtoolValue {
    cmd: u32,
    data: u32,
}

// Command numbers from `<linux/ethtool.h>` (stable kernel ABI).
const ETHTOOL_GRXCSUM: u32 = 0x14;
const ETHTOOL_SRXCSUM: u32 = 0x15;
const ETHTOOL_GTXCSUM: u32 = 0x16;
const ETHTOOL_STXCSUM: u32 = 0x17;
const ETHTOOL_GSG: u32 = 0x18;
const ETHTOOL_SSG: u32 = 0x19;
const ETHTOOL_GTSO: u32 = 0x1e;
const ETHTOOL_STSO: u32 = 0x1f;
const ETHTOOL_GGSO: u32 = 0x23;
const ETHTOOL_SGSO: u32 = 0x24;
const ETHTOOL_GFLAGS: u32 = 0x25;
const ETHTOOL_SFLAGS: u32 = 0x26;
const ETHTOOL_GGRO: u32 = 0x2b;
const ETHTOOL_SGRO: u32 = 0x2c;
/// LRO's bit in the `GFLAGS`/`SFLAGS` word.
const ETH_FLAG_LRO: u32 = 1 << 15;

/// How one offload is read and written: its own get/set pair, or one bit of
/// the flags word (LRO).
#[derive(Debug, Clone, Copy)]
pub(super) struct Command {
    pub get: u32,
    pub set: u32,
    pub get_name: &'static str,
    pub set_name: &'static str,
    /// `Some(bit)` when the offload is a bit of the flags word.
    pub flag: Option<u32>,
}

pub(super) fn command(offload: Offload) -> Command {
    let pair = |get, set, get_name, set_name| Command {
        get,
        set,
        get_name,
        set_name,
        flag: None,
    };
    match offload {
        Offload::RxChecksum => pair(
            ETHTOOL_GRXCSUM,
            ETHTOOL_SRXCSUM,
            "ETHTOOL_GRXCSUM",
            "ETHTOOL_SRXCSUM",
        ),
        Offload::TxChecksum => pair(
            ETHTOOL_GTXCSUM,
            ETHTOOL_STXCSUM,
            "ETHTOOL_GTXCSUM",
            "ETHTOOL_STXCSUM",
        ),
        Offload::ScatterGather => pair(ETHTOOL_GSG, ETHTOOL_SSG, "ETHTOOL_GSG", "ETHTOOL_SSG"),
        Offload::Tso => pair(ETHTOOL_GTSO, ETHTOOL_STSO, "ETHTOOL_GTSO", "ETHTOOL_STSO"),
        Offload::Gso => pair(ETHTOOL_GGSO, ETHTOOL_SGSO, "ETHTOOL_GGSO", "ETHTOOL_SGSO"),
        Offload::Gro => pair(ETHTOOL_GGRO, ETHTOOL_SGRO, "ETHTOOL_GGRO", "ETHTOOL_SGRO"),
        Offload::Lro => Command {
            get: ETHTOOL_GFLAGS,
            set: ETHTOOL_SFLAGS,
            get_name: "ETHTOOL_GFLAGS",
            set_name: "ETHTOOL_SFLAGS",
            flag: Some(ETH_FLAG_LRO),
        },
    }
}

/// A datagram socket to carry the ioctls. The ioctl acts on the interface
/// of that name in the socket's network namespace, which is the calling
/// thread's when the socket is opened. `AF_UNIX` needs no IP stack: the
/// kernel hands interface ioctls of any socket family to `dev_ioctl`.
#[derive(Debug)]
pub(super) struct EthtoolSocket {
    fd: OwnedFd,
    /// `ifr_name`: the interface name, NUL-padded.
    name: [libc::c_char; libc::IFNAMSIZ],
}

impl EthtoolSocket {
    /// Opens the socket for `interface`, already checked to be 1 to 15
    /// bytes without NUL.
    pub(super) fn open(interface: &str) -> io::Result<Self> {
        let mut name = [0 as libc::c_char; libc::IFNAMSIZ];
        for (slot, byte) in name.iter_mut().zip(interface.bytes()) {
            *slot = libc::c_char::from_ne_bytes([byte]);
        }
        // SAFETY: plain socket(2) call; the result is checked.
        let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Self { fd, name })
    }

    /// Runs one `ethtool_value` command and returns the word the kernel
    /// left in it.
    fn call(&self, cmd: u32, data: u32) -> io::Result<u32> {
        let mut value = EthtoolValue { cmd, data };
        // SAFETY: ifreq is plain old data; all-zero is a valid value.
        let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
        request.ifr_name = self.name;
        request.ifr_ifru.ifru_data = std::ptr::from_mut(&mut value).cast();
        // SAFETY: `request` is a live ifreq whose data pointer points at a
        // live ethtool_value, the argument every command used here takes;
        // both outlive the call, and the kernel writes at most
        // size_of::<EthtoolValue>() bytes through the pointer.
        let rc = unsafe {
            libc::ioctl(
                self.fd.as_raw_fd(),
                libc::SIOCETHTOOL as _,
                &raw mut request,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        debug_assert_eq!(size_of::<EthtoolValue>(), 8);
        Ok(value.data)
    }

    /// Whether `command`'s offload is on.
    pub(super) fn get(&self, command: &Command) -> io::Result<bool> {
        let word = self.call(command.get, 0)?;
        Ok(match command.flag {
            Some(bit) => word & bit != 0,
            None => word != 0,
        })
    }

    /// Turns `command`'s offload on or off. For a flag, the other flags
    /// are read first and written back unchanged.
    pub(super) fn set(&self, command: &Command, on: bool) -> io::Result<()> {
        let data = match command.flag {
            Some(bit) => {
                let flags = self.call(command.get, 0)?;
                if on {
                    flags | bit
                } else {
                    flags & !bit
                }
            }
            None => u32::from(on),
        };
        self.call(command.set, data).map(|_| ())
    }
}
