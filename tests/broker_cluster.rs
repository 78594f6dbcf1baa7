//! A RabbitMQ cluster losing nodes under a running leader and two workers. The test runs a
//! three-node cluster of its own (the shared broker keeps serving the other tests), gives the
//! processes all three nodes as their AMQP URL, and SIGKILLs the node leading the topic's
//! quorum queue in the middle of a stream of jobs; then brings it back and kills the node
//! leading the reply queue. Every job still succeeds, each completion applied exactly once:
//! the quorum queues keep a majority and elect a new leader, and every connection that was on
//! a dead node is made again to one of the others.

mod common;

use common::cluster::{Cluster, Proc};
use common::rabbit::RabbitCluster;
use serde_json::json;
use std::time::{Duration, Instant};

const JOBS: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_survive_losing_rabbitmq_nodes() {
    // Forming the cluster alone takes a minute on a busy machine; a hang anywhere fails the
    // test instead of stalling the suite.
    tokio::time::timeout(Duration::from_secs(600), scenario())
        .await
        .expect("the broker cluster scenario did not finish within 10 minutes");
}

async fn scenario() {
    let started = Instant::now();
    let mut rabbit = RabbitCluster::start(3).await;
    println!("three-node RabbitMQ cluster formed in {:.1} s", started.elapsed().as_secs_f64());
    let mut c = Cluster::on(rabbit.url()).await;
    c.start_leader(&[]).await;
    let mut workers =
        vec![c.start_worker("w1", &["--concurrency", "2"]).await, c.start_worker("w2", &["--concurrency", "2"]).await];

    // One job through first: the topic's queue exists, replicated on every node.
    let first = c.submit("offloader/sleep", json!({ "ms": 10 })).await;
    let first = c.wait_job(first["id"].as_str().expect("an id"), Duration::from_secs(30)).await;
    assert_eq!(first["state"], "SUCCEEDED", "{first}");
    let mut ids = vec![first["id"].as_str().expect("an id").to_owned()];

    // Node down: the one leading the topic's queue, a third into the stream of jobs.
    let topic_queue = format!("{}.jobs.", c.namespace);
    let leaders = rabbit.queue_leaders(&topic_queue);
    let (queue, leader) = leaders.first().unwrap_or_else(|| panic!("no quorum queue {topic_queue}*: {leaders:?}"));
    let victim = rabbit.index_of(leader);
    println!("{queue} is led by {leader}");
    let before = connections(&c, &workers);
    let (recovery, after_kill) = stream_with_kill(&c, &mut ids, || rabbit.nodes[victim].kill()).await;
    println!("killed {leader} (leading the topic queue): the first job created after it took {recovery:.1} s");
    report_failover(&before, &connections(&c, &workers), rabbit.nodes[victim].port());
    check_all(&mut c, &ids, &mut workers).await;
    println!("all {} jobs succeeded {after_kill:.1} s after the kill", ids.len());

    // Back to three nodes (a majority needs two), then down goes the reply queue's leader.
    rabbit.nodes[victim].boot().await;
    let replies = format!("{}.replies.", c.namespace);
    let leaders = rabbit.queue_leaders(&replies);
    let (queue, leader) = leaders.first().unwrap_or_else(|| panic!("no quorum queue {replies}*: {leaders:?}"));
    let victim = rabbit.index_of(leader);
    println!("{queue} is led by {leader}");
    let before = connections(&c, &workers);
    let (recovery, after_kill) = stream_with_kill(&c, &mut ids, || rabbit.nodes[victim].kill()).await;
    println!("killed {leader} (leading the reply queue): the first job created after it took {recovery:.1} s");
    report_failover(&before, &connections(&c, &workers), rabbit.nodes[victim].port());
    check_all(&mut c, &ids, &mut workers).await;
    println!("all {} jobs succeeded {after_kill:.1} s after the kill", ids.len());

    c.finish().await;
    drop(workers);
}

/// The nodes each process connected to so far, in order, from its log (`connected to RabbitMQ
/// node node=amqp://guest:***@127.0.0.1:PORT/%2f`).
fn connections(c: &Cluster, workers: &[Proc]) -> Vec<(String, Vec<String>)> {
    c.leader
        .iter()
        .chain(workers)
        .map(|p| {
            let nodes = p
                .log()
                .lines()
                .filter(|l| l.contains("connected to RabbitMQ node"))
                .filter_map(|l| l.split("node=").nth(1))
                .map(|n| n.trim().to_owned())
                .collect();
            (p.name.clone(), nodes)
        })
        .collect()
}

/// Prints which processes had a connection on the killed node and where they connected since:
/// which of them need a new connection depends on the random start of each process's rotation
/// (a process with another live connection in its pool just keeps using that one).
fn report_failover(before: &[(String, Vec<String>)], after: &[(String, Vec<String>)], port: u16) {
    let on = |node: &String| node.contains(&format!("127.0.0.1:{port}/"));
    for ((name, old), (_, new)) in before.iter().zip(after) {
        let since = &new[old.len()..];
        assert!(!since.iter().any(on), "{name} connected to the killed node: {since:?}");
        println!(
            "  {name}: {} of its {} connections were on the killed node; {} made since",
            old.iter().filter(|n| on(n)).count(),
            old.len(),
            since.len()
        );
    }
}

/// Submits [`JOBS`] jobs of 50 ms, calling `kill` after a third of them; returns how long the
/// first job created after the kill took to succeed (watched while the stream goes on), and how
/// long after the kill all were done.
async fn stream_with_kill(c: &Cluster, ids: &mut Vec<String>, kill: impl FnOnce()) -> (f64, f64) {
    let mut kill = Some(kill);
    let mut killed_at = None;
    let mut probe = None;
    for i in 0..JOBS {
        if i == JOBS / 3 {
            if let Some(kill) = kill.take() {
                kill();
            }
            killed_at = Some(Instant::now());
        }
        let job = c.submit("offloader/sleep", json!({ "ms": 50 })).await;
        let id = job["id"].as_str().unwrap_or_else(|| panic!("a job without an id: {job}")).to_owned();
        if let (Some(at), None) = (killed_at, &probe) {
            probe = Some(tokio::spawn(time_to_success(c.http.clone(), c.url(&format!("/api/jobs/{id}")), at)));
        }
        ids.push(id);
    }
    let killed_at = killed_at.expect("the node was killed");
    for id in ids.iter() {
        c.wait_job(id, Duration::from_secs(120)).await;
    }
    let recovery = probe.expect("a job created after the kill").await.expect("the probe watcher");
    (recovery, killed_at.elapsed().as_secs_f64())
}

/// Seconds from `since` until the job at `url` succeeded (polled every 20 ms).
async fn time_to_success(http: reqwest::Client, url: String, since: Instant) -> f64 {
    loop {
        if let Ok(r) = http.get(&url).send().await {
            if let Ok(job) = r.json::<serde_json::Value>().await {
                if job["state"] == "SUCCEEDED" {
                    return since.elapsed().as_secs_f64();
                }
                assert!(!common::cluster::is_final(&job), "the first job after the kill ended otherwise: {job}");
            }
        }
        assert!(since.elapsed() < Duration::from_secs(120), "the first job after the kill did not succeed in 120 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every job succeeded, its completion applied once, and no process gave up.
async fn check_all(c: &mut Cluster, ids: &[String], workers: &mut [Proc]) {
    for id in ids {
        let job = c.job(id).await;
        assert_eq!(job["state"], "SUCCEEDED", "{job}");
        assert_eq!(job["completions_applied"], 1, "a completion applied other than once: {job}");
    }
    for w in workers.iter_mut() {
        assert!(w.is_running(), "worker {} exited; log:\n{}", w.name, w.log());
    }
    let leader = c.leader.as_mut().expect("the leader runs");
    assert!(leader.is_running(), "the leader exited; log:\n{}", leader.log());
}
