//! Discovery: every instance tells the others who it is, what it consumes and what it has
//! enabled, and keeps a topology of what the others told it, as Sling Discovery does.
//!
//! - [`announcer`]: this instance's heartbeat (an announcement on the topology exchange), sent
//!   every `heartbeat_interval`, at once on every change, and when a new peer appears;
//! - [`view`]: the topology: the instances heard from within their timeout, in the order they
//!   joined, with a bounded history of joins, departures and changes, the instances the
//!   connector allow list refused, and Sling's TOPOLOGY_CHANGING → TOPOLOGY_CHANGED: after a
//!   change the topology is CHANGING until `min_event_delay` passed without another change.
//!
//! The leader's topic list travels in its announcements too, which is how workers find the
//! queues their patterns match.

mod allow;
mod announcer;
mod view;

pub use allow::AllowList;
pub use announcer::{spawn_announcer, Announcer};
pub use view::{spawn_view, Member, Peer, TopologySnapshot, TopologyView};

use std::time::Duration;

/// Heartbeat timing, with Sling Discovery's defaults.
#[derive(Debug, Clone, Copy)]
pub struct HeartbeatConfig {
    /// How often this instance announces itself (Sling's `heartbeatInterval`, 15 s).
    pub interval: Duration,
    /// Silence after which an instance is considered gone (`heartbeatTimeout`, 20 s).
    pub timeout: Duration,
    /// How long the topology stays CHANGING after a change before it is CHANGED
    /// (`minEventDelay`, 3 s); each further change starts the delay again.
    pub min_event_delay: Duration,
}

impl Default for HeartbeatConfig {
    fn default() -> Self {
        HeartbeatConfig {
            interval: Duration::from_secs(15),
            timeout: Duration::from_secs(20),
            min_event_delay: Duration::from_secs(3),
        }
    }
}

impl HeartbeatConfig {
    /// Timing scaled from one interval, keeping Sling's 15:20 ratio (and its 3 s event delay).
    pub fn from_interval(interval: Duration) -> Self {
        HeartbeatConfig {
            interval,
            timeout: interval.mul_f64(20.0 / 15.0).max(interval + Duration::from_millis(500)),
            ..HeartbeatConfig::default()
        }
    }
}
