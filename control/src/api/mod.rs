//! The HTTP API: backends (list, add, change, remove), counters as JSON and
//! as Prometheus metrics, and a liveness check. All routes are in
//! [`router`]; unknown routes and methods answer with a JSON error that
//! lists them.
//!
//! Every request passes, in this order: the per-client rate
//! ([`rate_limit`], 429), the Host check ([`host_check`], 421), the token
//! ([`token`], 401) and the body's size and time limits ([`body`], 413,
//! 408). Connections are capped and timed out by the accept loop
//! ([`server`]). Handlers only read snapshots or queue a change behind the
//! publisher: none waits on a Maglev build to read.

mod backends;
mod bgp;
mod body;
mod client;
mod connections;
mod error;
mod host_check;
mod limits;
mod liveness;
mod observe;
mod rate_limit;
mod server;
mod services;
mod token;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode, Uri};
use axum::middleware::from_fn_with_state;
use axum::routing::{delete, get, patch, post};
use axum::Router;
use tokio::net::TcpListener;

pub use backends::BackendView;
pub use client::ClientAddr;
pub use error::ApiError;
pub use host_check::AllowedHosts;
pub use limits::{ApiLimits, BODY_TIMEOUT, HEADER_TIMEOUT, MAX_BODY_BYTES};
pub use liveness::{Liveness, DEFAULT_STALL_LIMIT};
pub use rate_limit::RateLimiter;
pub use token::TokenPolicy;

use body::BodyLimits;

use crate::backends::Publisher;
use crate::stats::SharedCounters;

/// The routes, for error messages.
const ROUTES: &str = "GET /backends, POST /backends, PATCH /backends/{ip}, \
                      DELETE /backends/{ip}, GET /stats, GET /metrics, GET /healthz, \
                      GET /bgp, POST /drain, DELETE /drain, GET /services, POST /services, DELETE /services/{name}, \
                      POST /services/{name}/backends, DELETE /services/{name}/backends/{ip}, \
                      POST /config/reload";

/// What the handlers share: the backend set's publisher, the workers'
/// counters (read, never written) and what `/healthz` last saw of them;
/// and what the layers in front of them check.
#[derive(Debug, Clone)]
pub struct ApiState {
    publisher: Publisher,
    counters: Arc<[SharedCounters]>,
    liveness: Arc<Liveness>,
    token: Arc<TokenPolicy>,
    /// `RR_API_HOSTS`: names answered to besides addresses and localhost.
    hosts: Vec<String>,
    limits: ApiLimits,
    /// The BGP speaker, when `RR_BGP_*` turned it on.
    bgp: Option<crate::bgp::BgpHandle>,
    /// The `--config` file `POST /config/reload` reads.
    config: Option<std::path::PathBuf>,
}

impl ApiState {
    /// `/healthz` calls a worker stuck after [`DEFAULT_STALL_LIMIT`] without a batch.
    pub fn new(publisher: Publisher, counters: Vec<SharedCounters>) -> Self {
        Self::with_stall_limit(publisher, counters, DEFAULT_STALL_LIMIT)
    }

    /// Like [`new`](Self::new), with the time a worker may go without a batch.
    pub fn with_stall_limit(
        publisher: Publisher,
        counters: Vec<SharedCounters>,
        limit: Duration,
    ) -> Self {
        Self {
            liveness: Arc::new(Liveness::new(&counters, limit)),
            publisher,
            counters: counters.into(),
            token: Arc::new(TokenPolicy::default()),
            hosts: Vec::new(),
            limits: ApiLimits::default(),
            bgp: None,
            config: None,
        }
    }

    /// Serves `POST /config/reload` from `path`.
    #[must_use]
    pub fn with_config(mut self, path: Option<std::path::PathBuf>) -> Self {
        self.config = path;
        self
    }

    /// Serves `GET /bgp` and `/drain` from `bgp`.
    #[must_use]
    pub fn with_bgp(mut self, bgp: Option<crate::bgp::BgpHandle>) -> Self {
        self.bgp = bgp;
        self
    }

    /// What `/healthz` (and the BGP speaker) judge readiness from.
    pub fn readiness(&self) -> crate::readiness::Readiness {
        crate::readiness::Readiness {
            publisher: self.publisher.clone(),
            counters: Arc::clone(&self.counters),
            liveness: Arc::clone(&self.liveness),
        }
    }

    /// Requires `token` on changes, and on reads but `/healthz` with
    /// `on_reads`; `None` asks for none.
    #[must_use]
    pub fn with_token(mut self, token: Option<crate::config::ApiToken>, on_reads: bool) -> Self {
        self.token = Arc::new(TokenPolicy { token, on_reads });
        self
    }

    /// Answers to these Host names too.
    #[must_use]
    pub fn with_hosts(mut self, names: &[String]) -> Self {
        self.hosts = names.to_vec();
        self
    }

    #[must_use]
    pub fn with_limits(mut self, limits: ApiLimits) -> Self {
        self.limits = limits;
        self
    }
}

/// Every route of the API, behind its checks, for an API listening on
/// `bound` (what the Host check compares with).
pub fn router(state: ApiState, bound: SocketAddr) -> Router {
    let limits = state.limits;
    let rate = Arc::new(RateLimiter::new(limits.rate_per_second, limits.burst));
    let hosts = Arc::new(AllowedHosts::new(bound, &state.hosts));
    let token = Arc::clone(&state.token);
    let body = Arc::new(BodyLimits {
        max_bytes: limits.max_body_bytes,
        timeout: limits.body_timeout,
    });
    routes(state)
        // The last layer added runs first.
        .layer(from_fn_with_state(body, body::read_body))
        .layer(from_fn_with_state(token, token::require_token))
        .layer(from_fn_with_state(hosts, host_check::check_host))
        .layer(from_fn_with_state(rate, rate_limit::limit_rate))
}

/// The routes and their handlers.
fn routes(state: ApiState) -> Router {
    Router::new()
        .route("/backends", get(backends::list).post(backends::add))
        .route(
            "/backends/{ip}",
            patch(backends::patch).delete(backends::remove),
        )
        .route("/stats", get(observe::stats))
        .route("/metrics", get(observe::prometheus))
        .route("/healthz", get(observe::healthz))
        .route("/bgp", get(bgp::show))
        .route("/drain", post(bgp::drain).delete(bgp::resume))
        .route("/services", get(services::list).post(services::add))
        .route("/services/{name}", delete(services::remove))
        .route("/services/{name}/backends", post(services::add_backend))
        .route(
            "/services/{name}/backends/{ip}",
            delete(services::remove_backend),
        )
        .route("/config/reload", post(services::reload))
        .fallback(unknown_route)
        .method_not_allowed_fallback(unknown_method)
        .with_state(state)
}

async fn unknown_route(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("no route {method} {}; the routes are {ROUTES}", uri.path()),
    )
}

async fn unknown_method(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "{} does not take {method}; the routes are {ROUTES}",
            uri.path()
        ),
    )
}

/// Binds `addr` (an error names it and `RR_API`).
pub async fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot listen on {addr} (RR_API): {e}; choose another ip:port, or none"),
        )
    })
}

/// Serves the API on `listener` until `shutdown` completes, then finishes
/// the requests in flight.
pub async fn serve_on(
    listener: TcpListener,
    state: ApiState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let bound = listener.local_addr()?;
    let limits = state.limits;
    server::serve(listener, router(state, bound), limits, shutdown).await
}

/// Binds `addr` and serves the API until `shutdown` completes.
pub async fn serve(
    addr: SocketAddr,
    state: ApiState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let listener = bind(addr).await?;
    tracing::info!(%addr, "API listening");
    serve_on(listener, state, shutdown).await
}
