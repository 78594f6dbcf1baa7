//! `offloader bench`: end-to-end throughput and latency of no-op jobs through
//! the real leader code and real worker processes, or (`--raw`) of the bare
//! lapin round trip the pipeline is built on, so the two can be compared.
//! `bench renditions` and `bench dam` measure the renditions engine and whole assets.

use super::settings::Global;
use super::{bench_dam, bench_raw, bench_renditions};
use anyhow::{bail, Context as _};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use offloader::announce::HeartbeatConfig;
use offloader::leader::{self, LeaderConfig, NewJob};
use offloader::metrics::MetricsRegistry;
use offloader::protocol::{JobState, Topic};
use offloader::worker::NOOP;
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "The last line is `jobs_per_s=… p50_ms=… p99_ms=…`. \
The bench uses its own namespace (bench-<random>) and deletes its queues and exchanges when done; \
it needs only RabbitMQ and the datastore (see scripts/services).")]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    /// Another benchmark instead of the job pipeline's.
    #[command(subcommand)]
    pub what: Option<Benchmark>,

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
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum Benchmark {
    /// The renditions engine on one thread over a folder of images, against libvips and
    /// ImageMagick in the same run.
    Renditions(bench_renditions::Args),
    /// Whole assets through leader -> workers -> leader, and the leader's CPU per asset
    /// offloaded versus processed on the leader itself.
    Dam(bench_dam::Args),
}

/// Throughput and latency percentiles of one run.
pub struct Figures {
    pub jobs: usize,
    pub elapsed: Duration,
    pub latencies: Vec<Duration>,
}

impl Figures {
    pub fn print(mut self, label: &str) {
        self.latencies.sort();
        let pct = |p: f64| -> f64 {
            if self.latencies.is_empty() {
                return 0.0;
            }
            let i = ((self.latencies.len() as f64 * p).ceil() as usize).clamp(1, self.latencies.len()) - 1;
            self.latencies[i].as_secs_f64() * 1e3
        };
        let per_s = self.jobs as f64 / self.elapsed.as_secs_f64().max(1e-9);
        println!("{label}: {} jobs in {:.2} s", self.jobs, self.elapsed.as_secs_f64());
        println!("jobs_per_s={per_s:.0} p50_ms={:.2} p99_ms={:.2}", pct(0.50), pct(0.99));
    }
}

/// The progress bar of every benchmark: `n` items of `unit`, with the rate and a message.
pub fn progress(n: usize, unit: &str) -> ProgressBar {
    let bar = ProgressBar::new(n as u64);
    let template = format!("{{bar:40}} {{pos}}/{{len}} {unit} [{{elapsed}}, {{per_sec}}] {{msg}}");
    bar.set_style(ProgressStyle::with_template(&template).unwrap_or_else(|_| ProgressStyle::default_bar()));
    bar
}

pub async fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    match args.what {
        Some(Benchmark::Renditions(a)) => return bench_renditions::run(a).await,
        Some(Benchmark::Dam(a)) => return bench_dam::run(global, a).await,
        None => {}
    }
    if args.jobs == 0 || args.workers == 0 || args.inflight == 0 {
        bail!("--jobs, --workers and --inflight must be at least 1");
    }
    let mut global = global.clone();
    global.namespace = format!("bench-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    println!(
        "bench {}: {} jobs, {} workers, {} in flight, namespace {}",
        if args.raw { "raw lapin round trip" } else { "offloader pipeline" },
        args.jobs,
        args.workers,
        args.inflight,
        global.namespace
    );
    let figures = if args.raw { bench_raw::run(&global, &args).await? } else { pipeline(&global, &args).await? };
    figures.print(if args.raw { "raw" } else { "pipeline" });
    Ok(ExitCode::SUCCESS)
}

async fn pipeline(global: &Global, args: &Args) -> anyhow::Result<Figures> {
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let topic: Topic = NOOP.parse()?;
    let exe = std::env::current_exe().context("cannot find the offloader executable")?;
    // Killed when dropped (`kill_on_drop`), also when the bench fails.
    let mut children = Vec::new();
    for i in 1..=args.workers {
        let log = std::fs::File::create(dir.path().join(format!("worker-{i}.log")))?;
        let child = tokio::process::Command::new(&exe)
            .args(["--namespace", &global.namespace, "--amqp-url", &global.amqp_url, "--cluster", &global.cluster])
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

    let broker = global.broker("bench-leader").await?;
    let mut config = LeaderConfig::new("bench-leader", dir.path().join("leader"));
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
    bar.finish_and_clear();
    let latencies = results.into_iter().collect::<anyhow::Result<Vec<_>>>()?;

    drop(children);
    leader.shutdown().await;
    if let Err(e) = broker.delete_namespace(&[topic]).await {
        tracing::warn!(error = %e, "could not delete the bench's AMQP objects");
    }
    broker.close();
    Ok(Figures { jobs: args.jobs, elapsed, latencies })
}
