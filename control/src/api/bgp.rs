//! `GET /bgp` (the speaker's state), `POST /drain` (withdraw the routes
//! and keep them withdrawn while forwarding goes on) and `DELETE /drain`
//! (announce again while ready). The drain routes change the balancer, so
//! they need the token like every other change.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::error::ApiError;
use super::ApiState;
use crate::bgp::BgpHandle;

fn speaker(state: &ApiState) -> Result<&BgpHandle, ApiError> {
    state.bgp.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "BGP is off; set RR_BGP_LOCAL_AS with RR_BGP_PEERS (a BIRD rusty_rail runs) or RR_BGP_SOCKET (yours)",
        )
    })
}

/// The speaker's state, with the age of the last change in seconds.
fn view(bgp: &BgpHandle) -> Value {
    let status = bgp.status();
    let seconds_ago = status
        .last_change
        .as_ref()
        .and_then(|c| c.at)
        .map(|at| at.elapsed().as_secs_f64());
    let mut body = serde_json::to_value(&status).unwrap_or(Value::Null);
    if let Some(object) = body.as_object_mut() {
        object.insert("established".into(), json!(status.established()));
        object.insert("last_change_seconds_ago".into(), json!(seconds_ago));
    }
    body
}

pub async fn show(State(state): State<ApiState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(view(speaker(&state)?)))
}

pub async fn drain(State(state): State<ApiState>) -> Result<Json<Value>, ApiError> {
    let bgp = speaker(&state)?;
    bgp.drain();
    Ok(Json(view(bgp)))
}

pub async fn resume(State(state): State<ApiState>) -> Result<Json<Value>, ApiError> {
    let bgp = speaker(&state)?;
    bgp.resume();
    Ok(Json(view(bgp)))
}
