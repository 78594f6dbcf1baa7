//! Job statistics (Sling's `Statistics`, overall and per topic), from SQL aggregates over the
//! ledger, so several leaders on one PostgreSQL ledger all answer the same, and the running
//! totals of the jobs retention purged, so purging never makes a count go down.

use super::tx::Aggregate;
use super::{Ledger, LedgerError};
use crate::protocol::api::{JobStatistics, StatsReport};
use crate::protocol::{JobState, Topic, TopicPattern};
use chrono::{DateTime, TimeZone, Utc};
use std::collections::BTreeMap;

impl Ledger {
    /// Statistics of every topic `pattern` matches (all topics without one).
    pub async fn stats(&self, pattern: Option<TopicPattern>) -> Result<StatsReport, LedgerError> {
        let (live, purged) = self
            .run(|t| {
                Box::pin(async move {
                    let live = t.aggregates().await?;
                    let purged = t.purged_aggregates().await?;
                    Ok((live, purged))
                })
            })
            .await?;
        Ok(report(live.into_iter().chain(purged), pattern.as_ref()))
    }
}

/// Sums that average once every part is added.
#[derive(Default)]
struct Sums {
    stats: JobStatistics,
    wait_ms: i64,
    waited: i64,
    process_ms: i64,
    processed: i64,
}

impl Sums {
    fn add(&mut self, a: &Aggregate) {
        let n = u64::try_from(a.count).unwrap_or(0);
        let s = &mut self.stats;
        match a.state.parse::<JobState>() {
            Ok(JobState::New | JobState::Queued | JobState::Failed) => s.queued += n,
            Ok(JobState::Active) => s.active += n,
            Ok(JobState::Succeeded) => s.finished += n,
            Ok(JobState::GivenUp | JobState::Error) => s.failed += n,
            Ok(JobState::Stopped) => s.cancelled += n,
            Err(_) => {}
        }
        self.wait_ms += a.wait_ms;
        self.waited += a.waited;
        if a.state.parse::<JobState>().is_ok_and(JobState::is_final) {
            self.process_ms += a.process_ms;
            self.processed += a.processed;
        }
        s.last_activated_at = later(s.last_activated_at, a.last_started);
        s.last_finished_at = later(s.last_finished_at, a.last_finished);
    }

    fn finish(mut self) -> JobStatistics {
        let s = &mut self.stats;
        s.processed = s.finished + s.failed + s.cancelled;
        s.average_waiting_ms = (self.waited > 0).then(|| self.wait_ms as f64 / self.waited as f64);
        s.average_processing_ms = (self.processed > 0).then(|| self.process_ms as f64 / self.processed as f64);
        self.stats
    }
}

fn later(a: Option<DateTime<Utc>>, ms: Option<i64>) -> Option<DateTime<Utc>> {
    let b = ms.and_then(|ms| Utc.timestamp_millis_opt(ms).single());
    a.max(b)
}

/// Adds up aggregates per topic and overall, keeping the topics `pattern` matches.
fn report(aggregates: impl Iterator<Item = Aggregate>, pattern: Option<&TopicPattern>) -> StatsReport {
    let mut overall = Sums::default();
    let mut topics: BTreeMap<String, Sums> = BTreeMap::new();
    for a in aggregates {
        if let Some(p) = pattern {
            if !a.topic.parse::<Topic>().is_ok_and(|t| p.matches(&t)) {
                continue;
            }
        }
        overall.add(&a);
        topics.entry(a.topic.clone()).or_default().add(&a);
    }
    StatsReport { overall: overall.finish(), topics: topics.into_iter().map(|(k, v)| (k, v.finish())).collect() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agg(topic: &str, state: &str, count: i64, wait: (i64, i64), process: (i64, i64)) -> Aggregate {
        Aggregate {
            topic: topic.into(),
            state: state.into(),
            count,
            wait_ms: wait.0,
            waited: wait.1,
            process_ms: process.0,
            processed: process.1,
            last_started: Some(1000 * count),
            last_finished: None,
        }
    }

    #[test]
    fn states_fold_into_slings_counters_and_averages() {
        let r = report(
            vec![
                agg("a/b", "SUCCEEDED", 3, (30, 3), (300, 3)),
                agg("a/b", "ERROR", 1, (10, 1), (100, 1)),
                agg("a/b", "FAILED", 2, (20, 2), (0, 0)),
                agg("x/y", "STOPPED", 1, (0, 0), (0, 0)),
                agg("x/y", "ACTIVE", 4, (80, 4), (0, 0)),
            ]
            .into_iter(),
            None,
        );
        let ab = &r.topics["a/b"];
        assert_eq!((ab.finished, ab.failed, ab.queued, ab.processed), (3, 1, 2, 4));
        assert_eq!(ab.average_waiting_ms, Some(10.0));
        assert_eq!(ab.average_processing_ms, Some(100.0));
        assert_eq!((r.overall.cancelled, r.overall.active, r.overall.processed), (1, 4, 5));
        assert_eq!(r.overall.last_activated_at, Utc.timestamp_millis_opt(4000).single());
        let only: TopicPattern = "x/*".parse().unwrap();
        let r = report(vec![agg("a/b", "SUCCEEDED", 1, (0, 0), (0, 0))].into_iter(), Some(&only));
        assert!(r.topics.is_empty() && r.overall == JobStatistics::default());
    }
}
