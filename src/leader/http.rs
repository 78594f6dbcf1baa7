//! The leader's HTTP API: jobs, topology/topics, metrics.
//!
//! Bound to 127.0.0.1 by default. When a token is configured, every request that
//! changes something needs `Authorization: Bearer <token>`; reads stay open so
//! dashboards and `offloader job get` work without secrets.

use super::job_manager::{JobError, JobManager, NewJob};
use super::ledger::JobFilter;
use super::topology::{send_control, TopicsReport};
use crate::announce::TopologyView;
use crate::broker::Publisher;
use crate::datastore::BlobStore;
use crate::metrics::MetricsRegistry;
use crate::protocol::message::ControlAction;
use crate::protocol::{JobId, JobState, PayloadEntry, Properties, TopicPattern};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone)]
pub struct ApiState {
    pub jobs: Arc<JobManager>,
    pub view: TopologyView,
    pub publisher: Arc<Publisher>,
    pub store: Option<Arc<dyn BlobStore>>,
    pub metrics: MetricsRegistry,
    pub token: Option<String>,
}

pub fn router(state: ApiState) -> Router {
    let guarded = Router::new()
        .route("/api/jobs", post(create_job))
        .route("/api/jobs/{id}/stop", post(stop_job))
        .route("/api/topics/{action}", post(change_topic))
        .layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route("/api/health", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/api/jobs", get(list_jobs))
        .route("/api/jobs/{id}", get(get_job))
        .route("/api/topics", get(topics))
        .route("/metrics", get(metrics))
        .merge(guarded)
        .with_state(state)
}

/// An API error: a status and a message people can act on.
pub struct ApiError(StatusCode, String);

impl ApiError {
    fn bad_request(msg: impl Into<String>) -> Self {
        ApiError(StatusCode::BAD_REQUEST, msg.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<JobError> for ApiError {
    fn from(e: JobError) -> Self {
        let status = match &e {
            JobError::NotFound(_) => StatusCode::NOT_FOUND,
            JobError::Invalid(_) => StatusCode::BAD_REQUEST,
            _ => StatusCode::SERVICE_UNAVAILABLE,
        };
        ApiError(status, e.to_string())
    }
}

async fn require_token(State(state): State<ApiState>, req: Request, next: Next) -> Response {
    if let Some(token) = &state.token {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if given != Some(token.as_str()) {
            return ApiError(StatusCode::UNAUTHORIZED, "missing or wrong bearer token".into()).into_response();
        }
    }
    next.run(req).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateJob {
    topic: String,
    #[serde(default)]
    properties: Properties,
    #[serde(default)]
    inputs: Vec<PayloadEntry>,
    #[serde(default)]
    max_attempts: Option<u32>,
}

async fn create_job(State(state): State<ApiState>, body: axum::body::Bytes) -> Result<Response, ApiError> {
    let req: CreateJob =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("invalid job request: {e}")))?;
    let topic = req.topic.parse().map_err(|e| ApiError::bad_request(format!("{e}")))?;
    // Refuse references to blobs nobody stored: the job could only fail later.
    if let Some(store) = &state.store {
        for input in &req.inputs {
            let present = store
                .contains(&input.blob)
                .await
                .map_err(|e| ApiError(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
            if !present {
                return Err(ApiError::bad_request(format!(
                    "input {:?} refers to blob {} which is not in the datastore",
                    input.path, input.blob.sha256
                )));
            }
        }
    }
    let rec = state
        .jobs
        .add_job(NewJob { topic, properties: req.properties, inputs: req.inputs, max_attempts: req.max_attempts })
        .await?;
    Ok((StatusCode::CREATED, Json(rec)).into_response())
}

#[derive(Deserialize)]
struct GetJobQuery {
    /// Seconds to wait for the job to reach a final state (long polling).
    wait: Option<f64>,
}

fn parse_id(id: &str) -> Result<JobId, ApiError> {
    id.parse().map_err(|_| ApiError::bad_request(format!("{id:?} is not a job id")))
}

async fn get_job(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    Query(q): Query<GetJobQuery>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let rec = match q.wait {
        Some(secs) if secs > 0.0 => state.jobs.wait(id, Duration::from_secs_f64(secs.min(300.0))).await?,
        _ => state.jobs.get(id).await?,
    };
    Ok(Json(rec).into_response())
}

async fn stop_job(State(state): State<ApiState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let rec = state.jobs.stop(parse_id(&id)?).await?;
    Ok(Json(rec).into_response())
}

#[derive(Deserialize)]
struct ListQuery {
    state: Option<String>,
    topic: Option<String>,
    limit: Option<usize>,
}

async fn list_jobs(State(state): State<ApiState>, Query(q): Query<ListQuery>) -> Result<Response, ApiError> {
    let job_state: Option<JobState> = match q.state {
        Some(s) => Some(s.parse().map_err(|e| ApiError::bad_request(format!("{e}")))?),
        None => None,
    };
    let topic: Option<TopicPattern> = match q.topic {
        Some(t) => Some(t.parse().map_err(|e| ApiError::bad_request(format!("{e}")))?),
        None => None,
    };
    let jobs = state
        .jobs
        .ledger()
        .list(JobFilter { state: job_state, topic, limit: q.limit.unwrap_or(100).min(10_000) })
        .await
        .map_err(JobError::from)?;
    let counts: serde_json::Map<String, serde_json::Value> = state
        .jobs
        .ledger()
        .counts()
        .await
        .map_err(JobError::from)?
        .into_iter()
        .map(|(s, n)| (s.to_string(), n.into()))
        .collect();
    Ok(Json(json!({ "jobs": jobs, "counts": counts })).into_response())
}

async fn topics(State(state): State<ApiState>) -> Result<Json<TopicsReport>, ApiError> {
    TopicsReport::build(&state.view, &state.jobs, state.publisher.broker())
        .await
        .map(Json)
        .map_err(|e| ApiError(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangeTopic {
    topic: String,
    /// Instance id or name.
    instance: String,
}

async fn change_topic(
    State(state): State<ApiState>,
    Path(action): Path<String>,
    Json(req): Json<ChangeTopic>,
) -> Result<Response, ApiError> {
    let topic: TopicPattern = req.topic.parse().map_err(|e| ApiError::bad_request(format!("{e}")))?;
    let action = match action.as_str() {
        "enable" => ControlAction::Enable { topic },
        "disable" => ControlAction::Disable { topic },
        "exclusive" => ControlAction::Exclusive { topic },
        other => {
            return Err(ApiError::bad_request(format!("unknown action {other:?}: use enable, disable or exclusive")))
        }
    };
    let peer = send_control(&state.view, &state.publisher, &req.instance, action)
        .await
        .map_err(|e| ApiError(e.status(), e.to_string()))?;
    Ok(Json(peer).into_response())
}

async fn metrics(State(state): State<ApiState>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render()).into_response()
}
