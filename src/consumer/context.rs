//! What a consumer may do besides reading its job: fetch inputs, store outputs, hand back
//! properties, run CPU-bound work off the async threads, and notice it should stop.

use crate::datastore::{BlobStore, DatastoreError};
use crate::protocol::{JobResult, PayloadEntry, Properties};
use bytes::Bytes;
use std::sync::{Arc, Mutex};
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

    /// Fires when the job should end early (the process is stopping hard); long consumers
    /// check it between steps.
    pub fn cancelled(&self) -> &CancellationToken {
        &self.cancel
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
