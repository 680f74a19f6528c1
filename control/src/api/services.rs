//! `GET /services` (each named service with its backends and the packets
//! sent to them) and `POST /config/reload` (the `--config` file's services
//! applied as on SIGHUP; a change, so it needs the token like the others).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use serde_json::{json, Value};

use super::backends::BackendView;
use super::error::ApiError;
use super::ApiState;
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
    /// Backends taking new flows.
    pub in_rotation: usize,
    /// Packets the workers sent to the service's backends.
    pub packets: u64,
    pub backends: Vec<BackendView>,
}

pub async fn list(State(state): State<ApiState>) -> Json<Vec<ServiceView>> {
    let backends = state.publisher.backends();
    let snapshot = Snapshot::for_backends(&state.counters, &backends);
    let services = state.publisher.services();
    let views = services
        .0
        .iter()
        .map(|service| {
            let members: Vec<BackendView> = service
                .members
                .iter()
                .filter_map(|addr| backends.iter().find(|b| b.addr == *addr))
                .map(|b| BackendView::new(b, snapshot.total.packets_to(b)))
                .collect();
            let t = &service.template;
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
                in_rotation: members.iter().filter(|b| b.in_rotation).count(),
                packets: members.iter().map(|b| b.packets).sum(),
                backends: members,
            }
        })
        .collect();
    Json(views)
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
