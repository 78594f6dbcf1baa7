//! The jobs this worker completed recently, by id and attempt.
//!
//! A job is acked only after its completion is confirmed. When the broker restarts, or a
//! channel dies, between the two, RabbitMQ still holds the job and delivers it again; the ack
//! sent on the dead channel does not even report an error. Running it again would be harmless,
//! since the leader applies one completion per attempt, but it is wasted work (a whole
//! rendition run, say): a broker restart under load made every job in flight run twice. So the
//! worker remembers the attempts whose completion RabbitMQ confirmed, and acks a redelivered
//! copy of one without running it. That is safe because the confirmed completion is already in
//! the durable reply queue, and the leader will apply it.
//!
//! The memory is bounded: the oldest attempts leave first.

use crate::protocol::JobId;
use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

/// Many times what a worker holds unacked at once (concurrency times prefetch).
const CAPACITY: usize = 4096;

#[derive(Debug, Default)]
pub(crate) struct Completed {
    inner: Mutex<Ring>,
}

#[derive(Debug, Default)]
struct Ring {
    order: VecDeque<(JobId, u32)>,
    set: HashSet<(JobId, u32)>,
}

impl Completed {
    /// The completion of this attempt is confirmed.
    pub fn remember(&self, id: JobId, attempt: u32) {
        let mut ring = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if !ring.set.insert((id, attempt)) {
            return;
        }
        ring.order.push_back((id, attempt));
        if ring.order.len() > CAPACITY {
            if let Some(oldest) = ring.order.pop_front() {
                ring.set.remove(&oldest);
            }
        }
    }

    /// Whether this attempt's completion is already confirmed.
    pub fn contains(&self, id: JobId, attempt: u32) -> bool {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).set.contains(&(id, attempt))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_completed_attempt_counts() {
        let completed = Completed::default();
        let id = JobId::new();
        completed.remember(id, 1);
        assert!(completed.contains(id, 1));
        assert!(!completed.contains(id, 2), "a retry is new work");
        assert!(!completed.contains(JobId::new(), 1));
    }

    #[test]
    fn memory_is_bounded_and_the_oldest_leave_first() {
        let completed = Completed::default();
        let first = JobId::new();
        completed.remember(first, 1);
        let mut last = first;
        for _ in 0..CAPACITY {
            last = JobId::new();
            completed.remember(last, 1);
        }
        let ring = completed.inner.lock().unwrap();
        assert_eq!((ring.order.len(), ring.set.len()), (CAPACITY, CAPACITY));
        drop(ring);
        assert!(!completed.contains(first, 1));
        assert!(completed.contains(last, 1));
    }
}
