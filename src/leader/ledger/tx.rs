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

use super::{JobQuery, LedgerError};
use crate::protocol::api::JobRecord;
use crate::protocol::{JobId, JobState, Topic};
use chrono::{DateTime, Utc};
use serde_json::Value;

#[async_trait::async_trait(?Send)]
pub trait Tx {
    /// The job, locked for change until the transaction ends.
    async fn job(&mut self, id: JobId) -> Result<Option<JobRecord>, LedgerError>;
    async fn insert_job(&mut self, rec: &JobRecord) -> Result<(), LedgerError>;
    async fn update_job(&mut self, rec: &JobRecord) -> Result<(), LedgerError>;
    /// Removes the job's row; false when there was none.
    async fn delete_job(&mut self, id: JobId) -> Result<bool, LedgerError>;
    /// Jobs matching `query`, newest first.
    async fn find_jobs(&mut self, query: &JobQuery) -> Result<Vec<JobRecord>, LedgerError>;
    /// How many jobs are in each state.
    async fn count_states(&mut self) -> Result<Vec<(JobState, u64)>, LedgerError>;
    /// Jobs to publish (again): FAILED or declined ones whose next attempt is due, and NEW ones
    /// created before `unconfirmed_before` (never confirmed by the broker), oldest first.
    async fn due_jobs(
        &mut self,
        now: DateTime<Utc>,
        unconfirmed_before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<JobRecord>, LedgerError>;
    /// Remembers a topic jobs were published on.
    async fn add_topic(&mut self, topic: &Topic) -> Result<(), LedgerError>;
    async fn topics(&mut self) -> Result<Vec<Topic>, LedgerError>;
    /// A document, locked for change until the transaction ends.
    async fn doc(&mut self, kind: &str, key: &str) -> Result<Option<Value>, LedgerError>;
    async fn put_doc(&mut self, kind: &str, key: &str, doc: &Value) -> Result<(), LedgerError>;
    /// Documents of `kind` whose key starts with `prefix`, in key order, after `after`.
    async fn docs(
        &mut self,
        kind: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Value)>, LedgerError>;
}
