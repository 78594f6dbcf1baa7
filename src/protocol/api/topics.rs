//! The Offloading Browser's data: instances, their consumers and enablement, topic queues.

use super::topology::InstanceView;
use crate::protocol::Topic;
use serde::{Deserialize, Serialize};

/// `GET /api/topics`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TopicsReport {
    pub instances: Vec<InstanceView>,
    pub topics: Vec<QueueView>,
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
