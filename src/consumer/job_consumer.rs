//! The `JobConsumer` trait: what runs one job (Sling's `JobConsumer`).

use super::Context;
use crate::protocol::{Job, JobResult};

/// Processes jobs of the topics it is registered for. A consumer sees the [`Job`] (typed
/// property access, input references) and a [`Context`] that fetches inputs and stores
/// outputs; it never sees RabbitMQ or S3, so it runs the same on a worker, on the leader and
/// in a unit test.
#[async_trait::async_trait]
pub trait JobConsumer: Send + Sync + 'static {
    /// Processes one job. Return `JobResult::failed` for a transient problem (the leader
    /// retries later), `JobResult::cancel` when retrying cannot help, and
    /// `JobResult::declined` when this process lacks something another may have.
    ///
    /// CPU-heavy work belongs in [`Context::run_blocking`], so it does not stall the async
    /// threads that move other jobs' messages.
    async fn process(&self, job: &Job, ctx: &Context) -> JobResult;
}
