//! A real broker restart under a running leader and worker. The test runs a RabbitMQ node of
//! its own (the shared one keeps serving the other tests), stops it while jobs are queued and
//! running, creates more jobs while it is down, and starts it again on the same data. Every
//! job then finishes, each completion applied exactly once: the durable quorum queues kept
//! what was published, unacknowledged jobs are redelivered, and the jobs created during the
//! outage (recorded, not yet published) are published once the broker is back. A second test
//! keeps the broker away for a minute under a queue that allows no retry: an outage spends no
//! attempt, so no job is given up.

mod common;

use common::cluster::{worker_of, Cluster};
use common::rabbit::PrivateRabbit;
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_survive_a_broker_restart() {
    // A hang anywhere (a connection attempt that never ends, say) fails the test instead of
    // stalling the suite.
    tokio::time::timeout(Duration::from_secs(240), restart_scenario())
        .await
        .expect("the broker restart scenario did not finish within 4 minutes");
}

async fn restart_scenario() {
    let mut rabbit = PrivateRabbit::start().await;
    let mut c = Cluster::on(rabbit.url()).await;
    c.start_leader(&[]).await;
    let mut worker = c.start_worker("w1", &["--concurrency", "2"]).await;
    // One job through first: the topic's queue exists and the worker consumes it.
    let first = c.submit("offloader/sleep", json!({ "ms": 10 })).await;
    let first = c.wait_job(first["id"].as_str().expect("an id"), Duration::from_secs(15)).await;
    assert_eq!(first["state"], "SUCCEEDED", "{first}");

    // Two jobs running and four waiting when the broker goes.
    let mut ids = Vec::new();
    for _ in 0..6 {
        let job = c.submit("offloader/sleep", json!({ "ms": 1500 })).await;
        assert_eq!(job["state"], "QUEUED", "{job}");
        ids.push(job["id"].as_str().expect("an id").to_owned());
    }
    c.wait_job_until(&ids[0], Duration::from_secs(15), |j| j["state"] == "ACTIVE").await;
    rabbit.stop().await;

    // While it is down the leader still takes jobs: recorded, published later.
    for _ in 0..2 {
        let job = c.submit("offloader/sleep", json!({ "ms": 10 })).await;
        assert_eq!(job["state"], "NEW", "a job created with the broker away is recorded, not queued: {job}");
        ids.push(job["id"].as_str().expect("an id").to_owned());
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    rabbit.boot().await;

    for id in &ids {
        let job = c.wait_job(id, Duration::from_secs(90)).await;
        assert_eq!(job["state"], "SUCCEEDED", "{job}\nworker log:\n{}", worker.log());
        assert_eq!(worker_of(&job), "w1");
        assert_eq!(job["completions_applied"], 1, "{job}");
    }
    assert!(worker.is_running(), "the worker exited; log:\n{}", worker.log());
    let leader = c.leader.as_mut().expect("the leader runs");
    assert!(leader.is_running(), "the leader exited; log:\n{}", leader.log());
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_outage_of_a_minute_spends_no_attempt() {
    tokio::time::timeout(Duration::from_secs(300), outage_scenario())
        .await
        .expect("the broker outage scenario did not finish within 5 minutes");
}

async fn outage_scenario() {
    let mut rabbit = PrivateRabbit::start().await;
    let mut c = Cluster::on(rabbit.url()).await;
    // No retry at all: a single attempt spent on the outage would give its job up.
    let queues = c.dir.path().join("queues.toml");
    std::fs::write(
        &queues,
        "[[queue]]\nqueue.name = \"once\"\nqueue.topics = [\"offloader/sleep\"]\nqueue.retries = 0\n",
    )
    .expect("writing the queue file");
    c.start_leader(&["--queues", queues.to_str().expect("a utf-8 path")]).await;
    let mut worker = c.start_worker("w1", &["--concurrency", "2"]).await;
    let first = c.submit("offloader/sleep", json!({ "ms": 10 })).await;
    let first = c.wait_job(first["id"].as_str().expect("an id"), Duration::from_secs(15)).await;
    assert_eq!(first["state"], "SUCCEEDED", "{first}");

    // Two jobs running and four waiting when the broker goes.
    let mut ids = Vec::new();
    for _ in 0..6 {
        let job = c.submit("offloader/sleep", json!({ "ms": 1500 })).await;
        ids.push(job["id"].as_str().expect("an id").to_owned());
    }
    c.wait_job_until(&ids[0], Duration::from_secs(15), |j| j["state"] == "ACTIVE").await;
    rabbit.stop().await;
    let down = std::time::Instant::now();
    // Jobs keep coming while it is away: recorded, published once it is back.
    for _ in 0..3 {
        let job = c.submit("offloader/sleep", json!({ "ms": 10 })).await;
        assert_eq!(job["state"], "NEW", "{job}");
        ids.push(job["id"].as_str().expect("an id").to_owned());
    }
    tokio::time::sleep(Duration::from_secs(60).saturating_sub(down.elapsed())).await;
    for id in &ids {
        let job = c.job(id).await;
        assert!(!matches!(job["state"].as_str(), Some("GIVEN_UP" | "ERROR")), "during the outage: {job}");
    }
    rabbit.boot().await;

    for id in &ids {
        let job = c.wait_job(id, Duration::from_secs(120)).await;
        assert_eq!(job["state"], "SUCCEEDED", "{job}\nworker log:\n{}", worker.log());
        assert_eq!(job["max_attempts"], 1, "the queue allows no retry: {job}");
        assert_eq!(job["attempt"], 1, "the outage spent an attempt: {job}");
        assert_eq!(job["completions_applied"], 1, "{job}");
    }
    assert!(worker.is_running(), "the worker exited; log:\n{}", worker.log());
    let leader = c.leader.as_mut().expect("the leader runs");
    assert!(leader.is_running(), "the leader exited; log:\n{}", leader.log());
    c.finish().await;
}
