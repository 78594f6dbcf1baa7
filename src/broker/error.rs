//! What can go wrong talking to RabbitMQ.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error(
        "cannot reach RabbitMQ at {url} within {waited:?}: {reason} (is it running? `scripts/services` starts one)"
    )]
    Unreachable { url: String, waited: Duration, reason: String },
    #[error("invalid RabbitMQ URL: {0}")]
    BadUrl(String),
    #[error("AMQP error: {0}")]
    Amqp(#[from] lapin::Error),
    #[error("RabbitMQ connection pool: {0}")]
    Pool(String),
    #[error("broker refused the message (nack) on {exchange}/{routing_key}")]
    Nacked { exchange: String, routing_key: String },
    #[error("no queue is bound for {exchange}/{routing_key}: the message was returned")]
    Unroutable { exchange: String, routing_key: String },
    #[error("queue {queue} does not exist (yet)")]
    MissingQueue { queue: String },
    #[error("queue {queue} is held exclusively by another connection")]
    Locked { queue: String },
    #[error("queue {queue} exists with other arguments: {detail}")]
    Inequivalent { queue: String, detail: String },
    #[error("could not encode message: {0}")]
    Encode(#[from] serde_json::Error),
}

impl BrokerError {
    /// Classifies the channel error a declaration or consume on `queue` ended with: RabbitMQ
    /// answers by closing the channel with a reply code (404 NOT_FOUND, 405 RESOURCE_LOCKED,
    /// 406 PRECONDITION_FAILED), which lapin reports as text.
    pub(crate) fn from_declare(e: lapin::Error, queue: &str) -> BrokerError {
        let text = e.to_string();
        if text.contains("NOT_FOUND") {
            BrokerError::MissingQueue { queue: queue.to_owned() }
        } else if text.contains("RESOURCE_LOCKED") {
            BrokerError::Locked { queue: queue.to_owned() }
        } else if text.contains("PRECONDITION_FAILED") {
            BrokerError::Inequivalent { queue: queue.to_owned(), detail: text }
        } else {
            BrokerError::Amqp(e)
        }
    }

    /// The queue is not there: expected while a topic has no job yet.
    pub fn is_missing_queue(&self) -> bool {
        matches!(self, BrokerError::MissingQueue { .. })
    }
}
