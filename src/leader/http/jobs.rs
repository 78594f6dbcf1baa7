//! `/api/jobs`: create, read, list, wait for, stop, retry and remove jobs (Sling's
//! `JobManager`: `addJob`, `getJobById`, `findJobs`, `stopJobById`, `retryJobById`,
//! `removeJobById`); and the same search's count, retry and removal of whole selections (the
//! console's bulk actions), a page at a time along the cursor.

use super::error::ApiError;
use super::ApiState;
use crate::leader::jobs::NewJob;
use crate::leader::ledger::{JobQuery, MAX_LIMIT};
use crate::protocol::api::{ErrorBody, JobCount, JobList, JobRecord, RemovedJobs, RetriedJobs};
use crate::protocol::trace::{TraceContext, TRACEPARENT};
use crate::protocol::{JobId, JobKind, JobState, PayloadEntry, Properties, PropertyTemplate, TopicPattern};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use std::time::Duration;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/jobs", get(list_jobs).post(create_job))
        .route("/api/jobs/count", get(count_jobs))
        .route("/api/jobs/retry", post(retry_jobs))
        .route("/api/jobs/remove", post(remove_jobs))
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

/// Retries the jobs the filters select: GIVEN_UP, ERROR and STOPPED jobs only (all three when
/// no state is given), at most `limit` of them looked at (newest first, from `cursor`); when
/// more may match, the answer's `next_cursor` goes on from there.
#[utoipa::path(post, path = "/api/jobs/retry", tag = "jobs", params(ListQuery),
    responses((status = 200, body = RetriedJobs), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn retry_jobs(
    State(state): State<ApiState>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<RetriedJobs>, ApiError> {
    let (jobs, next) = state.jobs.retry_matching(parse_list_query(&pairs)?).await?;
    Ok(Json(RetriedJobs { jobs, next_cursor: next.map(|id| id.to_string()) }))
}

/// Removes the jobs the filters select, each as `DELETE /api/jobs/{id}` does (stopped first if
/// it has not finished), at most `limit` of them (newest first, from `cursor`); when more may
/// match, the answer's `next_cursor` goes on from there.
#[utoipa::path(post, path = "/api/jobs/remove", tag = "jobs", params(ListQuery),
    responses((status = 200, body = RemovedJobs), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn remove_jobs(
    State(state): State<ApiState>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<RemovedJobs>, ApiError> {
    let (jobs, next) = state.jobs.remove_matching(parse_list_query(&pairs)?).await?;
    Ok(Json(RemovedJobs { jobs, next_cursor: next.map(|id| id.to_string()) }))
}

/// How many jobs the filters select in all (`limit` aside): what a bulk retry or removal would
/// look at. Unlike a page, property templates are evaluated on every job the other filters
/// select, so ask it once before a bulk action, not per page.
#[utoipa::path(get, path = "/api/jobs/count", tag = "jobs", params(ListQuery),
    responses((status = 200, body = JobCount), (status = 400, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn count_jobs(
    State(state): State<ApiState>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<JobCount>, ApiError> {
    let query = parse_list_query(&pairs)?;
    Ok(Json(JobCount { count: state.jobs.ledger().count(query).await? }))
}

/// Removes a job from the ledger, stopping it first if it has not finished; answers the record
/// as it was. The job is unknown (404) afterwards.
#[utoipa::path(delete, path = "/api/jobs/{id}", tag = "jobs", params(("id" = String, Path, description = "Job id")),
    responses((status = 200, body = JobRecord), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn remove_job(State(state): State<ApiState>, Path(id): Path<String>) -> Result<Json<JobRecord>, ApiError> {
    Ok(Json(state.jobs.remove(parse_id(&id)?).await?))
}

/// The search of `GET /api/jobs`, as Sling's `findJobs(type, topic, limit, templates...)`.
/// Documentation only: the query string is read by [`parse_list_query`], which refuses unknown
/// and repeated parameters.
#[derive(Deserialize, utoipa::IntoParams)]
#[allow(dead_code)]
pub struct ListQuery {
    /// Which jobs by state, as Sling's query types: ALL (default), ACTIVE, QUEUED (waiting,
    /// retries included), HISTORY (every final state), CANCELLED (STOPPED, GIVEN_UP, ERROR),
    /// SUCCEEDED, STOPPED, GIVEN_UP, ERROR, FAILED (waiting for a retry), NEW.
    kind: Option<String>,
    /// Only jobs in this one state (NEW, QUEUED, ACTIVE, SUCCEEDED, FAILED, GIVEN_UP, ERROR, STOPPED).
    state: Option<String>,
    /// Only jobs whose topic matches this pattern: a topic, `a/b/*` (one level), `a/b/**` (any depth).
    topic: Option<String>,
    /// Only jobs created at or after this time (RFC 3339).
    created_after: Option<String>,
    /// Only jobs created before this time (RFC 3339).
    created_before: Option<String>,
    /// A property template, `size>=100,color=red`: all its conditions hold (`=`, `<`, `<=`, `>`,
    /// `>=`; numbers compare numerically, other values, or values in double quotes, as strings).
    /// Repeat for several: a job matching any is selected.
    #[serde(rename = "where")]
    #[param(rename = "where")]
    templates: Option<Vec<String>>,
    /// At most this many jobs (default 100, at most 10 000).
    limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Reads the query string of `GET /api/jobs`; anything unknown, repeated or malformed is refused.
pub fn parse_list_query(pairs: &[(String, String)]) -> Result<JobQuery, ApiError> {
    let bad = |m: String| ApiError::bad_request(m);
    let mut query = JobQuery { limit: 100, ..Default::default() };
    let mut seen: Vec<&str> = Vec::new();
    let mut kind_states: Option<Vec<JobState>> = None;
    let mut state: Option<JobState> = None;
    for (key, value) in pairs {
        if key != "where" {
            if seen.contains(&key.as_str()) {
                return Err(bad(format!("query parameter {key:?} given twice")));
            }
            seen.push(key);
        }
        let time = |v: &str| {
            chrono::DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&chrono::Utc))
                .map_err(|e| bad(format!("{key}={v:?} is not an RFC 3339 time ({e})")))
        };
        match key.as_str() {
            "kind" => {
                let kind: JobKind = value.parse().map_err(|e| bad(format!("{e}")))?;
                kind_states = Some(kind.states());
            }
            "state" => state = Some(value.parse().map_err(|e| bad(format!("{e}")))?),
            "topic" => {
                query.topic = Some(value.parse::<TopicPattern>().map_err(|e| bad(format!("topic: {e}")))?)
            }
            "created_after" => query.created_after = Some(time(value)?),
            "created_before" => query.created_before = Some(time(value)?),
            "where" => query.templates.push(value.parse::<PropertyTemplate>().map_err(|e| bad(format!("{e}")))?),
            "limit" => {
                query.limit = value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| bad(format!("limit={value:?}: expected 1 to {MAX_LIMIT}")))?
            }
            "cursor" => {
                query.cursor = Some(value.parse().map_err(|_| bad(format!("cursor={value:?} is not a cursor")))?)
            }
            other => {
                return Err(bad(format!(
                    "unknown query parameter {other:?} (expected kind, state, topic, created_after, created_before, where, limit, cursor)"
                )))
            }
        }
    }
    // A kind and a state together select the jobs both allow.
    query.states = match (kind_states, state) {
        (Some(k), Some(s)) if k.is_empty() || k.contains(&s) => vec![s],
        (Some(_), Some(s)) => return Err(bad(format!("state {s} is not of the kind asked for"))),
        (Some(k), None) => k,
        (None, Some(s)) => vec![s],
        (None, None) => vec![],
    };
    Ok(query)
}

/// Jobs, newest first, with how many jobs the ledger holds per state.
#[utoipa::path(get, path = "/api/jobs", tag = "jobs", params(ListQuery),
    responses((status = 200, body = JobList), (status = 400, body = ErrorBody)))]
pub async fn list_jobs(
    State(state): State<ApiState>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<JobList>, ApiError> {
    let query = parse_list_query(&pairs)?;
    let page = state.jobs.ledger().find(query).await?;
    let counts = state.jobs.ledger().counts().await?.into_iter().collect();
    Ok(Json(JobList { jobs: page.jobs, counts, next_cursor: page.next.map(|id| id.to_string()) }))
}
