//! `offloader-bench pipeline`: end-to-end throughput and latency of no-op jobs through the
//! real leader code and real worker processes, or (`--raw`) of the bare lapin round trip the
//! pipeline is built on, so the two can be compared.

use crate::cpu::{Counted, CpuSample};
use crate::report::{progress, Figures};
use crate::settings::Settings;
use anyhow::{bail, Context as _};
use futures::StreamExt;
use offloader::consumer::NOOP;
use offloader::discovery::HeartbeatConfig;
use offloader::leader::jobs::NewJob;
use offloader::leader::ledger::LedgerLocation;
use offloader::leader::{self, LeaderConfig};
use offloader::metrics::MetricsRegistry;
use offloader::protocol::{JobState, Topic};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "The last line is `jobs_per_s=… p50_ms=… p99_ms=…`. \
The bench uses its own namespace (bench-<random>) and deletes its queues and exchanges when done; \
it needs only RabbitMQ (see scripts/services).")]
pub struct Args {
    /// Jobs to run (after one warm-up job).
    #[arg(long, default_value_t = 5000)]
    pub jobs: usize,

    /// Worker processes to start (with --raw: consumer connections in this process).
    #[arg(long, default_value_t = 2)]
    pub workers: usize,

    /// Jobs in flight at most; 1 measures the latency floor.
    #[arg(long, default_value_t = 500)]
    pub inflight: usize,

    /// Jobs each worker runs at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,

    /// Jobs RabbitMQ hands each worker ahead.
    #[arg(long, default_value_t = 200)]
    pub prefetch: u16,

    /// Measure the bare lapin round trip instead of the pipeline.
    #[arg(long)]
    pub raw: bool,

    /// With --raw: pad each job and reply body to this many bytes (the pipeline's job and
    /// completion are a few hundred bytes, raw's a few dozen), to see what message size costs.
    #[arg(long, default_value_t = 0, requires = "raw")]
    pub body_bytes: usize,

    /// The leader's ledger: `sqlite` (the embedded file) or a PostgreSQL server URL
    /// (`postgres://user@host:port/db`; the bench makes a database of its own there and drops
    /// it afterwards). Given several times, each is measured in turn in this run and compared
    /// with the first.
    #[arg(long = "ledger", value_name = "sqlite|URL", default_value = "sqlite")]
    pub ledgers: Vec<String>,
}

pub async fn run(settings: &Settings, args: Args) -> anyhow::Result<ExitCode> {
    if args.jobs == 0 || args.workers == 0 || args.inflight == 0 {
        bail!("--jobs, --workers and --inflight must be at least 1");
    }
    if args.raw {
        let namespace = Settings::namespace();
        println!(
            "bench raw lapin round trip: {} jobs, {} workers, {} in flight, namespace {namespace}",
            args.jobs, args.workers, args.inflight
        );
        crate::raw::run(settings, &namespace, &args).await?.print("raw");
        return Ok(ExitCode::SUCCESS);
    }
    let mut measured = Vec::new();
    for ledger in &args.ledgers {
        let namespace = Settings::namespace();
        println!(
            "bench offloader pipeline ({ledger} ledger): {} jobs, {} workers, {} in flight, namespace {namespace}",
            args.jobs, args.workers, args.inflight
        );
        let db = match ledger.as_str() {
            "sqlite" => None,
            url => Some(crate::ledger_db::TempDatabase::create(url).await?),
        };
        let location = db.as_ref().map(|d| d.url.clone());
        let figures = pipeline(settings, &namespace, &args, location).await;
        if let Some(db) = db {
            db.drop().await;
        }
        let figures = figures?;
        let (per_s, p50) = (figures.per_second(), figures.percentile_ms(0.5));
        figures.print(&format!("pipeline ({ledger})"));
        measured.push((ledger.clone(), per_s, p50));
    }
    if measured.len() > 1 {
        println!("\n| ledger | jobs/s | p50 ms | vs {} |", measured[0].0);
        println!("|---|---|---|---|");
        for (ledger, per_s, p50) in &measured {
            let name = if ledger == "sqlite" { "sqlite".to_owned() } else { "postgres".to_owned() };
            println!("| {name} | {per_s:.0} | {p50:.2} | {:.0} % |", 100.0 * per_s / measured[0].1.max(1e-9));
        }
        let last: Vec<String> = measured
            .iter()
            .skip(1)
            .map(|(l, per_s, _)| {
                format!(
                    "{}_vs_{}={:.2}",
                    if l == "sqlite" { "sqlite" } else { "postgres" },
                    measured[0].0,
                    per_s / measured[0].1.max(1e-9)
                )
            })
            .collect();
        println!("{}", last.join(" "));
    }
    Ok(ExitCode::SUCCESS)
}

async fn pipeline(
    settings: &Settings,
    namespace: &str,
    args: &Args,
    ledger: Option<String>,
) -> anyhow::Result<Figures> {
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let topic: Topic = NOOP.parse()?;
    let exe = settings.offloader()?;
    // Killed when dropped (`kill_on_drop`), also when the bench fails.
    let mut children = Vec::new();
    for i in 1..=args.workers {
        let log = std::fs::File::create(dir.path().join(format!("worker-{i}.log")))?;
        let child = tokio::process::Command::new(&exe)
            .args(["--namespace", namespace, "--amqp-url", &settings.amqp_url, "--cluster", &settings.cluster])
            .args(["worker", "--name", &format!("bench-worker-{i}"), "--heartbeat-interval", "1s"])
            .arg("--data-dir")
            .arg(dir.path().join(format!("worker-{i}")))
            .args(["--concurrency", &args.concurrency.to_string(), "--prefetch", &args.prefetch.to_string()])
            .args(["--allow", NOOP])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("cannot start a worker process")?;
        children.push(child);
    }

    let broker = settings.broker(namespace, "leader").await?;
    let mut config = LeaderConfig::new("bench-leader", dir.path().join("leader"));
    if let Some(url) = ledger {
        config.ledger = Some(LedgerLocation::parse(&url)?);
    }
    config.heartbeat = HeartbeatConfig::from_interval(Duration::from_secs(1));
    let leader = leader::start(broker.clone(), None, config, MetricsRegistry::new()).await?;
    let jobs = leader.jobs.clone();

    // Warm up: the first job declares the topic's queue; wait until every worker consumes it.
    let warmup = jobs.add_job(NewJob::new(topic.clone())).await?;
    let queue = broker.names().topic_queue(&topic);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        for (i, child) in children.iter_mut().enumerate() {
            if let Some(status) = child.try_wait()? {
                bail!(
                    "worker {} exited ({status}); its log: {}",
                    i + 1,
                    dir.path().join(format!("worker-{}.log", i + 1)).display()
                );
            }
        }
        let consumers = broker.queue_depth(&queue).await?.map(|d| d.consumers).unwrap_or(0);
        if consumers as usize >= args.workers {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "only {consumers} of {} workers consume {queue} after 60 s; logs in {}",
                args.workers,
                dir.path().display()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let first = jobs.wait(warmup.id, Duration::from_secs(60)).await?;
    if first.state != JobState::Succeeded {
        bail!("the warm-up job ended {}: {:?}", first.state, first.result);
    }

    let counted = [
        Counted { name: "leader", pids: vec![std::process::id()] },
        Counted { name: "workers", pids: children.iter().filter_map(|c| c.id()).collect() },
        Counted { name: "rabbitmq", pids: crate::cpu::rabbitmq_pid().into_iter().collect() },
    ];
    let cpu_before = CpuSample::take(&counted);
    let bar = progress(args.jobs, "jobs");
    let started = Instant::now();
    let results: Vec<anyhow::Result<Duration>> = futures::stream::iter(0..args.jobs)
        .map(|_| {
            let (jobs, topic, bar) = (jobs.clone(), topic.clone(), bar.clone());
            async move {
                let t0 = Instant::now();
                let rec = jobs.add_job(NewJob::new(topic)).await?;
                let done = jobs.wait(rec.id, Duration::from_secs(300)).await?;
                bar.inc(1);
                if done.state != JobState::Succeeded {
                    bail!("job {} ended {}", done.id, done.state);
                }
                Ok(t0.elapsed())
            }
        })
        .buffer_unordered(args.inflight)
        .collect()
        .await;
    let elapsed = started.elapsed();
    let cpu = CpuSample::take(&counted).since(&cpu_before, args.jobs);
    bar.finish_and_clear();
    let latencies = results.into_iter().collect::<anyhow::Result<Vec<_>>>()?;

    drop(children);
    leader.shutdown().await;
    if let Err(e) = broker.delete_namespace(&[topic]).await {
        tracing::warn!(error = %e, "could not delete the bench's AMQP objects");
    }
    broker.close();
    Ok(Figures { jobs: args.jobs, elapsed, latencies, cpu: Some(cpu) })
}
