//! A RabbitMQ node of one test's own: its own AMQP port, Erlang node name and data directory,
//! so the test can stop and start a real broker under running processes while every other
//! test keeps using the shared one. It runs Debian's `rabbitmq-server` (which
//! `scripts/services` installs) as the current user, with no plugins.

use super::cluster::free_port;
use offloader::broker::{Broker, BrokerConfig};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

const SERVER: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";

pub struct PrivateRabbit {
    dir: TempDir,
    port: u16,
    dist_port: u16,
    node: String,
    child: Option<Child>,
    starts: u32,
}

impl PrivateRabbit {
    /// Boots a fresh node and waits until it accepts AMQP connections.
    pub async fn start() -> PrivateRabbit {
        assert!(
            std::path::Path::new(SERVER).exists(),
            "this test runs a RabbitMQ node of its own and needs {SERVER}: install Debian's rabbitmq-server \
             (scripts/services does)"
        );
        let dir = TempDir::new().expect("temp dir");
        std::fs::write(dir.path().join("enabled_plugins"), "[].\n").expect("plugins file");
        let port = free_port();
        std::fs::write(dir.path().join("rabbitmq.conf"), format!("listeners.tcp.local = 127.0.0.1:{port}\n"))
            .expect("config file");
        let node = format!("offloader-test-{}@localhost", &uuid::Uuid::new_v4().simple().to_string()[..10]);
        let mut rabbit = PrivateRabbit { dir, port, dist_port: free_port(), node, child: None, starts: 0 };
        rabbit.boot().await;
        rabbit
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
        let child = Command::new(SERVER)
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
