//! `measure-worker`: an offloader worker that runs this crate's [`Measure`] consumer.
//!
//! It reads the same settings as `offloader worker` from the environment (`OFFLOADER_AMQP_URL`,
//! `OFFLOADER_NAMESPACE`, `OFFLOADER_CLUSTER`, `OFFLOADER_HEARTBEAT_INTERVAL`, `OFFLOADER_S3_*`,
//! `AWS_*`), takes a name and a
//! data directory as arguments, and drains on SIGTERM or Ctrl-C.
//!
//! ```sh
//! measure-worker --name measure-1 --data-dir /var/lib/measure-1
//! ```

use anyhow::Context as _;
use measure_worker::{Measure, MAX_INPUT_BYTES, TOPIC};
use offloader::broker::{Broker, BrokerConfig};
use offloader::consumer::ConsumerRegistry;
use offloader::datastore::{self, DatastoreConfig};
use offloader::metrics::MetricsRegistry;
use offloader::worker::{self, WorkerConfig};
use std::path::PathBuf;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(false)
        .init();
    let mut args = std::env::args().skip(1);
    let (mut name, mut data_dir) = ("measure-worker".to_owned(), PathBuf::from(".measure-worker"));
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--name" => name = args.next().context("--name needs a value")?,
            "--data-dir" => data_dir = args.next().context("--data-dir needs a value")?.into(),
            other => anyhow::bail!("unknown argument {other:?}; usage: measure-worker [--name NAME] [--data-dir DIR]"),
        }
    }
    let env = |k: &str, default: &str| std::env::var(k).unwrap_or_else(|_| default.to_owned());
    let namespace = env("OFFLOADER_NAMESPACE", "offloader");

    // 3. Register the consumer for its topic.
    let mut registry = ConsumerRegistry::new();
    registry.register(TOPIC.parse()?, Measure);

    // 4. Deploy: the broker and the datastore every worker of the cluster shares.
    let mut broker_config =
        BrokerConfig::new(env("OFFLOADER_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f"), &namespace);
    broker_config.cluster = env("OFFLOADER_CLUSTER", "default");
    let broker = Broker::connect(broker_config, &format!("measure-worker-{name}")).await?;
    let store = datastore::open(&DatastoreConfig::from_env(&namespace)).await?;

    // 5. Enable the topic: this worker takes nothing else.
    let mut config = WorkerConfig::new(name, data_dir);
    config.allow = vec![TOPIC.parse()?];
    if let Ok(every) = std::env::var("OFFLOADER_HEARTBEAT_INTERVAL") {
        let every = humantime::parse_duration(&every).context("OFFLOADER_HEARTBEAT_INTERVAL")?;
        config.heartbeat = offloader::discovery::HeartbeatConfig::from_interval(every);
    }
    config.limits.max_input_bytes = MAX_INPUT_BYTES;
    let handle = worker::start(broker.clone(), store, registry, config, MetricsRegistry::new()).await?;

    let drain = handle.drain_token();
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        }
        drain.cancel();
    });
    handle.wait().await;
    broker.close();
    Ok(())
}
