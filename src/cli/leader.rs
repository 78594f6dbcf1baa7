//! `offloader leader`: the instance users talk to.

use super::settings::{Global, parse_duration};
use super::shutdown;
use offloader::announce::HeartbeatConfig;
use offloader::leader::{self, LeaderConfig, RetryPolicy};
use offloader::metrics::MetricsRegistry;
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

    /// Address of the HTTP API and `/metrics`. Keep it on 127.0.0.1 unless a
    /// token is set and the network is trusted.
    #[arg(long, env = "OFFLOADER_HTTP", default_value = "127.0.0.1:8080")]
    http: SocketAddr,

    /// How long the reply poller pauses between drains of the reply queue
    /// (AEM's offloading step polls every 5 s). 0 drains continuously.
    #[arg(long, env = "OFFLOADER_POLL_INTERVAL", default_value = "0", value_parser = parse_duration)]
    poll_interval: Duration,

    /// How often this instance announces itself (Sling Discovery: 15 s).
    #[arg(long, env = "OFFLOADER_HEARTBEAT_INTERVAL", default_value = "15s", value_parser = parse_duration)]
    heartbeat_interval: Duration,

    /// Attempts per job before it is given up, unless the job says otherwise.
    #[arg(long, env = "OFFLOADER_MAX_ATTEMPTS", default_value_t = RetryPolicy::default().max_attempts)]
    max_attempts: u32,

    /// Delay before a failed job is retried.
    #[arg(long, env = "OFFLOADER_RETRY_DELAY", default_value = "2s", value_parser = parse_duration)]
    retry_delay: Duration,
}

pub async fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let stop = shutdown::on_signal();
    let broker = global.broker("leader").await?;
    let store = global.datastore().await?;
    tracing::info!(datastore = %store.describe(), broker = %broker.config().redacted_url(), namespace = %global.namespace, "services reached");
    let mut config = LeaderConfig::new(args.name, args.data_dir);
    config.http = Some(args.http);
    config.token = global.token.clone();
    config.poll_interval = args.poll_interval;
    config.heartbeat = HeartbeatConfig::from_interval(args.heartbeat_interval);
    config.retry = RetryPolicy { max_attempts: args.max_attempts, delay: args.retry_delay };
    if config.token.is_none() && !args.http.ip().is_loopback() {
        tracing::warn!(addr = %args.http, "the HTTP API is reachable from the network without a token; set OFFLOADER_TOKEN");
    }
    let handle = leader::start(broker.clone(), Some(store), config, MetricsRegistry::new()).await?;
    if let Some(addr) = handle.http {
        tracing::info!("jobs: http://{addr}/api/jobs  topics: http://{addr}/api/topics  metrics: http://{addr}/metrics");
    }
    stop.cancelled().await;
    handle.shutdown().await;
    broker.close();
    tracing::info!("leader stopped");
    Ok(ExitCode::SUCCESS)
}
