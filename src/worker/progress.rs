//! Passing a running job's progress on to the leader, coalesced: at most one
//! `offloader.job-progress.v1` per job every [`PROGRESS_EVERY`], carrying the latest state. A
//! consumer may report every item of a large batch; the reply queue sees a few messages a
//! second at most, and the leader's record never lags by more than that.

use crate::broker::{Outgoing, Publisher};
use crate::protocol::message::{JobProgress, Reply, JOB_PROGRESS_SCHEMA};
use crate::protocol::trace::{TraceContext, TRACEPARENT};
use crate::protocol::{InstanceId, JobId, Progress};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The shortest time between two progress reports of one job.
pub const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// Where one job's progress goes.
pub struct ProgressForwarder {
    pub publisher: Arc<Publisher>,
    pub reply_to: String,
    pub job_id: JobId,
    pub attempt: u32,
    pub worker: InstanceId,
    pub worker_name: String,
    pub trace: TraceContext,
}

impl ProgressForwarder {
    /// Forwards changes of `updates` until aborted or the job's context is gone. Reports are
    /// fire-and-forget like the started event: the next one replaces a lost one.
    pub fn spawn(self, mut updates: watch::Receiver<Option<Progress>>) -> JoinHandle<()> {
        tokio::spawn(async move {
            while updates.changed().await.is_ok() {
                let latest = updates.borrow_and_update().clone();
                if let Some(progress) = latest {
                    self.send(progress).await;
                }
                tokio::time::sleep(PROGRESS_EVERY).await;
            }
        })
    }

    async fn send(&self, progress: Progress) {
        let reply = Reply::Progress(JobProgress {
            job_id: self.job_id,
            attempt: self.attempt,
            worker: self.worker,
            worker_name: self.worker_name.clone(),
            progress,
        });
        let Ok(body) = serde_json::to_vec(&reply) else { return };
        let mut out = Outgoing::new("", self.reply_to.as_str(), JOB_PROGRESS_SCHEMA, body);
        out.message_id = Some(self.job_id.to_string());
        out.persistent = false;
        out.headers.push((TRACEPARENT.into(), self.trace.to_string()));
        if let Err(e) = self.publisher.publish_once(&out).await {
            tracing::debug!(error = %e, "progress report not sent");
        }
    }
}
