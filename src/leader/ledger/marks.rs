//! QUEUED marks written behind: the broker's confirm of a job's first publish, held in memory
//! until the job's next write carries it, or for [`MARK_DELAY`] at most.
//!
//! Writing the mark on its own cost a fifth of the ledger's work per job (a read, the record's
//! JSON and an update of the row and its indexes; docs/benchmarks.md §1), and most jobs are done
//! within that delay: their completion then writes the row once, QUEUED and completed together.
//! Nothing the mark guards is lost by the wait. The job is recorded before it is published,
//! whatever happens here; a leader that dies with marks pending leaves those jobs NEW, which
//! the republisher publishes again (as it always did for a crash between publish and mark), and
//! the ledger's rules absorb the duplicate. Reads through the ledger (`get`, `find`, the counts
//! per state) show a pending mark as if written; only a search by state (`?state=QUEUED`) and
//! the statistics' sums may take such a job for NEW, for [`MARK_DELAY`] at most.

use crate::leader::jobs::lifecycle::Effect;
use crate::protocol::api::JobRecord;
use crate::protocol::JobId;
use chrono::{DateTime, Utc};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a mark may wait for its job's next write before it is written on its own.
pub(super) const MARK_DELAY: Duration = Duration::from_millis(500);

/// One confirm not yet written: which attempt the broker confirmed, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Mark {
    pub attempt: u32,
    pub at: DateTime<Utc>,
}

/// How long a job that ended before its confirm was held stays remembered (see
/// [`Marks::ended`]); the confirm comes moments after the worker's completion, if at all.
const ENDED_FIRST_KEPT: Duration = Duration::from_secs(30);

/// The marks not yet written, by job.
#[derive(Default)]
pub(super) struct Marks {
    pending: Mutex<Pending>,
    /// A flush is scheduled.
    flushing: AtomicBool,
}

#[derive(Default)]
struct Pending {
    marks: HashMap<JobId, Mark>,
    /// Jobs that ended before their confirm was held here (a worker can finish a job before its
    /// publisher hears the broker's confirm): their confirm, when it comes, is not held, so a
    /// pending mark always means a job that has not ended. Oldest first, for pruning.
    ended_first: HashMap<JobId, Instant>,
    ended_order: VecDeque<(JobId, Instant)>,
}

impl Marks {
    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Holds `mark` for `id`; true when no flush was scheduled yet (the caller schedules one).
    /// A job that already ended needs no mark and gets none.
    pub fn add(&self, id: JobId, mark: Mark) -> bool {
        let mut pending = self.pending();
        if pending.ended_first.remove(&id).is_some() {
            return false;
        }
        pending.marks.insert(id, mark);
        drop(pending);
        !self.flushing.swap(true, Ordering::AcqRel)
    }

    /// Whether a write ended a job that was NEW before it (`was_new`) without carrying a pending
    /// mark: the job ended before its confirm was held here, and [`Marks::ended`] must hear of
    /// it once the write is committed. A job whose mark was already written needs no such note.
    pub fn ended_before_confirm(was_new: bool, carried: Option<Mark>, effect: Effect, rec: &JobRecord) -> bool {
        was_new && carried.is_none() && effect == Effect::Applied && rec.state.is_final()
    }

    /// A committed write ended the job. Its pending mark, if any, has nothing left to say (the
    /// record is past QUEUED); with none, the job ended before its confirm was held, and the
    /// confirm is refused when it comes. Called before anyone waiting for the job is told, so
    /// that [`Marks::is_pending`] never answers yes for an ended job.
    pub fn ended(&self, id: JobId) {
        let mut pending = self.pending();
        if pending.marks.remove(&id).is_some() {
            return;
        }
        let now = Instant::now();
        while pending.ended_order.front().is_some_and(|(_, at)| now.duration_since(*at) > ENDED_FIRST_KEPT) {
            if let Some((old, at)) = pending.ended_order.pop_front() {
                if pending.ended_first.get(&old) == Some(&at) {
                    pending.ended_first.remove(&old);
                }
            }
        }
        pending.ended_first.insert(id, now);
        pending.ended_order.push_back((id, now));
    }

    /// The pending mark applied to `rec` in memory, when it changed the record (which then needs
    /// writing). A mark the record has moved past changes nothing.
    pub fn apply(&self, rec: &mut JobRecord) -> Option<Mark> {
        let mark = *self.pending().marks.get(&rec.id)?;
        (rec.confirm_published(mark.attempt, mark.at) == Effect::Applied).then_some(mark)
    }

    /// Whether `rec` is a NEW job whose publish is confirmed, only not written yet.
    pub fn confirms(&self, rec: &JobRecord) -> bool {
        self.pending().marks.get(&rec.id).is_some_and(|m| m.attempt == rec.attempt)
    }

    /// Whether a mark for `id` waits to be written.
    pub fn is_pending(&self, id: JobId) -> bool {
        self.pending().marks.contains_key(&id)
    }

    /// Forgets the marks that were written (committed), unless a newer one replaced them.
    pub fn written(&self, done: &[(JobId, Mark)]) {
        if done.is_empty() {
            return;
        }
        let mut pending = self.pending();
        for (id, mark) in done {
            if pending.marks.get(id) == Some(mark) {
                pending.marks.remove(id);
            }
        }
    }

    /// Every pending mark.
    pub fn all(&self) -> Vec<(JobId, Mark)> {
        self.pending().marks.iter().map(|(id, m)| (*id, *m)).collect()
    }

    /// Every pending mark, for a flush; the flush is no longer scheduled from here on.
    pub fn to_flush(&self) -> Vec<(JobId, Mark)> {
        self.flushing.store(false, Ordering::Release);
        self.all()
    }

    /// Marks a flush scheduled again (after a failed one), if none is; true when the caller
    /// should schedule it.
    pub fn reschedule(&self) -> bool {
        !self.pending().marks.is_empty() && !self.flushing.swap(true, Ordering::AcqRel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark() -> Mark {
        Mark { attempt: 1, at: Utc::now() }
    }

    #[test]
    fn a_confirm_held_before_the_job_ends_is_cleared_when_it_ends() {
        let marks = Marks::default();
        let id = JobId::new();
        assert!(marks.add(id, mark()), "the first mark schedules a flush");
        assert!(marks.is_pending(id));
        marks.ended(id);
        assert!(!marks.is_pending(id), "an ended job has no pending mark");
        assert!(marks.all().is_empty());
    }

    #[test]
    fn a_confirm_that_comes_after_the_job_ended_is_not_held() {
        let marks = Marks::default();
        let (late, other) = (JobId::new(), JobId::new());
        marks.ended(late);
        assert!(!marks.add(late, mark()), "nothing to flush for a job that ended");
        assert!(!marks.is_pending(late));
        // The refusal is used up: a later mark of the same id (a retried job) is held again.
        assert!(marks.add(late, mark()));
        assert!(marks.is_pending(late));
        // Other jobs are not affected.
        assert!(!marks.add(other, mark()), "a flush is already scheduled");
        assert!(marks.is_pending(other));
    }

    #[test]
    fn remembered_ends_are_pruned_once_old() {
        let marks = Marks::default();
        let old = JobId::new();
        marks.ended(old);
        {
            let mut pending = marks.pending();
            let long_ago = Instant::now() - ENDED_FIRST_KEPT - Duration::from_secs(1);
            pending.ended_first.insert(old, long_ago);
            pending.ended_order[0].1 = long_ago;
        }
        marks.ended(JobId::new());
        let pending = marks.pending();
        assert!(!pending.ended_first.contains_key(&old), "an end older than the window is forgotten");
        assert_eq!((pending.ended_first.len(), pending.ended_order.len()), (1, 1));
    }
}
