//! The worker process: joins the pool, consumes the topics enabled on it, obeys
//! live control commands, and drains gracefully.
//!
//! Which queues to consume is recomputed ("reconciled") whenever something that
//! decides it changes: the leader announces a new topic, a control command
//! changes the enablement, or the worker starts. The answer is every known topic
//! that a registered consumer matches and the enablement allows: one consumer per
//! topic queue, so overlapping patterns can never run a job twice.

use super::enablement_store::EnablementStore;
use super::job_runner::JobRunner;
use super::metrics::WorkerMetrics;
use super::running::RunningJobs;
use super::subscriptions::{ControlSubscriber, TopicSubscriber};
use crate::broker::{run_subscription, Broker, BrokerError, Publisher};
use crate::consumer::{ConsumerRegistry, JobLimits};
use crate::datastore::BlobStore;
use crate::discovery::{spawn_announcer, spawn_view, AllowList, Announcer, HeartbeatConfig, TopologyView};
use crate::identity;
use crate::metrics::MetricsRegistry;
use crate::protocol::message::{Announcement, ControlAction, ControlCommand};
use crate::protocol::{Enablement, InstanceId, InstanceInfo, Role, Topic, TopicPattern};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long a job runs before it detaches from its delivery: half of RabbitMQ's default
/// `consumer_timeout` (30 min), leaving room for a broker configured a little lower.
pub const DEFAULT_DETACH_AFTER: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub name: String,
    pub data_dir: PathBuf,
    /// Jobs processed at once, across all topics.
    pub concurrency: usize,
    /// Messages RabbitMQ may push ahead per topic queue.
    pub prefetch: u16,
    /// Sling's `job.consumermanager.allowlist`, used until a live change is saved.
    pub allow: Vec<TopicPattern>,
    /// Sling's `job.consumermanager.denylist`.
    pub deny: Vec<TopicPattern>,
    pub heartbeat: HeartbeatConfig,
    /// Whose announcements this worker takes in (Sling's `topology.allow`).
    pub topology_allow: AllowList,
    pub limits: JobLimits,
    pub endpoints: Vec<String>,
    /// A job still running after this long is reported ACTIVE to the leader;
    /// quicker jobs report only their completion. Zero reports every start.
    pub started_delay: std::time::Duration,
    /// A job still running after this long acks its delivery and runs on detached from it,
    /// before the broker's `consumer_timeout` would take it back (`job_runner`).
    pub detach_after: Duration,
}

impl WorkerConfig {
    pub fn new(name: impl Into<String>, data_dir: impl Into<PathBuf>) -> Self {
        WorkerConfig {
            name: name.into(),
            data_dir: data_dir.into(),
            concurrency: 8,
            prefetch: 32,
            allow: Enablement::default().allow,
            deny: vec![],
            heartbeat: HeartbeatConfig::default(),
            topology_allow: AllowList::everyone(),
            limits: JobLimits::default(),
            endpoints: vec![],
            started_delay: std::time::Duration::from_millis(100),
            detach_after: DEFAULT_DETACH_AFTER,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error(transparent)]
    Identity(#[from] identity::IdentityError),
    #[error(transparent)]
    Broker(#[from] BrokerError),
}

/// A running worker. Dropping it does not stop it; call [`WorkerHandle::drain`].
pub struct WorkerHandle {
    pub id: InstanceId,
    drain: CancellationToken,
    task: JoinHandle<()>,
}

impl WorkerHandle {
    /// Stops taking jobs, lets in-flight jobs finish and be acked, then returns.
    pub async fn drain(self) {
        self.drain.cancel();
        let _ = self.task.await;
    }

    /// A token that, when cancelled, starts the drain (e.g. from a signal handler).
    pub fn drain_token(&self) -> CancellationToken {
        self.drain.clone()
    }

    /// Waits until the worker has stopped (after a drain from any source).
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}

pub async fn start(
    broker: Broker,
    store: Arc<dyn BlobStore>,
    registry: ConsumerRegistry,
    config: WorkerConfig,
    metrics: MetricsRegistry,
) -> Result<WorkerHandle, WorkerError> {
    let id = identity::load_or_create(&config.data_dir)?;
    broker.setup().await?.declare_exchanges().await?;

    let enablement_store = EnablementStore::new(&config.data_dir);
    let enablement = enablement_store.load_or(Enablement::new(config.allow.clone(), config.deny.clone()));
    let publisher = Arc::new(Publisher::new(broker.clone()));
    // Background tasks stop on `background`; jobs stop early only on `hard_stop`.
    let background = CancellationToken::new();
    let drain = CancellationToken::new();

    let info = InstanceInfo {
        id,
        name: config.name.clone(),
        role: Role::Worker,
        cluster: broker.config().cluster.clone(),
        endpoints: config.endpoints.clone(),
        version: env!("CARGO_PKG_VERSION").into(),
        host: identity::host_name(),
        pid: std::process::id(),
    };
    let initial = Announcement {
        schema: String::new(),
        instance: info,
        consumers: registry.patterns(),
        enablement: enablement.clone(),
        topics: vec![],
        ordered: vec![],
        max_parallel: Default::default(),
        interval_ms: 0,
        sequence: 0,
        draining: false,
        leader: false,
        ledger: None,
        sent_at: chrono::Utc::now(),
    };
    // Listen for commands before announcing: once the leader sees this worker,
    // `offloader topics ... --instance` must reach it (not fail as unroutable).
    let (cmd_tx, cmd_rx) = mpsc::channel(64);
    let (ready_tx, ready_rx) = oneshot::channel();
    let running = Arc::new(RunningJobs::default());
    let control = ControlSubscriber { instance: id, commands: cmd_tx, ready: Some(ready_tx), running: running.clone() };
    let control_task = tokio::spawn(run_subscription(broker.clone(), control, background.clone()));
    if tokio::time::timeout(Duration::from_secs(10), ready_rx).await.is_err() {
        tracing::warn!("control queue not ready after 10 s; announcing anyway");
    }

    // Listen to the others before announcing, so the leader's answer (its topic list) is heard.
    let poke = Arc::new(tokio::sync::Notify::new());
    let on_new_peer = {
        let poke = poke.clone();
        move || poke.notify_one()
    };
    let (view, view_ready, view_task) = spawn_view(
        broker.clone(),
        id,
        config.heartbeat,
        config.topology_allow.clone(),
        on_new_peer,
        background.clone(),
    );
    if tokio::time::timeout(Duration::from_secs(10), view_ready).await.is_err() {
        tracing::warn!("topology view not listening after 10 s; announcing anyway");
    }
    let (announcer, announcer_task) =
        spawn_announcer(publisher.clone(), initial, config.heartbeat, poke, background.clone());

    let runner = Arc::new(JobRunner {
        publisher,
        store,
        registry: Arc::new(registry),
        instance: id,
        instance_name: config.name.clone(),
        limits: config.limits,
        metrics: WorkerMetrics::register(&metrics),
        hard_stop: CancellationToken::new(),
        started_delay: config.started_delay,
        detach_after: config.detach_after,
        completed: Default::default(),
        running,
    });

    tracing::info!(instance = %id, name = %config.name, concurrency = config.concurrency, "worker started");
    let worker = Worker {
        broker,
        config,
        enablement,
        enablement_store,
        announcer,
        view,
        runner,
        permits: Arc::new(Semaphore::new(0)),
        tasks: TaskTracker::new(),
        subscriptions: HashMap::new(),
        known_topics: BTreeSet::new(),
        ordered_topics: BTreeSet::new(),
        max_parallel: BTreeMap::new(),
    };
    let drain_token = drain.clone();
    let task = tokio::spawn(async move {
        worker.run(cmd_rx, drain_token).await;
        background.cancel();
        let _ = tokio::join!(announcer_task, view_task, control_task);
    });
    Ok(WorkerHandle { id, drain, task })
}

struct Subscription {
    stop: CancellationToken,
    task: JoinHandle<()>,
    /// Whether the leader had announced the topic when this started. If not, the
    /// queue may not have existed and the subscription may be backing off.
    announced: bool,
    subscribed: Arc<AtomicBool>,
    /// Messages it takes at once: 1 for an ordered topic, at most the topic's announced
    /// `queue.maxparallel`, else the worker's `--prefetch`.
    prefetch: u16,
}

struct Worker {
    broker: Broker,
    config: WorkerConfig,
    enablement: Enablement,
    enablement_store: EnablementStore,
    announcer: Announcer,
    view: TopologyView,
    runner: Arc<JobRunner>,
    permits: Arc<Semaphore>,
    tasks: TaskTracker,
    subscriptions: HashMap<Topic, Subscription>,
    /// Every topic a leader has announced since this worker started.
    known_topics: BTreeSet<Topic>,
    /// Topics leaders announced as ordered; like known topics, never forgotten.
    ordered_topics: BTreeSet<Topic>,
    /// How many jobs of a topic this worker may run at once, as leaders last announced it
    /// (`queue.maxparallel`); kept while no leader announces the topic.
    max_parallel: BTreeMap<Topic, u16>,
}

impl Worker {
    async fn run(mut self, mut commands: mpsc::Receiver<ControlCommand>, drain: CancellationToken) {
        self.permits.add_permits(self.config.concurrency.max(1));
        let mut changes = self.view.changes();
        // The leader answers a newcomer's first announcement with its topic list at
        // once; consuming before it arrives would mean guessing at queues. Without
        // a leader in view, start after a short grace anyway.
        let grace = tokio::time::sleep(self.config.heartbeat.interval.min(std::time::Duration::from_secs(2)));
        tokio::pin!(grace);
        let mut ready = self.view.has_leader();
        if ready {
            self.reconcile();
        }
        loop {
            tokio::select! {
                _ = drain.cancelled() => break,
                _ = &mut grace, if !ready => {
                    ready = true;
                    self.reconcile();
                }
                changed = changes.changed() => {
                    if changed.is_err() { break }
                    ready = ready || self.view.has_leader();
                    if ready {
                        self.reconcile();
                    }
                }
                Some(cmd) = commands.recv() => {
                    if self.obey(cmd) {
                        break;
                    }
                }
            }
        }
        self.shutdown().await;
    }

    /// Applies a control command; true when it asks the worker to drain.
    fn obey(&mut self, cmd: ControlCommand) -> bool {
        tracing::info!(command = ?cmd.action, "control command");
        let Some((change, pattern)) = cmd.action.enablement_change() else {
            return matches!(cmd.action, ControlAction::Drain);
        };
        self.enablement.apply(change, pattern);
        if let Err(e) = self.enablement_store.save(&self.enablement) {
            tracing::error!(error = %e, "could not save enablement; the change holds until restart");
        }
        // Topics first: the leader confirms the change once it sees the new
        // enablement, and by then the announced topics must already match it.
        self.reconcile();
        let enablement = self.enablement.clone();
        self.announcer.update(|a| a.enablement = enablement);
        false
    }

    /// The topics this worker should consume now.
    fn wanted(&mut self) -> BTreeSet<Topic> {
        let registry = &self.runner.registry;
        // A leader announces every topic queue it declared, and queues are durable: a topic
        // once announced stays known, so jobs keep running while leaders come and go.
        self.known_topics.extend(self.view.leader_topics());
        let mut known = self.known_topics.clone();
        // Before any leader was heard, exact registrations are tried directly, in case someone
        // else declared their queues.
        if self.known_topics.is_empty() && !self.view.has_leader() {
            known.extend(registry.patterns().iter().filter(|p| p.is_exact()).filter_map(|p| p.as_str().parse().ok()));
        }
        known.into_iter().filter(|t| registry.resolve(t).is_some() && self.enablement.is_enabled(t)).collect()
    }

    fn reconcile(&mut self) {
        let wanted = self.wanted();
        let announced = self.view.leader_topics();
        self.ordered_topics.extend(self.view.leader_ordered_topics());
        let limits = self.view.leader_max_parallel();
        for topic in &announced {
            match limits.get(topic) {
                Some(&n) => self.max_parallel.insert(topic.clone(), n),
                None => self.max_parallel.remove(topic),
            };
        }
        // A subscription started before its queue existed waits out a backoff of
        // up to seconds; once the leader announces the queue, start it afresh.
        // One that got through is left alone: restarting it would return its jobs.
        let waiting: Vec<Topic> = self
            .subscriptions
            .iter()
            .filter(|(t, s)| !s.announced && announced.contains(*t) && !s.subscribed.load(Ordering::Acquire))
            .map(|(t, _)| t.clone())
            .collect();
        for topic in waiting {
            if let Some(sub) = self.subscriptions.remove(&topic) {
                sub.stop.cancel();
            }
        }
        // A topic learned to be ordered, or to have another `maxparallel`, after its
        // subscription started takes the wrong number of messages at once: start it afresh
        // with the right prefetch.
        let misfit: Vec<Topic> = self
            .subscriptions
            .iter()
            .filter(|(t, s)| s.prefetch != self.prefetch_for(t))
            .map(|(t, _)| t.clone())
            .collect();
        for topic in misfit {
            if let Some(sub) = self.subscriptions.remove(&topic) {
                tracing::info!(%topic, prefetch = self.prefetch_for(&topic), "consuming afresh with another prefetch");
                sub.stop.cancel();
            }
        }
        let gone: Vec<Topic> = self.subscriptions.keys().filter(|t| !wanted.contains(*t)).cloned().collect();
        for topic in gone {
            if let Some(sub) = self.subscriptions.remove(&topic) {
                tracing::info!(%topic, "stopped consuming");
                sub.stop.cancel();
                drop(sub.task);
            }
        }
        for topic in wanted {
            if self.subscriptions.contains_key(&topic) {
                continue;
            }
            let stop = CancellationToken::new();
            let subscribed = Arc::new(AtomicBool::new(false));
            let prefetch = self.prefetch_for(&topic);
            let sub = TopicSubscriber {
                subscribed: subscribed.clone(),
                topic: topic.clone(),
                prefetch,
                runner: self.runner.clone(),
                permits: self.permits.clone(),
                tasks: self.tasks.clone(),
                stop: stop.clone(),
                consumer_tag: format!("{}:{}:{}", self.config.name, self.runner.instance, topic),
            };
            let task = tokio::spawn({
                let broker = self.broker.clone();
                let stop = stop.clone();
                async move {
                    run_subscription(broker, sub, stop).await;
                }
            });
            tracing::info!(%topic, "consuming");
            let announced = announced.contains(&topic);
            self.subscriptions.insert(topic, Subscription { stop, task, announced, subscribed, prefetch });
        }
        let mut topics: Vec<Topic> = self.subscriptions.keys().cloned().collect();
        topics.sort();
        self.announcer.update(|a| a.topics = topics);
    }

    /// Messages of `topic` to take at once. A job's message is acknowledged only once the job
    /// is done, so this is also the most jobs of the topic this worker runs at once. An ordered
    /// queue has a single active consumer: taking one message at a time makes that one job at a
    /// time across the pool. A `queue.maxparallel` lowers it to that many on this worker.
    fn prefetch_for(&self, topic: &Topic) -> u16 {
        if self.ordered_topics.contains(topic) {
            return 1;
        }
        match self.max_parallel.get(topic) {
            Some(&n) => n.clamp(1, self.config.prefetch.max(1)),
            None => self.config.prefetch,
        }
    }

    async fn shutdown(mut self) {
        tracing::info!(in_flight = self.config.concurrency - self.permits.available_permits(), "draining");
        self.announcer.update(|a| a.draining = true);
        let subs: Vec<Subscription> = self.subscriptions.drain().map(|(_, s)| s).collect();
        for s in &subs {
            s.stop.cancel();
        }
        for s in subs {
            let _ = s.task.await;
        }
        self.tasks.close();
        self.tasks.wait().await;
        tracing::info!("drained: every job taken was finished and acknowledged");
        self.announcer.update(|a| a.topics.clear());
    }
}
