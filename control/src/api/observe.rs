//! Read-only endpoints: `/stats` (JSON counters), `/metrics` (Prometheus)
//! and `/healthz` (the control process answers).

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::error::ApiError;
use super::ApiState;
use crate::metrics;
use crate::stats::{Snapshot, StatsReport};

pub async fn stats(State(state): State<ApiState>) -> Json<StatsReport> {
    let backends = state.publisher.backends();
    let snapshot = Snapshot::for_backends(&state.counters, &backends);
    Json(StatsReport::new(
        &snapshot,
        &backends,
        state.publisher.generation(),
    ))
}

pub async fn prometheus(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let backends = state.publisher.backends();
    let snapshot = Snapshot::for_backends(&state.counters, &backends);
    let text =
        metrics::render(&snapshot, &backends, state.publisher.generation()).map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot encode the metrics: {e}"),
            )
        })?;
    Ok(([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response())
}

pub async fn healthz(State(state): State<ApiState>) -> Json<Value> {
    let backends = state.publisher.backends();
    Json(json!({
        "status": "ok",
        "table_generation": state.publisher.generation(),
        "backends": backends.len(),
        "in_rotation": backends.iter().filter(|b| b.in_rotation()).count(),
        "workers": state.counters.len(),
    }))
}
