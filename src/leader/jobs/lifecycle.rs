//! The rules by which events change a job record.
//!
//! These rules are what make completions idempotent: a record in a final state never changes
//! again, and an event about an older attempt is ignored, so a completion delivered twice (a
//! worker died after publishing it, the leader restarted before acking it, two leaders drained
//! it) is applied once. They are pure: the ledger loads a record, applies a rule, and stores
//! the record only when the rule says [`Effect::Applied`].

use crate::protocol::api::{JobRecord, WorkerRef};
use crate::protocol::message::{Completion, JobProgress, JobStarted, Reply};
use crate::protocol::{InstanceId, JobResult, JobState};
use chrono::{DateTime, Utc};
use std::time::Duration;

/// When failed jobs are tried again: Sling's `queue.retries` and `queue.retrydelay`, with an
/// exponential backoff and a cap. Each retry waits `delay * backoff^(n-1)` (at most
/// `max_delay`), less up to a fifth at random: a burst of jobs failing together (an outage
/// ended, a bad deploy rolled back) comes back spread out instead of as one wave.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    /// Before the first retry.
    pub delay: Duration,
    /// Each further retry waits this many times longer (1: a fixed delay, as Sling's default).
    pub backoff: f64,
    /// The longest wait between two attempts.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        // Sling's 10 retries 2 s apart, growing: 2, 4, 8 ... 256 s, then 5 min. The retries of
        // one job span about 17 minutes, so an outage of minutes does not use them all up.
        RetryPolicy {
            max_attempts: 11,
            delay: Duration::from_secs(2),
            backoff: 2.0,
            max_delay: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (1 for the first) of a job; `spread` in [0, 1)
    /// picks where in the jitter band it lands.
    pub fn delay_before(&self, retry: u32, spread: f64) -> Duration {
        let exponent = retry.saturating_sub(1).min(64) as i32;
        let full = self.delay.as_secs_f64() * self.backoff.max(1.0).powi(exponent);
        let capped = full.min(self.max_delay.as_secs_f64()).max(0.0);
        Duration::from_secs_f64(capped * (1.0 - 0.2 * spread.clamp(0.0, 1.0)))
    }
}

/// Where in the jitter band one attempt of one job lands: derived from the job id and the
/// attempt, so it differs between jobs yet the rules stay a pure function of their inputs.
fn spread(id: &crate::protocol::JobId, attempt: u32) -> f64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    id.hash(&mut h);
    attempt.hash(&mut h);
    (h.finish() % 10_000) as f64 / 10_000.0
}

/// The most attempts a job may ask for: enough for any retry policy, few enough that a typo
/// cannot keep a failing job alive for years.
pub const MAX_ATTEMPTS: u32 = 1000;

/// What an event did to a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Applied,
    Ignored(&'static str),
}

impl JobRecord {
    /// Whether the record waits to be published again (a retry, or after a decline).
    fn waiting_to_republish(&self) -> bool {
        self.state == JobState::Failed || (self.state == JobState::Queued && self.next_attempt_at.is_some())
    }

    /// The attempt that publishes next: the current one for a NEW job, the next one for a job
    /// waiting to be published again.
    pub fn publish_attempt(&self) -> u32 {
        if self.waiting_to_republish() {
            self.attempt + 1
        } else {
            self.attempt
        }
    }

    /// Moves to `attempt` when it is the one published after a retry or a decline.
    fn advance_to(&mut self, attempt: u32) -> bool {
        if self.waiting_to_republish() && attempt == self.attempt + 1 {
            self.attempt = attempt;
            self.next_attempt_at = None;
            self.redeliveries = 0;
            self.detached = false;
            self.state = JobState::Queued;
            return true;
        }
        false
    }

    /// The broker confirmed attempt `attempt`. A retry's confirm also moves the record to that
    /// attempt.
    pub fn confirm_published(&mut self, attempt: u32, now: DateTime<Utc>) -> Effect {
        let confirmed = match self.state {
            JobState::New => attempt == self.attempt,
            _ => self.advance_to(attempt),
        };
        if !confirmed {
            // A fast worker's events can beat the confirm; they take precedence.
            return Effect::Ignored("already past queued");
        }
        self.state = JobState::Queued;
        self.queued_at = Some(now);
        Effect::Applied
    }

    pub fn apply(&mut self, reply: &Reply, now: DateTime<Utc>, policy: &RetryPolicy) -> Effect {
        match reply {
            Reply::Started(s) => self.apply_started(s),
            Reply::Completion(c) => self.apply_completion(c, now, policy),
            Reply::Progress(p) => self.apply_progress(p),
        }
    }

    /// An attempt is published before its confirm is recorded, so a fast worker's event about
    /// that attempt can arrive first. Only the leader publishes attempts, so such an event
    /// proves the publish: move to it.
    fn catch_up(&mut self, attempt: u32) {
        self.advance_to(attempt);
    }

    fn apply_started(&mut self, s: &JobStarted) -> Effect {
        self.catch_up(s.attempt);
        if self.state.is_final() || self.waiting_to_republish() {
            return Effect::Ignored("job already finished this attempt");
        }
        if s.attempt != self.attempt {
            return Effect::Ignored("event of another attempt");
        }
        self.state = JobState::Active;
        self.started_at = Some(s.started_at);
        // Once detached, an attempt stays so on its worker (the plain started event it sent
        // first may arrive late); the broker redelivering it to another worker proves the
        // detach never took effect there.
        let same_worker = self.worker.as_ref().is_some_and(|w| w.id == s.worker);
        self.detached = s.detached || (self.detached && same_worker);
        self.worker = Some(WorkerRef { id: s.worker, name: s.worker_name.clone() });
        self.redeliveries = self.redeliveries.max(s.redeliveries);
        Effect::Applied
    }

    /// A progress report is also news that the attempt runs: like a started event, it makes a
    /// QUEUED job ACTIVE. Reports of another attempt, or arriving after the end, are ignored.
    fn apply_progress(&mut self, p: &JobProgress) -> Effect {
        self.catch_up(p.attempt);
        if self.state.is_final() || self.waiting_to_republish() {
            return Effect::Ignored("job already finished this attempt");
        }
        if p.attempt != self.attempt {
            return Effect::Ignored("event of another attempt");
        }
        if self.progress.as_ref().is_some_and(|old| old.updated_at > p.progress.updated_at) {
            return Effect::Ignored("older progress");
        }
        if self.state != JobState::Active {
            self.state = JobState::Active;
            self.started_at = Some(self.started_at.unwrap_or(p.progress.updated_at));
        }
        self.worker = Some(WorkerRef { id: p.worker, name: p.worker_name.clone() });
        self.progress = Some(p.progress.clone());
        Effect::Applied
    }

    fn apply_completion(&mut self, c: &Completion, now: DateTime<Utc>, policy: &RetryPolicy) -> Effect {
        self.catch_up(c.attempt);
        let duplicate = self.state.is_final()
            || c.attempt < self.attempt
            || (self.waiting_to_republish() && c.attempt == self.attempt);
        if duplicate {
            self.duplicates_ignored += 1;
            return Effect::Ignored("duplicate or stale completion");
        }
        if c.attempt > self.attempt {
            // Attempts are published one after another, so a completion from the future is
            // not ours to believe.
            self.duplicates_ignored += 1;
            return Effect::Ignored("completion of an attempt never published");
        }
        self.completions_applied += 1;
        self.redeliveries = self.redeliveries.max(c.redeliveries);
        self.worker = Some(WorkerRef { id: c.worker, name: c.worker_name.clone() });
        self.started_at = Some(self.started_at.unwrap_or(c.started_at));
        self.result = Some(c.result.clone());
        // Declined attempts do not count: the job never ran. Nor do those before a user's retry.
        let counted = self.attempt.saturating_sub(self.declines).saturating_sub(self.attempts_before_retry);
        let jitter = spread(&self.id, self.attempt);
        let wait = |retry: u32| chrono::Duration::from_std(policy.delay_before(retry, jitter)).unwrap_or_default();
        self.state = match &c.result {
            JobResult::Ok => {
                self.outputs = c.outputs.clone();
                self.output_properties = c.properties.clone();
                JobState::Succeeded
            }
            JobResult::Failed { retry: true, .. } if counted < self.max_attempts => {
                self.next_attempt_at = Some(now + wait(counted));
                JobState::Failed
            }
            JobResult::Failed { retry: true, .. } => JobState::GivenUp,
            JobResult::Failed { retry: false, .. } | JobResult::Cancel { .. } => JobState::Error,
            JobResult::Declined { .. } => {
                // Back to its queue after the retry delay, for a worker that has what it needs
                // (or for the datastore it could not reach to come back): the delay grows with
                // the declines, so a long outage costs a message a few minutes, not a loop.
                self.declines += 1;
                self.started_at = None;
                self.next_attempt_at = Some(now + wait(self.declines));
                JobState::Queued
            }
        };
        if self.state.is_final() {
            self.finished_at = Some(c.finished_at);
        }
        Effect::Applied
    }

    /// The worker of the ACTIVE detached attempt left the topology (no heartbeat) before the
    /// attempt ended. The broker no longer holds the job (the worker acked it on detaching), so
    /// nothing else would ever run it again: the attempt counts as failed and the job waits to
    /// be published again at once, as attempt + 1. A completion the old attempt sends after all
    /// is then stale and ignored.
    ///
    /// It counts against `max_attempts` like a failure, not like a free redelivery: a job that
    /// brings its worker down (out of memory, a crashing library) would otherwise be published
    /// again forever, taking a worker down each time. With its attempts used up it is GIVEN_UP.
    pub fn worker_gone(&mut self, worker: InstanceId, now: DateTime<Utc>) -> Effect {
        if self.state != JobState::Active || !self.detached {
            return Effect::Ignored("not a running detached attempt");
        }
        if self.worker.as_ref().is_none_or(|w| w.id != worker) {
            return Effect::Ignored("the attempt runs on another worker");
        }
        let worker = self.worker.as_ref().map_or_else(|| "?".to_owned(), |w| w.name.clone());
        self.result = Some(JobResult::failed(format!(
            "worker {worker} left while running the detached attempt {}",
            self.attempt
        )));
        self.detached = false;
        let counted = self.attempt.saturating_sub(self.declines).saturating_sub(self.attempts_before_retry);
        if counted < self.max_attempts {
            self.state = JobState::Failed;
            self.next_attempt_at = Some(now);
        } else {
            self.state = JobState::GivenUp;
            self.finished_at = Some(now);
        }
        Effect::Applied
    }

    /// A user stopped the job. Its worker may still finish; that late completion is then
    /// ignored.
    pub fn stop(&mut self, now: DateTime<Utc>) -> Effect {
        if self.state.is_final() {
            return Effect::Ignored("job already finished");
        }
        self.state = JobState::Stopped;
        self.finished_at = Some(now);
        self.next_attempt_at = None;
        Effect::Applied
    }
}

impl JobRecord {
    /// A user retries a job that ended without success (Sling's `retryJobById`): GIVEN_UP,
    /// ERROR and STOPPED jobs go back to QUEUED with their attempts counted afresh, waiting to
    /// publish their next attempt at once.
    ///
    /// The job keeps its id: callers hold it (an asset shows its job, `submit --wait` and
    /// long-polls wait on it, scripts print it), and a new id would strand all of them. Its
    /// attempt number still grows, so whatever the earlier attempts send late (a stopped
    /// job's worker finishing after all) is told apart and ignored.
    pub fn retry(&mut self, now: DateTime<Utc>) -> Effect {
        if !matches!(self.state, JobState::GivenUp | JobState::Error | JobState::Stopped) {
            return Effect::Ignored("only GIVEN_UP, ERROR and STOPPED jobs can be retried");
        }
        self.attempts_before_retry = self.attempt.saturating_sub(self.declines);
        self.retries += 1;
        self.state = JobState::Queued;
        self.next_attempt_at = Some(now);
        self.result = None;
        self.outputs.clear();
        self.output_properties.clear();
        self.worker = None;
        self.started_at = None;
        self.finished_at = None;
        self.progress = None;
        self.redeliveries = 0;
        self.detached = false;
        Effect::Applied
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Job, JobId, Properties};

    fn record(max_attempts: u32) -> JobRecord {
        let job = Job {
            id: JobId::new(),
            topic: "a/b".parse().unwrap(),
            properties: Properties::new(),
            inputs: vec![],
            attempt: 1,
            max_attempts,
            timeout_ms: None,
        };
        JobRecord::new(&job, Utc::now())
    }

    fn completion(rec: &JobRecord, attempt: u32, result: JobResult) -> Reply {
        Reply::Completion(Completion {
            job_id: rec.id,
            attempt,
            worker: InstanceId::random(),
            worker_name: "w1".into(),
            result,
            outputs: vec![],
            properties: Properties::new(),
            started_at: Utc::now(),
            finished_at: Utc::now(),
            redeliveries: 0,
        })
    }

    fn started(rec: &JobRecord, attempt: u32) -> Reply {
        Reply::Started(JobStarted {
            job_id: rec.id,
            attempt,
            worker: InstanceId::random(),
            worker_name: "w1".into(),
            redeliveries: 0,
            started_at: Utc::now(),
            detached: false,
        })
    }

    fn detached(rec: &JobRecord, attempt: u32, worker: InstanceId) -> Reply {
        Reply::Started(JobStarted {
            job_id: rec.id,
            attempt,
            worker,
            worker_name: "w1".into(),
            redeliveries: 0,
            started_at: Utc::now(),
            detached: true,
        })
    }

    #[test]
    fn a_detached_attempt_whose_worker_left_is_published_again_and_its_late_result_ignored() {
        let p = RetryPolicy { max_attempts: 2, ..RetryPolicy::default() };
        let mut r = record(2);
        r.confirm_published(1, Utc::now());
        let w1 = InstanceId::random();
        r.apply(&started(&r, 1), Utc::now(), &p);
        assert!(matches!(r.worker_gone(w1, Utc::now()), Effect::Ignored(_)), "attached: the broker redelivers it");
        assert_eq!(r.apply(&detached(&r, 1, w1), Utc::now(), &p), Effect::Applied);
        assert_eq!((r.state, r.detached), (JobState::Active, true));
        let mut late_plain = detached(&r, 1, w1);
        if let Reply::Started(s) = &mut late_plain {
            s.detached = false;
        }
        r.apply(&late_plain, Utc::now(), &p);
        assert!(r.detached, "the plain started event arriving late does not undo the detach");

        let now = Utc::now();
        assert!(matches!(r.worker_gone(InstanceId::random(), now), Effect::Ignored(_)), "another worker left");
        assert_eq!(r.worker_gone(w1, now), Effect::Applied);
        assert_eq!((r.state, r.detached, r.next_attempt_at), (JobState::Failed, false, Some(now)));
        assert_eq!(r.publish_attempt(), 2, "published again as the next attempt, at once");
        assert!(matches!(r.worker_gone(w1, now), Effect::Ignored(_)), "once");
        assert!(matches!(r.apply(&completion(&r, 1, JobResult::Ok), Utc::now(), &p), Effect::Ignored(_)));
        r.confirm_published(2, Utc::now());
        assert!(matches!(r.apply(&completion(&r, 1, JobResult::Ok), Utc::now(), &p), Effect::Ignored(_)));
        assert_eq!((r.state, r.attempt, r.completions_applied), (JobState::Queued, 2, 0));

        // The second attempt detaches too and loses its worker: with max_attempts 2 that is the end.
        let w2 = InstanceId::random();
        r.apply(&detached(&r, 2, w2), Utc::now(), &p);
        assert_eq!(r.worker_gone(w2, Utc::now()), Effect::Applied);
        assert_eq!(r.state, JobState::GivenUp);
        assert!(r.finished_at.is_some());
    }

    #[test]
    fn a_redelivery_to_another_worker_is_not_detached() {
        let p = RetryPolicy::default();
        let mut r = record(3);
        r.confirm_published(1, Utc::now());
        let w1 = InstanceId::random();
        r.apply(&detached(&r, 1, w1), Utc::now(), &p);
        // The detaching worker died before its ack reached the broker: another one got it.
        r.apply(&started(&r, 1), Utc::now(), &p);
        assert_eq!((r.state, r.detached), (JobState::Active, false));
        assert!(matches!(r.worker_gone(w1, Utc::now()), Effect::Ignored(_)));
    }

    #[test]
    fn a_retry_that_completes_before_its_confirm_is_recorded_is_applied() {
        let p = RetryPolicy { max_attempts: 3, delay: Duration::ZERO, ..RetryPolicy::default() };
        let mut r = record(3);
        r.confirm_published(1, Utc::now());
        r.apply(&completion(&r, 1, JobResult::failed("flaky")), Utc::now(), &p);
        assert_eq!((r.state, r.attempt), (JobState::Failed, 1));
        // Attempt 2 is published; its completion beats the recording of the confirm.
        assert_eq!(r.apply(&completion(&r, 2, JobResult::Ok), Utc::now(), &p), Effect::Applied);
        assert_eq!((r.state, r.attempt, r.completions_applied), (JobState::Succeeded, 2, 2));
        assert!(matches!(r.confirm_published(2, Utc::now()), Effect::Ignored(_)));
        assert_eq!(r.state, JobState::Succeeded);
        // An event two attempts ahead is still refused.
        let mut r = record(5);
        r.confirm_published(1, Utc::now());
        r.apply(&completion(&r, 1, JobResult::failed("flaky")), Utc::now(), &p);
        assert!(matches!(r.apply(&completion(&r, 3, JobResult::Ok), Utc::now(), &p), Effect::Ignored(_)));
    }

    #[test]
    fn a_retried_job_counts_attempts_afresh_and_ignores_its_old_attempts() {
        let p = RetryPolicy { max_attempts: 1, delay: Duration::ZERO, ..RetryPolicy::default() };
        let mut r = record(1);
        r.confirm_published(1, Utc::now());
        r.apply(&completion(&r, 1, JobResult::failed("flaky")), Utc::now(), &p);
        assert_eq!(r.state, JobState::GivenUp);
        let late = completion(&r, 1, JobResult::Ok);
        assert_eq!(r.retry(Utc::now()), Effect::Applied);
        assert_eq!((r.state, r.publish_attempt(), r.retries), (JobState::Queued, 2, 1));
        assert!(matches!(r.apply(&late, Utc::now(), &p), Effect::Ignored(_)), "a late result of attempt 1");
        assert_eq!(r.confirm_published(2, Utc::now()), Effect::Applied);
        assert_eq!(r.attempt, 2);
        // One more failure gives up again: the retry granted max_attempts afresh, no more.
        r.apply(&completion(&r, 2, JobResult::failed("still flaky")), Utc::now(), &p);
        assert_eq!(r.state, JobState::GivenUp);
        assert!(matches!(r.retry(Utc::now()), Effect::Applied));
        r.confirm_published(3, Utc::now());
        assert_eq!(r.apply(&completion(&r, 3, JobResult::Ok), Utc::now(), &p), Effect::Applied);
        assert_eq!(r.state, JobState::Succeeded);
        assert!(matches!(r.retry(Utc::now()), Effect::Ignored(_)), "a SUCCEEDED job is not retried");
    }

    #[test]
    fn progress_is_kept_while_the_attempt_runs() {
        let p = RetryPolicy::default();
        let mut r = record(3);
        r.confirm_published(1, Utc::now());
        let report = |r: &JobRecord, attempt: u32, done: u64| {
            Reply::Progress(JobProgress {
                job_id: r.id,
                attempt,
                worker: InstanceId::random(),
                worker_name: "w1".into(),
                progress: crate::protocol::Progress {
                    steps: Some(4),
                    done,
                    updated_at: Utc::now(),
                    ..Default::default()
                },
            })
        };
        assert_eq!(r.apply(&report(&r, 1, 1), Utc::now(), &p), Effect::Applied);
        assert_eq!((r.state, r.progress.as_ref().map(|p| p.done)), (JobState::Active, Some(1)));
        assert!(matches!(r.apply(&report(&r, 2, 2), Utc::now(), &p), Effect::Ignored(_)));
        r.apply(&completion(&r, 1, JobResult::Ok), Utc::now(), &p);
        assert!(matches!(r.apply(&report(&r, 1, 3), Utc::now(), &p), Effect::Ignored(_)));
        assert_eq!(r.progress.as_ref().map(|p| p.done), Some(1));
    }

    #[test]
    fn happy_path() {
        let p = RetryPolicy::default();
        let mut r = record(3);
        assert_eq!(r.confirm_published(1, Utc::now()), Effect::Applied);
        assert_eq!(r.state, JobState::Queued);
        assert_eq!(r.apply(&started(&r, 1), Utc::now(), &p), Effect::Applied);
        assert_eq!(r.state, JobState::Active);
        assert_eq!(r.apply(&completion(&r, 1, JobResult::Ok), Utc::now(), &p), Effect::Applied);
        assert_eq!(r.state, JobState::Succeeded);
        assert_eq!(r.completions_applied, 1);
    }

    #[test]
    fn a_second_completion_changes_nothing() {
        let p = RetryPolicy::default();
        let mut r = record(3);
        let done = completion(&r, 1, JobResult::Ok);
        r.apply(&done, Utc::now(), &p);
        let before = r.clone();
        assert!(matches!(r.apply(&done, Utc::now(), &p), Effect::Ignored(_)));
        assert!(matches!(r.apply(&started(&r, 1), Utc::now(), &p), Effect::Ignored(_)));
        assert_eq!(r.duplicates_ignored, 1);
        assert_eq!(JobRecord { duplicates_ignored: 0, ..r }, before);
    }

    #[test]
    fn events_that_beat_the_confirm_win() {
        let p = RetryPolicy::default();
        let mut r = record(3);
        r.apply(&completion(&r, 1, JobResult::Ok), Utc::now(), &p);
        assert!(matches!(r.confirm_published(1, Utc::now()), Effect::Ignored(_)));
        assert_eq!(r.state, JobState::Succeeded);
    }

    #[test]
    fn failures_retry_then_give_up() {
        let p = RetryPolicy { max_attempts: 2, delay: Duration::from_millis(10), ..RetryPolicy::default() };
        let mut r = record(2);
        r.confirm_published(1, Utc::now());
        r.apply(&completion(&r, 1, JobResult::failed("x")), Utc::now(), &p);
        assert_eq!(r.state, JobState::Failed);
        assert!(r.next_attempt_at.is_some());
        assert_eq!(r.publish_attempt(), 2);
        assert_eq!(r.confirm_published(2, Utc::now()), Effect::Applied);
        assert_eq!((r.state, r.attempt), (JobState::Queued, 2));
        // A late duplicate of attempt 1 is stale.
        assert!(matches!(r.apply(&completion(&r, 1, JobResult::Ok), Utc::now(), &p), Effect::Ignored(_)));
        r.apply(&completion(&r, 2, JobResult::failed("x")), Utc::now(), &p);
        assert_eq!(r.state, JobState::GivenUp);
    }

    #[test]
    fn declined_attempts_go_back_to_the_queue_and_do_not_count() {
        let p = RetryPolicy { max_attempts: 1, delay: Duration::from_millis(10), ..RetryPolicy::default() };
        let mut r = record(1);
        r.confirm_published(1, Utc::now());
        r.apply(&completion(&r, 1, JobResult::declined("no model here")), Utc::now(), &p);
        assert_eq!((r.state, r.declines), (JobState::Queued, 1));
        assert!(r.next_attempt_at.is_some(), "waits to be published again");
        assert_eq!(r.publish_attempt(), 2);
        // The declined attempt's duplicate changes nothing.
        assert!(matches!(r.apply(&completion(&r, 1, JobResult::Ok), Utc::now(), &p), Effect::Ignored(_)));
        assert_eq!(r.confirm_published(2, Utc::now()), Effect::Applied);
        assert_eq!((r.state, r.attempt, r.next_attempt_at), (JobState::Queued, 2, None));
        // Its one counted attempt fails: with max_attempts 1 that is the end.
        r.apply(&completion(&r, 2, JobResult::failed("x")), Utc::now(), &p);
        assert_eq!(r.state, JobState::GivenUp);
    }

    #[test]
    fn cancel_and_permanent_failure_are_errors() {
        let p = RetryPolicy::default();
        let mut r = record(5);
        r.apply(&completion(&r, 1, JobResult::cancel("bad input")), Utc::now(), &p);
        assert_eq!(r.state, JobState::Error);
        let mut r = record(5);
        r.apply(&completion(&r, 1, JobResult::Failed { reason: "x".into(), retry: false }), Utc::now(), &p);
        assert_eq!(r.state, JobState::Error);
    }

    #[test]
    fn stopped_jobs_ignore_late_completions() {
        let p = RetryPolicy::default();
        let mut r = record(3);
        assert_eq!(r.stop(Utc::now()), Effect::Applied);
        assert!(matches!(r.apply(&completion(&r, 1, JobResult::Ok), Utc::now(), &p), Effect::Ignored(_)));
        assert_eq!(r.state, JobState::Stopped);
    }

    #[test]
    fn retry_delays_grow_by_the_backoff_up_to_the_cap_less_the_jitter() {
        let p = RetryPolicy {
            max_attempts: 20,
            delay: Duration::from_secs(2),
            backoff: 2.0,
            max_delay: Duration::from_secs(60),
        };
        let secs = |retry, spread| p.delay_before(retry, spread).as_secs_f64();
        assert_eq!([secs(1, 0.0), secs(2, 0.0), secs(3, 0.0), secs(5, 0.0)], [2.0, 4.0, 8.0, 32.0]);
        assert_eq!(secs(6, 0.0), 60.0, "capped");
        assert_eq!(secs(40, 0.0), 60.0, "no overflow far out");
        assert!((secs(3, 0.999) - 8.0 * 0.8).abs() < 0.01, "jitter takes at most a fifth off");
        let fixed = RetryPolicy { backoff: 1.0, ..p };
        assert_eq!(fixed.delay_before(7, 0.0), Duration::from_secs(2), "backoff 1 is Sling's fixed delay");
    }

    #[test]
    fn each_failure_waits_longer_and_jobs_spread_out() {
        let p = RetryPolicy { max_attempts: 5, ..RetryPolicy::default() };
        let mut r = record(5);
        let mut waits = vec![];
        for attempt in 1..=3 {
            r.confirm_published(attempt, Utc::now());
            let now = Utc::now();
            r.apply(&completion(&r, attempt, JobResult::failed("flaky")), now, &p);
            waits.push((r.next_attempt_at.unwrap() - now).num_milliseconds());
        }
        assert!(waits[0] > 1500 && waits[0] <= 2000, "{waits:?}");
        assert!(waits[1] > 3000 && waits[1] <= 4000, "{waits:?}");
        assert!(waits[2] > 6000 && waits[2] <= 8000, "{waits:?}");
        let spreads: std::collections::BTreeSet<u64> =
            (0..50).map(|_| (spread(&JobId::new(), 1) * 1000.0) as u64).collect();
        assert!(spreads.len() > 40, "jobs failing together come back at different times");
    }
}
