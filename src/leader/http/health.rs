//! Whether the leader works: `/api/health` and `/ready` (the same answer: RabbitMQ, the ledger
//! and the datastore answer), and `/health`, which only says the process serves HTTP.
//!
//! Two questions because an orchestrator asks two: *liveness* (restart the process if it stops
//! answering) must not depend on other services, or an outage of RabbitMQ would restart every
//! leader in a loop; *readiness* (send it requests) does, so that a leader that cannot record
//! or publish a job gets no traffic until it can.

use super::ApiState;
use crate::protocol::{BlobRef, Sha256Hex};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use std::future::Future;
use std::time::Duration;

pub fn routes() -> Router<ApiState> {
    Router::new().route("/api/health", get(health)).route("/ready", get(health)).route("/health", get(alive))
}

/// How long a health check waits for each service.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// How the leader's services answer.
#[derive(serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok`, or `degraded` when a service does not answer.
    pub status: String,
    /// `ok`, or what went wrong reaching RabbitMQ (its reply queue).
    pub broker: String,
    /// `ok`, or what went wrong running a transaction on the ledger.
    pub ledger: String,
    /// `ok`, `none` (no datastore configured), or what went wrong reaching it.
    pub datastore: String,
}

/// `ok`, or why `check` failed or did not answer in time.
async fn answer<E: std::fmt::Display>(check: impl Future<Output = Result<(), E>>) -> String {
    match tokio::time::timeout(CHECK_TIMEOUT, check).await {
        Ok(Ok(())) => "ok".to_owned(),
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("no answer within {CHECK_TIMEOUT:?}"),
    }
}

/// 200 when the broker, the ledger and the datastore answer, 503 naming what does not.
/// Also served at `/ready`, the readiness probe.
#[utoipa::path(get, path = "/api/health", tag = "operations",
    responses((status = 200, body = Health), (status = 503, body = Health)))]
pub async fn health(State(state): State<ApiState>) -> Response {
    // The reply queue answering a passive declare needs a connection and, in a cluster, the
    // queue's majority: what every completion needs.
    let broker = state.publisher.broker();
    let replies = broker.names().replies_queue();
    let broker = answer(async { broker.queue_depth(&replies).await.map(|_| ()) });
    let ledger = answer(state.jobs.ledger().probe());
    let datastore = async {
        match &state.store {
            None => "none".to_owned(),
            // Asking for a blob nobody has is a cheap round trip that needs the store up.
            Some(store) => {
                let probe = BlobRef { sha256: Sha256Hex::from_digest(&[0; 32]), size: 0 };
                answer(async { store.contains(&probe).await.map(|_| ()) }).await
            }
        }
    };
    let (broker, ledger, datastore) = tokio::join!(broker, ledger, datastore);
    let healthy = broker == "ok" && ledger == "ok" && (datastore == "ok" || datastore == "none");
    let status = if healthy { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let status_text = if healthy { "ok" } else { "degraded" };
    (status, Json(Health { status: status_text.into(), broker, ledger, datastore })).into_response()
}

/// The liveness probe: 200 `ok` while the process serves HTTP, whatever its services do.
async fn alive() -> &'static str {
    "ok"
}
