//! Publishing jobs again: failed jobs whose retry delay has passed, declined jobs going back
//! to their queue, and jobs recorded but never confirmed by the broker (the leader died between
//! the two, or RabbitMQ was away).

use super::manager::JobManager;
use crate::leader::ledger::LedgerError;
use crate::protocol::api::JobRecord;
use crate::protocol::JobState;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long a NEW job is left alone before the republisher takes it for a lost publish: a
/// publish in progress (the broker slow to confirm) must not be doubled.
const UNCONFIRMED_GRACE: chrono::Duration = chrono::Duration::seconds(40);

/// Runs every `every` until `cancel` fires.
pub async fn republish_loop(jobs: Arc<JobManager>, every: Duration, cancel: CancellationToken) {
    // At start, any NEW job is left over from a previous run: no grace.
    let mut grace = chrono::Duration::zero();
    loop {
        let now = Utc::now();
        match due_now(&jobs, now, now - grace).await {
            Ok(due) => publish_all(&jobs, &due).await,
            Err(e) => tracing::error!(error = %e, "cannot read due jobs"),
        }
        grace = UNCONFIRMED_GRACE;
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// The ledger's due jobs, plus the NEW jobs whose publish is known to have failed.
async fn due_now(
    jobs: &JobManager,
    now: DateTime<Utc>,
    unconfirmed_before: DateTime<Utc>,
) -> Result<Vec<JobRecord>, LedgerError> {
    let unsent = jobs.take_unsent();
    let mut due = jobs.ledger().due(now, unconfirmed_before).await?;
    for id in unsent {
        if due.iter().any(|r| r.id == id) {
            continue;
        }
        match jobs.ledger().get(id).await {
            Ok(Some(rec)) if rec.state == JobState::New => due.push(rec),
            Ok(_) => {}
            Err(e) => {
                jobs.mark_unsent(id);
                return Err(e);
            }
        }
    }
    Ok(due)
}

async fn publish_all(jobs: &JobManager, due: &[JobRecord]) {
    for (i, rec) in due.iter().enumerate() {
        let attempt = rec.publish_attempt();
        match jobs.publish(rec).await {
            Ok(()) => {
                if attempt > rec.attempt {
                    jobs.metrics().retries.inc();
                    tracing::info!(job = %rec.id, attempt, state = %rec.state, "publishing the job again");
                }
                if let Err(e) = jobs.ledger().confirm_published(rec.id, attempt).await {
                    tracing::error!(job = %rec.id, error = %e, "could not record publish");
                }
            }
            Err(e) => {
                tracing::warn!(job = %rec.id, error = %e, "republish failed; will try again");
                // The broker is away: this job and the NEW ones not tried yet go first once it
                // is back.
                for left in due[i..].iter().filter(|r| r.state == JobState::New) {
                    jobs.mark_unsent(left.id);
                }
                return;
            }
        }
    }
}
