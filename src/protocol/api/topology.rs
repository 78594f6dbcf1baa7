//! The topology as the API shows it: clusters, their instances in join order, which leader is
//! elected and which instance answers, each instance's properties, the history of changes, and
//! the instances the allow list refused (Sling's Topology Browser).

use crate::protocol::{Enablement, InstanceId, Role, Topic, TopicPattern, TopicState};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// `GET /api/topology`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TopologyReport {
    /// The instance that answered.
    pub current: InstanceId,
    /// CHANGING right after a change, CHANGED once `min_event_delay` passed without another.
    pub state: TopologyState,
    /// Grows by one at every TOPOLOGY_CHANGED.
    pub version: u64,
    /// When the topology last became CHANGED.
    pub changed_at: DateTime<Utc>,
    pub clusters: Vec<ClusterView>,
    /// The most recent changes, oldest first (bounded).
    pub history: Vec<TopologyEvent>,
    /// Instances whose announcements the connector allow list refused.
    pub refused: Vec<RefusedInstance>,
    /// The allow list (`topology.allow`); empty lets everyone in.
    pub allow: Vec<String>,
}

/// Sling Discovery's topology states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TopologyState {
    Changing,
    Changed,
}

/// One cluster: the instances that announced it, in the order they joined.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ClusterView {
    pub name: String,
    /// The elected leader (the one holding the cluster's duties), if one is in view.
    pub leader: Option<InstanceId>,
    pub instances: Vec<InstanceView>,
}

/// One live instance as this instance's topology shows it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InstanceView {
    pub id: InstanceId,
    pub name: String,
    pub role: Role,
    pub cluster: String,
    pub host: String,
    pub pid: u32,
    pub version: String,
    pub endpoints: Vec<String>,
    /// When this instance first appeared in the topology.
    pub joined_at: DateTime<Utc>,
    /// When its last announcement arrived.
    pub last_heartbeat: DateTime<Utc>,
    pub last_seen_ms: u64,
    /// Its announcement period.
    pub interval_ms: u64,
    pub draining: bool,
    /// A leader holding the cluster's duties.
    pub leader: bool,
    /// The instance answering this request.
    pub current: bool,
    /// A leader's ledger id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ledger: Option<String>,
    pub enablement: Enablement,
    /// Each registered consumer's topic pattern and its state on this instance.
    pub consumers: Vec<ConsumerView>,
    /// Topic queues this instance consumes now (workers) or has declared (leaders).
    pub consuming: Vec<Topic>,
}

/// A registered consumer's pattern and its Offloading Browser state.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConsumerView {
    pub topic: TopicPattern,
    pub state: TopicState,
}

/// What happened to the topology.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TopologyEvent {
    pub at: DateTime<Utc>,
    pub kind: EventKind,
    /// The instance concerned (none for CHANGED).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<InstanceId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// What changed, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Joined,
    Left,
    PropertiesChanged,
    LeaderChanged,
    Refused,
    /// TOPOLOGY_CHANGED: the changes before it settled.
    Changed,
}

/// An instance the allow list keeps out.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RefusedInstance {
    pub id: InstanceId,
    pub name: String,
    pub role: Role,
    pub cluster: String,
    pub host: String,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// Announcements refused.
    pub announcements: u64,
}
