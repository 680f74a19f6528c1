//! One proxy: its settings, its listener, its live connections and its toxics.
//!
//! Enabling binds the listener before the API answers (so a taken port is a 500 at
//! once); disabling drops it and waits for the accept task to end, so the port is free
//! when the API answers, and cuts every connection ("down" in Toxiproxy's words).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::task::{AbortHandle, JoinHandle};

use super::address::listen_address;
use super::error::ApiError;
use super::limits::Limits;
use super::link::{self, LinkSetup};
use super::metrics::ProxyMetrics;
use super::pipeline::applies;
use super::queue_level::QueueLevel;
use super::seed;
use super::toxic::ToxicView;
use super::toxic_table::ToxicTable;
use super::udp;

/// TCP (Toxiproxy's only kind) or UDP (ours).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
}

/// A proxy's settings as the API shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub listen: String,
    pub upstream: String,
    pub enabled: bool,
}

/// The JSON the API shows for a proxy (Toxiproxy's shape; `protocol` only for UDP).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProxyView {
    pub name: String,
    pub listen: String,
    pub upstream: String,
    pub enabled: bool,
    pub toxics: Vec<ToxicView>,
    #[serde(default, skip_serializing_if = "is_tcp")]
    pub protocol: Protocol,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_tcp(protocol: &Protocol) -> bool {
    *protocol == Protocol::Tcp
}

/// One live connection, as `GET /proxies/{p}/connections` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectionView {
    pub source: String,
    pub age_ms: u64,
    pub bytes_upstream: u64,
    pub bytes_downstream: u64,
    /// Pieces (TCP) or datagrams (UDP) queued in both directions, and their bytes.
    pub queued_pieces: u64,
    pub queued_bytes: u64,
    pub toxics: Vec<String>,
}

#[derive(Debug)]
struct Connection {
    source: SocketAddr,
    started: Instant,
    seed: u64,
    bytes_upstream: Arc<AtomicU64>,
    bytes_downstream: Arc<AtomicU64>,
    queued: [Arc<QueueLevel>; 2],
    task: AbortHandle,
}

/// How often a proxy refusing connections at its limit says so on stderr.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);

/// The live connections of a proxy, at most `limit` of them.
#[derive(Debug)]
pub struct Connections {
    table: Mutex<HashMap<u64, Connection>>,
    proxy: String,
    limit: usize,
    last_refusal_logged: Mutex<Option<Instant>>,
}

impl Connections {
    pub fn new(proxy: &str, limit: usize) -> Self {
        Connections {
            table: Mutex::new(HashMap::new()),
            proxy: proxy.to_owned(),
            limit,
            last_refusal_logged: Mutex::new(None),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Connection>> {
        self.table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts a connection refused at the limit, and says so at most every ten
    /// seconds (a flood must not flood the log too).
    fn refused(&self, metrics: &ProxyMetrics) {
        metrics.refused.inc();
        let mut last = self
            .last_refusal_logged
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.is_none_or(|at| at.elapsed() >= REFUSAL_LOG_EVERY) {
            *last = Some(Instant::now());
            eprintln!(
                "testbed proxy: proxy {:?} has {} connections open, its limit; refusing new ones (counted in testbed_proxy_refused_connections_total)",
                self.proxy, self.limit
            );
        }
    }

    /// Runs `serve` as connection `id`'s task, listed until the task ends (however it
    /// ends, cut included); false, with `serve` dropped and the refusal counted, when
    /// the proxy already has its limit of connections open.
    pub fn spawn<F>(
        self: &Arc<Self>,
        entry: ConnectionEntry,
        metrics: &ProxyMetrics,
        serve: F,
    ) -> bool
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        // Hold the table lock from the count to the insertion, so the limit holds
        // however many accept at once, and so the task's own removal comes after its
        // insertion.
        let mut table = self.lock();
        if table.len() >= self.limit {
            drop(table);
            self.refused(metrics);
            return false;
        }
        metrics.connections.inc();
        metrics.active.inc();
        let deregister = Deregister {
            connections: Arc::clone(self),
            id: entry.id,
            metrics: metrics.clone(),
        };
        let task = tokio::spawn(async move {
            let _deregister = deregister;
            serve.await;
        });
        table.insert(
            entry.id,
            Connection {
                source: entry.source,
                started: Instant::now(),
                seed: entry.seed,
                bytes_upstream: entry.bytes_upstream,
                bytes_downstream: entry.bytes_downstream,
                queued: entry.queued,
                task: task.abort_handle(),
            },
        );
        true
    }

    fn cut_all(&self) {
        let cut: Vec<Connection> = self.lock().drain().map(|(_, c)| c).collect();
        for connection in cut {
            connection.task.abort();
        }
    }
}

/// What the connections list shows of a new connection.
#[derive(Debug)]
pub struct ConnectionEntry {
    pub id: u64,
    pub source: SocketAddr,
    pub seed: u64,
    pub bytes_upstream: Arc<AtomicU64>,
    pub bytes_downstream: Arc<AtomicU64>,
    /// What each direction holds queued: upstream, downstream.
    pub queued: [Arc<QueueLevel>; 2],
}

/// Removes a connection from the table when its task ends, however it ends.
struct Deregister {
    connections: Arc<Connections>,
    id: u64,
    metrics: ProxyMetrics,
}

impl Drop for Deregister {
    fn drop(&mut self) {
        self.connections.lock().remove(&self.id);
        self.metrics.active.dec();
    }
}

#[derive(Debug)]
struct Running {
    accept: JoinHandle<()>,
}

/// One proxy.
#[derive(Debug)]
pub struct Proxy {
    pub name: String,
    pub protocol: Protocol,
    settings: Mutex<Settings>,
    running: tokio::sync::Mutex<Option<Running>>,
    pub toxics: Arc<ToxicTable>,
    connections: Arc<Connections>,
    seed: u64,
    next_connection: Arc<AtomicU64>,
    metrics: ProxyMetrics,
}

impl Proxy {
    pub fn new(
        name: String,
        protocol: Protocol,
        settings: Settings,
        server_seed: u64,
        metrics: ProxyMetrics,
        limits: Limits,
    ) -> Self {
        Proxy {
            seed: seed::mix(server_seed, seed::name_hash(&name)),
            toxics: Arc::new(ToxicTable::new(limits.toxics_per_proxy)),
            connections: Arc::new(Connections::new(&name, limits.connections_per_proxy)),
            name,
            protocol,
            settings: Mutex::new(settings),
            running: tokio::sync::Mutex::new(None),
            next_connection: Arc::new(AtomicU64::new(0)),
            metrics,
        }
    }

    fn lock_settings(&self) -> MutexGuard<'_, Settings> {
        self.settings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn settings(&self) -> Settings {
        self.lock_settings().clone()
    }

    pub fn view(&self) -> ProxyView {
        let settings = self.settings();
        ProxyView {
            name: self.name.clone(),
            listen: settings.listen,
            upstream: settings.upstream,
            enabled: settings.enabled,
            toxics: self
                .toxics
                .list()
                .iter()
                .map(|toxic| toxic.view())
                .collect(),
            protocol: self.protocol,
        }
    }

    /// Binds and starts accepting if the settings say enabled.
    pub async fn start_if_enabled(&self) -> Result<(), ApiError> {
        if self.settings().enabled {
            self.start().await
        } else {
            Ok(())
        }
    }

    /// Binds the listen address and starts serving; nothing if already running.
    pub async fn start(&self) -> Result<(), ApiError> {
        let mut running = self.running.lock().await;
        if running.is_some() {
            return Ok(());
        }
        // A literal address: binding never waits for a name lookup (address.rs).
        let address = listen_address(&self.settings().listen)?;
        let listen_error = |error: std::io::Error| ApiError::Listen {
            address: address.to_string(),
            message: error.to_string(),
            // An address this machine does not have is the request's fault; a taken
            // port stays Toxiproxy's 500.
            client_fault: matches!(
                error.kind(),
                std::io::ErrorKind::AddrNotAvailable | std::io::ErrorKind::InvalidInput
            ),
        };
        let accept = match self.protocol {
            Protocol::Tcp => {
                let listener = TcpListener::bind(address).await.map_err(listen_error)?;
                let local = listener.local_addr().map_err(listen_error)?;
                self.lock_settings().listen = local.to_string();
                tokio::spawn(accept_loop(listener, self.link_factory()))
            }
            Protocol::Udp => {
                let socket = tokio::net::UdpSocket::bind(address)
                    .await
                    .map_err(listen_error)?;
                let local = socket.local_addr().map_err(listen_error)?;
                self.lock_settings().listen = local.to_string();
                tokio::spawn(udp::serve(socket, self.udp_setup()))
            }
        };
        self.lock_settings().enabled = true;
        *running = Some(Running { accept });
        Ok(())
    }

    /// Closes the listener (the port is free when this returns) and cuts every
    /// connection.
    pub async fn stop(&self) {
        let mut running = self.running.lock().await;
        if let Some(Running { accept }) = running.take() {
            accept.abort();
            // Waiting for the aborted task drops its listener before we answer.
            let _ = accept.await;
        }
        self.lock_settings().enabled = false;
        self.connections.cut_all();
    }

    /// Applies new settings: a changed listen or upstream restarts the proxy.
    pub async fn update(&self, next: Settings) -> Result<(), ApiError> {
        let current = self.settings();
        let moved = next.listen != current.listen || next.upstream != current.upstream;
        if moved || !next.enabled {
            self.stop().await;
        }
        {
            let mut settings = self.lock_settings();
            settings.listen = next.listen;
            settings.upstream = next.upstream;
            settings.enabled = next.enabled;
        }
        if next.enabled {
            if let Err(error) = self.start().await {
                // Not listening: say so, rather than show a proxy that is not there.
                self.lock_settings().enabled = false;
                return Err(error);
            }
        }
        Ok(())
    }

    pub fn connections(&self) -> Vec<ConnectionView> {
        let toxics = self.toxics.list();
        let table = self.connections.lock();
        let mut views: Vec<(Instant, ConnectionView)> = table
            .values()
            .map(|connection| {
                let view = ConnectionView {
                    source: connection.source.to_string(),
                    age_ms: connection.started.elapsed().as_millis() as u64,
                    bytes_upstream: connection.bytes_upstream.load(Ordering::Relaxed),
                    bytes_downstream: connection.bytes_downstream.load(Ordering::Relaxed),
                    queued_pieces: connection.queued.iter().map(|q| q.get().0 as u64).sum(),
                    queued_bytes: connection.queued.iter().map(|q| q.get().1 as u64).sum(),
                    toxics: toxics
                        .iter()
                        .filter(|toxic| applies(toxic, connection.source.ip(), connection.seed))
                        .map(|toxic| toxic.name.clone())
                        .collect(),
                };
                (connection.started, view)
            })
            .collect();
        views.sort_by_key(|(started, _)| *started);
        views.into_iter().map(|(_, view)| view).collect()
    }

    fn link_factory(&self) -> LinkFactory {
        LinkFactory {
            upstream: self.settings().upstream,
            seed: self.seed,
            toxics: Arc::clone(&self.toxics),
            connections: Arc::clone(&self.connections),
            next_connection: Arc::clone(&self.next_connection),
            metrics: self.metrics.clone(),
        }
    }

    fn udp_setup(&self) -> udp::UdpSetup {
        udp::UdpSetup {
            upstream: self.settings().upstream,
            seed: self.seed,
            toxics: self.toxics.subscribe(),
            next_session: Arc::clone(&self.next_connection),
            connections: Arc::clone(&self.connections),
            metrics: self.metrics.clone(),
        }
    }
}

/// What the accept loop needs to start a link.
#[derive(Debug)]
struct LinkFactory {
    upstream: String,
    seed: u64,
    toxics: Arc<ToxicTable>,
    connections: Arc<Connections>,
    next_connection: Arc<AtomicU64>,
    metrics: ProxyMetrics,
}

async fn accept_loop(listener: TcpListener, factory: LinkFactory) {
    loop {
        let Ok((client, source)) = listener.accept().await else {
            // Out of descriptors or similar: back off instead of spinning.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let id = factory.next_connection.fetch_add(1, Ordering::Relaxed);
        let connection_seed = seed::mix(factory.seed, id);
        let setup = LinkSetup {
            upstream: factory.upstream.clone(),
            source,
            seed: connection_seed,
            toxics: factory.toxics.subscribe(),
            metrics: factory.metrics.clone(),
            bytes_upstream: Arc::new(AtomicU64::new(0)),
            bytes_downstream: Arc::new(AtomicU64::new(0)),
            queued_upstream: Arc::default(),
            queued_downstream: Arc::default(),
        };
        let entry = ConnectionEntry {
            id,
            source,
            seed: connection_seed,
            bytes_upstream: Arc::clone(&setup.bytes_upstream),
            bytes_downstream: Arc::clone(&setup.bytes_downstream),
            queued: [
                Arc::clone(&setup.queued_upstream),
                Arc::clone(&setup.queued_downstream),
            ],
        };
        // At the limit the client is closed at once (dropped with the refused task),
        // before any upstream is dialled.
        factory
            .connections
            .spawn(entry, &factory.metrics, link::serve(client, setup));
    }
}
