//! Publishing with publisher confirms.
//!
//! A confirmed publish is what lets the leader record a job as QUEUED and a
//! worker ack a job after its completion is safe. Waiting for each confirm
//! before sending the next message would cost one round trip per message, so
//! the publisher shares one confirm-mode channel among all callers: each awaits
//! only its own confirm while others keep publishing, which pipelines them.

use super::{Backoff, Broker, BrokerError};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::Confirmation;
use lapin::{BasicProperties, Channel};
use std::time::Duration;
use tokio::sync::Mutex;

/// One message to publish, with the properties the map asks for.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub exchange: String,
    pub routing_key: String,
    pub body: Vec<u8>,
    /// The schema name, sent as the AMQP `type` property.
    pub kind: &'static str,
    pub message_id: Option<String>,
    pub reply_to: Option<String>,
    pub headers: Vec<(String, String)>,
    /// Persistent (`delivery_mode=2`) unless it is a heartbeat-like message.
    pub persistent: bool,
    /// Ask the broker to return the message if no queue takes it, so a job or
    /// reply is never silently dropped.
    pub mandatory: bool,
}

impl Outgoing {
    pub fn new(exchange: impl Into<String>, routing_key: impl Into<String>, kind: &'static str, body: Vec<u8>) -> Self {
        Outgoing {
            exchange: exchange.into(),
            routing_key: routing_key.into(),
            body,
            kind,
            message_id: None,
            reply_to: None,
            headers: Vec::new(),
            persistent: true,
            mandatory: true,
        }
    }

    fn properties(&self) -> BasicProperties {
        let mut props = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_type(self.kind.into())
            .with_delivery_mode(if self.persistent { 2 } else { 1 });
        if let Some(id) = &self.message_id {
            props = props.with_message_id(id.as_str().into());
        }
        if let Some(reply_to) = &self.reply_to {
            props = props.with_reply_to(reply_to.as_str().into());
        }
        if !self.headers.is_empty() {
            let mut table = FieldTable::default();
            for (k, v) in &self.headers {
                table.insert(ShortString::from(k.as_str()), AMQPValue::LongString(LongString::from(v.as_str())));
            }
            props = props.with_headers(table);
        }
        props
    }
}

pub struct Publisher {
    broker: Broker,
    channel: Mutex<Option<Channel>>,
    /// How long one publish keeps retrying through a broker outage.
    patience: Duration,
}

impl Publisher {
    pub fn new(broker: Broker) -> Self {
        Publisher { broker, channel: Mutex::new(None), patience: Duration::from_secs(30) }
    }

    pub fn with_patience(mut self, patience: Duration) -> Self {
        self.patience = patience;
        self
    }

    pub fn broker(&self) -> &Broker {
        &self.broker
    }

    /// Publishes and waits for the broker's confirm, retrying through connection
    /// loss for up to the publisher's patience. A retry may deliver a message twice;
    /// every consumer of ours is idempotent for that reason.
    pub async fn publish(&self, msg: &Outgoing) -> Result<(), BrokerError> {
        let deadline = tokio::time::Instant::now() + self.patience;
        let mut backoff = Backoff::reconnect();
        loop {
            match self.publish_once(msg).await {
                Ok(()) => return Ok(()),
                Err(e @ (BrokerError::Unroutable { .. } | BrokerError::Encode(_))) => return Err(e),
                Err(e) if tokio::time::Instant::now() >= deadline => return Err(e),
                Err(e) => {
                    tracing::warn!(error = %e, exchange = %msg.exchange, "publish failed, retrying");
                    self.forget_channel().await;
                    backoff.wait().await;
                }
            }
        }
    }

    /// Publishes once without waiting for the confirm of earlier messages.
    pub async fn publish_once(&self, msg: &Outgoing) -> Result<(), BrokerError> {
        let ch = self.confirm_channel().await?;
        let confirm = ch
            .basic_publish(
                msg.exchange.as_str().into(),
                msg.routing_key.as_str().into(),
                BasicPublishOptions { mandatory: msg.mandatory, ..Default::default() },
                &msg.body,
                msg.properties(),
            )
            .await?
            .await?;
        match confirm {
            Confirmation::Ack(None) | Confirmation::NotRequested => Ok(()),
            Confirmation::Ack(Some(_)) => {
                Err(BrokerError::Unroutable { exchange: msg.exchange.clone(), routing_key: msg.routing_key.clone() })
            }
            Confirmation::Nack(_) => {
                Err(BrokerError::Nacked { exchange: msg.exchange.clone(), routing_key: msg.routing_key.clone() })
            }
        }
    }

    async fn confirm_channel(&self) -> Result<Channel, BrokerError> {
        let mut guard = self.channel.lock().await;
        if let Some(ch) = guard.as_ref() {
            if ch.status().connected() {
                return Ok(ch.clone());
            }
        }
        let ch = self.broker.try_channel().await?;
        ch.confirm_select(ConfirmSelectOptions::default()).await?;
        *guard = Some(ch.clone());
        Ok(ch)
    }

    async fn forget_channel(&self) {
        *self.channel.lock().await = None;
    }
}
