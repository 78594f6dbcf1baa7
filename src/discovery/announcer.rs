//! Publishing this instance's announcement: on every heartbeat, on every change,
//! and when a new peer appears (so a joining worker learns the leader's topics at
//! once instead of after a full heartbeat interval).

use super::HeartbeatConfig;
use crate::broker::{Outgoing, Publisher};
use crate::protocol::message::{Announcement, ANNOUNCEMENT_SCHEMA};
use std::sync::Arc;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The handle a runtime keeps to change what it announces.
#[derive(Clone)]
pub struct Announcer {
    state: Arc<watch::Sender<Announcement>>,
    poke: Arc<Notify>,
}

impl Announcer {
    /// Changes the announcement; it goes out at once.
    pub fn update(&self, f: impl FnOnce(&mut Announcement)) {
        self.state.send_modify(f);
    }

    /// Re-sends the current announcement now.
    pub fn poke(&self) {
        self.poke.notify_one();
    }

    pub fn current(&self) -> Announcement {
        self.state.borrow().clone()
    }
}

/// Starts announcing `initial` (and every change to it). `poke` re-sends the announcement at
/// once when notified: the topology view notifies it when a new peer appears.
pub fn spawn_announcer(
    publisher: Arc<Publisher>,
    initial: Announcement,
    heartbeat: HeartbeatConfig,
    poke: Arc<Notify>,
    cancel: CancellationToken,
) -> (Announcer, JoinHandle<()>) {
    let (tx, mut rx) = watch::channel(initial);
    let announcer = Announcer { state: Arc::new(tx), poke };
    let poke = announcer.poke.clone();
    let exchange = publisher.broker().names().topology_exchange();
    let task = tokio::spawn(async move {
        let mut sequence = 0u64;
        let mut ticker = tokio::time::interval(heartbeat.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let mut msg = rx.borrow_and_update().clone();
            sequence += 1;
            msg.schema = ANNOUNCEMENT_SCHEMA.into();
            msg.sequence = sequence;
            msg.interval_ms = heartbeat.interval.as_millis() as u64;
            msg.sent_at = chrono::Utc::now();
            match serde_json::to_vec(&msg) {
                Ok(body) => {
                    let mut out = Outgoing::new(exchange.clone(), "", ANNOUNCEMENT_SCHEMA, body);
                    // Heartbeats are worthless once stale: keep them off disk and
                    // don't care whether anyone is listening.
                    out.persistent = false;
                    out.mandatory = false;
                    if let Err(e) = publisher.publish_once(&out).await {
                        tracing::debug!(error = %e, "announcement not sent");
                    }
                }
                Err(e) => tracing::error!(error = %e, "cannot encode announcement"),
            }
            if cancel.is_cancelled() {
                return;
            }
            tokio::select! {
                _ = ticker.tick() => {}
                _ = poke.notified() => {}
                changed = rx.changed() => if changed.is_err() { return },
                // One last announcement after cancel, so peers see the final state.
                _ = cancel.cancelled() => {}
            }
        }
    });
    (announcer, task)
}
