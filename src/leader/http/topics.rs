//! `/api/topics` (the Offloading Browser) and `/api/health`.

use super::error::ApiError;
use super::ApiState;
use crate::leader::topology::{send_control, topics_report, topology_report};
use crate::protocol::api::{ErrorBody, InstanceView, TopicsReport, TopologyReport};
use crate::protocol::message::ControlAction;
use crate::protocol::{BlobRef, Sha256Hex, TopicPattern};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use std::time::Duration;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/health", get(health))
        .route("/api/topics", get(topics))
        .route("/api/topology", get(topology))
        .route("/api/topics/{action}", post(change_topic))
}

/// How long a health check waits for each service.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// How the leader's services answer.
#[derive(serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok`, or `degraded` when a service does not answer.
    pub status: String,
    /// `ok`, or what went wrong reaching RabbitMQ.
    pub broker: String,
    /// `ok`, `none` (no datastore configured), or what went wrong reaching it.
    pub datastore: String,
}

/// 200 when the broker and the datastore answer, 503 naming what does not.
#[utoipa::path(get, path = "/api/health", tag = "operations",
    responses((status = 200, body = Health), (status = 503, body = Health)))]
pub async fn health(State(state): State<ApiState>) -> Response {
    let broker = state.publisher.broker();
    let queue = broker.names().replies_queue();
    let broker_ok = match tokio::time::timeout(CHECK_TIMEOUT, broker.queue_depth(&queue)).await {
        Ok(Ok(_)) => "ok".to_owned(),
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("no answer within {CHECK_TIMEOUT:?}"),
    };
    let datastore_ok = match &state.store {
        None => "none".to_owned(),
        Some(store) => {
            // Asking for a blob nobody has is a cheap round trip that needs the store up.
            let probe = BlobRef { sha256: Sha256Hex::from_digest(&[0; 32]), size: 0 };
            match tokio::time::timeout(CHECK_TIMEOUT, store.contains(&probe)).await {
                Ok(Ok(_)) => "ok".to_owned(),
                Ok(Err(e)) => e.to_string(),
                Err(_) => format!("no answer within {CHECK_TIMEOUT:?}"),
            }
        }
    };
    let healthy = broker_ok == "ok" && (datastore_ok == "ok" || datastore_ok == "none");
    let status = if healthy { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let status_text = if healthy { "ok" } else { "degraded" };
    (status, Json(Health { status: status_text.into(), broker: broker_ok, datastore: datastore_ok })).into_response()
}

/// The topology (Sling's Topology Browser): clusters and their instances in join order, the
/// elected leader and the current instance, each instance's properties, the history of changes
/// and the instances the allow list refused.
#[utoipa::path(get, path = "/api/topology", tag = "topology", responses((status = 200, body = TopologyReport)))]
pub async fn topology(State(state): State<ApiState>) -> Json<TopologyReport> {
    Json(topology_report(&state.view, state.me))
}

/// Every live instance with its consumers and enablement, and every topic queue with its depth.
#[utoipa::path(get, path = "/api/topics", tag = "topology",
    responses((status = 200, body = TopicsReport), (status = 503, body = ErrorBody)))]
pub async fn topics(State(state): State<ApiState>) -> Result<Json<TopicsReport>, ApiError> {
    topics_report(&state.view, state.me, &state.jobs, state.publisher.broker())
        .await
        .map(Json)
        .map_err(|e| ApiError::unavailable(e.to_string()))
}

/// A live change of one topic's state on one instance.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeTopic {
    /// A topic or pattern.
    topic: String,
    /// Instance id or name.
    instance: String,
}

/// Enables, disables or makes exclusive a topic on an instance; answers once the instance's
/// announcement shows the change.
#[utoipa::path(post, path = "/api/topics/{action}", tag = "topology", request_body = ChangeTopic,
    params(("action" = String, Path, description = "enable, disable or exclusive")),
    responses((status = 200, body = InstanceView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 504, body = ErrorBody)))]
pub async fn change_topic(
    State(state): State<ApiState>,
    Path(action): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<InstanceView>, ApiError> {
    let req: ChangeTopic =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("invalid topic change: {e}")))?;
    let topic: TopicPattern = req.topic.parse().map_err(|e| ApiError::bad_request(format!("{e}")))?;
    let action = match action.as_str() {
        "enable" => ControlAction::Enable { topic },
        "disable" => ControlAction::Disable { topic },
        "exclusive" => ControlAction::Exclusive { topic },
        other => {
            return Err(ApiError::bad_request(format!("unknown action {other:?}: use enable, disable or exclusive")))
        }
    };
    Ok(Json(send_control(&state.view, state.me, &state.publisher, &req.instance, action).await?))
}
