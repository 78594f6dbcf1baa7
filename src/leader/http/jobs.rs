//! `/api/jobs`: create, read, list, wait for, stop, retry and remove jobs (Sling's
//! `JobManager`: `addJob`, `getJobById`, `findJobs`, `stopJobById`, `retryJobById`,
//! `removeJobById`).

use super::error::ApiError;
use super::ApiState;
use crate::leader::jobs::NewJob;
use crate::leader::ledger::JobQuery;
use crate::protocol::api::{ErrorBody, JobList, JobRecord, RetriedJobs};
use crate::protocol::trace::{TraceContext, TRACEPARENT};
use crate::protocol::{JobId, JobState, PayloadEntry, Properties, TopicPattern};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use std::time::Duration;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/jobs", get(list_jobs).post(create_job))
        .route("/api/jobs/retry", post(retry_jobs))
        .route("/api/jobs/{id}", get(get_job).delete(remove_job))
        .route("/api/jobs/{id}/stop", post(stop_job))
        .route("/api/jobs/{id}/retry", post(retry_job))
}

/// A job to create. Inputs must already be in the datastore; an offloading job may instead name
/// assets in `offloading.input.payload`, whose originals become its inputs.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateJob {
    /// The job topic, e.g. `offloader/echo`.
    topic: String,
    #[serde(default)]
    #[schema(value_type = Object)]
    properties: Properties,
    #[serde(default)]
    inputs: Vec<PayloadEntry>,
    /// Attempts before the job is given up (1 to 1000; default: the leader's policy).
    #[serde(default)]
    max_attempts: Option<u32>,
}

/// Creates a job: recorded, published with a confirm, QUEUED (or NEW while RabbitMQ is away).
#[utoipa::path(post, path = "/api/jobs", tag = "jobs", request_body = CreateJob,
    params(("traceparent" = Option<String>, Header, description = "W3C trace context the job continues")),
    responses((status = 201, description = "The job's record", body = JobRecord),
        (status = 400, description = "Invalid request", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 503, description = "Ledger or datastore unavailable", body = ErrorBody)))]
pub async fn create_job(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<JobRecord>), ApiError> {
    let req: CreateJob =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("invalid job request: {e}")))?;
    let topic = req.topic.parse().map_err(|e| ApiError::bad_request(format!("{e}")))?;
    let mut inputs = req.inputs;
    // An offloading job may name assets by path; their originals become its inputs.
    state.ingestor.repo.resolve_inputs(&req.properties, &mut inputs).await?;
    // Refuse references to blobs nobody stored: the job could only fail later.
    if let Some(store) = &state.store {
        for input in &inputs {
            let present = store.contains(&input.blob).await.map_err(|e| ApiError::unavailable(e.to_string()))?;
            if !present {
                return Err(ApiError::bad_request(format!(
                    "input {:?} refers to blob {} which is not in the datastore",
                    input.path, input.blob.sha256
                )));
            }
        }
    }
    // Continue the caller's trace when it sends one.
    let trace = headers.get(TRACEPARENT).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<TraceContext>().ok());
    let new = NewJob {
        properties: req.properties,
        inputs,
        max_attempts: req.max_attempts,
        trace: trace.map(|t| t.child()),
        ..NewJob::new(topic)
    };
    let rec = state.jobs.add_job(new).await?;
    tracing::info!(job = %rec.id, topic = %rec.topic, trace_id = %rec.trace.map(|t| t.trace_id()).unwrap_or_default(), "job created");
    Ok((StatusCode::CREATED, Json(rec)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct GetJobQuery {
    /// Seconds to wait for the job to reach a final state (long polling, at most 300).
    wait: Option<f64>,
}

fn parse_id(id: &str) -> Result<JobId, ApiError> {
    id.parse().map_err(|_| ApiError::bad_request(format!("{id:?} is not a job id")))
}

/// One job; with `wait`, answers when the job is final or the wait is over.
#[utoipa::path(get, path = "/api/jobs/{id}", tag = "jobs", params(("id" = String, Path, description = "Job id"), GetJobQuery),
    responses((status = 200, body = JobRecord), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_job(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    Query(q): Query<GetJobQuery>,
) -> Result<Json<JobRecord>, ApiError> {
    let id = parse_id(&id)?;
    let rec = match q.wait {
        Some(secs) if secs.is_finite() && secs > 0.0 => {
            state.jobs.wait(id, Duration::from_secs_f64(secs.min(300.0))).await?
        }
        _ => state.jobs.get(id).await?,
    };
    Ok(Json(rec))
}

/// Stops a job: STOPPED at once, never retried, a late result ignored; the worker running it
/// is told to cancel it, so a cooperative consumer ends within moments.
#[utoipa::path(post, path = "/api/jobs/{id}/stop", tag = "jobs", params(("id" = String, Path, description = "Job id")),
    responses((status = 200, body = JobRecord), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn stop_job(State(state): State<ApiState>, Path(id): Path<String>) -> Result<Json<JobRecord>, ApiError> {
    Ok(Json(state.jobs.stop(parse_id(&id)?).await?))
}

/// Runs a GIVEN_UP, ERROR or STOPPED job again, under the same id, its attempts counted afresh:
/// back to QUEUED and published.
#[utoipa::path(post, path = "/api/jobs/{id}/retry", tag = "jobs", params(("id" = String, Path, description = "Job id")),
    responses((status = 200, body = JobRecord), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, description = "The job has not ended, or succeeded", body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn retry_job(State(state): State<ApiState>, Path(id): Path<String>) -> Result<Json<JobRecord>, ApiError> {
    Ok(Json(state.jobs.retry(parse_id(&id)?).await?))
}

/// Retries every job the filters select: GIVEN_UP, ERROR and STOPPED jobs only (all three when
/// no state is given).
#[utoipa::path(post, path = "/api/jobs/retry", tag = "jobs", params(ListQuery),
    responses((status = 200, body = RetriedJobs), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn retry_jobs(
    State(state): State<ApiState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<RetriedJobs>, ApiError> {
    let jobs = state.jobs.retry_matching(q.into_query()?).await?;
    Ok(Json(RetriedJobs { jobs }))
}

/// Removes a job from the ledger, stopping it first if it has not finished; answers the record
/// as it was. The job is unknown (404) afterwards.
#[utoipa::path(delete, path = "/api/jobs/{id}", tag = "jobs", params(("id" = String, Path, description = "Job id")),
    responses((status = 200, body = JobRecord), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn remove_job(State(state): State<ApiState>, Path(id): Path<String>) -> Result<Json<JobRecord>, ApiError> {
    Ok(Json(state.jobs.remove(parse_id(&id)?).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only jobs in this state (NEW, QUEUED, ACTIVE, SUCCEEDED, FAILED, GIVEN_UP, ERROR, STOPPED).
    state: Option<String>,
    /// Only jobs whose topic matches this pattern (`a/b/*`, `a/**`).
    topic: Option<String>,
    /// At most this many jobs (default 100, at most 10 000).
    limit: Option<usize>,
}

impl ListQuery {
    fn into_query(self) -> Result<JobQuery, ApiError> {
        let states: Vec<JobState> = match self.state {
            Some(s) => vec![s.parse().map_err(|e| ApiError::bad_request(format!("{e}")))?],
            None => vec![],
        };
        let topic: Option<TopicPattern> = match self.topic {
            Some(t) => Some(t.parse().map_err(|e| ApiError::bad_request(format!("{e}")))?),
            None => None,
        };
        Ok(JobQuery { states, topic, limit: self.limit.unwrap_or(100).clamp(1, 10_000) })
    }
}

/// Jobs, newest first, with how many jobs the ledger holds per state.
#[utoipa::path(get, path = "/api/jobs", tag = "jobs", params(ListQuery),
    responses((status = 200, body = JobList), (status = 400, body = ErrorBody)))]
pub async fn list_jobs(State(state): State<ApiState>, Query(q): Query<ListQuery>) -> Result<Json<JobList>, ApiError> {
    let query = q.into_query()?;
    let jobs = state.jobs.ledger().list(query).await?;
    let counts = state.jobs.ledger().counts().await?.into_iter().collect();
    Ok(Json(JobList { jobs, counts }))
}
