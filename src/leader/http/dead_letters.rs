//! `/api/dead-letters`: what the dead-letter queue holds, and replaying or discarding one, or
//! replaying them all.

use super::error::ApiError;
use super::ApiState;
use crate::leader::dead_letters;
use crate::protocol::api::{DeadLetterList, DeadLetterView, ErrorBody, ReplayedDeadLetters};
use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/dead-letters", get(list_dead_letters))
        .route("/api/dead-letters/replay", post(replay_all_dead_letters))
        .route("/api/dead-letters/{id}", get(get_dead_letter).delete(discard_dead_letter))
        .route("/api/dead-letters/{id}/replay", post(replay_dead_letter))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeadListQuery {
    /// At most this many (default 100, at most 10 000).
    limit: Option<usize>,
}

/// The dead letters, oldest first: why each died, where it was going, a preview of its body.
#[utoipa::path(get, path = "/api/dead-letters", tag = "dead letters", params(DeadListQuery),
    responses((status = 200, body = DeadLetterList), (status = 400, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn list_dead_letters(
    State(state): State<ApiState>,
    Query(q): Query<DeadListQuery>,
) -> Result<Json<DeadLetterList>, ApiError> {
    let limit = q.limit.unwrap_or(100).clamp(1, 10_000);
    Ok(Json(DeadLetterList { dead_letters: dead_letters::list(state.publisher.broker(), limit).await? }))
}

/// One dead letter, left in the queue.
#[utoipa::path(get, path = "/api/dead-letters/{id}", tag = "dead letters",
    params(("id" = String, Path, description = "The dead letter's id (from the list)")),
    responses((status = 200, body = DeadLetterView), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn get_dead_letter(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<DeadLetterView>, ApiError> {
    Ok(Json(dead_letters::get(state.publisher.broker(), &id).await?))
}

/// Publishes the dead letter again, unchanged, to the exchange it was first published to (the
/// jobs exchange when unknown) with its original routing key, so it is processed again; then
/// drops it from the dead queue.
#[utoipa::path(post, path = "/api/dead-letters/{id}/replay", tag = "dead letters",
    params(("id" = String, Path, description = "The dead letter's id (from the list)")),
    responses((status = 200, body = DeadLetterView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "No queue takes its routing key; it stays dead", body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn replay_dead_letter(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<DeadLetterView>, ApiError> {
    Ok(Json(dead_letters::replay(state.publisher.broker(), &id).await?))
}

/// Publishes every dead letter again (up to 10 000), each as the replay of one does; those no
/// queue takes stay dead and are answered under `failed`.
#[utoipa::path(post, path = "/api/dead-letters/replay", tag = "dead letters",
    responses((status = 200, body = ReplayedDeadLetters), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn replay_all_dead_letters(State(state): State<ApiState>) -> Result<Json<ReplayedDeadLetters>, ApiError> {
    Ok(Json(dead_letters::replay_all(state.publisher.broker()).await?))
}

/// Drops the dead letter for good; answers what it was.
#[utoipa::path(delete, path = "/api/dead-letters/{id}", tag = "dead letters",
    params(("id" = String, Path, description = "The dead letter's id (from the list)")),
    responses((status = 200, body = DeadLetterView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn discard_dead_letter(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<DeadLetterView>, ApiError> {
    Ok(Json(dead_letters::discard(state.publisher.broker(), &id).await?))
}
