//! RabbitMQ plumbing: connections, the AMQP objects of the map, confirmed
//! publishing and supervised consumers. Knows nothing of leaders or workers.

mod backoff;
mod config;
mod connection;
mod declare;
mod error;
mod names;
mod publisher;
mod subscription;

pub use backoff::Backoff;
pub use config::BrokerConfig;
pub use connection::Broker;
pub use declare::QueueDepth;
pub use error::BrokerError;
pub use names::Names;
pub use publisher::{Outgoing, Publisher};
pub use subscription::{run_subscription, Subscriber};

/// Re-exported so runtimes can name deliveries and channels without depending
/// on lapin's module layout.
pub use lapin::{message::Delivery, Channel, Consumer};
