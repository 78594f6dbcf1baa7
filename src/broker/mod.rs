//! RabbitMQ plumbing: connections, the AMQP objects of the map, confirmed publishing,
//! supervised consumers, dead-lettering and the dead-letter queue. Knows nothing of leaders or workers, and nothing
//! outside this module sees lapin: runtimes speak in [`Outgoing`] messages, [`Delivery`]s and
//! [`Subscriber`]s.

mod backoff;
mod config;
mod connection;
mod dead_letter;
mod dead_queue;
mod declare;
mod delivery;
mod error;
mod names;
mod publisher;
mod subscription;

pub use backoff::Backoff;
pub use config::BrokerConfig;
pub use connection::Broker;
pub use dead_letter::{dead_letter, publish_dead_letter, DEAD_LETTER_KIND, REASON_HEADER};
pub use dead_queue::{DeadLetter, Settle};
pub use declare::{claim_number, QueueDepth, Setup};
pub use delivery::Delivery;
pub use error::BrokerError;
pub use names::Names;
pub use publisher::{Outgoing, Publisher};
pub use subscription::{run_subscription, Consume, Subscriber};
