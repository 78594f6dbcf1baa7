//! `JobManager`: how jobs are created and published (Sling's `JobManager.addJob`).
//!
//! The order of [`JobManager::add_job`] is the guarantee: record first, publish with a confirm
//! second, mark QUEUED third. A crash after the record but before the confirm leaves a NEW job
//! that the republisher sends on restart, so a job is never lost; a crash after the publish but
//! before the mark is written (marks are written behind, `ledger/marks.rs`) may send it twice,
//! which the idempotent ledger absorbs.

use super::completions::Completions;
use super::lifecycle::{Effect, MAX_ATTEMPTS};
use super::metrics::LeaderMetrics;
use super::queues::{QueueType, Queues};
use crate::broker::{Broker, BrokerError, Outgoing, Publisher, Setup};
use crate::leader::ledger::JobQuery;
use crate::leader::ledger::{Ledger, LedgerError};
use crate::protocol::api::{JobRecord, WorkerRef};
use crate::protocol::message::{JobMessage, JobStop, BROADCAST_KEY, JOB_SCHEMA, JOB_STOP_SCHEMA};
use crate::protocol::trace::{TraceContext, TRACEPARENT};
use crate::protocol::workflow::{local_topic, LOCAL_TOPIC};
use crate::protocol::{InstanceId, Job, JobId, JobState, PayloadEntry, Properties, Topic};
use chrono::Utc;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Mutex};

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Broker(#[from] BrokerError),
    #[error("job {0} not found")]
    NotFound(JobId),
    #[error("invalid job: {0}")]
    Invalid(String),
    /// The job is in a state the request does not apply to (retrying a job still running).
    #[error("job {0} is {1}: {2}")]
    Conflict(JobId, JobState, &'static str),
}

/// What a caller provides to create a job.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub topic: Topic,
    pub properties: Properties,
    pub inputs: Vec<PayloadEntry>,
    /// Overrides the leader's retry policy for this job.
    pub max_attempts: Option<u32>,
    /// The trace the job belongs to (an HTTP request's `traceparent`); a new one otherwise.
    pub trace: Option<TraceContext>,
}

impl NewJob {
    pub fn new(topic: Topic) -> Self {
        NewJob { topic, properties: Properties::new(), inputs: vec![], max_attempts: None, trace: None }
    }
}

pub struct JobManager {
    /// This leader, recorded as the creator of the jobs it creates.
    me: InstanceId,
    ledger: Ledger,
    publisher: Arc<Publisher>,
    completions: Arc<Completions>,
    metrics: LeaderMetrics,
    /// Topics whose queue this process has declared; announced to workers.
    topics: watch::Sender<BTreeSet<Topic>>,
    setup: Mutex<Option<Setup>>,
    /// NEW jobs whose publish failed (RabbitMQ away): the republisher sends them on its next
    /// round rather than after the grace it gives publishes that may still be in progress.
    unsent: std::sync::Mutex<BTreeSet<JobId>>,
    /// Jobs this leader stopped, for the workflows it runs itself (workers hear of stops on
    /// the broker instead). A local run on another leader of a shared ledger is not reached;
    /// its result is ignored all the same.
    stops: tokio::sync::broadcast::Sender<JobId>,
}

impl JobManager {
    pub(crate) async fn new(
        me: InstanceId,
        ledger: Ledger,
        publisher: Arc<Publisher>,
        completions: Arc<Completions>,
        metrics: LeaderMetrics,
    ) -> Result<Self, JobError> {
        let known: BTreeSet<Topic> = ledger.topics().await?.into_iter().collect();
        let manager = JobManager {
            me,
            ledger,
            publisher,
            completions,
            metrics,
            topics: watch::channel(BTreeSet::new()).0,
            setup: Mutex::new(None),
            unsent: std::sync::Mutex::new(BTreeSet::new()),
            stops: tokio::sync::broadcast::channel(256).0,
        };
        // Queues may have been deleted while we were away: declare them again.
        for topic in known {
            manager.ensure_topic(&topic).await?;
        }
        Ok(manager)
    }

    /// This leader's instance id.
    pub fn me(&self) -> InstanceId {
        self.me
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    pub fn completions(&self) -> &Arc<Completions> {
        &self.completions
    }

    /// The per-topic queue settings this leader applies.
    pub fn queues(&self) -> &Queues {
        self.completions.queues()
    }

    /// Topics with a declared queue, updated as new topics appear.
    pub fn topics(&self) -> watch::Receiver<BTreeSet<Topic>> {
        self.topics.subscribe()
    }

    /// Creates a job: records it, publishes it with a confirm, marks it QUEUED. If the broker
    /// is away, the job stays NEW and is published when it returns.
    pub async fn add_job(&self, new: NewJob) -> Result<JobRecord, JobError> {
        if new.topic.as_str() == LOCAL_TOPIC {
            return Err(JobError::Invalid(format!(
                "topic {LOCAL_TOPIC} is reserved for workflows the leader runs itself"
            )));
        }
        let rec = self.record(new)?;
        self.ensure_topic(&rec.topic).await?;
        self.ledger.insert(rec.clone()).await?;
        self.metrics.jobs_submitted.inc();
        match self.publish(&rec).await {
            Ok(()) => Ok(self.ledger.queued(&rec)),
            Err(e) => {
                tracing::warn!(job = %rec.id, error = %e, "job recorded but not yet published; will retry");
                self.mark_unsent(rec.id);
                Ok(rec)
            }
        }
    }

    /// The record of a new job, its limits checked.
    /// Publishes a job already recorded NEW in the ledger (by a schedule's firing, in the
    /// transaction that advanced the schedule), as `add_job` does after its insert.
    pub async fn publish_recorded(&self, rec: JobRecord) -> Result<JobRecord, JobError> {
        self.metrics.jobs_submitted.inc();
        let sent = match self.ensure_topic(&rec.topic).await {
            Ok(()) => self.publish(&rec).await.map_err(JobError::from),
            Err(e) => Err(e),
        };
        match sent {
            Ok(()) => Ok(self.ledger.queued(&rec)),
            Err(e) => {
                tracing::warn!(job = %rec.id, error = %e, "job recorded but not yet published; will retry");
                self.mark_unsent(rec.id);
                Ok(rec)
            }
        }
    }

    /// The record of a new job, as `add_job` would make it, without storing it.
    pub fn new_record(&self, new: NewJob) -> Result<JobRecord, JobError> {
        self.record(new)
    }

    fn record(&self, new: NewJob) -> Result<JobRecord, JobError> {
        let queue = self.completions.queues().for_topic(&new.topic);
        let max_attempts = new.max_attempts.unwrap_or(queue.retry.max_attempts);
        let timeout_ms = queue.timeout.map(|t| t.as_millis() as u64);
        if !(1..=MAX_ATTEMPTS).contains(&max_attempts) {
            return Err(JobError::Invalid(format!("max_attempts must be 1 to {MAX_ATTEMPTS}, not {max_attempts}")));
        }
        let job = Job {
            id: JobId::new(),
            topic: new.topic,
            properties: new.properties,
            inputs: new.inputs,
            attempt: 1,
            max_attempts,
            timeout_ms,
        };
        let mut rec = JobRecord::new(&job, Utc::now());
        rec.trace = Some(new.trace.unwrap_or_else(TraceContext::new_root));
        rec.created_by = Some(self.me);
        Ok(rec)
    }

    /// Records a job the leader runs itself, on [`LOCAL_TOPIC`], as already ACTIVE on `runner`:
    /// it is never published, and one attempt is all it gets (a retry would run the same bytes
    /// through the same engine again).
    pub async fn record_local(&self, mut new: NewJob, runner: WorkerRef) -> Result<JobRecord, JobError> {
        new.topic = local_topic();
        new.max_attempts = Some(1);
        let mut rec = self.record(new)?;
        let now = Utc::now();
        rec.state = JobState::Active;
        rec.queued_at = Some(now);
        rec.started_at = Some(now);
        rec.worker = Some(runner);
        self.ledger.insert(rec.clone()).await?;
        self.metrics.jobs_submitted.inc();
        Ok(rec)
    }

    /// Publishes the attempt the record is due to publish (see `lifecycle::publish_attempt`).
    pub(super) async fn publish(&self, rec: &JobRecord) -> Result<(), BrokerError> {
        let mut job = rec.job();
        job.attempt = rec.publish_attempt();
        let job_attempt = job.attempt;
        let names = self.publisher.broker().names();
        let reply_to = names.replies_queue();
        let msg = JobMessage::new(job, reply_to.clone(), rec.created_at);
        let body = serde_json::to_vec(&msg)?;
        let mut out = Outgoing::new(names.jobs_exchange(), rec.topic.routing_key(), JOB_SCHEMA, body);
        out.message_id = Some(rec.id.to_string());
        out.reply_to = Some(reply_to);
        if let Some(trace) = &rec.trace {
            out.headers.push((TRACEPARENT.into(), trace.child().to_string()));
        }
        let trace_id = rec.trace.map(|t| t.trace_id()).unwrap_or_default();
        tracing::debug!(job = %rec.id, %trace_id, topic = %rec.topic, attempt = job_attempt, "publishing job");
        match self.publisher.publish(&out).await {
            Err(BrokerError::Unroutable { .. }) => {
                // Someone deleted the queue: declare it again rather than lose the job.
                self.forget_topic(&rec.topic);
                self.ensure_topic(&rec.topic).await.map_err(|e| match e {
                    JobError::Broker(b) => b,
                    other => BrokerError::Pool(other.to_string()),
                })?;
                self.publisher.publish(&out).await
            }
            other => other,
        }
    }

    /// Declares the topic's queue before its first job, so a job nobody consumes yet waits in
    /// its queue instead of being dropped by the exchange.
    async fn ensure_topic(&self, topic: &Topic) -> Result<(), JobError> {
        if self.topics.borrow().contains(topic) {
            return Ok(());
        }
        let mut setup = self.setup.lock().await;
        let current = match setup.take() {
            Some(s) if s.is_open() => s,
            _ => self.publisher.broker().setup().await?,
        };
        let ordered = self.completions.queues().for_topic(topic).kind == QueueType::Ordered;
        current.declare_topic_queue(topic, ordered).await?;
        *setup = Some(current);
        drop(setup);
        self.ledger.add_topic(topic.clone()).await?;
        self.topics.send_modify(|t| {
            t.insert(topic.clone());
        });
        tracing::info!(%topic, queue = %self.broker().names().topic_queue(topic), "topic queue declared");
        Ok(())
    }

    /// Takes in the topics other leaders of a shared ledger declared, so this leader announces
    /// their queues too.
    pub async fn refresh_topics(&self) -> Result<(), JobError> {
        for topic in self.ledger.topics().await? {
            if !self.topics.borrow().contains(&topic) {
                self.ensure_topic(&topic).await?;
            }
        }
        Ok(())
    }

    fn broker(&self) -> &Broker {
        self.publisher.broker()
    }

    fn forget_topic(&self, topic: &Topic) {
        self.topics.send_modify(|t| {
            t.remove(topic);
        });
    }

    pub async fn get(&self, id: JobId) -> Result<JobRecord, JobError> {
        self.ledger.get(id).await?.ok_or(JobError::NotFound(id))
    }

    /// The job once it is final, or as it is when `timeout` runs out.
    pub async fn wait(&self, id: JobId, timeout: Duration) -> Result<JobRecord, JobError> {
        self.completions.wait(id, timeout).await?.ok_or(JobError::NotFound(id))
    }

    /// Stops a job (Sling's `stopJobById`): the record is STOPPED at once, so it is never
    /// retried and a late result is ignored, and the worker running it is told to cancel the
    /// job's token (`offloader.job-stop.v1`), so a cooperative consumer ends within moments
    /// instead of running on for nothing.
    pub async fn stop(&self, id: JobId) -> Result<JobRecord, JobError> {
        let rec = self.ledger.stop(id).await?.ok_or(JobError::NotFound(id))?;
        if rec.state == JobState::Stopped {
            if rec.topic.as_str() == LOCAL_TOPIC {
                // Nobody listening is fine: no local run of it here.
                let _ = self.stops.send(id);
            } else {
                self.broadcast_stop(id, rec.attempt).await;
            }
        }
        self.completions.finished(&rec);
        Ok(rec)
    }

    /// `worker` left while running the job's detached attempt: the job fails that attempt and
    /// waits to be published again (or gives up), see `JobRecord::worker_gone`.
    pub async fn worker_gone(&self, id: JobId, worker: InstanceId) -> Result<JobRecord, JobError> {
        let rec = self.ledger.worker_gone(id, worker).await?.ok_or(JobError::NotFound(id))?;
        self.completions.finished(&rec);
        Ok(rec)
    }

    /// The ids of jobs stopped from now on, for whoever runs jobs in this process.
    pub fn stops(&self) -> tokio::sync::broadcast::Receiver<JobId> {
        self.stops.subscribe()
    }

    /// Tells every worker to stop `id` if it runs it. Best effort: the record is STOPPED
    /// whatever happens here, and a worker that misses the stop finishes a result that is
    /// ignored.
    async fn broadcast_stop(&self, id: JobId, attempt: u32) {
        let names = self.broker().names();
        let body = match serde_json::to_vec(&JobStop::new(id, attempt)) {
            Ok(b) => b,
            Err(e) => return tracing::error!(job = %id, error = %e, "cannot encode a job stop"),
        };
        let mut out = Outgoing::new(names.control_exchange(), BROADCAST_KEY, JOB_STOP_SCHEMA, body);
        out.persistent = false;
        match self.publisher.publish_once(&out).await {
            Ok(()) => tracing::info!(job = %id, "stop sent to the workers"),
            // No worker listens for broadcasts: none can be running it.
            Err(BrokerError::Unroutable { .. }) => tracing::info!(job = %id, "stop: no worker is listening"),
            Err(e) => {
                tracing::warn!(job = %id, error = %e, "stop not sent to the workers; a late result will be ignored")
            }
        }
    }

    /// Runs a GIVEN_UP, ERROR or STOPPED job again under the same id, its attempts counted
    /// afresh (Sling's `retryJobById`; see `JobRecord::retry` for why the id stays).
    pub async fn retry(&self, id: JobId) -> Result<JobRecord, JobError> {
        let current = self.get(id).await?;
        if current.topic.as_str() == LOCAL_TOPIC {
            return Err(JobError::Conflict(
                id,
                current.state,
                "the leader ran this workflow itself; reprocess its asset instead",
            ));
        }
        let (effect, rec) = self.ledger.retry(id).await?.ok_or(JobError::NotFound(id))?;
        if let Effect::Ignored(why) = effect {
            return Err(JobError::Conflict(id, rec.state, why));
        }
        self.metrics.retries.inc();
        tracing::info!(job = %id, attempt = rec.publish_attempt(), "job retried by a user");
        match self.publish(&rec).await {
            Ok(()) => Ok(self.ledger.confirm_published(id, rec.publish_attempt()).await?.unwrap_or(rec)),
            Err(e) => {
                // QUEUED and due: the republisher publishes it once the broker is back.
                tracing::warn!(job = %id, error = %e, "retried job not yet published; will retry");
                Ok(rec)
            }
        }
    }

    /// Retries the jobs `query` selects (GIVEN_UP, ERROR and STOPPED ones only; those when the
    /// query names no state), one page of them: its `limit`, newest first, from its cursor.
    /// Returns the jobs retried and the cursor of the rest, if any. A retried job keeps its id,
    /// so walking on from the cursor never meets it again, even if it fails again meanwhile.
    pub async fn retry_matching(&self, mut query: JobQuery) -> Result<(Vec<JobRecord>, Option<JobId>), JobError> {
        const RETRIABLE: [JobState; 3] = [JobState::GivenUp, JobState::Error, JobState::Stopped];
        if let Some(bad) = query.states.iter().find(|s| !RETRIABLE.contains(s)) {
            return Err(JobError::Invalid(format!("{bad} jobs cannot be retried; only GIVEN_UP, ERROR and STOPPED")));
        }
        if query.states.is_empty() {
            query.states = RETRIABLE.to_vec();
        }
        let page = self.ledger.find(query).await?;
        let mut retried = Vec::new();
        for rec in page.jobs {
            match self.retry(rec.id).await {
                Ok(r) => retried.push(r),
                // Changed or removed meanwhile, or run by the leader itself: not ours to retry.
                Err(JobError::Conflict(..) | JobError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok((retried, page.next))
    }

    /// Removes the jobs `query` selects, one page of them (its `limit`, newest first, from its
    /// cursor), each as [`JobManager::remove`] does: stopped first if it has not finished.
    /// Returns the records as they were and the cursor of the rest, if any.
    pub async fn remove_matching(&self, query: JobQuery) -> Result<(Vec<JobRecord>, Option<JobId>), JobError> {
        let page = self.ledger.find(query).await?;
        let mut removed = Vec::new();
        for rec in page.jobs {
            match self.remove(rec.id).await {
                Ok(r) => removed.push(r),
                // Removed meanwhile (by another user, another leader, retention).
                Err(JobError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok((removed, page.next))
    }

    /// Removes a job from the ledger (Sling's `removeJobById`), stopping it first if it has not
    /// finished. Returns the record as it was.
    pub async fn remove(&self, id: JobId) -> Result<JobRecord, JobError> {
        let rec = self.get(id).await?;
        if !rec.state.is_final() {
            self.stop(id).await?;
        }
        let removed = self.ledger.remove(id).await?.ok_or(JobError::NotFound(id))?;
        tracing::info!(job = %id, state = %removed.state, "job removed");
        Ok(removed)
    }

    pub(super) fn mark_unsent(&self, id: JobId) {
        self.unsent.lock().unwrap_or_else(|e| e.into_inner()).insert(id);
    }

    /// The NEW jobs whose publish is known to have failed; they leave the set here.
    pub(super) fn take_unsent(&self) -> BTreeSet<JobId> {
        std::mem::take(&mut *self.unsent.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub(super) fn metrics(&self) -> &LeaderMetrics {
        &self.metrics
    }
}
