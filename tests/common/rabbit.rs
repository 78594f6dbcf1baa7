//! A RabbitMQ node of one test's own: its own AMQP port, Erlang node name and data directory,
//! so the test can stop and start a real broker under running processes while every other
//! test keeps using the shared one. It runs Debian's `rabbitmq-server` (which
//! `scripts/services` installs) as the current user, with no plugins. [`RabbitCluster`] joins
//! three such nodes into one RabbitMQ cluster, for tests that kill a node under running
//! processes.

use super::cluster::free_port;
use offloader::broker::{Broker, BrokerConfig};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

const SERVER: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";
const CTL: &str = "/usr/lib/rabbitmq/bin/rabbitmqctl";

pub struct PrivateRabbit {
    dir: TempDir,
    port: u16,
    dist_port: u16,
    node: String,
    child: Option<Child>,
    starts: u32,
    /// `HOME` of the node and of the CLI tools talking to it, where the Erlang cookie is: the
    /// nodes of one test cluster share one, private to the test. `None`: the user's own.
    home: Option<PathBuf>,
}

impl PrivateRabbit {
    /// Boots a fresh node and waits until it accepts AMQP connections.
    pub async fn start() -> PrivateRabbit {
        let mut rabbit = PrivateRabbit::new(None);
        rabbit.boot().await;
        rabbit
    }

    /// A node not started yet, whose Erlang cookie is in `home` (or the user's).
    fn new(home: Option<PathBuf>) -> PrivateRabbit {
        assert!(
            std::path::Path::new(SERVER).exists() && std::path::Path::new(CTL).exists(),
            "this test runs RabbitMQ nodes of its own and needs {SERVER} and {CTL}: install Debian's \
             rabbitmq-server (scripts/services does)"
        );
        let dir = TempDir::new().expect("temp dir");
        std::fs::write(dir.path().join("enabled_plugins"), "[].\n").expect("plugins file");
        let port = free_port();
        std::fs::write(dir.path().join("rabbitmq.conf"), format!("listeners.tcp.local = 127.0.0.1:{port}\n"))
            .expect("config file");
        let node = format!("offloader-test-{}@localhost", &uuid::Uuid::new_v4().simple().to_string()[..10]);
        PrivateRabbit { dir, port, dist_port: free_port(), node, child: None, starts: 0, home }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The Erlang node name, `offloader-test-…@localhost`.
    pub fn node(&self) -> &str {
        &self.node
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join(format!("server-{}.log", self.starts))
    }

    /// Starts the node on its data directory (messages in durable queues survive a restart)
    /// and waits until an AMQP connection succeeds.
    pub async fn boot(&mut self) {
        assert!(self.child.is_none(), "the node is already running");
        self.starts += 1;
        let log = std::fs::File::create(self.log()).expect("server log");
        let d = self.dir.path();
        let mut cmd = Command::new(SERVER);
        if let Some(home) = &self.home {
            cmd.env("HOME", home);
        }
        let child = cmd
            .current_dir(d)
            .env("RABBITMQ_NODENAME", &self.node)
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("RABBITMQ_MNESIA_BASE", d.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", d.join("log"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", d.join("enabled_plugins"))
            .env("RABBITMQ_CONFIG_FILE", d.join("rabbitmq.conf"))
            // Not the machine's /etc/rabbitmq/rabbitmq-env.conf: it names the shared node.
            .env("RABBITMQ_CONF_ENV_FILE", d.join("no-env.conf"))
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("server log"))
            .stderr(log)
            // Its own process group: the start script and the Erlang VM are signalled together.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {SERVER}: {e}"));
        self.child = Some(child);
        self.wait_amqp().await;
    }

    /// Waits until an AMQP connection to this node succeeds.
    async fn wait_amqp(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let mut probe = BrokerConfig::new(self.url(), "probe");
            probe.connect_timeout = Duration::from_secs(1);
            if let Ok(broker) = Broker::connect(probe, "offloader-test-probe").await {
                broker.close();
                return;
            }
            let exited = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
            assert!(exited.is_none(), "the private RabbitMQ node exited at start ({exited:?}):\n{}", self.tail());
            assert!(
                Instant::now() < deadline,
                "the private RabbitMQ node did not accept connections in 60 s:\n{}",
                self.tail()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Stops the node the way an operator or a package upgrade does (SIGTERM) and waits for it.
    pub async fn stop(&mut self) {
        let mut child = self.child.take().expect("the node is running");
        // SAFETY: signalling the process group of a child we spawned and have not reaped.
        unsafe { libc::kill(-(child.id() as i32), libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        while child.try_wait().expect("waiting for the node").is_none() {
            assert!(Instant::now() < deadline, "the private RabbitMQ node did not stop in 30 s:\n{}", self.tail());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGKILL to the node: a crash or a power cut, nothing is flushed or handed over.
    pub fn kill(&mut self) {
        let mut child = self.child.take().expect("the node is running");
        // SAFETY: signalling the process group of a child we spawned and have not reaped.
        unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
        let _ = child.wait();
    }

    /// Runs `rabbitmqctl -n <this node>` with `args`; its stdout, or a panic with its stderr.
    pub fn ctl(&self, args: &[&str]) -> String {
        let mut cmd = Command::new(CTL);
        if let Some(home) = &self.home {
            cmd.env("HOME", home);
        }
        let out = cmd
            .env("RABBITMQ_CONF_ENV_FILE", self.dir.path().join("no-env.conf"))
            .args(["-n", &self.node])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {CTL}: {e}"));
        assert!(
            out.status.success(),
            "rabbitmqctl -n {} {args:?} failed ({}):\n{}{}\nnode log:\n{}",
            self.node,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.tail()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn tail(&self) -> String {
        let log = std::fs::read_to_string(self.log()).unwrap_or_default();
        log.lines().rev().take(30).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for PrivateRabbit {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: as in `stop`; SIGKILL, nothing is kept.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.wait();
        }
    }
}

/// Three private nodes joined into one RabbitMQ cluster, sharing an Erlang cookie of their own
/// (and the machine's epmd, where each registers under its own name).
pub struct RabbitCluster {
    pub nodes: Vec<PrivateRabbit>,
    /// Holds the shared `.erlang.cookie`; outlives the nodes (dropped after them).
    _home: TempDir,
}

impl RabbitCluster {
    /// Boots `n` nodes and joins the others to the first; returns once every node accepts
    /// AMQP connections again as a cluster member.
    pub async fn start(n: usize) -> RabbitCluster {
        let home = TempDir::new().expect("temp dir");
        let cookie = home.path().join(".erlang.cookie");
        std::fs::write(&cookie, uuid::Uuid::new_v4().simple().to_string().to_uppercase()).expect("cookie");
        // Erlang refuses a cookie others may read.
        std::fs::set_permissions(&cookie, std::os::unix::fs::PermissionsExt::from_mode(0o400)).expect("cookie mode");
        let mut nodes: Vec<PrivateRabbit> = (0..n).map(|_| PrivateRabbit::new(Some(home.path().to_owned()))).collect();
        futures::future::join_all(nodes.iter_mut().map(|node| node.boot())).await;
        let first = nodes[0].node.clone();
        for node in &mut nodes[1..] {
            node.ctl(&["stop_app"]);
            node.ctl(&["join_cluster", &first]);
            node.ctl(&["start_app"]);
        }
        let mut cluster = RabbitCluster { nodes, _home: home };
        for node in &mut cluster.nodes {
            node.wait_amqp().await;
        }
        let status = cluster.nodes[0].ctl(&["cluster_status", "--formatter", "json"]);
        let status: serde_json::Value = serde_json::from_str(&status).expect("cluster_status is JSON");
        let running = status["running_nodes"].as_array().map(Vec::len).unwrap_or(0);
        assert_eq!(running, n, "the nodes did not form one cluster: {status}");
        cluster
    }

    /// Every node, comma-separated: what `OFFLOADER_AMQP_URL` takes for a cluster.
    pub fn url(&self) -> String {
        self.nodes.iter().map(PrivateRabbit::url).collect::<Vec<_>>().join(",")
    }

    /// A running node, to ask about the cluster.
    pub fn any_running(&self) -> &PrivateRabbit {
        self.nodes.iter().find(|n| n.is_running()).expect("a running node")
    }

    /// The node name leading each quorum queue whose name starts with `prefix`.
    pub fn queue_leaders(&self, prefix: &str) -> Vec<(String, String)> {
        let out =
            self.any_running().ctl(&["list_queues", "-p", "/", "name", "leader", "--quiet", "--no-table-headers"]);
        out.lines()
            .filter_map(|line| line.split_once('\t'))
            .map(|(name, leader)| (name.trim().to_owned(), leader.trim().to_owned()))
            .filter(|(name, leader)| name.starts_with(prefix) && !leader.is_empty())
            .collect()
    }

    /// The index of the node named `node`.
    pub fn index_of(&self, node: &str) -> usize {
        self.nodes
            .iter()
            .position(|n| n.node == node)
            .unwrap_or_else(|| panic!("{node} is not one of the test's nodes"))
    }
}
