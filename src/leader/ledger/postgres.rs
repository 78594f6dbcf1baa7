//! The shared ledger engine: one PostgreSQL database for every leader of a cluster.
//!
//! Work is committed in batches as in the embedded engine, by a few writer threads (each a
//! small tokio runtime of its own, since the statements of [`Tx`] are not `Send`), each taking
//! a pooled connection (`deadpool-postgres`) for its batch. Several leaders write at once, so
//! every read made for a change locks what it read: a job row `FOR UPDATE`, a document through a
//! transaction-scoped advisory lock on its key (which also covers documents that do not exist
//! yet). A deadlock between two leaders' batches makes PostgreSQL abort one of them; its callers
//! get an error and offer the work again (the reply poller returns its batch to the queue).
//!
//! Besides storage, the database coordinates the leaders:
//! - a job that becomes final is announced with `NOTIFY`, delivered at commit, so a leader
//!   whose caller waits for that job wakes it, whichever leader applied the completion;
//! - the duties that must run once in the cluster are held by whoever holds a session-level
//!   advisory lock, which PostgreSQL releases the moment that leader's connection dies.
//!
//! Keys and job ids are compared byte by byte (`COLLATE "C"`), as SQLite does, so prefix walks
//! and newest-first listings mean the same on both engines.

use super::query::{count_sql, job_sql, Dialect};
use super::tx::{Aggregate, Finished, AGGREGATE_SQL, PURGED_SQL};
use super::{JobPage, LedgerError, Settle, Tx, Work};
use crate::protocol::api::{JobRecord, Schedule};
use crate::protocol::workflow::LOCAL_TOPIC;
use crate::protocol::{JobId, JobState, Topic};
use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use serde_json::Value;
use std::time::Duration;
use tokio::sync::broadcast;
use tokio_postgres::{AsyncMessage, NoTls};
use tokio_util::sync::CancellationToken;

/// Most operations that may share one transaction.
const MAX_BATCH: usize = 1024;
/// Writer threads: batches committed at once. One: a batch holds the row locks of everything
/// it touched until its commit, so two batches of one leader in flight would deadlock each
/// other on jobs they share (a completion and a publish confirm of one job, say), and
/// PostgreSQL would abort one of them. Group commit already amortizes the commit's latency:
/// under load a batch carries hundreds of operations.
const WRITERS: usize = 1;
/// The channel that carries the ids of jobs that became final.
const FINAL_CHANNEL: &str = "offloader_job_final";

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT COLLATE "C" PRIMARY KEY,
    topic TEXT COLLATE "C" NOT NULL,
    state TEXT NOT NULL,
    next_attempt_at BIGINT,
    created_at BIGINT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, next_attempt_at);
CREATE INDEX IF NOT EXISTS jobs_topic ON jobs(topic);
CREATE TABLE IF NOT EXISTS topics (
    topic TEXT COLLATE "C" PRIMARY KEY,
    first_seen BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS docs (
    kind TEXT COLLATE "C" NOT NULL,
    key TEXT COLLATE "C" NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (kind, key)
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
ALTER TABLE jobs ADD COLUMN IF NOT EXISTS started_at BIGINT;
ALTER TABLE jobs ADD COLUMN IF NOT EXISTS finished_at BIGINT;
CREATE INDEX IF NOT EXISTS jobs_state_id ON jobs(state, id);
DROP INDEX IF EXISTS jobs_topic;
CREATE INDEX IF NOT EXISTS jobs_topic_id ON jobs(topic, id);
DROP INDEX IF EXISTS jobs_finished;
CREATE INDEX IF NOT EXISTS jobs_final_at ON jobs(finished_at) WHERE finished_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS purged_stats (
    topic TEXT COLLATE "C" NOT NULL,
    state TEXT NOT NULL,
    count BIGINT NOT NULL,
    wait_ms BIGINT NOT NULL,
    waited BIGINT NOT NULL,
    process_ms BIGINT NOT NULL,
    processed BIGINT NOT NULL,
    last_started BIGINT,
    last_finished BIGINT,
    PRIMARY KEY (topic, state)
);
CREATE TABLE IF NOT EXISTS schedules (
    id TEXT COLLATE "C" PRIMARY KEY,
    next_due BIGINT,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS schedules_due ON schedules(next_due);
"#;

/// The final states, as SQL.
const FINAL: &str = "('SUCCEEDED', 'GIVEN_UP', 'ERROR', 'STOPPED')";

/// Fills the time columns of a ledger written before they existed, once.
fn backfill_times() -> String {
    let ms = |field: &str| format!("floor(EXTRACT(EPOCH FROM (doc::jsonb ->> '{field}')::timestamptz) * 1000)::bigint");
    format!(
        "DO $$ BEGIN
           IF NOT EXISTS (SELECT 1 FROM meta WHERE key = 'job_times') THEN
             UPDATE jobs SET started_at = {}, finished_at = CASE WHEN state IN {FINAL} THEN {} END;
             INSERT INTO meta(key, value) VALUES ('job_times', '1');
           END IF;
         END $$;",
        ms("started_at"),
        ms("finished_at")
    )
}

/// What the engine hands to the ledger: where to send work, and how to hear about jobs other
/// leaders finished.
pub(super) struct Started {
    pub work: async_channel::Sender<Work>,
    pub finals: broadcast::Sender<JobId>,
    pub ledger_id: String,
    /// Cancelling it stops the listener of final jobs.
    pub listening: CancellationToken,
}

/// The URL without its password, for logs.
pub(super) fn redacted(url: &str) -> String {
    match url.split_once("://").and_then(|(scheme, rest)| rest.split_once('@').map(|(user, host)| (scheme, user, host)))
    {
        Some((scheme, user, host)) => format!("{scheme}://{}:***@{host}", user.split(':').next().unwrap_or("")),
        None => url.to_owned(),
    }
}

fn pg_err(context: &str, e: impl std::fmt::Display) -> LedgerError {
    LedgerError::Postgres(format!("{context}: {e}"))
}

/// What went wrong, with the server's own message when it sent one (the driver's `Display`
/// says only "db error").
fn explain(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
        None => match std::error::Error::source(e) {
            Some(source) => format!("{e}: {source}"),
            None => e.to_string(),
        },
    }
}

/// The schema [`SCHEMA`] and [`backfill_times`] make, recorded in `meta` under `schema`. A leader
/// that finds it current runs no DDL: `ALTER TABLE` and `CREATE INDEX` lock the jobs table even
/// when there is nothing to do, so a leader restarting beside a busy one waited for its writes,
/// and could deadlock with them and fail to start (`tests/leader_cluster.rs` met that). Raise it
/// with every change to [`SCHEMA`]. Schema 4: the index of finished jobs holds only them.
const SCHEMA_VERSION: i64 = 4;

/// Creates or updates the schema unless it is current, and returns the ledger's id. Leaders
/// starting together take turns (an advisory lock); a deadlock with another leader's writes,
/// possible only while DDL runs, is tried again.
async fn prepare(pool: &Pool, url: &str) -> Result<String, LedgerError> {
    let mut tries = 0;
    loop {
        tries += 1;
        match prepare_once(pool, url).await {
            Err(Prepare::Conflict(e)) if tries < 3 => {
                tracing::warn!(error = %e, "ledger schema: conflict with another leader's writes; trying again");
                tokio::time::sleep(Duration::from_millis(200 * tries)).await;
            }
            Err(Prepare::Conflict(e)) => return Err(LedgerError::Postgres(e)),
            Err(Prepare::Failed(e)) => return Err(e),
            Ok(id) => return Ok(id),
        }
    }
}

enum Prepare {
    /// A deadlock or lock timeout: another try may go through.
    Conflict(String),
    Failed(LedgerError),
}

async fn prepare_once(pool: &Pool, url: &str) -> Result<String, Prepare> {
    let failed = |context: &str, e: tokio_postgres::Error| {
        let conflict = e.code().is_some_and(|c| {
            *c == tokio_postgres::error::SqlState::T_R_DEADLOCK_DETECTED
                || *c == tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE
        });
        let text = format!("{context}: {}", explain(&e));
        if conflict {
            Prepare::Conflict(text)
        } else {
            Prepare::Failed(LedgerError::Postgres(text))
        }
    };
    let mut client =
        pool.get().await.map_err(|e| Prepare::Failed(pg_err(&format!("cannot reach {}", redacted(url)), e)))?;
    let t = client.transaction().await.map_err(|e| failed("begin", e))?;
    // Leaders starting together would race on CREATE TABLE IF NOT EXISTS; one at a time.
    t.execute("SELECT pg_advisory_xact_lock(7424101)", &[]).await.map_err(|e| failed("schema lock", e))?;
    let has_meta: bool = t
        .query_one("SELECT to_regclass('meta') IS NOT NULL", &[])
        .await
        .map_err(|e| failed("reading the schema version", e))?
        .get(0);
    let version = if has_meta {
        t.query_opt("SELECT value FROM meta WHERE key = 'schema'", &[])
            .await
            .map_err(|e| failed("reading the schema version", e))?
            .and_then(|r| r.get::<_, String>(0).parse::<i64>().ok())
            .unwrap_or(0)
    } else {
        0
    };
    if version < SCHEMA_VERSION {
        t.batch_execute(SCHEMA).await.map_err(|e| failed("creating the schema", e))?;
        t.batch_execute(&backfill_times()).await.map_err(|e| failed("filling the job times", e))?;
        t.execute(
            "INSERT INTO meta(key, value) VALUES ('schema', $1) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            &[&SCHEMA_VERSION.to_string()],
        )
        .await
        .map_err(|e| failed("recording the schema version", e))?;
    }
    t.execute(
        "INSERT INTO meta(key, value) VALUES ('ledger_id', $1) ON CONFLICT (key) DO NOTHING",
        &[&uuid::Uuid::new_v4().to_string()],
    )
    .await
    .map_err(|e| failed("ledger id", e))?;
    let id: String = t
        .query_one("SELECT value FROM meta WHERE key = 'ledger_id'", &[])
        .await
        .map_err(|e| failed("ledger id", e))?
        .get(0);
    t.commit().await.map_err(|e| failed("commit", e))?;
    Ok(id)
}

/// Connects, creates the schema if missing, and starts the writer threads and the listener.
pub(super) async fn start(url: &str) -> Result<Started, LedgerError> {
    let config: tokio_postgres::Config = url.parse().map_err(|e| pg_err("the ledger URL", e))?;
    let manager =
        Manager::from_config(config.clone(), NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
    let pool = Pool::builder(manager)
        .max_size(WRITERS + 2)
        .wait_timeout(Some(Duration::from_secs(10)))
        .create_timeout(Some(Duration::from_secs(10)))
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .map_err(|e| pg_err("the connection pool", e))?;
    let ledger_id = prepare(&pool, url).await?;
    let (work, rx) = async_channel::unbounded();
    for i in 0..WRITERS {
        let (pool, rx) = (pool.clone(), rx.clone());
        std::thread::Builder::new()
            .name(format!("ledger-pg-{i}"))
            .spawn(move || match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt.block_on(writer_loop(pool, rx)),
                Err(e) => tracing::error!(error = %e, "ledger writer cannot start"),
            })
            .map_err(|e| LedgerError::Commit(e.to_string()))?;
    }
    let (finals, _) = broadcast::channel(1024);
    let listening = CancellationToken::new();
    tokio::spawn(listen(config, finals.clone(), listening.clone()));
    Ok(Started { work, finals, ledger_id, listening })
}

/// Relays `NOTIFY` of final jobs to this process, reconnecting when the connection drops.
async fn listen(config: tokio_postgres::Config, finals: broadcast::Sender<JobId>, cancel: CancellationToken) {
    let mut backoff = crate::broker::Backoff::reconnect();
    loop {
        let connected = tokio::select! {
            _ = cancel.cancelled() => return,
            c = config.connect(NoTls) => c,
        };
        match connected {
            Ok((client, mut connection)) => {
                backoff.reset();
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                let driver = tokio::spawn(async move {
                    let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
                    while let Some(message) = futures::StreamExt::next(&mut messages).await {
                        match message {
                            Ok(AsyncMessage::Notification(n)) => {
                                if tx.send(n.payload().to_owned()).is_err() {
                                    return;
                                }
                            }
                            Ok(_) => {}
                            Err(e) => {
                                tracing::warn!(error = %e, "ledger notifications: connection lost");
                                return;
                            }
                        }
                    }
                });
                if let Err(e) = client.batch_execute(&format!("LISTEN {FINAL_CHANNEL}")).await {
                    tracing::warn!(error = %e, "ledger notifications: LISTEN failed");
                } else {
                    loop {
                        let payload = tokio::select! {
                            _ = cancel.cancelled() => break,
                            p = rx.recv() => p,
                        };
                        let Some(payload) = payload else { break };
                        if let Ok(id) = payload.parse::<JobId>() {
                            let _ = finals.send(id);
                        }
                    }
                }
                driver.abort();
                if cancel.is_cancelled() {
                    return;
                }
            }
            Err(e) => tracing::warn!(error = %e, "ledger notifications: cannot connect; retrying"),
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = backoff.wait() => {}
        }
    }
}

async fn writer_loop(pool: Pool, work: async_channel::Receiver<Work>) {
    while let Ok(first) = work.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match work.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        // Without a connection or a transaction nothing runs; dropping the batch tells every
        // caller (their result channels close) and the database is tried again for the next.
        let mut client = match pool.get().await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "ledger: no connection to PostgreSQL");
                continue;
            }
        };
        let t = match client.transaction().await {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, "ledger cannot begin a transaction");
                continue;
            }
        };
        let mut settles: Vec<Settle> = Vec::with_capacity(batch.len());
        for op in batch {
            if let Err(e) = t.batch_execute("SAVEPOINT op").await {
                tracing::error!(error = %e, "ledger cannot open a savepoint");
                continue;
            }
            let settle = (op.run)(&mut PgTx { t: &t }).await;
            let end = if settle.ok { "RELEASE SAVEPOINT op" } else { "ROLLBACK TO SAVEPOINT op; RELEASE SAVEPOINT op" };
            if let Err(e) = t.batch_execute(end).await {
                tracing::error!(error = %e, "ledger cannot close a savepoint");
            }
            settles.push(settle);
        }
        let committed = t.commit().await.map_err(|e| explain(&e));
        if let Err(e) = &committed {
            tracing::error!(error = %e, "ledger commit failed");
        }
        for s in settles {
            (s.deliver)(committed.clone());
        }
    }
}

/// Tries to become the one leader running the cluster's duties: a session-level advisory lock
/// on a connection of its own, held as long as the connection lives. Returns the connection
/// (hold it to keep the lock) when it got the lock.
pub(super) async fn try_lead(
    config: &tokio_postgres::Config,
    key: i64,
) -> Result<Option<(tokio_postgres::Client, tokio::task::JoinHandle<()>)>, LedgerError> {
    let (client, connection) = config.connect(NoTls).await.map_err(|e| pg_err("election connection", e))?;
    let driver = tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "ledger election: connection lost");
        }
    });
    let held: bool =
        client.query_one("SELECT pg_try_advisory_lock($1)", &[&key]).await.map_err(|e| pg_err("election", e))?.get(0);
    if held {
        Ok(Some((client, driver)))
    } else {
        driver.abort();
        Ok(None)
    }
}

/// The statements of [`Tx`] in one PostgreSQL transaction.
struct PgTx<'t, 'c> {
    t: &'t deadpool_postgres::Transaction<'c>,
}

fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn sql(e: tokio_postgres::Error) -> LedgerError {
    LedgerError::Postgres(explain(&e))
}

/// When a final job finished, for the `finished_at` column (retention and statistics count
/// only final jobs as finished).
fn final_at(rec: &JobRecord) -> Option<i64> {
    rec.finished_at.filter(|_| rec.state.is_final()).map(millis)
}

fn aggregate(r: &tokio_postgres::Row) -> Aggregate {
    Aggregate {
        topic: r.get(0),
        state: r.get(1),
        count: r.get(2),
        wait_ms: r.get(3),
        waited: r.get(4),
        process_ms: r.get(5),
        processed: r.get(6),
        last_started: r.get(7),
        last_finished: r.get(8),
    }
}

fn records(rows: Vec<tokio_postgres::Row>) -> Result<Vec<JobRecord>, LedgerError> {
    rows.iter().map(|r| Ok(serde_json::from_str::<JobRecord>(r.get::<_, &str>(0))?)).collect()
}

impl PgTx<'_, '_> {
    async fn query(
        &self,
        statement: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, LedgerError> {
        let stmt = self.t.prepare_cached(statement).await.map_err(sql)?;
        self.t.query(&stmt, params).await.map_err(sql)
    }

    async fn execute(
        &self,
        statement: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<u64, LedgerError> {
        let stmt = self.t.prepare_cached(statement).await.map_err(sql)?;
        self.t.execute(&stmt, params).await.map_err(sql)
    }
}

#[async_trait::async_trait(?Send)]
impl Tx for PgTx<'_, '_> {
    async fn job(&mut self, id: JobId) -> Result<Option<JobRecord>, LedgerError> {
        let rows = self.query("SELECT doc FROM jobs WHERE id = $1 FOR UPDATE", &[&id.to_string()]).await?;
        Ok(records(rows)?.pop())
    }

    async fn insert_job(&mut self, rec: &JobRecord) -> Result<(), LedgerError> {
        let doc = serde_json::to_string(rec)?;
        self.execute(
            "INSERT INTO jobs(id, topic, state, next_attempt_at, created_at, doc, started_at, finished_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &rec.id.to_string(),
                &rec.topic.as_str(),
                &rec.state.as_str(),
                &rec.next_attempt_at.map(millis),
                &millis(rec.created_at),
                &doc,
                &rec.started_at.map(millis),
                &final_at(rec),
            ],
        )
        .await?;
        Ok(())
    }

    async fn insert_jobs(&mut self, recs: &[JobRecord]) -> Result<(), LedgerError> {
        // One statement per thousand rows: arrays unnested into rows.
        for chunk in recs.chunks(1000) {
            let mut cols: (Vec<String>, Vec<&str>, Vec<&str>, Vec<Option<i64>>, Vec<i64>, Vec<String>) =
                Default::default();
            let (mut started, mut finished): (Vec<Option<i64>>, Vec<Option<i64>>) = Default::default();
            for rec in chunk {
                cols.0.push(rec.id.to_string());
                cols.1.push(rec.topic.as_str());
                cols.2.push(rec.state.as_str());
                cols.3.push(rec.next_attempt_at.map(millis));
                cols.4.push(millis(rec.created_at));
                cols.5.push(serde_json::to_string(rec)?);
                started.push(rec.started_at.map(millis));
                finished.push(final_at(rec));
            }
            self.execute(
                "INSERT INTO jobs(id, topic, state, next_attempt_at, created_at, doc, started_at, finished_at)
                 SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::text[],
                                      $7::bigint[], $8::bigint[])",
                &[&cols.0, &cols.1, &cols.2, &cols.3, &cols.4, &cols.5, &started, &finished],
            )
            .await?;
        }
        Ok(())
    }

    async fn update_job(&mut self, rec: &JobRecord) -> Result<(), LedgerError> {
        let doc = serde_json::to_string(rec)?;
        self.execute(
            "UPDATE jobs SET state = $2, next_attempt_at = $3, doc = $4, started_at = $5, finished_at = $6 WHERE id = $1",
            &[
                &rec.id.to_string(),
                &rec.state.as_str(),
                &rec.next_attempt_at.map(millis),
                &doc,
                &rec.started_at.map(millis),
                &final_at(rec),
            ],
        )
        .await?;
        if rec.state.is_final() {
            // Delivered at commit, to every leader listening.
            self.execute("SELECT pg_notify($1, $2)", &[&FINAL_CHANNEL, &rec.id.to_string()]).await?;
        }
        Ok(())
    }

    async fn delete_job(&mut self, id: JobId) -> Result<bool, LedgerError> {
        Ok(self.execute("DELETE FROM jobs WHERE id = $1", &[&id.to_string()]).await? > 0)
    }

    async fn find_jobs(&mut self, query: &super::JobQuery) -> Result<JobPage, LedgerError> {
        // PostgreSQL walks the ids of a multi-topic pattern itself (docs/benchmarks.md §5).
        let q = job_sql(query, Dialect::Postgres, None);
        let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
            q.args.iter().map(|a| a as &(dyn tokio_postgres::types::ToSql + Sync)).collect();
        let jobs = records(self.t.query(&q.select, &params).await.map_err(sql)?)?;
        let next = if jobs.len() >= q.limit {
            jobs.last().map(|j| j.id)
        } else if let Some(probe) = &q.probe {
            let rows = self.t.query(probe, &params[..q.probe_args]).await.map_err(sql)?;
            rows.first().and_then(|r| r.get::<_, &str>(0).parse().ok())
        } else {
            None
        };
        Ok(JobPage { jobs, next })
    }

    async fn aggregates(&mut self) -> Result<Vec<Aggregate>, LedgerError> {
        Ok(self.query(AGGREGATE_SQL, &[]).await?.iter().map(aggregate).collect())
    }

    async fn purged_aggregates(&mut self) -> Result<Vec<Aggregate>, LedgerError> {
        Ok(self.query(PURGED_SQL, &[]).await?.iter().map(aggregate).collect())
    }

    async fn add_purged(&mut self, a: &Aggregate) -> Result<(), LedgerError> {
        self.execute(
            "INSERT INTO purged_stats AS s(topic, state, count, wait_ms, waited, process_ms, processed, last_started, last_finished)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (topic, state) DO UPDATE SET count = s.count + excluded.count,
               wait_ms = s.wait_ms + excluded.wait_ms, waited = s.waited + excluded.waited,
               process_ms = s.process_ms + excluded.process_ms, processed = s.processed + excluded.processed,
               last_started = GREATEST(s.last_started, excluded.last_started),
               last_finished = GREATEST(s.last_finished, excluded.last_finished)",
            &[
                &a.topic,
                &a.state,
                &a.count,
                &a.wait_ms,
                &a.waited,
                &a.process_ms,
                &a.processed,
                &a.last_started,
                &a.last_finished,
            ],
        )
        .await?;
        Ok(())
    }

    async fn finished_before(&mut self, before: DateTime<Utc>, limit: usize) -> Result<Vec<JobRecord>, LedgerError> {
        let statement = format!(
            "SELECT doc FROM jobs WHERE finished_at < $1 AND state IN {FINAL} ORDER BY finished_at LIMIT $2 FOR UPDATE"
        );
        records(self.query(&statement, &[&millis(before), &(limit as i64)]).await?)
    }

    async fn put_schedule(&mut self, s: &Schedule) -> Result<(), LedgerError> {
        self.execute(
            "INSERT INTO schedules(id, next_due, doc) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET next_due = excluded.next_due, doc = excluded.doc",
            &[&s.id, &s.next_due.map(millis), &serde_json::to_string(s)?],
        )
        .await?;
        Ok(())
    }

    async fn schedules(&mut self) -> Result<Vec<Schedule>, LedgerError> {
        let rows = self.query("SELECT doc FROM schedules ORDER BY id", &[]).await?;
        rows.iter().map(|r| Ok(serde_json::from_str(r.get::<_, &str>(0))?)).collect()
    }

    async fn delete_schedule(&mut self, id: &str) -> Result<bool, LedgerError> {
        Ok(self.execute("DELETE FROM schedules WHERE id = $1", &[&id]).await? > 0)
    }

    async fn due_schedules(&mut self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Schedule>, LedgerError> {
        let rows = self
            .query(
                "SELECT doc FROM schedules WHERE next_due <= $1 ORDER BY next_due LIMIT $2 FOR UPDATE",
                &[&millis(now), &(limit as i64)],
            )
            .await?;
        rows.iter().map(|r| Ok(serde_json::from_str(r.get::<_, &str>(0))?)).collect()
    }

    async fn count_states(&mut self) -> Result<Vec<(JobState, u64)>, LedgerError> {
        let rows = self.query("SELECT state, COUNT(*) FROM jobs GROUP BY state", &[]).await?;
        Ok(rows
            .iter()
            .filter_map(|r| r.get::<_, &str>(0).parse().ok().map(|s| (s, r.get::<_, i64>(1).max(0) as u64)))
            .collect())
    }

    async fn count_jobs(&mut self, query: &super::JobQuery) -> Result<u64, LedgerError> {
        let (statement, args) = count_sql(query, Dialect::Postgres);
        let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
            args.iter().map(|a| a as &(dyn tokio_postgres::types::ToSql + Sync)).collect();
        let rows = self.t.query(&statement, &params).await.map_err(sql)?;
        Ok(rows.first().map(|r| r.get::<_, i64>(0)).unwrap_or(0).max(0) as u64)
    }

    async fn finished_since(&mut self, since: DateTime<Utc>) -> Result<Vec<Finished>, LedgerError> {
        let rows = self
            .query(
                "SELECT topic, state, created_at, finished_at FROM jobs WHERE finished_at >= $1 ORDER BY finished_at",
                &[&millis(since)],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| Finished { topic: r.get(0), state: r.get(1), created_at: r.get(2), finished_at: r.get(3) })
            .collect())
    }

    async fn due_jobs(
        &mut self,
        now: DateTime<Utc>,
        unconfirmed_before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<JobRecord>, LedgerError> {
        let rows = self
            .query(
                "SELECT doc FROM jobs WHERE ((state IN ('FAILED', 'QUEUED') AND next_attempt_at <= $1)
                                          OR (state = 'NEW' AND created_at <= $2))
                                         AND topic != $3
                 ORDER BY id LIMIT $4",
                &[&millis(now), &millis(unconfirmed_before), &LOCAL_TOPIC, &(limit as i64)],
            )
            .await?;
        records(rows)
    }

    async fn add_topic(&mut self, topic: &Topic) -> Result<(), LedgerError> {
        self.execute(
            "INSERT INTO topics(topic, first_seen) VALUES ($1, $2) ON CONFLICT (topic) DO NOTHING",
            &[&topic.as_str(), &millis(Utc::now())],
        )
        .await?;
        Ok(())
    }

    async fn topics(&mut self) -> Result<Vec<Topic>, LedgerError> {
        let rows = self.query("SELECT topic FROM topics ORDER BY topic", &[]).await?;
        Ok(rows.iter().filter_map(|r| r.get::<_, &str>(0).parse().ok()).collect())
    }

    async fn doc(&mut self, kind: &str, key: &str) -> Result<Option<Value>, LedgerError> {
        // Serializes read-modify-write of one key across leaders, whether the row exists or not.
        self.execute("SELECT pg_advisory_xact_lock(hashtextextended($1 || '/' || $2, 0))", &[&kind, &key]).await?;
        let rows = self.query("SELECT doc FROM docs WHERE kind = $1 AND key = $2", &[&kind, &key]).await?;
        match rows.first() {
            Some(r) => Ok(Some(serde_json::from_str(r.get::<_, &str>(0))?)),
            None => Ok(None),
        }
    }

    async fn put_doc(&mut self, kind: &str, key: &str, doc: &Value) -> Result<(), LedgerError> {
        self.execute(
            "INSERT INTO docs(kind, key, doc) VALUES ($1, $2, $3)
             ON CONFLICT (kind, key) DO UPDATE SET doc = excluded.doc",
            &[&kind, &key, &doc.to_string()],
        )
        .await?;
        Ok(())
    }

    async fn delete_doc(&mut self, kind: &str, key: &str) -> Result<bool, LedgerError> {
        Ok(self.execute("DELETE FROM docs WHERE kind = $1 AND key = $2", &[&kind, &key]).await? > 0)
    }

    async fn docs(
        &mut self,
        kind: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Value)>, LedgerError> {
        let rows = self
            .query(
                "SELECT key, doc FROM docs WHERE kind = $1 AND key >= $2 AND key > $3 ORDER BY key LIMIT $4",
                &[&kind, &prefix, &after.unwrap_or(""), &(limit as i64)],
            )
            .await?;
        let mut out = Vec::new();
        for r in rows {
            let key: String = r.get(0);
            if !key.starts_with(prefix) {
                break;
            }
            out.push((key, serde_json::from_str(r.get::<_, &str>(1))?));
        }
        Ok(out)
    }
}
