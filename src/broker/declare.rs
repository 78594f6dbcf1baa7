//! Declaring the AMQP objects of the map. Declarations are idempotent, so every process
//! declares what it relies on; all of them must use identical arguments, which is why the
//! arguments live here and nowhere else (`docs/protocol.md` lists them for other languages).

use super::{Broker, BrokerError};
use crate::protocol::Topic;
use lapin::options::{
    ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{Channel, ExchangeKind};

fn durable() -> ExchangeDeclareOptions {
    ExchangeDeclareOptions { durable: true, ..Default::default() }
}

fn durable_queue() -> QueueDeclareOptions {
    QueueDeclareOptions { durable: true, ..Default::default() }
}

fn quorum_args() -> FieldTable {
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), AMQPValue::LongString(LongString::from("quorum")));
    args
}

/// A channel for declaring things: what a [`Subscriber`](super::Subscriber) gets on every fresh
/// channel, and what [`Broker::setup`] hands out. Any failed declaration closes the channel
/// (that is AMQP), so after an error take a new one.
#[derive(Clone)]
pub struct Setup {
    broker: Broker,
    ch: Channel,
}

impl Setup {
    pub(crate) fn new(broker: Broker, ch: Channel) -> Self {
        Setup { broker, ch }
    }

    pub fn broker(&self) -> &Broker {
        &self.broker
    }

    /// Whether the channel is still usable.
    pub fn is_open(&self) -> bool {
        self.ch.status().connected()
    }

    /// The exchanges every instance uses, and the dead-letter queue behind them.
    pub async fn declare_exchanges(&self) -> Result<(), BrokerError> {
        let n = self.broker.names();
        let ch = &self.ch;
        ch.exchange_declare(n.jobs_exchange().into(), ExchangeKind::Topic, durable(), FieldTable::default()).await?;
        ch.exchange_declare(n.topology_exchange().into(), ExchangeKind::Fanout, durable(), FieldTable::default())
            .await?;
        ch.exchange_declare(n.control_exchange().into(), ExchangeKind::Topic, durable(), FieldTable::default()).await?;
        ch.exchange_declare(n.dead_letter_exchange().into(), ExchangeKind::Fanout, durable(), FieldTable::default())
            .await?;
        ch.queue_declare(n.dead_queue().into(), durable_queue(), quorum_args()).await?;
        ch.queue_bind(
            n.dead_queue().into(),
            n.dead_letter_exchange().into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
        Ok(())
    }

    /// The work queue of one topic: a quorum queue (replicated, survives broker restarts)
    /// with a delivery limit, so a message that keeps killing workers is dead-lettered instead
    /// of looping, bound to the jobs exchange by its exact routing key. An `ordered` queue has
    /// a single active consumer: however many workers attach, one receives, in queue order.
    pub async fn declare_topic_queue(&self, topic: &Topic, ordered: bool) -> Result<(), BrokerError> {
        let n = self.broker.names();
        let mut args = quorum_args();
        if ordered {
            args.insert("x-single-active-consumer".into(), AMQPValue::Boolean(true));
        }
        args.insert("x-delivery-limit".into(), AMQPValue::LongInt(self.broker.config().delivery_limit as i32));
        args.insert("x-dead-letter-exchange".into(), AMQPValue::LongString(LongString::from(n.dead_letter_exchange())));
        let queue = n.topic_queue(topic);
        self.ch
            .queue_declare(queue.as_str().into(), durable_queue(), args)
            .await
            .map_err(|e| BrokerError::from_declare(e, &queue))?;
        self.ch
            .queue_bind(
                queue.as_str().into(),
                n.jobs_exchange().into(),
                topic.routing_key().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok(())
    }

    /// The leader's outbox. Single active consumer: a standby leader may attach and takes over
    /// only when the active one goes.
    pub async fn declare_replies_queue(&self) -> Result<(), BrokerError> {
        let mut args = quorum_args();
        args.insert("x-single-active-consumer".into(), AMQPValue::Boolean(true));
        let queue = self.broker.names().replies_queue();
        self.ch
            .queue_declare(queue.as_str().into(), durable_queue(), args)
            .await
            .map_err(|e| BrokerError::from_declare(e, &queue))?;
        Ok(())
    }

    /// Claims the cluster for `owner` (the leaders' shared ledger): declares the cluster's claim
    /// queue with an argument derived from `owner`. RabbitMQ refuses to declare a queue again
    /// with other values of the arguments it knows, so while a leader of another ledger holds the
    /// claim, this fails with [`BrokerError::Inequivalent`]. (It ignores arguments it does not
    /// know, so the owner is carried as `x-max-length`, a number from its hash: nothing is ever
    /// published to the queue, so the limit limits nothing.) The claim lasts as long as someone
    /// consumes the queue, and `expires` after the last consumer left, so a cluster stopped or
    /// crashed can be started again on another ledger.
    pub async fn declare_claim(&self, owner: &str, expires: std::time::Duration) -> Result<String, BrokerError> {
        let queue = self.broker.names().claim_queue();
        let mut args = FieldTable::default();
        args.insert("x-max-length".into(), AMQPValue::LongInt(claim_number(owner)));
        args.insert("x-expires".into(), AMQPValue::LongInt(expires.as_millis().min(i32::MAX as u128) as i32));
        self.ch
            .queue_declare(queue.as_str().into(), QueueDeclareOptions::default(), args)
            .await
            .map_err(|e| BrokerError::from_declare(e, &queue))?;
        Ok(queue)
    }

    /// A private, server-named queue bound to `exchange`, gone when its channel closes: how
    /// announcements and control commands reach one process.
    pub async fn declare_private_queue(&self, exchange: &str, routing_key: &str) -> Result<String, BrokerError> {
        let q = self
            .ch
            .queue_declare(
                "".into(),
                QueueDeclareOptions { exclusive: true, auto_delete: true, ..Default::default() },
                FieldTable::default(),
            )
            .await?;
        let name = q.name().to_string();
        self.ch
            .queue_bind(
                name.as_str().into(),
                exchange.into(),
                routing_key.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok(name)
    }
}

impl Setup {
    /// Binds `queue` to `exchange` with one more routing key (a private queue that also hears
    /// broadcasts).
    pub async fn bind_queue(&self, queue: &str, exchange: &str, routing_key: &str) -> Result<(), BrokerError> {
        self.ch
            .queue_bind(
                queue.into(),
                exchange.into(),
                routing_key.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok(())
    }
}

/// The claim number of `owner`: 1 to 2^31 - 1, from the first bytes of its sha256.
pub fn claim_number(owner: &str) -> i32 {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(owner.as_bytes());
    let n = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) & 0x7fff_ffff;
    n.max(1) as i32
}

impl Broker {
    /// A fresh channel for declarations.
    pub async fn setup(&self) -> Result<Setup, BrokerError> {
        Ok(Setup::new(self.clone(), self.try_channel().await?))
    }

    /// Messages waiting in a queue and consumers attached, or `None` if it does not exist (a
    /// passive declare answers without creating anything).
    pub async fn queue_depth(&self, queue: &str) -> Result<Option<QueueDepth>, BrokerError> {
        let ch = self.try_channel().await?;
        let res = ch
            .queue_declare(
                queue.into(),
                QueueDeclareOptions { passive: true, ..Default::default() },
                FieldTable::default(),
            )
            .await;
        match res {
            Ok(q) => {
                let depth = QueueDepth { messages: q.message_count(), consumers: q.consumer_count() };
                let _ = ch.close(200, "done".into()).await;
                Ok(Some(depth))
            }
            Err(e) => match BrokerError::from_declare(e, queue) {
                BrokerError::MissingQueue { .. } => Ok(None),
                other => Err(other),
            },
        }
    }

    /// Deletes this namespace's AMQP objects: the given topic queues, the reply and
    /// dead-letter queues and the exchanges. Benchmarks and tests call it to leave the broker
    /// as they found it; deleting something already gone is not an error.
    pub async fn delete_namespace(&self, topics: &[Topic]) -> Result<(), BrokerError> {
        let n = self.names();
        let mut queues: Vec<String> = topics.iter().map(|t| n.topic_queue(t)).collect();
        queues.push(n.replies_queue());
        queues.push(n.dead_queue());
        for queue in queues {
            // A failed delete closes the channel, so each gets its own.
            let ch = self.try_channel().await?;
            if ch.queue_delete(queue.as_str().into(), QueueDeleteOptions::default()).await.is_ok() {
                let _ = ch.close(200, "deleted".into()).await;
            }
        }
        for exchange in [n.jobs_exchange(), n.dead_letter_exchange(), n.topology_exchange(), n.control_exchange()] {
            let ch = self.try_channel().await?;
            if ch.exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default()).await.is_ok() {
                let _ = ch.close(200, "deleted".into()).await;
            }
        }
        Ok(())
    }
}

/// What a passive declare tells about a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueDepth {
    pub messages: u32,
    pub consumers: u32,
}
