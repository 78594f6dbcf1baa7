//! Jobs: what a leader asks a worker to do, the states a job moves through, and
//! the result a consumer returns.

use super::blob::BlobRef;
use super::topic::Topic;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A job's identity. Time-ordered (UUIDv7) so ledger listings sort by creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct JobId(pub uuid::Uuid);

impl JobId {
    pub fn new() -> Self {
        JobId(uuid::Uuid::now_v7())
    }
}

impl Default for JobId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for JobId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        uuid::Uuid::parse_str(s).map(JobId)
    }
}

/// Free-form job properties, as Sling's job properties map.
pub type Properties = serde_json::Map<String, serde_json::Value>;

/// One entry of an input or output payload: a repository path and the blob holding
/// its bytes. Paths are the leader's names for things; workers only use the blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PayloadEntry {
    pub path: String,
    pub blob: BlobRef,
    /// MIME type when known, so consumers need not sniff.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
}

/// Where a job is in its life, as the leader's ledger records it. The names are
/// Sling's, plus `NEW` for the short window between recording a job and the
/// broker confirming it: a job is never QUEUED without that confirm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobState {
    /// Recorded, not yet confirmed by the broker.
    New,
    /// Confirmed by the broker; waiting for a worker.
    Queued,
    /// A worker has started it.
    Active,
    /// Finished with `JobResult::Ok`.
    Succeeded,
    /// Failed and will be retried after a delay.
    Failed,
    /// Failed on its last allowed attempt.
    GivenUp,
    /// Cancelled by its consumer, or failed permanently.
    Error,
    /// Stopped by a user before it finished.
    Stopped,
}

impl JobState {
    pub const ALL: [JobState; 8] = [
        JobState::New,
        JobState::Queued,
        JobState::Active,
        JobState::Succeeded,
        JobState::Failed,
        JobState::GivenUp,
        JobState::Error,
        JobState::Stopped,
    ];

    /// Final states never change again; a late or duplicate completion is ignored.
    pub fn is_final(self) -> bool {
        matches!(self, JobState::Succeeded | JobState::GivenUp | JobState::Error | JobState::Stopped)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::New => "NEW",
            JobState::Queued => "QUEUED",
            JobState::Active => "ACTIVE",
            JobState::Succeeded => "SUCCEEDED",
            JobState::Failed => "FAILED",
            JobState::GivenUp => "GIVEN_UP",
            JobState::Error => "ERROR",
            JobState::Stopped => "STOPPED",
        }
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The reason a string is not a job state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown job state {0:?} (expected one of NEW, QUEUED, ACTIVE, SUCCEEDED, FAILED, GIVEN_UP, ERROR, STOPPED)")]
pub struct UnknownState(pub String);

impl FromStr for JobState {
    type Err = UnknownState;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let up = s.to_ascii_uppercase();
        JobState::ALL.into_iter().find(|st| st.as_str() == up).ok_or_else(|| UnknownState(s.to_owned()))
    }
}

/// What a consumer says about a job, as Sling's `JobResult`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "status", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobResult {
    /// Done; the outputs are in the completion.
    Ok,
    /// Did not work this time. With `retry`, the leader tries again later (up to
    /// the job's attempt limit); without, the job ends in `ERROR`.
    Failed { reason: String, retry: bool },
    /// Pointless to retry (bad input...): the job ends in `ERROR`.
    Cancel { reason: String },
    /// Not for this worker: it lacks what the job needs (a workflow model it does not have,
    /// say), though another may have it. The job goes back to its queue for another worker;
    /// a declined attempt does not count against the job's attempts.
    Declined { reason: String },
}

impl JobResult {
    pub fn failed(reason: impl Into<String>) -> Self {
        JobResult::Failed { reason: reason.into(), retry: true }
    }

    pub fn cancel(reason: impl Into<String>) -> Self {
        JobResult::Cancel { reason: reason.into() }
    }

    pub fn declined(reason: impl Into<String>) -> Self {
        JobResult::Declined { reason: reason.into() }
    }

    /// The reason given, for any result but OK.
    pub fn reason(&self) -> Option<&str> {
        match self {
            JobResult::Ok => None,
            JobResult::Failed { reason, .. } | JobResult::Cancel { reason } | JobResult::Declined { reason } => {
                Some(reason)
            }
        }
    }
}

/// A job as a consumer sees it: everything it needs, nothing of the transport.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub id: JobId,
    pub topic: Topic,
    /// Left out of the message when empty (every byte of a message costs the broker twice, in
    /// its log and its replicas); a reader takes a missing one as empty.
    #[serde(default, skip_serializing_if = "Properties::is_empty")]
    pub properties: Properties,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<PayloadEntry>,
    /// 1 for the first attempt; the leader increments it for each retry.
    pub attempt: u32,
    pub max_attempts: u32,
    /// How long one attempt may run (ms): the worker stops waiting for it after that and
    /// fails the attempt, which is retried. Set from the job's queue (`queue.timeout`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

impl Job {
    /// A typed view of one property; `None` when absent or of another type.
    pub fn property<T: serde::de::DeserializeOwned>(&self, name: &str) -> Option<T> {
        self.properties.get(name).and_then(|v| serde_json::from_value(v.clone()).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_parse_case_insensitively_and_print_as_sling() {
        for st in JobState::ALL {
            assert_eq!(st.as_str().parse::<JobState>().unwrap(), st);
            assert_eq!(st.as_str().to_lowercase().parse::<JobState>().unwrap(), st);
        }
        assert_eq!(serde_json::to_string(&JobState::GivenUp).unwrap(), "\"GIVEN_UP\"");
        assert!("DONE".parse::<JobState>().is_err());
    }

    #[test]
    fn final_states() {
        let finals: Vec<_> = JobState::ALL.into_iter().filter(|s| s.is_final()).collect();
        assert_eq!(finals, [JobState::Succeeded, JobState::GivenUp, JobState::Error, JobState::Stopped]);
    }

    #[test]
    fn results_are_tagged() {
        let json = serde_json::to_value(JobResult::failed("disk full")).unwrap();
        assert_eq!(json["status"], "FAILED");
        assert_eq!(json["retry"], true);
        assert_eq!(serde_json::to_value(JobResult::Ok).unwrap()["status"], "OK");
    }

    #[test]
    fn typed_property_access() {
        let mut properties = Properties::new();
        properties.insert("preset".into(), "web".into());
        properties.insert("ms".into(), 25.into());
        let job = Job {
            id: JobId::new(),
            topic: "a/b".parse().unwrap(),
            properties,
            inputs: vec![],
            attempt: 1,
            max_attempts: 3,
            timeout_ms: None,
        };
        assert_eq!(job.property::<String>("preset").as_deref(), Some("web"));
        assert_eq!(job.property::<u64>("ms"), Some(25));
        assert_eq!(job.property::<u64>("preset"), None);
    }
}
