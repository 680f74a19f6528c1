//! Read-only endpoints: `/stats` (JSON counters), `/metrics` (Prometheus)
//! and `/healthz` (whether the balancer can forward).

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::error::ApiError;
use super::ApiState;
use crate::metrics::{self, Format};
use crate::stats::{Snapshot, StatsReport};

pub async fn stats(State(state): State<ApiState>) -> Json<Value> {
    let backends = state.publisher.backends();
    let snapshot = Snapshot::for_backends(&state.counters, &backends);
    let report = StatsReport::new(&snapshot, &backends, state.publisher.generation());
    let mut body = serde_json::to_value(&report).unwrap_or_default();
    // Named services add a `services` section; without them the report is
    // as it always was.
    if let (Some(object), Some(services)) = (body.as_object_mut(), super::services::stats(&state)) {
        object.insert("services".into(), services);
    }
    Json(body)
}

pub async fn prometheus(
    State(state): State<ApiState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = Format::from_accept(accept);
    let backends = state.publisher.backends();
    let services = state.publisher.services();
    let snapshot = Snapshot::for_backends(&state.counters, &backends).with_services(
        &state.counters,
        &services,
        &backends,
    );
    let generation = state.publisher.generation();
    let text = metrics::render_services_as(
        format,
        &snapshot,
        &backends,
        &services,
        generation,
        state
            .bgp
            .as_ref()
            .map(crate::bgp::BgpHandle::status)
            .as_ref(),
    )
    .map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode the metrics: {e}"),
        )
    })?;
    Ok(([(header::CONTENT_TYPE, format.content_type())], text).into_response())
}

/// 200 when the balancer can forward: some backend is in rotation and every
/// worker is running batches; otherwise 503, with what is wrong in
/// `problems` (for a router or orchestrator to take the balancer out).
pub async fn healthz(State(state): State<ApiState>) -> (StatusCode, Json<Value>) {
    let verdict = state.readiness().check();
    let (code, status) = if verdict.ready() {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "unhealthy")
    };
    let body = json!({
        "status": status,
        "problems": verdict.problems,
        "table_generation": state.publisher.generation(),
        "backends": verdict.backends,
        "in_rotation": verdict.in_rotation,
        "workers": state.counters.len(),
    });
    (code, Json(body))
}
