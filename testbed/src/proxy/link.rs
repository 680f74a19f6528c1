//! One proxied TCP connection: a reader and a toxic-applying writer per direction.
//!
//! Each reader stamps chunks with their arrival time and queues them, so a delay
//! toxic shifts the stream instead of slowing the reads. Each writer re-reads the
//! proxy's toxic list whenever it changes, so toxics added, edited or removed act on
//! live connections, and the API never waits for a connection.

use std::io;
use std::net::{IpAddr, Shutdown, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::sleep_until;

use super::metrics::ProxyMetrics;
use super::pipeline::{applies, DirectionToxics, ToxicList};
use super::toxic::Stream;

const READ_SIZE: usize = 32 * 1024;
/// Chunks a reader may queue ahead of a delayed writer (up to 2 MiB).
const QUEUE_CHUNKS: usize = 64;

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

enum Message {
    Data(Vec<u8>, Instant),
    End,
    Failed,
}

async fn read_some(stream: &TcpStream, buffer: &mut [u8]) -> io::Result<usize> {
    loop {
        stream.readable().await?;
        match stream.try_read(buffer) {
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
            result => return result,
        }
    }
}

async fn write_all(stream: &TcpStream, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        stream.writable().await?;
        match stream.try_write(data) {
            Ok(written) => data = &data[written..],
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

async fn reader(source: &TcpStream, queue: mpsc::Sender<Message>, received: Counter) {
    let mut buffer = vec![0; READ_SIZE];
    loop {
        let message = match read_some(source, &mut buffer).await {
            Ok(0) => Message::End,
            Ok(read) => {
                received.inc_by(read as u64);
                Message::Data(buffer[..read].to_vec(), Instant::now())
            }
            Err(_) => Message::Failed,
        };
        let last = !matches!(message, Message::Data(..));
        if queue.send(message).await.is_err() || last {
            return;
        }
    }
}

struct Writer<'a> {
    destination: &'a TcpStream,
    toxics: watch::Receiver<ToxicList>,
    state: DirectionToxics,
    sent: Counter,
    bytes: Arc<AtomicU64>,
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}

impl Writer<'_> {
    async fn run(mut self, mut queue: mpsc::Receiver<Message>) -> Ending {
        loop {
            let list = self.toxics.borrow_and_update().clone();
            let active = self.state.active(&list);
            let stall = self.state.stall(&active);
            if self.state.limit_reached(&active) {
                return Ending::Close;
            }
            tokio::select! {
                biased;
                changed = self.toxics.changed() => {
                    if changed.is_err() {
                        return Ending::Close;
                    }
                }
                () = sleep_until_opt(stall.reset_at) => return Ending::Reset,
                () = sleep_until_opt(stall.close_at) => return Ending::Close,
                message = queue.recv() => match message {
                    Some(Message::Data(data, arrived)) => {
                        if stall.silenced {
                            continue;
                        }
                        let piped = self.state.pipe(&active, data, arrived);
                        for piece in piped.pieces {
                            sleep_until(piece.not_before.into()).await;
                            if write_all(self.destination, &piece.data).await.is_err() {
                                return Ending::Close;
                            }
                            self.sent.inc_by(piece.data.len() as u64);
                            self.bytes.fetch_add(piece.data.len() as u64, Ordering::Relaxed);
                        }
                        if piped.close_after {
                            return Ending::Close;
                        }
                    }
                    Some(Message::End) | None => {
                        if stall.silenced {
                            return Ending::Close;
                        }
                        let (delay, swallowed) = DirectionToxics::end_of_stream(&active);
                        if swallowed {
                            // Blackhole: the close vanishes too; wait for the toxic to go.
                            return self.park_until_unblackholed().await;
                        }
                        tokio::time::sleep(delay).await;
                        let _ = socket2::SockRef::from(self.destination).shutdown(Shutdown::Write);
                        return Ending::Finished;
                    }
                    Some(Message::Failed) => return Ending::Close,
                }
            }
        }
    }

    async fn park_until_unblackholed(mut self) -> Ending {
        loop {
            if self.toxics.changed().await.is_err() {
                return Ending::Close;
            }
            let list = self.toxics.borrow_and_update().clone();
            let active = self.state.active(&list);
            if !DirectionToxics::end_of_stream(&active).1 {
                let _ = socket2::SockRef::from(self.destination).shutdown(Shutdown::Write);
                return Ending::Finished;
            }
        }
    }
}

async fn direction(
    source: &TcpStream,
    destination: &TcpStream,
    stream: Stream,
    setup: &LinkSetup,
) -> Ending {
    let (received, sent, bytes) = match stream {
        Stream::Upstream => (
            setup.metrics.received_upstream.clone(),
            setup.metrics.sent_upstream.clone(),
            Arc::clone(&setup.bytes_upstream),
        ),
        Stream::Downstream => (
            setup.metrics.received_downstream.clone(),
            setup.metrics.sent_downstream.clone(),
            Arc::clone(&setup.bytes_downstream),
        ),
    };
    let (queue_in, queue_out) = mpsc::channel(QUEUE_CHUNKS);
    let writer = Writer {
        destination,
        toxics: setup.toxics.clone(),
        state: DirectionToxics::new(stream, setup.source.ip(), setup.seed, setup.metrics.clone()),
        sent,
        bytes,
    };
    let reading = reader(source, queue_in, received);
    let writing = writer.run(queue_out);
    tokio::pin!(reading, writing);
    tokio::select! {
        ending = &mut writing => ending,
        () = &mut reading => writing.await,
    }
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

/// Serves one accepted client until both directions end or a toxic cuts it. An
/// upstream that cannot be reached closes the client, as Toxiproxy does.
pub async fn serve(client: TcpStream, setup: LinkSetup) {
    let delay = accept_delay(&setup, setup.source.ip());
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let Ok(upstream) = TcpStream::connect(setup.upstream.as_str()).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
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
