//! What a leader counts.

use crate::metrics::MetricsRegistry;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub state: String,
}

#[derive(Clone)]
pub struct LeaderMetrics {
    pub jobs_submitted: Counter,
    pub jobs_finished: Family<StateLabels, Counter>,
    pub replies_applied: Counter,
    pub replies_ignored: Counter,
    pub replies_malformed: Counter,
    pub reply_batch: Histogram,
    pub job_seconds: Histogram,
    pub retries: Counter,
}

impl LeaderMetrics {
    pub fn register(registry: &MetricsRegistry) -> Self {
        let m = LeaderMetrics {
            jobs_submitted: Counter::default(),
            jobs_finished: Family::default(),
            replies_applied: Counter::default(),
            replies_ignored: Counter::default(),
            replies_malformed: Counter::default(),
            reply_batch: Histogram::new(exponential_buckets(1.0, 2.0, 12)),
            job_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 24)),
            retries: Counter::default(),
        };
        registry.with(|r| {
            r.register("leader_jobs_submitted", "Jobs added", m.jobs_submitted.clone());
            r.register("leader_jobs_finished", "Jobs that reached a final state", m.jobs_finished.clone());
            r.register("leader_replies_applied", "Job events applied to the ledger", m.replies_applied.clone());
            r.register(
                "leader_replies_ignored",
                "Duplicate or stale job events (idempotence at work)",
                m.replies_ignored.clone(),
            );
            r.register("leader_replies_malformed", "Unreadable replies, dead-lettered", m.replies_malformed.clone());
            r.register("leader_reply_batch_size", "Replies committed per ledger transaction", m.reply_batch.clone());
            r.register("leader_job_seconds", "Job creation to final state", m.job_seconds.clone());
            r.register("leader_retries", "Failed jobs published again", m.retries.clone());
        });
        m
    }
}
