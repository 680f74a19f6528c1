//! The proxy routes: index, create, populate, show, update, delete, reset, and our
//! connections list.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::body::{self, respond};
use crate::proxy::collection::{Collection, ProxyInput, ProxyUpdate};
use crate::proxy::instance::{ProxyView, Settings};

pub async fn index(State(collection): State<Arc<Collection>>) -> Response {
    let views: BTreeMap<String, ProxyView> = collection
        .list()
        .await
        .iter()
        .map(|proxy| (proxy.name.clone(), proxy.view()))
        .collect();
    body::json(StatusCode::OK, &views)
}

pub async fn create(State(collection): State<Arc<Collection>>, request: Bytes) -> Response {
    respond(
        async {
            let input: ProxyInput = body::parse(&request)?;
            let proxy = collection.create(input).await?;
            Ok(body::json(StatusCode::CREATED, &proxy.view()))
        }
        .await,
    )
}

pub async fn populate(State(collection): State<Arc<Collection>>, request: Bytes) -> Response {
    let inputs: Vec<ProxyInput> = match body::parse(&request) {
        Ok(inputs) => inputs,
        Err(error) => {
            return body::json(
                StatusCode::from_u16(error.status()).unwrap_or(StatusCode::BAD_REQUEST),
                &serde_json::json!({"error": error.to_string(), "status": error.status(), "proxies": []}),
            )
        }
    };
    let (proxies, error) = collection.populate(inputs).await;
    let views: Vec<ProxyView> = proxies.iter().map(|proxy| proxy.view()).collect();
    match error {
        None => body::json(StatusCode::CREATED, &serde_json::json!({"proxies": views})),
        Some(error) => body::json(
            StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            &serde_json::json!({"error": error.to_string(), "status": error.status(), "proxies": views}),
        ),
    }
}

pub async fn show(State(collection): State<Arc<Collection>>, Path(name): Path<String>) -> Response {
    respond(
        async {
            let proxy = collection.get(&name).await?;
            Ok(body::json(StatusCode::OK, &proxy.view()))
        }
        .await,
    )
}

pub async fn update(
    State(collection): State<Arc<Collection>>,
    Path(name): Path<String>,
    request: Bytes,
) -> Response {
    respond(
        async {
            let proxy = collection.get(&name).await?;
            let input: ProxyUpdate = body::parse(&request)?;
            input.check()?;
            let current = proxy.settings();
            proxy
                .update(Settings {
                    listen: input.listen.unwrap_or(current.listen),
                    upstream: input.upstream.unwrap_or(current.upstream),
                    enabled: input.enabled.unwrap_or(current.enabled),
                })
                .await?;
            Ok(body::json(StatusCode::OK, &proxy.view()))
        }
        .await,
    )
}

pub async fn delete(
    State(collection): State<Arc<Collection>>,
    Path(name): Path<String>,
) -> Response {
    respond(
        async {
            collection.remove(&name).await?;
            Ok(body::no_content())
        }
        .await,
    )
}

pub async fn reset(State(collection): State<Arc<Collection>>) -> Response {
    respond(
        async {
            collection.reset().await?;
            Ok(body::no_content())
        }
        .await,
    )
}

pub async fn connections(
    State(collection): State<Arc<Collection>>,
    Path(name): Path<String>,
) -> Response {
    respond(
        async {
            let proxy = collection.get(&name).await?;
            Ok(body::json(StatusCode::OK, &proxy.connections()))
        }
        .await,
    )
}
