//! The leader runtime: accepts jobs, records them in its ledger, publishes them,
//! and applies what workers report back.

mod http;
mod job_manager;
mod ledger;
mod metrics;
mod poller;
mod record;
mod runtime;
mod topology;
mod waiters;

pub use job_manager::{JobError, JobManager, NewJob};
pub use ledger::{JobFilter, Ledger, LedgerError};
pub use record::{Effect, JobRecord, RetryPolicy, WorkerRef};
pub use runtime::{LeaderConfig, LeaderError, LeaderHandle, start};
pub use topology::{ConsumerView, InstanceView, QueueView, TopicsReport};
