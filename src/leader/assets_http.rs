//! The HTTP API of assets, launchers and workflow models.
//!
//! - `PUT /api/assets/{*path}`: the body is the asset's bytes, streamed into the datastore (never
//!   held in memory); `Content-Type` gives the MIME type, else it is guessed from the name.
//! - `POST /api/assets/{*path}` `{"blob": {sha256, size}, "mime_type"?}`: registers bytes already
//!   in the datastore (what `offloader ingest` does after uploading directly).
//! - `GET /api/assets/{*path}`: the asset as JSON; `GET /api/assets/{*path}/renditions/{name}`
//!   streams a rendition (`original` names the original). axum's wildcard takes the whole rest of
//!   the URL, so the `/renditions/<name>` suffix is split off here: it names a rendition when
//!   the part before it is a known asset, and otherwise the whole path is taken as an asset path.
//! - `GET /api/launchers`, `GET /api/models`.
//!
//! Bad paths are refused with 400 and the reason before a byte of the body is read. Changes need
//! the bearer token when one is set, like every other change.

use super::ingest::{IngestError, IngestOutcome, Ingestor};
use crate::datastore::{BlobStore, DatastoreError};
use crate::protocol::{AssetPath, BlobRef};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures::TryStreamExt;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

#[derive(Clone)]
pub struct AssetsState {
    pub ingestor: Arc<Ingestor>,
    pub store: Option<Arc<dyn BlobStore>>,
    pub token: Option<String>,
}

pub fn router(state: AssetsState) -> Router {
    Router::new()
        .route("/api/assets/{*path}", get(get_asset).put(put_asset).post(register_asset))
        .route("/api/launchers", get(launchers))
        .route("/api/models", get(models))
        .with_state(state)
}

struct Fail(StatusCode, String);

impl IntoResponse for Fail {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<IngestError> for Fail {
    fn from(e: IngestError) -> Self {
        Fail(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
    }
}

fn bad(msg: impl Into<String>) -> Fail {
    Fail(StatusCode::BAD_REQUEST, msg.into())
}

fn check_token(state: &AssetsState, headers: &HeaderMap) -> Result<(), Fail> {
    if let Some(token) = &state.token {
        let given =
            headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
        if given != Some(token.as_str()) {
            return Err(Fail(StatusCode::UNAUTHORIZED, "missing or wrong bearer token".into()));
        }
    }
    Ok(())
}

/// The wildcard capture as an absolute asset path, or 400 with the reason.
fn asset_path(rest: &str) -> Result<AssetPath, Fail> {
    AssetPath::parse(&format!("/{rest}")).map_err(|e| bad(e.to_string()))
}

fn store(state: &AssetsState) -> Result<&Arc<dyn BlobStore>, Fail> {
    state
        .store
        .as_ref()
        .ok_or_else(|| Fail(StatusCode::SERVICE_UNAVAILABLE, "this leader runs without a datastore".into()))
}

fn datastore_fail(e: DatastoreError) -> Fail {
    match e {
        DatastoreError::Io { .. } => bad(format!("upload failed: {e}")),
        other => Fail(StatusCode::SERVICE_UNAVAILABLE, other.to_string()),
    }
}

/// The MIME type a client declared, unless it is the meaningless default; else a guess by name.
fn mime_type(declared: Option<&str>, path: &AssetPath) -> String {
    declared
        .map(|m| m.split(';').next().unwrap_or(m).trim().to_ascii_lowercase())
        .filter(|m| !m.is_empty() && m != "application/octet-stream" && m.contains('/'))
        .unwrap_or_else(|| mime_guess::from_path(path.name()).first_or_octet_stream().essence_str().to_owned())
}

fn answer(outcome: IngestOutcome) -> Response {
    let status = match outcome.change {
        super::assets::AssetChange::Created => StatusCode::CREATED,
        _ => StatusCode::OK,
    };
    (status, Json(outcome)).into_response()
}

async fn put_asset(
    State(state): State<AssetsState>,
    Path(rest): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Fail> {
    check_token(&state, &headers)?;
    let path = asset_path(&rest)?;
    let store = store(&state)?;
    let declared = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let mime = mime_type(declared, &path);
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    let reader = tokio_util::io::StreamReader::new(stream);
    let stored = store.put_reader(Box::new(Box::pin(reader))).await.map_err(datastore_fail)?;
    Ok(answer(state.ingestor.ingest(path, stored.blob, mime).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Register {
    blob: BlobRef,
    #[serde(default)]
    mime_type: Option<String>,
}

async fn register_asset(
    State(state): State<AssetsState>,
    Path(rest): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, Fail> {
    check_token(&state, &headers)?;
    let path = asset_path(&rest)?;
    let req: Register = serde_json::from_slice(&body).map_err(|e| bad(format!("invalid asset registration: {e}")))?;
    let present = store(&state)?.contains(&req.blob).await.map_err(datastore_fail)?;
    if !present {
        return Err(bad(format!("blob {} is not in the datastore; upload it first", req.blob.sha256)));
    }
    let mime = mime_type(req.mime_type.as_deref(), &path);
    Ok(answer(state.ingestor.ingest(path, req.blob, mime).await?))
}

async fn get_asset(State(state): State<AssetsState>, Path(rest): Path<String>) -> Result<Response, Fail> {
    let full = format!("/{rest}");
    if let Some((asset, name)) = full.rsplit_once("/renditions/") {
        if let Ok(asset) = AssetPath::parse(asset) {
            if let Some(found) = state.ingestor.repo.get(asset).await.map_err(IngestError::from)? {
                return rendition(&state, found, name).await;
            }
        }
    }
    let path = asset_path(&rest)?;
    match state.ingestor.repo.get(path.clone()).await.map_err(IngestError::from)? {
        Some(asset) => Ok(Json(asset).into_response()),
        None => Err(Fail(StatusCode::NOT_FOUND, format!("no asset at {path}"))),
    }
}

async fn rendition(state: &AssetsState, asset: super::assets::Asset, name: &str) -> Result<Response, Fail> {
    let (blob, mime) = if name == "original" {
        (asset.original.clone(), asset.mime_type.clone())
    } else {
        let r =
            asset.renditions.iter().find(|r| r.name == name).ok_or_else(|| {
                Fail(StatusCode::NOT_FOUND, format!("asset {} has no rendition {name:?}", asset.path))
            })?;
        (r.blob.clone(), r.mime_type.clone())
    };
    let store = store(state)?;
    // Fetched (and verified) into an unlinked temp file, then streamed: memory stays flat.
    let tmp = tempfile::NamedTempFile::new()
        .map_err(|e| Fail(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot create a temp file: {e}")))?;
    store.get_to_file(&blob, tmp.path()).await.map_err(|e| Fail(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    let file = tokio::fs::File::open(tmp.path())
        .await
        .map_err(|e| Fail(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot read the fetched blob: {e}")))?;
    drop(tmp);
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file));
    Ok((
        [
            (header::CONTENT_TYPE, mime),
            (header::CONTENT_LENGTH, blob.size.to_string()),
            (header::ETAG, format!("\"{}\"", blob.sha256)),
        ],
        body,
    )
        .into_response())
}

async fn launchers(State(state): State<AssetsState>) -> Response {
    Json(json!({ "launchers": state.ingestor.launchers.list() })).into_response()
}

async fn models(State(state): State<AssetsState>) -> Response {
    let all: Vec<_> = state.ingestor.models.all().collect();
    Json(json!({ "models": all })).into_response()
}
