//! `GET /services` (each named service with its backends and the packets
//! sent to them) and `POST /config/reload` (the `--config` file's services
//! applied as on SIGHUP; a change, so it needs the token like the others).

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use serde_json::{json, Value};

use super::backends::{check_weight, parse_ip, AddBackend, BackendView};
use super::error::ApiError;
use super::ApiState;
use crate::backends::BackendError;
use crate::config::file::{self, ServiceConfig};
use crate::config::TargetSpec;
use crate::live::config_reload;
use crate::stats::Snapshot;

/// One service as `GET /services` shows it.
#[derive(Debug, Serialize)]
pub struct ServiceView {
    pub name: String,
    pub vip: String,
    /// IP protocol number; `null` for every protocol.
    pub protocol: Option<u8>,
    /// `null` for every port.
    pub port: Option<u16>,
    /// `5-tuple` or `source`.
    pub hash: &'static str,
    pub table_size: u32,
    /// The service's own health check (`tcp:PORT`, `http:PORT/PATH`);
    /// `null` when its backends are checked with `RR_HEALTH`. Each
    /// backend's `health` says what the checks found.
    pub health: Option<String>,
    /// Backends taking new flows.
    pub in_rotation: usize,
    /// Packets the workers sent to the service's backends, their bytes (as
    /// received) and the new flows among them: sums over the backends' slots.
    pub packets: u64,
    pub bytes: u64,
    pub new_flows: u64,
    /// Frames of the service dropped after its lookup, by reason (every
    /// reason counted per service, zeros included).
    pub drops: std::collections::BTreeMap<&'static str, u64>,
    pub backends: Vec<BackendView>,
}

pub async fn list(State(state): State<ApiState>) -> Json<Vec<ServiceView>> {
    Json(views(&state))
}

/// The per-service part of `GET /stats`: packets, backends and backends in
/// rotation by service name; `None` without named services.
pub(super) fn stats(state: &ApiState) -> Option<Value> {
    let views = views(state);
    (!views.is_empty()).then(|| {
        views
            .iter()
            .map(|v| {
                let counts = json!({
                    "packets": v.packets,
                    "bytes": v.bytes,
                    "new_flows": v.new_flows,
                    "drops": v.drops,
                    "backends": v.backends.len(),
                    "in_rotation": v.in_rotation,
                });
                (v.name.clone(), counts)
            })
            .collect::<serde_json::Map<_, _>>()
            .into()
    })
}

fn views(state: &ApiState) -> Vec<ServiceView> {
    let backends = state.publisher.backends();
    let services = state.publisher.services();
    let snapshot = Snapshot::for_backends(&state.counters, &backends).with_services(
        &state.counters,
        &services,
        &backends,
    );
    let views = services
        .0
        .iter()
        .map(|service| {
            let own: Vec<&crate::backends::Backend> = service
                .members
                .iter()
                .filter_map(|addr| backends.iter().find(|b| b.addr == *addr))
                .collect();
            let members: Vec<BackendView> = own
                .iter()
                .map(|b| BackendView::new(b, snapshot.total.packets_to(b)))
                .collect();
            let t = &service.template;
            let traffic = snapshot.traffic_of(t.counter);
            ServiceView {
                name: t.name.clone(),
                vip: t.vip.to_string(),
                protocol: t.protocol,
                port: t.port,
                hash: match t.hash {
                    dataplane::forwarding::HashFields::FiveTuple => "5-tuple",
                    dataplane::forwarding::HashFields::SourceAddress => "source",
                },
                table_size: t.table_size,
                health: service.health.as_ref().map(ToString::to_string),
                in_rotation: members.iter().filter(|b| b.in_rotation).count(),
                packets: traffic.packets,
                bytes: traffic.bytes,
                new_flows: traffic.new_flows,
                drops: snapshot
                    .drops_of(t.counter)
                    .into_iter()
                    .map(|(reason, n)| (reason.name(), n))
                    .collect(),
                backends: members,
            }
        })
        .collect();
    views
}

pub async fn reload(State(state): State<ApiState>) -> Result<Json<Value>, ApiError> {
    let Some(path) = state.config.clone() else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no configuration file to reload; start rusty_rail with --config FILE (RR_CONFIG)",
        ));
    };
    let publisher = state.publisher.clone();
    // The Maglev builds run off the runtime's threads.
    let outcome = tokio::task::spawn_blocking(move || {
        config_reload::apply_services(&path, &publisher).map(|n| (n, publisher.generation()))
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    match outcome {
        Ok((services, generation)) => Ok(Json(
            json!({ "reloaded": true, "services": services, "generation": generation }),
        )),
        Err(errors) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("nothing changed: {errors}"),
        )),
    }
}

/// What `POST /services` takes: the fields of a `[[service]]` section.
const SERVICE_BODY: &str = r#"{"name": "web", "vip": "192.0.2.10", "protocol": "tcp", "port": 80, "backends": ["10.2.0.1", "10.2.0.2:2"], "table_size": 1009, "hash": "5-tuple"}"#;
const BACKEND_BODY: &str = r#"{"ip": "10.2.0.3", "weight": 1}"#;

/// A JSON service as the configuration file's `[[service]]` section,
/// checked by the same code.
fn service_of(body: &Value) -> Result<ServiceConfig, ApiError> {
    let bad = |why: String| ApiError::bad_request(format!("{why}; send {SERVICE_BODY}"));
    let section = toml::Value::try_from(body).map_err(|e| bad(e.to_string()))?;
    let mut document = toml::Table::new();
    document.insert("service".into(), toml::Value::Array(vec![section]));
    let text = toml::to_string(&document).map_err(|e| bad(e.to_string()))?;
    let mut parsed = file::parse(&text, &[]).map_err(|errors| {
        let why: Vec<String> = errors
            .iter()
            .map(|e| {
                format!(
                    "{}: {}",
                    e.field.trim_start_matches("service[0]."),
                    e.message
                )
            })
            .collect();
        bad(why.join("; "))
    })?;
    parsed
        .services
        .pop()
        .ok_or_else(|| bad("a service object is needed".into()))
}

async fn change<R: Send + 'static>(
    state: &ApiState,
    edit: impl FnOnce(&mut Vec<ServiceConfig>) -> Result<R, BackendError> + Send + 'static,
) -> Result<R, ApiError> {
    let publisher = state.publisher.clone();
    // The Maglev builds run off the runtime's threads.
    tokio::task::spawn_blocking(move || publisher.change_services(edit))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(ApiError::from)
}

fn position(configs: &[ServiceConfig], name: &str) -> Result<usize, BackendError> {
    configs
        .iter()
        .position(|s| s.name == name)
        .ok_or_else(|| BackendError::UnknownService(name.to_owned()))
}

pub async fn add(
    State(state): State<ApiState>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let Json(body) = body.map_err(|r| ApiError::body(&r, SERVICE_BODY))?;
    let service = service_of(&body)?;
    let name = service.name.clone();
    change(&state, move |configs| {
        if configs.iter().any(|s| s.name == service.name) {
            return Err(BackendError::ServiceExists(service.name));
        }
        configs.push(service);
        Ok(())
    })
    .await?;
    tracing::info!(service = %name, "API: service added");
    Ok(StatusCode::CREATED)
}

pub async fn remove(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let removed = name.clone();
    change(&state, move |configs| {
        let at = position(configs, &removed)?;
        configs.remove(at);
        Ok(())
    })
    .await?;
    tracing::info!(service = %name, "API: service removed");
    Ok(StatusCode::NO_CONTENT)
}

pub async fn add_backend(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    body: Result<Json<AddBackend>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let Json(body) = body.map_err(|r| ApiError::body(&r, BACKEND_BODY))?;
    let addr = parse_ip(&body.ip)
        .map_err(|why| ApiError::bad_request(format!("\"ip\": {why}; send {BACKEND_BODY}")))?;
    let weight = check_weight(body.weight.unwrap_or(1), BACKEND_BODY)?;
    change(&state, move |configs| {
        let at = position(configs, &name)?;
        if configs[at].backends.iter().any(|t| t.addr == addr) {
            return Err(BackendError::Exists(addr));
        }
        configs[at].backends.push(TargetSpec { addr, weight });
        Ok(())
    })
    .await?;
    Ok(StatusCode::CREATED)
}

pub async fn remove_backend(
    State(state): State<ApiState>,
    Path((name, ip)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let addr = parse_ip(&ip).map_err(ApiError::bad_request)?;
    change(&state, move |configs| {
        let at = position(configs, &name)?;
        let before = configs[at].backends.len();
        configs[at].backends.retain(|t| t.addr != addr);
        if configs[at].backends.len() == before {
            return Err(BackendError::Unknown(addr));
        }
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
