use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error(
        "cannot reach RabbitMQ at {url} within {waited:?}: {reason} (is it running? `scripts/services` starts one)"
    )]
    Unreachable { url: String, waited: Duration, reason: String },
    #[error("AMQP error: {0}")]
    Amqp(#[from] lapin::Error),
    #[error("RabbitMQ connection pool: {0}")]
    Pool(String),
    #[error("broker refused the message (nack) on {exchange}/{routing_key}")]
    Nacked { exchange: String, routing_key: String },
    #[error("no queue is bound for {exchange}/{routing_key}: the message was returned")]
    Unroutable { exchange: String, routing_key: String },
    #[error("could not encode message: {0}")]
    Encode(#[from] serde_json::Error),
}
