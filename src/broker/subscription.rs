//! A consumer that outlives connections.
//!
//! RabbitMQ restarts, networks drop: a consumer's channel dies with them. A [`Subscriber`]
//! says what to declare and consume on a fresh channel and what to do with deliveries;
//! [`run_subscription`] keeps it subscribed, with backoff, until it is cancelled. Deliveries
//! taken but not settled when a channel dies are redelivered by the broker, which is why every
//! handler here is idempotent.

use super::{Backoff, Broker, BrokerError, Delivery, Setup};
use futures::{FutureExt, StreamExt};
use lapin::options::{BasicCancelOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use tokio_util::sync::CancellationToken;

/// What a subscriber consumes, and how.
#[derive(Debug, Clone)]
pub struct Consume {
    pub queue: String,
    /// Unsettled deliveries the broker may push ahead (ignored with `no_ack`).
    pub prefetch: u16,
    /// Deliveries count as settled when sent (heartbeats: losing one costs nothing).
    pub no_ack: bool,
    /// A consumer tag people recognise in the RabbitMQ UI; empty lets the broker name it.
    pub tag: String,
}

impl Consume {
    pub fn queue(queue: impl Into<String>) -> Self {
        Consume { queue: queue.into(), prefetch: 1, no_ack: false, tag: String::new() }
    }

    pub fn prefetch(mut self, prefetch: u16) -> Self {
        self.prefetch = prefetch;
        self
    }

    pub fn no_ack(mut self) -> Self {
        self.no_ack = true;
        self
    }

    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tag = tag.into();
        self
    }
}

#[async_trait::async_trait]
pub trait Subscriber: Send + 'static {
    /// For logs: what this subscription is.
    fn describe(&self) -> String;

    /// Declares what the subscription needs on a fresh channel and says what to consume.
    async fn subscribe(&mut self, setup: &Setup) -> Result<Consume, BrokerError>;

    /// The broker accepted the consumer: deliveries may come from now on.
    fn subscribed(&mut self) {}

    /// Handles deliveries that were ready together (at most [`Subscriber::max_batch`]).
    async fn handle(&mut self, batch: Vec<Delivery>);

    /// How many ready deliveries to hand over at once. Batching lets a handler commit many
    /// messages in one transaction and settle them with one `multiple` ack.
    fn max_batch(&self) -> usize {
        1
    }

    /// Deliveries that arrived but were not handed over when the subscription was cancelled.
    /// By default they go back to the queue for another consumer.
    async fn release(&mut self, leftovers: Vec<Delivery>) {
        for d in leftovers {
            let _ = d.requeue().await;
        }
    }
}

/// Runs `sub` until `cancel` fires, resubscribing after every failure. On cancel the consumer
/// is cancelled on the broker (no new deliveries) but the channel stays open as long as
/// deliveries handed out hold it, so work under way can still be settled.
pub async fn run_subscription<S: Subscriber>(broker: Broker, mut sub: S, cancel: CancellationToken) -> S {
    let mut backoff = Backoff::reconnect();
    'connect: loop {
        let Some(ch) = broker.channel(&cancel).await else {
            return sub;
        };
        let consumer = async {
            let setup = Setup::new(broker.clone(), ch.clone());
            let consume = sub.subscribe(&setup).await?;
            if !consume.no_ack {
                ch.basic_qos(consume.prefetch.max(1), BasicQosOptions::default()).await?;
            }
            let options = BasicConsumeOptions { no_ack: consume.no_ack, ..Default::default() };
            let consumer = ch
                .basic_consume(
                    consume.queue.as_str().into(),
                    consume.tag.as_str().into(),
                    options,
                    FieldTable::default(),
                )
                .await
                .map_err(|e| BrokerError::from_declare(e, &consume.queue))?;
            Ok::<_, BrokerError>((consumer, consume.no_ack))
        };
        let (mut consumer, no_ack) = match consumer.await {
            Ok(c) => c,
            Err(e) => {
                if e.is_missing_queue() {
                    // Not an error: the queue appears when its first job is created, and the
                    // subscriber is restarted once a leader announces it.
                    tracing::debug!(error = %e, subscription = %sub.describe(), "queue not declared yet; waiting");
                } else {
                    tracing::warn!(error = %e, subscription = %sub.describe(), "subscribe failed, retrying");
                }
                let _ = ch.close(200, "retrying".into()).await;
                tokio::select! {
                    _ = cancel.cancelled() => return sub,
                    _ = backoff.wait() => continue 'connect,
                }
            }
        };
        if cancel.is_cancelled() {
            // Cancelled while subscribing: take nothing.
            let _ = ch.basic_cancel(consumer.tag(), BasicCancelOptions::default()).await;
            return sub;
        }
        sub.subscribed();
        backoff.reset();
        tracing::debug!(subscription = %sub.describe(), "subscribed");
        // Unacknowledged deliveries keep the channel open until they are settled.
        let hold = |d: lapin::message::Delivery| Delivery::new(d, (!no_ack).then(|| ch.clone()));
        loop {
            let next = tokio::select! {
                _ = cancel.cancelled() => {
                    // After cancel-ok no more deliveries come; hand back what is buffered.
                    let _ = ch.basic_cancel(consumer.tag(), BasicCancelOptions::default()).await;
                    let mut leftovers = Vec::new();
                    while let Some(Some(Ok(d))) = consumer.next().now_or_never() {
                        leftovers.push(hold(d));
                    }
                    if !leftovers.is_empty() {
                        sub.release(leftovers).await;
                    }
                    return sub;
                }
                next = consumer.next() => next,
            };
            match next {
                Some(Ok(first)) => {
                    let mut batch = vec![hold(first)];
                    while batch.len() < sub.max_batch() {
                        match consumer.next().now_or_never() {
                            Some(Some(Ok(d))) => batch.push(hold(d)),
                            _ => break,
                        }
                    }
                    sub.handle(batch).await;
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, subscription = %sub.describe(), "consumer failed, resubscribing");
                    break;
                }
                None => {
                    tracing::warn!(subscription = %sub.describe(), "consumer ended, resubscribing");
                    break;
                }
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => return sub,
            _ = backoff.wait() => {}
        }
    }
}
