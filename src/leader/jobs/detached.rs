//! Taking back detached jobs whose worker is gone. A duty of the elected leader.
//!
//! A worker acks a job's delivery once the job has run for its `--detach-after` (below the
//! broker's `consumer_timeout`, which would otherwise close its channel and hand the job to
//! another worker while the first run goes on). From then on the broker no longer holds the job:
//! if that worker dies, nothing would ever run it again. So the elected leader watches the
//! topology, as Sling's job manager reschedules the jobs of an instance that left: an ACTIVE
//! detached job whose worker is no longer in view fails its attempt and is published again
//! (`JobRecord::worker_gone`; the republisher sends it).
//!
//! The check runs on every change of the topology (a departure is one), and every
//! [`RESCAN`] as well, since a detached started event can be applied after its worker already
//! left. It runs only while the view is *settled*: a leader that just started, or whose own
//! connection to the broker was away, has not heard the workers' heartbeats yet (or lost them
//! all at once), and every worker would look gone.

use super::manager::JobManager;
use crate::leader::ledger::{JobQuery, LedgerError};
use crate::protocol::{InstanceId, JobId, JobState};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How often ACTIVE jobs are checked when the topology does not change.
const RESCAN: Duration = Duration::from_secs(10);
/// ACTIVE jobs read from the ledger at once.
const PAGE: usize = 500;

/// Runs until `cancel` fires: `alive` tells whether an instance is in the topology, `settled`
/// whether the view has heard everyone for long enough to trust a departure, `changes` ticks
/// when the topology changes.
pub async fn take_back_loop(
    jobs: Arc<JobManager>,
    alive: impl Fn(InstanceId) -> bool + Send + Sync + 'static,
    settled: impl Fn() -> bool + Send + Sync + 'static,
    mut changes: watch::Receiver<u64>,
    cancel: CancellationToken,
) {
    loop {
        changes.borrow_and_update();
        if settled() {
            match orphans(&jobs, &alive).await {
                Ok(orphans) => take_back(&jobs, orphans).await,
                Err(e) => tracing::warn!(error = %e, "cannot read the active jobs"),
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            changed = changes.changed() => {
                if changed.is_err() {
                    // No view any more: the periodic check goes on.
                    tokio::time::sleep(RESCAN).await;
                }
            }
            _ = tokio::time::sleep(RESCAN) => {}
        }
    }
}

/// The ACTIVE detached jobs whose worker is not in view, with that worker.
async fn orphans(
    jobs: &JobManager,
    alive: &(dyn Fn(InstanceId) -> bool + Sync),
) -> Result<Vec<(JobId, InstanceId)>, LedgerError> {
    let mut found = Vec::new();
    let mut cursor = None;
    loop {
        let query = JobQuery { states: vec![JobState::Active], cursor, limit: PAGE, ..JobQuery::default() };
        let page = jobs.ledger().find(query).await?;
        found.extend(
            page.jobs
                .iter()
                .filter(|r| r.detached)
                .filter_map(|r| r.worker.as_ref().map(|w| (r.id, w.id)))
                .filter(|(_, worker)| !alive(*worker)),
        );
        match page.next {
            Some(next) => cursor = Some(next),
            None => return Ok(found),
        }
    }
}

async fn take_back(jobs: &JobManager, orphans: Vec<(JobId, InstanceId)>) {
    for (id, worker) in orphans {
        match jobs.worker_gone(id, worker).await {
            Ok(rec) if rec.state == JobState::Failed => tracing::warn!(
                job = %id, %worker, attempt = rec.attempt,
                "the worker of a detached job left: publishing the job again"
            ),
            Ok(rec) if rec.state == JobState::GivenUp => tracing::warn!(
                job = %id, %worker, attempt = rec.attempt,
                "the worker of a detached job left, and the job has no attempts left: given up"
            ),
            // It ended, or moved on, between the read and the update.
            Ok(_) => {}
            Err(e) => tracing::warn!(job = %id, error = %e, "cannot take back a detached job"),
        }
    }
}
