//! What this instance knows of the others, from their announcements.

use super::HeartbeatConfig;
use crate::broker::{run_subscription, Broker, BrokerError, Consume, Delivery, Setup, Subscriber};
use crate::protocol::message::{decode_announcement, Announcement};
use crate::protocol::{InstanceId, Role, Topic};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Instant;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// One peer as last heard from.
#[derive(Debug, Clone)]
pub struct Peer {
    pub announcement: Announcement,
    pub last_seen: Instant,
}

/// A shared, always-current view of the peers. Cloning shares the same view.
#[derive(Clone)]
pub struct TopologyView {
    peers: Arc<RwLock<HashMap<InstanceId, Peer>>>,
    timeout: std::time::Duration,
    changes: watch::Receiver<u64>,
}

impl TopologyView {
    /// Peers heard from within their timeout, sorted by role then name.
    pub fn peers(&self) -> Vec<Peer> {
        let now = Instant::now();
        let guard = self.peers.read().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<Peer> =
            guard.values().filter(|p| now.duration_since(p.last_seen) <= self.timeout_of(p)).cloned().collect();
        v.sort_by(|a, b| {
            let key = |p: &Peer| (p.announcement.instance.role == Role::Worker, p.announcement.instance.name.clone());
            key(a).cmp(&key(b))
        });
        v
    }

    /// How long `peer` may stay silent: this view's timeout, or longer when the peer announces
    /// less often (4/3 of its interval, Sling's 15:20), so instances that announce at different
    /// paces do not drop each other.
    fn timeout_of(&self, peer: &Peer) -> std::time::Duration {
        let theirs = std::time::Duration::from_millis(peer.announcement.interval_ms).mul_f64(4.0 / 3.0);
        self.timeout.max(theirs)
    }

    pub fn peer(&self, id: &InstanceId) -> Option<Peer> {
        self.peers().into_iter().find(|p| p.announcement.instance.id == *id)
    }

    /// Every topic a live leader has announced: the queues that exist.
    pub fn leader_topics(&self) -> BTreeSet<Topic> {
        self.peers()
            .into_iter()
            .filter(|p| p.announcement.instance.role == Role::Leader)
            .flat_map(|p| p.announcement.topics)
            .collect()
    }

    /// Whether a leader is in view.
    pub fn has_leader(&self) -> bool {
        self.peers().iter().any(|p| p.announcement.instance.role == Role::Leader)
    }

    /// Ticks whenever an announcement changes what the view holds.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.clone()
    }
}

struct ViewSubscriber {
    peers: Arc<RwLock<HashMap<InstanceId, Peer>>>,
    changes: watch::Sender<u64>,
    on_new_peer: Box<dyn Fn() + Send + Sync>,
    ready: Option<oneshot::Sender<()>>,
}

#[async_trait::async_trait]
impl Subscriber for ViewSubscriber {
    fn describe(&self) -> String {
        "topology view".into()
    }

    async fn subscribe(&mut self, setup: &Setup) -> Result<Consume, BrokerError> {
        let exchange = setup.broker().names().topology_exchange();
        let queue = setup.declare_private_queue(&exchange, "").await?;
        // Heartbeats are worthless once stale: nothing to acknowledge.
        Ok(Consume::queue(queue).no_ack())
    }

    fn subscribed(&mut self) {
        if let Some(ready) = self.ready.take() {
            let _ = ready.send(());
        }
    }

    async fn handle(&mut self, batch: Vec<Delivery>) {
        let mut changed = false;
        let mut new_peer = false;
        for d in batch {
            let ann = match decode_announcement(d.data()) {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "ignoring malformed announcement");
                    continue;
                }
            };
            let mut peers = self.peers.write().unwrap_or_else(|e| e.into_inner());
            let id = ann.instance.id;
            match peers.get(&id) {
                Some(old)
                    if old.announcement.sequence > ann.sequence
                        && old.announcement.instance.pid == ann.instance.pid =>
                {
                    continue; // reordered, older heartbeat
                }
                Some(old) => {
                    let same = old.announcement.enablement == ann.enablement
                        && old.announcement.topics == ann.topics
                        && old.announcement.consumers == ann.consumers
                        && old.announcement.draining == ann.draining;
                    changed |= !same;
                }
                None => {
                    tracing::info!(instance = %id, name = %ann.instance.name, role = %ann.instance.role, "instance joined");
                    changed = true;
                    new_peer = true;
                }
            }
            peers.insert(id, Peer { announcement: ann, last_seen: Instant::now() });
        }
        if changed {
            self.changes.send_modify(|v| *v += 1);
        }
        if new_peer {
            (self.on_new_peer)();
        }
    }

    fn max_batch(&self) -> usize {
        64
    }

    async fn release(&mut self, _leftovers: Vec<Delivery>) {
        // Consumed without acks: there is nothing to hand back.
    }
}

/// Starts listening to announcements. `on_new_peer` runs when an instance appears (the runtime
/// re-announces itself so the newcomer learns about it at once). The receiver fires once the
/// view listens: an instance that announces itself only after that hears the answers its
/// announcement provokes.
pub fn spawn_view(
    broker: Broker,
    heartbeat: HeartbeatConfig,
    on_new_peer: impl Fn() + Send + Sync + 'static,
    cancel: CancellationToken,
) -> (TopologyView, oneshot::Receiver<()>, JoinHandle<()>) {
    let peers = Arc::new(RwLock::new(HashMap::new()));
    let (tx, rx) = watch::channel(0u64);
    let (ready_tx, ready_rx) = oneshot::channel();
    let view = TopologyView { peers: peers.clone(), timeout: heartbeat.timeout, changes: rx };
    let sub = ViewSubscriber { peers, changes: tx, on_new_peer: Box::new(on_new_peer), ready: Some(ready_tx) };
    let task = tokio::spawn(async move {
        run_subscription(broker, sub, cancel).await;
    });
    (view, ready_rx, task)
}
