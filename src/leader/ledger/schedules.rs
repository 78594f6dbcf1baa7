//! Scheduled jobs (Sling's `JobBuilder.schedule()`), kept in the ledger's `schedules` table.
//!
//! Firing is once per due time, whatever happens to leaders: the elected leader fires due
//! schedules in one transaction that creates each due time's job *and* records that due time
//! as the schedule's last, so a crash either keeps both or neither, and a leader that starts
//! after it finds the schedule exactly where the job creation left it. On PostgreSQL the due
//! schedules are locked while they fire, so even two leaders that both believe they are
//! elected (an election changing hands) cannot fire one due time twice.

use super::{Ledger, LedgerError};
use crate::protocol::api::{JobRecord, Schedule};
use chrono::{DateTime, Utc};
use std::sync::Arc;

/// Due times one schedule fires at most per pass; older missed ones (a cluster that was down
/// a long time) are skipped and counted, rather than flooding the queues.
pub const MAX_CATCH_UP: usize = 100;

/// Schedules fired per transaction at most.
const SCHEDULES_PER_PASS: usize = 100;

/// The next due time of a schedule strictly after a given one (`None`: no more).
pub type NextDue = Arc<dyn Fn(&Schedule, DateTime<Utc>) -> Option<DateTime<Utc>> + Send + Sync>;
/// The job a schedule creates for a due time.
pub type MakeJob = Arc<dyn Fn(&Schedule, DateTime<Utc>) -> Result<JobRecord, LedgerError> + Send + Sync>;

/// Jobs one pass created (recorded NEW, to be published).
#[derive(Debug, Default)]
pub struct Fired {
    pub jobs: Vec<JobRecord>,
    pub skipped: u64,
}

impl Ledger {
    pub async fn put_schedule(&self, schedule: Schedule) -> Result<(), LedgerError> {
        self.run(move |t| Box::pin(async move { t.put_schedule(&schedule).await })).await
    }

    pub async fn schedules(&self) -> Result<Vec<Schedule>, LedgerError> {
        self.run(|t| Box::pin(async move { t.schedules().await })).await
    }

    /// Whether there was one to remove.
    pub async fn remove_schedule(&self, id: String) -> Result<bool, LedgerError> {
        self.run(move |t| Box::pin(async move { t.delete_schedule(&id).await })).await
    }

    /// Fires every schedule due at `now`: for each due time, its job is recorded and the
    /// schedule advanced, all in one transaction.
    pub async fn fire_schedules(
        &self,
        now: DateTime<Utc>,
        next_due: NextDue,
        make_job: MakeJob,
    ) -> Result<Fired, LedgerError> {
        self.run(move |t| {
            Box::pin(async move {
                let mut fired = Fired::default();
                for mut s in t.due_schedules(now, SCHEDULES_PER_PASS).await? {
                    let mut due_times = Vec::new();
                    let mut due = s.next_due;
                    // Bounded: a schedule every second missed for a day is 86 400 steps.
                    for _ in 0..1_000_000 {
                        match due {
                            Some(d) if d <= now => {
                                due_times.push(d);
                                due = next_due(&s, d);
                            }
                            _ => break,
                        }
                    }
                    let skip = due_times.len().saturating_sub(MAX_CATCH_UP);
                    s.skipped += skip as u64;
                    fired.skipped += skip as u64;
                    for d in due_times.into_iter().skip(skip) {
                        let rec = make_job(&s, d)?;
                        t.insert_job(&rec).await?;
                        s.last_due = Some(d);
                        s.fired += 1;
                        fired.jobs.push(rec);
                    }
                    s.next_due = due;
                    t.put_schedule(&s).await?;
                }
                Ok(fired)
            })
        })
        .await
    }
}
