//! offloader: offload heavy asset processing from a leader onto a pool of workers.
//!
//! The crate is layered so a newcomer can read it top-down:
//! - [`protocol`]: jobs, topics and the messages on the wire. Imports nothing of the runtime.
//! - [`broker`] and [`datastore`]: RabbitMQ and S3 plumbing. Know nothing of leaders or workers.
//! - [`consumer`]: what runs a job, whatever brought it: the `JobConsumer` interface, its
//!   `Context`, the built-ins and the workflow consumer (the same on a worker and on a leader
//!   that processes locally), and a test harness that needs no services.
//! - [`leader`] and [`worker`]: the two runtimes. They never import each other.
//! - [`discovery`]: instances telling each other who they are and what they consume, and the
//!   topology each keeps of the others (Sling Discovery).
//! - [`models`]: the workflow models an instance knows (built-ins and `--models DIR`).
//! - [`client`]: a client of the leader's HTTP API.

pub mod broker;
pub mod client;
pub mod consumer;
pub mod datastore;
pub mod discovery;
pub mod identity;
pub mod leader;
pub mod metrics;
pub mod models;
pub mod protocol;
pub mod worker;

/// The README's Rust examples, compiled and run as doc tests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
