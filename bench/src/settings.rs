//! Where the services are, and where the `offloader` binary the benchmarks start is.

use anyhow::Context as _;
use offloader::broker::{Broker, BrokerConfig};
use std::path::PathBuf;

#[derive(Debug, Clone, clap::Args)]
pub struct Settings {
    /// RabbitMQ URL, `amqp://user:pass@host:port/vhost`.
    #[arg(
        long,
        global = true,
        env = "OFFLOADER_AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f",
        hide_env_values = true
    )]
    pub amqp_url: String,

    /// Cluster name of the processes the benchmarks start.
    #[arg(long, global = true, env = "OFFLOADER_CLUSTER", default_value = "default")]
    pub cluster: String,

    /// The `offloader` binary to start leaders and workers from (default: the one next to
    /// this program, as `cargo build` puts them).
    #[arg(long, global = true, env = "OFFLOADER_BIN")]
    pub offloader: Option<PathBuf>,
}

impl Settings {
    /// Connects to RabbitMQ in `namespace`, naming the connection after `role`.
    pub async fn broker(&self, namespace: &str, role: &str) -> anyhow::Result<Broker> {
        let mut cfg = BrokerConfig::new(&self.amqp_url, namespace);
        cfg.cluster = self.cluster.clone();
        Broker::connect(cfg, &format!("offloader-bench-{role}")).await.context("cannot connect to RabbitMQ")
    }

    /// The `offloader` binary.
    pub fn offloader(&self) -> anyhow::Result<PathBuf> {
        if let Some(p) = &self.offloader {
            return Ok(p.clone());
        }
        let me = std::env::current_exe().context("cannot find this program's path")?;
        let exe = me.with_file_name("offloader");
        anyhow::ensure!(
            exe.exists(),
            "no offloader binary at {} (build it with `cargo build --release -p offloader`, or pass --offloader)",
            exe.display()
        );
        Ok(exe)
    }

    /// A fresh namespace for one benchmark run, deleted at its end.
    pub fn namespace() -> String {
        format!("bench-{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
    }
}
