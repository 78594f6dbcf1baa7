//! Finding jobs (Sling's `findJobs`): a [`JobQuery`] becomes one SQL statement, written once
//! here for both engines.
//!
//! Every query walks the job table newest first (`ORDER BY id DESC`; ids are UUIDv7, minted at
//! creation, so their order is the creation order) and stops at its limit, with the indexed
//! conditions narrowing the walk: state and topic have `(state, id)` and `(topic, id)` indexes,
//! a topic pattern becomes a key range (`a/b/` ≤ topic < `a/b0`), and a creation time range also
//! bounds the id, whose first 48 bits are the creation time in milliseconds.
//!
//! A topic pattern that matches several topics (`a/*`, `a/**`) is a key range of the topic
//! index, but its jobs are not in id order there. An engine may therefore list the topics of
//! the ledger the pattern matches (one index seek per topic, see [`topic_bounds`]) and pass
//! them in: the candidates are then a merge of one walk per topic (`… WHERE topic = ? UNION
//! ALL … ORDER BY id DESC`), each newest first along `(topic, id)`, so the query reads only
//! the jobs it returns, where a single statement either walks every id reading each row to
//! test its topic, or sorts every job of the pattern by id (SQLite's planner took one or the
//! other: 0.26 s for `a/*` with a template at a million jobs, see docs/benchmarks.md §5).
//!
//! Property templates are not indexed (properties are free-form): they are evaluated on a
//! bounded window of at most [`TEMPLATE_WINDOW`] candidates the indexed conditions select,
//! newest first. When the window ends before the page is full, the page says where the next
//! window starts, so a rare property costs the caller more pages, never an unbounded scan.

use crate::protocol::job_query::{Literal, Op, PropertyTemplate};
use crate::protocol::{JobId, JobState, TopicPattern};
use chrono::{DateTime, Utc};

/// Candidates a query with property templates examines per page at most.
pub const TEMPLATE_WINDOW: usize = 10_000;

/// Largest page the API and the CLI ask for.
pub const MAX_LIMIT: usize = 10_000;

/// How far a job's id time may precede its `created_at` (the id is minted first, a clock may
/// step): the slack a time range allows when it bounds ids.
const ID_TIME_SLACK_MS: i64 = 60_000;

/// Which jobs to list.
#[derive(Debug, Clone, Default)]
pub struct JobQuery {
    /// Any of these states; empty for all.
    pub states: Vec<JobState>,
    pub topic: Option<TopicPattern>,
    /// Created at or after.
    pub created_after: Option<DateTime<Utc>>,
    /// Created strictly before.
    pub created_before: Option<DateTime<Utc>>,
    /// Any of these must match (each: all of its conditions); empty for no condition.
    pub templates: Vec<PropertyTemplate>,
    /// Only jobs older than this one: the `next` of the previous page.
    pub cursor: Option<JobId>,
    /// At most this many (newest first); 0 means 100.
    pub limit: usize,
}

impl JobQuery {
    pub fn limit(&self) -> usize {
        if self.limit == 0 {
            100
        } else {
            self.limit
        }
    }
}

/// A page of jobs, newest first.
#[derive(Debug, Clone, Default)]
pub struct JobPage {
    pub jobs: Vec<crate::protocol::api::JobRecord>,
    /// The cursor of the next page; `None` when nothing is left.
    pub next: Option<JobId>,
}

/// The SQL each engine writes its own way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    fn mark(self, i: usize) -> String {
        match self {
            Dialect::Sqlite => format!("?{i}"),
            Dialect::Postgres => format!("${i}"),
        }
    }

    /// An argument (always bound as text) read as an integer.
    fn int(self, mark: &str) -> String {
        match self {
            Dialect::Sqlite => format!("CAST({mark} AS INTEGER)"),
            Dialect::Postgres => format!("CAST({mark}::text AS BIGINT)"),
        }
    }
}

/// The statements of one query: `select` answers `(doc, id)` rows; `probe`, for a query with
/// templates, answers the id of the last candidate of a full window (none if the window was
/// not full). `select` and `window` take `args`, `probe` the first `probe_args` of them, bound
/// as text.
///
/// `window`, for a query with templates, answers every candidate of the window newest first as
/// `(doc, id)`, the doc only when the candidate matches (NULL otherwise): an engine that reads
/// rows as the statement makes them (SQLite) runs it instead of `select` and `probe`, stops at
/// the page's last match, and has the window's last candidate (the next cursor) without
/// walking the window a second time.
pub(super) struct JobSql {
    pub select: String,
    pub probe: Option<String>,
    pub window: Option<String>,
    pub args: Vec<String>,
    pub probe_args: usize,
    pub limit: usize,
}

/// Most topics a query merges one walk each of; a pattern matching more is one statement over
/// the topic range. SQLite allows 500 arms of a compound statement.
pub const MAX_TOPIC_WALKS: usize = 100;

/// The statement that lists the topics of the ledger from `?1` (inclusive) to `?2`
/// (exclusive), at most `?3` of them, in order: one seek of the topic index per topic (a
/// loose index scan), not a read of every job in the range.
pub(super) const TOPICS_IN_RANGE_SQL: &str = "WITH RECURSIVE t(topic) AS (
    SELECT (SELECT MIN(topic) FROM jobs WHERE topic >= ?1 AND topic < ?2)
    UNION ALL
    SELECT (SELECT MIN(topic) FROM jobs WHERE topic > t.topic AND topic < ?2) FROM t WHERE t.topic IS NOT NULL
  ) SELECT topic FROM t WHERE topic IS NOT NULL LIMIT ?3";

/// The key range of the topics a pattern that matches several topics can match (for
/// [`TOPICS_IN_RANGE_SQL`]); `None` for an exact topic or `**`, which an index answers as it is.
pub(super) fn topic_bounds(pattern: &TopicPattern) -> Option<(String, String)> {
    match topic_conditions(pattern) {
        (None, Some(range), _) => Some(range),
        // `*`: every topic of one level. `~` sorts after every topic character.
        (None, None, Some(_)) => Some((String::new(), "~".to_owned())),
        _ => None,
    }
}

/// The arguments of a statement, bound as text, and their placeholders.
struct Args {
    values: Vec<String>,
    dialect: Dialect,
}

impl Args {
    /// Adds an argument; returns its placeholder.
    fn push(&mut self, value: String) -> String {
        self.values.push(value);
        self.dialect.mark(self.values.len())
    }
}

/// The smallest UUIDv7 text of the millisecond `ms`.
fn id_floor(ms: i64) -> String {
    let ms = ms.clamp(0, (1 << 48) - 1) as u64;
    format!("{:08x}-{:04x}-0000-0000-000000000000", ms >> 16, ms & 0xffff)
}

/// The conditions of `query` the indexes serve (state, topic unless `walked`, cursor, time
/// range), their arguments pushed onto `bound`.
fn indexed_conditions(query: &JobQuery, bound: &mut Args, walked: bool) -> Vec<String> {
    let dialect = bound.dialect;
    let mut conds: Vec<String> = Vec::new();
    if !query.states.is_empty() {
        let marks: Vec<String> = query.states.iter().map(|s| bound.push(s.as_str().to_owned())).collect();
        conds.push(format!("state IN ({})", marks.join(", ")));
    }
    if let (Some(pattern), false) = (&query.topic, walked) {
        let (exact, range, one_level) = topic_conditions(pattern);
        if let Some(topic) = exact {
            conds.push(format!("topic = {}", bound.push(topic)));
        }
        if let Some((low, high)) = range {
            let (low, high) = (bound.push(low), bound.push(high));
            conds.push(format!("topic >= {low} AND topic < {high}"));
        }
        if let Some(not_like) = one_level {
            conds.push(format!("topic NOT LIKE {} ESCAPE '\\'", bound.push(not_like)));
        }
    }
    if let Some(cursor) = query.cursor {
        conds.push(format!("id < {}", bound.push(cursor.to_string())));
    }
    if let Some(after) = query.created_after {
        let ms = after.timestamp_millis();
        let m = bound.push(ms.to_string());
        conds.push(format!("created_at >= {}", dialect.int(&m)));
        conds.push(format!("id >= {}", bound.push(id_floor(ms - ID_TIME_SLACK_MS))));
    }
    if let Some(before) = query.created_before {
        let ms = before.timestamp_millis();
        let m = bound.push(ms.to_string());
        conds.push(format!("created_at < {}", dialect.int(&m)));
        conds.push(format!("id < {}", bound.push(id_floor(ms + ID_TIME_SLACK_MS))));
    }
    conds
}

/// Conditions as one SQL expression.
fn all_of(conds: &[String]) -> String {
    if conds.is_empty() {
        "1 = 1".to_owned()
    } else {
        conds.join(" AND ")
    }
}

/// The property templates of `query` on a candidate's properties `p` (any of them holds), and
/// the expression that reads `p` from a job row; `None` without templates.
fn template_conditions(query: &JobQuery, bound: &mut Args) -> Option<(String, &'static str)> {
    if query.templates.is_empty() {
        return None;
    }
    let templates: Vec<String> = query
        .templates
        .iter()
        .map(|t| {
            let all: Vec<String> = t.conditions.iter().map(|c| condition_sql(c, bound)).collect();
            format!("({})", all.join(" AND "))
        })
        .collect();
    let props = match bound.dialect {
        Dialect::Sqlite => "json_extract(doc, '$.properties')",
        Dialect::Postgres => "(doc::jsonb -> 'properties')",
    };
    Some((templates.join(" OR "), props))
}

/// The statements of `query`. With `topics` (the topics of the ledger its pattern matches, see
/// [`topic_bounds`]; never empty), the candidates are a merge of one walk per topic instead of
/// the pattern's conditions.
pub(super) fn job_sql(query: &JobQuery, dialect: Dialect, topics: Option<&[String]>) -> JobSql {
    let mut bound = Args { values: Vec::new(), dialect };
    let conds = indexed_conditions(query, &mut bound, topics.is_some());
    let walks: Option<Vec<String>> = topics.map(|ts| ts.iter().map(|t| bound.push(t.clone())).collect());
    // The candidates newest first, as `columns`, cut by `tail` (`LIMIT …`): one walk, or a
    // merge of one walk per topic (the arms of a compound statement share the marks of the
    // other conditions).
    let candidates = |columns: &str, tail: &str| match &walks {
        None => format!("SELECT {columns} FROM jobs WHERE {} ORDER BY id DESC {tail}", all_of(&conds)),
        Some(marks) => {
            let arms: Vec<String> = marks
                .iter()
                .map(|m| {
                    let all: Vec<String> =
                        std::iter::once(format!("topic = {m}")).chain(conds.iter().cloned()).collect();
                    format!("SELECT {columns} FROM jobs WHERE {}", all.join(" AND "))
                })
                .collect();
            format!("{} ORDER BY id DESC {tail}", arms.join(" UNION ALL "))
        }
    };
    let limit = query.limit();
    let probe_args = bound.values.len();
    let Some((matches, props)) = template_conditions(query, &mut bound) else {
        let select = candidates("doc, id", &format!("LIMIT {limit}"));
        return JobSql { select, probe: None, window: None, args: bound.values, probe_args, limit };
    };
    let window_rows = candidates(&format!("id, doc, {props} AS p"), &format!("LIMIT {TEMPLATE_WINDOW}"));
    let select = format!("SELECT doc, id FROM ({window_rows}) AS c WHERE {matches} ORDER BY id DESC LIMIT {limit}");
    let window = format!("SELECT CASE WHEN {matches} THEN doc END, id FROM ({window_rows}) AS c ORDER BY id DESC");
    let probe = candidates("id", &format!("LIMIT 1 OFFSET {}", TEMPLATE_WINDOW - 1));
    JobSql { select, probe: Some(probe), window: Some(window), args: bound.values, probe_args, limit }
}

/// How many jobs `query` selects in all (its limit aside), and the statement's arguments. Not
/// windowed like a page: property templates are evaluated on every job the indexed conditions
/// select, so this costs what the whole selection costs. It answers a bulk action's "this
/// affects N jobs", asked once before the action, never per page.
pub(super) fn count_sql(query: &JobQuery, dialect: Dialect) -> (String, Vec<String>) {
    let mut bound = Args { values: Vec::new(), dialect };
    let indexed = all_of(&indexed_conditions(query, &mut bound, false));
    let sql = match template_conditions(query, &mut bound) {
        None => format!("SELECT COUNT(*) FROM jobs WHERE {indexed}"),
        Some((templates, props)) => {
            format!("SELECT COUNT(*) FROM (SELECT {props} AS p FROM jobs WHERE {indexed}) AS c WHERE {templates}")
        }
    };
    (sql, bound.values)
}

/// One condition of a template on the candidate's properties `p`, with the semantics of
/// [`crate::protocol::job_query::Condition::matches`]: numbers with numbers, strings with
/// strings byte by byte, anything else false.
fn condition_sql(c: &crate::protocol::job_query::Condition, bound: &mut Args) -> String {
    let op = match c.op {
        Op::Eq => "=",
        Op::Lt => "<",
        Op::Le => "<=",
        Op::Gt => ">",
        Op::Ge => ">=",
    };
    match bound.dialect {
        Dialect::Sqlite => {
            let path = bound.push(format!("$.\"{}\"", c.key));
            match &c.value {
                Literal::Number(n) => {
                    let v = bound.push(n.to_string());
                    format!("(json_type(p, {path}) IN ('integer', 'real') AND json_extract(p, {path}) {op} CAST({v} AS REAL))")
                }
                Literal::Text(t) => {
                    let v = bound.push(t.clone());
                    format!("(json_type(p, {path}) = 'text' AND json_extract(p, {path}) {op} {v})")
                }
            }
        }
        Dialect::Postgres => {
            let key = bound.push(c.key.clone());
            match &c.value {
                Literal::Number(n) => {
                    let v = bound.push(n.to_string());
                    // CASE, not AND: PostgreSQL may evaluate AND's sides in any order, and a
                    // string property must never reach the numeric cast.
                    format!(
                        "(CASE WHEN jsonb_typeof(p -> ({key}::text)) = 'number' \
                         THEN (p ->> ({key}::text))::numeric {op} CAST({v}::text AS numeric) ELSE false END)"
                    )
                }
                Literal::Text(t) => {
                    let v = bound.push(t.clone());
                    format!(
                        "(jsonb_typeof(p -> ({key}::text)) = 'string' AND (p ->> ({key}::text)) COLLATE \"C\" {op} ({v}::text))"
                    )
                }
            }
        }
    }
}

/// The conditions that select the topics a pattern matches: an exact topic, a key range of
/// everything under a prefix, and (for `*`) a `NOT LIKE` that keeps one level only. Topic
/// segments are `[A-Za-z0-9_]`, so only `_` needs escaping in `LIKE`, with `\`; the range
/// uses `0`, the character after `/`.
#[allow(clippy::type_complexity)]
fn topic_conditions(pattern: &TopicPattern) -> (Option<String>, Option<(String, String)>, Option<String>) {
    let text = pattern.as_str();
    if pattern.is_exact() {
        return (Some(text.to_owned()), None, None);
    }
    let (prefix, tail) = match text.rsplit_once('/') {
        Some((p, t)) => (Some(p), t),
        None => (None, text),
    };
    let range = prefix.map(|p| (format!("{p}/"), format!("{p}0")));
    let one_level = (tail == "*").then(|| match prefix {
        Some(p) => format!("{}/%/%", p.replace('_', "\\_")),
        None => "%/%".to_owned(),
    });
    (None, range, one_level)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_patterns_become_ranges_and_like_conditions() {
        let conds = |p: &str| topic_conditions(&p.parse().unwrap());
        assert_eq!(conds("a/b_c"), (Some("a/b_c".into()), None, None));
        assert_eq!(conds("a/*"), (None, Some(("a/".into(), "a0".into())), Some("a/%/%".into())));
        assert_eq!(conds("a_x/**"), (None, Some(("a_x/".into(), "a_x0".into())), None));
        assert_eq!(conds("*"), (None, None, Some("%/%".into())));
        assert_eq!(conds("**"), (None, None, None));
    }

    #[test]
    fn a_uuid_v7_sorts_after_the_floor_of_its_millisecond() {
        let id = JobId::new();
        let ms = id.0.get_timestamp().map(|t| t.to_unix()).map(|(s, n)| s as i64 * 1000 + i64::from(n / 1_000_000));
        let ms = ms.unwrap();
        assert!(id_floor(ms) <= id.to_string());
        assert!(id_floor(ms + 1) > id.to_string());
    }
}
