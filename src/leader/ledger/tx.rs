//! The statements a ledger engine offers inside one transaction.
//!
//! Everything the leader decides about jobs and assets is Rust (the lifecycle rules, the asset
//! projection); what differs between SQLite and PostgreSQL is only how rows are read and
//! written. So each engine implements this small set of primitives once, and every ledger
//! operation is written once on top of them, whichever engine runs it.
//!
//! A job row is the record as a JSON document plus the columns the queries filter on. A
//! document row is a JSON value filed under a kind and a key: the asset repository keeps each
//! asset as the document `("asset", <path>)`, so the ledger needs to know nothing of assets.
//! In PostgreSQL, reading a job or document for a change locks its row until the transaction
//! ends, which is what keeps two leaders from applying the same change twice.

use super::{JobPage, JobQuery, LedgerError};
use crate::protocol::api::{JobRecord, Schedule};
use crate::protocol::{JobId, JobState, Topic};
use chrono::{DateTime, Utc};
use serde_json::Value;

#[async_trait::async_trait(?Send)]
pub trait Tx {
    /// The job, locked for change until the transaction ends.
    async fn job(&mut self, id: JobId) -> Result<Option<JobRecord>, LedgerError>;
    async fn insert_job(&mut self, rec: &JobRecord) -> Result<(), LedgerError>;
    /// Many new jobs at once (an import, a benchmark's ledger); an engine may do it in fewer
    /// statements.
    async fn insert_jobs(&mut self, recs: &[JobRecord]) -> Result<(), LedgerError> {
        for rec in recs {
            self.insert_job(rec).await?;
        }
        Ok(())
    }
    async fn update_job(&mut self, rec: &JobRecord) -> Result<(), LedgerError>;
    /// Removes the job's row; false when there was none.
    async fn delete_job(&mut self, id: JobId) -> Result<bool, LedgerError>;
    /// A page of the jobs matching `query`, newest first.
    async fn find_jobs(&mut self, query: &JobQuery) -> Result<JobPage, LedgerError>;
    /// How many jobs are in each state.
    async fn count_states(&mut self) -> Result<Vec<(JobState, u64)>, LedgerError>;
    /// How many jobs `query` selects in all, its limit aside.
    async fn count_jobs(&mut self, query: &JobQuery) -> Result<u64, LedgerError>;
    /// The jobs that finished at or after `since`, as `(topic, state, created_at,
    /// finished_at)` in milliseconds: a range of the `finished_at` index (time series).
    async fn finished_since(&mut self, since: DateTime<Utc>) -> Result<Vec<Finished>, LedgerError>;
    /// Jobs to publish (again): FAILED or declined ones whose next attempt is due, and NEW ones
    /// created before `unconfirmed_before` (never confirmed by the broker), oldest first.
    async fn due_jobs(
        &mut self,
        now: DateTime<Utc>,
        unconfirmed_before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<JobRecord>, LedgerError>;
    /// The jobs of each topic and state, summed (statistics).
    async fn aggregates(&mut self) -> Result<Vec<Aggregate>, LedgerError>;
    /// The sums of the jobs retention purged, per topic and state.
    async fn purged_aggregates(&mut self) -> Result<Vec<Aggregate>, LedgerError>;
    /// Adds purged jobs to their topic's and state's sums.
    async fn add_purged(&mut self, sums: &Aggregate) -> Result<(), LedgerError>;
    /// Jobs in a final state that finished before `before`, oldest first, locked for change.
    async fn finished_before(&mut self, before: DateTime<Utc>, limit: usize) -> Result<Vec<JobRecord>, LedgerError>;
    /// Creates or replaces a schedule.
    async fn put_schedule(&mut self, schedule: &Schedule) -> Result<(), LedgerError>;
    /// Every schedule, by id.
    async fn schedules(&mut self) -> Result<Vec<Schedule>, LedgerError>;
    /// Whether there was one to delete.
    async fn delete_schedule(&mut self, id: &str) -> Result<bool, LedgerError>;
    /// Schedules whose next due time is at or before `now`, locked for change.
    async fn due_schedules(&mut self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Schedule>, LedgerError>;
    /// Remembers a topic jobs were published on.
    async fn add_topic(&mut self, topic: &Topic) -> Result<(), LedgerError>;
    async fn topics(&mut self) -> Result<Vec<Topic>, LedgerError>;
    /// A document, locked for change until the transaction ends.
    async fn doc(&mut self, kind: &str, key: &str) -> Result<Option<Value>, LedgerError>;
    async fn put_doc(&mut self, kind: &str, key: &str, doc: &Value) -> Result<(), LedgerError>;
    /// Whether there was one to delete.
    async fn delete_doc(&mut self, kind: &str, key: &str) -> Result<bool, LedgerError>;
    /// Documents of `kind` whose key starts with `prefix`, in key order, after `after`.
    async fn docs(
        &mut self,
        kind: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Value)>, LedgerError>;
}

/// A job that finished, as the time series read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub topic: String,
    pub state: String,
    /// Milliseconds since the epoch.
    pub created_at: i64,
    pub finished_at: i64,
}

/// Sums over the jobs of one topic in one state: what statistics are made of. Times are
/// milliseconds since the epoch; sums and counts only over the jobs that have both ends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Aggregate {
    pub topic: String,
    pub state: String,
    pub count: i64,
    /// Sum of started - created, over `waited` jobs that started.
    pub wait_ms: i64,
    pub waited: i64,
    /// Sum of finished - started, over `processed` jobs that started and finished.
    pub process_ms: i64,
    pub processed: i64,
    pub last_started: Option<i64>,
    pub last_finished: Option<i64>,
}

/// The aggregate statement both engines run (PostgreSQL sums `BIGINT`s to `NUMERIC`, hence the
/// casts, which SQLite ignores).
pub(super) const AGGREGATE_SQL: &str = "SELECT topic, state, COUNT(*),
    CAST(COALESCE(SUM(started_at - created_at), 0) AS BIGINT), COUNT(started_at),
    CAST(COALESCE(SUM(CASE WHEN finished_at IS NOT NULL THEN finished_at - started_at END), 0) AS BIGINT),
    COUNT(CASE WHEN finished_at IS NOT NULL THEN started_at END),
    MAX(started_at), MAX(finished_at)
  FROM jobs GROUP BY topic, state";

pub(super) const PURGED_SQL: &str = "SELECT topic, state, count, wait_ms, waited, process_ms, processed,
    last_started, last_finished FROM purged_stats";
