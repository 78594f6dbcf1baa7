//! offloader: offload heavy asset processing from a leader onto a pool of workers.
//!
//! The crate is layered so a newcomer can read it top-down:
//! - [`protocol`]: jobs, topics and the messages on the wire. Imports nothing of the runtime.
//! - [`broker`] and [`datastore`]: RabbitMQ and S3 plumbing. Know nothing of leaders or workers.
//! - [`leader`] and [`worker`]: the two runtimes. They never import each other.
//! - [`announce`]: instances telling each other who they are and what they consume.
//! - [`models`]: the workflow models an instance knows (built-ins and `--models DIR`).
//! - [`processing`]: a workflow model run on an asset's bytes with the renditions engine, the
//!   same on a worker and on a leader that processes locally.

pub mod announce;
pub mod broker;
pub mod datastore;
pub mod identity;
pub mod leader;
pub mod metrics;
pub mod models;
pub mod processing;
pub mod protocol;
pub mod worker;
