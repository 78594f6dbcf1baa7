//! The messages that cross process boundaries, one struct each, and how they are
//! named on the wire.
//!
//! Every message carries a `schema` field (`offloader.<name>.v<major>`) that names
//! its JSON Schema in `schemas/`. A reader accepts its own major version and
//! rejects others with a clear error instead of misreading them, which is what
//! lets leaders and workers of different releases share a broker.

use super::enablement::{Enablement, EnablementChange};
use super::instance::{InstanceId, InstanceInfo};
use super::job::{Job, JobId, JobResult, PayloadEntry, Properties};
use super::progress::Progress;
use super::topic::{Topic, TopicPattern};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const JOB_SCHEMA: &str = "offloader.job.v1";
pub const JOB_STARTED_SCHEMA: &str = "offloader.job-started.v1";
pub const COMPLETION_SCHEMA: &str = "offloader.completion.v1";
pub const ANNOUNCEMENT_SCHEMA: &str = "offloader.announcement.v1";
pub const CONTROL_SCHEMA: &str = "offloader.control.v1";
pub const JOB_PROGRESS_SCHEMA: &str = "offloader.job-progress.v1";
pub const JOB_STOP_SCHEMA: &str = "offloader.job-stop.v1";

/// Why bytes from the wire are not a message we can act on.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    /// Not JSON at all, or JSON of the wrong shape (a field missing or mistyped);
    /// the text says which, since the two have different culprits.
    #[error(
        "message is {} {expected}: {source}",
        if .source.is_data() { "JSON but not a valid" } else { "not JSON; expected" }
    )]
    Malformed { expected: &'static str, source: serde_json::Error },
    #[error("message has schema {found:?}, expected {expected}")]
    WrongSchema { expected: &'static str, found: String },
}

/// A job on its way to a worker. On the wire it is one flat object: the job's fields beside
/// `schema`, `reply_to` and `created_at` (`schemas/offloader.job.v1.json`). That shape is
/// spelled out in `FlatRef` and `FlatOwned` rather than with serde's `flatten`, which reads
/// a message by first copying all of it into a tree of its own and writes it as a map, field by
/// field; every job paid that once in the leader and once in its worker (docs/benchmarks.md §1).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(from = "FlatOwned")]
pub struct JobMessage {
    pub schema: String,
    pub job: Job,
    /// The queue completions go to (the leader's outbox).
    pub reply_to: String,
    pub created_at: DateTime<Utc>,
}

/// [`JobMessage`] as it is written: borrowed, so encoding a job copies nothing first. Its
/// fields in the order they go on the wire; [`FlatOwned`] reads the same object.
#[derive(Serialize)]
struct FlatRef<'a> {
    schema: &'a str,
    id: JobId,
    topic: &'a Topic,
    #[serde(skip_serializing_if = "Properties::is_empty")]
    properties: &'a Properties,
    #[serde(skip_serializing_if = "<[PayloadEntry]>::is_empty")]
    inputs: &'a [PayloadEntry],
    attempt: u32,
    max_attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    timeout_ms: Option<u64>,
    reply_to: &'a str,
    #[serde(serialize_with = "crate::protocol::rfc3339::serialize")]
    created_at: DateTime<Utc>,
}

/// [`JobMessage`] as it is read. A missing `properties` or `inputs` is empty (writers leave
/// them out then); fields this version does not know are skipped.
#[derive(Deserialize)]
struct FlatOwned {
    schema: String,
    id: JobId,
    topic: Topic,
    #[serde(default)]
    properties: Properties,
    #[serde(default)]
    inputs: Vec<PayloadEntry>,
    attempt: u32,
    max_attempts: u32,
    #[serde(default)]
    timeout_ms: Option<u64>,
    reply_to: String,
    created_at: DateTime<Utc>,
}

impl Serialize for JobMessage {
    fn serialize<Z: serde::Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
        let job = &self.job;
        FlatRef {
            schema: &self.schema,
            id: job.id,
            topic: &job.topic,
            properties: &job.properties,
            inputs: &job.inputs,
            attempt: job.attempt,
            max_attempts: job.max_attempts,
            timeout_ms: job.timeout_ms,
            reply_to: &self.reply_to,
            created_at: self.created_at,
        }
        .serialize(serializer)
    }
}

impl From<FlatOwned> for JobMessage {
    fn from(f: FlatOwned) -> Self {
        JobMessage {
            schema: f.schema,
            job: Job {
                id: f.id,
                topic: f.topic,
                properties: f.properties,
                inputs: f.inputs,
                attempt: f.attempt,
                max_attempts: f.max_attempts,
                timeout_ms: f.timeout_ms,
            },
            reply_to: f.reply_to,
            created_at: f.created_at,
        }
    }
}

impl JobMessage {
    pub fn new(job: Job, reply_to: String, created_at: DateTime<Utc>) -> Self {
        JobMessage { schema: JOB_SCHEMA.into(), job, reply_to, created_at }
    }
}

/// A worker telling the leader it has begun an attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobStarted {
    pub job_id: JobId,
    pub attempt: u32,
    pub worker: InstanceId,
    pub worker_name: String,
    /// How often the broker has delivered this message before (crashed workers).
    pub redeliveries: u32,
    #[serde(serialize_with = "crate::protocol::rfc3339::serialize")]
    pub started_at: DateTime<Utc>,
    /// The worker acked the job's delivery while the attempt runs on (it ran longer than the
    /// worker's `--detach-after`, which stays below the broker's `consumer_timeout`): the
    /// broker will not hand it out again, so the leader publishes it again if this worker
    /// leaves before the attempt ends.
    #[serde(default, skip_serializing_if = "is_false")]
    pub detached: bool,
}

/// A worker reporting how an attempt ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    pub job_id: JobId,
    pub attempt: u32,
    pub worker: InstanceId,
    pub worker_name: String,
    pub result: JobResult,
    /// Outputs, properties and redeliveries are left out when empty or zero, as in a job.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<PayloadEntry>,
    /// Properties the consumer hands back (metadata, measurements...).
    #[serde(default, skip_serializing_if = "Properties::is_empty")]
    pub properties: Properties,
    #[serde(serialize_with = "crate::protocol::rfc3339::serialize")]
    pub started_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::protocol::rfc3339::serialize")]
    pub finished_at: DateTime<Utc>,
    /// Times RabbitMQ delivered this attempt before (workers that died mid-job).
    /// Carried here too because a quick job sends no started event.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub redeliveries: u32,
}

/// A worker reporting how far an attempt has come. Workers coalesce these (at most one per job
/// every 250 ms, the latest winning), so a consumer may report as often as it likes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobProgress {
    pub job_id: JobId,
    pub attempt: u32,
    pub worker: InstanceId,
    pub worker_name: String,
    pub progress: Progress,
}

/// Everything that arrives on the leader's reply queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "schema")]
pub enum Reply {
    #[serde(rename = "offloader.job-started.v1")]
    Started(JobStarted),
    #[serde(rename = "offloader.completion.v1")]
    Completion(Completion),
    #[serde(rename = "offloader.job-progress.v1")]
    Progress(JobProgress),
}

impl Reply {
    pub fn schema(&self) -> &'static str {
        match self {
            Reply::Started(_) => JOB_STARTED_SCHEMA,
            Reply::Completion(_) => COMPLETION_SCHEMA,
            Reply::Progress(_) => JOB_PROGRESS_SCHEMA,
        }
    }

    pub fn job_id(&self) -> JobId {
        match self {
            Reply::Started(s) => s.job_id,
            Reply::Completion(c) => c.job_id,
            Reply::Progress(p) => p.job_id,
        }
    }
}

/// An instance's heartbeat: who it is, what it can consume and what it has enabled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Announcement {
    pub schema: String,
    pub instance: InstanceInfo,
    /// Topic patterns of the consumers registered on this instance.
    #[serde(default)]
    pub consumers: Vec<TopicPattern>,
    pub enablement: Enablement,
    /// Leader: every concrete topic it has queued jobs on, so workers can find the
    /// queues their patterns match. Worker: the topic queues it consumes now.
    #[serde(default)]
    pub topics: Vec<Topic>,
    /// Leader: the topics among `topics` whose queues are ordered (a single active consumer):
    /// workers take their jobs one message at a time, so one job runs at a time in the pool.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ordered: Vec<Topic>,
    /// Leader: the topics among `topics` whose queue limits how many of its jobs one worker
    /// runs at once (`queue.maxparallel`), with that limit: a worker takes at most that many
    /// of the topic's messages at a time (its prefetch on the topic's queue).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub max_parallel: BTreeMap<Topic, u16>,
    /// Heartbeat period, so a view can tell how long silence means departure.
    pub interval_ms: u64,
    /// Increases with every announcement from this process.
    pub sequence: u64,
    /// True once the instance has begun a graceful shutdown.
    #[serde(default)]
    pub draining: bool,
    /// Leader: true while it holds the cluster's duties (the elected leader).
    #[serde(default)]
    pub leader: bool,
    /// Leader: the id of the ledger it records jobs in (leaders of one cluster share one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ledger: Option<String>,
    pub sent_at: DateTime<Utc>,
}

/// A live command to one instance, sent on the control exchange keyed by its id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControlCommand {
    pub schema: String,
    pub id: uuid::Uuid,
    pub target: InstanceId,
    #[serde(flatten)]
    pub action: ControlAction,
    pub issued_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "lowercase")]
pub enum ControlAction {
    Enable {
        topic: TopicPattern,
    },
    Disable {
        topic: TopicPattern,
    },
    Exclusive {
        topic: TopicPattern,
    },
    /// Stop taking jobs, finish the ones in flight, exit.
    Drain,
}

impl ControlAction {
    pub fn enablement_change(&self) -> Option<(EnablementChange, &TopicPattern)> {
        match self {
            ControlAction::Enable { topic } => Some((EnablementChange::Enable, topic)),
            ControlAction::Disable { topic } => Some((EnablementChange::Disable, topic)),
            ControlAction::Exclusive { topic } => Some((EnablementChange::Exclusive, topic)),
            ControlAction::Drain => None,
        }
    }
}

/// A leader asking whichever worker runs a job to stop it. Broadcast on the control exchange
/// (routing key [`BROADCAST_KEY`]), because the leader may not know the worker yet: a job runs
/// before its started event arrives, and a quick job sends none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobStop {
    pub schema: String,
    /// The command's own id, for logs.
    pub id: uuid::Uuid,
    pub job_id: JobId,
    /// The attempt the record was at: that one and earlier ones stop. A later attempt (the job
    /// retried by a user) runs.
    pub attempt: u32,
    pub issued_at: DateTime<Utc>,
}

impl JobStop {
    pub fn new(job_id: JobId, attempt: u32) -> Self {
        JobStop { schema: JOB_STOP_SCHEMA.into(), id: uuid::Uuid::new_v4(), job_id, attempt, issued_at: Utc::now() }
    }
}

/// The routing key of messages for every instance on the control exchange. Instance ids are
/// UUIDs, so no instance's own key can be this.
pub const BROADCAST_KEY: &str = "all";

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn decode<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    expected: &'static str,
    schema_of: impl Fn(&T) -> &str,
) -> Result<T, MessageError> {
    let msg: T = serde_json::from_slice(bytes).map_err(|source| MessageError::Malformed { expected, source })?;
    let found = schema_of(&msg);
    if found != expected {
        return Err(MessageError::WrongSchema { expected, found: found.to_owned() });
    }
    Ok(msg)
}

pub fn decode_job(bytes: &[u8]) -> Result<JobMessage, MessageError> {
    match decode(bytes, JOB_SCHEMA, |m: &JobMessage| &m.schema) {
        // A message this version cannot read may be a newer major version: say so, rather than
        // which of its fields changed. Looked at only then: every job would pay a second parse.
        Err(malformed @ MessageError::Malformed { .. }) => match serde_json::from_slice::<Schema<'_>>(bytes) {
            Ok(Schema { schema }) if schema != JOB_SCHEMA => {
                Err(MessageError::WrongSchema { expected: JOB_SCHEMA, found: schema.into_owned() })
            }
            _ => Err(malformed),
        },
        other => other,
    }
}

/// Just a message's `schema` field, the rest skipped unread.
#[derive(Deserialize)]
struct Schema<'a> {
    #[serde(borrow)]
    schema: std::borrow::Cow<'a, str>,
}

/// How a completion written by serde begins.
const COMPLETION_PREFIX: &[u8] = br#"{"schema":"offloader.completion.v1","#;

/// A reply, told apart by its `schema`. Read in two passes (the schema alone, then the one
/// type it names) rather than through `Reply`'s own `Deserialize`: serde reads an internally
/// tagged enum by first copying the whole message into a tree of its own, which cost more
/// than reading the message twice (docs/benchmarks.md §1).
pub fn decode_reply(bytes: &[u8]) -> Result<Reply, MessageError> {
    // Ours write the schema first (it is `Reply`'s tag), and nearly every reply is a
    // completion: one that says so in its first bytes is read in one pass. Anything else,
    // a malformed completion included, takes the general path, which names the fault.
    if bytes.starts_with(COMPLETION_PREFIX) {
        if let Ok(completion) = serde_json::from_slice(bytes) {
            return Ok(Reply::Completion(completion));
        }
    }
    let malformed = |source| MessageError::Malformed { expected: "offloader reply", source };
    let Schema { schema } = serde_json::from_slice(bytes).map_err(malformed)?;
    match schema.as_ref() {
        COMPLETION_SCHEMA => serde_json::from_slice(bytes).map(Reply::Completion),
        JOB_STARTED_SCHEMA => serde_json::from_slice(bytes).map(Reply::Started),
        JOB_PROGRESS_SCHEMA => serde_json::from_slice(bytes).map(Reply::Progress),
        other => {
            Err(serde::de::Error::unknown_variant(other, &[COMPLETION_SCHEMA, JOB_STARTED_SCHEMA, JOB_PROGRESS_SCHEMA]))
        }
    }
    .map_err(malformed)
}

pub fn decode_announcement(bytes: &[u8]) -> Result<Announcement, MessageError> {
    decode(bytes, ANNOUNCEMENT_SCHEMA, |m: &Announcement| &m.schema)
}

pub fn decode_control(bytes: &[u8]) -> Result<ControlCommand, MessageError> {
    decode(bytes, CONTROL_SCHEMA, |m: &ControlCommand| &m.schema)
}

pub fn decode_job_stop(bytes: &[u8]) -> Result<JobStop, MessageError> {
    decode(bytes, JOB_STOP_SCHEMA, |m: &JobStop| &m.schema)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::job::JobState;

    fn job() -> Job {
        Job {
            id: JobId::new(),
            topic: "acme/video/transcode".parse().unwrap(),
            properties: Properties::new(),
            inputs: vec![],
            attempt: 1,
            max_attempts: 3,
            timeout_ms: None,
        }
    }

    #[test]
    fn job_message_round_trips_and_checks_schema() {
        let msg = JobMessage::new(job(), "ns.replies.default".into(), Utc::now());
        let bytes = serde_json::to_vec(&msg).unwrap();
        assert_eq!(decode_job(&bytes).unwrap(), msg);

        let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        v["schema"] = "offloader.job.v2".into();
        let err = decode_job(&serde_json::to_vec(&v).unwrap()).unwrap_err();
        assert!(matches!(err, MessageError::WrongSchema { .. }), "{err}");
        assert!(matches!(decode_job(b"{nope"), Err(MessageError::Malformed { .. })));
        assert!(matches!(decode_job(br#"{"schema":"offloader.job.v1"}"#), Err(MessageError::Malformed { .. })));
    }

    #[test]
    fn a_job_message_is_one_flat_object_and_reads_leniently() {
        let mut j = job();
        j.properties.insert("size".into(), 3.into());
        j.inputs = vec![PayloadEntry {
            path: "original".into(),
            blob: crate::protocol::BlobRef { sha256: "ab".repeat(32).parse().unwrap(), size: 5 },
            mime_type: Some("image/png".into()),
        }];
        j.timeout_ms = Some(1500);
        let created_at = "2026-12-01T10:00:00.250Z".parse().unwrap();
        let msg = JobMessage::new(j.clone(), "ns.replies.default".into(), created_at);
        let text = serde_json::to_string(&msg).unwrap();
        let expected = format!(
            r#"{{"schema":"offloader.job.v1","id":"{}","topic":"acme/video/transcode","properties":{{"size":3}},"inputs":[{{"path":"original","blob":{{"sha256":"{}","size":5}},"mime_type":"image/png"}}],"attempt":1,"max_attempts":3,"timeout_ms":1500,"reply_to":"ns.replies.default","created_at":"2026-12-01T10:00:00.250Z"}}"#,
            j.id,
            "ab".repeat(32)
        );
        assert_eq!(text, expected);
        assert_eq!(decode_job(text.as_bytes()).unwrap(), msg);

        // Empty properties and inputs are left out, and read back as empty; a field this
        // version does not know is skipped.
        let bare = JobMessage::new(job(), "q".into(), created_at);
        let text = serde_json::to_string(&bare).unwrap();
        assert!(!text.contains("properties") && !text.contains("inputs") && !text.contains("timeout_ms"), "{text}");
        let newer = text.replacen('{', r#"{"priority":"high","#, 1);
        assert_eq!(decode_job(newer.as_bytes()).unwrap(), bare);
    }

    #[test]
    fn replies_are_told_apart_by_schema() {
        let started = Reply::Started(JobStarted {
            job_id: JobId::new(),
            attempt: 1,
            worker: InstanceId::random(),
            worker_name: "w".into(),
            redeliveries: 0,
            started_at: Utc::now(),
            detached: false,
        });
        let v = serde_json::to_value(&started).unwrap();
        assert!(v.get("detached").is_none(), "false is left out, as older workers send it");
        assert_eq!(v["schema"], JOB_STARTED_SCHEMA);
        assert_eq!(decode_reply(&serde_json::to_vec(&v).unwrap()).unwrap(), started);
        assert!(!JobState::Active.is_final());

        // Each kind comes back as itself, through the same bytes `Reply` writes.
        let completion = Reply::Completion(Completion {
            job_id: JobId::new(),
            attempt: 2,
            worker: InstanceId::random(),
            worker_name: "w".into(),
            result: JobResult::failed("no"),
            outputs: vec![],
            properties: Properties::new(),
            started_at: Utc::now(),
            finished_at: Utc::now(),
            redeliveries: 1,
        });
        let progress = Reply::Progress(JobProgress {
            job_id: JobId::new(),
            attempt: 1,
            worker: InstanceId::random(),
            worker_name: "w".into(),
            progress: serde_json::from_value(serde_json::json!({"updated_at": Utc::now()})).unwrap(),
        });
        // A completion as `Reply` writes it begins with its schema, which is what lets the
        // leader read it in one pass; one with the schema elsewhere (another language's
        // worker) reads the same.
        let written = serde_json::to_vec(&completion).unwrap();
        assert!(written.starts_with(COMPLETION_PREFIX), "{}", String::from_utf8_lossy(&written));
        let mut moved: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&written).unwrap();
        let schema = moved.remove("schema").unwrap();
        moved.insert("schema".into(), schema);
        let moved = serde_json::to_vec(&moved).unwrap();
        assert!(!moved.starts_with(COMPLETION_PREFIX));
        assert_eq!(decode_reply(&moved).unwrap(), completion);
        for reply in [started, completion, progress] {
            assert_eq!(decode_reply(&serde_json::to_vec(&reply).unwrap()).unwrap(), reply);
        }
        // Refused, each as malformed: an unknown schema, none, a known one with the wrong
        // fields, and what is not JSON at all.
        for bad in [
            r#"{"schema":"offloader.completion.v9","job_id":"x"}"#,
            r#"{"job_id":"x"}"#,
            r#"{"schema":"offloader.completion.v1","job_id":"x"}"#,
            "{nope",
        ] {
            let err = decode_reply(bad.as_bytes()).unwrap_err();
            assert!(matches!(err, MessageError::Malformed { .. }), "{bad}: {err}");
        }
        assert!(decode_reply(br#"{"schema":"offloader.completion.v9"}"#)
            .unwrap_err()
            .to_string()
            .contains("offloader.completion.v1"));
    }

    #[test]
    fn control_commands_flatten_their_action() {
        let cmd = ControlCommand {
            schema: CONTROL_SCHEMA.into(),
            id: uuid::Uuid::new_v4(),
            target: InstanceId::random(),
            action: ControlAction::Exclusive { topic: "a/b".parse().unwrap() },
            issued_at: Utc::now(),
        };
        let v = serde_json::to_value(&cmd).unwrap();
        assert_eq!(v["action"], "exclusive");
        assert_eq!(v["topic"], "a/b");
        assert_eq!(decode_control(&serde_json::to_vec(&v).unwrap()).unwrap(), cmd);
    }
}
