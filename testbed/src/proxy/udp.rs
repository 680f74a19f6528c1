//! UDP proxies (beyond Toxiproxy): one session per client address, each with its own
//! upstream socket; datagrams go through the `latency`, `loss`, `duplicate` and
//! `reorder` toxics of their direction one by one. Idle sessions end after a minute.
//!
//! Sessions are found by client address in a hash map (O(1) per datagram); an ended
//! session tells the receive loop, which drops it from the map, also in O(1). A proxy
//! holds at most its connection limit of sessions: a datagram from a new client past
//! it is dropped and counted (`testbed_proxy_refused_connections_total`), and the
//! sessions already open are left alone (a flood of new source addresses cannot push
//! them out). Each direction's queue holds at most [`QUEUE_DATAGRAMS`] datagrams and
//! [`QUEUE_BYTES`] bytes; past either a datagram is dropped, as a full socket buffer
//! would drop it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tokio::time::sleep_until;

use super::instance::{ConnectionEntry, Connections};
use super::metrics::ProxyMetrics;
use super::pipeline::{DirectionToxics, ToxicList};
use super::queue_level::QueueLevel;
use super::seed;
use super::toxic::Stream;

const DATAGRAM_MAX: usize = 65_536;
const SESSION_IDLE: Duration = Duration::from_secs(60);
/// Datagrams one direction of a session may hold queued.
pub const QUEUE_DATAGRAMS: usize = 1024;
/// Bytes one direction of a session may hold queued (1024 full-size datagrams would
/// be 64 MiB).
pub const QUEUE_BYTES: usize = 4 * 1024 * 1024;

type Datagram = (Vec<u8>, Instant);

/// The sending side of one direction's queue, bounded in datagrams and bytes.
#[derive(Debug, Clone)]
struct QueueIn {
    sender: mpsc::Sender<Datagram>,
    level: Arc<QueueLevel>,
}

/// What became of a datagram offered to a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Offer {
    Queued,
    /// Over a bound: dropped.
    Full,
    /// The session ended.
    Closed,
}

impl QueueIn {
    fn offer(&self, datagram: Datagram) -> Offer {
        let bytes = datagram.0.len();
        if self.sender.is_closed() {
            return Offer::Closed;
        }
        if !self.level.try_add(bytes, QUEUE_DATAGRAMS, QUEUE_BYTES) {
            return Offer::Full;
        }
        match self.sender.try_send(datagram) {
            Ok(()) => Offer::Queued,
            Err(error) => {
                self.level.take(bytes);
                match error {
                    mpsc::error::TrySendError::Full(_) => Offer::Full,
                    mpsc::error::TrySendError::Closed(_) => Offer::Closed,
                }
            }
        }
    }
}

fn queue() -> (QueueIn, mpsc::Receiver<Datagram>, Arc<QueueLevel>) {
    let (sender, receiver) = mpsc::channel(QUEUE_DATAGRAMS);
    let level = Arc::new(QueueLevel::default());
    (
        QueueIn {
            sender,
            level: Arc::clone(&level),
        },
        receiver,
        level,
    )
}

/// What a UDP proxy needs from its proxy.
#[derive(Debug, Clone)]
pub struct UdpSetup {
    pub upstream: String,
    pub seed: u64,
    pub toxics: watch::Receiver<ToxicList>,
    pub next_session: Arc<AtomicU64>,
    pub connections: Arc<Connections>,
    pub metrics: ProxyMetrics,
}

/// Where a direction's datagrams go.
enum Target {
    Upstream(Arc<UdpSocket>),
    Client(Arc<UdpSocket>, SocketAddr),
}

impl Target {
    async fn send(&self, data: &[u8]) {
        // A lost datagram is what UDP allows; nothing to report.
        let _ = match self {
            Target::Upstream(socket) => socket.send(data).await,
            Target::Client(socket, client) => socket.send_to(data, client).await,
        };
    }
}

async fn pump(
    mut queue: mpsc::Receiver<Datagram>,
    level: Arc<QueueLevel>,
    mut state: DirectionToxics,
    mut toxics: watch::Receiver<ToxicList>,
    target: Target,
    bytes: Arc<AtomicU64>,
) {
    loop {
        let list = toxics.borrow_and_update().clone();
        let active = state.active(&list);
        let flush_at = state.held_datagram(&active);
        let deadline = Instant::now() + SESSION_IDLE;
        tokio::select! {
            biased;
            changed = toxics.changed() => if changed.is_err() { return },
            () = sleep_until(flush_at.unwrap_or(deadline).into()), if flush_at.is_some() => {
                if let Some(piece) = state.release_held() {
                    target.send(&piece.data).await;
                    bytes.fetch_add(piece.data.len() as u64, Ordering::Relaxed);
                }
            }
            () = sleep_until(deadline.into()) => return,
            message = queue.recv() => {
                let Some((data, arrived)) = message else { return };
                level.take(data.len());
                for piece in state.datagram(&active, data, arrived) {
                    if piece.not_before > Instant::now() {
                        sleep_until(piece.not_before.into()).await;
                    }
                    target.send(&piece.data).await;
                    bytes.fetch_add(piece.data.len() as u64, Ordering::Relaxed);
                }
            }
        }
    }
}

/// One session's queues: the client's datagrams in, the upstream's replies out.
struct SessionQueues {
    requests: mpsc::Receiver<Datagram>,
    requests_level: Arc<QueueLevel>,
    replies_in: QueueIn,
    replies: mpsc::Receiver<Datagram>,
}

async fn session(
    listener: Arc<UdpSocket>,
    client: SocketAddr,
    queues: SessionQueues,
    setup: UdpSetup,
    entry_seed: u64,
    bytes: (Arc<AtomicU64>, Arc<AtomicU64>),
) {
    let SessionQueues {
        requests,
        requests_level,
        replies_in,
        replies,
    } = queues;
    let bind = if client.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let Ok(upstream) = UdpSocket::bind(bind).await else {
        return;
    };
    if upstream.connect(setup.upstream.as_str()).await.is_err() {
        return;
    }
    let upstream = Arc::new(upstream);
    let session_seed = entry_seed;
    let up = pump(
        requests,
        requests_level,
        DirectionToxics::new(
            Stream::Upstream,
            client.ip(),
            session_seed,
            setup.metrics.clone(),
        ),
        setup.toxics.clone(),
        Target::Upstream(Arc::clone(&upstream)),
        bytes.0,
    );
    let replies_level = Arc::clone(&replies_in.level);
    let received = setup.metrics.received_downstream.clone();
    let read_replies = async move {
        let mut buffer = vec![0; DATAGRAM_MAX];
        while let Ok(read) = upstream.recv(&mut buffer).await {
            received.inc_by(read as u64);
            // A full queue drops the reply, as a full socket buffer would.
            if replies_in.offer((buffer[..read].to_vec(), Instant::now())) == Offer::Closed {
                return;
            }
        }
    };
    let down = pump(
        replies,
        replies_level,
        DirectionToxics::new(
            Stream::Downstream,
            client.ip(),
            session_seed,
            setup.metrics.clone(),
        ),
        setup.toxics.clone(),
        Target::Client(listener, client),
        bytes.1,
    );
    tokio::select! {
        () = up => {}
        () = down => {}
        () = read_replies => {}
    }
}

/// Serves a UDP proxy until the future is dropped; sessions are listed with the
/// proxy's connections and cut with them.
pub async fn serve(socket: UdpSocket, setup: UdpSetup) {
    let listener = Arc::new(socket);
    let mut sessions: HashMap<SocketAddr, QueueIn> = HashMap::new();
    // Ended sessions name themselves here. Unbounded, yet never long: one message per
    // session, at most the session limit of them, read before every new session.
    let (ended_in, mut ended) = mpsc::unbounded_channel::<SocketAddr>();
    let mut buffer = vec![0; DATAGRAM_MAX];
    loop {
        let Ok((read, client)) = listener.recv_from(&mut buffer).await else {
            continue;
        };
        setup.metrics.received_upstream.inc_by(read as u64);
        while let Ok(gone) = ended.try_recv() {
            // The address may have a newer session by now: keep that one.
            if sessions
                .get(&gone)
                .is_some_and(|queue| queue.sender.is_closed())
            {
                sessions.remove(&gone);
            }
        }
        let datagram = (buffer[..read].to_vec(), Instant::now());
        if let Some(queue) = sessions.get(&client) {
            match queue.offer(datagram.clone()) {
                // Full: the session is behind; drop, as a full socket buffer would.
                Offer::Queued | Offer::Full => continue,
                Offer::Closed => {
                    sessions.remove(&client);
                }
            }
        }
        let (requests_in, requests, requests_level) = queue();
        let (replies_in, replies, replies_level) = queue();
        requests_in.offer(datagram);
        let id = setup.next_session.fetch_add(1, Ordering::Relaxed);
        let entry = ConnectionEntry {
            id,
            source: client,
            seed: seed::mix(setup.seed, id),
            bytes_upstream: Arc::new(AtomicU64::new(0)),
            bytes_downstream: Arc::new(AtomicU64::new(0)),
            queued: [Arc::clone(&requests_level), Arc::clone(&replies_level)],
        };
        let bytes = (
            Arc::clone(&entry.bytes_upstream),
            Arc::clone(&entry.bytes_downstream),
        );
        let queues = SessionQueues {
            requests,
            requests_level,
            replies_in,
            replies,
        };
        let serve = session(
            Arc::clone(&listener),
            client,
            queues,
            setup.clone(),
            entry.seed,
            bytes,
        );
        let ended_in = ended_in.clone();
        let serve = async move {
            serve.await;
            let _ = ended_in.send(client);
        };
        // At the limit the datagram is dropped with the refused session (counted).
        if setup.connections.spawn(entry, &setup.metrics, serve) {
            sessions.insert(client, requests_in);
        }
    }
}
