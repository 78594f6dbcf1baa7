//! Settings every subcommand shares: where the services are, the namespace,
//! how to log. Each has a flag and an environment variable.

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use offloader::broker::{Broker, BrokerConfig};
use offloader::datastore::{self, BlobStore, DatastoreConfig};
use offloader::discovery::{AllowList, HeartbeatConfig};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Args)]
pub struct Global {
    /// RabbitMQ URL, `amqp://user:pass@host:port/vhost`; for a RabbitMQ cluster, several
    /// nodes separated by commas (`amqp://u:p@h1:5672/vh,h2:5672,h3:5672`: later entries may
    /// leave out the scheme, credentials and vhost, taken from the first). Connections go to
    /// the nodes in turn and fail over to the next when one is down (docs/deploy.md).
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

/// Sling Discovery's settings, the same for leaders and workers.
#[derive(Debug, Clone, Args)]
pub struct DiscoveryArgs {
    /// How often this instance announces itself (Sling Discovery's heartbeat interval).
    #[arg(long, env = "OFFLOADER_HEARTBEAT_INTERVAL", default_value = "15s", value_parser = parse_duration)]
    pub heartbeat_interval: Duration,

    /// Silence after which another instance leaves this one's topology (default: 4/3 of the
    /// interval, Sling's 20 s for 15 s).
    #[arg(long, env = "OFFLOADER_HEARTBEAT_TIMEOUT", value_parser = parse_duration)]
    pub heartbeat_timeout: Option<Duration>,

    /// How long the topology stays CHANGING after a change before TOPOLOGY_CHANGED (Sling: 3 s).
    #[arg(long, env = "OFFLOADER_MIN_EVENT_DELAY", default_value = "3s", value_parser = parse_duration)]
    pub min_event_delay: Duration,

    /// The topology connector allow list (Sling's `topology.allow`): instance names, ids or
    /// hosts whose announcements are taken in; others are ignored, logged and listed as
    /// refused. Default: everyone.
    #[arg(
        long = "topology-allow",
        env = "OFFLOADER_TOPOLOGY_ALLOW",
        value_name = "NAME|ID|HOST",
        value_delimiter = ','
    )]
    pub topology_allow: Vec<String>,
}

impl DiscoveryArgs {
    pub fn heartbeat(&self) -> anyhow::Result<HeartbeatConfig> {
        let mut h = HeartbeatConfig::from_interval(self.heartbeat_interval);
        if let Some(t) = self.heartbeat_timeout {
            anyhow::ensure!(
                t > self.heartbeat_interval,
                "--heartbeat-timeout must be longer than --heartbeat-interval"
            );
            h.timeout = t;
        }
        h.min_event_delay = self.min_event_delay;
        Ok(h)
    }

    pub fn allow(&self) -> AllowList {
        AllowList::of(self.topology_allow.iter().cloned())
    }
}

/// Logs to stderr, so stdout stays clean for the JSON that commands print. Colours only on a
/// terminal (and never with `NO_COLOR` set), so log files and collectors get plain text.
pub fn init_tracing(global: &Global) {
    use std::io::IsTerminal as _;
    use tracing_subscriber::EnvFilter;
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // lapin logs every channel the server closes at ERROR, the expected 404 of a queue a leader
    // has not declared yet included (a worker started before its leader tries its topics). Each
    // such close also reaches our code as an error, which logs it with what was being done, so
    // lapin's own line is noise; `RUST_LOG` naming lapin brings it back.
    let names_lapin = std::env::var("RUST_LOG").is_ok_and(|v| v.contains("lapin"));
    if !names_lapin {
        if let Ok(quiet) = "lapin::channel=off".parse() {
            filter = filter.add_directive(quiet);
        }
    }
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(colour);
    match global.log_format {
        LogFormat::Text => builder.with_target(false).init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// A size in bytes: a number, optionally followed by `K`/`M`/`G` (powers of 1000) or
/// `KiB`/`MiB`/`GiB` (powers of 1024), e.g. `1GiB`, `512MiB`, `800M`.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("{s:?} is not a size (e.g. 1GiB, 512MiB, 800M)"))?;
    let mul: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "m" | "mb" => 1_000_000,
        "g" | "gb" => 1_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        other => return Err(format!("{s:?}: unknown unit {other:?} (use K, M, G, KiB, MiB or GiB)")),
    };
    n.checked_mul(mul).filter(|&v| v > 0).ok_or_else(|| format!("{s:?} is not a usable size"))
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

#[cfg(test)]
mod tests {
    use super::parse_bytes;

    #[test]
    fn sizes_take_decimal_and_binary_units() {
        assert_eq!(parse_bytes("1GiB"), Ok(1 << 30));
        assert_eq!(parse_bytes("512MiB"), Ok(512 << 20));
        assert_eq!(parse_bytes("800M"), Ok(800_000_000));
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert!(parse_bytes("0").is_err());
        assert!(parse_bytes("1TB").unwrap_err().contains("unknown unit"));
        assert!(parse_bytes("lots").is_err());
    }
}
