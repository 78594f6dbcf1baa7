//! Reading the dead-letter queue (`<ns>.dead`) and acting on one dead letter: replaying it to
//! where it was going, or discarding it.
//!
//! AMQP has no way to read a queue without taking its messages, so reading is `basic.get`
//! without ack on a channel of its own, followed by returning everything taken
//! (`basic.nack` with `requeue`). Acting on one dead letter is the same walk: the one asked for
//! is published again (replay, with a confirm) and acked, or just acked (discard); every other
//! message goes back. A dead letter is named by a fingerprint of what it carries (see
//! [`DeadLetter::id`]), since dead letters need not have a `message_id`, and the same job can
//! be dead-lettered twice.
//!
//! Returned messages keep their order in a quorum queue, but count as a delivery: on a broker
//! that gives quorum queues a default delivery limit (RabbitMQ 4), list a busy dead queue
//! sparingly or give `<ns>.dead` a policy without one.

use super::{Broker, BrokerError};
use lapin::options::{BasicAckOptions, BasicGetOptions, BasicNackOptions, BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Confirmation};
use sha2::Digest;

/// Our headers on dead letters (`dead_letter.rs`); everything a replay drops starts like this.
const OURS: &str = "x-offloader-";

/// A message in the dead-letter queue, as it was dead-lettered.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// A fingerprint of the message: its body, `message_id`, original routing key, reason and
    /// time of death. Stable while the message waits, so it names the message between a list
    /// and a replay.
    pub id: String,
    /// Why, as our dead-lettering says it (`x-offloader-reason`) or RabbitMQ's (`x-death`).
    pub reason: String,
    /// The exchange it was first published to, if known.
    pub exchange: Option<String>,
    /// Its original routing key.
    pub routing_key: String,
    /// Its original AMQP `type`, if any.
    pub kind: Option<String>,
    /// The instance that refused it (`x-offloader-worker`), if one said so.
    pub worker: Option<String>,
    /// When it died (RFC 3339), if known.
    pub dead_at: Option<String>,
    pub message_id: Option<String>,
    pub reply_to: Option<String>,
    /// How often it was returned to the dead queue before (by lists like this one).
    pub delivery_count: u32,
    pub body: Vec<u8>,
}

/// What to do with one dead letter.
#[derive(Debug, Clone)]
pub enum Settle {
    /// Publish it again, body and properties unchanged, to the exchange it was first published
    /// to, else to `fallback_exchange`, with its original routing key; then ack it.
    Replay { fallback_exchange: String },
    /// Ack it: gone.
    Discard,
}

impl Broker {
    /// The first `limit` dead letters, oldest first, left where they are.
    pub async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, BrokerError> {
        let ch = self.try_channel().await?;
        let queue = self.names().dead_queue();
        let mut out = Vec::new();
        let mut last = None;
        while out.len() < limit {
            let Some(got) = ch.basic_get(queue.as_str().into(), BasicGetOptions { no_ack: false }).await? else {
                break;
            };
            out.push(DeadLetter::of(&got.delivery));
            last = Some(got.delivery);
        }
        if let Some(last) = last {
            last.acker.nack(BasicNackOptions { multiple: true, requeue: true }).await?;
        }
        let _ = ch.close(200, "done".into()).await;
        Ok(out)
    }

    /// Finds the dead letter named `id` among the first `scan` and settles it as `how` says;
    /// `None` when it is not there. Every other message stays in the queue.
    pub async fn settle_dead_letter(
        &self,
        id: &str,
        how: Settle,
        scan: usize,
    ) -> Result<Option<DeadLetter>, BrokerError> {
        let ch = self.try_channel().await?;
        ch.confirm_select(ConfirmSelectOptions::default()).await?;
        let queue = self.names().dead_queue();
        let mut last = None;
        let mut found = None;
        for _ in 0..scan {
            let Some(got) = ch.basic_get(queue.as_str().into(), BasicGetOptions { no_ack: false }).await? else {
                break;
            };
            let letter = DeadLetter::of(&got.delivery);
            if letter.id == id {
                found = Some((letter, got.delivery));
                break;
            }
            last = Some(got.delivery);
        }
        let result = match found {
            None => Ok(None),
            Some((letter, delivery)) => {
                let settled = match &how {
                    Settle::Discard => Ok(()),
                    Settle::Replay { fallback_exchange } => replay(&ch, &letter, &delivery, fallback_exchange).await,
                };
                match settled {
                    Ok(()) => {
                        delivery.acker.ack(BasicAckOptions::default()).await?;
                        Ok(Some(letter))
                    }
                    Err(e) => {
                        delivery.acker.nack(BasicNackOptions { multiple: false, requeue: true }).await?;
                        Err(e)
                    }
                }
            }
        };
        if let Some(last) = last {
            last.acker.nack(BasicNackOptions { multiple: true, requeue: true }).await?;
        }
        let _ = ch.close(200, "done".into()).await;
        result
    }
}

impl Broker {
    /// Replays the first `max` dead letters, each to where it was going (else to
    /// `fallback_exchange`), with a confirm, and acks each replayed one. One that cannot be
    /// published stays unacked until the walk ends, so it is not met again, and then goes back
    /// to the queue. Returns the replayed letters and the failed ones with why.
    #[allow(clippy::type_complexity)]
    pub async fn replay_all_dead_letters(
        &self,
        fallback_exchange: &str,
        max: usize,
    ) -> Result<(Vec<DeadLetter>, Vec<(DeadLetter, BrokerError)>), BrokerError> {
        let ch = self.try_channel().await?;
        ch.confirm_select(ConfirmSelectOptions::default()).await?;
        let queue = self.names().dead_queue();
        let (mut replayed, mut failed, mut kept) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..max {
            let Some(got) = ch.basic_get(queue.as_str().into(), BasicGetOptions { no_ack: false }).await? else {
                break;
            };
            let letter = DeadLetter::of(&got.delivery);
            match replay(&ch, &letter, &got.delivery, fallback_exchange).await {
                Ok(()) => {
                    got.delivery.acker.ack(BasicAckOptions::default()).await?;
                    replayed.push(letter);
                }
                Err(e @ (BrokerError::Unroutable { .. } | BrokerError::Nacked { .. })) => {
                    failed.push((letter, e));
                    kept.push(got.delivery);
                }
                Err(e) => {
                    got.delivery.acker.nack(BasicNackOptions { multiple: false, requeue: true }).await?;
                    for d in kept {
                        d.acker.nack(BasicNackOptions { multiple: false, requeue: true }).await?;
                    }
                    return Err(e);
                }
            }
        }
        for d in kept {
            d.acker.nack(BasicNackOptions { multiple: false, requeue: true }).await?;
        }
        let _ = ch.close(200, "done".into()).await;
        Ok((replayed, failed))
    }
}

/// Publishes a dead letter again with its original properties and headers (ours and
/// RabbitMQ's death records dropped), and waits for the confirm.
async fn replay(
    ch: &Channel,
    letter: &DeadLetter,
    delivery: &lapin::message::Delivery,
    fallback_exchange: &str,
) -> Result<(), BrokerError> {
    let exchange = letter.exchange.clone().filter(|e| !e.is_empty()).unwrap_or_else(|| fallback_exchange.to_owned());
    let mut headers = FieldTable::default();
    if let Some(h) = delivery.properties.headers().as_ref() {
        for (k, v) in h.inner() {
            let name = k.as_str();
            if !(name.starts_with(OURS)
                || name.starts_with("x-death")
                || name.starts_with("x-first-death")
                || name.starts_with("x-last-death")
                || name == "x-delivery-count")
            {
                headers.insert(k.clone(), v.clone());
            }
        }
    }
    let mut props = BasicProperties::default()
        .with_content_type("application/json".into())
        .with_delivery_mode(2)
        .with_headers(headers);
    if let Some(kind) = &letter.kind {
        props = props.with_type(kind.as_str().into());
    }
    if let Some(id) = &letter.message_id {
        props = props.with_message_id(id.as_str().into());
    }
    if let Some(reply_to) = &letter.reply_to {
        props = props.with_reply_to(reply_to.as_str().into());
    }
    let confirm = ch
        .basic_publish(
            exchange.as_str().into(),
            letter.routing_key.as_str().into(),
            BasicPublishOptions { mandatory: true, ..Default::default() },
            &letter.body,
            props,
        )
        .await?
        .await?;
    match confirm {
        Confirmation::Ack(None) | Confirmation::NotRequested => Ok(()),
        Confirmation::Ack(Some(_)) => {
            Err(BrokerError::Unroutable { exchange, routing_key: letter.routing_key.clone() })
        }
        Confirmation::Nack(_) => Err(BrokerError::Nacked { exchange, routing_key: letter.routing_key.clone() }),
    }
}

impl DeadLetter {
    fn of(d: &lapin::message::Delivery) -> DeadLetter {
        let headers = d.properties.headers().as_ref();
        let text = |name: &str| headers.and_then(|h| h.inner().get(name)).and_then(value_text);
        // RabbitMQ's own record of the death, when it dead-lettered the message itself.
        let death = headers.and_then(|h| h.inner().get("x-death")).and_then(|v| match v {
            AMQPValue::FieldArray(a) => a.as_slice().first().and_then(|first| match first {
                AMQPValue::FieldTable(t) => Some(t.clone()),
                _ => None,
            }),
            _ => None,
        });
        let death_text = |name: &str| death.as_ref().and_then(|t| t.inner().get(name)).and_then(value_text);
        let death_key = death.as_ref().and_then(|t| t.inner().get("routing-keys")).and_then(|v| match v {
            AMQPValue::FieldArray(a) => a.as_slice().first().and_then(value_text),
            _ => None,
        });
        let reason = text("x-offloader-reason").unwrap_or_else(|| match (death_text("reason"), death_text("queue")) {
            (Some(reason), Some(queue)) => format!("RabbitMQ dead-lettered it from {queue}: {reason}"),
            (Some(reason), None) => format!("RabbitMQ dead-lettered it: {reason}"),
            _ => "unknown (no reason recorded)".to_owned(),
        });
        let dead_at = text("x-offloader-dead-at").or_else(|| {
            death.as_ref().and_then(|t| t.inner().get("time")).and_then(|v| match v {
                AMQPValue::Timestamp(secs) => chrono::DateTime::from_timestamp(*secs as i64, 0).map(|t| t.to_rfc3339()),
                _ => None,
            })
        });
        let routing_key =
            text("x-offloader-routing-key").or(death_key).unwrap_or_else(|| d.routing_key.as_str().to_owned());
        let exchange = text("x-offloader-exchange").or_else(|| death_text("exchange"));
        let kind = text("x-offloader-type").or_else(|| {
            d.properties.kind().as_ref().map(|k| k.as_str().to_owned()).filter(|k| k != super::DEAD_LETTER_KIND)
        });
        let message_id = d.properties.message_id().as_ref().map(|s| s.as_str().to_owned());
        let mut hash = sha2::Sha256::new();
        for part in [message_id.as_deref(), Some(routing_key.as_str()), Some(reason.as_str()), dead_at.as_deref()] {
            hash.update(part.unwrap_or("").as_bytes());
            hash.update([0]);
        }
        hash.update(&d.data);
        let id = hex::encode(&hash.finalize()[..12]);
        let delivery_count = match headers.and_then(|h| h.inner().get("x-delivery-count")) {
            Some(AMQPValue::LongLongInt(n)) => u32::try_from(*n).unwrap_or(u32::MAX),
            Some(AMQPValue::LongInt(n)) => u32::try_from(*n).unwrap_or(0),
            _ => 0,
        };
        DeadLetter {
            id,
            reason,
            exchange,
            routing_key,
            kind,
            worker: text("x-offloader-worker"),
            dead_at,
            message_id,
            reply_to: d.properties.reply_to().as_ref().map(|s| s.as_str().to_owned()),
            delivery_count,
            body: d.data.clone(),
        }
    }
}

fn value_text(v: &AMQPValue) -> Option<String> {
    match v {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}
