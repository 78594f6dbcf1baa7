//! The leader running a workflow itself: AEM's plain "DAM Update Asset", without offloading.
//!
//! A launcher whose model has no offload step runs it here, with the same engine and the same
//! [`Plan`] a worker uses, so the two ways are comparable and an asset looks the same whichever
//! processed it. The run is still a job in the ledger (topic [`LOCAL_TOPIC`](crate::protocol::workflow::LOCAL_TOPIC), ACTIVE on this
//! leader, one attempt): the asset shows its workflow and state, `job get` finds it, and its
//! completion goes through the very transaction that applies a worker's, renditions and all.
//!
//! Engine runs are CPU-bound and the leader also serves users, so at most `concurrency` run at
//! once, on blocking threads; a waiting run holds no image bytes. On shutdown, waiting runs are
//! left ACTIVE and [`LocalRunner::resume`] starts them again at the next start, as it does for
//! runs a crash interrupted.

use super::job_manager::{JobError, JobManager, NewJob};
use super::record::{JobRecord, WorkerRef};
use crate::datastore::BlobStore;
use crate::processing::Plan;
use crate::protocol::message::{Completion, Reply};
use crate::protocol::workflow::{carried_model, WORKFLOW_MODEL_DEFINITION, WORKFLOW_PAYLOAD};
use crate::protocol::{AssetPath, JobResult, PayloadEntry, Properties};
use chrono::Utc;
use offloader_renditions::Limits;
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
    pub limits: Limits,
}

impl Default for LocalConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        LocalConfig { concurrency: cores, max_input_bytes: 512 * 1024 * 1024, limits: Limits::default() }
    }
}

pub struct LocalRunner {
    jobs: Arc<JobManager>,
    store: Arc<dyn BlobStore>,
    /// This leader, named as the "worker" of its local jobs.
    me: WorkerRef,
    config: LocalConfig,
    permits: Arc<Semaphore>,
    tracker: TaskTracker,
    cancel: CancellationToken,
}

/// What one run produced, before it becomes a completion.
struct Ran {
    result: JobResult,
    outputs: Vec<PayloadEntry>,
    properties: Properties,
}

impl Ran {
    fn ended(result: JobResult) -> Ran {
        Ran { result, outputs: Vec::new(), properties: Properties::new() }
    }
}

impl LocalRunner {
    pub fn new(
        jobs: Arc<JobManager>,
        store: Arc<dyn BlobStore>,
        me: WorkerRef,
        config: LocalConfig,
        cancel: CancellationToken,
    ) -> Arc<Self> {
        let permits = Arc::new(Semaphore::new(config.concurrency.max(1)));
        Arc::new(LocalRunner { jobs, store, me, config, permits, tracker: TaskTracker::new(), cancel })
    }

    /// Records the job and starts running it; returns at once with the ACTIVE record.
    pub async fn start(self: &Arc<Self>, new: NewJob) -> Result<JobRecord, JobError> {
        let rec = self.jobs.record_local(new, self.me.clone()).await?;
        self.spawn(rec.clone());
        Ok(rec)
    }

    /// Starts again the local jobs a previous run of the leader did not finish.
    pub async fn resume(self: &Arc<Self>) -> Result<usize, JobError> {
        let pending = self.jobs.ledger().unfinished_local().await?;
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
            let started_at = Utc::now();
            let ran = me.run(&rec).await;
            let reply = Reply::Completion(Completion {
                job_id: rec.id,
                attempt: rec.attempt,
                worker: me.me.id,
                worker_name: me.me.name.clone(),
                result: ran.result,
                outputs: ran.outputs,
                properties: ran.properties,
                started_at,
                finished_at: Utc::now(),
                redeliveries: 0,
            });
            match me.jobs.complete_local(reply).await {
                Ok(Some(done)) => tracing::info!(job = %done.id, state = %done.state, "local workflow finished"),
                Ok(None) => tracing::warn!(job = %rec.id, "local job vanished from the ledger"),
                // The record stays ACTIVE and the next start runs it again.
                Err(e) => tracing::error!(job = %rec.id, error = %e, "cannot record a local workflow's result"),
            }
        });
    }

    async fn run(&self, rec: &JobRecord) -> Ran {
        let plan = match carried_model(&rec.properties) {
            Some(Ok(model)) => match Plan::of(&model) {
                Ok(p) => p,
                Err(e) => return Ran::ended(JobResult::cancel(e.to_string())),
            },
            Some(Err(reason)) => return Ran::ended(JobResult::cancel(reason)),
            None => return Ran::ended(JobResult::cancel(format!("a local job needs {WORKFLOW_MODEL_DEFINITION}"))),
        };
        let Some(path) =
            rec.properties.get(WORKFLOW_PAYLOAD).and_then(|p| p.as_str()).and_then(|p| AssetPath::parse(p).ok())
        else {
            return Ran::ended(JobResult::cancel(format!("a local job needs a valid {WORKFLOW_PAYLOAD}")));
        };
        let Some(input) = rec.inputs.iter().find(|i| i.path == path.as_str()) else {
            return Ran::ended(JobResult::cancel(format!("the job carries no input for {path}")));
        };
        let bytes = match self.store.get_bytes(&input.blob, self.config.max_input_bytes).await {
            Ok(b) => b,
            Err(e) if e.is_transient() => return Ran::ended(JobResult::failed(format!("reading the original: {e}"))),
            Err(e) => return Ran::ended(JobResult::cancel(format!("reading the original: {e}"))),
        };
        let limits = self.config.limits;
        let processed = match tokio::task::spawn_blocking(move || plan.run(&bytes, &limits)).await {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => return Ran::ended(JobResult::cancel(format!("{path}: {e}"))),
            Err(e) => return Ran::ended(JobResult::failed(format!("the renditions engine stopped: {e}"))),
        };
        let properties = processed.properties();
        let mut outputs = Vec::with_capacity(processed.renditions.len());
        for r in processed.renditions {
            match self.store.put_bytes(r.bytes.into()).await {
                Ok(stored) => outputs.push(PayloadEntry {
                    path: path.rendition_path(&r.name),
                    blob: stored.blob,
                    mime_type: Some(r.mime_type.to_owned()),
                }),
                Err(e) => return Ran::ended(JobResult::failed(format!("storing rendition {}: {e}", r.name))),
            }
        }
        Ran { result: JobResult::Ok, outputs, properties }
    }
}
