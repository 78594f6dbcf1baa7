//! The worker's consumers on the broker: one per topic queue it processes, and
//! one on its private control queue.

use super::job_runner::JobRunner;
use crate::broker::{Broker, BrokerError, Channel, Consumer, Delivery, Subscriber};
use crate::protocol::message::{decode_control, ControlCommand};
use crate::protocol::{InstanceId, Topic};
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions};
use lapin::types::FieldTable;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Consumes one topic's work queue. Deliveries wait for a permit of the worker's
/// shared semaphore before they start, so `--concurrency` bounds the jobs in
/// flight across all topics, and a busy worker stops pulling (back-pressure).
pub struct TopicSubscriber {
    pub topic: Topic,
    pub prefetch: u16,
    pub runner: Arc<JobRunner>,
    pub permits: Arc<Semaphore>,
    pub tasks: TaskTracker,
    /// Fires when this topic is disabled or the worker drains.
    pub stop: CancellationToken,
    pub consumer_tag: String,
    /// Set once the broker accepted the consumer (the queue exists).
    pub subscribed: Arc<AtomicBool>,
}

#[async_trait::async_trait]
impl Subscriber for TopicSubscriber {
    fn describe(&self) -> String {
        format!("topic {}", self.topic)
    }

    async fn subscribe(&mut self, broker: &Broker, ch: &Channel) -> Result<Consumer, BrokerError> {
        ch.basic_qos(self.prefetch, BasicQosOptions::default()).await?;
        let queue = broker.names().topic_queue(&self.topic);
        let consumer = ch
            .basic_consume(
                queue.into(),
                self.consumer_tag.as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        self.subscribed.store(true, Ordering::Release);
        Ok(consumer)
    }

    async fn handle(&mut self, ch: &Channel, batch: Vec<Delivery>) {
        for delivery in batch {
            // Stop first: a job of a topic just disabled must go back, even if a
            // slot happens to be free.
            let permit = tokio::select! {
                biased;
                _ = self.stop.cancelled() => {
                    // Not started: back to the queue for another worker.
                    let _ = delivery.acker.nack(BasicNackOptions { requeue: true, multiple: false }).await;
                    continue;
                }
                p = self.permits.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => return, // semaphore closed: the worker is going away
                },
            };
            let runner = self.runner.clone();
            // The job holds its channel open until it is acked: lapin closes a
            // channel when its last handle goes, and the broker would then requeue
            // the job, so a drain or a disabled topic would run it a second time.
            let channel = ch.clone();
            self.tasks.spawn(async move {
                runner.run(delivery).await;
                drop(channel);
                drop(permit);
            });
        }
    }

    fn max_batch(&self) -> usize {
        usize::from(self.prefetch).max(1)
    }
}

/// Listens for commands addressed to this instance.
pub struct ControlSubscriber {
    pub instance: InstanceId,
    pub commands: mpsc::Sender<ControlCommand>,
    /// Fired once the control queue is bound and consumed, so the worker can
    /// announce itself only when commands addressed to it can be delivered.
    pub ready: Option<oneshot::Sender<()>>,
}

#[async_trait::async_trait]
impl Subscriber for ControlSubscriber {
    fn describe(&self) -> String {
        "control commands".into()
    }

    async fn subscribe(&mut self, broker: &Broker, ch: &Channel) -> Result<Consumer, BrokerError> {
        let names = broker.names();
        let queue =
            broker.declare_private_queue(ch, &names.control_exchange(), &names.control_key(&self.instance)).await?;
        let consumer =
            ch.basic_consume(queue.into(), "".into(), BasicConsumeOptions::default(), FieldTable::default()).await?;
        if let Some(ready) = self.ready.take() {
            let _ = ready.send(());
        }
        Ok(consumer)
    }

    async fn handle(&mut self, _ch: &Channel, batch: Vec<Delivery>) {
        for d in batch {
            match decode_control(&d.data) {
                Ok(cmd) if cmd.target == self.instance => {
                    let _ = self.commands.send(cmd).await;
                }
                Ok(cmd) => tracing::warn!(target = %cmd.target, "ignoring control command for another instance"),
                Err(e) => tracing::warn!(error = %e, "ignoring malformed control command"),
            }
            let _ = d.acker.ack(BasicAckOptions::default()).await;
        }
    }
}
