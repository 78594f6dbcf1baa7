//! The leader's HTTP API: jobs, assets and processing profiles, topology and topics, dead letters,
//! metrics; and the web console at `/` ([`console`]), a page that uses nothing but this API.
//!
//! Bound to 127.0.0.1 by default. One error shape for every answer ([`error`]), one token
//! check for every route ([`auth`]); the handlers only translate between HTTP and the leader's
//! parts. The routes and their documents are listed in the OpenAPI document served at
//! `/api/openapi.json`.

mod assets;
mod auth;
mod console;
mod dead_letters;
pub mod error;
mod events;
mod health;
mod jobs;
mod openapi;
mod profiles;
mod schedules;
mod stats;
mod topics;

use crate::broker::Publisher;
use crate::datastore::BlobStore;
use crate::discovery::TopologyView;
use crate::leader::assets::Ingestor;
use crate::leader::jobs::JobManager;
use crate::metrics::MetricsRegistry;
use crate::protocol::InstanceId;
use axum::http::header;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::sync::Arc;

/// Everything the handlers reach.
#[derive(Clone)]
pub struct ApiState {
    pub jobs: Arc<JobManager>,
    pub ingestor: Arc<Ingestor>,
    pub view: TopologyView,
    /// This leader's instance id (the "current" instance of the topology).
    pub me: InstanceId,
    pub publisher: Arc<Publisher>,
    pub store: Option<Arc<dyn BlobStore>>,
    pub metrics: MetricsRegistry,
    /// Bearer token required for changes and asset downloads.
    pub token: Option<String>,
    /// Largest asset upload accepted, in bytes.
    pub max_upload_bytes: u64,
    /// Cancelled when the leader stops: endless answers (the events stream) end with it, or the
    /// server's graceful shutdown would wait for them forever.
    pub shutdown: tokio_util::sync::CancellationToken,
}

pub fn router(state: ApiState) -> Router {
    Router::new()
        .merge(jobs::routes())
        .merge(assets::routes())
        .merge(topics::routes())
        .merge(dead_letters::routes())
        .merge(stats::routes())
        .merge(schedules::routes())
        .merge(profiles::routes())
        .merge(console::routes())
        .merge(events::routes())
        .merge(health::routes())
        .route("/metrics", get(metrics))
        .route("/api/openapi.json", get(openapi::document))
        .fallback(error::no_route)
        .layer(middleware::from_fn_with_state(state.clone(), auth::require_token))
        .layer(middleware::from_fn(error::json_errors))
        .with_state(state)
}

/// This process's own metrics, and the ledger's job statistics per topic (the same on every
/// leader of a shared ledger).
async fn metrics(axum::extract::State(state): axum::extract::State<ApiState>) -> Response {
    let mut text = state.metrics.render();
    let ledger = match state.jobs.ledger().stats(None).await {
        Ok(report) => stats::render_metrics(&report),
        Err(e) => format!("# the ledger's job statistics are unavailable: {e}\n"),
    };
    // The registry ends with OpenMetrics' `# EOF`, which must stay last.
    let end = text.rfind("# EOF").unwrap_or(text.len());
    text.insert_str(end, &ledger);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}
