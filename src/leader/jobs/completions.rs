//! Applying what workers report, and waking whoever waits: the one path every job event takes,
//! whether it came through the reply queue (the poller) or from a workflow the leader ran
//! itself (a local run).

use super::lifecycle::Effect;
use super::metrics::{LeaderMetrics, StateLabels};
use super::queues::Queues;
use super::waiters::Waiters;
use crate::leader::ledger::{Ledger, LedgerError};
use crate::protocol::api::JobRecord;
use crate::protocol::message::Reply;
use crate::protocol::JobId;
use std::time::Duration;

pub struct Completions {
    ledger: Ledger,
    queues: Queues,
    waiters: Waiters,
    metrics: LeaderMetrics,
}

/// What applying one reply did.
#[derive(Debug)]
pub enum Applied {
    /// The record changed (and is now this).
    Changed(JobRecord),
    /// The record did not change (a duplicate, a stale event), and why.
    Ignored(JobRecord, &'static str),
    /// The ledger has no such job.
    Unknown(JobId),
}

impl Completions {
    pub fn new(ledger: Ledger, queues: Queues, metrics: LeaderMetrics) -> Self {
        Completions { ledger, queues, waiters: Waiters::default(), metrics }
    }

    /// The queue settings by which failed jobs are retried.
    pub fn queues(&self) -> &Queues {
        &self.queues
    }

    /// Applies `replies` in one ledger transaction (with the assets they change), then counts
    /// them and wakes the callers waiting for jobs they finished. An error means nothing was
    /// applied: the caller may offer the same replies again.
    pub async fn apply(&self, replies: Vec<Reply>) -> Result<Vec<Applied>, LedgerError> {
        self.metrics.reply_batch.observe(replies.len() as f64);
        let results = self.ledger.apply_replies(replies, self.queues.clone()).await?;
        Ok(results
            .into_iter()
            .map(|(reply, outcome)| match outcome {
                Some((Effect::Applied, rec)) => {
                    self.metrics.replies_applied.inc();
                    let trace_id = rec.trace.map(|t| t.trace_id()).unwrap_or_default();
                    tracing::debug!(job = %rec.id, %trace_id, state = %rec.state, attempt = rec.attempt, "job event applied");
                    self.finished(&rec);
                    Applied::Changed(rec)
                }
                Some((Effect::Ignored(why), rec)) => {
                    self.metrics.replies_ignored.inc();
                    tracing::debug!(job = %rec.id, why, "reply ignored");
                    Applied::Ignored(rec, why)
                }
                None => {
                    self.metrics.replies_ignored.inc();
                    tracing::warn!(job = %reply.job_id(), "reply for a job this ledger does not know");
                    Applied::Unknown(reply.job_id())
                }
            })
            .collect())
    }

    /// Counts a record whose change is committed and, when it is final, wakes its waiters.
    pub fn finished(&self, rec: &JobRecord) {
        if rec.state.is_final() {
            self.metrics.jobs_finished.get_or_create(&StateLabels { state: rec.state.to_string() }).inc();
            if let Some(done) = rec.finished_at {
                let secs = (done - rec.created_at).num_microseconds().unwrap_or(0) as f64 / 1e6;
                self.metrics.job_seconds.observe(secs.max(0.0));
            }
            self.waiters.finished(rec);
        }
    }

    /// Wakes the callers waiting for `id`, which another leader of a shared ledger finished.
    pub async fn wake(&self, id: JobId) {
        if !self.waiters.is_waiting(id) {
            return;
        }
        match self.ledger.get(id).await {
            Ok(Some(rec)) if rec.state.is_final() => self.waiters.finished(&rec),
            Ok(_) => {}
            Err(e) => tracing::warn!(job = %id, error = %e, "cannot read a job another leader finished"),
        }
    }

    /// The job once it is final, or as it is when `timeout` runs out; `None` if unknown.
    pub async fn wait(&self, id: JobId, timeout: Duration) -> Result<Option<JobRecord>, LedgerError> {
        // Register before reading, so a job finishing in between is not missed.
        let rx = self.waiters.register(id);
        // Most jobs waited for were just submitted, and are known unfinished without a read.
        if !self.ledger.known_unfinished(id) {
            let Some(rec) = self.ledger.get(id).await? else {
                self.waiters.forget(id);
                return Ok(None);
            };
            if rec.state.is_final() {
                self.waiters.forget(id);
                return Ok(Some(rec));
            }
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(rec)) => Ok(Some(rec)),
            _ => {
                self.waiters.forget(id);
                self.ledger.get(id).await
            }
        }
    }
}
