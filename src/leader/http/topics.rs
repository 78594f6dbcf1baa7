//! `/api/topics` (the Offloading Browser) and `/api/topology`.

use super::error::ApiError;
use super::ApiState;
use crate::leader::topology::{send_control, topics_report, topology_report};
use crate::protocol::api::{ErrorBody, InstanceView, TopicsReport, TopologyReport};
use crate::protocol::message::ControlAction;
use crate::protocol::TopicPattern;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/topics", get(topics))
        .route("/api/topology", get(topology))
        .route("/api/topics/{action}", post(change_topic))
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
