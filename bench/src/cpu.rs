//! CPU time each side of a run used, per job.
//!
//! On a machine where RabbitMQ, the leader and the workers share the cores, throughput is set
//! by how much CPU one job costs in all of them together, so the ratio of two runs' throughputs
//! is about the inverse ratio of their CPU per job. Splitting that cost by process says where
//! the pipeline spends more than the bare round trip: in the leader, the workers or the broker.
//! Read from `/proc/<pid>/stat` (user + system time), so it is Linux only; elsewhere, or when a
//! process cannot be read, the figure is left out.

use std::time::Duration;

/// Linux reports process times in `USER_HZ` ticks, which is 100 on every architecture's ABI.
const TICKS_PER_SECOND: f64 = 100.0;

/// A process whose CPU time is counted, under the name it is reported by.
#[derive(Debug, Clone)]
pub struct Counted {
    pub name: &'static str,
    pub pids: Vec<u32>,
}

/// CPU seconds of each counted group at one moment.
#[derive(Debug, Clone)]
pub struct CpuSample {
    groups: Vec<(&'static str, Option<f64>)>,
}

/// CPU milliseconds per 1000 jobs of each group between two samples.
#[derive(Debug, Clone)]
pub struct CpuUse {
    pub per_1000_jobs: Vec<(&'static str, Option<f64>)>,
}

/// User + system seconds of one process, or `None` when it is gone or unreadable.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; the fields after it are plain numbers.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, utime field 14, stime field 15 (1-based, as in proc(5)).
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / TICKS_PER_SECOND)
}

/// The process start time (ticks after boot), to tell the oldest of several processes.
fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// The RabbitMQ server: the oldest `beam.smp` process whose command line names RabbitMQ. The
/// machine's service started before any private node a test may have running.
pub fn rabbitmq_pid() -> Option<u32> {
    let mut found: Vec<(u64, u32)> = Vec::new();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim() != "beam.smp" {
            continue;
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if !String::from_utf8_lossy(&cmdline).contains("rabbit") {
            continue;
        }
        if let Some(start) = start_ticks(pid) {
            found.push((start, pid));
        }
    }
    found.into_iter().min().map(|(_, pid)| pid)
}

impl CpuSample {
    pub fn take(groups: &[Counted]) -> CpuSample {
        CpuSample {
            groups: groups
                .iter()
                .map(|g| {
                    let each: Option<Vec<f64>> = g.pids.iter().map(|&p| cpu_seconds(p)).collect();
                    (g.name, each.filter(|v| !v.is_empty()).map(|v| v.iter().sum()))
                })
                .collect(),
        }
    }

    /// What each group used since `earlier`, per 1000 of `jobs`.
    pub fn since(&self, earlier: &CpuSample, jobs: usize) -> CpuUse {
        let per = 1000.0 / jobs.max(1) as f64;
        CpuUse {
            per_1000_jobs: self
                .groups
                .iter()
                .zip(&earlier.groups)
                .map(|((name, now), (_, then))| {
                    (*name, now.zip(*then).map(|(now, then)| Duration::from_secs_f64((now - then).max(0.0))))
                })
                .map(|(name, used)| (name, used.map(|d| d.as_secs_f64() * 1e3 * per)))
                .collect(),
        }
    }
}

impl CpuUse {
    /// `cpu ms per 1000 jobs: leader 58.1, workers 36.2, rabbitmq 97.0 (total 191.3)`.
    pub fn line(&self) -> String {
        let parts: Vec<String> = self
            .per_1000_jobs
            .iter()
            .map(|(name, ms)| match ms {
                Some(ms) => format!("{name} {ms:.1}"),
                None => format!("{name} n/a"),
            })
            .collect();
        let total: f64 = self.per_1000_jobs.iter().filter_map(|(_, ms)| *ms).sum();
        format!("cpu ms per 1000 jobs: {} (total {total:.1})", parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_a_cpu_time_and_a_start() {
        let me = std::process::id();
        assert!(cpu_seconds(me).is_some_and(|s| s >= 0.0));
        assert!(start_ticks(me).is_some());
    }

    #[test]
    fn use_is_the_difference_per_thousand_jobs() {
        let then = CpuSample { groups: vec![("leader", Some(1.0)), ("gone", None)] };
        let now = CpuSample { groups: vec![("leader", Some(1.5)), ("gone", None)] };
        let used = now.since(&then, 10_000);
        assert_eq!(used.per_1000_jobs[0].0, "leader");
        assert!((used.per_1000_jobs[0].1.unwrap_or_default() - 50.0).abs() < 1e-6);
        assert_eq!(used.per_1000_jobs[1].1, None);
        assert_eq!(used.line(), "cpu ms per 1000 jobs: leader 50.0, gone n/a (total 50.0)");
    }
}
