//! How far a running job has come: Sling's `JobExecutionContext` progress (`initProgress`,
//! `incrementProgress`, `log`), as a worker reports it and as the job record keeps it.
//!
//! One shape serves the wire (inside `offloader.job-progress.v1`) and the record, because the
//! leader keeps the latest report as it came: a later report replaces an earlier one whole, so
//! reports that are coalesced or lost on the way lose nothing but intermediate values.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How many log lines a report (and so the record) keeps: the last ones. A job that logs a
/// line per item of a million-item batch must not grow its record without bound.
pub const PROGRESS_LOG_LINES: usize = 20;

/// The longest log line kept, in characters; longer ones are cut.
pub const PROGRESS_LOG_LINE_CHARS: usize = 500;

/// A running job's progress.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Progress {
    /// Steps the job announced (`init_progress`); absent when it only logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<u64>,
    /// Steps done so far.
    #[serde(default)]
    pub done: u64,
    /// When the job expects to finish, if it said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta: Option<DateTime<Utc>>,
    /// The job's last log lines, oldest first (at most [`PROGRESS_LOG_LINES`]).
    #[serde(default)]
    pub log: Vec<String>,
    /// When the worker made this report.
    pub updated_at: DateTime<Utc>,
}

impl Progress {
    /// Appends a log line, keeping only the last [`PROGRESS_LOG_LINES`].
    pub fn push_log(&mut self, line: &str) {
        self.log.push(line.chars().take(PROGRESS_LOG_LINE_CHARS).collect());
        let excess = self.log.len().saturating_sub(PROGRESS_LOG_LINES);
        self.log.drain(..excess);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_keeps_its_last_lines_only() {
        let mut p = Progress::default();
        for i in 0..30 {
            p.push_log(&format!("line {i}"));
        }
        assert_eq!(p.log.len(), PROGRESS_LOG_LINES);
        assert_eq!(p.log[0], "line 10");
        p.push_log(&"x".repeat(2000));
        assert_eq!(p.log.last().map(|l| l.len()), Some(PROGRESS_LOG_LINE_CHARS));
    }
}
