//! Announcements: every instance tells the others who it is, what it consumes and
//! what it has enabled, and keeps a view of what the others told it. This is the
//! minimal form of Sling Discovery's heartbeats; the leader's topic list travels
//! here too, which is how workers find the queues their patterns match.

mod announcer;
mod view;

pub use announcer::{spawn_announcer, Announcer};
pub use view::{spawn_view, Peer, TopologyView};

use std::time::Duration;

/// Heartbeat timing, with Sling Discovery's defaults.
#[derive(Debug, Clone, Copy)]
pub struct HeartbeatConfig {
    pub interval: Duration,
    /// Silence after which an instance is considered gone.
    pub timeout: Duration,
}

impl Default for HeartbeatConfig {
    fn default() -> Self {
        HeartbeatConfig { interval: Duration::from_secs(15), timeout: Duration::from_secs(20) }
    }
}

impl HeartbeatConfig {
    /// Timing scaled from one interval, keeping Sling's 15:20 ratio.
    pub fn from_interval(interval: Duration) -> Self {
        HeartbeatConfig { interval, timeout: interval.mul_f64(20.0 / 15.0).max(interval + Duration::from_millis(500)) }
    }
}
