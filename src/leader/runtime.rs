//! The leader process: the ledger, the reply poller, the republisher, local workflows, the
//! watch folder, the announcements and the HTTP API, started together and stopped together.

use super::assets::{watch, AssetProjection, AssetRepository, Ingestor, WatchConfig};
use super::http::{router, ApiState};
use super::jobs::{republish_loop, Completions, JobError, JobManager, LeaderMetrics, ReplyPoller, RetryPolicy};
use super::ledger::{Ledger, LedgerError};
use super::workflows::{Launchers, LaunchersError, LocalConfig, LocalRunner};
use crate::announce::{spawn_announcer, spawn_view, HeartbeatConfig, TopologyView};
use crate::broker::{run_subscription, Broker, BrokerError, Publisher};
use crate::consumer::WorkflowConsumer;
use crate::datastore::BlobStore;
use crate::identity::{self, IdentityError};
use crate::metrics::MetricsRegistry;
use crate::models::{ModelRegistry, ModelsError};
use crate::protocol::api::WorkerRef;
use crate::protocol::message::Announcement;
use crate::protocol::workflow::MAX_PERIOD_S;
use crate::protocol::{Enablement, InstanceId, InstanceInfo, Role};
use offloader_renditions::Limits;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long the leader's publishes retry through a broker outage before reporting failure.
/// A worker's completions retry much longer; a job the leader could not publish is already
/// recorded, and the republisher sends it as soon as RabbitMQ is back.
const PUBLISH_PATIENCE: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
pub struct LeaderConfig {
    pub name: String,
    pub data_dir: PathBuf,
    /// Where the HTTP API listens; `None` runs without one (benchmarks, tests).
    pub http: Option<SocketAddr>,
    /// Bearer token required for changes over HTTP.
    pub token: Option<String>,
    pub heartbeat: HeartbeatConfig,
    /// Pause between drains of the reply queue; zero drains continuously. `None`: the
    /// shortest `period` of the offload steps the launchers start (AEM's external step period).
    pub poll_interval: Option<Duration>,
    /// Replies taken per ledger transaction at most (the poller's prefetch).
    pub reply_batch: u16,
    pub retry: RetryPolicy,
    /// A directory of workflow model files (`*.json`), added to the built-ins.
    pub models_dir: Option<PathBuf>,
    /// A launchers file (TOML or JSON) replacing the built-in launchers.
    pub launchers_file: Option<PathBuf>,
    /// A watch folder whose complete files are ingested.
    pub watch: Option<WatchConfig>,
    /// How workflows without an offload step run on the leader itself.
    pub local: LocalConfig,
    /// Largest asset upload accepted over HTTP, in bytes.
    pub max_upload_bytes: u64,
}

impl LeaderConfig {
    pub fn new(name: impl Into<String>, data_dir: impl Into<PathBuf>) -> Self {
        LeaderConfig {
            name: name.into(),
            data_dir: data_dir.into(),
            http: None,
            token: None,
            heartbeat: HeartbeatConfig::default(),
            poll_interval: None,
            reply_batch: 500,
            retry: RetryPolicy::default(),
            models_dir: None,
            launchers_file: None,
            watch: None,
            local: LocalConfig::default(),
            max_upload_bytes: 512 * 1024 * 1024,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error(transparent)]
    Broker(#[from] BrokerError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Jobs(#[from] JobError),
    #[error(transparent)]
    Models(#[from] ModelsError),
    #[error(transparent)]
    Launchers(#[from] LaunchersError),
    #[error("the watch folder needs a datastore")]
    WatchWithoutStore,
    #[error("cannot serve HTTP on {addr}: {source}")]
    Http { addr: SocketAddr, source: std::io::Error },
}

pub struct LeaderHandle {
    pub id: InstanceId,
    pub jobs: Arc<JobManager>,
    pub view: TopologyView,
    /// The bound HTTP address, when serving.
    pub http: Option<SocketAddr>,
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl LeaderHandle {
    /// Stops taking replies and requests, and waits for the parts to finish. Unacked replies
    /// stay in the queue for the next start.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        for t in self.tasks {
            let _ = t.await;
        }
    }

    pub fn cancel_token(&self) -> CancellationToken {
        self.cancel.clone()
    }
}

/// The reply poller's pause when none is configured: the shortest `period` among the offload
/// steps that enabled launchers start (AEM's external step period), so every step is checked
/// at least as often as it asks; zero when there is none.
fn poll_interval(models: &ModelRegistry, launchers: &Launchers) -> Duration {
    launchers
        .list()
        .iter()
        .filter(|l| l.enabled)
        .filter_map(|l| models.get(&l.workflow)?.offload_step())
        .map(|step| Duration::from_secs_f64(step.period.clamp(0.0, MAX_PERIOD_S)))
        .min()
        .unwrap_or(Duration::ZERO)
}

pub async fn start(
    broker: Broker,
    store: Option<Arc<dyn BlobStore>>,
    config: LeaderConfig,
    metrics: MetricsRegistry,
) -> Result<LeaderHandle, LeaderError> {
    let id = identity::load_or_create(&config.data_dir)?;
    // Configuration errors first, before touching anything.
    let models = Arc::new(ModelRegistry::load(config.models_dir.as_deref())?);
    let launchers = Arc::new(Launchers::load(config.launchers_file.as_deref(), &models)?);
    if config.watch.is_some() && store.is_none() {
        return Err(LeaderError::WatchWithoutStore);
    }
    let setup = broker.setup().await?;
    setup.declare_exchanges().await?;
    setup.declare_replies_queue().await?;
    drop(setup);

    let ledger = Ledger::open_sqlite(&config.data_dir.join("ledger.sqlite"), Arc::new(AssetProjection))?;
    tracing::info!(ledger = %ledger.describe(), "ledger open");
    // Short patience: a request that creates a job while RabbitMQ is away answers within
    // seconds with the job recorded (NEW); the republisher sends it once the broker is back.
    let publisher = Arc::new(Publisher::new(broker.clone()).with_patience(PUBLISH_PATIENCE));
    let leader_metrics = LeaderMetrics::register(&metrics);
    let completions = Arc::new(Completions::new(ledger.clone(), config.retry, leader_metrics.clone()));
    let jobs = Arc::new(
        JobManager::new(ledger.clone(), publisher.clone(), completions.clone(), leader_metrics.clone()).await?,
    );
    let cancel = CancellationToken::new();
    let mut tasks = Vec::new();
    let local = store.clone().map(|store| {
        let me = WorkerRef { id, name: config.name.clone() };
        let consumer = WorkflowConsumer::with_models((*models).clone(), Limits::default());
        LocalRunner::new(jobs.clone(), store, consumer, me, config.local, cancel.clone())
    });
    if let Some(local) = &local {
        let resumed = local.resume().await?;
        if resumed > 0 {
            tracing::info!(resumed, "local workflows resumed");
        }
        tasks.push(tokio::spawn({
            let (local, cancel) = (local.clone(), cancel.clone());
            async move {
                cancel.cancelled().await;
                local.finished().await;
            }
        }));
    }
    let repo = AssetRepository::new(ledger);
    let ingestor = Arc::new(Ingestor { repo, jobs: jobs.clone(), models, launchers, local });

    let pause = config.poll_interval.unwrap_or_else(|| poll_interval(&ingestor.models, &ingestor.launchers));
    tracing::info!(poll_interval_ms = pause.as_millis() as u64, "reply poller pause between drains");
    let poller = ReplyPoller {
        completions,
        publisher: publisher.clone(),
        poll_interval: pause,
        batch: config.reply_batch,
        malformed: leader_metrics.replies_malformed.clone(),
    };
    tasks.push(tokio::spawn({
        let (broker, cancel) = (broker.clone(), cancel.clone());
        async move {
            run_subscription(broker, poller, cancel).await;
        }
    }));
    tasks.push(tokio::spawn(republish_loop(jobs.clone(), Duration::from_millis(500), cancel.clone())));

    let http = match config.http {
        Some(addr) => {
            let bind_err = |source| LeaderError::Http { addr, source };
            let listener = tokio::net::TcpListener::bind(addr).await.map_err(bind_err)?;
            Some((listener.local_addr().map_err(bind_err)?, listener))
        }
        None => None,
    };
    let endpoints = http.as_ref().map(|(a, _)| vec![format!("http://{a}")]).unwrap_or_default();

    let info = InstanceInfo {
        id,
        name: config.name.clone(),
        role: Role::Leader,
        cluster: broker.config().cluster.clone(),
        endpoints,
        version: env!("CARGO_PKG_VERSION").into(),
        host: identity::host_name(),
        pid: std::process::id(),
    };
    let initial = Announcement {
        schema: String::new(),
        instance: info,
        consumers: vec![],
        enablement: Enablement::new(vec![], vec![]),
        topics: jobs.topics().borrow().iter().cloned().collect(),
        interval_ms: 0,
        sequence: 0,
        draining: false,
        sent_at: chrono::Utc::now(),
    };
    let poke = Arc::new(tokio::sync::Notify::new());
    let on_new_peer = {
        let poke = poke.clone();
        move || poke.notify_one()
    };
    let (view, _listening, view_task) = spawn_view(broker.clone(), config.heartbeat, on_new_peer, cancel.clone());
    tasks.push(view_task);
    let (announcer, announcer_task) =
        spawn_announcer(publisher.clone(), initial, config.heartbeat, poke, cancel.clone());
    tasks.push(announcer_task);
    // New topics go out at once, so workers start consuming their queues.
    tasks.push(tokio::spawn({
        let (mut topics, cancel) = (jobs.topics(), cancel.clone());
        async move {
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    changed = topics.changed() => {
                        if changed.is_err() { return }
                        let list = topics.borrow_and_update().iter().cloned().collect();
                        announcer.update(|a| a.topics = list);
                    }
                }
            }
        }
    }));

    if let (Some(w), Some(store)) = (config.watch.clone(), store.clone()) {
        tasks.push(tokio::spawn(watch::watch_loop(w, store, ingestor.clone(), cancel.clone())));
    }

    let bound = match http {
        Some((addr, listener)) => {
            let app = router(ApiState {
                jobs: jobs.clone(),
                ingestor,
                view: view.clone(),
                publisher: publisher.clone(),
                store,
                metrics,
                token: config.token.clone(),
                max_upload_bytes: config.max_upload_bytes,
            });
            let cancel = cancel.clone();
            tasks.push(tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(cancel.cancelled_owned()).await {
                    tracing::error!(error = %e, "HTTP server failed");
                }
            }));
            tracing::info!(%addr, "HTTP API listening");
            Some(addr)
        }
        None => None,
    };
    tracing::info!(instance = %id, name = %config.name, "leader started");
    Ok(LeaderHandle { id, jobs, view, http: bound, cancel, tasks })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_poller_pauses_for_the_shortest_period_a_launcher_starts() {
        let builtin = ModelRegistry::default();
        assert_eq!(poll_interval(&builtin, &Launchers::defaults()), Duration::ZERO, "built-ins drain continuously");

        let dir = tempfile::tempdir().unwrap();
        let model = |id: &str, period: f64| json!({"id": id, "version": 1, "title": id, "steps": [{"type": "offload", "model": "dam/update_asset", "period": period}]});
        std::fs::write(dir.path().join("slow.json"), model("acme/slow", 15.0).to_string()).unwrap();
        std::fs::write(dir.path().join("brisk.json"), model("acme/brisk", 0.5).to_string()).unwrap();
        let models = ModelRegistry::load(Some(dir.path())).unwrap();
        let launchers = dir.path().join("launchers.toml");
        let launcher = |id: &str, workflow: &str, enabled: bool| {
            format!("[[launcher]]\nid = \"{id}\"\nevent = \"created\"\npath = \"/**\"\nworkflow = \"{workflow}\"\nenabled = {enabled}\n")
        };
        std::fs::write(&launchers, launcher("a", "acme/slow", true) + &launcher("b", "acme/brisk", false)).unwrap();
        let l = Launchers::load(Some(&launchers), &models).unwrap();
        assert_eq!(poll_interval(&models, &l), Duration::from_secs(15), "disabled launchers do not count");
        std::fs::write(&launchers, launcher("a", "acme/slow", true) + &launcher("b", "acme/brisk", true)).unwrap();
        let l = Launchers::load(Some(&launchers), &models).unwrap();
        assert_eq!(poll_interval(&models, &l), Duration::from_millis(500));
    }
}
