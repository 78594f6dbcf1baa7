//! Dead-lettering with a reason: what happens to a message nobody can act on.
//!
//! RabbitMQ's own dead-lettering (a queue's `x-dead-letter-exchange`, reached when a message
//! is rejected or exceeds its delivery limit) keeps the message but not *why*. Ours publishes
//! the unchanged body to the dead-letter exchange with the reason and the message's origin in
//! headers, waits for the confirm, and only then acks the original, so a message is never lost
//! between the two and a person (or `offloader dead`) can tell what went wrong and where to
//! send it back.

use super::{Delivery, Outgoing, Publisher};

/// The header holding the reason.
pub const REASON_HEADER: &str = "x-offloader-reason";
/// The AMQP `type` of dead-lettered messages.
pub const DEAD_LETTER_KIND: &str = "offloader.dead-letter";

/// Moves `delivery` to the dead-letter exchange with `reason` (and `extra` headers, such as the
/// worker), then acks it. When the dead-letter publish fails, the delivery is rejected so the
/// queue's own dead-lettering keeps it; either way the caller can go on to the next message.
pub async fn dead_letter(publisher: &Publisher, delivery: &Delivery, reason: &str, extra: &[(&str, String)]) {
    match publish_dead_letter(publisher, delivery, reason, extra).await {
        Ok(()) => {
            if let Err(e) = delivery.ack().await {
                tracing::warn!(error = %e, "ack after dead-lettering failed; the message may come back once");
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "could not dead-letter; rejecting instead");
            let _ = delivery.reject().await;
        }
    }
}

/// Publishes a copy of `delivery` to the dead-letter exchange, with the reason and its origin
/// in headers, and waits for the confirm. The delivery itself is left for the caller to settle
/// (a batch consumer acks it with the rest of its batch).
pub async fn publish_dead_letter(
    publisher: &Publisher,
    delivery: &Delivery,
    reason: &str,
    extra: &[(&str, String)],
) -> Result<(), super::BrokerError> {
    tracing::error!(reason, routing_key = %delivery.routing_key(), "dead-lettering malformed message");
    let names = publisher.broker().names();
    let mut out =
        Outgoing::new(names.dead_letter_exchange(), delivery.routing_key(), DEAD_LETTER_KIND, delivery.data().to_vec());
    out.message_id = delivery.message_id().map(str::to_owned);
    out.reply_to = delivery.reply_to().map(str::to_owned);
    out.headers = vec![
        (REASON_HEADER.into(), reason.chars().take(1000).collect()),
        ("x-offloader-exchange".into(), delivery.exchange().to_owned()),
        ("x-offloader-routing-key".into(), delivery.routing_key().to_owned()),
        ("x-offloader-dead-at".into(), chrono::Utc::now().to_rfc3339()),
    ];
    if let Some(kind) = delivery.kind() {
        out.headers.push(("x-offloader-type".into(), kind.to_owned()));
    }
    out.headers.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    publisher.publish(&out).await
}
