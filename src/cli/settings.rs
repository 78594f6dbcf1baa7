//! Settings every subcommand shares: where the services are, the namespace,
//! how to log. Each has a flag and an environment variable.

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use offloader::broker::{Broker, BrokerConfig};
use offloader::datastore::{self, BlobStore, DatastoreConfig};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Args)]
pub struct Global {
    /// RabbitMQ URL, `amqp://user:pass@host:port/vhost`.
    #[arg(
        long,
        global = true,
        env = "OFFLOADER_AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f",
        hide_env_values = true
    )]
    pub amqp_url: String,

    /// Prefix of every AMQP name and S3 key, isolating tenants and test runs.
    #[arg(long, global = true, env = "OFFLOADER_NAMESPACE", default_value = "offloader")]
    pub namespace: String,

    /// Cluster name: instances of one cluster share one leader and one reply queue.
    #[arg(long, global = true, env = "OFFLOADER_CLUSTER", default_value = "default")]
    pub cluster: String,

    /// The leader's HTTP API, for `submit`, `job` and `topics`.
    #[arg(long, global = true, env = "OFFLOADER_LEADER_URL", default_value = "http://127.0.0.1:8080")]
    pub leader_url: String,

    /// Bearer token guarding the leader's API changes (the leader requires it when set).
    #[arg(long, global = true, env = "OFFLOADER_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// Log format on stderr: `text` for people, `json` for log collectors.
    /// Verbosity follows RUST_LOG (default `info`).
    #[arg(long, global = true, env = "OFFLOADER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl Global {
    pub fn broker_config(&self) -> BrokerConfig {
        let mut cfg = BrokerConfig::new(&self.amqp_url, &self.namespace);
        cfg.cluster = self.cluster.clone();
        cfg
    }

    /// Connects to RabbitMQ, naming the connection after the process so it is
    /// recognisable in the management UI.
    pub async fn broker(&self, role: &str) -> anyhow::Result<Broker> {
        let cfg = self.broker_config();
        let name = format!("offloader-{role}@{}:{}", offloader::identity::host_name(), std::process::id());
        Broker::connect(cfg, &name).await.context("cannot connect to RabbitMQ")
    }

    /// The datastore named by `OFFLOADER_DATASTORE` / `OFFLOADER_S3_*` (see
    /// `DatastoreConfig::from_env`), under this namespace.
    pub fn datastore_config(&self) -> DatastoreConfig {
        DatastoreConfig::from_env(&self.namespace)
    }

    pub async fn datastore(&self) -> anyhow::Result<Arc<dyn BlobStore>> {
        datastore::open(&self.datastore_config()).await.context("cannot open the datastore")
    }
}

/// Logs to stderr, so stdout stays clean for the JSON that commands print. Colours only on a
/// terminal (and never with `NO_COLOR` set), so log files and collectors get plain text.
pub fn init_tracing(global: &Global) {
    use std::io::IsTerminal as _;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(colour);
    match global.log_format {
        LogFormat::Text => builder.with_target(false).init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// Parses `15s`, `500ms`, `2m`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    if let Ok(secs) = s.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Ok(Duration::from_secs_f64(secs));
        }
    }
    humantime::parse_duration(s).map_err(|e| format!("{s:?} is not a duration like 15s or 500ms: {e}"))
}
