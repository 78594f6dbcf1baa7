//! Scheduled jobs, as Sling's `JobBuilder.schedule()`: a job created at a time, or on every due
//! time of a cron expression. This module holds the rules (what a valid schedule is, when it
//! is next due) and the duty the elected leader runs; the ledger keeps the schedules and fires
//! them (`leader::ledger` records each due time's job and the schedule's progress in one
//! transaction, which is what makes firing once per due time survive restarts and elections).

use super::manager::{JobManager, NewJob};
use crate::leader::ledger::{LedgerError, MakeJob, NextDue};
use crate::protocol::api::{NewSchedule, Schedule};
use crate::protocol::workflow::LOCAL_TOPIC;
use chrono::{DateTime, Utc};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The job property naming the schedule that created a job.
pub const SCHEDULE_ID: &str = "scheduled.id";
/// The job property holding the due time a job was created for (RFC 3339).
pub const SCHEDULE_DUE: &str = "scheduled.due";

#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("invalid schedule: {0}")]
    Invalid(String),
}

/// A schedule from a request, due first at `at` or at the cron expression's first due time
/// after `now`.
pub fn new_schedule(req: NewSchedule, now: DateTime<Utc>) -> Result<Schedule, ScheduleError> {
    if req.topic.as_str() == LOCAL_TOPIC {
        return Err(ScheduleError::Invalid(format!("topic {LOCAL_TOPIC} is reserved for the leader's own workflows")));
    }
    let next_due = match (&req.at, &req.cron) {
        (Some(at), None) => Some(*at),
        (None, Some(expr)) => {
            let cron = parse_cron(expr)?;
            let first = cron.after(&now).next();
            if first.is_none() {
                return Err(ScheduleError::Invalid(format!("cron {expr:?} is never due after now")));
            }
            first
        }
        _ => return Err(ScheduleError::Invalid("give either `at` (a time) or `cron` (an expression)".into())),
    };
    Ok(Schedule {
        id: uuid::Uuid::now_v7().to_string(),
        topic: req.topic,
        properties: req.properties,
        at: req.at,
        cron: req.cron,
        created_at: now,
        next_due,
        last_due: None,
        fired: 0,
        skipped: 0,
    })
}

fn parse_cron(expr: &str) -> Result<cron::Schedule, ScheduleError> {
    cron::Schedule::from_str(expr).map_err(|e| {
        ScheduleError::Invalid(format!(
            "cron {expr:?}: {e} (expected `sec min hour day-of-month month day-of-week [year]`)"
        ))
    })
}

/// The due time of `s` strictly after `after`; `None` once a one-time schedule fired (or an
/// expression that no longer parses, which `new_schedule` refuses in the first place).
pub fn next_due(s: &Schedule, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    match &s.cron {
        Some(expr) => parse_cron(expr).ok()?.after(&after).next(),
        None => None,
    }
}

/// Fires due schedules every `every` until `stop`: the elected leader's duty. Each pass
/// records the jobs in the ledger (with the schedules' progress), then publishes them; a job
/// whose publish fails stays NEW and the republisher sends it.
pub async fn schedule_loop(jobs: Arc<JobManager>, every: Duration, stop: CancellationToken) {
    let next: NextDue = Arc::new(next_due);
    let make: MakeJob = {
        let jobs = jobs.clone();
        Arc::new(move |s: &Schedule, due: DateTime<Utc>| {
            let mut properties = s.properties.clone();
            properties.insert(SCHEDULE_ID.into(), s.id.clone().into());
            properties.insert(SCHEDULE_DUE.into(), due.to_rfc3339().into());
            let new = NewJob { properties, ..NewJob::new(s.topic.clone()) };
            jobs.new_record(new).map_err(|e| LedgerError::Refused(e.to_string()))
        })
    };
    loop {
        match jobs.ledger().fire_schedules(Utc::now(), next.clone(), make.clone()).await {
            Ok(fired) => {
                if fired.skipped > 0 {
                    tracing::warn!(
                        skipped = fired.skipped,
                        "scheduled due times missed while no leader ran were skipped"
                    );
                }
                for rec in fired.jobs {
                    tracing::info!(job = %rec.id, topic = %rec.topic, "scheduled job created");
                    if let Err(e) = jobs.publish_recorded(rec).await {
                        tracing::warn!(error = %e, "scheduled job recorded, not published; the republisher will");
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot fire due schedules"),
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(at: Option<DateTime<Utc>>, cron: Option<&str>) -> NewSchedule {
        NewSchedule { topic: "a/b".parse().unwrap(), properties: Default::default(), at, cron: cron.map(Into::into) }
    }

    #[test]
    fn a_schedule_is_at_a_time_or_on_a_cron_never_both() {
        let now = Utc::now();
        let at = new_schedule(req(Some(now), None), now).unwrap();
        assert_eq!((at.next_due, next_due(&at, now)), (Some(now), None), "a one-time schedule fires once");
        let every = new_schedule(req(None, Some("* * * * * *")), now).unwrap();
        let first = every.next_due.unwrap();
        assert!(first > now && first <= now + chrono::Duration::seconds(1));
        assert_eq!(next_due(&every, first), Some(first + chrono::Duration::seconds(1)));
        assert!(new_schedule(req(Some(now), Some("* * * * * *")), now).is_err());
        assert!(new_schedule(req(None, None), now).is_err());
        assert!(new_schedule(req(None, Some("every minute")), now).is_err());
    }
}
