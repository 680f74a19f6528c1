//! Where an `AF_XDP` worker sends the frames the pipeline leaves to the host.
//!
//! The steering program already passes everything that is not the
//! balancer's to the kernel (`XDP_PASS`, no copy), and its tests hold it to
//! the pipeline's own `ToHost` decision, so a redirected frame comes back
//! `ToHost` only if the two ever disagree. Such a frame must still reach the
//! kernel, and an `AF_PACKET` socket cannot do that: what it sends leaves
//! through the interface, it is never received by the host. A tap device
//! is the kernel's own way in: what is written to it is received by the
//! stack as if it had arrived on the tap, which carries the interface's
//! MAC address so that the frame counts as addressed to this host. The tap
//! lives as long as its descriptor (not persistent): it goes with the
//! worker, even on `kill -9`, and changes nothing else on the host.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// `TUNSETIFF`: `_IOW('T', 202, int)`.
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;

/// `struct ifreq` with the members used here.
#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    /// `ifr_flags` (a `short`) or `ifr_hwaddr` (a `sockaddr`), overlaid.
    data: [u8; 24],
}

impl IfReq {
    fn named(name: &str) -> Self {
        let mut req = Self {
            name: [0; libc::IFNAMSIZ],
            data: [0; 24],
        };
        for (o, b) in req
            .name
            .iter_mut()
            .zip(name.bytes().take(libc::IFNAMSIZ - 1))
        {
            *o = b;
        }
        req
    }

    fn set_flags(&mut self, flags: i16) {
        self.data[..2].copy_from_slice(&flags.to_ne_bytes());
    }

    fn flags(&self) -> i16 {
        i16::from_ne_bytes([self.data[0], self.data[1]])
    }
}

fn ioctl(fd: libc::c_int, request: libc::c_ulong, req: &mut IfReq, what: &str) -> io::Result<()> {
    // SAFETY: `req` is a live ifreq-sized struct, which these requests read
    // and write within.
    let rc = unsafe { libc::ioctl(fd, request as _, std::ptr::from_mut(req)) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("{what}: {e}")));
    }
    Ok(())
}

/// A tap device the worker writes host-bound frames to.
#[derive(Debug)]
pub(super) struct HostPath {
    tap: OwnedFd,
    name: String,
}

impl HostPath {
    /// Creates tap `name` with MAC `mac`, up, in this thread's namespace.
    pub(super) fn open(name: &str, mac: [u8; 6]) -> io::Result<Self> {
        let path = c"/dev/net/tun";
        let path: &CStr = path;
        // SAFETY: a NUL-terminated path; the result is checked.
        let fd = unsafe {
            libc::open(
                path.as_ptr(),
                libc::O_RDWR | libc::O_CLOEXEC | libc::O_NONBLOCK,
            )
        };
        if fd < 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(e.kind(), format!("open /dev/net/tun: {e}")));
        }
        // SAFETY: a fresh descriptor nothing else owns.
        let tap = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut req = IfReq::named(name);
        req.set_flags((libc::IFF_TAP | libc::IFF_NO_PI) as i16);
        ioctl(tap.as_raw_fd(), TUNSETIFF, &mut req, "TUNSETIFF")?;
        // SAFETY: plain socket(2) call, used only for the interface ioctls.
        let control =
            unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if control < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor nothing else owns.
        let control = unsafe { OwnedFd::from_raw_fd(control) };
        let mut hw = IfReq::named(name);
        hw.data[..2].copy_from_slice(&(libc::ARPHRD_ETHER).to_ne_bytes());
        hw.data[2..8].copy_from_slice(&mac);
        ioctl(
            control.as_raw_fd(),
            libc::SIOCSIFHWADDR as _,
            &mut hw,
            "SIOCSIFHWADDR",
        )?;
        let mut up = IfReq::named(name);
        ioctl(
            control.as_raw_fd(),
            libc::SIOCGIFFLAGS as _,
            &mut up,
            "SIOCGIFFLAGS",
        )?;
        up.set_flags(up.flags() | libc::IFF_UP as i16);
        ioctl(
            control.as_raw_fd(),
            libc::SIOCSIFFLAGS as _,
            &mut up,
            "SIOCSIFFLAGS",
        )?;
        Ok(Self {
            tap,
            name: name.to_owned(),
        })
    }

    pub(super) fn name(&self) -> &str {
        &self.name
    }

    /// Hands `frame` to the kernel's receive path; false when the tap's
    /// queue is full (the frame is then dropped, and counted by the caller).
    pub(super) fn send(&self, frame: &[u8]) -> bool {
        // SAFETY: `frame` is a live slice; write(2) only reads it.
        let rc = unsafe { libc::write(self.tap.as_raw_fd(), frame.as_ptr().cast(), frame.len()) };
        rc >= 0
    }
}
