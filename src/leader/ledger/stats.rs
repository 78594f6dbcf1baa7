//! Job statistics (Sling's `Statistics`, overall and per topic), from SQL aggregates over the
//! ledger, so several leaders on one PostgreSQL ledger all answer the same, and the running
//! totals of the jobs retention purged, so purging never makes a count go down.

use super::tx::{Aggregate, Finished};
use super::{Ledger, LedgerError};
use crate::protocol::api::{JobStatistics, SeriesBucket, StatsReport, StatsSeries, TopicRate};
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

impl Ledger {
    /// The jobs that finished over the `window` before `now`, in buckets of `step`: how many,
    /// how many failed, and their mean and 95th percentile latency (created to finished); and
    /// per topic, how many and their rate per minute. One range read of the `finished_at`
    /// index; the figures are computed here, the same for both engines.
    pub async fn series(
        &self,
        now: DateTime<Utc>,
        window: chrono::Duration,
        step: chrono::Duration,
    ) -> Result<StatsSeries, LedgerError> {
        let from = now - window;
        let rows = self.run(move |t| Box::pin(async move { t.finished_since(from).await })).await?;
        Ok(series(&rows, from, now, step))
    }
}

/// Buckets `rows` (jobs finished from `from` on) into `step`s from `from` to `to`.
fn series(rows: &[Finished], from: DateTime<Utc>, to: DateTime<Utc>, step: chrono::Duration) -> StatsSeries {
    let step_ms = step.num_milliseconds().max(1);
    let (from_ms, to_ms) = (from.timestamp_millis(), to.timestamp_millis());
    let n = usize::try_from((to_ms - from_ms + step_ms - 1) / step_ms).unwrap_or(0).max(1);
    let mut latencies: Vec<Vec<i64>> = vec![Vec::new(); n];
    let mut failed = vec![0u64; n];
    let mut topics: BTreeMap<String, TopicRate> = BTreeMap::new();
    for r in rows {
        if r.finished_at < from_ms || r.finished_at > to_ms {
            continue;
        }
        let i = usize::try_from((r.finished_at - from_ms) / step_ms).unwrap_or(0).min(n - 1);
        latencies[i].push((r.finished_at - r.created_at).max(0));
        if matches!(r.state.parse::<JobState>(), Ok(JobState::GivenUp | JobState::Error)) {
            failed[i] += 1;
        }
        topics.entry(r.topic.clone()).or_default().finished += 1;
    }
    let minutes = ((to_ms - from_ms) as f64 / 60_000.0).max(1.0 / 60.0);
    for rate in topics.values_mut() {
        rate.per_minute = rate.finished as f64 / minutes;
    }
    let buckets = latencies
        .into_iter()
        .zip(failed)
        .enumerate()
        .map(|(i, (mut l, failed))| {
            let start = Utc.timestamp_millis_opt(from_ms + i as i64 * step_ms).single().unwrap_or(from);
            l.sort_unstable();
            let mean_ms = (!l.is_empty()).then(|| l.iter().sum::<i64>() as f64 / l.len() as f64);
            // The nearest-rank percentile: the smallest latency at least 95 % of them reach.
            let p95_ms = (!l.is_empty()).then(|| l[(l.len() * 95).div_ceil(100).clamp(1, l.len()) - 1] as f64);
            SeriesBucket { start, finished: l.len() as u64, failed, mean_ms, p95_ms }
        })
        .collect();
    StatsSeries { from, to, step_seconds: (step_ms / 1000).max(0) as u64, buckets, topics }
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
    fn a_series_buckets_finished_jobs_with_their_latency_and_rates() {
        let from = Utc.timestamp_millis_opt(1_000_000).single().unwrap();
        let to = from + chrono::Duration::minutes(2);
        let job = |topic: &str, state: &str, at_s: i64, latency_ms: i64| Finished {
            topic: topic.into(),
            state: state.into(),
            created_at: 1_000_000 + at_s * 1000 - latency_ms,
            finished_at: 1_000_000 + at_s * 1000,
        };
        let mut rows: Vec<Finished> = (1..=20).map(|k| job("a/b", "SUCCEEDED", 10, k * 10)).collect();
        rows.push(job("x/y", "ERROR", 70, 500));
        rows.push(job("x/y", "SUCCEEDED", 200, 1)); // after the window
        let s = series(&rows, from, to, chrono::Duration::minutes(1));
        assert_eq!(s.buckets.len(), 2);
        assert_eq!((s.buckets[0].finished, s.buckets[0].failed), (20, 0));
        assert_eq!(s.buckets[0].mean_ms, Some(105.0));
        assert_eq!(s.buckets[0].p95_ms, Some(190.0));
        assert_eq!((s.buckets[1].finished, s.buckets[1].failed, s.buckets[1].p95_ms), (1, 1, Some(500.0)));
        assert_eq!(s.buckets[1].start, from + chrono::Duration::minutes(1));
        assert_eq!(s.topics["a/b"], TopicRate { finished: 20, per_minute: 10.0 });
        assert_eq!(s.topics["x/y"].finished, 1);
        assert_eq!(s.step_seconds, 60);
        let empty = series(&[], from, to, chrono::Duration::seconds(10));
        assert_eq!(empty.buckets.len(), 12);
        assert!(empty.buckets.iter().all(|b| b.finished == 0 && b.mean_ms.is_none()));
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
