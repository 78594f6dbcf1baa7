//! The dead-letter console: what `<ns>.dead` holds, and replaying or discarding one message.
//! The broker reads and settles the queue (`broker::DeadLetter`); this turns its messages into
//! the API's documents and says where a replay goes: back to the exchange the message was
//! first published to, else the jobs exchange, with its original routing key, so a job that was
//! refused runs again.

use crate::broker::{Broker, BrokerError, DeadLetter, Settle};
use crate::protocol::api::{DeadLetterView, FailedReplay, ReplayedDeadLetters, DEAD_LETTER_PREVIEW_BYTES};
use crate::protocol::Topic;

/// The most dead letters looked through to find one by id.
const SCAN: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    #[error("no dead letter {0} (see `offloader dead list`)")]
    NotFound(String),
    #[error(transparent)]
    Broker(#[from] BrokerError),
}

/// The first `limit` dead letters, oldest first.
pub async fn list(broker: &Broker, limit: usize) -> Result<Vec<DeadLetterView>, DeadLetterError> {
    Ok(broker.dead_letters(limit).await?.iter().map(|d| view(broker, d)).collect())
}

/// One dead letter, left in the queue.
pub async fn get(broker: &Broker, id: &str) -> Result<DeadLetterView, DeadLetterError> {
    let all = broker.dead_letters(SCAN).await?;
    all.iter().find(|d| d.id == id).map(|d| view(broker, d)).ok_or_else(|| DeadLetterError::NotFound(id.to_owned()))
}

/// Publishes the dead letter again where it was going, then drops it from the dead queue.
pub async fn replay(broker: &Broker, id: &str) -> Result<DeadLetterView, DeadLetterError> {
    let how = Settle::Replay { fallback_exchange: broker.names().jobs_exchange() };
    let done = broker.settle_dead_letter(id, how, SCAN).await?;
    let letter = done.ok_or_else(|| DeadLetterError::NotFound(id.to_owned()))?;
    tracing::info!(id, routing_key = %letter.routing_key, "dead letter replayed");
    Ok(view(broker, &letter))
}

/// Publishes every dead letter (the first `SCAN`) again where it was going; those that cannot
/// be (no queue takes their routing key) stay dead and are listed with why.
pub async fn replay_all(broker: &Broker) -> Result<ReplayedDeadLetters, DeadLetterError> {
    let fallback = broker.names().jobs_exchange();
    let (replayed, failed) = broker.replay_all_dead_letters(&fallback, SCAN).await?;
    tracing::info!(replayed = replayed.len(), failed = failed.len(), "dead letters replayed");
    Ok(ReplayedDeadLetters {
        replayed: replayed.iter().map(|d| view(broker, d)).collect(),
        failed: failed
            .iter()
            .map(|(d, e)| FailedReplay { dead_letter: view(broker, d), error: e.to_string() })
            .collect(),
    })
}

/// Drops the dead letter for good.
pub async fn discard(broker: &Broker, id: &str) -> Result<DeadLetterView, DeadLetterError> {
    let done = broker.settle_dead_letter(id, Settle::Discard, SCAN).await?;
    let letter = done.ok_or_else(|| DeadLetterError::NotFound(id.to_owned()))?;
    tracing::info!(id, routing_key = %letter.routing_key, "dead letter discarded");
    Ok(view(broker, &letter))
}

fn view(broker: &Broker, d: &DeadLetter) -> DeadLetterView {
    let jobs = broker.names().jobs_exchange();
    let from_jobs = d.exchange.as_deref().is_none_or(|e| e == jobs);
    let topic = if from_jobs { Topic::from_routing_key(&d.routing_key).ok() } else { None };
    let cut = d.body.len().min(DEAD_LETTER_PREVIEW_BYTES);
    DeadLetterView {
        id: d.id.clone(),
        reason: d.reason.clone(),
        exchange: d.exchange.clone(),
        routing_key: d.routing_key.clone(),
        topic,
        kind: d.kind.clone(),
        worker: d.worker.clone(),
        dead_at: d.dead_at.clone(),
        message_id: d.message_id.clone(),
        delivery_count: d.delivery_count,
        size: d.body.len(),
        preview: String::from_utf8_lossy(&d.body[..cut]).into_owned(),
    }
}
