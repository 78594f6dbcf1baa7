//! A consumer that outlives connections.
//!
//! RabbitMQ restarts, networks drop: a consumer's channel dies with them. A
//! [`Subscriber`] says how to (re)subscribe on a fresh channel and what to do with
//! deliveries; [`run_subscription`] keeps it subscribed, with backoff, until it is
//! cancelled. Deliveries taken but not acked when a channel dies are redelivered by
//! the broker, which is why every handler here is idempotent.

use super::{Backoff, Broker, BrokerError};
use futures::{FutureExt, StreamExt};
use lapin::message::Delivery;
use lapin::options::{BasicCancelOptions, BasicNackOptions};
use lapin::{Channel, Consumer};
use tokio_util::sync::CancellationToken;

#[async_trait::async_trait]
pub trait Subscriber: Send + 'static {
    /// For logs: what this subscription is.
    fn describe(&self) -> String;

    /// Declares what the subscription needs on a fresh channel and starts consuming.
    async fn subscribe(&mut self, broker: &Broker, ch: &Channel) -> Result<Consumer, BrokerError>;

    /// Handles deliveries that were ready together (at most [`Subscriber::max_batch`]).
    async fn handle(&mut self, ch: &Channel, batch: Vec<Delivery>);

    /// How many ready deliveries to hand over at once. Batching lets a handler
    /// commit many messages in one transaction and ack them with one `multiple` ack.
    fn max_batch(&self) -> usize {
        1
    }

    /// Deliveries that arrived but were not handed over when the subscription was
    /// cancelled. By default they go back to the queue for another consumer.
    async fn release(&mut self, leftovers: Vec<Delivery>) {
        for d in leftovers {
            let _ = d.acker.nack(BasicNackOptions { requeue: true, multiple: false }).await;
        }
    }
}

/// Runs `sub` until `cancel` fires, resubscribing after every failure. On cancel
/// the consumer is cancelled on the broker (no new deliveries) but the channel is
/// left open, so work already handed out can still be acked.
pub async fn run_subscription<S: Subscriber>(broker: Broker, mut sub: S, cancel: CancellationToken) -> S {
    let mut backoff = Backoff::reconnect();
    'connect: loop {
        let Some(ch) = broker.channel(&cancel).await else {
            return sub;
        };
        let mut consumer = match sub.subscribe(&broker, &ch).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, subscription = %sub.describe(), "subscribe failed, retrying");
                let _ = ch.close(200, "retrying".into()).await;
                tokio::select! {
                    _ = cancel.cancelled() => return sub,
                    _ = backoff.wait() => continue 'connect,
                }
            }
        };
        backoff.reset();
        tracing::debug!(subscription = %sub.describe(), "subscribed");
        loop {
            let next = tokio::select! {
                _ = cancel.cancelled() => {
                    // After cancel-ok no more deliveries come; hand back what is buffered.
                    let _ = ch.basic_cancel(consumer.tag(), BasicCancelOptions::default()).await;
                    let mut leftovers = Vec::new();
                    while let Some(Some(Ok(d))) = consumer.next().now_or_never() {
                        leftovers.push(d);
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
                    let mut batch = vec![first];
                    while batch.len() < sub.max_batch() {
                        match consumer.next().now_or_never() {
                            Some(Some(Ok(d))) => batch.push(d),
                            _ => break,
                        }
                    }
                    sub.handle(&ch, batch).await;
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
