//! A tun device (layer 3, no packet-information prefix) opened through
//! `/dev/net/tun`. The device lives as long as the descriptor: closing it
//! removes the interface together with its addresses and routes, which is
//! how an endpoint cleans up even when it is killed.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;

/// `struct ifreq` as TUNSETIFF reads it: the name, then the flags as the
/// first member of the union (the union is 24 bytes on 64-bit Linux).
#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _union_rest: [u8; 22],
}

/// An open tun device, non-blocking.
#[derive(Debug)]
pub struct Tun {
    file: File,
    name: String,
}

impl Tun {
    /// Creates the tun device `name` (at most 15 bytes), or attaches to a
    /// persistent one of that name.
    pub fn open(name: &str) -> io::Result<Self> {
        if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains(['/', ' ', '\0']) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("`{name}` is not an interface name: 1 to 15 bytes, no '/', space or NUL"),
            ));
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open("/dev/net/tun")?;
        let mut request = IfReq {
            name: [0; libc::IFNAMSIZ],
            flags: (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short,
            _union_rest: [0; 22],
        };
        request.name[..name.len()].copy_from_slice(name.as_bytes());
        // SAFETY: the descriptor is an open /dev/net/tun; `request` is a valid,
        // writable ifreq-sized struct that lives across the call.
        let rc = unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, &raw mut request) };
        if rc != 0 {
            let error = io::Error::last_os_error();
            return Err(io::Error::new(
                error.kind(),
                format!("TUNSETIFF {name}: {error}"),
            ));
        }
        Ok(Self {
            file,
            name: name.to_owned(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Reads one packet; `WouldBlock` when none is queued.
    #[inline]
    pub fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.file.read(buf)
    }

    /// Writes one packet (the kernel takes it as received on the device).
    #[inline]
    pub fn send(&mut self, packet: &[u8]) -> io::Result<usize> {
        self.file.write(packet)
    }
}

impl AsRawFd for Tun {
    fn as_raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_has_the_kernels_ifreq_size() {
        assert_eq!(size_of::<IfReq>(), 40);
    }

    #[test]
    fn bad_names_are_refused_before_touching_the_kernel() {
        for name in ["", "sixteen-bytes-xx", "a/b"] {
            let e = Tun::open(name).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{name}");
            assert!(e.to_string().contains(name), "{e}");
        }
    }
}
