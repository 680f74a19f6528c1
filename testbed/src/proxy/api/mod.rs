//! Toxiproxy's HTTP API, with the same paths, methods, status codes and JSON, plus
//! ours (`/proxies/{p}/connections`). Every route is listed in [`routes`].

mod body;
mod proxies;
mod toxics;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use super::collection::Collection;
use super::limits::MAX_BODY_BYTES;

/// The version `GET /version` reports: the Toxiproxy API level we speak.
pub const API_VERSION: &str = "2.12.0";

/// Every route of the API.
pub fn routes(collection: Arc<Collection>) -> Router {
    Router::new()
        .route("/reset", post(proxies::reset))
        .route("/proxies", get(proxies::index).post(proxies::create))
        .route("/populate", post(proxies::populate))
        .route(
            "/proxies/{proxy}",
            get(proxies::show)
                .post(proxies::update)
                .patch(proxies::update)
                .delete(proxies::delete),
        )
        .route("/proxies/{proxy}/connections", get(proxies::connections))
        .route(
            "/proxies/{proxy}/toxics",
            get(toxics::index).post(toxics::create),
        )
        .route(
            "/proxies/{proxy}/toxics/{toxic}",
            get(toxics::show)
                .post(toxics::update)
                .patch(toxics::update)
                .delete(toxics::delete),
        )
        .route("/version", get(version))
        .route("/metrics", get(metrics))
        .fallback(no_route)
        .method_not_allowed_fallback(no_method)
        // axum's default too, stated here so the README's limit is this line: a
        // longer body is a 413 before any JSON is parsed.
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(refuse_browsers))
        .with_state(collection)
}

/// Toxiproxy refuses browsers, so a web page cannot drive the proxy (CSRF).
async fn refuse_browsers(request: Request, next: Next) -> Response {
    let browser = request
        .headers()
        .get(header::USER_AGENT)
        .and_then(|agent| agent.to_str().ok())
        .is_some_and(|agent| agent.starts_with("Mozilla/"));
    if browser {
        (StatusCode::FORBIDDEN, "User agent not allowed\n").into_response()
    } else {
        next.run(request).await
    }
}

/// Unknown paths answer in the API's error shape, not with an empty 404.
async fn no_route(request: Request) -> Response {
    let message = format!("no route {}; see GET /proxies", request.uri().path());
    drain(request).await;
    json_error(StatusCode::NOT_FOUND, &message)
}

async fn no_method(request: Request) -> Response {
    let message = format!(
        "method {} not allowed on {}",
        request.method(),
        request.uri().path()
    );
    drain(request).await;
    json_error(StatusCode::METHOD_NOT_ALLOWED, &message)
}

/// Reads the body (up to the limit) before answering, as the routes that take one
/// do: a client still sending it then reads the answer instead of failing its write
/// when the connection closes under it.
async fn drain(request: Request) {
    let _ = axum::body::to_bytes(request.into_body(), MAX_BODY_BYTES).await;
}

fn json_error(status: StatusCode, message: &str) -> Response {
    body::json(
        status,
        &serde_json::json!({"error": super::error::shown(message), "status": status.as_u16()}),
    )
}

async fn version() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json;charset=utf-8")],
        format!("{{\"version\": \"{API_VERSION}\"}}\n"),
    )
        .into_response()
}

async fn metrics(
    axum::extract::State(collection): axum::extract::State<Arc<Collection>>,
) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        collection.metrics().render(),
    )
        .into_response()
}
