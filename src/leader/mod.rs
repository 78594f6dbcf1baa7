//! The leader runtime: accepts jobs, records them in its ledger, publishes them,
//! and applies what workers report back.

mod assets;
mod assets_http;
mod http;
mod ingest;
mod job_manager;
mod launch;
mod launchers;
mod ledger;
mod local;
mod metrics;
mod poller;
mod record;
mod runtime;
mod topology;
mod waiters;
mod watch;

pub use crate::models::{ModelRegistry, ModelsError};
pub use assets::{Asset, AssetChange, AssetJob, AssetRepository, RenditionRecord};
pub use ingest::{IngestOutcome, StartedJob};
pub use job_manager::{JobError, JobManager, NewJob};
pub use launchers::{AssetEvent, Launcher, Launchers, LaunchersError};
pub use ledger::{JobFilter, Ledger, LedgerError};
pub use local::LocalConfig;
pub use record::{Effect, JobRecord, RetryPolicy, WorkerRef};
pub use runtime::{start, LeaderConfig, LeaderError, LeaderHandle};
pub use topology::{ConsumerView, InstanceView, QueueView, TopicsReport};
pub use watch::WatchConfig;
