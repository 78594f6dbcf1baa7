//! `/api/stats`: job statistics as Sling's, overall and per topic, from the ledger; and the
//! same figures for Prometheus, with a `topic` label, on `/metrics`. `/api/stats/series`: the
//! last minutes' throughput and latency, bucketed, for the console's charts and rates.

use super::error::ApiError;
use super::ApiState;
use crate::protocol::api::{ErrorBody, JobStatistics, StatsReport, StatsSeries};
use crate::protocol::TopicPattern;
use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use std::fmt::Write as _;

pub fn routes() -> Router<ApiState> {
    Router::new().route("/api/stats", get(stats)).route("/api/stats/series", get(series))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct StatsQuery {
    /// Only topics matching this pattern (`a/b`, `a/b/*`, `a/**`).
    topic: Option<String>,
}

/// Statistics of every topic (or those `topic` matches) and overall.
#[utoipa::path(get, path = "/api/stats", tag = "jobs", params(StatsQuery),
    responses((status = 200, body = StatsReport), (status = 400, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn stats(State(state): State<ApiState>, Query(q): Query<StatsQuery>) -> Result<Json<StatsReport>, ApiError> {
    let pattern = match q.topic {
        Some(t) => Some(t.parse::<TopicPattern>().map_err(|e| ApiError::bad_request(format!("topic: {e}")))?),
        None => None,
    };
    Ok(Json(state.jobs.ledger().stats(pattern).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SeriesQuery {
    /// How many minutes back from now (default 15, at most 1440).
    minutes: Option<u32>,
    /// Each bucket's length in seconds (default 60; at least 1, and at most 1000 buckets).
    step: Option<u32>,
}

/// Jobs finished over the last minutes, bucketed: how many, how many failed, mean and 95th
/// percentile latency (created to finished); and per topic, how many finished and per minute.
#[utoipa::path(get, path = "/api/stats/series", tag = "jobs", params(SeriesQuery),
    responses((status = 200, body = StatsSeries), (status = 400, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn series(
    State(state): State<ApiState>,
    Query(q): Query<SeriesQuery>,
) -> Result<Json<StatsSeries>, ApiError> {
    let minutes = q.minutes.unwrap_or(15);
    let step = q.step.unwrap_or(60);
    if !(1..=1440).contains(&minutes) {
        return Err(ApiError::bad_request(format!("minutes={minutes}: expected 1 to 1440")));
    }
    if step == 0 || u64::from(minutes) * 60 / u64::from(step) > 1000 {
        return Err(ApiError::bad_request(format!("step={step}: expected at least 1 s and at most 1000 buckets")));
    }
    let window = chrono::Duration::minutes(i64::from(minutes));
    let step = chrono::Duration::seconds(i64::from(step));
    Ok(Json(state.jobs.ledger().series(chrono::Utc::now(), window, step).await?))
}

/// The statistics as Prometheus gauges, one series per topic (`offloader_jobs_queued{topic="a/b"}`...).
pub fn render_metrics(report: &StatsReport) -> String {
    type Field = fn(&JobStatistics) -> Option<f64>;
    let families: [(&str, &str, Field); 10] = [
        ("queued", "Jobs waiting for a worker", |s| Some(s.queued as f64)),
        ("active", "Jobs a worker is running", |s| Some(s.active as f64)),
        ("finished", "Jobs that succeeded", |s| Some(s.finished as f64)),
        ("failed", "Jobs given up or in error", |s| Some(s.failed as f64)),
        ("cancelled", "Jobs stopped", |s| Some(s.cancelled as f64)),
        ("processed", "Jobs in a final state", |s| Some(s.processed as f64)),
        ("average_waiting_seconds", "Mean creation to start", |s| s.average_waiting_ms.map(|ms| ms / 1000.0)),
        ("average_processing_seconds", "Mean start to finish", |s| s.average_processing_ms.map(|ms| ms / 1000.0)),
        ("last_activated_timestamp_seconds", "When a job last started", |s| {
            s.last_activated_at.map(|t| t.timestamp_millis() as f64 / 1000.0)
        }),
        ("last_finished_timestamp_seconds", "When a job last finished", |s| {
            s.last_finished_at.map(|t| t.timestamp_millis() as f64 / 1000.0)
        }),
    ];
    let mut out = String::new();
    for (name, help, field) in families {
        let _ = writeln!(out, "# HELP offloader_jobs_{name} {help}, from the ledger (Sling's statistics).");
        let _ = writeln!(out, "# TYPE offloader_jobs_{name} gauge");
        for (topic, s) in &report.topics {
            if let Some(v) = field(s) {
                // Topics are [A-Za-z0-9_/]: nothing to escape in a label value.
                let _ = writeln!(out, "offloader_jobs_{name}{{topic=\"{topic}\"}} {v}");
            }
        }
    }
    out
}
