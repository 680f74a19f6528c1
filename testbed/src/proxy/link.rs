//! One proxied TCP connection: per direction, one loop that reads, runs the chunk
//! through the toxics and writes.
//!
//! Chunks are stamped with their arrival time and queued with the time they may
//! leave, and the loop keeps reading while they wait, so a delay toxic shifts the
//! stream instead of slowing the reads. The loop re-reads the proxy's toxic list
//! whenever it changes, so toxics added, edited or removed act on live connections,
//! and the API never waits for a connection. With no toxic in the way a chunk is
//! written straight from the read buffer, in the same wake-up that read it.
//!
//! The queue is bounded in bytes ([`QUEUE_BYTES`]) and in pieces ([`QUEUE_PIECES`]):
//! a slicer of 1-byte pieces would otherwise turn 4 MiB into four million
//! allocations. A read takes no more than the room left can hold once the toxics
//! have cut it up ([`DirectionToxics::read_budget`]), and a full queue stops the
//! reads, so the sender is held back by TCP's own flow control.

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, Shutdown, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::sleep_until;

use super::metrics::ProxyMetrics;
use super::pipeline::{applies, DirectionToxics, ToxicList};
use super::queue_level::QueueLevel;
use super::splice::SplicePipe;
use super::toxic::{Stream, Toxic};
use super::toxics::Piece;

const READ_SIZE: usize = 64 * 1024;
/// Bytes a direction may hold back for delaying toxics before it stops reading.
pub const QUEUE_BYTES: usize = 4 * 1024 * 1024;
/// Pieces a direction may hold back before it stops reading: each is an allocation
/// and ~100 bytes of bookkeeping, so 4096 cost about 400 KiB beside the data.
pub const QUEUE_PIECES: usize = 4096;

/// Everything a connection needs from its proxy.
#[derive(Debug, Clone)]
pub struct LinkSetup {
    pub upstream: String,
    pub source: SocketAddr,
    pub seed: u64,
    pub toxics: watch::Receiver<ToxicList>,
    pub metrics: ProxyMetrics,
    pub bytes_upstream: Arc<AtomicU64>,
    pub bytes_downstream: Arc<AtomicU64>,
    pub queued_upstream: Arc<QueueLevel>,
    pub queued_downstream: Arc<QueueLevel>,
}

/// How one direction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// End of stream passed on; the other direction may go on (half-close).
    Finished,
    /// Close the whole connection now.
    Close,
    /// Reset the whole connection now (`reset_peer`).
    Reset,
}

/// Sleeps only for a time still ahead: tokio's timer rounds to its millisecond tick
/// even for a deadline already past, which would add a millisecond per chunk.
async fn wait_until(deadline: Instant) {
    if deadline > Instant::now() {
        sleep_until(deadline.into()).await;
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}

/// Writes what the socket takes now; `Ok(written)`, 0 when it would block.
fn try_write(stream: &TcpStream, data: &[u8]) -> io::Result<usize> {
    match stream.try_write(data) {
        Err(error) if error.kind() == io::ErrorKind::WouldBlock => Ok(0),
        result => result,
    }
}

/// One direction of one connection.
struct Direction<'a> {
    source: &'a TcpStream,
    destination: &'a TcpStream,
    toxics: watch::Receiver<ToxicList>,
    state: DirectionToxics,
    /// Pieces waiting for their time or for room in the destination socket.
    pending: VecDeque<Piece>,
    /// Bytes of the first pending piece already written.
    written: usize,
    pending_bytes: usize,
    /// `limit_data` used up its allowance: close once the pending pieces are out.
    close_when_flushed: bool,
    source_ended: bool,
    /// Zero-copy path while no toxic is in the way (None if no pipe could be made).
    pipe: Option<SplicePipe>,
    received: Counter,
    sent: Counter,
    bytes: Arc<AtomicU64>,
    /// The queue's size, for the connections list.
    queued: Arc<QueueLevel>,
}

impl Direction<'_> {
    fn show_queue(&self) {
        self.queued.store(self.pending.len(), self.pending_bytes);
    }

    /// The most bytes the next read may take: what the queue has room for, in bytes
    /// and, once the active toxics have cut the chunk, in pieces.
    fn read_budget(&self, active: &[Arc<Toxic>]) -> usize {
        let room_pieces = QUEUE_PIECES.saturating_sub(self.pending.len());
        let room_bytes = QUEUE_BYTES.saturating_sub(self.pending_bytes);
        DirectionToxics::read_budget(active, room_pieces)
            .min(room_bytes)
            .min(READ_SIZE)
    }

    fn count_sent(&self, bytes: usize) {
        self.sent.inc_by(bytes as u64);
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Writes the pieces that are due, until the socket is full; Err on a write error.
    fn flush_due(&mut self) -> io::Result<()> {
        let result = self.write_due();
        self.show_queue();
        result
    }

    fn write_due(&mut self) -> io::Result<()> {
        let now = Instant::now();
        while let Some(piece) = self.pending.front() {
            if piece.not_before > now {
                return Ok(());
            }
            let written = try_write(self.destination, &piece.data[self.written..])?;
            if written == 0 {
                return Ok(());
            }
            self.written += written;
            self.count_sent(written);
            if self.written == piece.data.len() {
                self.pending_bytes -= piece.data.len();
                self.pending.pop_front();
                self.written = 0;
            }
        }
        Ok(())
    }

    /// Takes a chunk just read: straight out when nothing is in the way, else through
    /// the toxics into the queue.
    fn take(&mut self, chunk: &[u8], active: &[Arc<Toxic>]) -> io::Result<()> {
        let mut chunk = chunk;
        if active.is_empty() && self.pending.is_empty() {
            let written = try_write(self.destination, chunk)?;
            self.count_sent(written);
            chunk = &chunk[written..];
            if chunk.is_empty() {
                return Ok(());
            }
        }
        let piped = self.state.pipe(active, chunk.to_vec(), Instant::now());
        self.close_when_flushed |= piped.close_after;
        for piece in piped.pieces {
            self.pending_bytes += piece.data.len();
            self.pending.push_back(piece);
        }
        debug_assert!(self.pending.len() <= QUEUE_PIECES, "the read budget held");
        self.flush_due()
    }

    async fn run(mut self) -> Ending {
        let mut buffer = vec![0; READ_SIZE];
        // When bytes last moved, and whether that was a message (not bulk).
        let (mut last_moved, mut last_was_message) = (Instant::now(), true);
        loop {
            let list = self.toxics.borrow_and_update().clone();
            let active = self.state.active(&list);
            let stall = self.state.stall(&active);
            let piped = self.pipe.as_ref().map_or(0, |pipe| pipe.buffered);
            if self.pending.is_empty() && piped == 0 {
                if self.close_when_flushed || self.state.limit_reached(&active) {
                    return Ending::Close;
                }
                if self.source_ended {
                    return self.end_of_stream(&active, stall.silenced).await;
                }
            }
            // The pipe and the queue never hold bytes at the same time, so order holds:
            // splice only with no toxic and an empty queue, read only with an empty pipe.
            let splicing = active.is_empty()
                && self.pending.is_empty()
                && self.pipe.as_ref().is_some_and(SplicePipe::has_room);
            let budget = self.read_budget(&active);
            let can_read = !self.source_ended && !splicing && piped == 0 && budget > 0;
            let can_splice = !self.source_ended && splicing;
            // Polling instead of sleeping for a moment after a message moved:
            // the next message of a conversation usually follows within a
            // round trip, and waking a sleeping thread costs more than that.
            // Bulk transfers do not poll: the CPU is the sender's to use.
            let spinning = can_splice && last_was_message && last_moved.elapsed() < SPIN;
            let head_due = self.pending.front().map(|piece| piece.not_before);
            tokio::select! {
                biased;
                changed = self.toxics.changed() => {
                    if changed.is_err() {
                        return Ending::Close;
                    }
                }
                () = sleep_until_opt(stall.reset_at) => return Ending::Reset,
                () = sleep_until_opt(stall.close_at) => return Ending::Close,
                ready = async {
                    wait_until(head_due.unwrap_or_else(Instant::now)).await;
                    self.destination.writable().await
                }, if head_due.is_some() => {
                    if ready.is_err() || self.flush_due().is_err() {
                        return Ending::Close;
                    }
                }
                ready = self.destination.writable(), if piped > 0 => {
                    if ready.is_err() {
                        return Ending::Close;
                    }
                    if let Some(pipe) = self.pipe.as_mut() {
                        match pipe.drain(self.destination) {
                            Ok(moved) => {
                                self.sent.inc_by(moved as u64);
                                self.bytes.fetch_add(moved as u64, Ordering::Relaxed);
                            }
                            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                            Err(_) => return Ending::Close,
                        }
                    }
                }
                ready = self.source.readable(), if can_splice => {
                    if ready.is_err() {
                        return Ending::Close;
                    }
                    if let Some(pipe) = self.pipe.as_mut() {
                        match pipe.fill(self.source) {
                            Ok(0) => self.source_ended = true,
                            Ok(moved) => {
                                (last_moved, last_was_message) = (Instant::now(), moved < MESSAGE);
                                self.received.inc_by(moved as u64);
                                // Pass it on in the same wake-up when the destination takes it.
                                match pipe.drain(self.destination) {
                                    Ok(moved) => {
                                        self.sent.inc_by(moved as u64);
                                        self.bytes.fetch_add(moved as u64, Ordering::Relaxed);
                                    }
                                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                                    Err(_) => return Ending::Close,
                                }
                            }
                            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                            Err(_) => return Ending::Close,
                        }
                    }
                }
                ready = self.source.readable(), if can_read => {
                    if ready.is_err() {
                        return Ending::Close;
                    }
                    match self.source.try_read(&mut buffer[..budget]) {
                        Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                        Err(_) => return Ending::Close,
                        Ok(0) => self.source_ended = true,
                        Ok(read) => {
                            self.received.inc_by(read as u64);
                            // `timeout` drops the data, as Toxiproxy does.
                            if !stall.silenced && self.take(&buffer[..read], &active).is_err() {
                                return Ending::Close;
                            }
                        }
                    }
                }
                // Last (the select is biased): stay runnable, so the worker
                // polls the sockets again instead of sleeping.
                () = tokio::task::yield_now(), if spinning => {}
            }
        }
    }

    /// The source closed and everything before the close is out.
    async fn end_of_stream(mut self, active: &[Arc<Toxic>], silenced: bool) -> Ending {
        if silenced {
            return Ending::Close;
        }
        let (delay, swallowed) = DirectionToxics::end_of_stream(active);
        if swallowed {
            // Blackhole: the close vanishes too; wait for the toxic to go.
            loop {
                if self.toxics.changed().await.is_err() {
                    return Ending::Close;
                }
                let list = self.toxics.borrow_and_update().clone();
                let active = self.state.active(&list);
                if !DirectionToxics::end_of_stream(&active).1 {
                    break;
                }
            }
        } else if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let _ = socket2::SockRef::from(self.destination).shutdown(Shutdown::Write);
        Ending::Finished
    }
}

async fn direction(
    source: &TcpStream,
    destination: &TcpStream,
    stream: Stream,
    setup: &LinkSetup,
) -> Ending {
    let (received, sent, bytes, queued) = match stream {
        Stream::Upstream => (
            setup.metrics.received_upstream.clone(),
            setup.metrics.sent_upstream.clone(),
            Arc::clone(&setup.bytes_upstream),
            Arc::clone(&setup.queued_upstream),
        ),
        Stream::Downstream => (
            setup.metrics.received_downstream.clone(),
            setup.metrics.sent_downstream.clone(),
            Arc::clone(&setup.bytes_downstream),
            Arc::clone(&setup.queued_downstream),
        ),
    };
    Direction {
        source,
        destination,
        toxics: setup.toxics.clone(),
        state: DirectionToxics::new(stream, setup.source.ip(), setup.seed, setup.metrics.clone()),
        pending: VecDeque::new(),
        written: 0,
        pending_bytes: 0,
        close_when_flushed: false,
        source_ended: false,
        pipe: SplicePipe::new().ok(),
        received,
        sent,
        bytes,
        queued,
    }
    .run()
    .await
}

/// Sets `SO_LINGER` to zero so that closing sends a RST.
fn arm_reset(stream: &TcpStream) {
    let _ = socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO));
}

/// The connect-phase delay (`accept_delay`) for a connection from `source`.
fn accept_delay(setup: &LinkSetup, source: IpAddr) -> Duration {
    let list = setup.toxics.borrow().clone();
    let targeted: Vec<_> = list
        .iter()
        .filter(|toxic| applies(toxic, source, setup.seed))
        .cloned()
        .collect();
    DirectionToxics::accept_delay(&targeted)
}

/// How long a zero-copy direction keeps polling after it last moved bytes
/// before it waits for the kernel to wake it. On a virtual machine a wake-up
/// costs 15-50 µs, more than a loopback round trip.
const SPIN: Duration = Duration::from_micros(200);

/// Transfers shorter than this count as messages of a conversation, after
/// which a direction polls for [`SPIN`]; longer ones are bulk data.
const MESSAGE: usize = 16 * 1024;

/// Socket buffer size for the proxy's loopback sockets.
const LOOPBACK_BUFFER: usize = 128 * 1024;

/// How much a proxy socket to `peer` may buffer, if bounded: on loopback,
/// where a round trip takes microseconds, 128 KiB per socket (the kernel
/// doubles it) is ample for full speed and keeps the bytes in flight in the
/// CPU's cache, where the kernel's autotuned megabytes do not: one stream
/// through the proxy went from 70% to 85% of a direct connection's
/// throughput. Any other peer keeps the kernel's autotuning, which a path
/// with a real round trip (a lab link with netem delay) needs.
fn buffer_bound(peer: SocketAddr) -> Option<usize> {
    peer.ip().is_loopback().then_some(LOOPBACK_BUFFER)
}

/// How long a connection to the upstream may take before the client is
/// closed: without it, an upstream that drops SYNs holds the client's
/// connection slot (counted against `--max-connections`) for the kernel's
/// two minutes of retries.
pub const UPSTREAM_DIAL_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves one accepted client until both directions end or a toxic cuts it. An
/// upstream that cannot be reached within [`UPSTREAM_DIAL_TIMEOUT`] closes the
/// client, as Toxiproxy does when its dial fails.
pub async fn serve(client: TcpStream, setup: LinkSetup) {
    let delay = accept_delay(&setup, setup.source.ip());
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let dial = TcpStream::connect(setup.upstream.as_str());
    let Ok(Ok(upstream)) = tokio::time::timeout(UPSTREAM_DIAL_TIMEOUT, dial).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    for socket in [&client, &upstream] {
        if let Some(bytes) = socket.peer_addr().ok().and_then(buffer_bound) {
            let socket = socket2::SockRef::from(socket);
            let _ = socket.set_recv_buffer_size(bytes);
            let _ = socket.set_send_buffer_size(bytes);
        }
    }
    let up = direction(&client, &upstream, Stream::Upstream, &setup);
    let down = direction(&upstream, &client, Stream::Downstream, &setup);
    tokio::pin!(up, down);
    let (mut up_done, mut down_done) = (false, false);
    while !(up_done && down_done) {
        let ending = tokio::select! {
            ending = &mut up, if !up_done => { up_done = true; ending }
            ending = &mut down, if !down_done => { down_done = true; ending }
        };
        match ending {
            Ending::Finished => {}
            Ending::Close => return,
            Ending::Reset => {
                arm_reset(&client);
                arm_reset(&upstream);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::{buffer_bound, LOOPBACK_BUFFER};

    #[test]
    fn only_loopback_peers_get_bounded_socket_buffers() {
        let peer = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(buffer_bound(peer("127.0.0.1:80")), Some(LOOPBACK_BUFFER));
        assert_eq!(buffer_bound(peer("[::1]:80")), Some(LOOPBACK_BUFFER));
        assert_eq!(buffer_bound(peer("10.1.0.1:80")), None);
        assert_eq!(buffer_bound(peer("[2001:db8::1]:80")), None);
    }
}
