//! A dedicated thread for one direction with no toxic in the way: it waits in
//! poll(2) and splices socket to pipe to socket itself, so a proxied byte costs no
//! trip through the async runtime (its epoll round, task wake-up and worker hand-off),
//! which is what made the runtime's latency tail reach milliseconds on a busy machine.
//!
//! The thread stops, handing the pipe (and any bytes in it) back to the async loop,
//! when the proxy's toxic list changes (it checks before moving new bytes, so a toxic
//! the API has added acts on every byte sent after the API answered), when the source
//! ends or fails, or when the connection is dropped (cut, closed by the other
//! direction). It works on duplicates of the two sockets, so a cut cannot close a
//! descriptor under it; dropping the handle wakes it, and it closes them at once.
//! At most [`MAX_RELAYS`] threads run; beyond that the async loop splices itself.

use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use prometheus_client::metrics::counter::Counter;
use tokio::net::TcpStream;
use tokio::sync::{oneshot, watch};

use super::pipeline::ToxicList;
use super::splice::SplicePipe;

/// Relay threads alive at most, so thousands of idle connections do not mean
/// thousands of threads.
pub const MAX_RELAYS: usize = 256;

static RELAYS: AtomicUsize = AtomicUsize::new(0);

/// How a relay ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayOutcome {
    /// The toxic list changed or the handle was dropped: the async loop takes over.
    Stopped,
    /// The source sent its end of stream (the pipe may still hold bytes).
    SourceEnded,
    /// A socket failed: close the connection.
    Failed,
}

/// What the async loop gets back.
#[derive(Debug)]
pub struct RelayEnd {
    /// None only if the thread died (the async loop then reads and writes).
    pub pipe: Option<SplicePipe>,
    pub outcome: RelayOutcome,
}

/// The byte counters the relay keeps up to date.
#[derive(Debug, Clone)]
pub struct RelayCounters {
    pub received: Counter,
    pub sent: Counter,
    pub bytes: Arc<AtomicU64>,
}

/// Wakes a relay out of poll(2) and tells it to stop.
#[derive(Debug)]
struct StopSignal {
    stop: AtomicBool,
    wake: OwnedFd,
}

impl StopSignal {
    fn new() -> io::Result<Self> {
        // SAFETY: eventfd takes no pointers; a negative result is checked below.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(StopSignal {
            stop: AtomicBool::new(false),
            // SAFETY: eventfd succeeded, so `fd` is a fresh descriptor owned by nobody else.
            wake: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    fn raise(&self) {
        self.stop.store(true, Ordering::Release);
        let one: u64 = 1;
        // SAFETY: writes the 8 bytes of `one` to an eventfd this struct owns. A full
        // counter (EAGAIN) still leaves it readable, which is all the wake needs.
        unsafe {
            libc::write(
                self.wake.as_raw_fd(),
                std::ptr::from_ref(&one).cast(),
                size_of::<u64>(),
            );
        }
    }

    fn raised(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }
}

/// A running relay; dropping it stops the thread.
#[derive(Debug)]
pub struct Relay {
    signal: Arc<StopSignal>,
    ended: oneshot::Receiver<RelayEnd>,
}

impl Relay {
    /// Starts a thread relaying `source` to `destination` through `pipe`; gives the
    /// pipe back (None only if it was lost with a thread that failed to start) when
    /// no thread can be had (at the cap, out of descriptors or
    /// threads), and the caller splices on the async runtime instead.
    pub fn start(
        source: &TcpStream,
        destination: &TcpStream,
        pipe: SplicePipe,
        toxics: watch::Receiver<ToxicList>,
        counters: RelayCounters,
    ) -> Result<Relay, Option<SplicePipe>> {
        let Some(slot) = RelaySlot::take() else {
            return Err(Some(pipe));
        };
        let prepared = (|| {
            let source = source.as_fd().try_clone_to_owned()?;
            let destination = destination.as_fd().try_clone_to_owned()?;
            Ok::<_, io::Error>((source, destination, Arc::new(StopSignal::new()?)))
        })();
        let Ok((source, destination, signal)) = prepared else {
            return Err(Some(pipe));
        };
        // Shared so the pipe can be taken back if no thread starts.
        let handed = Arc::new(Mutex::new(Some(pipe)));
        let (ended_tx, ended) = oneshot::channel();
        let mut thread = RelayThread {
            source,
            destination,
            signal: Arc::clone(&signal),
            toxics,
            counters,
        };
        let thread_handed = Arc::clone(&handed);
        let spawned = std::thread::Builder::new()
            .name("proxy-relay".to_owned())
            .spawn(move || {
                let _slot = slot;
                let Some(mut pipe) = take(&thread_handed) else {
                    return;
                };
                let outcome = thread.run(&mut pipe);
                // Close the duplicates before the async loop goes on, so a close or
                // reset it makes next is the socket's last.
                drop(thread);
                let _ = ended_tx.send(RelayEnd {
                    pipe: Some(pipe),
                    outcome,
                });
            });
        match spawned {
            Ok(_) => Ok(Relay { signal, ended }),
            // The thread never ran, so the pipe is still in the slot.
            Err(_) => Err(take(&handed)),
        }
    }

    /// Waits until the relay ends by itself (end of stream, failure).
    pub async fn ended(&mut self) -> RelayEnd {
        match (&mut self.ended).await {
            Ok(end) => end,
            // The thread sends before it ends; no message means it died.
            Err(_) => RelayEnd {
                pipe: None,
                outcome: RelayOutcome::Failed,
            },
        }
    }

    /// Stops the relay and waits for the pipe to come back.
    pub async fn stop(mut self) -> RelayEnd {
        self.signal.raise();
        self.ended().await
    }
}

fn take(handed: &Mutex<Option<SplicePipe>>) -> Option<SplicePipe> {
    handed
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take()
}

/// One of the [`MAX_RELAYS`] places, given back when dropped.
struct RelaySlot;

impl RelaySlot {
    fn take() -> Option<RelaySlot> {
        if RELAYS.fetch_add(1, Ordering::AcqRel) >= MAX_RELAYS {
            RELAYS.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(RelaySlot)
    }
}

impl Drop for RelaySlot {
    fn drop(&mut self) {
        RELAYS.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.signal.raise();
    }
}

struct RelayThread {
    source: OwnedFd,
    destination: OwnedFd,
    signal: Arc<StopSignal>,
    toxics: watch::Receiver<ToxicList>,
    counters: RelayCounters,
}

impl RelayThread {
    /// Stopping is checked before every splice in, so no byte passes after a change.
    fn should_stop(&self) -> bool {
        self.signal.raised() || self.toxics.has_changed().unwrap_or(true)
    }

    fn run(&mut self, pipe: &mut SplicePipe) -> RelayOutcome {
        let (source, destination) = (self.source.as_raw_fd(), self.destination.as_raw_fd());
        // Whether the source may hold bytes: only a short splice proves it empty.
        let mut source_ready = true;
        loop {
            if self.should_stop() {
                return RelayOutcome::Stopped;
            }
            let mut progressed = false;
            if source_ready && pipe.has_room() {
                match pipe.fill_from(source) {
                    Ok((0, _)) => return RelayOutcome::SourceEnded,
                    Ok((moved, drained)) => {
                        self.counters.received.inc_by(moved as u64);
                        source_ready = !drained;
                        progressed = true;
                    }
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                        // An empty pipe and nothing moved: the socket is empty.
                        source_ready = pipe.buffered > 0;
                    }
                    Err(_) => return RelayOutcome::Failed,
                }
            }
            if pipe.buffered > 0 {
                match pipe.drain_to(destination) {
                    Ok(moved) => {
                        self.counters.sent.inc_by(moved as u64);
                        self.counters
                            .bytes
                            .fetch_add(moved as u64, Ordering::Relaxed);
                        progressed |= moved > 0;
                    }
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => return RelayOutcome::Failed,
                }
            }
            if progressed {
                continue;
            }
            let want_source = pipe.has_room();
            let want_destination = pipe.buffered > 0;
            match self.wait(want_source, want_destination) {
                Ok(source_readable) => source_ready |= source_readable,
                Err(_) => return RelayOutcome::Failed,
            }
        }
    }

    /// Sleeps until the source is readable, the destination writable (each only if
    /// wanted) or the stop signal rises; `Ok(source readable)`.
    fn wait(&self, want_source: bool, want_destination: bool) -> io::Result<bool> {
        let mut fds = [
            libc::pollfd {
                fd: if want_source {
                    self.source.as_raw_fd()
                } else {
                    -1
                },
                events: libc::POLLIN | libc::POLLRDHUP,
                revents: 0,
            },
            libc::pollfd {
                fd: if want_destination {
                    self.destination.as_raw_fd()
                } else {
                    -1
                },
                events: libc::POLLOUT,
                revents: 0,
            },
            libc::pollfd {
                fd: self.signal.wake.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: `fds` is a live array of three pollfd; negative fds are ignored by
        // the kernel, and every other descriptor is owned by this relay.
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), 3, -1) };
        if ready < 0 {
            let error = io::Error::last_os_error();
            return if error.kind() == io::ErrorKind::Interrupted {
                Ok(false)
            } else {
                Err(error)
            };
        }
        // Any condition on the source (data, end, error) is for a splice to report.
        Ok(fds[0].revents != 0)
    }
}
