//! Jobs on the leader: creating and publishing them ([`JobManager`]), the rules that change a
//! job's record ([`lifecycle`]), applying what workers report ([`Completions`], fed by the
//! [`ReplyPoller`] and by local runs), publishing again what is due ([`republish_loop`]), taking back detached jobs whose
//! worker left ([`take_back_loop`]), and
//! waking whoever waits for a job.

mod completions;
mod detached;
pub mod lifecycle;
mod manager;
mod metrics;
mod poller;
mod queues;
mod republisher;
pub mod retention;
pub mod scheduler;
mod waiters;

pub use completions::{Applied, Completions};
pub use detached::take_back_loop;
pub use lifecycle::{Effect, RetryPolicy, MAX_ATTEMPTS};
pub use manager::{JobError, JobManager, NewJob};
pub use metrics::LeaderMetrics;
pub use poller::ReplyPoller;
pub use queues::{QueueConfig, QueueType, Queues, QueuesError};
pub use republisher::republish_loop;
