//! The HTTP API of assets, launchers and workflow models.
//!
//! - `PUT /api/assets/{*path}`: the body is the asset's bytes, streamed into the datastore (never
//!   held in memory) and refused with 413 as soon as it passes `--max-upload-bytes` (at once
//!   when `Content-Length` says so). The MIME type is sniffed from the first bytes as they pass
//!   (`leader/assets/mime.rs`); bytes the sniffer does not know take `Content-Type`, else a
//!   guess from the name.
//! - `POST /api/assets/{*path}` `{"blob": {sha256, size}, "mime_type"?}`: registers bytes already
//!   in the datastore (what `offloader ingest` does after uploading directly).
//! - `GET /api/assets/{*path}`: the asset as JSON; `GET /api/assets/{*path}/renditions/{name}`
//!   streams a rendition (`original` names the original). axum's wildcard takes the whole rest of
//!   the URL, so the `/renditions/<name>` suffix is split off here: it names a rendition when
//!   the part before it is a known asset, and otherwise the whole path is taken as an asset path.
//! - `POST /api/reprocess/{*path}`: runs the asset's workflow again on the original it has (AEM's
//!   *Reprocess Assets*). Not under `/api/assets/`, whose wildcard takes any path: an asset may
//!   well live under a folder named `reprocess`.
//! - `GET /api/assets?folder=/content/dam`: one folder of the tree (subfolders, assets in it),
//!   for browsing; `GET /api/blobs/{sha256}?size=`: any stored blob's bytes (a job's inputs and
//!   outputs), so what a job read and wrote can be downloaded, not only renditions.
//! - `GET /api/launchers`, `GET /api/models`.
//!
//! Bad paths are refused with 400 and the reason before a byte of the body is read.

use super::error::ApiError;
use super::ApiState;
use crate::datastore::{BlobStore, DatastoreError};
use crate::leader::assets::mime;
use crate::leader::workflows::Launcher;
use crate::protocol::api::{Asset, AssetChange, AssetFolder, ErrorBody, IngestOutcome};
use crate::protocol::WorkflowModel;
use crate::protocol::{AssetPath, BlobRef, Sha256Hex};
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::{StreamExt, TryStreamExt};
use serde::Deserialize;
use std::sync::Arc;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/assets", get(list_assets))
        .route("/api/assets/{*path}", get(get_asset).put(put_asset).post(register_asset))
        .route("/api/blobs/{sha256}", get(get_blob))
        .route("/api/reprocess/{*path}", post(reprocess_asset))
        .route("/api/launchers", get(launchers))
        .route("/api/models", get(models))
}

/// The wildcard capture as an absolute asset path, or 400 with the reason.
fn asset_path(rest: &str) -> Result<AssetPath, ApiError> {
    AssetPath::parse(&format!("/{rest}")).map_err(|e| ApiError::bad_request(e.to_string()))
}

fn store(state: &ApiState) -> Result<&Arc<dyn BlobStore>, ApiError> {
    state.store.as_ref().ok_or_else(|| ApiError::unavailable("this leader runs without a datastore"))
}

fn datastore_error(e: DatastoreError) -> ApiError {
    match e {
        DatastoreError::Io { .. } => ApiError::bad_request(format!("upload failed: {e}")),
        other => ApiError::unavailable(other.to_string()),
    }
}

fn too_large(max: u64) -> ApiError {
    ApiError(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the upload is larger than {max} bytes, the most this leader accepts (--max-upload-bytes)"),
    )
}

/// The MIME type a client declared, unless it is the meaningless default; else a guess by name
/// (for bytes registered by reference, which the leader does not read).
fn mime_type(declared: Option<&str>, path: &AssetPath) -> String {
    mime::declared_or_guessed(declared, path.name())
}

fn answer(outcome: IngestOutcome) -> Response {
    let status = match outcome.change {
        AssetChange::Created => StatusCode::CREATED,
        _ => StatusCode::OK,
    };
    (status, Json(outcome)).into_response()
}

/// Uploads an asset's bytes (the request body, streamed into the datastore): 201 when the path
/// is new, 200 when it existed (modified, or the same bytes again).
#[utoipa::path(put, path = "/api/assets/{path}", tag = "assets",
    params(("path" = String, Path, description = "The asset path without its leading /")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 201, body = IngestOutcome), (status = 200, body = IngestOutcome), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 413, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn put_asset(
    State(state): State<ApiState>,
    Path(rest): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let path = asset_path(&rest)?;
    let store = store(&state)?;
    let max = state.max_upload_bytes;
    let declared_len =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared_len.is_some_and(|n| n > max) {
        return Err(too_large(max));
    }
    let declared = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    // Keep the first bytes as they pass, for the sniffer.
    let head = Arc::new(std::sync::Mutex::new(Vec::with_capacity(mime::SNIFF_LEN)));
    let head_in = head.clone();
    // Count while streaming: a body without (or lying about) its length stops at the limit.
    let mut seen = 0u64;
    let stream = body.into_data_stream().map_err(std::io::Error::other).map(move |chunk| {
        let chunk = chunk?;
        seen += chunk.len() as u64;
        if let Ok(mut h) = head_in.lock() {
            let room = mime::SNIFF_LEN.saturating_sub(h.len());
            h.extend_from_slice(&chunk[..room.min(chunk.len())]);
        }
        if seen > max {
            return Err(std::io::Error::new(std::io::ErrorKind::FileTooLarge, "upload over the limit"));
        }
        Ok(chunk)
    });
    let reader = tokio_util::io::StreamReader::new(stream);
    let stored = match store.put_reader(Box::new(Box::pin(reader))).await {
        Ok(s) => s,
        Err(DatastoreError::Io { source, .. }) if source.kind() == std::io::ErrorKind::FileTooLarge => {
            return Err(too_large(max))
        }
        Err(e) => return Err(datastore_error(e)),
    };
    let mime = match head.lock() {
        Ok(h) => mime::content_mime(&h, path.name(), declared),
        Err(_) => mime_type(declared, &path),
    };
    Ok(answer(state.ingestor.ingest(path, stored.blob, mime).await?))
}

/// Bytes already in the datastore, to become an asset's original.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Register {
    blob: BlobRef,
    #[serde(default)]
    mime_type: Option<String>,
}

/// Registers bytes already in the datastore as an asset's original (what `offloader ingest` does).
#[utoipa::path(post, path = "/api/assets/{path}", tag = "assets", request_body = Register,
    params(("path" = String, Path, description = "The asset path without its leading /")),
    responses((status = 201, body = IngestOutcome), (status = 200, body = IngestOutcome), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody)))]
pub async fn register_asset(
    State(state): State<ApiState>,
    Path(rest): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let path = asset_path(&rest)?;
    let req: Register =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("invalid asset registration: {e}")))?;
    let present = store(&state)?.contains(&req.blob).await.map_err(datastore_error)?;
    if !present {
        return Err(ApiError::bad_request(format!(
            "blob {} is not in the datastore; upload it first",
            req.blob.sha256
        )));
    }
    let mime = mime_type(req.mime_type.as_deref(), &path);
    Ok(answer(state.ingestor.ingest(path, req.blob, mime).await?))
}

/// Runs the asset's workflow again on its current original, though its bytes did not change:
/// the outcome says which launcher fired and the job it started (`change` is `unchanged`).
#[utoipa::path(post, path = "/api/reprocess/{path}", tag = "assets",
    params(("path" = String, Path, description = "The asset path without its leading /")),
    responses((status = 200, body = IngestOutcome), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn reprocess_asset(State(state): State<ApiState>, Path(rest): Path<String>) -> Result<Response, ApiError> {
    let path = asset_path(&rest)?;
    match state.ingestor.reprocess(path.clone()).await? {
        Some(outcome) => Ok(Json(outcome).into_response()),
        None => Err(ApiError::not_found(format!("no asset at {path}"))),
    }
}

/// The asset (JSON); `.../renditions/{name}` streams a rendition's bytes (`original` for the
/// original), which needs the bearer token when one is set.
#[utoipa::path(get, path = "/api/assets/{path}", tag = "assets",
    params(("path" = String, Path, description = "The asset path without its leading /, optionally followed by /renditions/NAME")),
    responses((status = 200, description = "The asset, or a rendition's bytes",
            content((Asset = "application/json"), (Vec<u8> = "application/octet-stream"))),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_asset(State(state): State<ApiState>, Path(rest): Path<String>) -> Result<Response, ApiError> {
    let full = format!("/{rest}");
    if let Some((asset, name)) = full.rsplit_once("/renditions/") {
        if let Ok(asset) = AssetPath::parse(asset) {
            if let Some(found) = state.ingestor.repo.get(&asset).await? {
                return rendition(&state, found, name).await;
            }
        }
    }
    let path = asset_path(&rest)?;
    match state.ingestor.repo.get(&path).await? {
        Some(asset) => Ok(Json(asset).into_response()),
        None => Err(ApiError::not_found(format!("no asset at {path}"))),
    }
}

async fn rendition(state: &ApiState, asset: Asset, name: &str) -> Result<Response, ApiError> {
    let (blob, mime) = if name == "original" {
        (asset.original.clone(), asset.mime_type.clone())
    } else {
        let r = asset
            .renditions
            .iter()
            .find(|r| r.name == name)
            .ok_or_else(|| ApiError::not_found(format!("asset {} has no rendition {name:?}", asset.path)))?;
        (r.blob.clone(), r.mime_type.clone())
    };
    stream_blob(state, blob, mime).await
}

/// Streams a blob's bytes with its MIME type.
async fn stream_blob(state: &ApiState, blob: BlobRef, mime: String) -> Result<Response, ApiError> {
    let store = store(state)?;
    let internal = |what: &str, e: std::io::Error| ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("{what}: {e}"));
    // Fetched (and verified) into an unlinked temp file, then streamed: memory stays flat.
    let tmp = tempfile::NamedTempFile::new().map_err(|e| internal("cannot create a temp file", e))?;
    store.get_to_file(&blob, tmp.path()).await.map_err(|e| ApiError::unavailable(e.to_string()))?;
    let file = tokio::fs::File::open(tmp.path()).await.map_err(|e| internal("cannot read the fetched blob", e))?;
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

/// The most assets one folder listing reads.
const FOLDER_SCAN_MAX: usize = 10_000;

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct FolderQuery {
    /// The folder, e.g. `/content/dam` (default `/`).
    folder: Option<String>,
    /// Read at most this many assets under it (default and most 10 000).
    limit: Option<usize>,
}

/// One folder of the asset tree: its subfolders (with how many assets each holds) and the
/// assets directly in it, by path.
#[utoipa::path(get, path = "/api/assets", tag = "assets", params(FolderQuery),
    responses((status = 200, body = AssetFolder), (status = 400, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn list_assets(
    State(state): State<ApiState>,
    Query(q): Query<FolderQuery>,
) -> Result<Json<AssetFolder>, ApiError> {
    let folder = q.folder.unwrap_or_else(|| "/".into());
    let trimmed = folder.trim_end_matches('/');
    // The root is the one folder that is not itself a valid asset path.
    if !trimmed.is_empty() {
        AssetPath::parse(trimmed).map_err(|e| ApiError::bad_request(e.to_string()))?;
    }
    let scan = q.limit.unwrap_or(FOLDER_SCAN_MAX).clamp(1, FOLDER_SCAN_MAX);
    Ok(Json(state.ingestor.repo.folder(trimmed, scan).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct BlobQuery {
    /// The blob's size in bytes, as its reference gives it (the download is checked against it).
    size: u64,
    /// The `Content-Type` to answer with (default `application/octet-stream`).
    #[serde(rename = "type")]
    mime_type: Option<String>,
}

/// A blob's bytes, by its reference (a job's input or output): needs the bearer token when one
/// is set, as asset bytes do.
#[utoipa::path(get, path = "/api/blobs/{sha256}", tag = "assets",
    params(("sha256" = String, Path, description = "The blob's sha256 (64 hex digits)"), BlobQuery),
    responses((status = 200, description = "The blob's bytes", content((Vec<u8> = "application/octet-stream"))),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn get_blob(
    State(state): State<ApiState>,
    Path(sha256): Path<String>,
    Query(q): Query<BlobQuery>,
) -> Result<Response, ApiError> {
    let sha256: Sha256Hex = sha256.parse().map_err(|_| ApiError::bad_request(format!("{sha256:?} is not a sha256")))?;
    let mime = q
        .mime_type
        .filter(|m| m.contains('/') && !m.chars().any(|c| c.is_control()))
        .unwrap_or_else(|| "application/octet-stream".into());
    stream_blob(&state, BlobRef { sha256, size: q.size }, mime).await
}

/// `GET /api/launchers`.
#[derive(serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct LauncherList {
    /// In the order they are tried.
    pub launchers: Vec<Launcher>,
}

/// `GET /api/models`.
#[derive(serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ModelList {
    /// Each a workflow model document, as the JSON Schema `offloader.workflow-model.v1` in the
    /// repository's `schemas/` describes it (the one description of that contract).
    #[schema(value_type = Vec<Object>)]
    pub models: Vec<WorkflowModel>,
}

/// The workflow launchers, in the order they are tried.
#[utoipa::path(get, path = "/api/launchers", tag = "assets", responses((status = 200, body = LauncherList)))]
pub async fn launchers(State(state): State<ApiState>) -> Json<LauncherList> {
    Json(LauncherList { launchers: state.ingestor.launchers.list().to_vec() })
}

/// The workflow models this leader knows.
#[utoipa::path(get, path = "/api/models", tag = "assets", responses((status = 200, body = ModelList)))]
pub async fn models(State(state): State<ApiState>) -> Json<ModelList> {
    Json(ModelList { models: state.ingestor.models.all().cloned().collect() })
}
