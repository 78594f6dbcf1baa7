//! The ledger: the durable record of jobs, and of the documents other parts of the leader keep
//! in step with them (the asset repository's assets), in one database.
//!
//! Two engines: an embedded SQLite file (the default: nothing to install, one leader) and,
//! for several leaders of one cluster, a shared PostgreSQL database. Each engine implements
//! the few statements of [`Tx`]; every operation below is written once on top of them.
//!
//! Work is committed in batches ("group commit"): whatever operations are queued when a
//! writer wakes go into one transaction, each in a savepoint of its own, so under load many
//! job inserts and completions share one commit and a failing operation rolls back only
//! itself. Results are handed back only after the commit, so nobody acts on an uncommitted
//! state (the reply poller acks replies only once they are on disk).
//!
//! A job change and what depends on it commit together: [`Projection`] is how the asset
//! repository updates an asset in the transaction that changed its job, so a crash can never
//! leave a job SUCCEEDED without its renditions, and the ledger's idempotency (a completion is
//! applied once) is the asset's too.

mod marks;
mod postgres;
mod query;
mod retention;
mod schedules;
mod sqlite;
mod stats;
mod tx;

pub use query::{JobPage, JobQuery, MAX_LIMIT, TEMPLATE_WINDOW};
pub use retention::Purged;
pub use schedules::{Fired, MakeJob, NextDue, MAX_CATCH_UP};
pub use tx::{Aggregate, Finished, Tx};

use super::jobs::lifecycle::Effect;
use super::jobs::Queues;
use crate::protocol::api::JobRecord;
use crate::protocol::message::Reply;
use crate::protocol::{InstanceId, JobId, JobState, Topic};
use chrono::{DateTime, Utc};
use futures::future::LocalBoxFuture;
use marks::{Mark, Marks, MARK_DELAY};
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, oneshot, watch};
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("ledger database {path}: {source}")]
    Open { path: String, source: rusqlite::Error },
    #[error("ledger: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("ledger (PostgreSQL): {0}")]
    Postgres(String),
    #[error("ledger record is unreadable: {0}")]
    Decode(#[from] serde_json::Error),
    #[error("ledger commit failed: {0}")]
    Commit(String),
    #[error(
        "the ledger could not run the operation: its database is unreachable, or the ledger stopped (see the log)"
    )]
    NotRun,
    #[error("the ledger refused the operation: {0}")]
    Refused(String),
    #[error("{0} is not a ledger: use a file path (embedded SQLite) or postgres://user@host:port/database")]
    BadLocation(String),
}

/// Where the ledger lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LedgerLocation {
    /// The embedded engine: one SQLite file, for one leader.
    Sqlite(std::path::PathBuf),
    /// A PostgreSQL database (`postgres://...`), shared by every leader of the cluster.
    Postgres(String),
}

impl LedgerLocation {
    /// `postgres://` or `postgresql://` URLs name PostgreSQL; anything else is a SQLite file.
    pub fn parse(text: &str) -> Result<LedgerLocation, LedgerError> {
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            text.parse::<tokio_postgres::Config>().map_err(|_| LedgerError::BadLocation(postgres::redacted(text)))?;
            Ok(LedgerLocation::Postgres(text.to_owned()))
        } else if text.contains("://") {
            Err(LedgerError::BadLocation(text.to_owned()))
        } else {
            Ok(LedgerLocation::Sqlite(text.into()))
        }
    }

    /// Whether several leaders may share this ledger.
    pub fn is_shared(&self) -> bool {
        matches!(self, LedgerLocation::Postgres(_))
    }
}

/// Something kept in step with jobs, in the transaction that changes them.
#[async_trait::async_trait(?Send)]
pub trait Projection: Send + Sync + 'static {
    /// Brings what depends on `rec` up to date after a change to it was applied.
    async fn job_changed(&self, tx: &mut dyn Tx, rec: &JobRecord) -> Result<(), LedgerError>;
}

/// A projection that keeps nothing (a leader without assets, tests of the ledger alone).
pub struct NoProjection;

#[async_trait::async_trait(?Send)]
impl Projection for NoProjection {
    async fn job_changed(&self, _tx: &mut dyn Tx, _rec: &JobRecord) -> Result<(), LedgerError> {
        Ok(())
    }
}

/// One operation run inside a batch's transaction.
struct Work {
    kind: Kind,
    run: Operation,
}

/// What an operation does to the database, which decides whether it needs a savepoint.
///
/// A write of several statements runs in a savepoint of its own, so that its failure rolls
/// back only itself. The embedded engine runs the other two kinds without one: a read has
/// nothing to roll back, and a single-row `INSERT ... VALUES` is atomic on its own (SQLite
/// undoes a failed one itself, or, after an I/O error, the whole transaction, whose commit then
/// fails for every operation of the batch). A savepoint costs two statements and a copy of
/// every page the operation touches, which was a third of the writer thread's time per job
/// (docs/benchmarks.md §1). PostgreSQL keeps one for every operation, since there any failed
/// statement aborts the whole transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Read,
    OneStatement,
    Write,
}

/// What an operation does inside the transaction, and what it leaves for after the commit.
type Operation = Box<dyn for<'t> FnOnce(&'t mut dyn Tx) -> LocalBoxFuture<'t, Settle> + Send>;

/// What an operation left for after the commit: whether it succeeded (a failed one is rolled
/// back to its savepoint), and how its result reaches the caller once the commit is known.
struct Settle {
    ok: bool,
    deliver: Box<dyn FnOnce(Result<(), String>) + Send>,
}

/// A handle to the ledger; cheap to clone.
#[derive(Clone)]
pub struct Ledger {
    work: async_channel::Sender<Work>,
    projection: Arc<dyn Projection>,
    describe: Arc<str>,
    id: Arc<str>,
    finals: broadcast::Sender<JobId>,
    engine: Engine,
    /// QUEUED marks not written yet (`marks.rs`).
    marks: Arc<Marks>,
}

/// What the engine offers beyond storage.
#[derive(Clone)]
enum Engine {
    Sqlite,
    /// `_listening` stops the engine's notification listener when the last handle is dropped.
    Postgres {
        config: Box<tokio_postgres::Config>,
        _listening: Arc<tokio_util::sync::DropGuard>,
    },
}

impl Ledger {
    /// Opens the ledger at `location` (creating its tables if missing).
    pub async fn open(location: &LedgerLocation, projection: Arc<dyn Projection>) -> Result<Ledger, LedgerError> {
        match location {
            LedgerLocation::Sqlite(path) => Ledger::open_sqlite(path, projection),
            LedgerLocation::Postgres(url) => {
                let started = postgres::start(url).await?;
                let config = url.parse().map_err(|_| LedgerError::BadLocation(postgres::redacted(url)))?;
                Ok(Ledger {
                    work: started.work,
                    projection,
                    describe: postgres::redacted(url).into(),
                    id: started.ledger_id.into(),
                    finals: started.finals,
                    engine: Engine::Postgres {
                        config: Box::new(config),
                        _listening: Arc::new(started.listening.drop_guard()),
                    },
                    marks: Arc::default(),
                })
            }
        }
    }

    /// The embedded SQLite ledger in the file `path` (created if missing).
    pub fn open_sqlite(path: &Path, projection: Arc<dyn Projection>) -> Result<Ledger, LedgerError> {
        let (work, id) = sqlite::start(path)?;
        Ok(Ledger {
            work,
            projection,
            describe: format!("sqlite:{}", path.display()).into(),
            id: id.into(),
            finals: broadcast::channel(16).0,
            engine: Engine::Sqlite,
            marks: Arc::default(),
        })
    }

    /// Where the ledger lives, for logs (never includes secrets).
    pub fn describe(&self) -> &str {
        &self.describe
    }

    /// The ledger's identity, the same for every leader that shares it: leaders of one cluster
    /// must agree on it.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether other leaders may share this ledger.
    pub fn is_shared(&self) -> bool {
        matches!(self.engine, Engine::Postgres { .. })
    }

    /// Jobs that became final, applied by any leader sharing this ledger (PostgreSQL's
    /// `NOTIFY`). The embedded ledger has one leader, which wakes its waiters itself.
    pub fn final_jobs(&self) -> broadcast::Receiver<JobId> {
        self.finals.subscribe()
    }

    /// Leadership of the duties that must run once in the cluster, named by `key`: `true`
    /// while this process holds it. The embedded ledger has one leader, which always holds it;
    /// a shared one elects with a PostgreSQL advisory lock held by a connection of its own, so
    /// a leader that dies (its connection with it) loses it at once, and another takes it
    /// within `retry`. Ends (and lets go) when `cancel` fires.
    pub fn leadership(&self, key: &str, retry: Duration, cancel: CancellationToken) -> watch::Receiver<bool> {
        match &self.engine {
            Engine::Sqlite => watch::channel(true).1,
            Engine::Postgres { config, .. } => {
                let (tx, rx) = watch::channel(false);
                // Advisory locks are per server, not per database: the ledger's id keeps two
                // clusters whose databases share a server apart.
                let (config, key) = ((**config).clone(), lock_key(&format!("{}:{key}", self.id)));
                tokio::spawn(async move {
                    loop {
                        match postgres::try_lead(&config, key).await {
                            Ok(Some((client, driver))) => {
                                tracing::info!("elected: this leader runs the cluster's duties");
                                let _ = tx.send(true);
                                tokio::select! {
                                    _ = cancel.cancelled() => {}
                                    _ = driver => tracing::warn!("lost the election connection; duties stop"),
                                }
                                let _ = tx.send(false);
                                drop(client);
                            }
                            Ok(None) => {}
                            Err(e) => tracing::warn!(error = %e, "election: cannot reach the ledger"),
                        }
                        tokio::select! {
                            _ = cancel.cancelled() => return,
                            _ = tokio::time::sleep(retry) => {}
                        }
                    }
                });
                rx
            }
        }
    }

    /// Runs `f` inside the next batch's transaction; its result arrives after the commit.
    pub async fn run<R, F>(&self, f: F) -> Result<R, LedgerError>
    where
        R: Send + 'static,
        F: for<'t> FnOnce(&'t mut dyn Tx) -> LocalBoxFuture<'t, Result<R, LedgerError>> + Send + 'static,
    {
        self.submit(Kind::Write, f).await
    }

    /// Runs `f`, which only reads, inside the next batch's transaction (see [`Work`]).
    pub async fn read<R, F>(&self, f: F) -> Result<R, LedgerError>
    where
        R: Send + 'static,
        F: for<'t> FnOnce(&'t mut dyn Tx) -> LocalBoxFuture<'t, Result<R, LedgerError>> + Send + 'static,
    {
        self.submit(Kind::Read, f).await
    }

    async fn submit<R, F>(&self, kind: Kind, f: F) -> Result<R, LedgerError>
    where
        R: Send + 'static,
        F: for<'t> FnOnce(&'t mut dyn Tx) -> LocalBoxFuture<'t, Result<R, LedgerError>> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let run: Operation = Box::new(move |t| {
            Box::pin(async move {
                let out = f(t).await;
                let ok = out.is_ok();
                let deliver = Box::new(move |committed: Result<(), String>| {
                    let _ = tx.send(committed.map_err(LedgerError::Commit).and(out));
                });
                Settle { ok, deliver }
            })
        });
        self.work.send(Work { kind, run }).await.map_err(|_| LedgerError::NotRun)?;
        rx.await.map_err(|_| LedgerError::NotRun)?
    }

    /// Whether the ledger works now: an empty transaction goes through the writer and commits
    /// (on PostgreSQL that needs the server). What a readiness probe asks.
    pub async fn probe(&self) -> Result<(), LedgerError> {
        self.run(|_| Box::pin(async { Ok(()) })).await
    }

    pub async fn insert(&self, rec: JobRecord) -> Result<(), LedgerError> {
        self.submit(Kind::OneStatement, move |t| Box::pin(async move { t.insert_job(&rec).await })).await
    }

    /// Records many jobs in one transaction (imports, benchmarks): no projection, no publish.
    pub async fn insert_many(&self, recs: Vec<JobRecord>) -> Result<(), LedgerError> {
        self.run(move |t| Box::pin(async move { t.insert_jobs(&recs).await })).await
    }

    pub async fn get(&self, id: JobId) -> Result<Option<JobRecord>, LedgerError> {
        let mut rec = self.read(move |t| Box::pin(async move { t.job(id).await })).await?;
        if let Some(rec) = &mut rec {
            self.marks.apply(rec);
        }
        Ok(rec)
    }

    /// Records the broker's confirm of `attempt`.
    pub async fn confirm_published(&self, id: JobId, attempt: u32) -> Result<Option<JobRecord>, LedgerError> {
        self.update(id, move |r| r.confirm_published(attempt, Utc::now())).await
    }

    /// Records the broker's confirm of a new job's first publish *behind* (`marks.rs`): the
    /// job's next write carries it, or a flush within [`MARK_DELAY`]. Returns the record as the
    /// ledger now shows it.
    pub fn queued(&self, rec: &JobRecord) -> JobRecord {
        let mark = Mark { attempt: rec.attempt, at: Utc::now() };
        let mut shown = rec.clone();
        shown.confirm_published(mark.attempt, mark.at);
        if self.marks.add(rec.id, mark) {
            self.flush_marks_later();
        }
        shown
    }

    /// Whether the job is known, without reading it, to be unfinished: its QUEUED mark is still
    /// pending. The write that ends a job clears its pending mark before anyone is told the job
    /// ended (and a confirm that comes after the job ended is not held, see `Marks::ended`), so
    /// a caller that registered its interest in the job's end before asking is sure to hear of
    /// it. Only with the embedded ledger: on a shared one another leader may end the job
    /// without knowing of this leader's mark.
    pub fn known_unfinished(&self, id: JobId) -> bool {
        !self.is_shared() && self.marks.is_pending(id)
    }

    fn flush_marks_later(&self) {
        let ledger = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(MARK_DELAY).await;
            ledger.flush_marks().await;
        });
    }

    /// Writes the QUEUED marks still pending (also what a stopping leader does last).
    pub async fn flush_marks(&self) {
        let marks = self.marks.to_flush();
        if marks.is_empty() {
            return;
        }
        let projection = self.projection.clone();
        let written = self
            .run(move |t| {
                Box::pin(async move {
                    for (id, mark) in &marks {
                        let Some(mut rec) = t.job(*id).await? else { continue };
                        // A record its completion already took past QUEUED stays as it is.
                        if rec.confirm_published(mark.attempt, mark.at) == Effect::Applied {
                            t.update_job(&rec).await?;
                            projection.job_changed(t, &rec).await?;
                        }
                    }
                    Ok(marks)
                })
            })
            .await;
        match written {
            Ok(marks) => self.marks.written(&marks),
            Err(e) => {
                tracing::warn!(error = %e, "cannot write QUEUED marks yet; trying again");
                if self.marks.reschedule() {
                    self.flush_marks_later();
                }
            }
        }
    }

    /// `worker` left while running the job's detached attempt (see `JobRecord::worker_gone`).
    pub async fn worker_gone(&self, id: JobId, worker: InstanceId) -> Result<Option<JobRecord>, LedgerError> {
        self.update(id, move |r| r.worker_gone(worker, Utc::now())).await
    }

    pub async fn stop(&self, id: JobId) -> Result<Option<JobRecord>, LedgerError> {
        self.update(id, |r| r.stop(Utc::now())).await
    }

    /// A user's retry of a job that ended without success (see `JobRecord::retry`): the record
    /// and whether the rule allowed it.
    pub async fn retry(&self, id: JobId) -> Result<Option<(Effect, JobRecord)>, LedgerError> {
        let projection = self.projection.clone();
        self.run(move |t| {
            Box::pin(async move {
                let Some(mut rec) = t.job(id).await? else { return Ok(None) };
                let effect = rec.retry(Utc::now());
                if effect == Effect::Applied {
                    t.update_job(&rec).await?;
                    projection.job_changed(t, &rec).await?;
                }
                Ok(Some((effect, rec)))
            })
        })
        .await
    }

    /// Removes a job from the ledger (the record as it was), `None` when there was no such
    /// job. Documents that mention it (an asset's last job) keep the id, which then answers
    /// 404 like any unknown job.
    pub async fn remove(&self, id: JobId) -> Result<Option<JobRecord>, LedgerError> {
        self.run(move |t| {
            Box::pin(async move {
                let Some(rec) = t.job(id).await? else { return Ok(None) };
                t.delete_job(id).await?;
                Ok(Some(rec))
            })
        })
        .await
    }

    /// Applies `f` to the job and stores it (with its projection) if `f` changed it.
    async fn update(
        &self,
        id: JobId,
        f: impl FnOnce(&mut JobRecord) -> Effect + Send + 'static,
    ) -> Result<Option<JobRecord>, LedgerError> {
        let (projection, marks) = (self.projection.clone(), self.marks.clone());
        let (rec, mark, ended_first) = self
            .run(move |t| {
                Box::pin(async move {
                    let Some(mut rec) = t.job(id).await? else { return Ok((None, None, false)) };
                    let was_new = rec.state == JobState::New;
                    let mark = marks.apply(&mut rec);
                    let effect = f(&mut rec);
                    if effect == Effect::Applied || mark.is_some() {
                        t.update_job(&rec).await?;
                        projection.job_changed(t, &rec).await?;
                    }
                    let ended_first = Marks::ended_before_confirm(was_new, mark, effect, &rec);
                    Ok((Some(rec), mark, ended_first))
                })
            })
            .await?;
        if let Some(mark) = mark {
            self.marks.written(&[(id, mark)]);
        }
        if ended_first {
            self.marks.ended(id);
        }
        Ok(rec)
    }

    /// Applies replies in one transaction; returns each job's record afterwards with what the
    /// reply did (`None` for a job the ledger does not know).
    pub async fn apply_replies(
        &self,
        replies: Vec<Reply>,
        queues: Queues,
    ) -> Result<Vec<(Reply, Option<(Effect, JobRecord)>)>, LedgerError> {
        let (projection, marks) = (self.projection.clone(), self.marks.clone());
        let (out, written, ended_first) = self
            .run(move |t| {
                Box::pin(async move {
                    let now = Utc::now();
                    let mut out = Vec::with_capacity(replies.len());
                    let (mut written, mut ended_first) = (Vec::new(), Vec::new());
                    for reply in replies {
                        let Some(mut rec) = t.job(reply.job_id()).await? else {
                            out.push((reply, None));
                            continue;
                        };
                        let was_new = rec.state == JobState::New;
                        // The confirm came first; written with the reply, in one write.
                        let mark = marks.apply(&mut rec);
                        let effect = rec.apply(&reply, now, &queues.for_topic(&rec.topic).retry);
                        if effect == Effect::Applied || rec.duplicates_ignored > 0 || mark.is_some() {
                            t.update_job(&rec).await?;
                        }
                        if effect == Effect::Applied || mark.is_some() {
                            projection.job_changed(t, &rec).await?;
                        }
                        if let Some(mark) = mark {
                            written.push((rec.id, mark));
                        } else if Marks::ended_before_confirm(was_new, mark, effect, &rec) {
                            // The worker was quicker than the broker's confirm to its publisher.
                            ended_first.push(rec.id);
                        }
                        out.push((reply, Some((effect, rec))));
                    }
                    Ok((out, written, ended_first))
                })
            })
            .await?;
        self.marks.written(&written);
        for id in ended_first {
            self.marks.ended(id);
        }
        Ok(out)
    }

    pub async fn list(&self, query: JobQuery) -> Result<Vec<JobRecord>, LedgerError> {
        Ok(self.find(query).await?.jobs)
    }

    /// A page of the jobs `query` selects, newest first, and where the next page starts.
    pub async fn find(&self, query: JobQuery) -> Result<JobPage, LedgerError> {
        let mut page = self.read(move |t| Box::pin(async move { t.find_jobs(&query).await })).await?;
        for rec in &mut page.jobs {
            self.marks.apply(rec);
        }
        Ok(page)
    }

    /// How many jobs `query` selects in all, its limit aside (what a bulk action affects).
    pub async fn count(&self, query: JobQuery) -> Result<u64, LedgerError> {
        self.read(move |t| Box::pin(async move { t.count_jobs(&query).await })).await
    }

    /// How many jobs are in each state.
    pub async fn counts(&self) -> Result<Vec<(JobState, u64)>, LedgerError> {
        let pending = self.marks.all();
        self.read(move |t| {
            Box::pin(async move {
                let mut counts = t.count_states().await?;
                // Jobs whose QUEUED mark is not written yet count as QUEUED (`marks.rs`).
                let mut confirmed = 0;
                for (id, mark) in pending {
                    if t.job(id).await?.is_some_and(|r| r.state == JobState::New && r.attempt == mark.attempt) {
                        confirmed += 1;
                    }
                }
                if confirmed > 0 {
                    for (state, n) in &mut counts {
                        if *state == JobState::New {
                            *n = n.saturating_sub(confirmed);
                        }
                    }
                    match counts.iter_mut().find(|(s, _)| *s == JobState::Queued) {
                        Some((_, n)) => *n += confirmed,
                        None => counts.push((JobState::Queued, confirmed)),
                    }
                    counts.retain(|(_, n)| *n > 0);
                }
                Ok(counts)
            })
        })
        .await
    }

    /// Jobs to publish again: failed or declined ones whose next attempt has come, and ones
    /// recorded but never confirmed (the leader died between the two) older than
    /// `unconfirmed_before`. Never the leader's own local jobs, which are not published.
    pub async fn due(
        &self,
        now: DateTime<Utc>,
        unconfirmed_before: DateTime<Utc>,
    ) -> Result<Vec<JobRecord>, LedgerError> {
        let mut due =
            self.read(move |t| Box::pin(async move { t.due_jobs(now, unconfirmed_before, 1000).await })).await?;
        // Confirmed, only not written yet: not due.
        due.retain(|r| r.state != JobState::New || !self.marks.confirms(r));
        Ok(due)
    }

    /// Remembers a topic jobs were published on, so its queue is announced to workers after a
    /// restart too.
    pub async fn add_topic(&self, topic: Topic) -> Result<(), LedgerError> {
        self.run(move |t| Box::pin(async move { t.add_topic(&topic).await })).await
    }

    pub async fn topics(&self) -> Result<Vec<Topic>, LedgerError> {
        self.read(|t| Box::pin(async move { t.topics().await })).await
    }

    /// A document.
    pub async fn doc(&self, kind: &'static str, key: String) -> Result<Option<Value>, LedgerError> {
        self.read(move |t| Box::pin(async move { t.doc(kind, &key).await })).await
    }

    /// Reads, changes and writes back a document in one transaction: `f` gets the current
    /// document (if any) and returns the new one (`None` leaves it as it is) and a result.
    pub async fn update_doc<R: Send + 'static>(
        &self,
        kind: &'static str,
        key: String,
        f: impl FnOnce(Option<Value>) -> Result<(Option<Value>, R), LedgerError> + Send + 'static,
    ) -> Result<R, LedgerError> {
        self.run(move |t| {
            Box::pin(async move {
                let current = t.doc(kind, &key).await?;
                let (new, out) = f(current)?;
                if let Some(doc) = new {
                    t.put_doc(kind, &key, &doc).await?;
                }
                Ok(out)
            })
        })
        .await
    }

    /// Documents of `kind` under a key prefix, in key order, after `after`.
    pub async fn docs(
        &self,
        kind: &'static str,
        prefix: String,
        after: Option<String>,
        limit: usize,
    ) -> Result<Vec<(String, Value)>, LedgerError> {
        self.read(move |t| Box::pin(async move { t.docs(kind, &prefix, after.as_deref(), limit).await })).await
    }
}

/// An advisory lock key for `name`: the first 8 bytes of its sha256.
fn lock_key(name: &str) -> i64 {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(name.as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}
