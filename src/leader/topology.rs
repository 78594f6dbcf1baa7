//! The Offloading Browser: which instance consumes which topic, and live changes.

use super::jobs::JobManager;
use crate::announce::{Peer, TopologyView};
use crate::broker::{Broker, BrokerError, Outgoing, Publisher};
use crate::protocol::api::{ConsumerView, InstanceView, QueueView, TopicsReport};
use crate::protocol::message::{ControlAction, ControlCommand, CONTROL_SCHEMA};
use crate::protocol::Role;
use std::time::Duration;

/// One peer as the API shows it.
pub fn instance_view(p: &Peer) -> InstanceView {
    let a = &p.announcement;
    InstanceView {
        id: a.instance.id,
        name: a.instance.name.clone(),
        role: a.instance.role,
        host: a.instance.host.clone(),
        pid: a.instance.pid,
        version: a.instance.version.clone(),
        endpoints: a.instance.endpoints.clone(),
        last_seen_ms: p.last_seen.elapsed().as_millis() as u64,
        draining: a.draining,
        enablement: a.enablement.clone(),
        consumers: a
            .consumers
            .iter()
            .map(|c| ConsumerView { topic: c.clone(), state: a.enablement.state_of(c) })
            .collect(),
        consuming: if a.instance.role == Role::Worker { a.topics.clone() } else { vec![] },
    }
}

/// Every live instance and every topic queue with its depth: the Offloading Browser's data.
pub async fn topics_report(
    view: &TopologyView,
    jobs: &JobManager,
    broker: &Broker,
) -> Result<TopicsReport, BrokerError> {
    let instances = view.peers().iter().map(instance_view).collect();
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
        if let Some(p) = view.peer(&id) {
            if p.announcement.enablement == expected {
                return Ok(instance_view(&p));
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
