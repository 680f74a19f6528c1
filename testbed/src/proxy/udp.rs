//! UDP proxies (beyond Toxiproxy): one session per client address, each with its own
//! upstream socket; datagrams go through the `latency`, `loss`, `duplicate` and
//! `reorder` toxics of their direction one by one. Idle sessions end after a minute.

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
use super::seed;
use super::toxic::Stream;

const DATAGRAM_MAX: usize = 65_536;
const SESSION_IDLE: Duration = Duration::from_secs(60);
const QUEUE_DATAGRAMS: usize = 1024;

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
    mut queue: mpsc::Receiver<(Vec<u8>, Instant)>,
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

async fn session(
    listener: Arc<UdpSocket>,
    client: SocketAddr,
    queue: mpsc::Receiver<(Vec<u8>, Instant)>,
    setup: UdpSetup,
    entry_seed: u64,
    bytes: (Arc<AtomicU64>, Arc<AtomicU64>),
) {
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
        queue,
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
    let (replies_in, replies_out) = mpsc::channel(QUEUE_DATAGRAMS);
    let received = setup.metrics.received_downstream.clone();
    let read_replies = async move {
        let mut buffer = vec![0; DATAGRAM_MAX];
        while let Ok(read) = upstream.recv(&mut buffer).await {
            received.inc_by(read as u64);
            if replies_in
                .send((buffer[..read].to_vec(), Instant::now()))
                .await
                .is_err()
            {
                return;
            }
        }
    };
    let down = pump(
        replies_out,
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
    let mut sessions: HashMap<SocketAddr, mpsc::Sender<(Vec<u8>, Instant)>> = HashMap::new();
    let mut buffer = vec![0; DATAGRAM_MAX];
    loop {
        let Ok((read, client)) = listener.recv_from(&mut buffer).await else {
            continue;
        };
        setup.metrics.received_upstream.inc_by(read as u64);
        let datagram = (buffer[..read].to_vec(), Instant::now());
        if let Some(queue) = sessions.get(&client) {
            if queue.try_send(datagram.clone()).is_ok() {
                continue;
            }
            if !queue.is_closed() {
                // The session is behind: drop, as a full socket buffer would.
                continue;
            }
        }
        let (queue_in, queue_out) = mpsc::channel(QUEUE_DATAGRAMS);
        let _ = queue_in.try_send(datagram);
        sessions.insert(client, queue_in);
        sessions.retain(|_, queue| !queue.is_closed());
        let id = setup.next_session.fetch_add(1, Ordering::Relaxed);
        let entry = ConnectionEntry {
            id,
            source: client,
            seed: seed::mix(setup.seed, id),
            bytes_upstream: Arc::new(AtomicU64::new(0)),
            bytes_downstream: Arc::new(AtomicU64::new(0)),
        };
        let bytes = (
            Arc::clone(&entry.bytes_upstream),
            Arc::clone(&entry.bytes_downstream),
        );
        let serve = session(
            Arc::clone(&listener),
            client,
            queue_out,
            setup.clone(),
            entry.seed,
            bytes,
        );
        setup.connections.spawn(entry, &setup.metrics, serve);
    }
}
