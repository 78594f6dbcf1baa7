//! `/api/schedules`: jobs created at a time or on a cron schedule, as Sling's
//! `JobBuilder.schedule()`. Kept in the ledger; the elected leader creates their jobs.

use crate::protocol::{Properties, Topic};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A schedule to add: `at` a time, or on a `cron` expression (with seconds:
/// `sec min hour day-of-month month day-of-week [year]`, e.g. `*/5 * * * * *`), never both.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSchedule {
    pub topic: Topic,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub properties: Properties,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
}

/// A schedule as the ledger keeps it. Each due time creates one job, whose properties are the
/// schedule's plus `scheduled.id` and `scheduled.due` (the due time, RFC 3339).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Schedule {
    pub id: String,
    pub topic: Topic,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub properties: Properties,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    pub created_at: DateTime<Utc>,
    /// The next due time; absent once a one-time schedule fired.
    #[serde(default)]
    pub next_due: Option<DateTime<Utc>>,
    /// The last due time a job was created for.
    #[serde(default)]
    pub last_due: Option<DateTime<Utc>>,
    /// Jobs created.
    #[serde(default)]
    pub fired: u64,
    /// Due times passed over while no leader ran (beyond the catch-up limit).
    #[serde(default)]
    pub skipped: u64,
}

/// `GET /api/schedules`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScheduleList {
    pub schedules: Vec<Schedule>,
}
