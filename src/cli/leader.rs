//! `offloader leader`: the instance users talk to.

use super::settings::{parse_duration, DiscoveryArgs, Global};
use super::shutdown;
use anyhow::Context as _;
use offloader::leader::assets::WatchConfig;
use offloader::leader::jobs::{Queues, RetryPolicy};
use offloader::leader::ledger::LedgerLocation;
use offloader::leader::{self, LeaderConfig};
use offloader::metrics::MetricsRegistry;
use offloader::protocol::AssetPath;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A readable name for this instance (shown by `offloader topics`).
    #[arg(long, env = "OFFLOADER_NAME", default_value = "leader")]
    name: String,

    /// Where the job ledger and the instance id live.
    #[arg(long, env = "OFFLOADER_DATA_DIR", default_value = ".offloader/leader")]
    data_dir: PathBuf,

    /// The ledger: a PostgreSQL database (`postgres://user@host:port/db`) that several leaders of
    /// the cluster share, or a SQLite file for this leader alone. Default: `ledger.sqlite` in
    /// the data dir (a second leader of the same cluster with its own ledger is refused).
    #[arg(long, env = "OFFLOADER_LEDGER_URL", value_name = "URL_OR_FILE", hide_env_values = true)]
    ledger: Option<String>,

    /// Address of the HTTP API and `/metrics`. Keep it on 127.0.0.1 unless a
    /// token is set and the network is trusted.
    #[arg(long, env = "OFFLOADER_HTTP", default_value = "127.0.0.1:8080")]
    http: SocketAddr,

    /// How long the reply poller pauses between drains of the reply queue; 0 drains
    /// continuously. Default: the shortest `period` of the offload steps the launchers start
    /// (AEM's external step period; 0 in the built-in models).
    #[arg(long, env = "OFFLOADER_POLL_INTERVAL", value_parser = parse_duration)]
    poll_interval: Option<Duration>,

    #[command(flatten)]
    discovery: DiscoveryArgs,

    /// Attempts per job before it is given up, unless the job or its queue says otherwise
    /// (the main queue's `queue.retries` + 1).
    #[arg(long, env = "OFFLOADER_MAX_ATTEMPTS", default_value_t = RetryPolicy::default().max_attempts)]
    max_attempts: u32,

    /// Delay before a failed job's first retry (the main queue's `queue.retrydelay`).
    #[arg(long, env = "OFFLOADER_RETRY_DELAY", default_value = "2s", value_parser = parse_duration)]
    retry_delay: Duration,

    /// Each further retry waits this many times longer than the one before (1 = a fixed
    /// delay), less a random fifth at most so that jobs failing together spread out.
    #[arg(long, env = "OFFLOADER_RETRY_BACKOFF", default_value_t = RetryPolicy::default().backoff)]
    retry_backoff: f64,

    /// The longest wait between two attempts, however many failed.
    #[arg(long, env = "OFFLOADER_MAX_RETRY_DELAY", default_value = "5m", value_parser = parse_duration)]
    max_retry_delay: Duration,

    /// Per-topic queue settings (TOML `[[queue]]` tables with Sling's names: queue.name,
    /// queue.topics, queue.type = PARALLEL | ORDERED, queue.retries, queue.retrydelay,
    /// queue.backoff, queue.maxretrydelay, queue.timeout, queue.maxparallel; see
    /// docs/queues.md). Topics no queue takes use the flags above.
    #[arg(long, env = "OFFLOADER_QUEUES", value_name = "FILE")]
    queues: Option<PathBuf>,

    /// A directory of workflow model files (`*.json`, schema offloader.workflow-model.v1),
    /// added to the built-ins `dam/update_asset` and `dam/update_asset_offloading`.
    #[arg(long, env = "OFFLOADER_MODELS", value_name = "DIR")]
    models: Option<PathBuf>,

    /// Workflow launchers (TOML `[[launcher]]` tables, or JSON `{"launchers": [...]}`),
    /// replacing the built-in DAM Update Asset launchers.
    #[arg(long, env = "OFFLOADER_LAUNCHERS", value_name = "FILE")]
    launchers: Option<PathBuf>,

    /// A folder whose files are ingested once complete, then moved to its `.done/`
    /// (or `.failed/`, with the reason). Needs --watch-to.
    #[arg(long, env = "OFFLOADER_WATCH", value_name = "DIR", requires = "watch_to")]
    watch: Option<PathBuf>,

    /// The repository folder watched files land in, e.g. /content/dam/inbox.
    #[arg(long, env = "OFFLOADER_WATCH_TO", value_name = "PATH", requires = "watch")]
    watch_to: Option<String>,

    /// How often the watch folder is scanned; a file is taken when it has not changed
    /// between two scans.
    #[arg(long, env = "OFFLOADER_WATCH_INTERVAL", default_value = "1s", value_parser = parse_duration)]
    watch_interval: Duration,

    /// Largest asset upload accepted over HTTP (`PUT /api/assets/...`), in bytes: a bigger one
    /// is refused with 413 as soon as its Content-Length (or its streamed body) says so.
    #[arg(long, env = "OFFLOADER_MAX_UPLOAD_BYTES", default_value_t = 512 * 1024 * 1024)]
    max_upload_bytes: u64,

    /// Workflows the leader runs itself at once (launchers whose model has no offload step,
    /// e.g. `dam/update_asset`); each takes a core while it runs. Default: the cores here.
    #[arg(long, env = "OFFLOADER_LOCAL_CONCURRENCY", value_name = "N")]
    local_concurrency: Option<usize>,

    /// How long finished jobs (SUCCEEDED, STOPPED, GIVEN_UP, ERROR) are kept in the ledger
    /// before the elected leader purges them (Sling keeps two days). Statistics keep counting
    /// them.
    #[arg(long, env = "OFFLOADER_KEEP_JOBS", default_value = "2d", value_parser = parse_duration)]
    keep_jobs: Duration,
}

pub async fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let stop = shutdown::on_signal();
    let broker = global.broker("leader").await?;
    let store = global.datastore().await?;
    tracing::info!(datastore = %store.describe(), broker = %broker.config().redacted_url(), namespace = %global.namespace, "services reached");
    let mut config = LeaderConfig::new(args.name, args.data_dir);
    if let Some(ledger) = &args.ledger {
        config.ledger = Some(LedgerLocation::parse(ledger).context("--ledger")?);
    }
    config.http = Some(args.http);
    config.token = global.token.clone();
    config.poll_interval = args.poll_interval;
    config.max_upload_bytes = args.max_upload_bytes;
    config.keep_jobs = args.keep_jobs;
    config.heartbeat = args.discovery.heartbeat()?;
    config.topology_allow = args.discovery.allow();
    anyhow::ensure!(
        (1.0..=10.0).contains(&args.retry_backoff),
        "--retry-backoff must be 1 to 10, not {}",
        args.retry_backoff
    );
    let main = RetryPolicy {
        max_attempts: args.max_attempts,
        delay: args.retry_delay,
        backoff: args.retry_backoff,
        max_delay: args.max_retry_delay,
    };
    config.queues = match &args.queues {
        Some(path) => Queues::load(path, main)?,
        None => Queues::new(vec![], main),
    };
    config.models_dir = args.models;
    config.launchers_file = args.launchers;
    if let Some(n) = args.local_concurrency {
        anyhow::ensure!(n > 0, "--local-concurrency must be at least 1");
        config.local.concurrency = n;
    }
    if let (Some(dir), Some(to)) = (args.watch, args.watch_to) {
        let to = AssetPath::parse(&to).with_context(|| format!("--watch-to {to:?}"))?;
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create the watch folder {}", dir.display()))?;
        config.watch = Some(WatchConfig { dir, to, interval: args.watch_interval });
    }
    if config.token.is_none() && !args.http.ip().is_loopback() {
        tracing::warn!(addr = %args.http, "the HTTP API is reachable from the network without a token; set OFFLOADER_TOKEN");
    }
    let handle = leader::start(broker.clone(), Some(store), config, MetricsRegistry::new()).await?;
    if let Some(addr) = handle.http {
        tracing::info!(
            "jobs: http://{addr}/api/jobs  topics: http://{addr}/api/topics  metrics: http://{addr}/metrics"
        );
    }
    stop.cancelled().await;
    handle.shutdown().await;
    broker.close();
    tracing::info!("leader stopped");
    Ok(ExitCode::SUCCESS)
}
