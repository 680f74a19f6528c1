//! The XDP socket's system calls, each failure named by its call.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// An `AF_XDP` socket.
#[derive(Debug)]
pub(super) struct XskSocket {
    fd: OwnedFd,
}

/// A failed call and its error.
pub(super) type CallResult<T> = Result<T, (&'static str, io::Error)>;

impl XskSocket {
    pub(super) fn open() -> CallResult<Self> {
        // SAFETY: plain socket(2) call; the result is checked.
        let fd = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(("socket(AF_XDP)", io::Error::last_os_error()));
        }
        // SAFETY: a fresh descriptor nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Self { fd })
    }

    pub(super) fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// `setsockopt(SOL_XDP, name, value)`.
    pub(super) fn set<T>(
        &self,
        name: libc::c_int,
        call: &'static str,
        value: &T,
    ) -> CallResult<()> {
        // SAFETY: `value` is a live `T` whose size is passed; the kernel reads it.
        let rc = unsafe {
            libc::setsockopt(
                self.fd(),
                libc::SOL_XDP,
                name,
                std::ptr::from_ref(value).cast(),
                size_of::<T>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err((call, io::Error::last_os_error()));
        }
        Ok(())
    }

    /// `getsockopt(SOL_XDP, name)` into a zeroed `T`.
    pub(super) fn get<T: Copy>(&self, name: libc::c_int, call: &'static str) -> CallResult<T> {
        // SAFETY: the option structs are plain old data; all-zero is valid.
        let mut value: T = unsafe { std::mem::zeroed() };
        let mut len = size_of::<T>() as libc::socklen_t;
        // SAFETY: `value` is a live `T` and `len` its size; the kernel writes
        // at most `len` bytes.
        let rc = unsafe {
            libc::getsockopt(
                self.fd(),
                libc::SOL_XDP,
                name,
                std::ptr::from_mut(&mut value).cast(),
                &raw mut len,
            )
        };
        if rc < 0 {
            return Err((call, io::Error::last_os_error()));
        }
        Ok(value)
    }

    /// Binds to queue `queue` of `ifindex` with `flags` (`XDP_COPY`,
    /// `XDP_ZEROCOPY`, `XDP_USE_NEED_WAKEUP`).
    pub(super) fn bind(&self, ifindex: u32, queue: u32, flags: u16) -> io::Result<()> {
        let address = libc::sockaddr_xdp {
            sxdp_family: libc::AF_XDP as u16,
            sxdp_flags: flags,
            sxdp_ifindex: ifindex,
            sxdp_queue_id: queue,
            sxdp_shared_umem_fd: 0,
        };
        // SAFETY: a live sockaddr_xdp and its size.
        let rc = unsafe {
            libc::bind(
                self.fd(),
                std::ptr::from_ref(&address).cast(),
                size_of::<libc::sockaddr_xdp>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Asks the kernel to send what the TX ring holds, without waiting.
    /// `EAGAIN`/`EBUSY`/`ENOBUFS` (still sending, queue full) are not errors:
    /// the next kick goes on.
    pub(super) fn kick_tx(&self) -> io::Result<()> {
        match crate::io::kernel_socket::send_tx_ring(self.fd()) {
            Err(error)
                if matches!(
                    error.raw_os_error(),
                    Some(libc::EAGAIN | libc::EBUSY | libc::ENOBUFS | libc::ENETDOWN | libc::EINTR)
                ) =>
            {
                Ok(())
            }
            result => result,
        }
    }

    /// Waits until the socket is readable or `timeout` passes; also wakes
    /// the kernel's receive side when it asked for a wake-up.
    pub(super) fn poll_readable(&self, timeout: Duration) -> io::Result<()> {
        let mut poll = libc::pollfd {
            fd: self.fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let spec = libc::timespec {
            tv_sec: libc::time_t::try_from(timeout.as_secs()).unwrap_or(libc::time_t::MAX),
            // Below 10^9, so it fits any c_long.
            tv_nsec: libc::c_long::from(timeout.subsec_nanos()),
        };
        // SAFETY: one live pollfd and a live timespec; no signal mask change.
        let rc = unsafe { libc::ppoll(&raw mut poll, 1, &raw const spec, std::ptr::null()) };
        if rc < 0 {
            let error = io::Error::last_os_error();
            if error.kind() != io::ErrorKind::Interrupted {
                return Err(error);
            }
        }
        Ok(())
    }
}
