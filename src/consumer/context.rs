//! What a consumer may do besides reading its job: fetch inputs, store outputs, hand back
//! properties, run CPU-bound work off the async threads, report progress (Sling's
//! `JobExecutionContext`), and notice it should stop.

use crate::datastore::{BlobStore, DatastoreError};
use crate::protocol::{JobResult, PayloadEntry, Progress, Properties};
use bytes::Bytes;
use chrono::Utc;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Limits applied to every job a consumer runs.
#[derive(Debug, Clone, Copy)]
pub struct JobLimits {
    /// Largest input a consumer may fetch into memory.
    pub max_input_bytes: u64,
}

impl Default for JobLimits {
    fn default() -> Self {
        JobLimits { max_input_bytes: 512 * 1024 * 1024 }
    }
}

/// Why a consumer could not read or write a payload.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error(transparent)]
    Datastore(#[from] DatastoreError),
    #[error("input {path:?} is not part of this job")]
    UnknownInput { path: String },
}

impl ContextError {
    /// The result a consumer should return for this error: a corrupt, oversized or missing
    /// input will not get better by retrying. A datastore that cannot be reached is not the
    /// job's fault: the attempt is declined, which spends none of the job's attempts, so an
    /// outage of any length gives no job up; the leader queues it again after a growing delay.
    pub fn into_result(self) -> JobResult {
        match &self {
            ContextError::Datastore(DatastoreError::Corrupt { .. })
            | ContextError::Datastore(DatastoreError::TooLarge { .. })
            | ContextError::Datastore(DatastoreError::NotFound { .. })
            | ContextError::UnknownInput { .. } => JobResult::cancel(self.to_string()),
            ContextError::Datastore(DatastoreError::Unreachable { .. }) => JobResult::declined(self.to_string()),
            _ => JobResult::failed(self.to_string()),
        }
    }
}

/// One job's working context. Outputs and properties accumulate here and are collected by
/// whoever runs the consumer ([`Context::into_results`]).
pub struct Context {
    store: Arc<dyn BlobStore>,
    limits: JobLimits,
    outputs: Mutex<Vec<PayloadEntry>>,
    properties: Mutex<Properties>,
    cancel: CancellationToken,
    /// The latest progress; whoever runs the job decides how often to pass it on (a worker
    /// coalesces it onto the reply queue), so reporting costs a consumer nothing.
    progress: watch::Sender<Option<Progress>>,
}

impl Context {
    pub fn new(store: Arc<dyn BlobStore>, limits: JobLimits, cancel: CancellationToken) -> Self {
        Context {
            store,
            limits,
            outputs: Mutex::new(Vec::new()),
            properties: Mutex::new(Properties::new()),
            cancel,
            progress: watch::channel(None).0,
        }
    }

    /// An input's bytes, verified against its hash.
    pub async fn input_bytes(&self, entry: &PayloadEntry) -> Result<Bytes, ContextError> {
        Ok(self.store.get_bytes(&entry.blob, self.limits.max_input_bytes).await?)
    }

    /// Streams an input to a file, for inputs too large to hold in memory.
    pub async fn input_to_file(&self, entry: &PayloadEntry, dest: &std::path::Path) -> Result<(), ContextError> {
        Ok(self.store.get_to_file(&entry.blob, dest).await?)
    }

    /// Stores an output and records it in the job's output payload.
    pub async fn store_output(
        &self,
        path: impl Into<String>,
        bytes: Bytes,
        mime_type: Option<String>,
    ) -> Result<PayloadEntry, ContextError> {
        let stored = self.store.put_bytes(bytes).await?;
        let entry = PayloadEntry { path: path.into(), blob: stored.blob, mime_type };
        lock(&self.outputs).push(entry.clone());
        Ok(entry)
    }

    /// Records a property to hand back to the leader (metadata, measurements).
    pub fn set_property(&self, name: impl Into<String>, value: impl Into<serde_json::Value>) {
        lock(&self.properties).insert(name.into(), value.into());
    }

    /// Runs CPU-bound work on the blocking pool. The worker's concurrency limit bounds how
    /// many jobs, and so how many such tasks, run at once.
    pub async fn run_blocking<F, R>(&self, f: F) -> Result<R, JobResult>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        tokio::task::spawn_blocking(f).await.map_err(|e| JobResult::failed(format!("processing task failed: {e}")))
    }

    /// Fires when the job should end early: a user stopped it (`offloader job stop`), or the
    /// process is stopping hard. Long consumers check it between steps, or `select!` on
    /// `cancelled().cancelled()` while they wait; what they return then is ignored.
    pub fn cancelled(&self) -> &CancellationToken {
        &self.cancel
    }

    /// Whether the job should end early (see [`Context::cancelled`]): Sling's
    /// `JobExecutionContext.isStopped()`.
    pub fn is_stopped(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Announces the job's work as `steps` steps, expected to end within `eta` if given: Sling's
    /// `initProgress`. Resets the steps done.
    pub fn init_progress(&self, steps: u64, eta: Option<Duration>) {
        let eta = eta.and_then(|d| chrono::Duration::from_std(d).ok()).map(|d| Utc::now() + d);
        self.report(|p| {
            p.steps = Some(steps);
            p.done = 0;
            p.eta = eta;
        });
    }

    /// Counts `n` more steps done (at most the steps announced): Sling's `incrementProgress`.
    pub fn increment_progress(&self, n: u64) {
        self.report(|p| {
            p.done = p.done.saturating_add(n);
            if let Some(steps) = p.steps {
                p.done = p.done.min(steps);
            }
        });
    }

    /// Changes when the job expects to end: Sling's `updateProgress`.
    pub fn update_eta(&self, eta: Duration) {
        let eta = chrono::Duration::from_std(eta).ok().map(|d| Utc::now() + d);
        self.report(|p| p.eta = eta);
    }

    /// A line for people watching the job (the record keeps the last few): Sling's `log`.
    pub fn log(&self, message: impl AsRef<str>) {
        self.report(|p| p.push_log(message.as_ref()));
    }

    /// The job's progress as it changes, for whoever passes it on.
    pub fn progress_updates(&self) -> watch::Receiver<Option<Progress>> {
        self.progress.subscribe()
    }

    /// The latest progress, if the consumer reported any.
    pub fn progress(&self) -> Option<Progress> {
        self.progress.borrow().clone()
    }

    fn report(&self, change: impl FnOnce(&mut Progress)) {
        self.progress.send_modify(|current| {
            let p = current.get_or_insert_with(|| Progress { updated_at: Utc::now(), ..Progress::default() });
            change(p);
            p.updated_at = Utc::now();
        });
    }

    /// The outputs stored and the properties set, for the completion.
    pub fn into_results(self) -> (Vec<PayloadEntry>, Properties) {
        let outputs = self.outputs.into_inner().unwrap_or_else(|e| e.into_inner());
        let properties = self.properties.into_inner().unwrap_or_else(|e| e.into_inner());
        (outputs, properties)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
