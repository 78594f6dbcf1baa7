//! `JobManager`: how jobs are created and published (Sling's `JobManager.addJob`).
//!
//! The order of [`JobManager::add_job`] is the guarantee: record first, publish with a confirm
//! second, mark QUEUED third. A crash after the record but before the confirm leaves a NEW job
//! that the republisher sends on restart, so a job is never lost; a crash after the publish but
//! before the mark may send it twice, which the idempotent ledger absorbs.

use super::completions::Completions;
use super::metrics::LeaderMetrics;
use crate::broker::{Broker, BrokerError, Outgoing, Publisher, Setup};
use crate::leader::ledger::{Ledger, LedgerError};
use crate::protocol::api::{JobRecord, WorkerRef};
use crate::protocol::message::{JobMessage, JOB_SCHEMA};
use crate::protocol::trace::{TraceContext, TRACEPARENT};
use crate::protocol::workflow::{local_topic, LOCAL_TOPIC};
use crate::protocol::{InstanceId, Job, JobId, JobState, PayloadEntry, Properties, Topic};
use chrono::Utc;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Mutex};

/// The most attempts a job may ask for: enough for any retry policy, few enough that a typo
/// cannot keep a failing job alive for years.
pub const MAX_ATTEMPTS: u32 = 1000;

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
            Ok(()) => Ok(self.ledger.confirm_published(rec.id, rec.attempt).await?.unwrap_or(rec)),
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
            Ok(()) => Ok(self.ledger.confirm_published(rec.id, rec.attempt).await?.unwrap_or(rec)),
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
        let max_attempts = new.max_attempts.unwrap_or(self.completions.policy().max_attempts);
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
        current.declare_topic_queue(topic).await?;
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

    pub async fn stop(&self, id: JobId) -> Result<JobRecord, JobError> {
        let rec = self.ledger.stop(id).await?.ok_or(JobError::NotFound(id))?;
        self.completions.finished(&rec);
        Ok(rec)
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
