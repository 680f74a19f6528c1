//! The fault proxy: a drop-in Toxiproxy server (`testbed proxy`) that existing
//! Toxiproxy clients drive unchanged, plus reproducible randomness (`--seed`), toxics
//! in config files, client targeting, time-bounded toxics, connect-phase faults, UDP
//! proxies and a live connections list.
//!
//! - [`api`]: the HTTP routes; [`collection`] and [`instance`]: proxies;
//! - [`toxics`]: one file per toxic and the registry; [`pipeline`]: which toxics act on
//!   a connection and how; [`link`] and [`udp`]: the data path.
//! - [`limits`]: how many proxies, toxics and connections a server holds;
//!   [`address`]: which `listen` and `upstream` texts are taken.

pub mod address;
pub mod api;
pub mod client_range;
pub mod collection;
pub mod config;
pub mod error;
pub mod instance;
pub mod limits;
pub mod link;
pub mod metrics;
pub mod pipeline;
pub mod queue_level;
pub mod seed;
pub mod splice;
pub mod toxic;
pub mod toxic_table;
pub mod toxics;
pub mod udp;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use tokio::net::TcpListener;

pub use collection::Collection;
pub use error::ApiError;
pub use limits::Limits;
pub use metrics::Metrics;

/// Toxiproxy-compatible fault proxy server.
#[derive(Debug, Clone, Args)]
#[command(after_help = "Examples:\n  \
    testbed proxy --port 8474 --seed 42\n  \
    testbed proxy --config proxies.json")]
pub struct ProxyArgs {
    /// Address of the HTTP API.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,

    /// Port of the HTTP API.
    #[arg(long, default_value_t = 8474)]
    pub port: u16,

    /// JSON list of proxies (with their toxics) to create at start.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Seed of every random choice (toxicity, jitter, slicer sizes, loss) [default: random].
    #[arg(long)]
    pub seed: Option<u64>,

    /// Most proxies the server holds; creating one more answers 429.
    #[arg(long, default_value_t = limits::MAX_PROXIES)]
    pub max_proxies: usize,

    /// Most toxics on one proxy; adding one more answers 429.
    #[arg(long, default_value_t = limits::MAX_TOXICS_PER_PROXY)]
    pub max_toxics: usize,

    /// Most open connections (TCP) or sessions (UDP) of one proxy; past it new ones
    /// are refused and counted in `testbed_proxy_refused_connections_total`.
    #[arg(long, default_value_t = limits::MAX_CONNECTIONS_PER_PROXY)]
    pub max_connections: usize,
}

impl ProxyArgs {
    pub fn limits(&self) -> Limits {
        Limits {
            proxies: self.max_proxies,
            toxics_per_proxy: self.max_toxics,
            connections_per_proxy: self.max_connections,
        }
    }
}

/// A bound API server, ready to serve.
#[derive(Debug)]
pub struct ProxyServer {
    listener: TcpListener,
    collection: Arc<Collection>,
}

impl ProxyServer {
    /// Binds the API address with a fresh, empty collection and the default limits.
    pub async fn bind(address: &str, seed: u64) -> std::io::Result<Self> {
        Self::bind_with_limits(address, seed, Limits::default()).await
    }

    /// Binds the API address with a fresh, empty collection held to `limits`.
    pub async fn bind_with_limits(
        address: &str,
        seed: u64,
        limits: Limits,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(address).await?;
        let collection = Arc::new(Collection::with_limits(
            seed,
            Arc::new(Metrics::new()),
            limits,
        ));
        Ok(ProxyServer {
            listener,
            collection,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn collection(&self) -> Arc<Collection> {
        Arc::clone(&self.collection)
    }

    /// Serves the API until the future is dropped or the listener fails.
    pub async fn serve(self) -> std::io::Result<()> {
        axum::serve(self.listener, api::routes(self.collection)).await
    }
}

/// `testbed proxy`: serves until killed; exit code 2 if it cannot start.
pub fn main(args: &ProxyArgs) -> ExitCode {
    if let Err(error) = crate::mconnect::raise_open_file_limit() {
        eprintln!("testbed proxy: cannot raise the open-file limit ({error}); continuing");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return failed(&format!("cannot start the async runtime: {error}")),
    };
    runtime.block_on(run(args))
}

async fn run(args: &ProxyArgs) -> ExitCode {
    let seed = args.seed.unwrap_or_else(seed::random_seed);
    let host = if args.host.contains(':') && !args.host.starts_with('[') {
        format!("[{}]", args.host)
    } else {
        args.host.clone()
    };
    let address = format!("{host}:{}", args.port);
    let server = match ProxyServer::bind_with_limits(&address, seed, args.limits()).await {
        Ok(server) => server,
        Err(error) => return failed(&format!("cannot listen on {address}: {error}")),
    };
    if let Some(path) = &args.config {
        match config::apply(&server.collection(), path).await {
            Ok(count) => eprintln!("testbed proxy: {count} proxies from {}", path.display()),
            Err(error) => return failed(&error.to_string()),
        }
    }
    eprintln!("testbed proxy: API on http://{address} (seed {seed})");
    match server.serve().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => failed(&format!("API server failed: {error}")),
    }
}

fn failed(message: &str) -> ExitCode {
    eprintln!("testbed proxy: {message}");
    ExitCode::from(2)
}
