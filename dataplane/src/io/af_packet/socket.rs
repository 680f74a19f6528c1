//! The packet socket's system calls, each failure named by its call.

use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::error::AfPacketError;

/// A socket option, by level/name and the name shown in errors.
pub(super) struct SockOpt {
    pub name: libc::c_int,
    pub call: &'static str,
}

pub(super) const PACKET_VERSION: SockOpt = SockOpt {
    name: libc::PACKET_VERSION,
    call: "setsockopt(PACKET_VERSION)",
};
pub(super) const PACKET_RESERVE: SockOpt = SockOpt {
    name: libc::PACKET_RESERVE,
    call: "setsockopt(PACKET_RESERVE)",
};
pub(super) const PACKET_LOSS: SockOpt = SockOpt {
    name: libc::PACKET_LOSS,
    call: "setsockopt(PACKET_LOSS)",
};
pub(super) const PACKET_QDISC_BYPASS: SockOpt = SockOpt {
    name: libc::PACKET_QDISC_BYPASS,
    call: "setsockopt(PACKET_QDISC_BYPASS)",
};
pub(super) const PACKET_IGNORE_OUTGOING: SockOpt = SockOpt {
    name: libc::PACKET_IGNORE_OUTGOING,
    call: "setsockopt(PACKET_IGNORE_OUTGOING)",
};
pub(super) const PACKET_FANOUT: SockOpt = SockOpt {
    name: libc::PACKET_FANOUT,
    call: "setsockopt(PACKET_FANOUT)",
};
pub(super) const PACKET_RX_RING: SockOpt = SockOpt {
    name: libc::PACKET_RX_RING,
    call: "setsockopt(PACKET_RX_RING)",
};
pub(super) const PACKET_TX_RING: SockOpt = SockOpt {
    name: libc::PACKET_TX_RING,
    call: "setsockopt(PACKET_TX_RING)",
};

/// A packet socket bound to nothing yet, for `interface` (named in errors).
#[derive(Debug)]
pub(super) struct PacketSocket {
    fd: OwnedFd,
    interface: String,
}

impl PacketSocket {
    /// Opens a raw packet socket that receives nothing until bound: protocol 0
    /// keeps frames from queueing before the rings exist.
    pub(super) fn open(interface: &str) -> Result<Self, AfPacketError> {
        // SAFETY: plain socket(2) call; the result is checked.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(AfPacketError::call(
                interface,
                "socket(AF_PACKET, SOCK_RAW)",
                io::Error::last_os_error(),
            ));
        }
        // SAFETY: fd is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Self {
            fd,
            interface: interface.to_owned(),
        })
    }

    pub(super) fn fd(&self) -> libc::c_int {
        self.fd.as_raw_fd()
    }

    pub(super) fn interface(&self) -> &str {
        &self.interface
    }

    pub(super) fn error(&self, call: &'static str, source: io::Error) -> AfPacketError {
        AfPacketError::call(&self.interface, call, source)
    }

    /// `setsockopt(SOL_PACKET, option, value)`.
    pub(super) fn set<T>(&self, option: &SockOpt, value: &T) -> Result<(), AfPacketError> {
        // SAFETY: `value` is a live `T` and its size is passed with it; the
        // kernel only reads it.
        let rc = unsafe {
            libc::setsockopt(
                self.fd(),
                libc::SOL_PACKET,
                option.name,
                std::ptr::from_ref(value).cast(),
                size_of::<T>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(self.error(option.call, io::Error::last_os_error()));
        }
        Ok(())
    }

    /// Binds to `ifindex`, receiving `protocol` (host order; `ETH_P_ALL` for all).
    pub(super) fn bind(&self, ifindex: u32, protocol: u16) -> Result<(), AfPacketError> {
        // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
        let mut address: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        address.sll_family = libc::AF_PACKET as u16;
        address.sll_protocol = protocol.to_be();
        address.sll_ifindex = libc::c_int::try_from(ifindex).map_err(|_| {
            self.error(
                "bind(sockaddr_ll)",
                io::Error::new(io::ErrorKind::InvalidInput, "interface index out of range"),
            )
        })?;
        // SAFETY: the address is a live sockaddr_ll and its size is passed.
        let rc = unsafe {
            libc::bind(
                self.fd(),
                std::ptr::from_ref(&address).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(self.error("bind(sockaddr_ll)", io::Error::last_os_error()));
        }
        Ok(())
    }

    /// Reads and resets the kernel's counters: (frames received, frames dropped
    /// because the RX ring was full).
    pub(super) fn take_statistics(&self) -> Result<(u32, u32), AfPacketError> {
        let mut stats = libc::tpacket_stats {
            tp_packets: 0,
            tp_drops: 0,
        };
        let mut len = size_of::<libc::tpacket_stats>() as libc::socklen_t;
        // SAFETY: `stats` is a live tpacket_stats and `len` its size; the
        // kernel writes at most `len` bytes.
        let rc = unsafe {
            libc::getsockopt(
                self.fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                std::ptr::from_mut(&mut stats).cast(),
                &raw mut len,
            )
        };
        if rc < 0 {
            return Err(self.error("getsockopt(PACKET_STATISTICS)", io::Error::last_os_error()));
        }
        Ok((stats.tp_packets, stats.tp_drops))
    }

    /// Asks the kernel to send every TX slot marked `SEND_REQUEST`, without
    /// waiting. Returns the error of the first frame that failed, if any.
    pub(super) fn kick(&self) -> io::Result<()> {
        crate::io::kernel_socket::send_tx_ring(self.fd())
    }

    /// Waits until the socket is readable or `timeout` passes (interrupted
    /// waits return early, as a spurious wake-up).
    pub(super) fn poll_readable(&self, timeout: std::time::Duration) -> Result<(), AfPacketError> {
        let mut poll = libc::pollfd {
            fd: self.fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let spec = libc::timespec {
            tv_sec: libc::time_t::try_from(timeout.as_secs()).unwrap_or(libc::time_t::MAX),
            // Below 10^9, so it fits any c_long.
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        };
        // SAFETY: one live pollfd and a live timespec; no signal mask change.
        let rc = unsafe { libc::ppoll(&raw mut poll, 1, &raw const spec, std::ptr::null()) };
        if rc < 0 {
            let error = io::Error::last_os_error();
            if error.kind() != io::ErrorKind::Interrupted {
                return Err(self.error("ppoll(POLLIN)", error));
            }
        }
        Ok(())
    }
}

/// The index of interface `name` in this thread's network namespace.
pub(super) fn interface_index(name: &str) -> Result<u32, AfPacketError> {
    crate::io::kernel_socket::interface_index(name).map_err(|source| {
        AfPacketError::NoSuchInterface {
            interface: name.to_owned(),
            source,
        }
    })
}
