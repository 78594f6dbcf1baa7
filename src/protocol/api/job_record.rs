//! A job as the leader's ledger records it, and as the API shows it.

use crate::protocol::progress::Progress;
use crate::protocol::trace::TraceContext;
use crate::protocol::{InstanceId, Job, JobId, JobResult, JobState, PayloadEntry, Properties, Topic};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The worker that last ran (or declined) a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WorkerRef {
    pub id: InstanceId,
    pub name: String,
}

/// Everything the leader knows about one job. The state changes only by the rules of
/// `leader::jobs::lifecycle`, which is what makes completions idempotent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobRecord {
    pub id: JobId,
    pub topic: Topic,
    pub state: JobState,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub properties: Properties,
    #[serde(default)]
    pub inputs: Vec<PayloadEntry>,
    #[serde(default)]
    pub outputs: Vec<PayloadEntry>,
    /// Properties the consumer handed back.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub output_properties: Properties,
    /// The last attempt's result (a DECLINED one while the job waits for another worker).
    #[serde(default)]
    pub result: Option<JobResult>,
    /// The attempt published last (1 for the first).
    pub attempt: u32,
    pub max_attempts: u32,
    /// Attempts that workers declined (they lack what the job needs): they do not count
    /// against `max_attempts`.
    #[serde(default)]
    pub declines: u32,
    /// Times a user retried the job after it ended (Sling's `retryJobById`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retries: u32,
    /// Attempts counted against `max_attempts` before the last retry by a user: a retry starts
    /// the count afresh while attempt numbers keep growing, so a late event of an attempt from
    /// before the retry is still told apart and ignored.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempts_before_retry: u32,
    #[serde(default)]
    pub worker: Option<WorkerRef>,
    /// Broker redeliveries of the current attempt (workers that died mid-job).
    #[serde(default)]
    pub redeliveries: u32,
    /// The current attempt's worker acked its delivery while the attempt runs on (a job longer
    /// than the worker's `--detach-after`): the broker will not redeliver it, so the elected
    /// leader publishes the job again when that worker leaves the topology before it ends.
    #[serde(default, skip_serializing_if = "is_false")]
    pub detached: bool,
    /// Completions applied: 1 for a finished job, however often one was delivered.
    #[serde(default)]
    pub completions_applied: u32,
    /// Duplicate or stale completions that changed nothing.
    #[serde(default)]
    pub duplicates_ignored: u32,
    /// How long one attempt may run (ms), from the job's queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// The leader that created the job: a job it recorded but never saw confirmed is published
    /// again at once when that leader is gone, instead of after the grace a live leader's
    /// publish in progress gets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<InstanceId>,
    /// The job's trace (W3C `traceparent` of its creation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<TraceContext>,
    #[serde(serialize_with = "crate::protocol::rfc3339::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(default, serialize_with = "crate::protocol::rfc3339::serialize_option")]
    pub queued_at: Option<DateTime<Utc>>,
    #[serde(default, serialize_with = "crate::protocol::rfc3339::serialize_option")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default, serialize_with = "crate::protocol::rfc3339::serialize_option")]
    pub finished_at: Option<DateTime<Utc>>,
    /// When the job is published again (a retry, or after a decline).
    #[serde(default, serialize_with = "crate::protocol::rfc3339::serialize_option")]
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// How far the current attempt has come, as its consumer last reported (kept when the job
    /// ends, so a failed job shows where it stopped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl JobRecord {
    /// A new record for `job`, NEW until the broker confirms its publish.
    pub fn new(job: &Job, now: DateTime<Utc>) -> Self {
        JobRecord {
            id: job.id,
            topic: job.topic.clone(),
            state: JobState::New,
            properties: job.properties.clone(),
            inputs: job.inputs.clone(),
            outputs: vec![],
            output_properties: Properties::new(),
            result: None,
            attempt: job.attempt,
            max_attempts: job.max_attempts,
            declines: 0,
            retries: 0,
            attempts_before_retry: 0,
            timeout_ms: job.timeout_ms,
            worker: None,
            redeliveries: 0,
            detached: false,
            completions_applied: 0,
            duplicates_ignored: 0,
            created_by: None,
            trace: None,
            created_at: now,
            queued_at: None,
            started_at: None,
            finished_at: None,
            next_attempt_at: None,
            progress: None,
        }
    }

    /// The job as a worker receives it for the record's current attempt.
    pub fn job(&self) -> Job {
        Job {
            id: self.id,
            topic: self.topic.clone(),
            properties: self.properties.clone(),
            inputs: self.inputs.clone(),
            attempt: self.attempt,
            max_attempts: self.max_attempts,
            timeout_ms: self.timeout_ms,
        }
    }
}

/// `GET /api/jobs`: a page of jobs, newest first, and how many jobs the ledger holds per state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobList {
    pub jobs: Vec<JobRecord>,
    pub counts: BTreeMap<JobState, u64>,
    /// Where the next page starts (pass it back as `cursor`); absent on the last page. A search
    /// with property templates examines a bounded window of jobs per page, so a page may hold
    /// fewer jobs than asked and still have a next one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// `POST /api/jobs/retry`: the jobs retried, each as it is now (QUEUED).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RetriedJobs {
    pub jobs: Vec<JobRecord>,
    /// More jobs may match past the `limit` looked at: pass this back as `cursor` to go on.
    /// Absent once the filters' whole selection was walked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// `POST /api/jobs/remove`: the jobs removed, each as it was.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RemovedJobs {
    pub jobs: Vec<JobRecord>,
    /// More jobs may match past the `limit` looked at: pass this back as `cursor` to go on.
    /// Absent once the filters' whole selection was walked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// `GET /api/jobs/count`: how many jobs the filters select (what a bulk action would affect).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobCount {
    pub count: u64,
}

/// One event of `GET /api/events` (`event: job`): a job that is new or whose state or attempt
/// changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobEvent {
    pub id: JobId,
    pub topic: Topic,
    pub state: JobState,
    pub attempt: u32,
    /// When the leader saw the change.
    pub at: DateTime<Utc>,
}
