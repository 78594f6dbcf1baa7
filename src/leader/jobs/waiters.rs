//! Callers waiting for jobs to finish (`submit --wait`, long-polling HTTP,
//! benchmarks), woken by the poller as soon as a final state is committed.

use crate::protocol::api::JobRecord;
use crate::protocol::JobId;
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::oneshot;

#[derive(Default)]
pub struct Waiters {
    waiting: Mutex<HashMap<JobId, Vec<oneshot::Sender<JobRecord>>>>,
}

impl Waiters {
    /// Registers interest in `id`. Register *before* reading the current state,
    /// so a job finishing in between is not missed.
    pub fn register(&self, id: JobId) -> oneshot::Receiver<JobRecord> {
        let (tx, rx) = oneshot::channel();
        self.lock().entry(id).or_default().push(tx);
        rx
    }

    pub fn finished(&self, rec: &JobRecord) {
        if let Some(senders) = self.lock().remove(&rec.id) {
            for s in senders {
                let _ = s.send(rec.clone());
            }
        }
    }

    /// Whether anyone waits for `id`.
    pub fn is_waiting(&self, id: JobId) -> bool {
        self.lock().contains_key(&id)
    }

    /// Drops interest of callers that gave up, so the map does not grow.
    pub fn forget(&self, id: JobId) {
        let mut map = self.lock();
        if let Some(v) = map.get_mut(&id) {
            v.retain(|s| !s.is_closed());
            if v.is_empty() {
                map.remove(&id);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<JobId, Vec<oneshot::Sender<JobRecord>>>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }
}
