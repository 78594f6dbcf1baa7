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
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// How long a mark may wait for its job's next write before it is written on its own.
pub(super) const MARK_DELAY: Duration = Duration::from_millis(500);

/// One confirm not yet written: which attempt the broker confirmed, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Mark {
    pub attempt: u32,
    pub at: DateTime<Utc>,
}

/// The marks not yet written, by job.
#[derive(Default)]
pub(super) struct Marks {
    pending: Mutex<HashMap<JobId, Mark>>,
    /// A flush is scheduled.
    flushing: AtomicBool,
}

impl Marks {
    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<JobId, Mark>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Holds `mark` for `id`; true when no flush was scheduled yet (the caller schedules one).
    pub fn add(&self, id: JobId, mark: Mark) -> bool {
        self.pending().insert(id, mark);
        !self.flushing.swap(true, Ordering::AcqRel)
    }

    /// The pending mark applied to `rec` in memory, when it changed the record (which then needs
    /// writing). A mark the record has moved past changes nothing.
    pub fn apply(&self, rec: &mut JobRecord) -> Option<Mark> {
        let mark = *self.pending().get(&rec.id)?;
        (rec.confirm_published(mark.attempt, mark.at) == Effect::Applied).then_some(mark)
    }

    /// Whether `rec` is a NEW job whose publish is confirmed, only not written yet.
    pub fn confirms(&self, rec: &JobRecord) -> bool {
        self.pending().get(&rec.id).is_some_and(|m| m.attempt == rec.attempt)
    }

    /// Forgets the marks that were written (committed), unless a newer one replaced them.
    pub fn written(&self, done: &[(JobId, Mark)]) {
        if done.is_empty() {
            return;
        }
        let mut pending = self.pending();
        for (id, mark) in done {
            if pending.get(id) == Some(mark) {
                pending.remove(id);
            }
        }
    }

    /// Every pending mark.
    pub fn all(&self) -> Vec<(JobId, Mark)> {
        self.pending().iter().map(|(id, m)| (*id, *m)).collect()
    }

    /// Every pending mark, for a flush; the flush is no longer scheduled from here on.
    pub fn to_flush(&self) -> Vec<(JobId, Mark)> {
        self.flushing.store(false, Ordering::Release);
        self.all()
    }

    /// Marks a flush scheduled again (after a failed one), if none is; true when the caller
    /// should schedule it.
    pub fn reschedule(&self) -> bool {
        !self.pending().is_empty() && !self.flushing.swap(true, Ordering::AcqRel)
    }
}
