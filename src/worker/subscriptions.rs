//! The worker's consumers on the broker: one per topic queue it processes, and one on its
//! private control queue.

use super::job_runner::JobRunner;
use super::running::RunningJobs;
use crate::broker::{Consume, Delivery, Setup, Subscriber};
use crate::protocol::message::{decode_control, decode_job_stop, ControlCommand, BROADCAST_KEY};
use crate::protocol::{InstanceId, Topic};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Consumes one topic's work queue. Deliveries wait for a permit of the worker's shared
/// semaphore before they start, so `--concurrency` bounds the jobs in flight across all
/// topics, and a busy worker stops pulling (back-pressure).
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

    async fn subscribe(&mut self, setup: &Setup) -> Result<Consume, crate::broker::BrokerError> {
        let queue = setup.broker().names().topic_queue(&self.topic);
        Ok(Consume::queue(queue).prefetch(self.prefetch).tag(self.consumer_tag.clone()))
    }

    fn subscribed(&mut self) {
        self.subscribed.store(true, Ordering::Release);
    }

    async fn handle(&mut self, batch: Vec<Delivery>) {
        for delivery in batch {
            // Stop first: a job of a topic just disabled must go back, even if a slot happens
            // to be free.
            let permit = tokio::select! {
                biased;
                _ = self.stop.cancelled() => {
                    // Not started: back to the queue for another worker.
                    let _ = delivery.requeue().await;
                    continue;
                }
                p = self.permits.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => return, // semaphore closed: the worker is going away
                },
            };
            let (runner, topic) = (self.runner.clone(), self.topic.clone());
            self.tasks.spawn(async move {
                // Boxed: a job's future is kilobytes (its message, timers and the consumer's
                // state), and tokio moves a task's whole future several times as it spawns and
                // finishes it; copying those bytes was the largest single cost of a short job
                // in a worker (docs/benchmarks.md §1). The task now holds a pointer.
                Box::pin(runner.run(delivery, &topic)).await;
                drop(permit);
            });
        }
    }

    fn max_batch(&self) -> usize {
        usize::from(self.prefetch).max(1)
    }
}

/// Listens for commands addressed to this instance, and for job stops broadcast to all.
pub struct ControlSubscriber {
    pub instance: InstanceId,
    /// Where a job stop goes: straight to the job's token, not through the worker's loop.
    pub running: Arc<RunningJobs>,
    pub commands: mpsc::Sender<ControlCommand>,
    /// Fired once the control queue is bound and consumed, so the worker can announce itself
    /// only when commands addressed to it can be delivered.
    pub ready: Option<oneshot::Sender<()>>,
}

#[async_trait::async_trait]
impl Subscriber for ControlSubscriber {
    fn describe(&self) -> String {
        "control commands".into()
    }

    async fn subscribe(&mut self, setup: &Setup) -> Result<Consume, crate::broker::BrokerError> {
        let names = setup.broker().names();
        let queue = setup.declare_private_queue(&names.control_exchange(), &names.control_key(&self.instance)).await?;
        setup.bind_queue(&queue, &names.control_exchange(), BROADCAST_KEY).await?;
        Ok(Consume::queue(queue).prefetch(16))
    }

    fn subscribed(&mut self) {
        if let Some(ready) = self.ready.take() {
            let _ = ready.send(());
        }
    }

    async fn handle(&mut self, batch: Vec<Delivery>) {
        for d in batch {
            if let Ok(stop) = decode_job_stop(d.data()) {
                let here = self.running.stop(stop.job_id, stop.attempt);
                tracing::info!(job = %stop.job_id, running_here = here, "job stop");
                let _ = d.ack().await;
                continue;
            }
            match decode_control(d.data()) {
                Ok(cmd) if cmd.target == self.instance => {
                    let _ = self.commands.send(cmd).await;
                }
                Ok(cmd) => tracing::warn!(target = %cmd.target, "ignoring control command for another instance"),
                Err(e) => tracing::warn!(error = %e, "ignoring malformed control command"),
            }
            let _ = d.ack().await;
        }
    }
}
