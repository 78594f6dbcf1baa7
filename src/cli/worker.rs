//! `offloader worker`: joins the pool and processes the topics enabled on it.

use super::settings::{parse_bytes, parse_duration, DiscoveryArgs, Global};
use super::shutdown;
use anyhow::{bail, Context as _};
use offloader::consumer::{register_builtin_as, register_builtins, ConsumerRegistry, WorkflowConsumer};
use offloader::metrics::{self, MetricsRegistry};
use offloader::models::ModelRegistry;
use offloader::protocol::workflow::OFFLOADING_TOPIC;
use offloader::protocol::TopicPattern;
use offloader::worker::{self, WorkerConfig};
use offloader_renditions::Limits;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A readable name for this instance (defaults to the host name).
    #[arg(long, env = "OFFLOADER_NAME")]
    name: Option<String>,

    /// Where the instance id and the saved topic enablement live. Give every
    /// worker on one machine its own.
    #[arg(long, env = "OFFLOADER_DATA_DIR", default_value = ".offloader/worker")]
    data_dir: PathBuf,

    /// Take the data dir from this pool instead: the first of its `slot-N` directories no
    /// running worker holds (a lock held while this process lives). For replicas sharing one
    /// volume, such as `docker compose up --scale worker=3`; wins over --data-dir.
    #[arg(long, env = "OFFLOADER_DATA_DIR_POOL", value_name = "DIR")]
    data_dir_pool: Option<PathBuf>,

    /// Jobs processed at once.
    #[arg(long, env = "OFFLOADER_CONCURRENCY", default_value_t = 8)]
    concurrency: usize,

    /// Jobs RabbitMQ may hand this worker ahead, per topic queue.
    #[arg(long, env = "OFFLOADER_PREFETCH", default_value_t = 32)]
    prefetch: u16,

    /// TOML file with Sling's consumer manager settings, e.g.
    /// `[job.consumermanager]` `allowlist = ["*"]` `denylist = ["acme/video/**"]`.
    #[arg(long, env = "OFFLOADER_WORKER_CONFIG")]
    config: Option<PathBuf>,

    /// Topic patterns enabled at first start (`job.consumermanager.allowlist`,
    /// default `*`). Later changes made with `offloader topics` are saved in the
    /// data dir and win over this.
    #[arg(long = "allow", value_name = "PATTERN", value_delimiter = ',')]
    allow: Vec<TopicPattern>,

    /// Topic patterns disabled at first start (`job.consumermanager.denylist`).
    #[arg(long = "deny", value_name = "PATTERN", value_delimiter = ',')]
    deny: Vec<TopicPattern>,

    /// Serve a topic pattern with a built-in consumer: `PATTERN=NAME`, NAME one
    /// of noop, echo, sleep, fail, workflow (runs workflow models, as on
    /// com/adobe/granite/workflow/offloading). Example: `--consume 'acme/indesign=workflow'`.
    #[arg(long = "consume", value_name = "PATTERN=NAME")]
    consume: Vec<String>,

    #[command(flatten)]
    discovery: DiscoveryArgs,

    /// Serve Prometheus metrics on this address (`/metrics`), with the liveness (`/health`)
    /// and readiness (`/ready`: RabbitMQ answers) probes.
    #[arg(long, env = "OFFLOADER_METRICS_ADDR")]
    metrics_addr: Option<SocketAddr>,

    /// A job still running after this long is shown ACTIVE on the leader; quicker
    /// jobs go straight to their result, sparing the broker one message each.
    /// 0 reports every start.
    #[arg(long, env = "OFFLOADER_STARTED_DELAY", default_value = "100ms", value_parser = parse_duration)]
    started_delay: Duration,

    /// A job still running after this long acks its message and runs on detached from it:
    /// the leader takes it back and publishes it again if this worker dies. Must be below
    /// RabbitMQ's `consumer_timeout` (30 min by default), or the broker closes the channel
    /// and hands the job to another worker while it still runs here.
    #[arg(long, env = "OFFLOADER_DETACH_AFTER", default_value = "15min", value_parser = parse_duration)]
    detach_after: Duration,

    /// Largest input a consumer may load into memory, in bytes.
    #[arg(long, env = "OFFLOADER_MAX_INPUT_BYTES", default_value_t = 512 * 1024 * 1024)]
    max_input_bytes: u64,

    /// Memory budget of one workflow job's decode, e.g. `1GiB`, `512MiB` or bytes: what is
    /// actually decoded (a JPEG shrunk on load counts at its shrunk size), not the file's pixel
    /// count. An image that cannot fit is refused with the reason (docs/formats.md).
    #[arg(long, env = "OFFLOADER_MAX_MEMORY", default_value = "1GiB", value_parser = parse_bytes)]
    max_memory: u64,

    /// Longest one call of an external program (pdftoppm, pdfinfo, ffmpeg, ffprobe,
    /// heif-convert) may run for a PDF, a video or a HEIC/AVIF photo before it is killed and the
    /// asset refused (SourceTimeout).
    #[arg(long, env = "OFFLOADER_MAX_TOOL_TIME", default_value = "60s", value_parser = parse_duration)]
    max_tool_time: Duration,

    /// A directory of workflow model files (`*.json`), added to the built-ins: the models
    /// this worker can run for jobs that name a model without carrying it (an offload step
    /// with `include_model = false`). Give it the same folder as the leader's --models.
    #[arg(long, env = "OFFLOADER_MODELS", value_name = "DIR")]
    models: Option<PathBuf>,
}

/// The part of a worker's config file that Sling users know.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    job: JobSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct JobSection {
    #[serde(default)]
    consumermanager: ConsumerManager,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsumerManager {
    allowlist: Option<Vec<TopicPattern>>,
    denylist: Option<Vec<TopicPattern>>,
}

fn read_config(path: &Path) -> anyhow::Result<ConsumerManager> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let file: ConfigFile =
        toml::from_str(&text).with_context(|| format!("invalid worker config {}", path.display()))?;
    Ok(file.job.consumermanager)
}

fn registry(consume: &[String], models: Option<&Path>, limits: Limits) -> anyhow::Result<ConsumerRegistry> {
    let mut registry = ConsumerRegistry::new();
    register_builtins(&mut registry);
    // AEM's offloading topic runs workflow models (DAM Update Asset) with the renditions engine.
    let workflow = WorkflowConsumer::with_models(ModelRegistry::load(models)?, limits);
    registry.register(OFFLOADING_TOPIC.parse()?, workflow.clone());
    for spec in consume {
        let Some((pattern, name)) = spec.split_once('=') else {
            bail!("--consume {spec:?}: expected PATTERN=NAME, e.g. 'acme/**=echo'");
        };
        let pattern: TopicPattern = pattern.parse().with_context(|| format!("--consume {spec:?}"))?;
        if name == "workflow" {
            registry.register(pattern, workflow.clone());
        } else if !register_builtin_as(&mut registry, pattern, name) {
            bail!("--consume {spec:?}: no built-in consumer {name:?} (noop, echo, sleep, fail, workflow)");
        }
    }
    Ok(registry)
}

pub async fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let from_file = match &args.config {
        Some(path) => read_config(path)?,
        None => ConsumerManager::default(),
    };
    let limits = Limits {
        max_alloc: args.max_memory,
        tool_timeout_secs: args.max_tool_time.as_secs().max(1),
        ..Limits::default()
    };
    let registry = registry(&args.consume, args.models.as_deref(), limits)?;
    let stop = shutdown::on_signal();
    let broker = global.broker("worker").await?;
    let store = global.datastore().await?;
    tracing::info!(datastore = %store.describe(), broker = %broker.config().redacted_url(), namespace = %global.namespace, "services reached");

    let name = args.name.unwrap_or_else(offloader::identity::host_name);
    // Held until the worker stopped: the slot stays this process's.
    let claim = match &args.data_dir_pool {
        Some(pool) => Some(offloader::identity::claim_slot(pool)?),
        None => None,
    };
    let data_dir = claim.as_ref().map_or(args.data_dir, |c| c.dir.clone());
    tracing::info!(data_dir = %data_dir.display(), "data directory");
    let mut config = WorkerConfig::new(name, data_dir);
    config.concurrency = args.concurrency.max(1);
    config.prefetch = args.prefetch.max(1);
    if !args.allow.is_empty() {
        config.allow = args.allow;
    } else if let Some(allow) = from_file.allowlist {
        config.allow = allow;
    }
    config.deny = if args.deny.is_empty() { from_file.denylist.unwrap_or_default() } else { args.deny };
    config.heartbeat = args.discovery.heartbeat()?;
    config.topology_allow = args.discovery.allow();
    config.limits.max_input_bytes = args.max_input_bytes;
    config.started_delay = args.started_delay;
    config.detach_after = args.detach_after;

    let registry_metrics = MetricsRegistry::new();
    if let Some(addr) = args.metrics_addr {
        // Ready while RabbitMQ answers: a worker cut off from it takes no jobs.
        let probe = broker.clone();
        let ready: metrics::Readiness = std::sync::Arc::new(move || {
            let broker = probe.clone();
            Box::pin(async move { broker.probe().await.map_err(|e| e.to_string()) })
        });
        let bound = metrics::serve(registry_metrics.clone(), addr, stop.clone(), ready)
            .await
            .with_context(|| format!("cannot serve metrics on {addr}"))?;
        config.endpoints.push(format!("http://{bound}/metrics"));
        tracing::info!("metrics: http://{bound}/metrics");
    }

    let handle = worker::start(broker.clone(), store, registry, config, registry_metrics).await?;
    let drain = handle.drain_token();
    tokio::spawn(async move {
        stop.cancelled().await;
        drain.cancel();
    });
    // Returns after a drain, whether from a signal or a control command.
    handle.wait().await;
    broker.close();
    drop(claim);
    tracing::info!("worker stopped");
    Ok(ExitCode::SUCCESS)
}
