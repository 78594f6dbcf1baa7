//! The embedded ledger engine: one SQLite file, one writer thread.
//!
//! The thread owns the connection and runs operations in batches, each batch in one
//! transaction and each operation in a savepoint. SQLite calls are synchronous, so the thread
//! drives each operation's future to completion itself (nothing in it ever waits on anything
//! but SQLite).
//!
//! WAL with `synchronous=NORMAL`: a committed transaction survives the leader process
//! crashing; only a power loss can take the last few commits.
//!
//! `temp_store=MEMORY` keeps the savepoints' page copies in memory: a batch of completions
//! touches more pages than SQLite's 64 KiB spill threshold, and every later savepoint of that
//! transaction then wrote its copies to a temporary file, created and deleted with each
//! transaction (docs/benchmarks.md §1).

use super::query::{count_sql, job_sql, topic_bounds, Dialect, MAX_TOPIC_WALKS, TEMPLATE_WINDOW, TOPICS_IN_RANGE_SQL};
use super::tx::{Aggregate, Finished, PURGED_SQL};
use super::{JobPage, JobQuery, Kind, LedgerError, Settle, Tx, Work};
use crate::protocol::api::{JobRecord, Schedule};
use crate::protocol::workflow::LOCAL_TOPIC;
use crate::protocol::{JobId, JobState, Topic, TopicPattern};
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::path::Path;

/// Most operations that may share one transaction.
const MAX_BATCH: usize = 1024;

/// The schema; `user_version` says which one a file holds. Schema 4 changed only an index,
/// which every start makes if missing.
const SCHEMA_VERSION: i64 = 4;

/// Opens (or creates) the ledger file and starts its writer thread; returns where to send work
/// and the ledger's id.
pub(super) fn start(path: &Path) -> Result<(async_channel::Sender<Work>, String), LedgerError> {
    let open_err = |source| LedgerError::Open { path: path.display().to_string(), source };
    let mut conn = Connection::open(path).map_err(open_err)?;
    conn.execute_batch(
        "PRAGMA journal_mode=WAL;
         PRAGMA synchronous=NORMAL;
         PRAGMA busy_timeout=5000;
         PRAGMA temp_store=MEMORY;
         CREATE TABLE IF NOT EXISTS jobs (
             id TEXT PRIMARY KEY,
             topic TEXT NOT NULL,
             state TEXT NOT NULL,
             next_attempt_at INTEGER,
             created_at INTEGER NOT NULL,
             doc TEXT NOT NULL,
             started_at INTEGER,
             finished_at INTEGER
         );
         CREATE TABLE IF NOT EXISTS purged_stats (
             topic TEXT NOT NULL,
             state TEXT NOT NULL,
             count INTEGER NOT NULL,
             wait_ms INTEGER NOT NULL,
             waited INTEGER NOT NULL,
             process_ms INTEGER NOT NULL,
             processed INTEGER NOT NULL,
             last_started INTEGER,
             last_finished INTEGER,
             PRIMARY KEY (topic, state)
         );
         CREATE TABLE IF NOT EXISTS schedules (
             id TEXT PRIMARY KEY,
             next_due INTEGER,
             doc TEXT NOT NULL
         );
         CREATE INDEX IF NOT EXISTS schedules_due ON schedules(next_due);
         CREATE TABLE IF NOT EXISTS topics (
             topic TEXT PRIMARY KEY,
             first_seen INTEGER NOT NULL
         );
         CREATE TABLE IF NOT EXISTS docs (
             kind TEXT NOT NULL,
             key TEXT NOT NULL,
             doc TEXT NOT NULL,
             PRIMARY KEY (kind, key)
         );
         CREATE TABLE IF NOT EXISTS meta (
             key TEXT PRIMARY KEY,
             value TEXT NOT NULL
         );",
    )
    .map_err(open_err)?;
    migrate(&mut conn).map_err(open_err)?;
    // After the migration, which adds the columns some of them cover. `(state, id)` and
    // `(topic, id)` serve searches newest first; `jobs_final_at` serves retention and the time
    // series. It holds only finished jobs (schema 4): a job's insert then skips it, and its
    // last update adds one entry where it used to move a NULL entry (docs/benchmarks.md §1).
    // `jobs_state_times` serves the jobs due for publishing (by state and next attempt, as the
    // `(state, next_attempt_at)` index it replaced) and covers what statistics sum, so they
    // read this index, not every job's row with its document (0.2 s of CPU rather than 2 s
    // at a million jobs, docs/benchmarks.md §5). Every job write already rewrote the entry of
    // the index it replaced (state changes with each), so it adds no index update, only
    // wider entries.
    conn.execute_batch(
        "DROP INDEX IF EXISTS jobs_state;
         CREATE INDEX IF NOT EXISTS jobs_state_times
             ON jobs(state, next_attempt_at, topic, created_at, started_at, finished_at);
         CREATE INDEX IF NOT EXISTS jobs_state_id ON jobs(state, id);
         DROP INDEX IF EXISTS jobs_topic;
         CREATE INDEX IF NOT EXISTS jobs_topic_id ON jobs(topic, id);
         DROP INDEX IF EXISTS jobs_finished;
         CREATE INDEX IF NOT EXISTS jobs_final_at ON jobs(finished_at) WHERE finished_at IS NOT NULL;
         PRAGMA optimize=0x10002;",
    )
    .map_err(open_err)?;
    conn.execute(
        "INSERT OR IGNORE INTO meta(key, value) VALUES ('ledger_id', ?1)",
        params![uuid::Uuid::new_v4().to_string()],
    )
    .map_err(open_err)?;
    let id: String =
        conn.query_row("SELECT value FROM meta WHERE key = 'ledger_id'", [], |r| r.get(0)).map_err(open_err)?;
    let (tx, rx) = async_channel::unbounded();
    std::thread::Builder::new()
        .name("ledger".into())
        .spawn(move || writer_loop(conn, rx))
        .map_err(|e| LedgerError::Commit(e.to_string()))?;
    Ok((tx, id))
}

/// Brings a file written by an earlier version up to [`SCHEMA_VERSION`]. Version 1 kept assets
/// in tables of their own; they become documents.
fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version >= SCHEMA_VERSION {
        return Ok(());
    }
    let has_assets: bool =
        conn.query_row("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'assets'", [], |r| {
            r.get::<_, i64>(0)
        })? > 0;
    let columns: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info('jobs')")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let t = conn.transaction()?;
    if !columns.iter().any(|c| c == "finished_at") {
        // Schema 3: the times statistics and retention read, from each record.
        // Whole seconds, plus the first three fractional digits: records hold RFC 3339 times
        // with 0, 3, 6 or 9 of them, truncated to milliseconds as the ledger writes them.
        let ms = |field: &str| {
            format!(
                "CAST(strftime('%s', json_extract(doc, '$.{field}')) AS INTEGER) * 1000
                 + CAST(substr(json_extract(doc, '$.{field}'), 21, 3) AS INTEGER)"
            )
        };
        t.execute_batch(&format!(
            "ALTER TABLE jobs ADD COLUMN started_at INTEGER;
             ALTER TABLE jobs ADD COLUMN finished_at INTEGER;
             UPDATE jobs SET started_at = {}, finished_at = CASE WHEN state IN {FINAL} THEN {} END;",
            ms("started_at"),
            ms("finished_at")
        ))?;
    }
    if has_assets {
        let moved = migrate_assets(&t)?;
        t.execute_batch("DROP TABLE renditions; DROP TABLE assets;")?;
        tracing::info!(assets = moved, "ledger: assets moved to documents (schema 2)");
    }
    t.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))?;
    t.commit()
}

/// The final states, as SQL.
const FINAL: &str = "('SUCCEEDED', 'GIVEN_UP', 'ERROR', 'STOPPED')";

/// The final jobs finished before `?1`, oldest first, at most `?2` (retention). Along the
/// index of finished jobs, named: without statistics SQLite's planner took the `(state, id)`
/// index and sorted every final job instead.
fn finished_before_sql() -> String {
    format!(
        "SELECT doc FROM jobs INDEXED BY jobs_final_at
         WHERE finished_at < ?1 AND state IN {FINAL} ORDER BY finished_at LIMIT ?2"
    )
}

/// Copies every version-1 asset row, with its renditions, into an `asset` document.
fn migrate_assets(t: &rusqlite::Transaction<'_>) -> rusqlite::Result<usize> {
    let ms = |v: Option<i64>| {
        v.and_then(|ms| chrono::TimeZone::timestamp_millis_opt(&Utc, ms).single()).map(|d| d.to_rfc3339())
    };
    let mut assets = t.prepare(
        "SELECT path, sha256, size, mime_type, metadata, other_outputs, workflow, job_id, job_state,
                workflow_error, created_at, modified_at, processed_at FROM assets",
    )?;
    let mut renditions = t.prepare(
        "SELECT name, sha256, size, mime_type, width, height, job_id FROM renditions WHERE asset = ?1 ORDER BY name",
    )?;
    let mut rows = assets.query([])?;
    let mut moved = 0;
    while let Some(r) = rows.next()? {
        let path: String = r.get(0)?;
        let rends: Vec<Value> = renditions
            .query_map(params![path], |x| {
                Ok(serde_json::json!({
                    "name": x.get::<_, String>(0)?,
                    "blob": {"sha256": x.get::<_, String>(1)?, "size": x.get::<_, i64>(2)?},
                    "mime_type": x.get::<_, String>(3)?,
                    "width": x.get::<_, Option<u32>>(4)?,
                    "height": x.get::<_, Option<u32>>(5)?,
                    "job_id": x.get::<_, String>(6)?,
                }))
            })?
            .collect::<rusqlite::Result<_>>()?;
        let workflow: Option<String> = r.get(6)?;
        let doc = serde_json::json!({
            "path": path,
            "original": {"sha256": r.get::<_, String>(1)?, "size": r.get::<_, i64>(2)?},
            "mime_type": r.get::<_, String>(3)?,
            "metadata": serde_json::from_str::<Value>(&r.get::<_, String>(4)?).unwrap_or_default(),
            "renditions": rends,
            "other_outputs": serde_json::from_str::<Value>(&r.get::<_, String>(5)?).unwrap_or_default(),
            "job": workflow.map(|w| serde_json::json!({
                "workflow": w, "id": r.get::<_, Option<String>>(7).ok().flatten(),
                "state": r.get::<_, Option<String>>(8).ok().flatten(),
                "error": r.get::<_, Option<String>>(9).ok().flatten(),
            })),
            "created_at": ms(r.get(10)?),
            "modified_at": ms(r.get(11)?),
            "processed_at": ms(r.get(12)?),
        });
        t.execute(
            "INSERT OR REPLACE INTO docs(kind, key, doc) VALUES ('asset', ?1, ?2)",
            params![path, doc.to_string()],
        )?;
        moved += 1;
    }
    Ok(moved)
}

/// Runs one statement of no result through the statement cache (the savepoints of every
/// operation would otherwise be parsed anew each time).
fn statement(t: &rusqlite::Transaction<'_>, sql: &str) -> rusqlite::Result<()> {
    t.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// Recently written job records, by id. Most reads of a job come within seconds of its last
/// write (its confirm follows its insert, its completion follows that, a waiter reads it), and
/// reading it back from SQLite costs a query and a JSON parse each time. Only this thread writes
/// the file (one leader per embedded ledger), so what it wrote last is what the file holds once
/// committed; a rolled back operation or a failed commit clears the cache.
struct RecordCache {
    records: HashMap<JobId, JobRecord>,
    order: VecDeque<JobId>,
}

/// Records kept: several times the jobs in flight at once.
const CACHED_RECORDS: usize = 8192;

impl RecordCache {
    fn new() -> Self {
        RecordCache { records: HashMap::new(), order: VecDeque::new() }
    }

    fn get(&self, id: JobId) -> Option<JobRecord> {
        self.records.get(&id).cloned()
    }

    fn put(&mut self, rec: &JobRecord) {
        if self.records.insert(rec.id, rec.clone()).is_none() {
            self.order.push_back(rec.id);
            if self.order.len() > CACHED_RECORDS {
                if let Some(oldest) = self.order.pop_front() {
                    self.records.remove(&oldest);
                }
            }
        }
    }

    fn forget(&mut self, id: JobId) {
        // Its place in `order` goes when it comes round; removing a missing record is harmless.
        self.records.remove(&id);
    }

    fn clear(&mut self) {
        self.records.clear();
        self.order.clear();
    }
}

fn writer_loop(mut conn: Connection, work: async_channel::Receiver<Work>) {
    let mut cache = RecordCache::new();
    while let Ok(first) = work.recv_blocking() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match work.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let t = match conn.transaction() {
            Ok(t) => t,
            Err(e) => {
                // Run nothing; every caller hears of it (their result channels close).
                tracing::error!(error = %e, "ledger cannot begin a transaction");
                continue;
            }
        };
        let mut settles: Vec<Settle> = Vec::with_capacity(batch.len());
        for op in batch {
            if op.kind != Kind::Write {
                // No savepoint needed (see `Kind`): a failed one leaves the transaction as it was.
                settles.push(futures::executor::block_on((op.run)(&mut SqliteTx { conn: &t, cache: &mut cache })));
                continue;
            }
            if let Err(e) = statement(&t, "SAVEPOINT op") {
                tracing::error!(error = %e, "ledger cannot open a savepoint");
                continue;
            }
            let settle = futures::executor::block_on((op.run)(&mut SqliteTx { conn: &t, cache: &mut cache }));
            let closed = if settle.ok {
                statement(&t, "RELEASE op")
            } else {
                // What the cache took from the failed operation was rolled back.
                cache.clear();
                statement(&t, "ROLLBACK TO op").and_then(|()| statement(&t, "RELEASE op"))
            };
            if let Err(e) = closed {
                tracing::error!(error = %e, "ledger cannot close a savepoint");
            }
            settles.push(settle);
        }
        let committed = t.commit().map_err(|e| e.to_string());
        if let Err(e) = &committed {
            tracing::error!(error = %e, "ledger commit failed");
            cache.clear();
        }
        for s in settles {
            (s.deliver)(committed.clone());
        }
    }
}

/// The statements of [`Tx`] on the writer thread's open transaction.
struct SqliteTx<'c> {
    conn: &'c Connection,
    cache: &'c mut RecordCache,
}

fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// When a final job finished, for the `finished_at` column (retention and statistics count
/// only final jobs as finished).
fn final_at(rec: &JobRecord) -> Option<i64> {
    rec.finished_at.filter(|_| rec.state.is_final()).map(millis)
}

/// [`super::tx::AGGREGATE_SQL`] from the `jobs_state_times` index alone: grouped first in the
/// index's order (state, next attempt, topic), which needs no sort of a million entries, then
/// per topic and state over those few groups (final jobs have no next attempt; only jobs
/// waiting to be published again make more than one group of a topic and state).
const INDEXED_AGGREGATE_SQL: &str = "SELECT topic, state, SUM(n), SUM(wait_ms), SUM(waited), SUM(process_ms),
    SUM(processed), MAX(last_started), MAX(last_finished)
  FROM (SELECT topic, state, COUNT(*) AS n,
          COALESCE(SUM(started_at - created_at), 0) AS wait_ms, COUNT(started_at) AS waited,
          COALESCE(SUM(CASE WHEN finished_at IS NOT NULL THEN finished_at - started_at END), 0) AS process_ms,
          COUNT(CASE WHEN finished_at IS NOT NULL THEN started_at END) AS processed,
          MAX(started_at) AS last_started, MAX(finished_at) AS last_finished
        FROM jobs INDEXED BY jobs_state_times GROUP BY state, next_attempt_at, topic)
  GROUP BY topic, state";

fn aggregate_rows(conn: &Connection, sql: &str) -> Result<Vec<Aggregate>, LedgerError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map([], |r| {
        Ok(Aggregate {
            topic: r.get(0)?,
            state: r.get(1)?,
            count: r.get(2)?,
            wait_ms: r.get(3)?,
            waited: r.get(4)?,
            process_ms: r.get(5)?,
            processed: r.get(6)?,
            last_started: r.get(7)?,
            last_finished: r.get(8)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The page a window statement (see [`super::query::JobSql`]) answers: its matches up to
/// `limit`, read only as far as the page needs; when the window ends first, its last
/// candidate is where the next page starts.
fn window_page(mut rows: rusqlite::Rows<'_>, limit: usize) -> Result<JobPage, LedgerError> {
    let (mut jobs, mut seen, mut last) = (Vec::<JobRecord>::new(), 0, None);
    while let Some(row) = rows.next()? {
        seen += 1;
        last = Some(row.get::<_, String>(1)?);
        if let Some(doc) = row.get::<_, Option<String>>(0)? {
            jobs.push(serde_json::from_str(&doc)?);
            if jobs.len() >= limit {
                let next = jobs.last().map(|j| j.id);
                return Ok(JobPage { jobs, next });
            }
        }
    }
    let next = if seen >= TEMPLATE_WINDOW { last.and_then(|id| id.parse().ok()) } else { None };
    Ok(JobPage { jobs, next })
}

/// The topics of the ledger that `pattern` matches, when it may match several and they are at
/// most [`MAX_TOPIC_WALKS`] (see [`super::query`]); `None` otherwise.
fn matching_topics(conn: &Connection, pattern: &TopicPattern) -> Result<Option<Vec<String>>, LedgerError> {
    let Some((low, high)) = topic_bounds(pattern) else { return Ok(None) };
    let mut stmt = conn.prepare_cached(TOPICS_IN_RANGE_SQL)?;
    let listed: Vec<String> =
        stmt.query_map(params![low, high, MAX_TOPIC_WALKS as i64 + 1], |r| r.get(0))?.collect::<Result<_, _>>()?;
    if listed.len() > MAX_TOPIC_WALKS {
        return Ok(None);
    }
    Ok(Some(listed.into_iter().filter(|t| t.parse::<Topic>().is_ok_and(|t| pattern.matches(&t))).collect()))
}

fn records(mut rows: rusqlite::Rows<'_>) -> Result<Vec<JobRecord>, LedgerError> {
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(serde_json::from_str(&row.get::<_, String>(0)?)?);
    }
    Ok(out)
}

#[async_trait::async_trait(?Send)]
impl Tx for SqliteTx<'_> {
    async fn job(&mut self, id: JobId) -> Result<Option<JobRecord>, LedgerError> {
        if let Some(rec) = self.cache.get(id) {
            return Ok(Some(rec));
        }
        let doc: Option<String> = self
            .conn
            .prepare_cached("SELECT doc FROM jobs WHERE id = ?1")?
            .query_row(params![id.to_string()], |r| r.get(0))
            .optional()?;
        let Some(doc) = doc else { return Ok(None) };
        let rec: JobRecord = serde_json::from_str(&doc)?;
        self.cache.put(&rec);
        Ok(Some(rec))
    }

    async fn insert_job(&mut self, rec: &JobRecord) -> Result<(), LedgerError> {
        self.conn
            .prepare_cached(
                "INSERT INTO jobs(id, topic, state, next_attempt_at, created_at, doc, started_at, finished_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                rec.id.to_string(),
                rec.topic.as_str(),
                rec.state.as_str(),
                rec.next_attempt_at.map(millis),
                millis(rec.created_at),
                serde_json::to_string(rec)?,
                rec.started_at.map(millis),
                final_at(rec),
            ])?;
        self.cache.put(rec);
        Ok(())
    }

    async fn update_job(&mut self, rec: &JobRecord) -> Result<(), LedgerError> {
        self.conn
            .prepare_cached(
                "UPDATE jobs SET state = ?2, next_attempt_at = ?3, doc = ?4, started_at = ?5, finished_at = ?6
                 WHERE id = ?1",
            )?
            .execute(params![
                rec.id.to_string(),
                rec.state.as_str(),
                rec.next_attempt_at.map(millis),
                serde_json::to_string(rec)?,
                rec.started_at.map(millis),
                final_at(rec),
            ])?;
        self.cache.put(rec);
        Ok(())
    }

    async fn delete_job(&mut self, id: JobId) -> Result<bool, LedgerError> {
        let n = self.conn.prepare_cached("DELETE FROM jobs WHERE id = ?1")?.execute(params![id.to_string()])?;
        self.cache.forget(id);
        Ok(n > 0)
    }

    async fn find_jobs(&mut self, query: &JobQuery) -> Result<JobPage, LedgerError> {
        let topics = match &query.topic {
            Some(pattern) => matching_topics(self.conn, pattern)?,
            None => None,
        };
        if topics.as_ref().is_some_and(Vec::is_empty) {
            return Ok(JobPage::default());
        }
        let q = job_sql(query, Dialect::Sqlite, topics.as_deref());
        // A statement per topic list is not worth a place in the cache the writes use.
        let sql = q.window.as_ref().unwrap_or(&q.select);
        let (mut fresh, mut cached);
        let stmt: &mut rusqlite::Statement<'_> = if topics.is_some() {
            fresh = self.conn.prepare(sql)?;
            &mut fresh
        } else {
            cached = self.conn.prepare_cached(sql)?;
            &mut cached
        };
        let rows = stmt.query(rusqlite::params_from_iter(q.args.iter()))?;
        if q.window.is_some() {
            return window_page(rows, q.limit);
        }
        let jobs = records(rows)?;
        let next = if jobs.len() >= q.limit { jobs.last().map(|j| j.id) } else { None };
        Ok(JobPage { jobs, next })
    }

    async fn aggregates(&mut self) -> Result<Vec<Aggregate>, LedgerError> {
        aggregate_rows(self.conn, INDEXED_AGGREGATE_SQL)
    }

    async fn purged_aggregates(&mut self) -> Result<Vec<Aggregate>, LedgerError> {
        aggregate_rows(self.conn, PURGED_SQL)
    }

    async fn add_purged(&mut self, a: &Aggregate) -> Result<(), LedgerError> {
        self.conn
            .prepare_cached(
                "INSERT INTO purged_stats(topic, state, count, wait_ms, waited, process_ms, processed, last_started, last_finished)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT(topic, state) DO UPDATE SET count = count + excluded.count,
                   wait_ms = wait_ms + excluded.wait_ms, waited = waited + excluded.waited,
                   process_ms = process_ms + excluded.process_ms, processed = processed + excluded.processed,
                   last_started = MAX(COALESCE(last_started, excluded.last_started), COALESCE(excluded.last_started, last_started)),
                   last_finished = MAX(COALESCE(last_finished, excluded.last_finished), COALESCE(excluded.last_finished, last_finished))",
            )?
            .execute(params![
                a.topic,
                a.state,
                a.count,
                a.wait_ms,
                a.waited,
                a.process_ms,
                a.processed,
                a.last_started,
                a.last_finished
            ])?;
        Ok(())
    }

    async fn finished_before(&mut self, before: DateTime<Utc>, limit: usize) -> Result<Vec<JobRecord>, LedgerError> {
        let mut stmt = self.conn.prepare_cached(&finished_before_sql())?;
        let rows = stmt.query(params![millis(before), limit as i64])?;
        records(rows)
    }

    async fn put_schedule(&mut self, s: &Schedule) -> Result<(), LedgerError> {
        self.conn
            .prepare_cached(
                "INSERT INTO schedules(id, next_due, doc) VALUES (?1, ?2, ?3)
                 ON CONFLICT(id) DO UPDATE SET next_due = excluded.next_due, doc = excluded.doc",
            )?
            .execute(params![s.id, s.next_due.map(millis), serde_json::to_string(s)?])?;
        Ok(())
    }

    async fn schedules(&mut self) -> Result<Vec<Schedule>, LedgerError> {
        let mut stmt = self.conn.prepare_cached("SELECT doc FROM schedules ORDER BY id")?;
        let docs: Vec<String> = stmt.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
        docs.iter().map(|d| Ok(serde_json::from_str(d)?)).collect()
    }

    async fn delete_schedule(&mut self, id: &str) -> Result<bool, LedgerError> {
        Ok(self.conn.prepare_cached("DELETE FROM schedules WHERE id = ?1")?.execute(params![id])? > 0)
    }

    async fn due_schedules(&mut self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Schedule>, LedgerError> {
        let mut stmt =
            self.conn.prepare_cached("SELECT doc FROM schedules WHERE next_due <= ?1 ORDER BY next_due LIMIT ?2")?;
        let docs: Vec<String> =
            stmt.query_map(params![millis(now), limit as i64], |r| r.get(0))?.collect::<Result<_, _>>()?;
        docs.iter().map(|d| Ok(serde_json::from_str(d)?)).collect()
    }

    async fn count_states(&mut self) -> Result<Vec<(JobState, u64)>, LedgerError> {
        let mut stmt = self.conn.prepare_cached("SELECT state, COUNT(*) FROM jobs GROUP BY state")?;
        let rows: Vec<(String, u64)> = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?;
        Ok(rows.into_iter().filter_map(|(s, n)| s.parse().ok().map(|s| (s, n))).collect())
    }

    async fn count_jobs(&mut self, query: &JobQuery) -> Result<u64, LedgerError> {
        let (sql, args) = count_sql(query, Dialect::Sqlite);
        let n: i64 =
            self.conn.prepare_cached(&sql)?.query_row(rusqlite::params_from_iter(args.iter()), |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn finished_since(&mut self, since: DateTime<Utc>) -> Result<Vec<Finished>, LedgerError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT topic, state, created_at, finished_at FROM jobs INDEXED BY jobs_final_at
             WHERE finished_at >= ?1 ORDER BY finished_at",
        )?;
        let rows = stmt.query_map(params![millis(since)], |r| {
            Ok(Finished { topic: r.get(0)?, state: r.get(1)?, created_at: r.get(2)?, finished_at: r.get(3)? })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    async fn due_jobs(
        &mut self,
        now: DateTime<Utc>,
        unconfirmed_before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<JobRecord>, LedgerError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT doc FROM jobs WHERE ((state IN ('FAILED', 'QUEUED') AND next_attempt_at <= ?1)
                                      OR (state = 'NEW' AND created_at <= ?2))
                                     AND topic != ?3
             ORDER BY id LIMIT ?4",
        )?;
        let rows = stmt.query(params![millis(now), millis(unconfirmed_before), LOCAL_TOPIC, limit as i64])?;
        records(rows)
    }

    async fn add_topic(&mut self, topic: &Topic) -> Result<(), LedgerError> {
        self.conn
            .prepare_cached("INSERT OR IGNORE INTO topics(topic, first_seen) VALUES (?1, ?2)")?
            .execute(params![topic.as_str(), millis(Utc::now())])?;
        Ok(())
    }

    async fn topics(&mut self) -> Result<Vec<Topic>, LedgerError> {
        let mut stmt = self.conn.prepare_cached("SELECT topic FROM topics ORDER BY topic")?;
        let names: Vec<String> = stmt.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
        Ok(names.into_iter().filter_map(|n| n.parse().ok()).collect())
    }

    async fn doc(&mut self, kind: &str, key: &str) -> Result<Option<Value>, LedgerError> {
        let doc: Option<String> = self
            .conn
            .prepare_cached("SELECT doc FROM docs WHERE kind = ?1 AND key = ?2")?
            .query_row(params![kind, key], |r| r.get(0))
            .optional()?;
        Ok(match doc {
            Some(d) => Some(serde_json::from_str(&d)?),
            None => None,
        })
    }

    async fn put_doc(&mut self, kind: &str, key: &str, doc: &Value) -> Result<(), LedgerError> {
        self.conn
            .prepare_cached(
                "INSERT INTO docs(kind, key, doc) VALUES (?1, ?2, ?3)
                 ON CONFLICT(kind, key) DO UPDATE SET doc = excluded.doc",
            )?
            .execute(params![kind, key, doc.to_string()])?;
        Ok(())
    }

    async fn delete_doc(&mut self, kind: &str, key: &str) -> Result<bool, LedgerError> {
        Ok(self.conn.prepare_cached("DELETE FROM docs WHERE kind = ?1 AND key = ?2")?.execute(params![kind, key])? > 0)
    }

    async fn docs(
        &mut self,
        kind: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Value)>, LedgerError> {
        // Keys from `prefix` on, in order, until the first that does not start with it: a walk
        // along the primary key's index, where LIKE would scan.
        let mut stmt = self.conn.prepare_cached(
            "SELECT key, doc FROM docs WHERE kind = ?1 AND key >= ?2 AND key > ?3 ORDER BY key LIMIT ?4",
        )?;
        let mut rows = stmt.query(params![kind, prefix, after.unwrap_or(""), limit as i64])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let key: String = row.get(0)?;
            if !key.starts_with(prefix) {
                break;
            }
            out.push((key, serde_json::from_str(&row.get::<_, String>(1)?)?));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::job_query::PropertyTemplate;

    /// SQLite's plan of `sql`, one line per step.
    fn plan(conn: &Connection, sql: &str, args: &[String]) -> String {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let lines: Vec<String> = stmt
            .query_map(rusqlite::params_from_iter(args.iter()), |r| r.get(3))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        lines.join("\n")
    }

    #[test]
    fn statistics_and_searches_over_several_topics_read_indexes_in_their_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.sqlite");
        let (work, _) = start(&path).unwrap();
        let conn = Connection::open(&path).unwrap();

        let stats = plan(&conn, INDEXED_AGGREGATE_SQL, &[]);
        assert!(stats.contains("SCAN jobs USING COVERING INDEX jobs_state_times"), "{stats}");

        let due = plan(
            &conn,
            "SELECT doc FROM jobs WHERE ((state IN ('FAILED', 'QUEUED') AND next_attempt_at <= 1) OR (state = 'NEW' AND created_at <= 1)) AND topic != 'x' ORDER BY id LIMIT 10",
            &[],
        );
        assert!(due.contains("jobs_state_times (state=? AND next_attempt_at<?)"), "{due}");

        // Retention walks the index of finished jobs oldest first, though that index leaves the
        // others out (the range implies a time), and sorts nothing.
        let purge = plan(&conn, &finished_before_sql(), &["5".into(), "10".into()]);
        assert!(
            purge.contains("USING INDEX jobs_final_at (finished_at<?)") && !purge.contains("TEMP B-TREE"),
            "{purge}"
        );

        let query = JobQuery {
            topic: Some("a/*".parse().unwrap()),
            states: vec![JobState::Succeeded, JobState::Error],
            templates: vec!["size<10".parse::<PropertyTemplate>().unwrap()],
            ..Default::default()
        };
        let topics = ["a/b".to_owned(), "a/c".to_owned(), "a/d".to_owned()];
        let q = job_sql(&query, Dialect::Sqlite, Some(&topics));
        let window = plan(&conn, q.window.as_deref().unwrap(), &q.args);
        assert!(window.contains("MERGE (UNION ALL)"), "{window}");
        assert_eq!(window.matches("USING INDEX jobs_topic_id (topic=?)").count(), 3, "{window}");
        assert!(!window.contains("TEMP B-TREE"), "nothing sorted: {window}");
        drop(work);
    }
}
