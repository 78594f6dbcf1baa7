//! The Offloading Browser's data: instances, their consumers and enablement, topic queues.

use crate::protocol::{Enablement, InstanceId, Role, Topic, TopicPattern, TopicState};
use serde::{Deserialize, Serialize};

/// `GET /api/topics`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TopicsReport {
    pub instances: Vec<InstanceView>,
    pub topics: Vec<QueueView>,
}

/// One live instance as the leader's topology view shows it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InstanceView {
    pub id: InstanceId,
    pub name: String,
    pub role: Role,
    pub host: String,
    pub pid: u32,
    pub version: String,
    pub endpoints: Vec<String>,
    pub last_seen_ms: u64,
    pub draining: bool,
    pub enablement: Enablement,
    /// Each registered consumer's topic pattern and its state on this instance.
    pub consumers: Vec<ConsumerView>,
    /// Topic queues this instance consumes now.
    pub consuming: Vec<Topic>,
}

/// A registered consumer's pattern and its Offloading Browser state.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConsumerView {
    pub topic: TopicPattern,
    pub state: TopicState,
}

/// One topic's queue.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct QueueView {
    pub topic: Topic,
    pub queue: String,
    /// Jobs waiting (ready) in the queue; `None` if the queue is missing.
    pub messages: Option<u32>,
    pub consumers: Option<u32>,
}
