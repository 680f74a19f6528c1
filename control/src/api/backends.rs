//! `/backends`: list, add, change (weight, drain) and remove backends.
//! Every change is applied through the [`Publisher`], so it reaches the
//! workers as a new forwarding table before the response is sent.

use std::net::IpAddr;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::ApiState;
use crate::backends::{Backend, BackendError, BackendSet, Publisher, MAX_WEIGHT};
use crate::stats::Snapshot;

const ADD_BODY: &str = r#"{"ip": "10.1.0.4", "weight": 1} or {"ip": "2001:db8::4"} (IPv4 or IPv6; weight 0..=65535, optional, default 1)"#;
const PATCH_BODY: &str =
    r#"{"weight": N} (0..=65535) and/or {"drain": true|false}, e.g. {"weight": 2, "drain": false}"#;

/// A backend as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendView {
    /// IPv4 or IPv6, as written without brackets (`2001:db8::4`).
    pub ip: IpAddr,
    /// Configured weight (kept while draining).
    pub weight: u32,
    pub drain: bool,
    /// `up` or `down`, from health checks (always `up` without them).
    pub health: String,
    /// Next-hop MAC, `null` while unresolved.
    pub mac: Option<String>,
    /// Whether new flows can go here: up, not draining, weight above 0, MAC known.
    pub in_rotation: bool,
    pub slot: u16,
    pub generation: u16,
    /// Packets the workers sent to this backend's slot.
    pub packets: u64,
}

impl BackendView {
    pub(super) fn new(b: &Backend, packets: u64) -> Self {
        Self {
            ip: b.addr,
            weight: b.weight,
            drain: b.drain,
            health: if b.health.is_up() { "up" } else { "down" }.to_owned(),
            mac: b.mac.map(|m| {
                m.iter()
                    .map(|byte| format!("{byte:02x}"))
                    .collect::<Vec<_>>()
                    .join(":")
            }),
            in_rotation: b.in_rotation(),
            slot: b.slot,
            generation: b.generation,
            packets,
        }
    }
}

/// `POST /backends` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddBackend {
    pub(super) ip: String,
    pub(super) weight: Option<u64>,
}

/// `PATCH /backends/{ip}` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchBackend {
    weight: Option<u64>,
    drain: Option<bool>,
}

fn view(state: &ApiState, b: &Backend) -> BackendView {
    let snapshot = Snapshot::for_backends(&state.counters, std::slice::from_ref(b));
    BackendView::new(b, snapshot.total.packets_to(b))
}

pub async fn list(State(state): State<ApiState>) -> Json<Vec<BackendView>> {
    let backends = state.publisher.backends();
    let snapshot = Snapshot::for_backends(&state.counters, &backends);
    Json(
        backends
            .iter()
            .map(|b| BackendView::new(b, snapshot.total.packets_to(b)))
            .collect(),
    )
}

pub async fn add(
    State(state): State<ApiState>,
    body: Result<Json<AddBackend>, JsonRejection>,
) -> Result<(StatusCode, Json<BackendView>), ApiError> {
    let Json(body) = body.map_err(|r| ApiError::body(&r, ADD_BODY))?;
    let addr = parse_ip(&body.ip)
        .map_err(|why| ApiError::bad_request(format!("\"ip\": {why}; send {ADD_BODY}")))?;
    let weight = check_weight(body.weight.unwrap_or(1), ADD_BODY)?;
    let backend = change(&state.publisher, move |set| set.add(addr, weight).cloned()).await?;
    tracing::info!(backend = %addr, weight, slot = backend.slot, "API: backend added");
    Ok((StatusCode::CREATED, Json(view(&state, &backend))))
}

pub async fn patch(
    State(state): State<ApiState>,
    Path(ip): Path<String>,
    body: Result<Json<PatchBackend>, JsonRejection>,
) -> Result<Json<BackendView>, ApiError> {
    let addr = path_ip(&ip)?;
    let Json(body) = body.map_err(|r| ApiError::body(&r, PATCH_BODY))?;
    if body.weight.is_none() && body.drain.is_none() {
        return Err(ApiError::bad_request(format!(
            "nothing to change; send {PATCH_BODY}"
        )));
    }
    let weight = body
        .weight
        .map(|w| check_weight(w, PATCH_BODY))
        .transpose()?;
    let drain = body.drain;
    let backend = change(&state.publisher, move |set| {
        if let Some(w) = weight {
            set.set_weight(addr, w)?;
        }
        if let Some(d) = drain {
            set.set_drain(addr, d)?;
        }
        set.get(addr).cloned().ok_or(BackendError::Unknown(addr))
    })
    .await?;
    tracing::info!(backend = %addr, ?weight, ?drain, "API: backend changed");
    Ok(Json(view(&state, &backend)))
}

pub async fn remove(
    State(state): State<ApiState>,
    Path(ip): Path<String>,
) -> Result<Json<BackendView>, ApiError> {
    let addr = path_ip(&ip)?;
    let packets = state
        .publisher
        .backend(addr)
        .map_or(0, |b| view(&state, &b).packets);
    let backend = change(&state.publisher, move |set| set.remove(addr)).await?;
    tracing::info!(backend = %addr, slot = backend.slot, "API: backend removed");
    Ok(Json(BackendView::new(&backend, packets)))
}

/// Applies a change through the publisher on a blocking thread: building
/// the Maglev table takes milliseconds, too long for an async worker.
async fn change<R: Send + 'static>(
    publisher: &Publisher,
    f: impl FnOnce(&mut BackendSet) -> Result<R, BackendError> + Send + 'static,
) -> Result<R, ApiError> {
    let publisher = publisher.clone();
    tokio::task::spawn_blocking(move || publisher.update(f))
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the change failed: {e}"),
            )
        })?
        .map_err(ApiError::from)
}

/// An IPv4 or IPv6 address (IPv6 also in brackets, as in a URL), or why
/// not.
pub(super) fn parse_ip(s: &str) -> Result<IpAddr, String> {
    let trimmed = s.trim();
    let bare = trimmed
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'));
    match bare {
        Some(inside) => inside.parse::<std::net::Ipv6Addr>().map(IpAddr::V6),
        None => trimmed.parse(),
    }
    .map_err(|_| format!("{s:?} is not an IPv4 or IPv6 address"))
}

fn path_ip(s: &str) -> Result<IpAddr, ApiError> {
    parse_ip(s).map_err(|why| {
        ApiError::bad_request(format!(
            "{why}; use /backends/IP such as /backends/10.1.0.4 or /backends/2001:db8::4"
        ))
    })
}

pub(super) fn check_weight(w: u64, expected: &str) -> Result<u32, ApiError> {
    u32::try_from(w)
        .ok()
        .filter(|&w| w <= MAX_WEIGHT)
        .ok_or_else(|| {
            ApiError::bad_request(format!("\"weight\": {w} is out of range; send {expected}"))
        })
}
