//! The worker runtime: consumes the job topics enabled on it, runs the registered
//! [`JobConsumer`](crate::consumer::JobConsumer) for each, and reports completions to the
//! leader. What a consumer is and how it is written lives in [`crate::consumer`].

mod completed;
mod enablement_store;
mod job_runner;
mod metrics;
mod progress;
mod running;
mod runtime;
mod subscriptions;

pub use runtime::{start, WorkerConfig, WorkerError, WorkerHandle};
