//! Instances: the processes of a cluster, each with a stable identity (Sling ID).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A stable instance id, kept in the instance's data directory so it survives
/// restarts (a restarted worker keeps its topic enablement).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct InstanceId(pub uuid::Uuid);

impl InstanceId {
    pub fn random() -> Self {
        InstanceId(uuid::Uuid::new_v4())
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for InstanceId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        uuid::Uuid::parse_str(s).map(InstanceId)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Leader,
    Worker,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Leader => "leader",
            Role::Worker => "worker",
        })
    }
}

/// Who an instance is and where it can be reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceInfo {
    pub id: InstanceId,
    pub name: String,
    pub role: Role,
    /// Cluster name: instances of one cluster share a leader and its reply queue.
    pub cluster: String,
    /// URLs the instance serves (HTTP API, metrics), for people and tools.
    #[serde(default)]
    pub endpoints: Vec<String>,
    /// The offloader version, so mixed-version clusters can be spotted.
    pub version: String,
    /// Host name and process id, to find the process behind an id.
    pub host: String,
    pub pid: u32,
}
