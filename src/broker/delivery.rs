//! A message RabbitMQ delivered to one of our consumers, and what may be done with it.
//!
//! Runtimes see this type, never lapin's: what they need from a delivery is its body, a few
//! properties and headers, and the four ways to settle it (ack, ack everything up to it, return
//! it to the queue, reject it to the dead-letter exchange). The delivery keeps its channel
//! open: lapin closes a channel when its last handle goes, and the broker would then requeue
//! every unsettled delivery, so a job still running after its consumer was cancelled (a topic
//! disabled, a drain) would run a second time elsewhere.

use super::BrokerError;
use lapin::options::{BasicAckOptions, BasicNackOptions};
use lapin::types::AMQPValue;
use lapin::Channel;

pub struct Delivery {
    inner: lapin::message::Delivery,
    _channel: Option<Channel>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("routing_key", &self.routing_key())
            .field("message_id", &self.message_id())
            .field("bytes", &self.data().len())
            .finish()
    }
}

impl Delivery {
    pub(crate) fn new(inner: lapin::message::Delivery, channel: Option<Channel>) -> Self {
        Delivery { inner, _channel: channel }
    }

    /// The message body.
    pub fn data(&self) -> &[u8] {
        &self.inner.data
    }

    /// The routing key it was published with.
    pub fn routing_key(&self) -> &str {
        self.inner.routing_key.as_str()
    }

    /// The exchange it was published to (empty for the default exchange).
    pub fn exchange(&self) -> &str {
        self.inner.exchange.as_str()
    }

    /// The AMQP `message_id` property (our job id).
    pub fn message_id(&self) -> Option<&str> {
        self.inner.properties.message_id().as_ref().map(|s| s.as_str())
    }

    /// The AMQP `type` property (our schema name).
    pub fn kind(&self) -> Option<&str> {
        self.inner.properties.kind().as_ref().map(|s| s.as_str())
    }

    /// The AMQP `reply_to` property.
    pub fn reply_to(&self) -> Option<&str> {
        self.inner.properties.reply_to().as_ref().map(|s| s.as_str())
    }

    /// A header's value as text (strings as they are, numbers and booleans printed).
    pub fn header(&self, name: &str) -> Option<String> {
        let headers = self.inner.properties.headers().as_ref()?;
        headers.inner().get(name).and_then(value_text)
    }

    /// Every header with a text-like value, for dead-lettering and inspection.
    pub fn headers(&self) -> Vec<(String, String)> {
        let Some(headers) = self.inner.properties.headers().as_ref() else { return Vec::new() };
        headers.inner().iter().filter_map(|(k, v)| value_text(v).map(|t| (k.to_string(), t))).collect()
    }

    /// How often RabbitMQ delivered this message before: quorum queues count it in
    /// `x-delivery-count` (absent on the first delivery); other queues only say `redelivered`.
    pub fn delivery_count(&self) -> u32 {
        let Some(headers) = self.inner.properties.headers().as_ref() else {
            return u32::from(self.inner.redelivered);
        };
        match headers.inner().get("x-delivery-count") {
            Some(AMQPValue::LongLongInt(n)) => u32::try_from(*n).unwrap_or(u32::MAX),
            Some(AMQPValue::LongInt(n)) => u32::try_from(*n).unwrap_or(0),
            Some(AMQPValue::LongUInt(n)) => *n,
            Some(AMQPValue::ShortInt(n)) => u32::try_from(*n).unwrap_or(0),
            _ => u32::from(self.inner.redelivered),
        }
    }

    /// Done with it: the broker forgets the message.
    pub async fn ack(&self) -> Result<(), BrokerError> {
        self.inner.acker.ack(BasicAckOptions::default()).await?;
        Ok(())
    }

    /// Acks this delivery and every earlier one of the same consumer, in one frame: how a
    /// batch committed together is settled together.
    pub async fn ack_through(&self) -> Result<(), BrokerError> {
        self.inner.acker.ack(BasicAckOptions { multiple: true }).await?;
        Ok(())
    }

    /// Returns it (and every earlier unsettled one of the same consumer) to the queue.
    pub async fn requeue_through(&self) -> Result<(), BrokerError> {
        self.inner.acker.nack(BasicNackOptions { multiple: true, requeue: true }).await?;
        Ok(())
    }

    /// Returns it to its queue, for another consumer.
    pub async fn requeue(&self) -> Result<(), BrokerError> {
        self.inner.acker.nack(BasicNackOptions { multiple: false, requeue: true }).await?;
        Ok(())
    }

    /// Refuses it: the queue's own dead-lettering (if any) takes it.
    pub async fn reject(&self) -> Result<(), BrokerError> {
        self.inner.acker.nack(BasicNackOptions { multiple: false, requeue: false }).await?;
        Ok(())
    }
}

fn value_text(v: &AMQPValue) -> Option<String> {
    Some(match v {
        AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        AMQPValue::ShortString(s) => s.to_string(),
        AMQPValue::Boolean(b) => b.to_string(),
        AMQPValue::ShortShortInt(n) => n.to_string(),
        AMQPValue::ShortShortUInt(n) => n.to_string(),
        AMQPValue::ShortInt(n) => n.to_string(),
        AMQPValue::ShortUInt(n) => n.to_string(),
        AMQPValue::LongInt(n) => n.to_string(),
        AMQPValue::LongUInt(n) => n.to_string(),
        AMQPValue::LongLongInt(n) => n.to_string(),
        AMQPValue::Timestamp(n) => n.to_string(),
        _ => return None,
    })
}
