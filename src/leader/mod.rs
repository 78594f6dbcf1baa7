//! The leader runtime: accepts jobs and assets, records them in its ledger, publishes jobs,
//! and applies what workers report back.
//!
//! - [`jobs`]: creating, publishing and republishing jobs; the lifecycle rules; applying
//!   completions; waiting.
//! - [`ledger`]: the durable store of jobs and of documents kept in step with them.
//! - [`assets`]: the asset repository, ingestion, the watch folder.
//! - [`workflows`]: launchers, the job that runs a workflow, local runs.
//! - [`cluster`]: the leaders of one cluster: the claim on it, the elected leader's duties.
//! - [`topology`]: the Offloading Browser's view and live topic changes.
//! - [`dead_letters`]: the dead-letter console (list, show, replay, discard).
//! - [`http`]: the API over all of it.

pub mod assets;
pub mod cluster;
pub mod dead_letters;
pub mod http;
pub mod jobs;
pub mod ledger;
mod runtime;
pub mod topology;
pub mod workflows;

pub use runtime::{start, LeaderConfig, LeaderError, LeaderHandle};
