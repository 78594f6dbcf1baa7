//! The job ledger: an embedded SQLite database that outlives the leader process.
//!
//! One thread owns the connection and runs operations in batches: whatever is
//! queued when it wakes goes into one transaction ("group commit"). Under load
//! many job inserts and completions share one commit, which is what keeps a
//! durable ledger from capping throughput at one fsync per job. Results are
//! handed back only after the commit, so nobody acts on an uncommitted state
//! (the poller acks replies only once they are on disk).
//!
//! WAL with `synchronous=NORMAL`: a committed transaction survives the leader
//! process crashing; only a power loss can take the last few commits.

use super::record::{Effect, JobRecord, RetryPolicy};
use crate::protocol::message::Reply;
use crate::protocol::workflow::LOCAL_TOPIC;
use crate::protocol::{JobId, JobState, Topic, TopicPattern};
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use std::path::Path;
use tokio::sync::{mpsc, oneshot};

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("ledger database {path}: {source}")]
    Open { path: String, source: rusqlite::Error },
    #[error("ledger: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("ledger record is unreadable: {0}")]
    Decode(#[from] serde_json::Error),
    #[error("ledger commit failed: {0}")]
    Commit(String),
    #[error("the ledger has shut down")]
    Closed,
}

/// A deferred result: runs after the batch's commit, told whether it succeeded.
type Deliver = Box<dyn FnOnce(Result<(), String>) + Send>;
type Op = Box<dyn FnOnce(&Transaction<'_>) -> Deliver + Send>;

/// Filters for listing jobs.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    pub state: Option<JobState>,
    pub topic: Option<TopicPattern>,
    pub limit: usize,
}

/// A handle to the ledger; cheap to clone.
#[derive(Clone)]
pub struct Ledger {
    ops: mpsc::UnboundedSender<Op>,
}

impl Ledger {
    pub fn open(path: &Path) -> Result<Ledger, LedgerError> {
        let open_err = |source| LedgerError::Open { path: path.display().to_string(), source };
        let conn = Connection::open(path).map_err(open_err)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL;
             PRAGMA synchronous=NORMAL;
             PRAGMA busy_timeout=5000;
             CREATE TABLE IF NOT EXISTS jobs (
                 id TEXT PRIMARY KEY,
                 topic TEXT NOT NULL,
                 state TEXT NOT NULL,
                 next_attempt_at INTEGER,
                 created_at INTEGER NOT NULL,
                 doc TEXT NOT NULL
             );
             CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, next_attempt_at);
             CREATE INDEX IF NOT EXISTS jobs_topic ON jobs(topic);
             CREATE TABLE IF NOT EXISTS topics (
                 topic TEXT PRIMARY KEY,
                 first_seen INTEGER NOT NULL
             );",
        )
        .map_err(open_err)?;
        super::assets::create_tables(&conn).map_err(open_err)?;
        let (tx, rx) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("ledger".into())
            .spawn(move || writer_loop(conn, rx))
            .map_err(|e| LedgerError::Commit(e.to_string()))?;
        Ok(Ledger { ops: tx })
    }

    /// Runs `f` inside the next batch's transaction; its result arrives after commit.
    /// (Also used by the asset repository, which shares this database and writer.)
    pub(super) async fn run<R, F>(&self, f: F) -> Result<R, LedgerError>
    where
        R: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<R, LedgerError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let op: Op = Box::new(move |t| {
            let out = f(t);
            Box::new(move |committed: Result<(), String>| {
                let _ = tx.send(committed.map_err(LedgerError::Commit).and(out));
            })
        });
        self.ops.send(op).map_err(|_| LedgerError::Closed)?;
        rx.await.map_err(|_| LedgerError::Closed)?
    }

    pub async fn insert(&self, rec: JobRecord) -> Result<(), LedgerError> {
        self.run(move |t| put(t, &rec, true)).await
    }

    pub async fn get(&self, id: JobId) -> Result<Option<JobRecord>, LedgerError> {
        self.run(move |t| load(t, id)).await
    }

    /// Records the broker's confirm of `attempt`.
    pub async fn confirm_published(&self, id: JobId, attempt: u32) -> Result<Option<JobRecord>, LedgerError> {
        self.update(id, move |r| r.confirm_published(attempt, Utc::now())).await
    }

    pub async fn stop(&self, id: JobId) -> Result<Option<JobRecord>, LedgerError> {
        self.update(id, |r| r.stop(Utc::now())).await
    }

    async fn update(
        &self,
        id: JobId,
        f: impl FnOnce(&mut JobRecord) -> Effect + Send + 'static,
    ) -> Result<Option<JobRecord>, LedgerError> {
        self.run(move |t| {
            let Some(mut rec) = load(t, id)? else { return Ok(None) };
            if f(&mut rec) == Effect::Applied {
                put(t, &rec, false)?;
                super::assets::apply_job(t, &rec)?;
            }
            Ok(Some(rec))
        })
        .await
    }

    /// Applies replies in one transaction; returns each job's record afterwards
    /// with what the reply did (`None` for a job the ledger does not know).
    pub async fn apply_replies(
        &self,
        replies: Vec<Reply>,
        policy: RetryPolicy,
    ) -> Result<Vec<(Reply, Option<(Effect, JobRecord)>)>, LedgerError> {
        self.run(move |t| {
            let now = Utc::now();
            let mut out = Vec::with_capacity(replies.len());
            for reply in replies {
                let Some(mut rec) = load(t, reply.job_id())? else {
                    out.push((reply, None));
                    continue;
                };
                let effect = rec.apply(&reply, now, &policy);
                if effect == Effect::Applied || rec.duplicates_ignored > 0 {
                    put(t, &rec, false)?;
                }
                if effect == Effect::Applied {
                    // A workflow job's asset changes in the same transaction as the job.
                    super::assets::apply_job(t, &rec)?;
                }
                out.push((reply, Some((effect, rec))));
            }
            Ok(out)
        })
        .await
    }

    pub async fn list(&self, filter: JobFilter) -> Result<Vec<JobRecord>, LedgerError> {
        self.run(move |t| {
            let limit = if filter.limit == 0 { 100 } else { filter.limit };
            let state = filter.state.map(|s| s.as_str().to_owned());
            let mut stmt =
                t.prepare_cached("SELECT doc FROM jobs WHERE (?1 IS NULL OR state = ?1) ORDER BY id DESC")?;
            let mut rows = stmt.query(params![state])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                let rec: JobRecord = serde_json::from_str(&row.get::<_, String>(0)?)?;
                if filter.topic.as_ref().is_none_or(|p| p.matches(&rec.topic)) {
                    out.push(rec);
                    if out.len() >= limit {
                        break;
                    }
                }
            }
            Ok(out)
        })
        .await
    }

    /// Jobs to publish again: failed ones whose retry time has come, and ones
    /// recorded but never confirmed (the leader died between the two) older than
    /// `unconfirmed_before`.
    pub async fn due(
        &self,
        now: DateTime<Utc>,
        unconfirmed_before: DateTime<Utc>,
    ) -> Result<Vec<JobRecord>, LedgerError> {
        self.run(move |t| {
            let mut stmt = t.prepare_cached(
                "SELECT doc FROM jobs WHERE ((state = 'FAILED' AND next_attempt_at <= ?1)
                                          OR (state = 'NEW' AND created_at <= ?2))
                                         AND topic != ?3
                 ORDER BY id LIMIT 1000",
            )?;
            let rows =
                stmt.query(params![now.timestamp_millis(), unconfirmed_before.timestamp_millis(), LOCAL_TOPIC])?;
            let found = docs(rows)?;
            Ok(found)
        })
        .await
    }

    /// Jobs the leader was running itself when it stopped: they are never published, so
    /// nothing else would ever finish them.
    pub async fn unfinished_local(&self) -> Result<Vec<JobRecord>, LedgerError> {
        self.run(move |t| {
            let mut stmt = t.prepare_cached(
                "SELECT doc FROM jobs WHERE topic = ?1 AND state IN ('NEW', 'QUEUED', 'ACTIVE') ORDER BY id",
            )?;
            let found = docs(stmt.query(params![LOCAL_TOPIC])?)?;
            Ok(found)
        })
        .await
    }

    /// Remembers a topic jobs were published on, so its queue is announced to
    /// workers after a restart too.
    pub async fn add_topic(&self, topic: Topic) -> Result<(), LedgerError> {
        self.run(move |t| {
            t.execute(
                "INSERT OR IGNORE INTO topics(topic, first_seen) VALUES (?1, ?2)",
                params![topic.as_str(), Utc::now().timestamp_millis()],
            )?;
            Ok(())
        })
        .await
    }

    pub async fn topics(&self) -> Result<Vec<Topic>, LedgerError> {
        self.run(|t| {
            let mut stmt = t.prepare_cached("SELECT topic FROM topics ORDER BY topic")?;
            let names: Vec<String> = stmt.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
            Ok(names.into_iter().filter_map(|n| n.parse().ok()).collect())
        })
        .await
    }

    /// How many jobs are in each state.
    pub async fn counts(&self) -> Result<Vec<(JobState, u64)>, LedgerError> {
        self.run(|t| {
            let mut stmt = t.prepare_cached("SELECT state, COUNT(*) FROM jobs GROUP BY state")?;
            let rows: Vec<(String, u64)> =
                stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?;
            Ok(rows.into_iter().filter_map(|(s, n)| s.parse().ok().map(|s| (s, n))).collect())
        })
        .await
    }
}

fn docs(mut rows: rusqlite::Rows<'_>) -> Result<Vec<JobRecord>, LedgerError> {
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(serde_json::from_str(&row.get::<_, String>(0)?)?);
    }
    Ok(out)
}

fn load(t: &Transaction<'_>, id: JobId) -> Result<Option<JobRecord>, LedgerError> {
    let doc: Option<String> = t
        .prepare_cached("SELECT doc FROM jobs WHERE id = ?1")?
        .query_row(params![id.to_string()], |r| r.get(0))
        .optional()?;
    Ok(match doc {
        Some(d) => Some(serde_json::from_str(&d)?),
        None => None,
    })
}

fn put(t: &Transaction<'_>, rec: &JobRecord, insert: bool) -> Result<(), LedgerError> {
    let doc = serde_json::to_string(rec)?;
    let next = rec.next_attempt_at.map(|d| d.timestamp_millis());
    if insert {
        t.prepare_cached(
            "INSERT INTO jobs(id, topic, state, next_attempt_at, created_at, doc) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            rec.id.to_string(),
            rec.topic.as_str(),
            rec.state.as_str(),
            next,
            rec.created_at.timestamp_millis(),
            doc
        ])?;
    } else {
        t.prepare_cached("UPDATE jobs SET state = ?2, next_attempt_at = ?3, doc = ?4 WHERE id = ?1")?
            .execute(params![rec.id.to_string(), rec.state.as_str(), next, doc])?;
    }
    Ok(())
}

/// Most operations that may share one transaction.
const MAX_BATCH: usize = 1024;

fn writer_loop(mut conn: Connection, mut ops: mpsc::UnboundedReceiver<Op>) {
    while let Some(first) = ops.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match ops.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let tx = match conn.transaction() {
            Ok(tx) => tx,
            Err(e) => {
                tracing::error!(error = %e, "ledger cannot begin a transaction");
                // Run nothing; tell every caller.
                for op in batch {
                    drop(op);
                }
                continue;
            }
        };
        let delivers: Vec<Deliver> = batch.into_iter().map(|op| op(&tx)).collect();
        let committed = tx.commit().map_err(|e| e.to_string());
        if let Err(e) = &committed {
            tracing::error!(error = %e, "ledger commit failed");
        }
        for d in delivers {
            d(committed.clone());
        }
    }
}
