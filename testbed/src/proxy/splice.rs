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
    /// How many buffers the pipe holds: its capacity in pages.
    slots: usize,
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
        let capacity = usize::try_from(capacity).unwrap_or(0).max(4096);
        // SAFETY: sysconf reads a constant and touches no memory.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
        Ok(SplicePipe {
            read,
            write,
            capacity,
            slots: capacity / page.max(1),
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
    ///
    /// A fill into an empty pipe that stops short of both its byte and its slot limit
    /// took everything the socket held, so readiness is cleared then too (as tokio's
    /// own reads do after a short read): that saves the splice that would only say
    /// `EAGAIN`, one system call per message on a request/response stream. Data or an
    /// end of stream arriving later raises a fresh edge-triggered event, and tokio
    /// keeps the closed bits of readiness when it clears.
    pub fn fill(&mut self, source: &TcpStream) -> io::Result<usize> {
        let room = self.capacity - self.buffered;
        let (from, to) = (source.as_raw_fd(), self.write.as_raw_fd());
        let moved = if self.buffered == 0 {
            // Each slot holds at least one byte, so fewer bytes than slots cannot have
            // run out of slots.
            let drained_below = room.min(self.slots);
            let mut short = 0;
            let result = source.try_io(Interest::READABLE, || {
                let moved = splice(from, to, room)?;
                if moved > 0 && moved < drained_below {
                    short = moved;
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                Ok(moved)
            });
            if short > 0 {
                Ok(short)
            } else {
                result
            }
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::AsyncWriteExt;
    use tokio::net::{TcpListener, TcpStream};
    use tokio::time::timeout;

    use super::SplicePipe;

    const PATIENCE: Duration = Duration::from_secs(5);

    /// A connected pair: (the side the test writes, the side the pipe fills from).
    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let writer = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (reader, _) = listener.accept().await.unwrap();
        writer.set_nodelay(true).unwrap();
        (writer, reader)
    }

    /// Waits for readability and fills, past spurious wake-ups; a lost wake-up fails
    /// as a timeout.
    async fn fill_when_readable(pipe: &mut SplicePipe, source: &TcpStream) -> usize {
        timeout(PATIENCE, async {
            loop {
                source.readable().await.unwrap();
                match pipe.fill(source) {
                    Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
                    result => return result.unwrap(),
                }
            }
        })
        .await
        .expect("the source became readable")
    }

    #[tokio::test]
    async fn a_short_fill_takes_all_there_is_and_later_data_still_wakes_the_reader() {
        let (mut writer, reader) = pair().await;
        let (mut sink, destination) = pair().await;
        let mut pipe = SplicePipe::new().unwrap();
        for round in 1..=50_usize {
            let message = vec![u8::try_from(round).unwrap(); round];
            writer.write_all(&message).await.unwrap();
            let mut moved = 0;
            while moved < round {
                moved += fill_when_readable(&mut pipe, &reader).await;
            }
            assert_eq!(moved, round, "round {round} moved exactly its message");
            while pipe.buffered > 0 {
                timeout(PATIENCE, destination.writable())
                    .await
                    .unwrap()
                    .unwrap();
                let _ = pipe.drain(&destination);
            }
            let mut back = vec![0; round];
            tokio::io::AsyncReadExt::read_exact(&mut sink, &mut back)
                .await
                .unwrap();
            assert_eq!(back, message);
        }
    }

    #[tokio::test]
    async fn a_short_fill_just_before_the_end_of_stream_still_sees_the_end() {
        let (mut writer, reader) = pair().await;
        let mut pipe = SplicePipe::new().unwrap();
        writer.write_all(b"last words").await.unwrap();
        writer.shutdown().await.unwrap();
        let mut moved = 0;
        loop {
            let filled = fill_when_readable(&mut pipe, &reader).await;
            if filled == 0 {
                break;
            }
            moved += filled;
        }
        assert_eq!(moved, b"last words".len());
    }
}
