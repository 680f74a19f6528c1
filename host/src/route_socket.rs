//! FreeBSD: the route toward an address and the ARP table, from the kernel
//! itself, as `route -n get` and `arp -an` read them: an `RTM_GET` on a
//! routing socket, and the `net.route.0.inet.flags.llinfo` sysctl dump.
//! [`crate::route_messages`] parses the bytes.
//!
//! Why not run `arp -an` and parse its text: the binary interface is the one
//! those tools are built on and has kept its layout across releases (the
//! text has not: libxo, "expires in", "permanent"), it needs no process per
//! look-up every second, and its failures are errno values, not output to
//! guess at.

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use crate::route_messages::{self, ArpEntry, RouteAnswer};

/// How long an answer to `RTM_GET` is waited for.
const ANSWER_WAIT: Duration = Duration::from_secs(1);
/// Tries of the ARP dump when the table grows between sizing and reading.
const DUMP_TRIES: usize = 4;

/// A routing socket for IPv4, of this process.
#[derive(Debug)]
pub struct RouteSocket {
    socket: OwnedFd,
    pid: i32,
    seq: i32,
}

impl RouteSocket {
    pub fn open() -> io::Result<Self> {
        // SAFETY: plain socket(2) call; the result is checked before use.
        let fd = unsafe {
            libc::socket(
                libc::PF_ROUTE,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::AF_INET,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor nothing else owns.
        let socket = unsafe { OwnedFd::from_raw_fd(fd) };
        let timeout = libc::timeval {
            tv_sec: 0,
            tv_usec: 100_000,
        };
        // SAFETY: the option value is a live timeval of the size passed.
        let rc = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&raw const timeout).cast(),
                size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Self {
            socket,
            // SAFETY: getpid has no preconditions.
            pid: unsafe { libc::getpid() },
            seq: 0,
        })
    }

    /// The route the kernel would use toward `dst` (`route -n get DST`).
    pub fn route_to(&mut self, dst: Ipv4Addr) -> io::Result<RouteAnswer> {
        self.seq = self.seq.wrapping_add(1);
        let request = route_messages::route_request(dst, self.seq);
        // SAFETY: the buffer is live for the call and its length is passed.
        let written = unsafe {
            libc::write(
                self.socket.as_raw_fd(),
                request.as_ptr().cast(),
                request.len(),
            )
        };
        if written < 0 {
            let error = io::Error::last_os_error();
            if error.raw_os_error() == Some(libc::ESRCH) {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("no route to {dst}"),
                ));
            }
            return Err(error);
        }
        // Our answer comes among every other change the socket reports;
        // wait for it a bounded time.
        let deadline = Instant::now() + ANSWER_WAIT;
        let mut buffer = vec![0u8; 2048];
        while Instant::now() < deadline {
            // SAFETY: the buffer is live and writable for its length.
            let read = unsafe {
                libc::read(
                    self.socket.as_raw_fd(),
                    buffer.as_mut_ptr().cast(),
                    buffer.len(),
                )
            };
            let Ok(read) = usize::try_from(read) else {
                let error = io::Error::last_os_error();
                match error.kind() {
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => continue,
                    _ => return Err(error),
                }
            };
            match route_messages::route_answer(&buffer[..read], self.pid, self.seq) {
                Ok(Some(answer)) => return Ok(answer),
                Ok(None) => {}
                Err(errno) => {
                    return Err(io::Error::new(
                        io::Error::from_raw_os_error(errno).kind(),
                        format!("no route to {dst}: {}", io::Error::from_raw_os_error(errno)),
                    ))
                }
            }
        }
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("the kernel did not answer RTM_GET for {dst} within {ANSWER_WAIT:?}"),
        ))
    }

    /// The IPv4 ARP table (`arp -an`), every interface.
    pub fn arp_table(&self) -> io::Result<Vec<ArpEntry>> {
        let mut mib = [
            libc::CTL_NET,
            libc::PF_ROUTE,
            0,
            libc::AF_INET,
            libc::NET_RT_FLAGS,
            libc::RTF_LLINFO,
        ];
        for _ in 0..DUMP_TRIES {
            let mut size: libc::size_t = 0;
            // SAFETY: a size query: no output buffer, `size` is written.
            let rc = unsafe {
                libc::sysctl(
                    mib.as_mut_ptr(),
                    mib.len() as libc::c_uint,
                    std::ptr::null_mut(),
                    &raw mut size,
                    std::ptr::null(),
                    0,
                )
            };
            if rc != 0 {
                return Err(io::Error::last_os_error());
            }
            // Room for entries added between the two calls.
            let mut buffer = vec![0u8; size + size / 4 + 1024];
            let mut length = buffer.len();
            // SAFETY: the buffer is live and writable for `length` bytes,
            // which the kernel updates to what it wrote.
            let rc = unsafe {
                libc::sysctl(
                    mib.as_mut_ptr(),
                    mib.len() as libc::c_uint,
                    buffer.as_mut_ptr().cast(),
                    &raw mut length,
                    std::ptr::null(),
                    0,
                )
            };
            if rc == 0 {
                return Ok(route_messages::arp_entries(
                    &buffer[..length.min(buffer.len())],
                ));
            }
            let error = io::Error::last_os_error();
            if error.raw_os_error() != Some(libc::ENOMEM) {
                return Err(error);
            }
        }
        Err(io::Error::other(
            "the ARP table kept growing while it was read",
        ))
    }
}
