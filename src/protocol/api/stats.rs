//! `GET /api/stats`: job statistics as Sling's `Statistics` / `TopicStatistics`, computed from
//! the ledger, so every leader sharing one ledger answers the same.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Counts and times of the jobs of one topic, or of all topics.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobStatistics {
    /// Waiting for a worker (NEW, QUEUED, or FAILED and waiting for a retry).
    pub queued: u64,
    /// Started, not finished (ACTIVE).
    pub active: u64,
    /// Finished successfully (SUCCEEDED).
    pub finished: u64,
    /// Finished unsuccessfully: GIVEN_UP or ERROR.
    pub failed: u64,
    /// Stopped by a user (STOPPED).
    pub cancelled: u64,
    /// Every job that reached a final state: finished + failed + cancelled.
    pub processed: u64,
    /// Mean time from creation to the start of the last attempt, over the jobs that started.
    #[serde(default)]
    pub average_waiting_ms: Option<f64>,
    /// Mean time from the start of the last attempt to the end, over the jobs that finished.
    #[serde(default)]
    pub average_processing_ms: Option<f64>,
    /// When a job of these last started.
    #[serde(default)]
    pub last_activated_at: Option<DateTime<Utc>>,
    /// When a job of these last finished.
    #[serde(default)]
    pub last_finished_at: Option<DateTime<Utc>>,
}

/// Statistics over every topic and per topic. Jobs purged by retention still count: the
/// purge adds them to the ledger's running totals in the transaction that deletes them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StatsReport {
    pub overall: JobStatistics,
    pub topics: BTreeMap<String, JobStatistics>,
}

/// `GET /api/stats/series`: jobs that finished over the last minutes, in buckets of equal
/// length, oldest first, and per topic; read from the ledger's `finished_at` (so jobs purged
/// by retention are not in it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StatsSeries {
    /// The start of the first bucket.
    pub from: DateTime<Utc>,
    /// The end of the last bucket (now).
    pub to: DateTime<Utc>,
    /// Each bucket's length.
    pub step_seconds: u64,
    pub buckets: Vec<SeriesBucket>,
    /// Per topic over the whole window: jobs finished and their rate.
    pub topics: BTreeMap<String, TopicRate>,
}

/// The jobs that reached a final state within one bucket.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SeriesBucket {
    pub start: DateTime<Utc>,
    /// Jobs that reached a final state (any of them).
    pub finished: u64,
    /// Of those, GIVEN_UP or ERROR.
    pub failed: u64,
    /// Mean end-to-end latency (created to finished) of those jobs, in milliseconds.
    #[serde(default)]
    pub mean_ms: Option<f64>,
    /// The 95th percentile of that latency.
    #[serde(default)]
    pub p95_ms: Option<f64>,
}

/// One topic's finished jobs over a series' window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TopicRate {
    pub finished: u64,
    pub per_minute: f64,
}
