//! `JobManager`: how jobs are created, published and published again.
//!
//! The order of `add_job` is the guarantee: record first, publish with a confirm
//! second, mark QUEUED third. A crash after the record but before the confirm
//! leaves a NEW job that the republisher sends on restart, so a job is never
//! lost; a crash after the publish but before the mark may send it twice, which
//! the idempotent ledger absorbs.

use super::ledger::{Ledger, LedgerError};
use super::metrics::{LeaderMetrics, StateLabels};
use super::record::{Effect, JobRecord, RetryPolicy, WorkerRef};
use super::waiters::Waiters;
use crate::broker::{Broker, BrokerError, Channel, Outgoing, Publisher};
use crate::protocol::message::{JobMessage, Reply, JOB_SCHEMA};
use crate::protocol::workflow::{local_topic, LOCAL_TOPIC};
use crate::protocol::{Job, JobId, JobState, PayloadEntry, Properties, Topic};
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
}

/// What a caller provides to create a job.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub topic: Topic,
    pub properties: Properties,
    pub inputs: Vec<PayloadEntry>,
    /// Overrides the leader's retry policy for this job.
    pub max_attempts: Option<u32>,
}

impl NewJob {
    pub fn new(topic: Topic) -> Self {
        NewJob { topic, properties: Properties::new(), inputs: vec![], max_attempts: None }
    }
}

pub struct JobManager {
    ledger: Ledger,
    publisher: Arc<Publisher>,
    broker: Broker,
    policy: RetryPolicy,
    waiters: Waiters,
    metrics: LeaderMetrics,
    /// Topics whose queue this process has declared; announced to workers.
    topics: watch::Sender<BTreeSet<Topic>>,
    setup: Mutex<Option<Channel>>,
    /// NEW jobs whose publish failed (RabbitMQ away): the republisher sends them on its next
    /// round rather than after the grace it gives publishes that may still be in progress.
    unsent: std::sync::Mutex<BTreeSet<JobId>>,
}

impl JobManager {
    pub(crate) async fn new(
        ledger: Ledger,
        publisher: Arc<Publisher>,
        policy: RetryPolicy,
        metrics: LeaderMetrics,
    ) -> Result<Self, JobError> {
        let broker = publisher.broker().clone();
        let known: BTreeSet<Topic> = ledger.topics().await?.into_iter().collect();
        let manager = JobManager {
            ledger,
            publisher,
            broker,
            policy,
            waiters: Waiters::default(),
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

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    pub fn policy(&self) -> RetryPolicy {
        self.policy
    }

    pub(crate) fn metrics(&self) -> &LeaderMetrics {
        &self.metrics
    }

    /// Topics with a declared queue, updated as new topics appear.
    pub fn topics(&self) -> watch::Receiver<BTreeSet<Topic>> {
        self.topics.subscribe()
    }

    /// Creates a job: records it, publishes it with a confirm, marks it QUEUED.
    /// If the broker is away, the job stays NEW and is published when it returns.
    pub async fn add_job(&self, new: NewJob) -> Result<JobRecord, JobError> {
        if new.topic.as_str() == LOCAL_TOPIC {
            return Err(JobError::Invalid(format!(
                "topic {LOCAL_TOPIC} is reserved for workflows the leader runs itself"
            )));
        }
        let job = self.job(new)?;
        self.ensure_topic(&job.topic).await?;
        let rec = JobRecord::new(&job, Utc::now());
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

    fn job(&self, new: NewJob) -> Result<Job, JobError> {
        let max_attempts = new.max_attempts.unwrap_or(self.policy.max_attempts);
        if max_attempts == 0 {
            return Err(JobError::Invalid("max_attempts must be at least 1".into()));
        }
        Ok(Job {
            id: JobId::new(),
            topic: new.topic,
            properties: new.properties,
            inputs: new.inputs,
            attempt: 1,
            max_attempts,
        })
    }

    /// Records a job the leader runs itself, on [`LOCAL_TOPIC`], as already ACTIVE on
    /// `runner`: it is never published, and one attempt is all it gets (a retry would run the
    /// same bytes through the same engine again).
    pub async fn record_local(&self, mut new: NewJob, runner: WorkerRef) -> Result<JobRecord, JobError> {
        new.topic = local_topic();
        new.max_attempts = Some(1);
        let job = self.job(new)?;
        let now = Utc::now();
        let mut rec = JobRecord::new(&job, now);
        rec.state = JobState::Active;
        rec.queued_at = Some(now);
        rec.started_at = Some(now);
        rec.worker = Some(runner);
        self.ledger.insert(rec.clone()).await?;
        self.metrics.jobs_submitted.inc();
        Ok(rec)
    }

    /// Applies the completion of a job the leader ran itself, exactly as a worker's would be.
    pub async fn complete_local(&self, reply: Reply) -> Result<Option<JobRecord>, JobError> {
        let mut applied = self.ledger.apply_replies(vec![reply], self.policy).await?;
        Ok(match applied.pop().and_then(|(_, outcome)| outcome) {
            Some((Effect::Applied, rec)) => {
                self.job_finished(&rec);
                Some(rec)
            }
            Some((Effect::Ignored(why), rec)) => {
                tracing::info!(job = %rec.id, why, "local completion ignored");
                Some(rec)
            }
            None => None,
        })
    }

    /// Publishes the record's current attempt (or the next one, for a failed job).
    async fn publish(&self, rec: &JobRecord) -> Result<(), BrokerError> {
        let mut job = rec.job();
        if rec.state == JobState::Failed {
            job.attempt += 1;
        }
        let names = self.broker.names();
        let reply_to = names.replies_queue();
        let msg = JobMessage::new(job, reply_to.clone(), rec.created_at);
        let body = serde_json::to_vec(&msg)?;
        let mut out = Outgoing::new(names.jobs_exchange(), rec.topic.routing_key(), JOB_SCHEMA, body);
        out.message_id = Some(rec.id.to_string());
        out.reply_to = Some(reply_to);
        match self.publisher.publish(&out).await {
            Err(BrokerError::Unroutable { .. }) => {
                // Someone deleted the queue: declare it again rather than lose the job.
                self.forget_topic(&rec.topic).await;
                self.ensure_topic(&rec.topic).await.map_err(|e| match e {
                    JobError::Broker(b) => b,
                    other => BrokerError::Pool(other.to_string()),
                })?;
                self.publisher.publish(&out).await
            }
            other => other,
        }
    }

    /// Declares the topic's queue before its first job, so a job nobody consumes
    /// yet waits in its queue instead of being dropped by the exchange.
    async fn ensure_topic(&self, topic: &Topic) -> Result<(), JobError> {
        if self.topics.borrow().contains(topic) {
            return Ok(());
        }
        let mut setup = self.setup.lock().await;
        let ch = match setup.as_ref() {
            Some(ch) if ch.status().connected() => ch.clone(),
            _ => {
                let ch = self.broker.try_channel().await?;
                *setup = Some(ch.clone());
                ch
            }
        };
        if let Err(e) = self.broker.declare_topic_queue(&ch, topic).await {
            *setup = None;
            return Err(e.into());
        }
        self.ledger.add_topic(topic.clone()).await?;
        self.topics.send_modify(|t| {
            t.insert(topic.clone());
        });
        tracing::info!(%topic, queue = %self.broker.names().topic_queue(topic), "topic queue declared");
        Ok(())
    }

    async fn forget_topic(&self, topic: &Topic) {
        self.topics.send_modify(|t| {
            t.remove(topic);
        });
    }

    pub async fn get(&self, id: JobId) -> Result<JobRecord, JobError> {
        self.ledger.get(id).await?.ok_or(JobError::NotFound(id))
    }

    /// The job once it is final, or as it is when `timeout` runs out.
    pub async fn wait(&self, id: JobId, timeout: Duration) -> Result<JobRecord, JobError> {
        let rx = self.waiters.register(id);
        let rec = self.get(id).await?;
        if rec.state.is_final() {
            self.waiters.forget(id);
            return Ok(rec);
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(rec)) => Ok(rec),
            _ => {
                self.waiters.forget(id);
                self.get(id).await
            }
        }
    }

    pub async fn stop(&self, id: JobId) -> Result<JobRecord, JobError> {
        let rec = self.ledger.stop(id).await?.ok_or(JobError::NotFound(id))?;
        self.job_finished(&rec);
        Ok(rec)
    }

    /// Called once a record's final state is committed.
    pub(crate) fn job_finished(&self, rec: &JobRecord) {
        if rec.state.is_final() {
            self.metrics.jobs_finished.get_or_create(&StateLabels { state: rec.state.to_string() }).inc();
            if let Some(done) = rec.finished_at {
                let secs = (done - rec.created_at).num_microseconds().unwrap_or(0) as f64 / 1e6;
                self.metrics.job_seconds.observe(secs.max(0.0));
            }
            self.waiters.finished(rec);
        }
    }

    fn mark_unsent(&self, id: JobId) {
        self.unsent.lock().unwrap_or_else(|e| e.into_inner()).insert(id);
    }

    /// The ledger's due jobs, plus the NEW jobs whose publish is known to have failed. Those
    /// leave the unsent set here; a failed republish puts them back.
    async fn due_now(
        &self,
        now: chrono::DateTime<Utc>,
        unconfirmed_before: chrono::DateTime<Utc>,
    ) -> Result<Vec<JobRecord>, LedgerError> {
        let unsent = std::mem::take(&mut *self.unsent.lock().unwrap_or_else(|e| e.into_inner()));
        let mut due = self.ledger.due(now, unconfirmed_before).await?;
        for id in unsent {
            if due.iter().any(|r| r.id == id) {
                continue;
            }
            match self.ledger.get(id).await {
                Ok(Some(rec)) if rec.state == JobState::New => due.push(rec),
                Ok(_) => {}
                Err(e) => {
                    self.mark_unsent(id);
                    return Err(e);
                }
            }
        }
        Ok(due)
    }

    /// Publishes failed jobs whose retry delay has passed, and jobs that were
    /// recorded but never confirmed. Runs until `cancel` fires.
    pub async fn republish_loop(self: Arc<Self>, every: Duration, cancel: tokio_util::sync::CancellationToken) {
        // At start, any NEW job is left over from a previous run.
        let mut unconfirmed_grace = chrono::Duration::zero();
        loop {
            let now = Utc::now();
            match self.due_now(now, now - unconfirmed_grace).await {
                Ok(due) => {
                    for (i, rec) in due.iter().enumerate() {
                        let next_attempt = if rec.state == JobState::Failed { rec.attempt + 1 } else { rec.attempt };
                        match self.publish(rec).await {
                            Ok(()) => {
                                if rec.state == JobState::Failed {
                                    self.metrics.retries.inc();
                                    tracing::info!(job = %rec.id, attempt = next_attempt, "retrying job");
                                }
                                if let Err(e) = self.ledger.confirm_published(rec.id, next_attempt).await {
                                    tracing::error!(job = %rec.id, error = %e, "could not record publish");
                                }
                            }
                            Err(e) => {
                                tracing::warn!(job = %rec.id, error = %e, "republish failed; will try again");
                                // The broker is away: this job and the NEW ones not tried yet
                                // go first once it is back.
                                for left in due[i..].iter().filter(|r| r.state == JobState::New) {
                                    self.mark_unsent(left.id);
                                }
                                break;
                            }
                        }
                    }
                }
                Err(e) => tracing::error!(error = %e, "cannot read due jobs"),
            }
            // Later rounds leave in-progress submissions alone.
            unconfirmed_grace = chrono::Duration::seconds(40);
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
        }
    }
}
