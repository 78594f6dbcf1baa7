//! The leader process: the ledger, the reply poller, the republisher, local workflows, the
//! watch folder, the announcements and the HTTP API, started together and stopped together.

use super::assets::{watch, AssetProjection, AssetRepository, Ingestor, ProfileStore, WatchConfig};
use super::cluster::{claim_cluster, run_while_elected, ClaimError};
use super::http::{router, ApiState};
use super::jobs::{
    republish_loop, take_back_loop, Completions, JobError, JobManager, LeaderMetrics, QueueType, Queues, ReplyPoller,
};
use super::jobs::{retention, scheduler};
use super::ledger::{Ledger, LedgerError, LedgerLocation};
use super::workflows::{Launchers, LaunchersError, LocalConfig, LocalRunner};
use crate::broker::{run_subscription, Broker, BrokerError, Publisher};
use crate::consumer::WorkflowConsumer;
use crate::datastore::BlobStore;
use crate::discovery::{spawn_announcer, spawn_view, AllowList, Announcer, HeartbeatConfig, TopologyView};
use crate::identity::{self, IdentityError};
use crate::metrics::MetricsRegistry;
use crate::models::{ModelRegistry, ModelsError};
use crate::protocol::api::{JobRecord, WorkerRef};
use crate::protocol::message::Announcement;
use crate::protocol::workflow::MAX_PERIOD_S;
use crate::protocol::{Enablement, InstanceId, InstanceInfo, Role, Topic};
use offloader_renditions::Limits;
use std::collections::BTreeMap;
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
    /// Where the ledger lives; `None`: the embedded SQLite file in `data_dir`.
    pub ledger: Option<LedgerLocation>,
    /// Where the HTTP API listens; `None` runs without one (benchmarks, tests).
    pub http: Option<SocketAddr>,
    /// Bearer token required for changes over HTTP.
    pub token: Option<String>,
    pub heartbeat: HeartbeatConfig,
    /// Whose announcements this leader takes in (Sling's `topology.allow`).
    pub topology_allow: AllowList,
    /// Pause between drains of the reply queue; zero drains continuously. `None`: the
    /// shortest `period` of the offload steps the launchers start (AEM's external step period).
    pub poll_interval: Option<Duration>,
    /// Replies taken per ledger transaction at most (the poller's prefetch).
    pub reply_batch: u16,
    /// Per-topic queue settings: retries, backoff, ordering, timeouts.
    pub queues: Queues,
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
    /// How long finished jobs are kept before the elected leader purges them.
    pub keep_jobs: Duration,
    /// How often the elected leader looks for due schedules.
    pub schedule_tick: Duration,
}

impl LeaderConfig {
    pub fn new(name: impl Into<String>, data_dir: impl Into<PathBuf>) -> Self {
        LeaderConfig {
            name: name.into(),
            data_dir: data_dir.into(),
            ledger: None,
            http: None,
            token: None,
            heartbeat: HeartbeatConfig::default(),
            topology_allow: AllowList::everyone(),
            poll_interval: None,
            reply_batch: 500,
            queues: Queues::default(),
            models_dir: None,
            launchers_file: None,
            watch: None,
            local: LocalConfig::default(),
            max_upload_bytes: 512 * 1024 * 1024,
            keep_jobs: retention::DEFAULT_KEEP,
            schedule_tick: Duration::from_millis(200),
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
    #[error(transparent)]
    Claim(#[from] ClaimError),
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
        // QUEUED marks still held in memory: written now, so a restart publishes nothing twice.
        self.jobs.ledger().flush_marks().await;
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

    let location =
        config.ledger.clone().unwrap_or_else(|| LedgerLocation::Sqlite(config.data_dir.join("ledger.sqlite")));
    let ledger = Ledger::open(&location, Arc::new(AssetProjection)).await?;
    tracing::info!(ledger = %ledger.describe(), ledger_id = %ledger.id(), "ledger open");
    let cancel = CancellationToken::new();
    let mut tasks = Vec::new();
    // Before draining any reply: a leader whose ledger is not the cluster's must not take them.
    tasks.push(claim_cluster(&broker, ledger.id(), ledger.describe(), cancel.clone()).await?);

    // Short patience: a request that creates a job while RabbitMQ is away answers within
    // seconds with the job recorded (NEW); the republisher sends it once the broker is back.
    let publisher = Arc::new(Publisher::new(broker.clone()).with_patience(PUBLISH_PATIENCE));
    let leader_metrics = LeaderMetrics::register(&metrics);
    let completions = Arc::new(Completions::new(ledger.clone(), config.queues.clone(), leader_metrics.clone()));
    let jobs = Arc::new(
        JobManager::new(id, ledger.clone(), publisher.clone(), completions.clone(), leader_metrics.clone()).await?,
    );
    tasks.push(tokio::spawn(wake_for_other_leaders(ledger.clone(), completions.clone(), cancel.clone())));

    let local = store.clone().map(|store| {
        let me = WorkerRef { id, name: config.name.clone() };
        let consumer = WorkflowConsumer::with_models((*models).clone(), Limits::default());
        LocalRunner::new(jobs.clone(), store, consumer, me, config.local, cancel.clone())
    });
    if let Some(local) = &local {
        // This leader's own runs a restart interrupted; other leaders' belong to them.
        let resumed = local.resume(|rec| rec.worker.as_ref().is_none_or(|w| w.id == id)).await?;
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
    let repo = AssetRepository::new(ledger.clone());
    let profiles = ProfileStore::new(ledger.clone());
    let ingestor = Arc::new(Ingestor { repo, jobs: jobs.clone(), models, launchers, profiles, local });

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
        ordered: jobs
            .topics()
            .borrow()
            .iter()
            .filter(|t| jobs.queues().for_topic(t).kind == QueueType::Ordered)
            .cloned()
            .collect(),
        max_parallel: max_parallel(&jobs, jobs.topics().borrow().iter()),
        interval_ms: 0,
        sequence: 0,
        draining: false,
        leader: false,
        ledger: Some(ledger.id().to_owned()),
        sent_at: chrono::Utc::now(),
    };
    let poke = Arc::new(tokio::sync::Notify::new());
    let on_new_peer = {
        let poke = poke.clone();
        move || poke.notify_one()
    };
    let (view, listening, view_task) =
        spawn_view(broker.clone(), id, config.heartbeat, config.topology_allow.clone(), on_new_peer, cancel.clone());
    tasks.push(view_task);
    // Listen before announcing: the first announcement puts this leader first in its own view,
    // and the answers it provokes from the peers reach it.
    if tokio::time::timeout(Duration::from_secs(10), listening).await.is_err() {
        tracing::warn!("topology view not listening after 10 s; announcing anyway");
    }
    let (announcer, announcer_task) =
        spawn_announcer(publisher.clone(), initial, config.heartbeat, poke, cancel.clone());
    tasks.push(announcer_task);
    tasks.push(tokio::spawn(announce_topics(jobs.clone(), announcer.clone(), cancel.clone())));
    if ledger.is_shared() {
        tasks.push(tokio::spawn(refresh_topics(jobs.clone(), config.heartbeat.interval, cancel.clone())));
    }

    // The duties that must run once in the cluster, on the elected leader.
    let duties_key = format!("duties:{}:{}", broker.names().namespace(), broker.config().cluster);
    let elected = ledger.leadership(&duties_key, Duration::from_secs(1), cancel.clone());
    tasks.push(tokio::spawn(announce_election(elected.clone(), announcer)));
    let duties = Duties {
        id,
        jobs: jobs.clone(),
        watch: config.watch.clone(),
        store: store.clone(),
        ingestor: ingestor.clone(),
        view: view.clone(),
        keep_jobs: config.keep_jobs,
        schedule_tick: config.schedule_tick,
        settle: config.heartbeat.timeout,
    };
    tasks.push(tokio::spawn(run_while_elected(elected, move |stop| duties.start(stop), cancel.clone())));

    let bound = match http {
        Some((addr, listener)) => {
            let app = router(ApiState {
                jobs: jobs.clone(),
                ingestor,
                view: view.clone(),
                me: id,
                publisher: publisher.clone(),
                store,
                metrics,
                token: config.token.clone(),
                max_upload_bytes: config.max_upload_bytes,
                shutdown: cancel.clone(),
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

/// Wakes the callers waiting here for jobs another leader of a shared ledger finished.
async fn wake_for_other_leaders(ledger: Ledger, completions: Arc<Completions>, cancel: CancellationToken) {
    let mut finals = ledger.final_jobs();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            id = finals.recv() => match id {
                Ok(id) => completions.wake(id).await,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return,
            },
        }
    }
}

/// The topics among `topics` whose queue limits how many of its jobs one worker runs at once,
/// with that limit (`queue.maxparallel`; 1 for an ordered queue).
fn max_parallel<'t>(jobs: &JobManager, topics: impl Iterator<Item = &'t Topic>) -> BTreeMap<Topic, u16> {
    topics.filter_map(|t| jobs.queues().max_parallel(t).map(|n| (t.clone(), n))).collect()
}

/// New topics go out at once, so workers start consuming their queues.
async fn announce_topics(jobs: Arc<JobManager>, announcer: Announcer, cancel: CancellationToken) {
    let mut topics = jobs.topics();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            changed = topics.changed() => {
                if changed.is_err() { return }
                let list: Vec<Topic> = topics.borrow_and_update().iter().cloned().collect();
                let ordered = list.iter().filter(|t| jobs.queues().for_topic(t).kind == QueueType::Ordered).cloned().collect();
                let limits = max_parallel(&jobs, list.iter());
                announcer.update(|a| {
                    a.topics = list;
                    a.ordered = ordered;
                    a.max_parallel = limits;
                });
            }
        }
    }
}

/// Topics other leaders of a shared ledger declared are announced by this one too, so workers
/// keep finding their queues whichever leaders come and go.
async fn refresh_topics(jobs: Arc<JobManager>, every: Duration, cancel: CancellationToken) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        if let Err(e) = jobs.refresh_topics().await {
            tracing::warn!(error = %e, "cannot read the ledger's topics");
        }
    }
}

/// Announces whether this leader holds the cluster's duties.
async fn announce_election(mut elected: tokio::sync::watch::Receiver<bool>, announcer: Announcer) {
    loop {
        let now = *elected.borrow_and_update();
        announcer.update(|a| a.leader = now);
        if elected.changed().await.is_err() {
            return;
        }
    }
}

/// What the elected leader runs.
struct Duties {
    id: InstanceId,
    jobs: Arc<JobManager>,
    watch: Option<WatchConfig>,
    store: Option<Arc<dyn BlobStore>>,
    ingestor: Arc<Ingestor>,
    view: TopologyView,
    keep_jobs: Duration,
    schedule_tick: Duration,
    /// How long this leader must have been in its own view before a worker missing from it
    /// counts as gone.
    settle: Duration,
}

impl Duties {
    fn start(&self, stop: CancellationToken) -> Vec<JoinHandle<()>> {
        let view = self.view.clone();
        let leader_alive = move |id: InstanceId| view.peer(&id).is_some();
        let mut duties = vec![tokio::spawn(republish_loop(
            self.jobs.clone(),
            Duration::from_millis(500),
            leader_alive,
            stop.clone(),
        ))];
        duties.push(tokio::spawn(retention::purge_loop(
            self.jobs.ledger().clone(),
            self.keep_jobs,
            retention::purge_interval(self.keep_jobs),
            stop.clone(),
        )));
        let view = self.view.clone();
        let worker_alive = move |id: InstanceId| view.peer(&id).is_some();
        // This leader hears its own heartbeat through the broker: until it has for a whole
        // heartbeat timeout, its view may miss workers that are there.
        let (view, me, settle) = (self.view.clone(), self.id, self.settle);
        let settled = move || {
            view.snapshot().members.iter().any(|m| {
                m.peer.announcement.instance.id == me
                    && (chrono::Utc::now() - m.joined_at).to_std().is_ok_and(|age| age >= settle)
            })
        };
        duties.push(tokio::spawn(take_back_loop(
            self.jobs.clone(),
            worker_alive,
            settled,
            self.view.changes(),
            stop.clone(),
        )));
        duties.push(tokio::spawn(scheduler::schedule_loop(self.jobs.clone(), self.schedule_tick, stop.clone())));
        if let (Some(w), Some(store)) = (self.watch.clone(), self.store.clone()) {
            duties.push(tokio::spawn(watch::watch_loop(w, store, self.ingestor.clone(), stop.clone())));
        }
        if let Some(local) = self.ingestor.local.clone() {
            // Local runs of leaders that are gone: nothing else would ever finish them.
            let (view, me) = (self.view.clone(), self.id);
            duties.push(tokio::spawn(async move {
                let gone =
                    |rec: &JobRecord| rec.worker.as_ref().is_some_and(|w| w.id != me && view.peer(&w.id).is_none());
                match local.resume(gone).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(resumed = n, "local workflows of departed leaders resumed"),
                    Err(e) => tracing::warn!(error = %e, "cannot resume departed leaders' local workflows"),
                }
            }));
        }
        duties
    }
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
