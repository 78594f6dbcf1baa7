//! Publishing jobs again: failed jobs whose retry delay has passed, declined jobs going back
//! to their queue, and jobs recorded but never confirmed by the broker (a leader died between
//! the two, or RabbitMQ was away). A duty of the elected leader.

use super::manager::JobManager;
use crate::leader::ledger::LedgerError;
use crate::protocol::api::JobRecord;
use crate::protocol::{InstanceId, JobState};
use chrono::{DateTime, Utc};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long a NEW job of a live leader is left alone before the republisher takes it for a lost
/// publish: a publish in progress (the broker slow to confirm) must not be doubled.
const UNCONFIRMED_GRACE: chrono::Duration = chrono::Duration::seconds(40);

/// Runs every `every` until `cancel` fires; `leader_alive` tells whether a leader is still in
/// the topology (its NEW jobs get the grace; a departed leader's are published at once).
pub async fn republish_loop(
    jobs: Arc<JobManager>,
    every: Duration,
    leader_alive: impl Fn(InstanceId) -> bool + Send + Sync + 'static,
    cancel: CancellationToken,
) {
    let mut first_round = true;
    loop {
        match due_now(&jobs, Utc::now(), first_round, &leader_alive).await {
            Ok(due) => publish_all(&jobs, &due).await,
            Err(e) => tracing::error!(error = %e, "cannot read due jobs"),
        }
        first_round = false;
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// Which NEW jobs to publish: those whose publish is known to have failed here, those past the
/// grace, those of a leader that is gone, and (at this leader's first round) those it recorded
/// before a restart or that nobody claims.
fn publish_new(
    rec: &JobRecord,
    now: DateTime<Utc>,
    me: InstanceId,
    first_round: bool,
    unsent: &BTreeSet<crate::protocol::JobId>,
    leader_alive: &(dyn Fn(InstanceId) -> bool + Sync),
) -> bool {
    unsent.contains(&rec.id)
        || rec.created_at <= now - UNCONFIRMED_GRACE
        || match rec.created_by {
            Some(by) if by == me => first_round,
            Some(by) => !leader_alive(by),
            None => first_round,
        }
}

async fn due_now(
    jobs: &JobManager,
    now: DateTime<Utc>,
    first_round: bool,
    leader_alive: &(dyn Fn(InstanceId) -> bool + Sync),
) -> Result<Vec<JobRecord>, LedgerError> {
    let unsent = jobs.take_unsent();
    // Every NEW job, and the retries and declines whose time has come.
    let mut due = jobs.ledger().due(now, now).await?;
    due.retain(|r| r.state != JobState::New || publish_new(r, now, jobs.me(), first_round, &unsent, leader_alive));
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
                } else {
                    tracing::info!(job = %rec.id, "publishing a job recorded but never confirmed");
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Job, JobId, Properties};

    fn new_job(by: Option<InstanceId>, age_s: i64, now: DateTime<Utc>) -> JobRecord {
        let job = Job {
            id: JobId::new(),
            topic: "a/b".parse().unwrap(),
            properties: Properties::new(),
            inputs: vec![],
            attempt: 1,
            max_attempts: 1,
            timeout_ms: None,
        };
        let mut r = JobRecord::new(&job, now - chrono::Duration::seconds(age_s));
        r.created_by = by;
        r
    }

    #[test]
    fn new_jobs_of_live_leaders_get_the_grace_and_orphans_do_not() {
        let (me, other, gone) = (InstanceId::random(), InstanceId::random(), InstanceId::random());
        let now = Utc::now();
        let alive = |id: InstanceId| id == other;
        let none = BTreeSet::new();
        let pick = |r: &JobRecord, first: bool| publish_new(r, now, me, first, &none, &alive);
        assert!(!pick(&new_job(Some(other), 1, now), false), "another live leader may still be publishing it");
        assert!(pick(&new_job(Some(gone), 1, now), false), "its leader is gone");
        assert!(pick(&new_job(Some(other), 41, now), false), "past the grace");
        assert!(!pick(&new_job(Some(me), 1, now), false), "our own publish in progress");
        assert!(pick(&new_job(Some(me), 1, now), true), "left over from before our restart");
        assert!(!pick(&new_job(Some(other), 1, now), true), "not ours to publish at our start");
        let r = new_job(Some(me), 1, now);
        let unsent: BTreeSet<_> = [r.id].into();
        assert!(publish_new(&r, now, me, false, &unsent, &alive), "its publish failed here");
    }
}
