//! Dead letters as the API shows them (`GET /api/dead-letters`, `offloader dead`).

use crate::protocol::Topic;
use serde::{Deserialize, Serialize};

/// How many bytes of a dead letter's body the API shows.
pub const DEAD_LETTER_PREVIEW_BYTES: usize = 512;

/// One message in the dead-letter queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeadLetterView {
    /// Names the message for `show`, `replay` and `discard`: a fingerprint of its body, id,
    /// routing key, reason and time of death.
    pub id: String,
    /// Why it was dead-lettered.
    pub reason: String,
    /// The exchange it was first published to, if known.
    #[serde(default)]
    pub exchange: Option<String>,
    /// Its original routing key: where a replay sends it.
    pub routing_key: String,
    /// The job topic that routing key stands for, when it came from the jobs exchange.
    #[serde(default)]
    pub topic: Option<Topic>,
    /// Its original AMQP `type` (the schema id), if any.
    #[serde(default)]
    pub kind: Option<String>,
    /// The instance that refused it, if one said so.
    #[serde(default)]
    pub worker: Option<String>,
    /// When it was dead-lettered (RFC 3339), if known.
    #[serde(default)]
    pub dead_at: Option<String>,
    /// Its `message_id` (a job's id), if any.
    #[serde(default)]
    pub message_id: Option<String>,
    /// How often reading the dead queue returned it there.
    pub delivery_count: u32,
    /// The body's size in bytes.
    pub size: usize,
    /// The first bytes of the body, as text (invalid UTF-8 replaced).
    pub preview: String,
}

/// `GET /api/dead-letters`: the dead letters, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeadLetterList {
    pub dead_letters: Vec<DeadLetterView>,
}

/// `POST /api/dead-letters/replay`: every dead letter replayed, and those that could not be
/// (they stay in the dead queue).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReplayedDeadLetters {
    pub replayed: Vec<DeadLetterView>,
    pub failed: Vec<FailedReplay>,
}

/// A dead letter a replay could not publish (no queue takes its routing key, or RabbitMQ
/// refused it); it stays dead.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FailedReplay {
    pub dead_letter: DeadLetterView,
    pub error: String,
}
