//! What every benchmark prints: a progress bar while it runs, then figures.

use indicatif::{ProgressBar, ProgressStyle};
use std::time::Duration;

/// Throughput and latency percentiles of one run.
pub struct Figures {
    pub jobs: usize,
    pub elapsed: Duration,
    pub latencies: Vec<Duration>,
}

impl Figures {
    /// Prints a summary line, then the machine-readable last line
    /// `jobs_per_s=… p50_ms=… p99_ms=…` the scripts read.
    pub fn print(mut self, label: &str) {
        self.latencies.sort();
        let pct = |p: f64| -> f64 {
            if self.latencies.is_empty() {
                return 0.0;
            }
            let i = ((self.latencies.len() as f64 * p).ceil() as usize).clamp(1, self.latencies.len()) - 1;
            self.latencies[i].as_secs_f64() * 1e3
        };
        let per_s = self.jobs as f64 / self.elapsed.as_secs_f64().max(1e-9);
        println!("{label}: {} jobs in {:.2} s", self.jobs, self.elapsed.as_secs_f64());
        println!("jobs_per_s={per_s:.0} p50_ms={:.2} p99_ms={:.2}", pct(0.50), pct(0.99));
    }
}

/// The progress bar of every benchmark: `n` items of `unit`, with the rate and a message.
pub fn progress(n: usize, unit: &str) -> ProgressBar {
    let bar = ProgressBar::new(n as u64);
    let template = format!("{{bar:40}} {{pos}}/{{len}} {unit} [{{elapsed}}, {{per_sec}}] {{msg}}");
    bar.set_style(ProgressStyle::with_template(&template).unwrap_or_else(|_| ProgressStyle::default_bar()));
    bar
}
