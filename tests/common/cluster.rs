//! A small offloader cluster of real processes for integration tests: the
//! `offloader` binary run as a leader and workers against the real RabbitMQ and
//! S3 of `scripts/services`, in a namespace of its own so tests never collide.

use offloader::broker::{Broker, BrokerConfig};
use offloader::datastore::{self, BlobStore, DatastoreConfig};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tempfile::TempDir;

pub const BIN: &str = env!("CARGO_BIN_EXE_offloader");
/// Heartbeats this fast make topology changes visible within a second.
pub const HEARTBEAT: &str = "300ms";

pub fn amqp_url() -> String {
    std::env::var("OFFLOADER_AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// One `offloader` process; killed when dropped.
pub struct Proc {
    pub name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Its stderr so far, for assertion messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// SIGKILL: the process gets no chance to clean up.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then waits up to `patience` for a graceful exit.
    pub fn terminate(&mut self, patience: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("process already stopped");
        // SAFETY: sending a signal to a child we spawned and have not reaped yet.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + patience;
        loop {
            if let Some(status) = child.try_wait().expect("waiting for a child") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{} did not exit within {patience:?} of SIGTERM; log:\n{}", self.name, self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

pub struct Cluster {
    pub namespace: String,
    /// The RabbitMQ every process of this cluster uses.
    pub amqp: String,
    pub dir: TempDir,
    pub http: reqwest::Client,
    port: u16,
    pub leader: Option<Proc>,
    topics: Mutex<BTreeSet<String>>,
}

/// A TCP port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

impl Cluster {
    /// A fresh namespace; fails clearly when RabbitMQ or S3 is not running.
    pub async fn new() -> Cluster {
        Cluster::on(amqp_url()).await
    }

    /// [`Cluster::new`] on the RabbitMQ at `amqp` (e.g. a private node a test restarts).
    pub async fn on(amqp: String) -> Cluster {
        let namespace = format!("t-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let mut cfg = BrokerConfig::new(amqp.clone(), namespace.clone());
        cfg.connect_timeout = Duration::from_secs(5);
        let broker = Broker::connect(cfg, "offloader-test").await.unwrap_or_else(|e| {
            panic!("RabbitMQ must be running for this test; start it with `eval \"$(scripts/services)\"`.\nerror: {e}")
        });
        broker.close();
        let cluster = Cluster {
            namespace,
            amqp,
            dir: TempDir::new().expect("temp dir"),
            http: reqwest::Client::new(),
            port: free_port(),
            leader: None,
            topics: Mutex::new(BTreeSet::new()),
        };
        cluster.store().await;
        cluster
    }

    /// The port this cluster's leader answers on.
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// A command for the binary in this cluster's namespace.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(["--namespace", &self.namespace, "--amqp-url", &self.amqp])
            .args(["--leader-url", &self.url("")])
            .args(args)
            .env("RUST_LOG", "info,offloader=debug")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        cmd
    }

    fn spawn(&self, name: &str, args: &[&str]) -> Proc {
        self.spawn_program(name, self.command(args))
    }

    /// Runs another program (an example worker, say) as a process of this cluster, its output
    /// in the cluster's directory; killed when dropped.
    pub fn spawn_program(&self, name: &str, mut cmd: Command) -> Proc {
        let log = self.dir.path().join(format!("{name}.log"));
        let file = std::fs::OpenOptions::new().create(true).append(true).open(&log).expect("log file");
        let child = cmd
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        Proc { name: name.into(), child: Some(child), log }
    }

    pub fn data_dir(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Starts (or restarts) the leader and waits until its API answers.
    pub async fn start_leader(&mut self, extra: &[&str]) {
        let leader = match self.launch_leader("leader", self.port, extra).await {
            Ok(p) => p,
            Err(p) => panic!("the leader exited at start; log:\n{}", p.log()),
        };
        self.leader = Some(leader);
    }

    /// Starts another leader of this cluster named `name` (its data dir kept across restarts)
    /// on a port of its own; returns it and its base URL once its API answers.
    pub async fn spawn_leader(&self, name: &str, extra: &[&str]) -> (Proc, String) {
        let port = free_port();
        match self.launch_leader(name, port, extra).await {
            Ok(p) => (p, format!("http://127.0.0.1:{port}")),
            Err(p) => panic!("leader {name} exited at start; log:\n{}", p.log()),
        }
    }

    /// Starts a leader and waits until its API answers (`Ok`) or it exits (`Err`, e.g. refused).
    pub async fn launch_leader(&self, name: &str, port: u16, extra: &[&str]) -> Result<Proc, Proc> {
        let data = self.data_dir(name);
        let addr = format!("127.0.0.1:{port}");
        let mut args = vec!["leader", "--name", name, "--http", &addr, "--heartbeat-interval", HEARTBEAT];
        args.extend(["--retry-delay", "200ms", "--data-dir", data.to_str().expect("utf-8 path")]);
        args.extend(extra);
        let mut leader = self.spawn(name, &args);
        let deadline = Instant::now() + Duration::from_secs(30);
        let health = format!("http://{addr}/api/health");
        loop {
            if let Ok(r) = self.http.get(&health).send().await {
                // Another test's leader may hold the port a moment after free_port handed it out
                // (and all test leaders may share a name): only the answer of the instance whose
                // id sits in our data dir counts.
                if r.status().is_success() && self.answers_as(&addr, &data).await {
                    return Ok(leader);
                }
            }
            if !leader.is_running() {
                return Err(leader);
            }
            assert!(
                Instant::now() < deadline,
                "leader {name}'s API did not answer within 30 s; log:\n{}",
                leader.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Whether the leader answering on `addr` is the instance started on `data` (its id is the
    /// `instance-id` file there).
    async fn answers_as(&self, addr: &str, data: &std::path::Path) -> bool {
        let Ok(id) = std::fs::read_to_string(data.join("instance-id")) else { return false };
        let Ok(r) = self.http.get(format!("http://{addr}/api/topology")).send().await else { return false };
        let Ok(t) = r.json::<Value>().await else { return false };
        t["clusters"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|c| c["instances"].as_array().into_iter().flatten())
            .any(|i| i["current"] == true && i["id"] == id.trim())
    }

    /// Starts a worker named `name` (its data dir is kept across restarts) and,
    /// when a leader runs, waits until the leader sees it.
    pub async fn start_worker(&self, name: &str, extra: &[&str]) -> Proc {
        let data = self.data_dir(name);
        let mut args = vec!["worker", "--name", name, "--heartbeat-interval", HEARTBEAT];
        args.extend(["--data-dir", data.to_str().expect("utf-8 path")]);
        args.extend(extra);
        let mut worker = self.spawn(name, &args);
        if self.leader.is_some() {
            let deadline = Instant::now() + Duration::from_secs(30);
            while self.instance(name).await.is_none() {
                assert!(worker.is_running(), "worker {name} exited at start; log:\n{}", worker.log());
                assert!(
                    Instant::now() < deadline,
                    "the leader did not see worker {name} within 30 s; worker log:\n{}\nleader log:\n{}",
                    worker.log(),
                    self.leader.as_ref().map(|l| l.log()).unwrap_or_default()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        worker
    }

    pub async fn broker(&self) -> Broker {
        Broker::connect(BrokerConfig::new(self.amqp.clone(), self.namespace.clone()), "offloader-test")
            .await
            .expect("connecting to RabbitMQ")
    }

    pub async fn store(&self) -> Arc<dyn BlobStore> {
        let cfg = DatastoreConfig::from_env(self.namespace.clone());
        datastore::open(&cfg).await.unwrap_or_else(|e| {
            panic!("the S3 datastore must be running for this test; start it with `eval \"$(scripts/services)\"`.\nerror: {e}")
        })
    }

    async fn read(&self, resp: reqwest::Response) -> Value {
        let status = resp.status();
        let body: Value = resp.json().await.expect("the leader answers JSON");
        assert!(status.is_success(), "the leader answered {status}: {body}");
        body
    }

    /// Creates a job over HTTP; returns the leader's record.
    pub async fn submit(&self, topic: &str, properties: Value) -> Value {
        self.submit_with(json!({ "topic": topic, "properties": properties })).await
    }

    pub async fn submit_with(&self, request: Value) -> Value {
        if let Some(t) = request["topic"].as_str() {
            self.topics.lock().unwrap().insert(t.to_owned());
        }
        let resp = self.http.post(self.url("/api/jobs")).json(&request).send().await.expect("POST /api/jobs");
        self.read(resp).await
    }

    pub async fn job(&self, id: &str) -> Value {
        let resp = self.http.get(self.url(&format!("/api/jobs/{id}"))).send().await.expect("GET /api/jobs/{id}");
        self.read(resp).await
    }

    /// The job once final; panics if it is not final within `timeout`.
    pub async fn wait_job(&self, id: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let url = self.url(&format!("/api/jobs/{id}?wait={}", left.as_secs_f64().min(5.0)));
            let job = self.read(self.http.get(url).send().await.expect("GET /api/jobs/{id}?wait")).await;
            if is_final(&job) {
                return job;
            }
            assert!(!left.is_zero(), "job {id} not finished within {timeout:?}: {job}");
        }
    }

    /// Polls until `pred` holds for the job.
    pub async fn wait_job_until(&self, id: &str, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let job = self.job(id).await;
            if pred(&job) {
                return job;
            }
            assert!(Instant::now() < deadline, "job {id} did not reach the expected state within {timeout:?}: {job}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Uploads an asset with `PUT /api/assets{path}`; returns the ingest outcome, checked
    /// against its schema.
    pub async fn put_asset(&self, path: &str, body: Vec<u8>) -> Value {
        let resp =
            self.http.put(self.url(&format!("/api/assets{path}"))).body(body).send().await.expect("PUT /api/assets");
        let status = resp.status();
        let body: Value = resp.json().await.expect("a JSON answer");
        assert!(status.is_success(), "PUT {path}: {status} {body}");
        super::schema::assert_valid("offloader.ingest-outcome.v1", &body);
        body
    }

    /// The asset once its job is final; panics if it is not within `timeout`.
    pub async fn asset_when_processed(&self, path: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let url = self.url(&format!("/api/assets{path}"));
            let asset: Value = self.http.get(url).send().await.unwrap().json().await.unwrap();
            if matches!(asset["job"]["state"].as_str(), Some("SUCCEEDED" | "ERROR" | "GIVEN_UP")) {
                super::schema::assert_valid("offloader.asset.v1", &asset);
                return asset;
            }
            assert!(Instant::now() < deadline, "{path} not processed within {timeout:?}: {asset}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn topics_report(&self) -> Value {
        self.read(self.http.get(self.url("/api/topics")).send().await.expect("GET /api/topics")).await
    }

    /// The instance named `name` in the leader's topology view.
    pub async fn instance(&self, name: &str) -> Option<Value> {
        let resp = self.http.get(self.url("/api/topics")).send().await.ok()?;
        let report: Value = resp.json().await.ok()?;
        report["instances"].as_array()?.iter().find(|i| i["name"] == name).cloned()
    }

    /// Enables, disables or makes exclusive a topic on an instance, live.
    pub async fn change_topic(&self, action: &str, topic: &str, instance: &str) -> Value {
        let resp = self
            .http
            .post(self.url(&format!("/api/topics/{action}")))
            .json(&json!({ "topic": topic, "instance": instance }))
            .send()
            .await
            .expect("POST /api/topics/{action}");
        self.read(resp).await
    }

    /// Waits until the instance consumes (or stops consuming) `topic`'s queue.
    pub async fn wait_consuming(&self, name: &str, topic: &str, consuming: bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let now = self
                .instance(name)
                .await
                .map(|i| i["consuming"].as_array().is_some_and(|c| c.iter().any(|t| t == topic)))
                .unwrap_or(false);
            if now == consuming {
                return;
            }
            assert!(Instant::now() < deadline, "{name} consuming {topic} is not {consuming} after 20 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The leader's view of one topic queue (depth and consumers).
    pub async fn queue(&self, topic: &str) -> Value {
        let report = self.topics_report().await;
        report["topics"]
            .as_array()
            .and_then(|t| t.iter().find(|q| q["topic"] == topic).cloned())
            .unwrap_or_else(|| panic!("topic {topic} is not in the leader's report: {report}"))
    }

    /// Waits until RabbitMQ counts `n` consumers on the topic's queue: the workers
    /// that consume it are really attached, not just announcing that they will be.
    pub async fn wait_queue_consumers(&self, topic: &str, n: u64) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let q = self.queue(topic).await;
            if q["consumers"] == n {
                return;
            }
            assert!(Instant::now() < deadline, "queue of {topic} does not have {n} consumers after 20 s: {q}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Has [`finish`](Self::finish) delete `topic`'s queue too: for topics the leader
    /// declared on its own (launchers), which this harness did not submit to.
    pub fn also_delete(&self, topic: &str) {
        self.topics.lock().unwrap().insert(topic.to_owned());
    }

    /// Stops every process and deletes the namespace's queues and exchanges.
    pub async fn finish(mut self) {
        self.leader.take();
        let topics: Vec<_> = self.topics.lock().unwrap().iter().filter_map(|t| t.parse().ok()).collect();
        let broker = self.broker().await;
        let _ = broker.delete_namespace(&topics).await;
        broker.close();
    }
}

pub fn is_final(job: &Value) -> bool {
    matches!(job["state"].as_str(), Some("SUCCEEDED" | "GIVEN_UP" | "ERROR" | "STOPPED"))
}

/// A command's stdout as JSON, or a panic showing what it printed instead.
pub fn stdout_json(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The name of the worker that ran a job.
pub fn worker_of(job: &Value) -> &str {
    job["worker"]["name"].as_str().unwrap_or("")
}

/// Writes `len` bytes that do not repeat to a file.
pub fn random_file(dir: &Path, name: &str, len: usize) -> PathBuf {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ len as u64;
    let mut bytes = Vec::with_capacity(len);
    while bytes.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        bytes.extend_from_slice(&x.to_le_bytes());
    }
    bytes.truncate(len);
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("writing a test file");
    path
}

/// A raw AMQP channel of the test's own, for looking at the broker the way a foreign client
/// would (the library keeps lapin to itself).
pub async fn raw_channel(amqp: &str) -> lapin::Channel {
    let conn = lapin::Connection::connect(amqp, lapin::ConnectionProperties::default())
        .await
        .unwrap_or_else(|e| panic!("RabbitMQ must be running for this test ({amqp}): {e}"));
    conn.create_channel().await.expect("a channel")
}

/// A private queue bound to an exchange, to see the messages really sent.
pub struct Tap {
    ch: lapin::Channel,
    queue: String,
}

impl Tap {
    pub async fn new(amqp: &str, exchange: &str, key: &str) -> Tap {
        use lapin::options::{QueueBindOptions, QueueDeclareOptions};
        use lapin::types::FieldTable;
        let ch = raw_channel(amqp).await;
        let q = ch
            .queue_declare(
                "".into(),
                QueueDeclareOptions { exclusive: true, auto_delete: true, ..Default::default() },
                FieldTable::default(),
            )
            .await
            .expect("declaring a tap queue");
        let queue = q.name().to_string();
        ch.queue_bind(
            queue.as_str().into(),
            exchange.into(),
            key.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("binding a tap queue");
        Tap { ch, queue }
    }

    /// The next message, or `None` after `timeout`.
    pub async fn next(&self, timeout: Duration) -> Option<lapin::message::Delivery> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self
                .ch
                .basic_get(self.queue.as_str().into(), lapin::options::BasicGetOptions { no_ack: true })
                .await
                .expect("basic.get on the tap");
            if let Some(m) = got {
                return Some(m.delivery);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Polls `ok` every 100 ms until it holds; fails naming `what`, with `context()` (a log, say),
/// after `timeout`.
pub async fn wait_until(
    what: &str,
    timeout: Duration,
    context: impl Fn() -> String,
    mut ok: impl AsyncFnMut() -> bool,
) {
    let deadline = Instant::now() + timeout;
    while !ok().await {
        assert!(Instant::now() < deadline, "{what} did not happen within {timeout:?}; {}", context());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
