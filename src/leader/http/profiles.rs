//! `/api/profiles` and `/api/folder-profiles`: processing profiles (AEM as a Cloud Service) and
//! the folders they are applied to.
//!
//! - `GET /api/profiles`: every profile and every folder one is applied to;
//! - `GET|PUT|DELETE /api/profiles/{name}`: one profile (PUT creates or replaces it; DELETE
//!   also takes it off its folders);
//! - `GET /api/folder-profiles/{*path}`: the profile that holds for a folder (or an asset's path)
//!   and where it is applied; `PUT` applies one (`{"profile": "<name>"}`), `DELETE` takes it off.

use super::error::ApiError;
use super::ApiState;
use crate::leader::assets::ProfileStoreError;
use crate::protocol::api::{ApplyProfile, ErrorBody, FolderProfile, ProfileList, RemovedProfile, ResolvedProfile};
use crate::protocol::{AssetPath, ProcessingProfile};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::Value;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/profiles", get(list_profiles))
        .route("/api/profiles/{name}", get(get_profile).put(put_profile).delete(remove_profile))
        .route("/api/folder-profiles/{*path}", get(folder_profile).put(apply_profile).delete(unapply_profile))
}

impl From<ProfileStoreError> for ApiError {
    fn from(e: ProfileStoreError) -> Self {
        match e {
            ProfileStoreError::Ledger(l) => l.into(),
            ProfileStoreError::NotFound(_) => ApiError::not_found(e.to_string()),
            ProfileStoreError::Invalid(_) => ApiError::bad_request(format!("invalid profile: {e}")),
        }
    }
}

fn folder(rest: &str) -> Result<AssetPath, ApiError> {
    AssetPath::parse(&format!("/{rest}")).map_err(|e| ApiError::bad_request(format!("folder: {e}")))
}

/// Every profile and every folder one is applied to.
#[utoipa::path(get, path = "/api/profiles", tag = "assets",
    responses((status = 200, body = ProfileList), (status = 503, body = ErrorBody)))]
pub async fn list_profiles(State(state): State<ApiState>) -> Result<Json<ProfileList>, ApiError> {
    Ok(Json(state.ingestor.profiles.list().await?))
}

/// One profile.
#[utoipa::path(get, path = "/api/profiles/{name}", tag = "assets", params(("name" = String, Path, description = "Profile name")),
    responses((status = 200, body = ProcessingProfile), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn get_profile(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> Result<Json<ProcessingProfile>, ApiError> {
    match state.ingestor.profiles.get(name.clone()).await? {
        Some(p) => Ok(Json(p)),
        None => Err(ProfileStoreError::NotFound(name).into()),
    }
}

/// Creates (201) or replaces (200) a profile. The body is the profile; its `name` may be left
/// out, and must be the path's when given. Folders it is applied to use the new version from
/// the next workflow that starts there (`offloader asset reprocess` for assets already there).
#[utoipa::path(put, path = "/api/profiles/{name}", tag = "assets", params(("name" = String, Path, description = "Profile name")),
    request_body = ProcessingProfile,
    responses((status = 201, body = ProcessingProfile), (status = 200, body = ProcessingProfile), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn put_profile(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<ProcessingProfile>), ApiError> {
    let mut doc: Value =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("invalid profile: {e}")))?;
    let Some(fields) = doc.as_object_mut() else {
        return Err(ApiError::bad_request("invalid profile: the body must be a JSON object"));
    };
    match fields.get("name") {
        None => {
            fields.insert("name".into(), name.clone().into());
        }
        Some(Value::String(n)) if *n == name => {}
        Some(other) => {
            return Err(ApiError::bad_request(format!("invalid profile: its name {other} is not the path's {name:?}")))
        }
    }
    let profile: ProcessingProfile =
        serde_json::from_value(doc).map_err(|e| ApiError::bad_request(format!("invalid profile: {e}")))?;
    let created = state.ingestor.profiles.put(profile.clone()).await?;
    tracing::info!(profile = %profile.name, created, "processing profile saved");
    Ok((if created { StatusCode::CREATED } else { StatusCode::OK }, Json(profile)))
}

/// Removes a profile and takes it off every folder it was applied to. Renditions it made stay
/// until the assets are processed again.
#[utoipa::path(delete, path = "/api/profiles/{name}", tag = "assets", params(("name" = String, Path, description = "Profile name")),
    responses((status = 200, body = RemovedProfile), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn remove_profile(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> Result<Json<RemovedProfile>, ApiError> {
    match state.ingestor.profiles.remove(name.clone()).await? {
        Some((profile, folders)) => {
            tracing::info!(profile = %name, ?folders, "processing profile removed");
            Ok(Json(RemovedProfile { profile, folders }))
        }
        None => Err(ProfileStoreError::NotFound(name).into()),
    }
}

/// The profile that holds for a folder or an asset path: the one applied to the path itself
/// or to its nearest folder above that has one.
#[utoipa::path(get, path = "/api/folder-profiles/{path}", tag = "assets",
    params(("path" = String, Path, description = "The folder (or asset) path without its leading /")),
    responses((status = 200, body = ResolvedProfile), (status = 400, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn folder_profile(
    State(state): State<ApiState>,
    Path(rest): Path<String>,
) -> Result<Json<ResolvedProfile>, ApiError> {
    Ok(Json(state.ingestor.profiles.resolve(folder(&rest)?, true).await?))
}

/// Applies a profile to a folder and everything below it, replacing the folder's own previous
/// profile (a folder nearer an asset with a profile of its own still wins).
#[utoipa::path(put, path = "/api/folder-profiles/{path}", tag = "assets",
    params(("path" = String, Path, description = "The folder path without its leading /")),
    request_body = ApplyProfile,
    responses((status = 200, body = FolderProfile), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn apply_profile(
    State(state): State<ApiState>,
    Path(rest): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<FolderProfile>, ApiError> {
    let folder = folder(&rest)?;
    let req: ApplyProfile = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("expected {{\"profile\": \"<name>\"}}: {e}")))?;
    let applied = state.ingestor.profiles.apply(folder, req.profile).await?;
    tracing::info!(folder = %applied.folder, profile = %applied.profile, "processing profile applied");
    Ok(Json(applied))
}

/// Takes the profile off a folder; answers what was applied there.
#[utoipa::path(delete, path = "/api/folder-profiles/{path}", tag = "assets",
    params(("path" = String, Path, description = "The folder path without its leading /")),
    responses((status = 200, body = FolderProfile), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn unapply_profile(
    State(state): State<ApiState>,
    Path(rest): Path<String>,
) -> Result<Json<FolderProfile>, ApiError> {
    let folder = folder(&rest)?;
    match state.ingestor.profiles.unapply(folder.clone()).await? {
        Some(removed) => {
            tracing::info!(folder = %removed.folder, profile = %removed.profile, "processing profile taken off");
            Ok(Json(removed))
        }
        None => Err(ApiError::not_found(format!("no profile is applied to {folder} itself"))),
    }
}
