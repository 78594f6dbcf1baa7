//! What a worker counts.

use crate::metrics::MetricsRegistry;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobLabels {
    pub topic: String,
    pub result: String,
}

#[derive(Clone)]
pub struct WorkerMetrics {
    pub jobs: Family<JobLabels, Counter>,
    pub job_seconds: Histogram,
    pub in_flight: Gauge,
    pub dead_lettered: Counter,
}

impl WorkerMetrics {
    pub fn register(registry: &MetricsRegistry) -> Self {
        let m = WorkerMetrics {
            jobs: Family::default(),
            job_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 20)),
            in_flight: Gauge::default(),
            dead_lettered: Counter::default(),
        };
        registry.with(|r| {
            r.register("worker_jobs", "Jobs processed, by topic and result", m.jobs.clone());
            r.register("worker_job_seconds", "Time a consumer spent on a job", m.job_seconds.clone());
            r.register("worker_jobs_in_flight", "Jobs being processed now", m.in_flight.clone());
            r.register(
                "worker_dead_lettered",
                "Malformed messages sent to the dead-letter queue",
                m.dead_lettered.clone(),
            );
        });
        m
    }
}
