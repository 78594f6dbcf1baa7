//! What runs a job, whatever brought it: the [`JobConsumer`] interface, the [`Context`] a
//! consumer works through, the [`ConsumerRegistry`] that picks a consumer for a topic, the
//! built-in consumers, and the [`WorkflowConsumer`] that runs workflow models.
//!
//! This layer knows the protocol and the datastore trait, and nothing of RabbitMQ: a worker
//! feeds it deliveries from a queue, the leader feeds it the workflows it runs itself, and a
//! unit test feeds it in-memory inputs ([`testing`]). That is what makes "one workflow runner"
//! possible: the very consumer a worker runs is the one the leader runs locally.
//!
//! The recipe is Sling's: choose a topic, implement a consumer, register it on the worker,
//! enable the topic.
//!
//! ```
//! use offloader::consumer::{ConsumerRegistry, Context, JobConsumer};
//! use offloader::protocol::{Job, JobResult};
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
//! assert!(registry.resolve(&"acme/measure".parse().unwrap()).is_some());
//!
//! // And in a unit test, with no RabbitMQ and no S3:
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let done = offloader::consumer::testing::TestJob::on("acme/measure")
//!     .input("/a.txt", "hello")
//!     .run(&Measure)
//!     .await;
//! assert_eq!(done.result, JobResult::Ok);
//! assert_eq!(done.properties["size:/a.txt"], 5);
//! # });
//! ```

mod builtin;
mod context;
mod job_consumer;
mod plan;
mod registry;
pub mod testing;
mod workflow;

pub use builtin::{register_builtin_as, register_builtins, ECHO, FAIL, NOOP, SLEEP};
pub use context::{Context, ContextError, JobLimits};
pub use job_consumer::JobConsumer;
pub use plan::{Plan, PlanError, Processed, Rendered, METADATA_PROPERTY, RENDITIONS_PROPERTY};
pub use registry::ConsumerRegistry;
pub use workflow::WorkflowConsumer;
