//! What a search for jobs may say, as Sling's `JobManager.findJobs(type, topic, limit,
//! templates...)`: a [`JobKind`] (which states), and [`PropertyTemplate`]s over the job's
//! properties. Plain rules with no I/O, so the API, the CLI and the ledger read a query the
//! same way; [`PropertyTemplate::matches`] is the reference the ledger's SQL must agree with.

use super::{JobState, Properties};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Which jobs a search selects by state, as Sling's `JobManager.QueryType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobKind {
    /// Every job.
    All,
    /// Started by a worker, not finished.
    Active,
    /// Waiting for a worker: recorded, queued, or failed and waiting for its retry.
    Queued,
    /// Finished: every final state.
    History,
    /// Final states other than success: stopped, given up, error (Sling's CANCELLED).
    Cancelled,
    Succeeded,
    Stopped,
    GivenUp,
    Error,
    /// Failed and waiting to be retried.
    Failed,
    /// Recorded, not yet confirmed by the broker.
    New,
}

impl JobKind {
    pub const ALL: [JobKind; 11] = [
        JobKind::All,
        JobKind::Active,
        JobKind::Queued,
        JobKind::History,
        JobKind::Cancelled,
        JobKind::Succeeded,
        JobKind::Stopped,
        JobKind::GivenUp,
        JobKind::Error,
        JobKind::Failed,
        JobKind::New,
    ];

    /// The states the kind selects; empty for every state.
    pub fn states(self) -> Vec<JobState> {
        use JobState as S;
        match self {
            JobKind::All => vec![],
            JobKind::Active => vec![S::Active],
            JobKind::Queued => vec![S::New, S::Queued, S::Failed],
            JobKind::History => vec![S::Succeeded, S::Stopped, S::GivenUp, S::Error],
            JobKind::Cancelled => vec![S::Stopped, S::GivenUp, S::Error],
            JobKind::Succeeded => vec![S::Succeeded],
            JobKind::Stopped => vec![S::Stopped],
            JobKind::GivenUp => vec![S::GivenUp],
            JobKind::Error => vec![S::Error],
            JobKind::Failed => vec![S::Failed],
            JobKind::New => vec![S::New],
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::All => "ALL",
            JobKind::Active => "ACTIVE",
            JobKind::Queued => "QUEUED",
            JobKind::History => "HISTORY",
            JobKind::Cancelled => "CANCELLED",
            JobKind::Succeeded => "SUCCEEDED",
            JobKind::Stopped => "STOPPED",
            JobKind::GivenUp => "GIVEN_UP",
            JobKind::Error => "ERROR",
            JobKind::Failed => "FAILED",
            JobKind::New => "NEW",
        }
    }
}

impl fmt::Display for JobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error(
        "unknown job kind {0:?} (expected ALL, ACTIVE, QUEUED, HISTORY, CANCELLED, SUCCEEDED, STOPPED, GIVEN_UP, ERROR, FAILED or NEW)"
    )]
    UnknownKind(String),
    #[error("property template {template:?}: {reason} (expected conditions like size>=100,color=red)")]
    BadTemplate { template: String, reason: String },
}

impl FromStr for JobKind {
    type Err = QueryError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let up = s.to_ascii_uppercase();
        JobKind::ALL.into_iter().find(|k| k.as_str() == up).ok_or_else(|| QueryError::UnknownKind(s.to_owned()))
    }
}

/// How a property is compared with a template's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }

    fn holds(self, ord: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            Op::Eq => ord == Equal,
            Op::Lt => ord == Less,
            Op::Le => ord != Greater,
            Op::Gt => ord == Greater,
            Op::Ge => ord != Less,
        }
    }
}

/// A template's value: a number compares with numeric properties numerically, anything else
/// (or a value in double quotes) with string properties as a string, byte by byte. A property
/// of the other type never matches.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Number(f64),
    Text(String),
}

/// One condition of a template: `key op value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// A top-level property name, matched as written (dots included, as Sling's
    /// `offloading.input.payload`).
    pub key: String,
    pub op: Op,
    pub value: Literal,
}

impl Condition {
    pub fn matches(&self, props: &Properties) -> bool {
        match (props.get(&self.key), &self.value) {
            (Some(serde_json::Value::Number(n)), Literal::Number(v)) => {
                n.as_f64().and_then(|n| n.partial_cmp(v)).is_some_and(|o| self.op.holds(o))
            }
            (Some(serde_json::Value::String(s)), Literal::Text(v)) => self.op.holds(s.as_str().cmp(v.as_str())),
            _ => false,
        }
    }
}

/// Longest property name a template may name.
pub const MAX_KEY_LEN: usize = 200;

/// Conditions that must all hold (Sling's template map); a search with several templates
/// selects jobs matching any of them. Written `size>=100,color=red`.
#[derive(Debug, Clone, PartialEq)]
pub struct PropertyTemplate {
    pub conditions: Vec<Condition>,
}

impl PropertyTemplate {
    pub fn matches(&self, props: &Properties) -> bool {
        self.conditions.iter().all(|c| c.matches(props))
    }
}

impl FromStr for PropertyTemplate {
    type Err = QueryError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason: String| QueryError::BadTemplate { template: s.to_owned(), reason };
        let mut conditions = Vec::new();
        for part in s.split(',') {
            let at = part.find(['<', '>', '=']).ok_or_else(|| bad(format!("{part:?} has no =, <, <=, > or >=")))?;
            let key = part[..at].trim();
            let rest = &part[at..];
            let (op, value) = if let Some(v) = rest.strip_prefix("<=") {
                (Op::Le, v)
            } else if let Some(v) = rest.strip_prefix(">=") {
                (Op::Ge, v)
            } else if let Some(v) = rest.strip_prefix('<') {
                (Op::Lt, v)
            } else if let Some(v) = rest.strip_prefix('>') {
                (Op::Gt, v)
            } else {
                (Op::Eq, &rest[1..])
            };
            if key.is_empty() || key.len() > MAX_KEY_LEN {
                return Err(bad(format!("a property name must be 1 to {MAX_KEY_LEN} characters")));
            }
            if key.chars().any(|c| c.is_control() || c == '"' || c == '\\') {
                return Err(bad(format!("property name {key:?} holds a quote, backslash or control character")));
            }
            if value.starts_with(['<', '>', '=']) {
                return Err(bad(format!("{part:?} has an unknown operator")));
            }
            let value = value.trim();
            let value = match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
                Some(quoted) => Literal::Text(quoted.to_owned()),
                None => match value.parse::<f64>() {
                    Ok(n) if n.is_finite() => Literal::Number(n),
                    _ => Literal::Text(value.to_owned()),
                },
            };
            conditions.push(Condition { key: key.to_owned(), op, value });
        }
        Ok(PropertyTemplate { conditions })
    }
}

impl fmt::Display for PropertyTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, c) in self.conditions.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            match &c.value {
                Literal::Number(n) => write!(f, "{}{}{n}", c.key, c.op.as_str())?,
                Literal::Text(t) => write!(f, "{}{}\"{t}\"", c.key, c.op.as_str())?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn props(v: serde_json::Value) -> Properties {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn templates_parse_and_match_numbers_numerically_and_strings_as_strings() {
        let t: PropertyTemplate = "size>=100, color=red".parse().unwrap();
        assert_eq!(t.conditions.len(), 2);
        assert_eq!(t.conditions[0].op, Op::Ge);
        assert_eq!(t.conditions[1].value, Literal::Text("red".into()));
        assert!(t.matches(&props(json!({"size": 100, "color": "red"}))));
        assert!(t.matches(&props(json!({"size": 1000.5, "color": "red"}))));
        assert!(!t.matches(&props(json!({"size": 99, "color": "red"}))));
        assert!(!t.matches(&props(json!({"size": "100", "color": "red"}))), "a string is not a number");
        assert!(!t.matches(&props(json!({"color": "red"}))), "a missing property never matches");
        let s: PropertyTemplate = "name<b".parse().unwrap();
        assert!(s.matches(&props(json!({"name": "abc"}))));
        assert!(!s.matches(&props(json!({"name": "b"}))));
        let q: PropertyTemplate = "code=\"7\"".parse().unwrap();
        assert!(q.matches(&props(json!({"code": "7"}))) && !q.matches(&props(json!({"code": 7}))));
        let dotted: PropertyTemplate = "offloading.workflow.model=dam".parse().unwrap();
        assert!(dotted.matches(&props(json!({"offloading.workflow.model": "dam"}))));
    }

    #[test]
    fn malformed_templates_and_kinds_are_refused() {
        for bad in ["size", "=1", "a=>1", "a<<1", "a\"b=1", ""] {
            assert!(bad.parse::<PropertyTemplate>().is_err(), "{bad:?} parsed");
        }
        assert_eq!("history".parse::<JobKind>(), Ok(JobKind::History));
        assert!("DONE".parse::<JobKind>().is_err());
        assert!(JobKind::History.states().iter().all(|s| s.is_final()));
        assert!(JobKind::Queued.states().iter().all(|s| !s.is_final()));
    }
}
