//! `offloader-bench find`: Sling's `findJobs` over a big ledger. Fills a ledger (an embedded
//! SQLite file, or a PostgreSQL database of the bench's own) with `--jobs` jobs, then times
//! representative searches through the ledger's own query path, each against the 100 ms target.
//!
//! The jobs look like a DAM's history: spread over 30 days and 50 topics (`bench/tN/sM`),
//! mostly SUCCEEDED, a few in every other state, with properties `size` (0-999), `color`
//! (red, green, blue), `priority` (0-4) and a unique `name`.

use anyhow::Context as _;
use chrono::{Duration as Span, Utc};
use offloader::leader::ledger::{JobQuery, Ledger, LedgerLocation, NoProjection};
use offloader::protocol::api::JobRecord;
use offloader::protocol::{Job, JobId, JobKind, JobState, Properties};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "Each line: the search, its median time over --runs, and the 100 ms target. \
With a postgres:// ledger the bench makes a database of its own there and drops it afterwards.")]
pub struct Args {
    /// Jobs to fill the ledger with.
    #[arg(long, default_value_t = 1_000_000)]
    pub jobs: usize,

    /// `sqlite` (a temporary file), a SQLite file path (kept afterwards), or a PostgreSQL
    /// server (`postgres://user@host:port/db`).
    #[arg(long, default_value = "sqlite")]
    pub ledger: String,

    /// Times each search runs; the median is reported.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
}

/// The target each search is held to.
const TARGET: Duration = Duration::from_millis(100);

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let dir = tempfile::tempdir()?;
    let (location, db) = match LedgerLocation::parse(&args.ledger)? {
        _ if args.ledger == "sqlite" => (LedgerLocation::Sqlite(dir.path().join("ledger.sqlite")), None),
        LedgerLocation::Postgres(url) => {
            let db = crate::ledger_db::TempDatabase::create(&url).await?;
            (LedgerLocation::parse(&db.url)?, Some(db))
        }
        // A file of the caller's: kept afterwards, to look at the plans.
        file => (file, None),
    };
    let result = measure(&args, &location, db.as_ref().map(|d| d.url.clone())).await;
    if let Some(db) = db {
        db.drop().await;
    }
    result
}

async fn measure(args: &Args, location: &LedgerLocation, postgres: Option<String>) -> anyhow::Result<ExitCode> {
    let ledger = Ledger::open(location, Arc::new(NoProjection)).await?;
    println!("bench find: {} jobs in {}", args.jobs, ledger.describe());
    let now = Utc::now();
    let started = Instant::now();
    let chunk = 20_000;
    let mut i = 0;
    while i < args.jobs {
        let n = chunk.min(args.jobs - i);
        let recs: Vec<JobRecord> = (i..i + n).map(|k| record(k, args.jobs, now)).collect();
        ledger.insert_many(recs).await.context("filling the ledger")?;
        i += n;
    }
    let fill = started.elapsed();
    println!("filled in {:.1} s ({:.0} jobs/s)", fill.as_secs_f64(), args.jobs as f64 / fill.as_secs_f64().max(1e-9));
    // A fresh handle, as a leader starting on this ledger: SQLite updates its planner's
    // statistics when it opens the file. PostgreSQL's autovacuum would analyze a table that
    // grew this much within a minute or so; the bench does not wait for it.
    drop(ledger);
    if let Some(url) = postgres {
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
        tokio::spawn(conn);
        let t = Instant::now();
        client.batch_execute("VACUUM ANALYZE jobs").await.context("VACUUM ANALYZE")?;
        println!("VACUUM ANALYZE (autovacuum's work) in {:.1} s", t.elapsed().as_secs_f64());
    }
    let ledger = Ledger::open(location, Arc::new(NoProjection)).await?;

    let day = |d: i64| now - Span::days(d);
    let kind = |k: JobKind| JobQuery { states: k.states(), ..Default::default() };
    let topic = |p: &str| JobQuery { topic: p.parse().ok(), ..Default::default() };
    let templates =
        |t: &[&str]| JobQuery { templates: t.iter().filter_map(|t| t.parse().ok()).collect(), ..Default::default() };
    let searches: Vec<(&str, JobQuery)> = vec![
        ("kind=ALL", JobQuery::default()),
        ("kind=ACTIVE", kind(JobKind::Active)),
        ("kind=QUEUED", kind(JobKind::Queued)),
        ("kind=HISTORY", kind(JobKind::History)),
        ("kind=ERROR", kind(JobKind::Error)),
        ("topic=bench/t3/s2", topic("bench/t3/s2")),
        ("topic=bench/t3/*", topic("bench/t3/*")),
        ("topic=bench/**", topic("bench/**")),
        (
            "created in 1 h, 10 days ago",
            JobQuery {
                created_after: Some(day(10)),
                created_before: Some(day(10) + Span::hours(1)),
                ..Default::default()
            },
        ),
        (
            "kind=ERROR, created in 1 day, 10 days ago",
            JobQuery { created_after: Some(day(10)), created_before: Some(day(9)), ..kind(JobKind::Error) },
        ),
        ("where size>=900,color=red", templates(&["size>=900,color=red"])),
        ("where priority=1 | color=blue", templates(&["priority=1", "color=blue"])),
        (
            "topic=bench/t3/*, kind=HISTORY, where size<10",
            JobQuery {
                topic: "bench/t3/*".parse().ok(),
                ..JobQuery { states: JobKind::History.states(), ..templates(&["size<10"]) }
            },
        ),
        ("where name=\"asset-123\" (rare: one window)", templates(&["name=\"asset-123\""])),
    ];
    let mut over = 0;
    println!("{:<50} {:>10} {:>8}  {:>7}", "search (limit 100, newest first)", "median ms", "jobs", "target");
    for (name, query) in searches {
        let (ms, n) = time(args.runs, || {
            let (ledger, query) = (ledger.clone(), query.clone());
            async move { ledger.find(query).await.map(|p| p.jobs.len()) }
        })
        .await?;
        over += usize::from(ms > TARGET.as_secs_f64() * 1000.0);
        println!("{name:<50} {ms:>10.1} {n:>8}  {}", verdict(ms));
    }
    // What GET /api/jobs adds to every page, and the statistics: each reads an entry per job (on
    // SQLite from an index, not the rows).
    let (ms, _) = time(args.runs, || {
        let ledger = ledger.clone();
        async move { ledger.counts().await.map(|c| c.len()) }
    })
    .await?;
    println!("{:<50} {ms:>10.1} {:>8}  {}", "counts per state (GET /api/jobs)", "-", verdict(ms));
    let (ms, _) = time(args.runs.min(3), || {
        let ledger = ledger.clone();
        async move { ledger.stats(None).await.map(|s| s.topics.len()) }
    })
    .await?;
    println!("{:<50} {ms:>10.1} {:>8}  (no target: an entry per job)", "statistics (GET /api/stats)", "-");
    println!("searches_over_target={over}");
    Ok(ExitCode::SUCCESS)
}

fn verdict(ms: f64) -> &'static str {
    if ms <= TARGET.as_secs_f64() * 1000.0 {
        "<= 100 ms"
    } else {
        "OVER 100 ms"
    }
}

/// The median time of `runs` runs of `f`, in milliseconds, and its last answer.
async fn time<F, Fut>(runs: usize, f: F) -> anyhow::Result<(f64, usize)>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<usize, offloader::leader::ledger::LedgerError>>,
{
    let mut times = Vec::new();
    let mut n = 0;
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        n = f().await?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    Ok((times[times.len() / 2], n))
}

/// The `k`th of `total` jobs: created evenly over the last 30 days, oldest first.
pub fn record(k: usize, total: usize, now: chrono::DateTime<Utc>) -> JobRecord {
    let span_ms = 30 * 24 * 3600 * 1000_i64;
    let created = now - Span::milliseconds(span_ms - span_ms * k as i64 / total.max(1) as i64);
    let ms = created.timestamp_millis() as u64;
    let id = JobId(uuid::Uuid::new_v7(uuid::Timestamp::from_unix(
        uuid::NoContext,
        ms / 1000,
        (ms % 1000) as u32 * 1_000_000,
    )));
    let mut properties = Properties::new();
    properties.insert("size".into(), (k % 1000).into());
    properties.insert("color".into(), ["red", "green", "blue"][k % 3].into());
    properties.insert("priority".into(), (k % 5).into());
    properties.insert("name".into(), format!("asset-{k}").into());
    let job = Job {
        id,
        topic: format!("bench/t{}/s{}", k % 10, (k / 10) % 5).parse().expect("a valid topic"),
        properties,
        inputs: vec![],
        attempt: 1,
        max_attempts: 3,
        timeout_ms: None,
    };
    let mut rec = JobRecord::new(&job, created);
    // Mostly history; the newest jobs hold the few that are not final yet.
    let recent = k + 2000 >= total;
    rec.state = match (recent, k % 100) {
        (true, r) if r < 30 => JobState::Queued,
        (true, r) if r < 50 => JobState::Active,
        (true, r) if r < 55 => JobState::Failed,
        (_, r) if r < 3 => JobState::Error,
        (_, 3) => JobState::Stopped,
        (_, 4) => JobState::GivenUp,
        _ => JobState::Succeeded,
    };
    if rec.state != JobState::Queued {
        rec.queued_at = Some(created);
        rec.started_at = Some(created + Span::milliseconds(20 + (k % 50) as i64));
    }
    if rec.state.is_final() {
        rec.finished_at = rec.started_at.map(|s| s + Span::milliseconds(100 + (k % 400) as i64));
    }
    rec
}
