//! What every benchmark prints: a progress bar while it runs, then figures.

use indicatif::{ProgressBar, ProgressStyle};
use std::time::Duration;

/// Throughput and latency percentiles of one run.
pub struct Figures {
    pub jobs: usize,
    pub elapsed: Duration,
    pub latencies: Vec<Duration>,
    /// What the processes of the run spent in CPU per job, when it could be read.
    pub cpu: Option<crate::cpu::CpuUse>,
}

impl Figures {
    /// Jobs per second over the whole run.
    pub fn per_second(&self) -> f64 {
        self.jobs as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The latency at percentile `p` (0..1), in milliseconds.
    pub fn percentile_ms(&self, p: f64) -> f64 {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        if sorted.is_empty() {
            return 0.0;
        }
        let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
        sorted[i].as_secs_f64() * 1e3
    }

    /// Prints a summary line, then the machine-readable last line
    /// `jobs_per_s=… p50_ms=… p99_ms=…` the scripts read.
    pub fn print(self, label: &str) {
        println!("{label}: {} jobs in {:.2} s", self.jobs, self.elapsed.as_secs_f64());
        if let Some(cpu) = &self.cpu {
            println!("{}", cpu.line());
        }
        println!(
            "jobs_per_s={:.0} p50_ms={:.2} p99_ms={:.2}",
            self.per_second(),
            self.percentile_ms(0.50),
            self.percentile_ms(0.99)
        );
    }
}

/// The progress bar of every benchmark: `n` items of `unit`, with the rate and a message.
pub fn progress(n: usize, unit: &str) -> ProgressBar {
    let bar = ProgressBar::new(n as u64);
    let template = format!("{{bar:40}} {{pos}}/{{len}} {unit} [{{elapsed}}, {{per_sec}}] {{msg}}");
    bar.set_style(ProgressStyle::with_template(&template).unwrap_or_else(|_| ProgressStyle::default_bar()));
    bar
}
