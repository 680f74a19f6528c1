//! The toxic routes: index, create (200, as Toxiproxy), show, update (attributes
//! merge), delete.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::body::{self, respond};
use crate::proxy::collection::Collection;
use crate::proxy::toxic::{ToxicInput, ToxicView};

pub async fn index(
    State(collection): State<Arc<Collection>>,
    Path(proxy): Path<String>,
) -> Response {
    respond(
        async {
            let proxy = collection.get(&proxy).await?;
            let views: Vec<ToxicView> = proxy
                .toxics
                .list()
                .iter()
                .map(|toxic| toxic.view())
                .collect();
            Ok(body::json(StatusCode::OK, &views))
        }
        .await,
    )
}

pub async fn create(
    State(collection): State<Arc<Collection>>,
    Path(proxy): Path<String>,
    request: Bytes,
) -> Response {
    respond(
        async {
            let proxy = collection.get(&proxy).await?;
            let input: ToxicInput = body::parse(&request)?;
            let toxic = proxy.toxics.add(input)?;
            Ok(body::json(StatusCode::OK, &toxic.view()))
        }
        .await,
    )
}

pub async fn show(
    State(collection): State<Arc<Collection>>,
    Path((proxy, toxic)): Path<(String, String)>,
) -> Response {
    respond(
        async {
            let proxy = collection.get(&proxy).await?;
            Ok(body::json(
                StatusCode::OK,
                &proxy.toxics.get(&toxic)?.view(),
            ))
        }
        .await,
    )
}

pub async fn update(
    State(collection): State<Arc<Collection>>,
    Path((proxy, toxic)): Path<(String, String)>,
    request: Bytes,
) -> Response {
    respond(
        async {
            let proxy = collection.get(&proxy).await?;
            proxy.toxics.get(&toxic)?;
            let input: ToxicInput = body::parse(&request)?;
            Ok(body::json(
                StatusCode::OK,
                &proxy.toxics.update(&toxic, input)?.view(),
            ))
        }
        .await,
    )
}

pub async fn delete(
    State(collection): State<Arc<Collection>>,
    Path((proxy, toxic)): Path<(String, String)>,
) -> Response {
    respond(
        async {
            let proxy = collection.get(&proxy).await?;
            proxy.toxics.remove(&toxic)?;
            Ok(body::no_content())
        }
        .await,
    )
}
