//! What this instance knows of the others, from their announcements: the topology.
//!
//! Members join when their first announcement arrives (if the allow list lets them in) and
//! leave when they stay silent for longer than their timeout; a sweep notices departures even
//! when nothing else arrives. Every join, departure and change of an instance's properties
//! (enablement, consumers, topics, draining, being the elected leader) is a change: the
//! topology turns CHANGING, and TOPOLOGY_CHANGED follows once `min_event_delay` passed without
//! another change, as in Sling Discovery. The history keeps the most recent events.
//!
//! Two signals go out: [`TopologyView::changes`] ticks at once on any change (a worker must
//! start consuming a new topic now, not 3 s later), and the CHANGED event is in the history and
//! the logs for people and the console.

use super::{AllowList, HeartbeatConfig};
use crate::broker::{run_subscription, Broker, BrokerError, Consume, Delivery, Setup, Subscriber};
use crate::protocol::api::{EventKind, RefusedInstance, TopologyEvent, TopologyState};
use crate::protocol::message::{decode_announcement, Announcement};
use crate::protocol::{InstanceId, Role, Topic};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Events the history keeps.
const HISTORY: usize = 256;

/// One peer as last heard from.
#[derive(Debug, Clone)]
pub struct Peer {
    pub announcement: Announcement,
    pub last_seen: Instant,
}

/// A member of the topology: the peer, and when it joined.
#[derive(Debug, Clone)]
pub struct Member {
    pub peer: Peer,
    pub joined_at: DateTime<Utc>,
    pub last_heartbeat: DateTime<Utc>,
    /// Order of joining (smaller joined earlier).
    pub join_order: u64,
}

/// The topology at one moment, for reports.
#[derive(Debug, Clone)]
pub struct TopologySnapshot {
    /// Members in join order.
    pub members: Vec<Member>,
    pub state: TopologyState,
    pub version: u64,
    pub changed_at: DateTime<Utc>,
    pub history: Vec<TopologyEvent>,
    pub refused: Vec<RefusedInstance>,
    pub allow: AllowList,
}

struct Topology {
    members: HashMap<InstanceId, Member>,
    next_join: u64,
    history: VecDeque<TopologyEvent>,
    refused: HashMap<InstanceId, RefusedInstance>,
    state: TopologyState,
    version: u64,
    changed_at: DateTime<Utc>,
    /// The last change while CHANGING.
    last_change: Option<Instant>,
}

impl Topology {
    fn record(&mut self, kind: EventKind, a: Option<&Announcement>, detail: Option<String>) {
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(TopologyEvent {
            at: Utc::now(),
            kind,
            instance: a.map(|a| a.instance.id),
            name: a.map(|a| a.instance.name.clone()),
            cluster: a.map(|a| a.instance.cluster.clone()),
            detail,
        });
    }

    /// A change: CHANGING until `min_event_delay` passes without another.
    fn changing(&mut self) {
        if self.state == TopologyState::Changed {
            tracing::debug!("topology changing");
        }
        self.state = TopologyState::Changing;
        self.last_change = Some(Instant::now());
    }
}

/// A shared, always-current view of the topology. Cloning shares the same view.
#[derive(Clone)]
pub struct TopologyView {
    inner: Arc<RwLock<Topology>>,
    heartbeat: HeartbeatConfig,
    allow: AllowList,
    changes: watch::Receiver<u64>,
    /// Ticks `changes`; the sweep needs it, and so does a snapshot, which sweeps first so that it
    /// never shows an instance gone without its departure in the history.
    notify: watch::Sender<u64>,
}

impl TopologyView {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Topology> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    /// How long `peer` may stay silent: this view's timeout, or longer when the peer announces
    /// less often (4/3 of its interval, Sling's 15:20), so instances that announce at different
    /// paces do not drop each other.
    fn timeout_of(&self, peer: &Peer) -> Duration {
        let theirs = Duration::from_millis(peer.announcement.interval_ms).mul_f64(4.0 / 3.0);
        self.heartbeat.timeout.max(theirs)
    }

    fn alive(&self, peer: &Peer, now: Instant) -> bool {
        now.duration_since(peer.last_seen) <= self.timeout_of(peer)
    }

    /// Peers heard from within their timeout, sorted by role then name.
    pub fn peers(&self) -> Vec<Peer> {
        let now = Instant::now();
        let mut v: Vec<Peer> =
            self.read().members.values().map(|m| m.peer.clone()).filter(|p| self.alive(p, now)).collect();
        v.sort_by(|a, b| {
            let key = |p: &Peer| (p.announcement.instance.role == Role::Worker, p.announcement.instance.name.clone());
            key(a).cmp(&key(b))
        });
        v
    }

    pub fn peer(&self, id: &InstanceId) -> Option<Peer> {
        let now = Instant::now();
        self.read().members.get(id).map(|m| m.peer.clone()).filter(|p| self.alive(p, now))
    }

    /// Every topic a live leader has announced: the queues that exist.
    pub fn leader_topics(&self) -> BTreeSet<Topic> {
        self.peers()
            .into_iter()
            .filter(|p| p.announcement.instance.role == Role::Leader)
            .flat_map(|p| p.announcement.topics)
            .collect()
    }

    /// The topics leaders announce as ordered: their queues take one message at a time.
    pub fn leader_ordered_topics(&self) -> BTreeSet<Topic> {
        self.peers()
            .into_iter()
            .filter(|p| p.announcement.instance.role == Role::Leader)
            .flat_map(|p| p.announcement.ordered)
            .collect()
    }

    /// The limits leaders announce on how many jobs of a topic one worker runs at once; the
    /// lowest where leaders disagree.
    pub fn leader_max_parallel(&self) -> BTreeMap<Topic, u16> {
        let mut limits: BTreeMap<Topic, u16> = BTreeMap::new();
        for p in self.peers().into_iter().filter(|p| p.announcement.instance.role == Role::Leader) {
            for (topic, n) in p.announcement.max_parallel {
                let limit = limits.entry(topic).or_insert(n);
                *limit = (*limit).min(n);
            }
        }
        limits
    }

    /// Whether a leader is in view.
    pub fn has_leader(&self) -> bool {
        self.peers().iter().any(|p| p.announcement.instance.role == Role::Leader)
    }

    /// Ticks whenever an announcement changes what the view holds.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.clone()
    }

    /// The topology now: members in join order, state, history, refused instances.
    pub fn snapshot(&self) -> TopologySnapshot {
        self.sweep();
        let now = Instant::now();
        let t = self.read();
        let mut members: Vec<Member> = t.members.values().filter(|m| self.alive(&m.peer, now)).cloned().collect();
        members.sort_by_key(|m| m.join_order);
        let mut refused: Vec<RefusedInstance> = t.refused.values().cloned().collect();
        refused.sort_by(|a, b| a.name.cmp(&b.name));
        TopologySnapshot {
            members,
            state: t.state,
            version: t.version,
            changed_at: t.changed_at,
            history: t.history.iter().cloned().collect(),
            refused,
            allow: self.allow.clone(),
        }
    }

    /// Drops silent members and settles a CHANGING topology; run every sweep period.
    fn sweep(&self) {
        let now = Instant::now();
        let mut t = self.inner.write().unwrap_or_else(|e| e.into_inner());
        let gone: Vec<InstanceId> =
            t.members.iter().filter(|(_, m)| !self.alive(&m.peer, now)).map(|(id, _)| *id).collect();
        for id in gone {
            if let Some(m) = t.members.remove(&id) {
                let a = &m.peer.announcement;
                tracing::info!(instance = %id, name = %a.instance.name, role = %a.instance.role, cluster = %a.instance.cluster, "instance left (no heartbeat)");
                let silent = format!("silent for {} ms", now.duration_since(m.peer.last_seen).as_millis());
                t.record(EventKind::Left, Some(a), Some(silent));
                t.changing();
                self.notify.send_modify(|v| *v += 1);
            }
        }
        if t.state == TopologyState::Changing
            && t.last_change.is_some_and(|at| now.duration_since(at) >= self.heartbeat.min_event_delay)
        {
            t.state = TopologyState::Changed;
            t.version += 1;
            t.changed_at = Utc::now();
            t.last_change = None;
            let version = t.version;
            let members = t.members.len();
            t.record(EventKind::Changed, None, Some(format!("version {version}, {members} instances")));
            tracing::info!(version, members, "topology changed");
        }
    }
}

struct ViewSubscriber {
    view: TopologyView,
    me: InstanceId,
    changes: watch::Sender<u64>,
    on_new_peer: Box<dyn Fn() + Send + Sync>,
    ready: Option<oneshot::Sender<()>>,
}

/// What differs between two announcements of one instance, for the history.
fn differences(old: &Announcement, new: &Announcement) -> Vec<&'static str> {
    let mut d = Vec::new();
    if old.enablement != new.enablement {
        d.push("enablement");
    }
    if old.consumers != new.consumers {
        d.push("consumers");
    }
    if old.topics != new.topics {
        d.push("topics");
    }
    if old.draining != new.draining {
        d.push("draining");
    }
    if old.instance.endpoints != new.instance.endpoints || old.instance.version != new.instance.version {
        d.push("endpoints or version");
    }
    if old.instance.pid != new.instance.pid {
        d.push("process (restarted)");
    }
    d
}

impl ViewSubscriber {
    /// Takes one announcement in; returns whether the view changed and whether it is a new
    /// member.
    fn take(&mut self, ann: Announcement) -> (bool, bool) {
        let id = ann.instance.id;
        let now_utc = Utc::now();
        let mut t = self.view.inner.write().unwrap_or_else(|e| e.into_inner());
        if id != self.me && !self.view.allow.allows(&ann.instance) {
            let first = !t.refused.contains_key(&id);
            let r = t.refused.entry(id).or_insert_with(|| RefusedInstance {
                id,
                name: ann.instance.name.clone(),
                role: ann.instance.role,
                cluster: ann.instance.cluster.clone(),
                host: ann.instance.host.clone(),
                first_seen: now_utc,
                last_seen: now_utc,
                announcements: 0,
            });
            r.last_seen = now_utc;
            r.announcements += 1;
            if first {
                tracing::warn!(instance = %id, name = %ann.instance.name, host = %ann.instance.host, "announcement refused: the instance is not on the topology allow list");
                t.record(EventKind::Refused, Some(&ann), Some("not on the topology allow list".into()));
            }
            return (false, false);
        }
        let peer = Peer { announcement: ann, last_seen: Instant::now() };
        match t.members.get_mut(&id) {
            Some(m) => {
                let old = &m.peer.announcement;
                // A reordered, older heartbeat of the same process changes nothing.
                if old.sequence > peer.announcement.sequence && old.instance.pid == peer.announcement.instance.pid {
                    return (false, false);
                }
                let leader_changed = old.leader != peer.announcement.leader;
                let changed = differences(old, &peer.announcement);
                m.peer = peer;
                m.last_heartbeat = now_utc;
                let a = m.peer.announcement.clone();
                if leader_changed {
                    let detail = if a.leader { "elected" } else { "no longer elected" };
                    tracing::info!(instance = %id, name = %a.instance.name, detail, "cluster leader changed");
                    t.record(EventKind::LeaderChanged, Some(&a), Some(detail.into()));
                }
                if !changed.is_empty() {
                    t.record(EventKind::PropertiesChanged, Some(&a), Some(changed.join(", ")));
                }
                let any = leader_changed || !changed.is_empty();
                if any {
                    t.changing();
                }
                (any, false)
            }
            None => {
                let a = peer.announcement.clone();
                tracing::info!(instance = %id, name = %a.instance.name, role = %a.instance.role, cluster = %a.instance.cluster, "instance joined");
                let order = t.next_join;
                t.next_join += 1;
                t.members.insert(id, Member { peer, joined_at: now_utc, last_heartbeat: now_utc, join_order: order });
                t.record(EventKind::Joined, Some(&a), Some(format!("{} on {}", a.instance.role, a.instance.host)));
                if a.leader {
                    t.record(EventKind::LeaderChanged, Some(&a), Some("elected".into()));
                }
                t.changing();
                (true, id != self.me)
            }
        }
    }
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
            match decode_announcement(d.data()) {
                Ok(ann) => {
                    let (c, n) = self.take(ann);
                    changed |= c;
                    new_peer |= n;
                }
                Err(e) => tracing::warn!(error = %e, "ignoring malformed announcement"),
            }
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

/// Starts listening to announcements. `me` is this instance (always let in); `on_new_peer` runs
/// when an instance appears (the runtime re-announces itself so the newcomer learns about it at
/// once). The receiver fires once the view listens: an instance that announces itself only
/// after that hears the answers its announcement provokes.
pub fn spawn_view(
    broker: Broker,
    me: InstanceId,
    heartbeat: HeartbeatConfig,
    allow: AllowList,
    on_new_peer: impl Fn() + Send + Sync + 'static,
    cancel: CancellationToken,
) -> (TopologyView, oneshot::Receiver<()>, JoinHandle<()>) {
    let (tx, rx) = watch::channel(0u64);
    let (ready_tx, ready_rx) = oneshot::channel();
    let inner = Topology {
        members: HashMap::new(),
        next_join: 0,
        history: VecDeque::new(),
        refused: HashMap::new(),
        state: TopologyState::Changed,
        version: 0,
        changed_at: Utc::now(),
        last_change: None,
    };
    let view = TopologyView { inner: Arc::new(RwLock::new(inner)), heartbeat, allow, changes: rx, notify: tx.clone() };
    let sub = ViewSubscriber {
        view: view.clone(),
        me,
        changes: tx.clone(),
        on_new_peer: Box::new(on_new_peer),
        ready: Some(ready_tx),
    };
    // Departures and TOPOLOGY_CHANGED happen without an announcement: a sweep finds them.
    let every =
        (heartbeat.timeout.min(heartbeat.min_event_delay) / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
    let sweeper = {
        let (view, cancel) = (view.clone(), cancel.clone());
        async move {
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(every) => view.sweep(),
                }
            }
        }
    };
    let task = tokio::spawn(async move {
        tokio::join!(run_subscription(broker, sub, cancel), sweeper);
    });
    (view, ready_rx, task)
}
