//! Processes dying and stopping under load, on real processes and the real
//! broker: a worker killed mid-job, the leader killed while completions pile
//! up, and a worker drained with SIGTERM.

mod common;

use common::cluster::{worker_of, Cluster};
use offloader::broker::Broker;
use offloader::protocol::Topic;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const SLEEP: &str = "offloader/sleep";

/// Has the leader declare `topic`'s queue (workers consume the queues the leader
/// announces) with a 1 ms job, which the first worker to start then runs.
/// Returns the queue's name and the warm-up job's id.
async fn warm_up(c: &Cluster, broker: &Broker, topic: &str) -> (String, String) {
    let job = c.submit(topic, json!({ "ms": 1 })).await;
    let topic: Topic = topic.parse().expect("a valid topic");
    (broker.names().topic_queue(&topic), id_of(&job))
}

/// Waits for the warm-up job to succeed.
async fn warmed(c: &Cluster, id: &str) {
    let job = c.wait_job(id, Duration::from_secs(15)).await;
    assert_eq!(job["state"], "SUCCEEDED", "the warm-up job: {job}");
}

/// Waits until `queue` has exactly `consumers` consumers attached.
async fn wait_consumers(broker: &Broker, queue: &str, consumers: u32) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let depth = broker.queue_depth(queue).await.expect("a passive declare");
        if depth.is_some_and(|d| d.consumers == consumers) {
            return;
        }
        assert!(Instant::now() < deadline, "{queue} does not have {consumers} consumers after 15 s: {depth:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Messages ready in `queue` (not counting deliveries in progress).
async fn ready(broker: &Broker, queue: &str) -> u32 {
    broker.queue_depth(queue).await.expect("a passive declare").map(|d| d.messages).unwrap_or(0)
}

fn id_of(job: &Value) -> String {
    job["id"].as_str().expect("a job id").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_job_loses_nothing_and_the_job_runs_once_more_elsewhere() {
    let mut c = Cluster::new().await;
    c.start_leader(&[]).await;
    let broker = c.broker().await;
    let (queue, warm) = warm_up(&c, &broker, SLEEP).await;
    let mut workers = vec![c.start_worker("w1", &[]).await, c.start_worker("w2", &[]).await];
    wait_consumers(&broker, &queue, 2).await;
    warmed(&c, &warm).await;

    let job = c.submit(SLEEP, json!({ "ms": 2000 })).await;
    let id = id_of(&job);
    let active = c.wait_job_until(&id, Duration::from_secs(10), |j| j["state"] == "ACTIVE").await;
    let victim = worker_of(&active).to_owned();
    assert!(victim == "w1" || victim == "w2", "the job runs on an unknown worker: {active}");
    assert_eq!(active["redeliveries"], 0, "first delivery: {active}");

    // SIGKILL: no completion, no ack. The broker hands the job to the other worker.
    let at = workers.iter().position(|w| w.name == victim).unwrap();
    let mut dead = workers.remove(at);
    dead.kill();
    let survivor = &mut workers[0];

    let done = c.wait_job(&id, Duration::from_secs(15)).await;
    assert_eq!(done["state"], "SUCCEEDED", "{done}\nsurvivor log:\n{}", survivor.log());
    assert_eq!(worker_of(&done), survivor.name, "the job finished on the surviving worker: {done}");
    assert_eq!(done["completions_applied"], 1, "{done}");
    assert_eq!(done["duplicates_ignored"], 0, "{done}");
    assert_eq!(done["attempt"], 1, "a crash is a redelivery, not a failed attempt: {done}");
    assert!(done["redeliveries"].as_u64().unwrap_or(0) >= 1, "the redelivery is recorded: {done}");
    assert_eq!(done["output_properties"]["slept_ms"], 2000, "{done}");

    // Nothing is left behind in the queue, and the survivor keeps working.
    assert_eq!(ready(&broker, &queue).await, 0);
    assert!(survivor.is_running());
    let next = c.submit(SLEEP, json!({ "ms": 10 })).await;
    let next = c.wait_job(&id_of(&next), Duration::from_secs(10)).await;
    assert_eq!((next["state"].as_str(), worker_of(&next)), (Some("SUCCEEDED"), survivor.name.as_str()), "{next}");
    broker.close();
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_wait_in_the_reply_queue_while_the_leader_is_down() {
    const JOBS: usize = 20;
    let mut c = Cluster::new().await;
    c.start_leader(&[]).await;
    let broker = c.broker().await;
    let (queue, warm) = warm_up(&c, &broker, SLEEP).await;
    let workers =
        [c.start_worker("w1", &["--concurrency", "4"]).await, c.start_worker("w2", &["--concurrency", "4"]).await];
    wait_consumers(&broker, &queue, 2).await;
    warmed(&c, &warm).await;

    // 20 jobs of 1.5 s on 8 slots: three waves, about 4.5 s of work.
    let mut ids = Vec::new();
    for _ in 0..JOBS {
        let job = c.submit(SLEEP, json!({ "ms": 1500 })).await;
        assert_eq!(job["state"], "QUEUED", "{job}");
        ids.push(id_of(&job));
    }
    c.wait_job_until(&ids[0], Duration::from_secs(5), |j| j["state"] == "ACTIVE").await;
    // Killed while the first wave runs: no completion can have arrived yet.
    let mut leader = c.leader.take().expect("the leader runs");
    leader.kill();

    // The workers go on; every completion waits in the leader's outbox.
    let replies = broker.names().replies_queue();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let done: usize = workers.iter().map(|w| w.log().matches("job done").count()).sum();
        let waiting = ready(&broker, &replies).await as usize;
        // One more "job done" in the logs: the warm-up job, applied before the kill.
        if done == JOBS + 1 && waiting >= JOBS {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "with the leader down, {done} of {JOBS} jobs (+1 warm-up) were done and {waiting} replies waited after 20 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(ready(&broker, &queue).await, 0, "every job was taken");

    // Same data dir, same ledger: the leader drains the pile and loses nothing.
    c.start_leader(&[]).await;
    for id in &ids {
        let job = c.wait_job(id, Duration::from_secs(15)).await;
        assert_eq!(job["state"], "SUCCEEDED", "{job}");
        assert_eq!(job["completions_applied"], 1, "{job}");
        assert_eq!(job["duplicates_ignored"], 0, "{job}");
        assert_eq!(job["attempt"], 1, "{job}");
        assert_eq!(job["redeliveries"], 0, "no worker died: {job}");
        assert!(["w1", "w2"].contains(&worker_of(&job)), "{job}");
    }
    let listed: Value = c.http.get(c.url("/api/jobs?limit=1000")).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed["counts"]["SUCCEEDED"], JOBS + 1, "{}", listed["counts"]);
    assert_eq!(listed["jobs"].as_array().map(Vec::len), Some(JOBS + 1));
    let deadline = Instant::now() + Duration::from_secs(10);
    while ready(&broker, &replies).await > 0 {
        assert!(Instant::now() < deadline, "the restarted leader did not drain its reply queue");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    broker.close();
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_a_worker_it_finishes_its_job_and_takes_no_more() {
    let mut c = Cluster::new().await;
    c.start_leader(&[]).await;
    let broker = c.broker().await;
    let (queue, warm) = warm_up(&c, &broker, SLEEP).await;
    let mut w1 = c.start_worker("w1", &[]).await;
    wait_consumers(&broker, &queue, 1).await;
    warmed(&c, &warm).await;

    let job = c.submit(SLEEP, json!({ "ms": 2000 })).await;
    let id = id_of(&job);
    let active = c.wait_job_until(&id, Duration::from_secs(10), |j| j["state"] == "ACTIVE").await;
    assert_eq!(worker_of(&active), "w1");

    let asked = Instant::now();
    let status = tokio::task::block_in_place(|| w1.terminate(Duration::from_secs(15)));
    let took = asked.elapsed();
    let log = w1.log();
    assert!(status.success(), "the drained worker exited with {status}; log:\n{log}");
    assert!(log.contains("drained"), "the worker did not report its drain; log:\n{log}");
    assert!(!log.contains("ack failed"), "the job's ack was lost in the drain; log:\n{log}");

    // It finished the job before it exited: completion applied once, no redelivery.
    let done = c.wait_job(&id, Duration::from_secs(5)).await;
    assert_eq!(done["state"], "SUCCEEDED", "{done}");
    assert_eq!(worker_of(&done), "w1");
    assert_eq!(done["completions_applied"], 1, "{done}");
    assert_eq!(done["duplicates_ignored"], 0, "{done}");
    assert_eq!(done["redeliveries"], 0, "{done}");
    assert!(took < Duration::from_secs(10), "the drain took {took:?}");
    // The job message was acked, not returned to the queue.
    assert_eq!(ready(&broker, &queue).await, 0, "the drained job went back to its queue; log:\n{log}");

    // Jobs submitted after the drain wait for a worker...
    let later = c.submit(SLEEP, json!({ "ms": 10 })).await;
    let later_id = id_of(&later);
    let waited: Value =
        c.http.get(c.url(&format!("/api/jobs/{later_id}?wait=1.5"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(waited["state"], "QUEUED", "{waited}");
    assert_eq!(ready(&broker, &queue).await, 1);
    wait_consumers(&broker, &queue, 0).await;

    // ...and go to the next worker that comes; the drained job is not run again.
    let w2 = c.start_worker("w2", &[]).await;
    let later = c.wait_job(&later_id, Duration::from_secs(15)).await;
    assert_eq!(later["state"], "SUCCEEDED", "{later}\nw2 log:\n{}", w2.log());
    assert_eq!(worker_of(&later), "w2");
    assert_eq!(w2.log().matches("job done").count(), 1, "w2 ran exactly one job; log:\n{}", w2.log());
    let first = c.job(&id).await;
    assert_eq!((first["completions_applied"].as_u64(), first["duplicates_ignored"].as_u64()), (Some(1), Some(0)));
    broker.close();
    c.finish().await;
}
