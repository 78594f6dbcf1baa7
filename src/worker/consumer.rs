//! The `JobConsumer` trait: what a worker runs for a job.
//!
//! The recipe is Sling's: choose a topic, implement a consumer, register it on
//! the worker, enable the topic. A consumer sees the [`Job`] (typed property
//! access, input references) and a [`Context`] that fetches inputs and stores
//! outputs; it never sees RabbitMQ or S3.
//!
//! ```
//! use offloader::protocol::{Job, JobResult};
//! use offloader::worker::{ConsumerRegistry, Context, JobConsumer};
//!
//! /// Counts the bytes of each input.
//! struct Measure;
//!
//! #[async_trait::async_trait]
//! impl JobConsumer for Measure {
//!     async fn process(&self, job: &Job, ctx: &Context) -> JobResult {
//!         for input in &job.inputs {
//!             match ctx.input_bytes(input).await {
//!                 Ok(bytes) => ctx.set_property(format!("size:{}", input.path), bytes.len()),
//!                 // A corrupt input becomes CANCEL, an unreachable datastore FAILED (retried).
//!                 Err(e) => return e.into_result(),
//!             }
//!         }
//!         JobResult::Ok
//!     }
//! }
//!
//! let mut registry = ConsumerRegistry::new();
//! registry.register("acme/measure".parse().unwrap(), Measure);
//! let topic = "acme/measure".parse().unwrap();
//! assert!(registry.resolve(&topic).is_some());
//! ```

use crate::datastore::{BlobStore, DatastoreError};
use crate::protocol::{Job, JobResult, PayloadEntry, Properties};
use bytes::Bytes;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

#[async_trait::async_trait]
pub trait JobConsumer: Send + Sync + 'static {
    /// Processes one job. Return `JobResult::failed` for a transient problem (the
    /// leader retries later), `JobResult::cancel` when retrying cannot help.
    ///
    /// CPU-heavy work belongs in [`Context::run_blocking`], so it does not stall
    /// the async threads that move other jobs' messages.
    async fn process(&self, job: &Job, ctx: &Context) -> JobResult;
}

/// Limits a worker applies to every job.
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
    /// The result a consumer should return for this error: a corrupt or oversized
    /// input will not get better by retrying; an unreachable datastore may.
    pub fn into_result(self) -> JobResult {
        match &self {
            ContextError::Datastore(DatastoreError::Corrupt { .. })
            | ContextError::Datastore(DatastoreError::TooLarge { .. })
            | ContextError::Datastore(DatastoreError::NotFound { .. })
            | ContextError::UnknownInput { .. } => JobResult::cancel(self.to_string()),
            _ => JobResult::failed(self.to_string()),
        }
    }
}

/// What a consumer may do besides reading its job.
pub struct Context {
    store: Arc<dyn BlobStore>,
    limits: JobLimits,
    outputs: Mutex<Vec<PayloadEntry>>,
    properties: Mutex<Properties>,
    cancel: CancellationToken,
}

impl Context {
    pub fn new(store: Arc<dyn BlobStore>, limits: JobLimits, cancel: CancellationToken) -> Self {
        Context { store, limits, outputs: Mutex::new(Vec::new()), properties: Mutex::new(Properties::new()), cancel }
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
        self.lock_outputs().push(entry.clone());
        Ok(entry)
    }

    /// Records a property to hand back to the leader (metadata, measurements).
    pub fn set_property(&self, name: impl Into<String>, value: impl Into<serde_json::Value>) {
        self.properties.lock().unwrap_or_else(|e| e.into_inner()).insert(name.into(), value.into());
    }

    /// Runs CPU-bound work on the blocking pool. The worker's concurrency limit
    /// bounds how many jobs, and so how many such tasks, run at once.
    pub async fn run_blocking<F, R>(&self, f: F) -> Result<R, JobResult>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        tokio::task::spawn_blocking(f).await.map_err(|e| JobResult::failed(format!("processing task failed: {e}")))
    }

    /// Fires when the worker is shutting down hard; long consumers may stop early.
    pub fn cancelled(&self) -> &CancellationToken {
        &self.cancel
    }

    pub(crate) fn take_outputs(&self) -> (Vec<PayloadEntry>, Properties) {
        let outputs = std::mem::take(&mut *self.lock_outputs());
        let props = std::mem::take(&mut *self.properties.lock().unwrap_or_else(|e| e.into_inner()));
        (outputs, props)
    }

    fn lock_outputs(&self) -> std::sync::MutexGuard<'_, Vec<PayloadEntry>> {
        self.outputs.lock().unwrap_or_else(|e| e.into_inner())
    }
}
