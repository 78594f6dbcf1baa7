//! A worker cut off from the broker by the network, not killed: it runs in a network namespace
//! of its own, joined to this machine by a veth pair, and reaches RabbitMQ and S3 through
//! relays on the host's end of the pair. Taking that end down drops its packets (no reset, no
//! close), as a failed switch or a partitioned node does. Its unacknowledged jobs must run on
//! another worker, and when the link comes back it must neither finish anything twice in the
//! ledger nor stay away: it takes jobs again.
//!
//! Needs root (network namespaces), which CI has; it fails saying so otherwise.

mod common;

use common::cluster::{wait_until, worker_of, Cluster, BIN};
use serde_json::{json, Value};
use std::net::Ipv4Addr;
use std::process::Command;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// How long the link stays down: longer than RabbitMQ needs to declare the worker's connection
/// dead from its missed heartbeats (it asks for 2 s ones).
const PARTITION: Duration = Duration::from_secs(20);

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap_or_else(|e| panic!("cannot run ip {args:?}: {e}"));
    assert!(
        out.status.success(),
        "ip {} failed (this test needs root and iproute2): {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A network namespace and the veth pair to it, removed when dropped.
struct Netns {
    name: String,
    host_if: String,
    host_ip: Ipv4Addr,
}

impl Netns {
    fn create() -> Netns {
        let tag = &uuid::Uuid::new_v4().simple().to_string()[..8];
        let (a, b) = (rand::random::<u8>() % 200 + 20, rand::random::<u8>() & 0xfc);
        let host_ip = Ipv4Addr::new(10, a, b, 1);
        let ns_ip = Ipv4Addr::new(10, a, b, 2);
        let n = Netns { name: format!("offl-{tag}"), host_if: format!("vh{tag}"), host_ip };
        let ns_if = format!("vn{tag}");
        ip(&["netns", "add", &n.name]);
        ip(&["link", "add", &n.host_if, "type", "veth", "peer", "name", &ns_if]);
        ip(&["link", "set", &ns_if, "netns", &n.name]);
        ip(&["addr", "add", &format!("{host_ip}/30"), "dev", &n.host_if]);
        ip(&["link", "set", &n.host_if, "up"]);
        ip(&["-n", &n.name, "addr", "add", &format!("{ns_ip}/30"), "dev", &ns_if]);
        ip(&["-n", &n.name, "link", "set", &ns_if, "up"]);
        ip(&["-n", &n.name, "link", "set", "lo", "up"]);
        n
    }

    fn link(&self, up: bool) {
        ip(&["link", "set", &self.host_if, if up { "up" } else { "down" }]);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting the namespace deletes the veth pair with it.
        let _ = Command::new("ip").args(["netns", "del", &self.name]).output();
        let _ = Command::new("ip").args(["link", "del", &self.host_if]).output();
    }
}

/// Forwards connections to `bind` on to `target` (a service listening on loopback only).
async fn relay(bind: (Ipv4Addr, u16), target: String, tasks: &mut JoinSet<()>) {
    let listener = TcpListener::bind(bind).await.expect("binding a relay on the veth address");
    tasks.spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let target = target.clone();
            tokio::spawn(async move {
                if let Ok(mut outbound) = TcpStream::connect(&target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
}

/// `host:port` of a URL's authority (`amqp://u:p@127.0.0.1:5672/%2f` → `127.0.0.1:5672`).
fn authority(url: &str) -> String {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let rest = rest.rsplit_once('@').map(|(_, r)| r).unwrap_or(rest);
    rest.split('/').next().unwrap_or(rest).to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_worker_loses_its_jobs_to_another_and_comes_back() {
    let mut c = Cluster::new().await;
    c.start_leader(&[]).await;
    let ns = Netns::create();

    // RabbitMQ and S3 listen on loopback: relays on the host's end of the pair reach them.
    let mut relays = JoinSet::new();
    let (amqp_port, s3_port) = (common::cluster::free_port(), common::cluster::free_port());
    relay((ns.host_ip, amqp_port), authority(&c.amqp), &mut relays).await;
    let s3 = std::env::var("OFFLOADER_S3_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:8333".into());
    relay((ns.host_ip, s3_port), authority(&s3), &mut relays).await;
    let (credentials, vhost) = {
        let rest = c.amqp.split_once("://").map(|(_, r)| r).unwrap_or(&c.amqp);
        let creds = rest.rsplit_once('@').map(|(c, _)| c).unwrap_or("guest:guest").to_owned();
        let vhost = rest.split_once('/').map(|(_, v)| v).unwrap_or("%2f").split('?').next().unwrap_or("%2f").to_owned();
        (creds, vhost)
    };
    let amqp_in_ns = format!("amqp://{credentials}@{}:{amqp_port}/{vhost}?heartbeat=2", ns.host_ip);

    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &ns.name, BIN, "--namespace", &c.namespace, "--amqp-url", &amqp_in_ns])
        .args(["worker", "--name", "cut", "--heartbeat-interval", common::cluster::HEARTBEAT])
        .arg("--data-dir")
        .arg(c.data_dir("cut"))
        .env("OFFLOADER_S3_ENDPOINT", format!("http://{}:{s3_port}", ns.host_ip))
        .env("RUST_LOG", "info,offloader=debug")
        .env("NO_COLOR", "1");
    let cut = c.spawn_program("cut", cmd);
    wait_until(
        "the leader seeing the worker in the namespace",
        Duration::from_secs(30),
        || format!("cut worker\'s log:\n{}", cut.log()),
        async || c.instance("cut").await.is_some(),
    )
    .await;

    // Three long jobs, all running on the worker about to be cut off.
    let mut ids = Vec::new();
    for _ in 0..3 {
        let job = c.submit("offloader/sleep", json!({"ms": 6000})).await;
        ids.push(job["id"].as_str().expect("a job id").to_owned());
    }
    wait_until(
        "the three jobs running on the cut worker",
        Duration::from_secs(30),
        || format!("cut worker\'s log:\n{}", cut.log()),
        async || {
            let mut all = true;
            for id in &ids {
                let job = c.job(id).await;
                all &= job["state"] == "ACTIVE" && worker_of(&job) == "cut";
            }
            all
        },
    )
    .await;

    ns.link(false);
    let cut_at = Instant::now();
    let _other = c.start_worker("other", &[]).await;

    // The broker notices the silence, returns the deliveries, and the other worker runs them.
    let mut done: Vec<Value> = Vec::new();
    for id in &ids {
        done.push(c.wait_job(id, Duration::from_secs(60)).await);
    }
    let took = cut_at.elapsed();
    for job in &done {
        assert_eq!(job["state"], "SUCCEEDED", "{job}\ncut worker's log:\n{}", cut.log());
        assert_eq!(worker_of(job), "other", "{job}");
    }
    println!("jobs of the cut worker finished on the other {took:.1?} after the link went down");

    // Link back after the partition: the cut worker rejoins and finishes nothing twice.
    tokio::time::sleep(PARTITION.saturating_sub(cut_at.elapsed())).await;
    ns.link(true);
    let back_at = Instant::now();
    wait_until(
        "the cut worker rejoining",
        Duration::from_secs(60),
        || format!("cut worker\'s log:\n{}", cut.log()),
        async || c.instance("cut").await.is_some(),
    )
    .await;
    println!("the cut worker was back in the topology {:.1?} after the link came up", back_at.elapsed());
    // Whatever it still had to say about its old jobs has arrived or never will: its late
    // completions (if it sends any) are duplicates the ledger ignores.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for id in &ids {
        let job = c.job(id).await;
        assert_eq!(job["state"], "SUCCEEDED", "{job}");
        assert_eq!(worker_of(&job), "other", "a late completion changed the job: {job}");
        assert_eq!(job["completions_applied"], 1, "{job}");
    }

    // And it takes jobs again: with the topic disabled on the other worker, a new job runs there.
    c.change_topic("disable", "offloader/sleep", "other").await;
    c.wait_consuming("other", "offloader/sleep", false).await;
    let job = c.submit("offloader/sleep", json!({"ms": 50})).await;
    let job = c.wait_job(job["id"].as_str().expect("a job id"), Duration::from_secs(60)).await;
    assert_eq!(job["state"], "SUCCEEDED", "{job}\ncut worker's log:\n{}", cut.log());
    assert_eq!(worker_of(&job), "cut", "{job}");
    drop(cut);
    relays.abort_all();
    c.finish().await;
}
