//! The jobs this worker is running, each with its own cancellation token, so a leader's stop
//! (`offloader.job-stop.v1`, broadcast to every worker) reaches exactly that job's consumer.
//!
//! A stop may arrive before the job starts here (it waits for a slot, or is still on its way
//! from the queue), so stops of jobs not running are remembered for a while: such a job is
//! settled without running its consumer when it arrives.

use crate::protocol::JobId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How long a stop of a job not running here is remembered.
const REMEMBER_STOPS: Duration = Duration::from_secs(600);
/// The most stops remembered; the oldest go first.
const MAX_STOPS: usize = 10_000;

#[derive(Default)]
pub struct RunningJobs {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Tokens by job, each with its attempt and the number of its run (a job delivered twice
    /// runs twice).
    running: HashMap<JobId, Vec<(u64, u32, CancellationToken)>>,
    /// Stops by job: up to which attempt, and when the stop came.
    stopped: HashMap<JobId, (u32, Instant)>,
    runs: u64,
}

/// A running job's place in [`RunningJobs`]; leaving it (drop) forgets the job.
pub struct Running {
    jobs: Arc<RunningJobs>,
    id: JobId,
    run: u64,
    pub token: CancellationToken,
}

impl Drop for Running {
    fn drop(&mut self) {
        let mut inner = self.jobs.lock();
        if let Some(tokens) = inner.running.get_mut(&self.id) {
            tokens.retain(|(run, _, _)| *run != self.run);
            if tokens.is_empty() {
                inner.running.remove(&self.id);
            }
        }
    }
}

impl RunningJobs {
    /// Registers attempt `attempt` of a job that starts now; its token is a child of `parent`
    /// (the worker's hard stop) and is already cancelled when the job was stopped before it
    /// arrived.
    pub fn start(self: &Arc<Self>, id: JobId, attempt: u32, parent: &CancellationToken) -> Running {
        let token = parent.child_token();
        let mut inner = self.lock();
        if inner.stopped.get(&id).is_some_and(|(upto, _)| attempt <= *upto) {
            token.cancel();
        }
        inner.runs += 1;
        let run = inner.runs;
        inner.running.entry(id).or_default().push((run, attempt, token.clone()));
        Running { jobs: self.clone(), id, run, token }
    }

    /// Stops the job's attempts up to `attempt` if they run here, and remembers the stop
    /// either way. True when one ran here.
    pub fn stop(&self, id: JobId, attempt: u32) -> bool {
        let mut inner = self.lock();
        let now = Instant::now();
        inner.stopped.retain(|_, (_, at)| now.duration_since(*at) < REMEMBER_STOPS);
        if inner.stopped.len() >= MAX_STOPS {
            if let Some(oldest) = inner.stopped.iter().min_by_key(|(_, (_, at))| *at).map(|(id, _)| *id) {
                inner.stopped.remove(&oldest);
            }
        }
        let upto = inner.stopped.get(&id).map_or(attempt, |(old, _)| attempt.max(*old));
        inner.stopped.insert(id, (upto, now));
        let mut here = false;
        for (_, a, token) in inner.running.get(&id).map(Vec::as_slice).unwrap_or_default() {
            if *a <= attempt {
                token.cancel();
                here = true;
            }
        }
        here
    }

    /// Whether a user stopped this attempt (as opposed to the worker stopping hard).
    pub fn was_stopped(&self, id: JobId, attempt: u32) -> bool {
        self.lock().stopped.get(&id).is_some_and(|(upto, _)| attempt <= *upto)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stop_cancels_the_running_job_and_one_that_arrives_later() {
        let jobs = Arc::new(RunningJobs::default());
        let hard = CancellationToken::new();
        let (a, b) = (JobId::new(), JobId::new());
        let run_a = jobs.start(a, 1, &hard);
        assert!(jobs.stop(a, 1));
        assert!(run_a.token.is_cancelled());
        drop(run_a);
        assert!(!jobs.start(a, 2, &hard).token.is_cancelled(), "a retried: its next attempt runs");
        assert!(!jobs.stop(b, 1), "b does not run here");
        assert!(jobs.start(b, 1, &hard).token.is_cancelled(), "b was stopped before it arrived");
        let c = jobs.start(JobId::new(), 1, &hard);
        assert!(!c.token.is_cancelled());
        hard.cancel();
        assert!(c.token.is_cancelled(), "a hard stop reaches every job");
    }
}
