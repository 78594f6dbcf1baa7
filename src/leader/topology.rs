//! The Topology Browser and the Offloading Browser: the instances of every cluster, which
//! consumes which topic, and live changes of enablement.

use super::jobs::JobManager;
use crate::broker::{Broker, BrokerError, Outgoing, Publisher};
use crate::discovery::{Member, TopologyView};
use crate::protocol::api::{ClusterView, ConsumerView, InstanceView, QueueView, TopicsReport, TopologyReport};
use crate::protocol::message::{ControlAction, ControlCommand, CONTROL_SCHEMA};
use crate::protocol::{InstanceId, Role};
use std::time::Duration;

/// One member of the topology as the API shows it; `me` is the instance answering.
pub fn instance_view(m: &Member, me: InstanceId) -> InstanceView {
    let a = &m.peer.announcement;
    InstanceView {
        id: a.instance.id,
        name: a.instance.name.clone(),
        role: a.instance.role,
        cluster: a.instance.cluster.clone(),
        host: a.instance.host.clone(),
        pid: a.instance.pid,
        version: a.instance.version.clone(),
        endpoints: a.instance.endpoints.clone(),
        joined_at: m.joined_at,
        last_heartbeat: m.last_heartbeat,
        last_seen_ms: m.peer.last_seen.elapsed().as_millis() as u64,
        interval_ms: a.interval_ms,
        draining: a.draining,
        leader: a.leader,
        current: a.instance.id == me,
        ledger: a.ledger.clone(),
        enablement: a.enablement.clone(),
        consumers: a
            .consumers
            .iter()
            .map(|c| ConsumerView { topic: c.clone(), state: a.enablement.state_of(c) })
            .collect(),
        consuming: a.topics.clone(),
    }
}

/// The topology as Sling's Topology Browser shows it: clusters, their instances in join order,
/// the elected leader and the current instance, the history and the refused instances.
pub fn topology_report(view: &TopologyView, me: InstanceId) -> TopologyReport {
    let snap = view.snapshot();
    let mut clusters: Vec<ClusterView> = Vec::new();
    for m in &snap.members {
        let cluster = &m.peer.announcement.instance.cluster;
        let at = match clusters.iter().position(|c| &c.name == cluster) {
            Some(i) => i,
            None => {
                clusters.push(ClusterView { name: cluster.clone(), leader: None, instances: vec![] });
                clusters.len() - 1
            }
        };
        let view = instance_view(m, me);
        if view.leader && view.role == Role::Leader {
            clusters[at].leader = Some(view.id);
        }
        clusters[at].instances.push(view);
    }
    clusters.sort_by(|a, b| a.name.cmp(&b.name));
    TopologyReport {
        current: me,
        state: snap.state,
        version: snap.version,
        changed_at: snap.changed_at,
        clusters,
        history: snap.history,
        refused: snap.refused,
        allow: snap.allow.entries().to_vec(),
    }
}

/// Every live instance and every topic queue with its depth: the Offloading Browser's data.
pub async fn topics_report(
    view: &TopologyView,
    me: InstanceId,
    jobs: &JobManager,
    broker: &Broker,
) -> Result<TopicsReport, BrokerError> {
    let instances = view.snapshot().members.iter().map(|m| instance_view(m, me)).collect();
    let known = jobs.topics().borrow().clone();
    let mut topics = Vec::new();
    for topic in known {
        let queue = broker.names().topic_queue(&topic);
        let depth = broker.queue_depth(&queue).await?;
        topics.push(QueueView {
            topic,
            queue,
            messages: depth.map(|d| d.messages),
            consumers: depth.map(|d| d.consumers),
        });
    }
    Ok(TopicsReport { instances, topics })
}

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("no live instance with id or name {0:?} (see `offloader topics`)")]
    UnknownInstance(String),
    #[error("instance {0:?} is not listening for commands")]
    NotListening(String),
    #[error("instance {0} did not confirm the change within {1:?}")]
    NoConfirmation(String, Duration),
    #[error(transparent)]
    Broker(#[from] BrokerError),
}

/// Sends a command to one instance and waits until its announcement shows the
/// change, so the caller sees the state that is really in force.
pub async fn send_control(
    view: &TopologyView,
    me: InstanceId,
    publisher: &Publisher,
    instance: &str,
    action: ControlAction,
) -> Result<InstanceView, ControlError> {
    let peer = view
        .peers()
        .into_iter()
        .find(|p| p.announcement.instance.id.to_string() == instance || p.announcement.instance.name == instance)
        .ok_or_else(|| ControlError::UnknownInstance(instance.to_owned()))?;
    let id = peer.announcement.instance.id;
    let mut expected = peer.announcement.enablement.clone();
    if let Some((change, pattern)) = action.enablement_change() {
        expected.apply(change, pattern);
    }
    let cmd = ControlCommand {
        schema: CONTROL_SCHEMA.into(),
        id: uuid::Uuid::new_v4(),
        target: id,
        action,
        issued_at: chrono::Utc::now(),
    };
    let names = publisher.broker().names();
    let mut out = Outgoing::new(
        names.control_exchange(),
        names.control_key(&id),
        CONTROL_SCHEMA,
        serde_json::to_vec(&cmd).map_err(BrokerError::from)?,
    );
    out.persistent = false;
    match publisher.publish(&out).await {
        Err(BrokerError::Unroutable { .. }) => return Err(ControlError::NotListening(instance.to_owned())),
        other => other?,
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut changes = view.changes();
    loop {
        if let Some(m) = view.snapshot().members.iter().find(|m| m.peer.announcement.instance.id == id) {
            if m.peer.announcement.enablement == expected {
                return Ok(instance_view(m, me));
            }
        }
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => {
                return Err(ControlError::NoConfirmation(id.to_string(), Duration::from_secs(10)));
            }
            _ = changes.changed() => {}
        }
    }
}
