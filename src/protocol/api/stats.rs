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
