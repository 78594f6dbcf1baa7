//! The worker runtime: consumes jobs of the topics enabled on it, runs the
//! registered [`JobConsumer`] for each, and reports completions to the leader.

mod builtin;
mod completed;
mod consumer;
mod enablement_store;
mod job_runner;
mod metrics;
mod registry;
mod runtime;
mod subscriptions;
mod workflow;

pub use builtin::{register_builtin_as, register_builtins, ECHO, FAIL, NOOP, SLEEP};
pub use consumer::{Context, ContextError, JobConsumer, JobLimits};
pub use registry::ConsumerRegistry;
pub use runtime::{start, WorkerConfig, WorkerError, WorkerHandle};
pub use workflow::WorkflowConsumer;
