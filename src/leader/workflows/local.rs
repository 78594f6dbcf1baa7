//! The leader running a workflow itself: AEM's plain "DAM Update Asset", without offloading.
//!
//! A launcher whose model has no offload step runs it here, with the very
//! [`WorkflowConsumer`] a worker runs, so the two ways are comparable and an asset looks the
//! same whichever processed it. The run is still a job in the ledger (topic
//! [`LOCAL_TOPIC`](crate::protocol::workflow::LOCAL_TOPIC), ACTIVE on this leader, one
//! attempt): the asset shows its workflow and state, `job get` finds it, and its completion
//! goes through the same [`Completions`] path as a worker's, renditions and all.
//!
//! Engine runs are CPU-bound and the leader also serves users, so at most `concurrency` run at
//! once, on blocking threads; a waiting run holds no image bytes. On shutdown, waiting runs are
//! left ACTIVE and [`LocalRunner::resume`] starts them again at the next start, as it does for
//! runs a crash interrupted.

use crate::consumer::{Context, JobConsumer, JobLimits, WorkflowConsumer};
use crate::datastore::BlobStore;
use crate::leader::jobs::{JobError, JobManager, NewJob};
use crate::leader::ledger::JobQuery;
use crate::protocol::api::{JobRecord, WorkerRef};
use crate::protocol::message::{Completion, Reply};
use crate::protocol::workflow::local_topic;
use crate::protocol::{JobResult, JobState};
use chrono::Utc;
use std::sync::Arc;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How the leader runs workflows itself.
#[derive(Debug, Clone, Copy)]
pub struct LocalConfig {
    /// Engine runs at once (each takes one core while it runs).
    pub concurrency: usize,
    /// Originals larger than this are refused, as a worker's `--max-input-bytes` does.
    pub max_input_bytes: u64,
}

impl Default for LocalConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        LocalConfig { concurrency: cores, max_input_bytes: JobLimits::default().max_input_bytes }
    }
}

pub struct LocalRunner {
    jobs: Arc<JobManager>,
    store: Arc<dyn BlobStore>,
    consumer: WorkflowConsumer,
    /// This leader, named as the "worker" of its local jobs.
    me: WorkerRef,
    config: LocalConfig,
    permits: Arc<Semaphore>,
    tracker: TaskTracker,
    cancel: CancellationToken,
}

impl LocalRunner {
    pub fn new(
        jobs: Arc<JobManager>,
        store: Arc<dyn BlobStore>,
        consumer: WorkflowConsumer,
        me: WorkerRef,
        config: LocalConfig,
        cancel: CancellationToken,
    ) -> Arc<Self> {
        let permits = Arc::new(Semaphore::new(config.concurrency.max(1)));
        Arc::new(LocalRunner { jobs, store, consumer, me, config, permits, tracker: TaskTracker::new(), cancel })
    }

    /// Records the job and starts running it; returns at once with the ACTIVE record.
    pub async fn start(self: &Arc<Self>, new: NewJob) -> Result<JobRecord, JobError> {
        let rec = self.jobs.record_local(new, self.me.clone()).await?;
        self.spawn(rec.clone());
        Ok(rec)
    }

    /// Starts again the unfinished local jobs `which` selects (this leader's own after a restart,
    /// or those of leaders that are gone): they are never published, so nothing else would ever
    /// finish them.
    pub async fn resume(self: &Arc<Self>, which: impl Fn(&JobRecord) -> bool) -> Result<usize, JobError> {
        let query = JobQuery {
            states: vec![JobState::New, JobState::Queued, JobState::Active],
            topic: Some((&local_topic()).into()),
            limit: 100_000,
            ..Default::default()
        };
        let mut pending = self.jobs.ledger().list(query).await?;
        pending.retain(|rec| which(rec));
        pending.reverse(); // oldest first
        let n = pending.len();
        for rec in pending {
            tracing::info!(job = %rec.id, "resuming a local workflow the previous run did not finish");
            self.spawn(rec);
        }
        Ok(n)
    }

    /// Waits for the runs under way; runs still waiting for a turn stay ACTIVE for the next
    /// start. Call after the cancel token fired.
    pub async fn finished(&self) {
        self.tracker.close();
        self.tracker.wait().await;
    }

    fn spawn(self: &Arc<Self>, rec: JobRecord) {
        let me = self.clone();
        self.tracker.spawn(async move {
            let _permit = tokio::select! {
                _ = me.cancel.cancelled() => return,
                permit = me.permits.clone().acquire_owned() => match permit {
                    Ok(p) => p,
                    Err(_) => return,
                },
            };
            let reply = me.run(&rec).await;
            match me.jobs.completions().apply(vec![reply]).await {
                Ok(applied) => {
                    tracing::info!(job = %rec.id, outcome = ?applied.first().map(outcome), "local workflow finished")
                }
                // The record stays ACTIVE and the next start runs it again.
                Err(e) => tracing::error!(job = %rec.id, error = %e, "cannot record a local workflow's result"),
            }
        });
    }

    /// Runs the workflow consumer on the job, as a worker would, and returns its completion.
    async fn run(&self, rec: &JobRecord) -> Reply {
        let started_at = Utc::now();
        let limits = JobLimits { max_input_bytes: self.config.max_input_bytes };
        // The run's own token: the leader stopping, or a user stopping this job, cancels it.
        let token = self.cancel.child_token();
        let stop_watch = {
            let (token, id, mut stops) = (token.clone(), rec.id, self.jobs.stops());
            tokio::spawn(async move {
                loop {
                    match stops.recv().await {
                        Ok(stopped) if stopped == id => return token.cancel(),
                        Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                    }
                }
            })
        };
        let ctx = Context::new(self.store.clone(), limits, token);
        let processed = self.consumer.process(&rec.job(), &ctx).await;
        stop_watch.abort();
        let result = match processed {
            // No other process will take it: what a worker would decline fails here.
            JobResult::Declined { reason } => JobResult::cancel(reason),
            other => other,
        };
        let (outputs, properties) = ctx.into_results();
        Reply::Completion(Completion {
            job_id: rec.id,
            attempt: rec.attempt,
            worker: self.me.id,
            worker_name: self.me.name.clone(),
            result,
            outputs,
            properties,
            started_at,
            finished_at: Utc::now(),
            redeliveries: 0,
        })
    }
}

fn outcome(applied: &crate::leader::jobs::Applied) -> String {
    match applied {
        crate::leader::jobs::Applied::Changed(rec) => rec.state.to_string(),
        crate::leader::jobs::Applied::Ignored(_, why) => format!("ignored: {why}"),
        crate::leader::jobs::Applied::Unknown(_) => "unknown job".into(),
    }
}
