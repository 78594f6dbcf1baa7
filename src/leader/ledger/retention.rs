//! Retention: jobs in a final state are kept for a while (Sling keeps its history two days),
//! then purged, so the ledger does not grow without bound. A purge deletes a bounded batch in
//! one transaction, and adds what it deletes to the running totals statistics read, in that
//! same transaction, so statistics never lose the purged jobs. Jobs that are not final are
//! never purged, however old.

use super::tx::Aggregate;
use super::{Ledger, LedgerError};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// What one purge did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    pub jobs: usize,
}

impl Ledger {
    /// Deletes at most `batch` final jobs that finished before `before`, oldest first.
    pub async fn purge_finished(&self, before: DateTime<Utc>, batch: usize) -> Result<Purged, LedgerError> {
        self.run(move |t| {
            Box::pin(async move {
                let old = t.finished_before(before, batch).await?;
                let mut sums: BTreeMap<(String, String), Aggregate> = BTreeMap::new();
                for rec in &old {
                    if !rec.state.is_final() {
                        continue;
                    }
                    let (topic, state) = (rec.topic.to_string(), rec.state.as_str().to_owned());
                    let a = sums.entry((topic.clone(), state.clone())).or_insert_with(|| Aggregate {
                        topic,
                        state,
                        ..Default::default()
                    });
                    let ms = |t: DateTime<Utc>| t.timestamp_millis();
                    a.count += 1;
                    if let Some(started) = rec.started_at {
                        a.wait_ms += ms(started) - ms(rec.created_at);
                        a.waited += 1;
                        a.last_started = a.last_started.max(Some(ms(started)));
                        if let Some(finished) = rec.finished_at {
                            a.process_ms += ms(finished) - ms(started);
                            a.processed += 1;
                        }
                    }
                    a.last_finished = a.last_finished.max(rec.finished_at.map(ms));
                    t.delete_job(rec.id).await?;
                }
                for a in sums.values() {
                    t.add_purged(a).await?;
                }
                Ok(Purged { jobs: sums.values().map(|a| a.count as usize).sum() })
            })
        })
        .await
    }
}
