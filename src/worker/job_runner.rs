//! Running one delivered job, from the raw message to the ack.
//!
//! The order is the guarantee: the completion is published and *confirmed* before
//! the job is acked. A worker that dies in between leaves the job unacked, so
//! RabbitMQ redelivers it; the leader applies completions idempotently, so the
//! duplicate changes nothing. A redelivered job whose completion this worker already
//! had confirmed is acked without running again (`completed.rs`).

use super::completed::Completed;
use super::metrics::{JobLabels, WorkerMetrics};
use super::{ConsumerRegistry, Context, JobLimits};
use crate::broker::{Delivery, Outgoing, Publisher};
use crate::datastore::BlobStore;
use crate::protocol::message::{decode_job, Completion, JobStarted, Reply, COMPLETION_SCHEMA, JOB_STARTED_SCHEMA};
use crate::protocol::{InstanceId, JobResult};
use chrono::Utc;
use futures::FutureExt;
use lapin::options::{BasicAckOptions, BasicNackOptions};
use lapin::types::AMQPValue;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Everything a job needs from its worker, shared by all jobs.
pub struct JobRunner {
    pub publisher: Arc<Publisher>,
    pub store: Arc<dyn BlobStore>,
    pub registry: Arc<ConsumerRegistry>,
    pub instance: InstanceId,
    pub instance_name: String,
    pub limits: JobLimits,
    pub metrics: WorkerMetrics,
    /// Fires only on a hard stop; a graceful drain lets jobs finish.
    pub hard_stop: CancellationToken,
    /// How long a job runs before its started event is sent (zero: at once).
    pub started_delay: Duration,
    /// Attempts whose completion is confirmed: a redelivered copy is acked without a rerun.
    pub(crate) completed: Completed,
}

impl JobRunner {
    pub async fn run(&self, delivery: Delivery) {
        self.metrics.in_flight.inc();
        self.run_inner(delivery).await;
        self.metrics.in_flight.dec();
    }

    async fn run_inner(&self, delivery: Delivery) {
        let msg = match decode_job(&delivery.data) {
            Ok(m) => m,
            Err(e) => return self.dead_letter(delivery, &e.to_string()).await,
        };
        let job = msg.job;
        if self.completed.contains(job.id, job.attempt) {
            tracing::info!(job = %job.id, attempt = job.attempt, "redelivered, but its completion is already confirmed: acked without running it again");
            if let Err(e) = delivery.acker.ack(BasicAckOptions::default()).await {
                tracing::warn!(job = %job.id, error = %e, "ack of an already completed job failed");
            }
            return;
        }
        let started_at = Utc::now();
        let redeliveries = delivery_count(&delivery);

        let started = Reply::Started(JobStarted {
            job_id: job.id,
            attempt: job.attempt,
            worker: self.instance,
            worker_name: self.instance_name.clone(),
            redeliveries,
            started_at,
        });
        let started = self.reply(&msg.reply_to, &job.id.to_string(), JOB_STARTED_SCHEMA, &started);

        let timer = Instant::now();
        let ctx = Context::new(self.store.clone(), self.limits, self.hard_stop.clone());
        let work = async {
            match self.registry.resolve(&job.topic) {
                None => {
                    JobResult::cancel(format!("no consumer for topic {} on worker {}", job.topic, self.instance_name))
                }
                Some((_, consumer)) => {
                    let consumer = consumer.clone();
                    // A panicking consumer fails its job, not the worker.
                    match AssertUnwindSafe(consumer.process(&job, &ctx)).catch_unwind().await {
                        Ok(r) => r,
                        Err(panic) => JobResult::failed(format!("consumer panicked: {}", panic_text(&panic))),
                    }
                }
            }
        };
        tokio::pin!(work);
        // The started event (ACTIVE on the leader) is for jobs people can watch
        // run; a job done within `started_delay` goes straight to its completion,
        // which spares the broker a third message per job.
        let result = if self.started_delay.is_zero() {
            if let Some(out) = started {
                self.send_started(out);
            }
            work.await
        } else {
            tokio::select! {
                biased;
                r = &mut work => r,
                _ = tokio::time::sleep(self.started_delay) => {
                    if let Some(out) = started {
                        self.send_started(out);
                    }
                    work.await
                }
            }
        };
        let elapsed = timer.elapsed();
        self.metrics.job_seconds.observe(elapsed.as_secs_f64());
        let result_label = match &result {
            JobResult::Ok => "ok",
            JobResult::Failed { .. } => "failed",
            JobResult::Cancel { .. } => "cancel",
        };
        self.metrics.jobs.get_or_create(&JobLabels { topic: job.topic.to_string(), result: result_label.into() }).inc();
        match &result {
            JobResult::Ok => {
                tracing::debug!(job = %job.id, topic = %job.topic, ms = elapsed.as_millis() as u64, "job done")
            }
            other => tracing::warn!(job = %job.id, topic = %job.topic, result = ?other, "job did not succeed"),
        }

        let (outputs, properties) = ctx.take_outputs();
        let completion = Reply::Completion(Completion {
            job_id: job.id,
            attempt: job.attempt,
            worker: self.instance,
            worker_name: self.instance_name.clone(),
            result,
            outputs,
            properties,
            started_at,
            finished_at: Utc::now(),
            redeliveries,
        });
        let Some(out) = self.reply(&msg.reply_to, &job.id.to_string(), COMPLETION_SCHEMA, &completion) else {
            return self.dead_letter(delivery, "completion could not be encoded").await;
        };
        match self.publisher.publish(&out).await {
            Ok(()) => {
                self.completed.remember(job.id, job.attempt);
                if let Err(e) = delivery.acker.ack(BasicAckOptions::default()).await {
                    // The channel died after the completion was safe: the job will be
                    // redelivered, and acked on arrival without running again.
                    tracing::warn!(job = %job.id, error = %e, "ack failed after completion was confirmed");
                }
            }
            Err(e) => {
                tracing::error!(job = %job.id, error = %e, "completion not confirmed; returning the job to its queue");
                let _ = delivery.acker.nack(BasicNackOptions { requeue: true, multiple: false }).await;
            }
        }
    }

    /// Fire-and-forget: the ledger orders events by state, not arrival, so the
    /// started event need not hold up the job, and losing one loses nothing.
    fn send_started(&self, out: Outgoing) {
        let publisher = self.publisher.clone();
        tokio::spawn(async move {
            if let Err(e) = publisher.publish_once(&out).await {
                tracing::debug!(error = %e, "job-started event not sent");
            }
        });
    }

    fn reply(&self, reply_to: &str, id: &str, kind: &'static str, reply: &Reply) -> Option<Outgoing> {
        let body = serde_json::to_vec(reply).ok()?;
        let mut out = Outgoing::new("", reply_to, kind, body);
        out.message_id = Some(id.to_owned());
        Some(out)
    }

    /// Sends a message we cannot act on to the dead-letter exchange with the reason
    /// in its headers, then acks it: it is kept for people to inspect, and the
    /// worker goes on with the next job.
    async fn dead_letter(&self, delivery: Delivery, reason: &str) {
        tracing::error!(reason, routing_key = %delivery.routing_key, "dead-lettering malformed message");
        self.metrics.dead_lettered.inc();
        let names = self.publisher.broker().names();
        let mut out = Outgoing::new(
            names.dead_letter_exchange(),
            delivery.routing_key.as_str(),
            "offloader.dead-letter",
            delivery.data.clone(),
        );
        out.headers = vec![
            ("x-offloader-reason".into(), reason.chars().take(1000).collect()),
            ("x-offloader-routing-key".into(), delivery.routing_key.to_string()),
            ("x-offloader-worker".into(), self.instance.to_string()),
        ];
        match self.publisher.publish(&out).await {
            Ok(()) => {
                let _ = delivery.acker.ack(BasicAckOptions::default()).await;
            }
            Err(e) => {
                // Let the broker's own dead-lettering (delivery limit) take it.
                tracing::error!(error = %e, "could not dead-letter; rejecting instead");
                let _ = delivery.acker.nack(BasicNackOptions { requeue: false, multiple: false }).await;
            }
        }
    }
}

/// Quorum queues count deliveries in `x-delivery-count`; absent on the first.
fn delivery_count(d: &Delivery) -> u32 {
    let Some(headers) = d.properties.headers() else { return 0 };
    match headers.inner().get("x-delivery-count") {
        Some(AMQPValue::LongLongInt(n)) => *n as u32,
        Some(AMQPValue::LongInt(n)) => *n as u32,
        Some(AMQPValue::LongUInt(n)) => *n,
        Some(AMQPValue::ShortInt(n)) => *n as u32,
        _ => u32::from(d.redelivered),
    }
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}
