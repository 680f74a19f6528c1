//! The HTTP API: backends (list, add, change, remove), counters as JSON and
//! as Prometheus metrics, and a liveness check. All routes are in
//! [`router`]; unknown routes and methods answer with a JSON error that
//! lists them.

mod backends;
mod error;
mod liveness;
mod observe;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode, Uri};
use axum::routing::{get, patch};
use axum::Router;
use tokio::net::TcpListener;

pub use backends::BackendView;
pub use error::ApiError;
pub use liveness::DEFAULT_STALL_LIMIT;

use liveness::Liveness;

use crate::backends::Publisher;
use crate::stats::SharedCounters;

/// The routes, for error messages.
const ROUTES: &str = "GET /backends, POST /backends, PATCH /backends/{ip}, \
                      DELETE /backends/{ip}, GET /stats, GET /metrics, GET /healthz";

/// What the handlers share: the backend set's publisher, the workers'
/// counters (read, never written) and what `/healthz` last saw of them.
#[derive(Debug, Clone)]
pub struct ApiState {
    publisher: Publisher,
    counters: Arc<[SharedCounters]>,
    liveness: Arc<Liveness>,
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
        }
    }
}

/// Every route of the API.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/backends", get(backends::list).post(backends::add))
        .route(
            "/backends/{ip}",
            patch(backends::patch).delete(backends::remove),
        )
        .route("/stats", get(observe::stats))
        .route("/metrics", get(observe::prometheus))
        .route("/healthz", get(observe::healthz))
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
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
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
