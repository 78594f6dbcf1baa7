//! Jobs that run longer than RabbitMQ's `consumer_timeout`, on the real services. A worker acks
//! the delivery of a job still running after its `--detach-after` (here 1 s, in production 15
//! min, below the broker's 30) and runs the job on detached from it: the broker holds nothing
//! that a closed channel could hand out again. The leader holds the job instead, and publishes
//! it again when the detached job's worker leaves.

mod common;

use common::cluster::Cluster;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const MANAGEMENT: &str = "http://127.0.0.1:15672/api";

fn id_of(job: &Value) -> String {
    job["id"].as_str().expect("a job id").to_owned()
}

/// The management API's view of a queue (its figures are sampled by the broker every 5 s).
async fn queue_stats(c: &Cluster, queue: &str) -> Value {
    let url = format!("{MANAGEMENT}/queues/%2F/{queue}");
    match c.http.get(&url).basic_auth("guest", Some("guest")).send().await {
        Ok(r) if r.status().is_success() => r.json().await.expect("queue stats are JSON"),
        other => {
            panic!("this test needs RabbitMQ's management API at {MANAGEMENT} (scripts/services enables it): {other:?}")
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_job_acks_its_delivery_while_it_runs_and_still_ends_once() {
    let mut c = Cluster::new().await;
    c.start_leader(&[]).await;
    let _w = c.start_worker("w1", &["--concurrency", "1", "--detach-after", "1s"]).await;

    // 16 s: the broker samples the queue's figures and the channel's delivery count every 5 s,
    // each on its own clock, so both show what came after the detach well before the job ends.
    let job = c.submit("offloader/sleep", json!({"ms": 16000})).await;
    let queue = c.broker().await.names().topic_queue(&"offloader/sleep".parse().expect("a topic"));
    let id = id_of(&job);
    let t0 = Instant::now();
    let detached = c.wait_job_until(&id, Duration::from_secs(20), |j| j["detached"] == true).await;
    assert_eq!((detached["state"].as_str(), detached["worker"]["name"].as_str()), (Some("ACTIVE"), Some("w1")));
    assert!(t0.elapsed() >= Duration::from_millis(900), "detached after {:?}, before --detach-after", t0.elapsed());

    // The broker's figures once they count the delivery: nothing unacknowledged, nothing ready,
    // while the job still runs. Without the detach the message stays unacked to the end.
    let deadline = Instant::now() + Duration::from_secs(25);
    let stats = loop {
        let q = queue_stats(&c, &queue).await;
        let delivered = q["message_stats"]["deliver_get"].as_u64().unwrap_or(0);
        if delivered >= 1 && q["messages_unacknowledged"] == 0 {
            break q;
        }
        assert!(Instant::now() < deadline, "the delivery is still unacknowledged: {q}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(stats["messages"], 0, "{stats}");
    let running = c.job(&id).await;
    eprintln!("the broker shows the delivery acked {:?} after the submit, the job still running", t0.elapsed());
    assert_eq!((running["state"].as_str(), running["detached"].as_bool()), (Some("ACTIVE"), Some(true)), "{running}");

    let done = c.wait_job(&id, Duration::from_secs(20)).await;
    assert_eq!(done["state"], "SUCCEEDED", "{done}");
    assert_eq!((done["attempt"].as_u64(), done["completions_applied"].as_u64()), (Some(1), Some(1)), "{done}");
    assert_eq!(done["duplicates_ignored"], 0, "{done}");

    // A detached job still stops: its worker cancels it, and the result it sends is ignored.
    let job = c.submit("offloader/sleep", json!({"ms": 30000})).await;
    let id = id_of(&job);
    c.wait_job_until(&id, Duration::from_secs(20), |j| j["detached"] == true).await;
    let resp = c.http.post(c.url(&format!("/api/jobs/{id}/stop"))).send().await.expect("POST stop");
    assert_eq!(resp.status().as_u16(), 200);
    let late = c.wait_job_until(&id, Duration::from_secs(5), |j| j["duplicates_ignored"] == 1).await;
    assert_eq!(late["state"], "STOPPED", "{late}");
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_detached_job_whose_worker_dies_is_published_again_and_runs_elsewhere() {
    let mut c = Cluster::new().await;
    c.start_leader(&[]).await;
    let mut w1 = c.start_worker("w1", &["--concurrency", "1", "--detach-after", "1s"]).await;

    let job = c.submit("offloader/sleep", json!({"ms": 4000})).await;
    let id = id_of(&job);
    let detached = c.wait_job_until(&id, Duration::from_secs(20), |j| j["detached"] == true).await;
    assert_eq!(detached["worker"]["name"], "w1", "{detached}");

    // A second worker, then w1 dies without a word: its acked delivery will never come back.
    let _w2 = c.start_worker("w2", &["--concurrency", "1"]).await;
    w1.kill();

    let done = c.wait_job(&id, Duration::from_secs(30)).await;
    assert_eq!(done["state"], "SUCCEEDED", "{done}");
    assert_eq!(done["worker"]["name"], "w2", "{done}");
    // A new attempt the leader published (counted as a failed one), not a broker redelivery.
    assert_eq!(done["attempt"], 2, "{done}");
    assert_eq!(done["redeliveries"], 0, "{done}");
    assert_eq!(done["completions_applied"], 1, "{done}");
    assert!(done["detached"].is_null(), "the second attempt ran attached: {done}");
    c.finish().await;
}
