//! `/api/schedules`: jobs created at a time or on a cron schedule (Sling's
//! `JobBuilder.schedule()`), kept in the ledger and fired by the elected leader.

use super::error::ApiError;
use super::ApiState;
use crate::leader::jobs::scheduler::{new_schedule, ScheduleError};
use crate::protocol::api::{ErrorBody, NewSchedule, Schedule, ScheduleList};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/schedules", get(list_schedules).post(add_schedule))
        .route("/api/schedules/{id}", delete(remove_schedule))
}

impl From<ScheduleError> for ApiError {
    fn from(e: ScheduleError) -> Self {
        ApiError::bad_request(e.to_string())
    }
}

/// Every schedule, with its next due time and how often it fired.
#[utoipa::path(get, path = "/api/schedules", tag = "jobs",
    responses((status = 200, body = ScheduleList), (status = 503, body = ErrorBody)))]
pub async fn list_schedules(State(state): State<ApiState>) -> Result<Json<ScheduleList>, ApiError> {
    Ok(Json(ScheduleList { schedules: state.jobs.ledger().schedules().await? }))
}

/// Adds a schedule: `at` a time, or on a `cron` expression with seconds.
#[utoipa::path(post, path = "/api/schedules", tag = "jobs", request_body = NewSchedule,
    responses((status = 201, body = Schedule), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn add_schedule(
    State(state): State<ApiState>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Schedule>), ApiError> {
    let req: NewSchedule =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("invalid schedule: {e}")))?;
    let schedule = new_schedule(req, chrono::Utc::now())?;
    state.jobs.ledger().put_schedule(schedule.clone()).await?;
    tracing::info!(schedule = %schedule.id, topic = %schedule.topic, "schedule added");
    Ok((StatusCode::CREATED, Json(schedule)))
}

/// Removes a schedule (jobs it already created stay); answers the schedule removed.
#[utoipa::path(delete, path = "/api/schedules/{id}", tag = "jobs", params(("id" = String, Path, description = "Schedule id")),
    responses((status = 200, body = Schedule), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn remove_schedule(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<Schedule>, ApiError> {
    let ledger = state.jobs.ledger();
    let found = ledger.schedules().await?.into_iter().find(|s| s.id == id);
    match found {
        Some(s) if ledger.remove_schedule(id).await? => Ok(Json(s)),
        _ => Err(ApiError::not_found("no such schedule")),
    }
}
