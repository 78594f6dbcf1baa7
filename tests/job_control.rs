//! Job control on the real services, as Sling's `JobManager` offers it: stopping a running job
//! reaches its worker and ends it at once, retrying a job that ended keeps its id and runs it
//! again, removing a job forgets it, an asset's workflow can be run again on the same bytes,
//! and a running job's progress shows on its record.

mod common;

use common::cluster::{stdout_json, Cluster};
use offloader::broker::{Broker, BrokerConfig};
use offloader::consumer::{ConsumerRegistry, Context, JobConsumer};
use offloader::discovery::HeartbeatConfig;
use offloader::metrics::MetricsRegistry;
use offloader::protocol::{Job, JobResult};
use offloader::worker::{self, WorkerConfig};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

async fn post(c: &Cluster, path: &str) -> (u16, Value) {
    let resp = c.http.post(c.url(path)).send().await.unwrap_or_else(|e| panic!("POST {path}: {e}"));
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("a JSON answer"))
}

async fn status_of(c: &Cluster, id: &str) -> u16 {
    c.http.get(c.url(&format!("/api/jobs/{id}"))).send().await.expect("GET /api/jobs/{id}").status().as_u16()
}

fn id_of(job: &Value) -> String {
    job["id"].as_str().expect("a job id").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_reaches_the_worker_and_a_stopped_job_can_be_retried_to_success() {
    let mut c = Cluster::new().await;
    c.start_leader(&[]).await;
    let _w = c.start_worker("w1", &["--concurrency", "1"]).await;

    // A job that would sleep for 3 s, stopped while it runs.
    let job = c.submit("offloader/sleep", json!({"ms": 3000})).await;
    let id = id_of(&job);
    let running = c.wait_job_until(&id, Duration::from_secs(20), |j| j["state"] == "ACTIVE").await;
    assert_eq!(running["worker"]["name"], "w1", "{running}");
    let t0 = Instant::now();
    let out = c.command(&["job", "stop", &id]).output().expect("offloader job stop");
    let stopped = stdout_json(&out);
    assert_eq!(stopped["state"], "STOPPED", "{stopped}");
    // The worker cancelled the job's token: the sleep ended, and its result came back (and
    // was ignored, the record being final) well within a second.
    let late = c.wait_job_until(&id, Duration::from_secs(5), |j| j["duplicates_ignored"] == 1).await;
    let elapsed = t0.elapsed();
    assert!(elapsed < Duration::from_secs(1), "the stopped job ran on for {elapsed:?}: {late}");
    assert_eq!(late["state"], "STOPPED", "a late result changes nothing: {late}");
    assert!(late["result"].is_null(), "{late}");
    // The worker (one slot) is free again: a quick job runs at once.
    let quick = c.submit("offloader/sleep", json!({"ms": 10})).await;
    let quick = c.wait_job(&id_of(&quick), Duration::from_secs(5)).await;
    assert_eq!(quick["state"], "SUCCEEDED", "{quick}");

    // A stopped job retried: the same id, a new attempt, and this time it finishes.
    let out = c.command(&["job", "retry", &id]).output().expect("offloader job retry");
    let retried = stdout_json(&out);
    assert!(out.status.success(), "{retried}");
    assert_eq!(retried["id"], id.as_str());
    assert_eq!(retried["state"], "QUEUED", "{retried}");
    assert_eq!(retried["retries"], 1);
    assert_eq!(retried["attempt"], 2, "the retry is a new attempt: {retried}");
    let done = c.wait_job(&id, Duration::from_secs(20)).await;
    assert_eq!(done["state"], "SUCCEEDED", "{done}");
    assert_eq!((done["attempt"].as_u64(), done["completions_applied"].as_u64()), (Some(2), Some(1)), "{done}");
    assert_eq!(done["output_properties"]["slept_ms"], 3000, "{done}");
    // Only jobs that ended can be retried; a succeeded one is refused with the reason.
    let (status, refused) = post(&c, &format!("/api/jobs/{}/retry", quick["id"].as_str().unwrap())).await;
    assert_eq!(status, 409, "{refused}");
    assert!(refused["error"].as_str().is_some_and(|e| e.contains("SUCCEEDED")), "{refused}");
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_up_jobs_are_retried_one_by_one_or_by_filter_and_removed_jobs_are_gone() {
    let mut c = Cluster::new().await;
    c.start_leader(&[]).await;
    let _w = c.start_worker("w1", &[]).await;

    let failing = json!({"topic": "offloader/fail", "properties": {"reason": "flaky"}, "max_attempts": 1});
    let a = id_of(&c.submit_with(failing.clone()).await);
    let b = id_of(&c.submit_with(failing).await);
    for id in [&a, &b] {
        let done = c.wait_job(id, Duration::from_secs(20)).await;
        assert_eq!((done["state"].as_str(), done["attempt"].as_u64()), (Some("GIVEN_UP"), Some(1)), "{done}");
    }

    // One by one: the attempt runs again, and gives up again (one attempt granted afresh).
    let (status, retried) = post(&c, &format!("/api/jobs/{a}/retry")).await;
    assert_eq!(status, 200, "{retried}");
    assert_eq!(retried["id"], a.as_str());
    let again = c.wait_job_until(&a, Duration::from_secs(20), |j| j["completions_applied"] == 2).await;
    assert_eq!(again["state"], "GIVEN_UP", "{again}");
    assert_eq!(again["attempt"], 2, "{again}");
    assert_eq!(again["result"]["reason"], "flaky");

    // By filter, from the command line: both GIVEN_UP jobs of the topic.
    let out = c.command(&["job", "retry", "--state", "GIVEN_UP", "--topic", "offloader/fail"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("2 jobs retried"), "{out:?}");
    let a3 = c.wait_job_until(&a, Duration::from_secs(20), |j| j["completions_applied"] == 3).await;
    let b2 = c.wait_job_until(&b, Duration::from_secs(20), |j| j["completions_applied"] == 2).await;
    assert_eq!((a3["attempt"].as_u64(), b2["attempt"].as_u64()), (Some(3), Some(2)));
    let (status, refused) = post(&c, "/api/jobs/retry?state=QUEUED").await;
    assert_eq!(status, 400, "{refused}");

    // Removed: a finished job, and a running one (stopped first); both 404 afterwards.
    let out = c.command(&["job", "remove", &a]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout_json(&out)["id"], a.as_str());
    assert_eq!(status_of(&c, &a).await, 404);
    let sleeping = id_of(&c.submit("offloader/sleep", json!({"ms": 60_000})).await);
    c.wait_job_until(&sleeping, Duration::from_secs(20), |j| j["state"] == "ACTIVE").await;
    let resp = c.http.delete(c.url(&format!("/api/jobs/{sleeping}"))).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(status_of(&c, &sleeping).await, 404);
    let resp = c.http.delete(c.url(&format!("/api/jobs/{sleeping}"))).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 404, "removing twice");
    let body: Value = resp.json().await.unwrap();
    assert!(body["error"].is_string(), "{body}");
    // Removed by filter, from the command line: the given-up job of the topic; no filter at all
    // is refused rather than emptying the ledger.
    let out = c.command(&["job", "remove"]).output().unwrap();
    assert!(!out.status.success(), "a removal without an id or a filter ran");
    let out = c.command(&["job", "remove", "--state", "GIVEN_UP", "--topic", "offloader/fail"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 jobs removed"), "{out:?}");
    assert_eq!(status_of(&c, &b).await, 404);
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reprocessing_an_asset_runs_its_workflow_again_on_the_same_bytes() {
    let mut c = Cluster::new().await;
    c.start_leader(&[]).await;
    c.also_delete("com/adobe/granite/workflow/offloading");
    let _w = c.start_worker("w1", &["--consume", "com/adobe/granite/workflow/offloading=echo"]).await;
    let path = "/content/dam/reprocess/a.jpg";
    let resp = c.http.put(c.url(&format!("/api/assets{path}"))).body(vec![7u8; 5000]).send().await.unwrap();
    let created: Value = resp.json().await.unwrap();
    let first = created["job"]["id"].as_str().expect("a workflow job").to_owned();
    assert_eq!(c.wait_job(&first, Duration::from_secs(30)).await["state"], "SUCCEEDED");

    let out = c.command(&["asset", "reprocess", path]).output().unwrap();
    let outcome = stdout_json(&out);
    assert!(out.status.success(), "{outcome}");
    assert_eq!(outcome["change"], "unchanged");
    assert_eq!(outcome["launcher"], "dam_update_asset_modify", "{outcome}");
    let second = outcome["job"]["id"].as_str().expect("a new workflow job").to_owned();
    assert_ne!(second, first);
    let done = c.wait_job(&second, Duration::from_secs(30)).await;
    assert_eq!(done["state"], "SUCCEEDED", "{done}");
    assert_eq!(done["properties"]["offloading.workflow.payload"], path);
    let resp = c.http.get(c.url(&format!("/api/assets{path}"))).send().await.unwrap();
    let asset: Value = resp.json().await.unwrap();
    assert_eq!(asset["job"]["id"], second.as_str(), "{asset}");

    let (status, missing) = post(&c, "/api/reprocess/content/dam/nothing.jpg").await;
    assert_eq!(status, 404, "{missing}");
    c.finish().await;
}

/// Reports progress, then waits to be stopped.
struct Stepper;

#[async_trait::async_trait]
impl JobConsumer for Stepper {
    async fn process(&self, _job: &Job, ctx: &Context) -> JobResult {
        ctx.init_progress(100, Some(Duration::from_secs(3600)));
        // Many reports in a short time: the worker passes on the latest only.
        for i in 1..=100 {
            ctx.increment_progress(1);
            ctx.log(format!("item {i}"));
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
        ctx.log("all items done; waiting");
        ctx.cancelled().cancelled().await;
        JobResult::cancel("stopped")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_shows_on_the_record_while_the_job_runs() {
    let mut c = Cluster::new().await;
    c.start_leader(&[]).await;
    let job = c.submit("acme/progress", json!({})).await;
    let id = id_of(&job);

    // A worker in this process, with the consumer above.
    let mut registry = ConsumerRegistry::new();
    registry.register("acme/progress".parse().unwrap(), Stepper);
    let mut config = WorkerConfig::new("stepper", c.data_dir("stepper"));
    config.heartbeat = HeartbeatConfig::from_interval(Duration::from_millis(300));
    config.started_delay = Duration::ZERO;
    let broker = Broker::connect(BrokerConfig::new(c.amqp.clone(), c.namespace.clone()), "stepper").await.unwrap();
    let worker = worker::start(broker, c.store().await, registry, config, MetricsRegistry::new()).await.unwrap();

    let seen = c
        .wait_job_until(&id, Duration::from_secs(20), |j| {
            j["progress"]["log"].as_array().and_then(|l| l.last()).and_then(Value::as_str)
                == Some("all items done; waiting")
        })
        .await;
    assert_eq!(seen["state"], "ACTIVE", "{seen}");
    let progress = &seen["progress"];
    assert_eq!((progress["steps"].as_u64(), progress["done"].as_u64()), (Some(100), Some(100)), "{seen}");
    assert!(progress["eta"].is_string(), "{progress}");
    let log = progress["log"].as_array().unwrap();
    assert_eq!(log.len(), 20, "the last lines only: {progress}");
    assert_eq!(log[0], "item 82");
    assert_eq!(seen["worker"]["name"], "stepper");
    // Coalesced: 101 changes reached the leader as a handful of reports (this leader has no
    // other job, so every reply it applied is this one's).
    let metrics = c.http.get(c.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let applied: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("offloader_leader_replies_applied_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no replies-applied counter in:\n{metrics}"));
    assert!((2.0..=12.0).contains(&applied), "{applied} replies applied for 101 progress changes");
    // The CLI shows it too.
    let out = c.command(&["job", "get", &id]).output().unwrap();
    assert_eq!(stdout_json(&out)["progress"]["done"], 100);

    let (status, _) = post(&c, &format!("/api/jobs/{id}/stop")).await;
    assert_eq!(status, 200);
    let late = c.wait_job_until(&id, Duration::from_secs(5), |j| j["duplicates_ignored"] == 1).await;
    assert_eq!(late["state"], "STOPPED");
    assert_eq!(late["progress"]["done"], 100, "the record keeps where the job stopped: {late}");
    worker.drain().await;
    c.finish().await;
}
