//! Running a [`JobConsumer`] in a unit test: inputs from memory, outputs kept in memory, no
//! RabbitMQ, no object store.
//!
//! The consumer gets a real [`Context`] over a [`MemoryBlobStore`], so it fetches, verifies
//! and stores exactly as on a worker; only the transport is missing.
//!
//! ```
//! use offloader::consumer::testing::TestJob;
//! use offloader::consumer::{Context, JobConsumer};
//! use offloader::protocol::{Job, JobResult};
//!
//! struct Upper;
//!
//! #[async_trait::async_trait]
//! impl JobConsumer for Upper {
//!     async fn process(&self, job: &Job, ctx: &Context) -> JobResult {
//!         for input in &job.inputs {
//!             let Ok(bytes) = ctx.input_bytes(input).await else { return JobResult::failed("read") };
//!             let upper = bytes.to_ascii_uppercase();
//!             if let Err(e) = ctx.store_output(format!("{}.upper", input.path), upper.into(), None).await {
//!                 return e.into_result();
//!             }
//!         }
//!         JobResult::Ok
//!     }
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let done = TestJob::on("acme/upper").input("/a.txt", "shout").run(&Upper).await;
//! assert_eq!(done.result, JobResult::Ok);
//! assert_eq!(done.output_bytes("/a.txt.upper").unwrap(), "SHOUT");
//! # });
//! ```

use super::{Context, JobConsumer, JobLimits};
use crate::datastore::MemoryBlobStore;
use crate::protocol::{Job, JobId, JobResult, PayloadEntry, Properties, Topic};
use bytes::Bytes;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// A job to run through a consumer in a test.
pub struct TestJob {
    job: Job,
    store: Arc<MemoryBlobStore>,
    limits: JobLimits,
    cancel: CancellationToken,
}

impl TestJob {
    /// A job on `topic`, attempt 1 of 1, with no properties and no inputs.
    ///
    /// # Panics
    /// When `topic` is not a valid topic: this is test code, and the message says why.
    pub fn on(topic: &str) -> TestJob {
        let topic: Topic = topic.parse().unwrap_or_else(|e| panic!("TestJob::on({topic:?}): {e}"));
        TestJob {
            job: Job {
                id: JobId::new(),
                topic,
                properties: Properties::new(),
                inputs: vec![],
                attempt: 1,
                max_attempts: 1,
                timeout_ms: None,
            },
            store: Arc::new(MemoryBlobStore::new()),
            limits: JobLimits::default(),
            cancel: CancellationToken::new(),
        }
    }

    /// Sets one property (any JSON value).
    pub fn property(mut self, name: &str, value: impl Into<serde_json::Value>) -> TestJob {
        self.job.properties.insert(name.to_owned(), value.into());
        self
    }

    /// Adds every property of `properties`.
    pub fn properties(mut self, properties: Properties) -> TestJob {
        self.job.properties.extend(properties);
        self
    }

    /// Adds an input at `path` holding `bytes` (stored in the in-memory store, referenced by
    /// the job as a worker's inputs are).
    pub fn input(mut self, path: &str, bytes: impl Into<Bytes>) -> TestJob {
        let blob = self.store.insert(bytes.into());
        let mime_type = mime_guess::from_path(path).first().map(|m| m.essence_str().to_owned());
        self.job.inputs.push(PayloadEntry { path: path.to_owned(), blob, mime_type });
        self
    }

    /// Limits the inputs a consumer may load, as a worker's `--max-input-bytes` does.
    pub fn max_input_bytes(mut self, max: u64) -> TestJob {
        self.limits.max_input_bytes = max;
        self
    }

    /// The job as it will be handed to the consumer, to adjust anything else.
    pub fn job_mut(&mut self) -> &mut Job {
        &mut self.job
    }

    /// A token that, when cancelled, asks the consumer to stop early.
    pub fn cancel_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Runs the consumer once and collects what it produced. A panicking consumer panics the
    /// test, which is what a test wants.
    pub async fn run(self, consumer: &impl JobConsumer) -> TestOutcome {
        let ctx = Context::new(self.store.clone(), self.limits, self.cancel.clone());
        let result = consumer.process(&self.job, &ctx).await;
        let progress = ctx.progress();
        let (outputs, properties) = ctx.into_results();
        TestOutcome { result, outputs, properties, progress, store: self.store }
    }
}

/// What a consumer produced for a [`TestJob`].
#[derive(Debug)]
pub struct TestOutcome {
    pub result: JobResult,
    pub outputs: Vec<PayloadEntry>,
    pub properties: Properties,
    /// The progress the consumer last reported, if any.
    pub progress: Option<crate::protocol::Progress>,
    store: Arc<MemoryBlobStore>,
}

impl TestOutcome {
    /// The bytes of the output stored at `path`, if the consumer stored one there.
    pub fn output_bytes(&self, path: &str) -> Option<Bytes> {
        let entry = self.outputs.iter().find(|o| o.path == path)?;
        self.store.bytes(&entry.blob)
    }
}
