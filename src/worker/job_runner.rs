//! Running one delivered job, from the raw message to the ack.
//!
//! The order is the guarantee: the completion is published and *confirmed* before the job is
//! acked. A worker that dies in between leaves the job unacked, so RabbitMQ redelivers it; the
//! leader applies completions idempotently, so the duplicate changes nothing. A redelivered job
//! whose completion this worker already had confirmed is acked without running again
//! (`completed.rs`).
//!
//! A job still running after `detach_after` is *detached*: the worker tells the leader (a
//! started event with `detached`, confirmed) and then acks the delivery while the job runs on.
//! RabbitMQ closes the channel of a consumer that holds a delivery longer than its
//! `consumer_timeout` (30 min by default), which would requeue the job and run it a second time
//! elsewhere while this run goes on. From then on the broker no longer holds the job; the
//! leader does: it publishes the job again if this worker leaves before the completion comes
//! (`leader::jobs::detached`). A detached job's completion is published as usual, but retried
//! until it is confirmed, since no redelivery would bring the job back; nothing is acked at the
//! end. Stops, timeouts and drains work on it as on any job: it is still running here.
//!
//! The consumer is the one registered for the queue the message came from, never the topic the
//! message claims: a message whose topic is not its queue's would otherwise run a consumer that
//! enablement never allowed here, so it is dead-lettered with that reason.

use super::completed::Completed;
use super::metrics::{JobLabels, WorkerMetrics};
use super::progress::ProgressForwarder;
use super::running::RunningJobs;
use crate::broker::{dead_letter, BrokerError, Delivery, Outgoing, Publisher};
use crate::consumer::{ConsumerRegistry, Context, JobLimits};
use crate::datastore::BlobStore;
use crate::protocol::message::{decode_job, Completion, JobStarted, Reply, COMPLETION_SCHEMA, JOB_STARTED_SCHEMA};
use crate::protocol::trace::{TraceContext, TRACEPARENT};
use crate::protocol::{InstanceId, JobId, JobResult, Topic};
use chrono::Utc;
use futures::FutureExt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

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
    /// How long a job runs before its delivery is acked and the job detached from it; must stay
    /// below the broker's `consumer_timeout`.
    pub detach_after: Duration,
    /// Attempts whose completion is confirmed: a redelivered copy is acked without a rerun.
    pub(crate) completed: Completed,
    /// The jobs running here, each with its own cancellation token, for a leader's stop.
    pub(crate) running: Arc<RunningJobs>,
}

impl JobRunner {
    /// Runs the job `delivery` carries, taken from the queue of `queue_topic`.
    pub async fn run(&self, delivery: Delivery, queue_topic: &Topic) {
        self.metrics.in_flight.inc();
        // The trace the leader started for this job; a message without one starts its own.
        let trace = delivery
            .header(TRACEPARENT)
            .and_then(|t| t.parse::<TraceContext>().ok())
            .map(|t| t.child())
            .unwrap_or_else(TraceContext::new_root);
        let span = tracing::info_span!("job", job = delivery.message_id().unwrap_or(""), trace_id = %trace.trace_id());
        self.run_traced(delivery, queue_topic, trace).instrument(span).await;
        self.metrics.in_flight.dec();
    }

    async fn run_traced(&self, delivery: Delivery, queue_topic: &Topic, trace: TraceContext) {
        let msg = match decode_job(delivery.data()) {
            Ok(m) => m,
            Err(e) => return self.dead_letter(delivery, &e.to_string()).await,
        };
        let job = msg.job;
        if &job.topic != queue_topic {
            let reason =
                format!("the message is for topic {} but came from the queue of topic {queue_topic}", job.topic);
            return self.dead_letter(delivery, &reason).await;
        }
        if self.completed.contains(job.id, job.attempt) {
            tracing::info!(
                attempt = job.attempt,
                "redelivered, but its completion is already confirmed: acked without running it again"
            );
            if let Err(e) = delivery.ack().await {
                tracing::warn!(error = %e, "ack of an already completed job failed");
            }
            return;
        }
        let started_at = Utc::now();
        let redeliveries = delivery.delivery_count();
        let started_event = JobStarted {
            job_id: job.id,
            attempt: job.attempt,
            worker: self.instance,
            worker_name: self.instance_name.clone(),
            redeliveries,
            started_at,
            detached: false,
        };
        // Encoded only when it is sent: most jobs end before `started_delay` and never send it.
        let mut started = true;
        let mut detached = false;

        let timer = Instant::now();
        // The job's own token: a leader's stop cancels it, and so does a hard stop.
        let running = self.running.start(job.id, job.attempt, &self.hard_stop);
        let ctx = Context::new(self.store.clone(), self.limits, running.token.clone());
        // The forwarder of the job's progress is started with its first report: most jobs report
        // none, and a task per job was a measurable share of a short job's cost.
        let mut updates = ctx.progress_updates();
        let mut watching = true;
        let mut progress: Option<tokio::task::JoinHandle<()>> = None;
        let result = {
            let consume = async {
                if self.running.was_stopped(job.id, job.attempt) {
                    // Stopped before it started here: its consumer need not run at all.
                    return JobResult::cancel("stopped before it started");
                }
                match self.registry.resolve(queue_topic) {
                    None => JobResult::cancel(format!(
                        "no consumer for topic {} on worker {}",
                        queue_topic, self.instance_name
                    )),
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
            let limit = job.timeout_ms.map(Duration::from_millis);
            let work = async {
                let Some(limit) = limit else { return consume.await };
                match tokio::time::timeout(limit, consume).await {
                    Ok(result) => result,
                    Err(_) => {
                        // The consumer may still be in a blocking section; it sees the token
                        // and its result, if any, is dropped with it.
                        running.token.cancel();
                        JobResult::failed(format!(
                            "timed out after {} ms (the queue's queue.timeout)",
                            limit.as_millis()
                        ))
                    }
                }
            };
            tokio::pin!(work);
            // The started event (ACTIVE on the leader) is for jobs people can watch run; a job
            // done within `started_delay` goes straight to its completion, which spares the broker
            // a third message per job.
            if self.started_delay.is_zero() {
                // Every start reported: before the job gets a chance to end in its first poll.
                started = false;
                self.send_started(&msg.reply_to, &started_event, &trace);
            }
            let started_timer = tokio::time::sleep(self.started_delay);
            let detach_timer = tokio::time::sleep(self.detach_after);
            tokio::pin!(started_timer, detach_timer);
            loop {
                tokio::select! {
                    biased;
                    r = &mut work => break r,
                    changed = updates.changed(), if watching => {
                        watching = false;
                        if changed.is_ok() {
                            let mut updates = ctx.progress_updates();
                            updates.mark_changed();
                            progress = Some(
                                ProgressForwarder {
                                    publisher: self.publisher.clone(),
                                    reply_to: msg.reply_to.clone(),
                                    job_id: job.id,
                                    attempt: job.attempt,
                                    worker: self.instance,
                                    worker_name: self.instance_name.clone(),
                                    trace,
                                }
                                .spawn(updates),
                            );
                        }
                    }
                    _ = &mut started_timer, if started => {
                        started = false;
                        self.send_started(&msg.reply_to, &started_event, &trace);
                    }
                    _ = &mut detach_timer, if !detached => {
                        let event = Reply::Started(JobStarted { detached: true, ..started_event.clone() });
                        detached = self.detach(&delivery, &msg.reply_to, &event, &trace).await;
                        if detached {
                            // The detached event says all the plain one would.
                            started = false;
                        } else {
                            // Attached as before: the broker may still take the job back.
                            detach_timer.as_mut().reset(tokio::time::Instant::now() + self.detach_after);
                        }
                    }
                }
            }
        };
        if let Some(progress) = progress {
            progress.abort();
        }
        let result = if self.running.was_stopped(job.id, job.attempt) {
            tracing::info!(ms = timer.elapsed().as_millis() as u64, "job stopped by the leader");
            JobResult::cancel("stopped")
        } else {
            result
        };
        drop(running);
        let elapsed = timer.elapsed();
        self.metrics.job_seconds.observe(elapsed.as_secs_f64());
        let result_label = match &result {
            JobResult::Ok => "ok",
            JobResult::Failed { .. } => "failed",
            JobResult::Cancel { .. } => "cancel",
            JobResult::Declined { .. } => "declined",
        };
        self.metrics.jobs.get_or_create(&JobLabels { topic: job.topic.to_string(), result: result_label.into() }).inc();
        match &result {
            JobResult::Ok => tracing::debug!(topic = %job.topic, ms = elapsed.as_millis() as u64, "job done"),
            JobResult::Declined { reason } => {
                tracing::info!(topic = %job.topic, reason, "job declined: another worker may take it")
            }
            other => tracing::warn!(topic = %job.topic, result = ?other, "job did not succeed"),
        }

        let (outputs, properties) = ctx.into_results();
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
        let Some(out) = self.reply(&msg.reply_to, &job.id.to_string(), COMPLETION_SCHEMA, &completion, &trace) else {
            if detached {
                return tracing::error!("completion could not be encoded; the leader takes the job back if we leave");
            }
            return self.dead_letter(delivery, "completion could not be encoded").await;
        };
        if detached {
            // The delivery is settled already: settling it again would be a channel error.
            return self.publish_detached_completion(&out, job.id, job.attempt).await;
        }
        match self.publisher.publish(&out).await {
            Ok(()) => {
                self.completed.remember(job.id, job.attempt);
                if let Err(e) = delivery.ack().await {
                    // The channel died after the completion was safe: the job will be
                    // redelivered, and acked on arrival without running again.
                    tracing::warn!(error = %e, "ack failed after completion was confirmed");
                }
            }
            Err(BrokerError::Unroutable { .. }) => {
                // No leader will ever read it: running the job again cannot help, and returning
                // it would loop until the delivery limit. Keep it, with the reason.
                let reason =
                    format!("the job's reply queue {:?} does not exist; nobody would read its result", msg.reply_to);
                self.dead_letter(delivery, &reason).await;
            }
            Err(e) => {
                tracing::error!(error = %e, reply_to = %msg.reply_to, "completion not confirmed; returning the job to its queue");
                let _ = delivery.requeue().await;
            }
        }
    }

    /// Detaches a running job from its delivery: the leader is told first (confirmed), then the
    /// delivery is acked. In that order, a worker dying in between leaves the job with the
    /// broker, which redelivers it; the other worker's started event then replaces the detach
    /// on the leader. False when either step failed and the job stays attached.
    async fn detach(&self, delivery: &Delivery, reply_to: &str, event: &Reply, trace: &TraceContext) -> bool {
        let Some(out) = self.reply(reply_to, &event.job_id().to_string(), JOB_STARTED_SCHEMA, event, trace) else {
            return false;
        };
        if let Err(e) = self.publisher.publish(&out).await {
            tracing::warn!(error = %e, "cannot tell the leader the job detaches; it stays attached for now");
            return false;
        }
        match delivery.ack().await {
            Ok(()) => {
                tracing::info!(after_s = self.detach_after.as_secs(), "long job detached from its delivery");
                true
            }
            Err(e) => {
                // The channel is gone: the broker will hand the job out again, and the leader
                // will take the new worker's started event over this detach.
                tracing::warn!(error = %e, "ack of a detaching job failed");
                false
            }
        }
    }

    /// The completion of a detached job is the only trace of its run (no redelivery would
    /// bring the job back), so it is published until confirmed; a hard stop ends the tries,
    /// and the leader then takes the job back when this worker is gone.
    async fn publish_detached_completion(&self, out: &Outgoing, id: JobId, attempt: u32) {
        loop {
            match self.publisher.publish(out).await {
                Ok(()) => return self.completed.remember(id, attempt),
                Err(e @ BrokerError::Unroutable { .. }) => {
                    return tracing::error!(error = %e, "the detached job's reply queue is gone; its result is lost")
                }
                Err(e) if self.hard_stop.is_cancelled() => {
                    return tracing::error!(error = %e, "detached job's completion not sent before the hard stop")
                }
                Err(e) => {
                    tracing::warn!(error = %e, "detached job's completion not confirmed; trying again");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// Fire-and-forget: the ledger orders events by state, not arrival, so the started event
    /// need not hold up the job, and losing one loses nothing.
    fn send_started(&self, reply_to: &str, event: &JobStarted, trace: &TraceContext) {
        let reply = Reply::Started(event.clone());
        let Some(out) = self.reply(reply_to, &event.job_id.to_string(), JOB_STARTED_SCHEMA, &reply, trace) else {
            return tracing::debug!("job-started event could not be encoded");
        };
        let publisher = self.publisher.clone();
        tokio::spawn(async move {
            if let Err(e) = publisher.publish_once(&out).await {
                tracing::debug!(error = %e, "job-started event not sent");
            }
        });
    }

    /// A reply to the leader: through the default exchange, keyed by the job's `reply_to`.
    fn reply(
        &self,
        reply_to: &str,
        id: &str,
        kind: &'static str,
        reply: &Reply,
        trace: &TraceContext,
    ) -> Option<Outgoing> {
        let body = serde_json::to_vec(reply).ok()?;
        let mut out = Outgoing::new("", reply_to, kind, body);
        out.message_id = Some(id.to_owned());
        out.headers.push((TRACEPARENT.into(), trace.to_string()));
        Some(out)
    }

    /// Keeps a message we cannot act on for people to inspect, and goes on with the next job.
    async fn dead_letter(&self, delivery: Delivery, reason: &str) {
        self.metrics.dead_lettered.inc();
        dead_letter(&self.publisher, &delivery, reason, &[("x-offloader-worker", self.instance.to_string())]).await;
    }
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}
