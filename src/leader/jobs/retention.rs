//! Retention, the elected leader's duty: final jobs older than the retention (Sling keeps two
//! days) are purged in bounded batches, each its own transaction, so the ledger stays bounded
//! and a purge never holds the ledger for long.

use crate::leader::ledger::Ledger;
use chrono::Utc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long finished jobs are kept by default: Sling's two days.
pub const DEFAULT_KEEP: Duration = Duration::from_secs(2 * 24 * 3600);

/// Jobs deleted per transaction.
pub const PURGE_BATCH: usize = 1000;

/// Purges final jobs that finished more than `keep` ago, every `every`, until `stop`.
pub async fn purge_loop(ledger: Ledger, keep: Duration, every: Duration, stop: CancellationToken) {
    loop {
        // A retention too long to subtract keeps everything.
        let before = chrono::Duration::from_std(keep).ok().and_then(|k| Utc::now().checked_sub_signed(k));
        let mut total = 0;
        while let Some(before) = before {
            match ledger.purge_finished(before, PURGE_BATCH).await {
                Ok(p) => {
                    total += p.jobs;
                    if p.jobs < PURGE_BATCH || stop.is_cancelled() {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot purge finished jobs");
                    break;
                }
            }
        }
        if total > 0 {
            tracing::info!(purged = total, keep_s = keep.as_secs(), "finished jobs past retention purged");
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// How often to purge for a retention of `keep`: a tenth of it, between one second and a
/// minute, so a short retention (tests) is kept closely and a long one costs one query a minute.
pub fn purge_interval(keep: Duration) -> Duration {
    (keep / 10).clamp(Duration::from_secs(1), Duration::from_secs(60))
}
