//! Zero-copy forwarding for a direction with no toxic in the way: `splice(2)` moves
//! bytes from the source socket into a pipe and from the pipe into the destination
//! socket without copying them through the proxy's memory, which is what lets a
//! proxied stream keep up with a direct one.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use tokio::io::Interest;
use tokio::net::TcpStream;

/// How much the pipe may hold (the kernel may give less; 1 MiB is the unprivileged
/// maximum).
const PIPE_BYTES: libc::c_int = 1 << 20;

/// A pipe between the two sockets of one direction.
#[derive(Debug)]
pub struct SplicePipe {
    read: OwnedFd,
    write: OwnedFd,
    capacity: usize,
    /// Bytes in the pipe, spliced in and not yet out.
    pub buffered: usize,
    /// The last fill found the pipe full (its slots can run out before its bytes).
    full: bool,
}

fn splice(from: libc::c_int, to: libc::c_int, length: usize) -> io::Result<usize> {
    // SAFETY: both descriptors are open for the duration of the call (owned by the
    // pipe or borrowed from a live socket); null offsets are allowed for pipes and
    // sockets, and the kernel checks the length.
    let moved = unsafe {
        libc::splice(
            from,
            std::ptr::null_mut(),
            to,
            std::ptr::null_mut(),
            length,
            libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
        )
    };
    // Negative means failure, with the reason in errno.
    usize::try_from(moved).map_err(|_| io::Error::last_os_error())
}

impl SplicePipe {
    pub fn new() -> io::Result<Self> {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: `fds` has room for the two descriptors pipe2 writes.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 succeeded, so both are fresh descriptors owned by nobody else.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // A bigger pipe moves more per wake-up; the default (64 KiB) also works.
        // SAFETY: F_SETPIPE_SZ and F_GETPIPE_SZ take an int and touch no memory.
        let capacity = unsafe {
            libc::fcntl(write.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_BYTES);
            libc::fcntl(write.as_raw_fd(), libc::F_GETPIPE_SZ)
        };
        Ok(SplicePipe {
            read,
            write,
            capacity: usize::try_from(capacity).unwrap_or(0).max(4096),
            buffered: 0,
            full: false,
        })
    }

    pub fn has_room(&self) -> bool {
        !self.full && self.buffered < self.capacity
    }

    /// Moves what the source holds into the pipe: `Ok(0)` at the end of stream,
    /// `WouldBlock` when nothing moved. With an empty pipe that means the socket is
    /// empty, and its readiness is cleared; with bytes in the pipe it may mean the
    /// pipe is full, so readiness is kept and no fill is tried before the next drain.
    pub fn fill(&mut self, source: &TcpStream) -> io::Result<usize> {
        let room = self.capacity - self.buffered;
        let (from, to) = (source.as_raw_fd(), self.write.as_raw_fd());
        let moved = if self.buffered == 0 {
            source.try_io(Interest::READABLE, || splice(from, to, room))
        } else {
            splice(from, to, room)
        };
        match moved {
            Ok(moved) => {
                self.buffered += moved;
                Ok(moved)
            }
            Err(error) => {
                if error.kind() == io::ErrorKind::WouldBlock && self.buffered > 0 {
                    self.full = true;
                }
                Err(error)
            }
        }
    }

    /// Moves what the pipe holds into the destination: `WouldBlock` (readiness
    /// cleared) when the destination is full. Called only with bytes in the pipe.
    pub fn drain(&mut self, destination: &TcpStream) -> io::Result<usize> {
        let moved = destination.try_io(Interest::WRITABLE, || {
            splice(
                self.read.as_raw_fd(),
                destination.as_raw_fd(),
                self.buffered,
            )
        })?;
        self.buffered -= moved;
        if moved > 0 {
            self.full = false;
        }
        Ok(moved)
    }
}
