//! Per-instance topic enablement on real processes: Sling's consumer manager
//! allow/deny lists at start, and the Offloading Browser's live Enabled /
//! Disabled / Exclusive switches (HTTP API and `offloader topics`), which a worker
//! keeps across its restart.

mod common;

use common::cluster::{worker_of, Cluster};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const NOOP: &str = "offloader/noop";
const ECHO: &str = "offloader/echo";
const SLEEP: &str = "offloader/sleep";
const FAIL: &str = "offloader/fail";
const JOB_TIMEOUT: Duration = Duration::from_secs(20);
/// Long enough for a consuming worker to have taken and finished a job.
const NOTHING_HAPPENS: Duration = Duration::from_millis(1500);

async fn submit_n(c: &Cluster, topic: &str, props: Value, n: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        let rec = c.submit(topic, props.clone()).await;
        // QUEUED once the broker confirmed it, or further along already.
        assert_ne!(rec["state"], "NEW", "the job was not published: {rec}");
        ids.push(rec["id"].as_str().expect("job id").to_owned());
    }
    ids
}

/// Waits for every job to be final and checks it succeeded exactly once.
async fn wait_succeeded(c: &Cluster, ids: &[String]) -> Vec<Value> {
    let mut jobs = Vec::with_capacity(ids.len());
    for id in ids {
        let job = c.wait_job(id, JOB_TIMEOUT).await;
        assert_eq!(job["state"], "SUCCEEDED", "{job}");
        assert_eq!(job["completions_applied"], 1, "{job}");
        jobs.push(job);
    }
    jobs
}

/// How many jobs each worker ran.
fn per_worker(jobs: &[Value]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for j in jobs {
        *counts.entry(worker_of(j).to_owned()).or_default() += 1;
    }
    counts
}

/// The state the instance view shows for a registered consumer pattern.
fn consumer_state<'a>(instance: &'a Value, pattern: &str) -> &'a str {
    instance["consumers"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["topic"] == pattern))
        .and_then(|c| c["state"].as_str())
        .unwrap_or_else(|| panic!("no consumer {pattern} in {instance}"))
}

fn consuming(instance: &Value) -> Vec<&str> {
    instance["consuming"].as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_denied_at_start_runs_only_where_it_is_enabled() {
    let mut c = Cluster::new().await;
    c.start_leader(&[]).await;
    let _a = c.start_worker("A", &[]).await;
    let _b = c.start_worker("B", &["--deny", SLEEP]).await;

    let b = c.instance("B").await.unwrap();
    assert_eq!(b["enablement"]["deny"], json!([SLEEP]), "{b}");
    assert_eq!(consumer_state(&b, SLEEP), "disabled", "{b}");
    assert_eq!(consumer_state(&b, NOOP), "enabled", "{b}");
    assert!(!consuming(&b).contains(&SLEEP), "{b}");
    let a = c.instance("A").await.unwrap();
    assert_eq!(consumer_state(&a, SLEEP), "enabled", "{a}");

    // B is alive and takes the topics it has enabled...
    let noop = submit_n(&c, NOOP, json!({}), 1).await;
    wait_succeeded(&c, &noop).await;
    c.wait_queue_consumers(NOOP, 2).await;
    // ...but sleep jobs, several at once, all go to A.
    let ids = submit_n(&c, SLEEP, json!({"ms": 100}), 8).await;
    let jobs = wait_succeeded(&c, &ids).await;
    for j in &jobs {
        assert_eq!(worker_of(j), "A", "a sleep job ran on a worker that denies the topic: {j}");
    }
    assert_eq!(c.queue(SLEEP).await["consumers"], 1, "only A consumes the sleep queue");
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_of_a_topic_disabled_everywhere_wait_until_it_is_enabled() {
    let mut c = Cluster::new().await;
    c.start_leader(&[]).await;
    let _a = c.start_worker("A", &[]).await;
    let _b = c.start_worker("B", &[]).await;
    // The queues exist (workers consume what the leader declared) and both workers are attached.
    let mut first = submit_n(&c, ECHO, json!({}), 1).await;
    first.extend(submit_n(&c, NOOP, json!({}), 1).await);
    wait_succeeded(&c, &first).await;
    c.wait_queue_consumers(ECHO, 2).await;
    c.wait_queue_consumers(NOOP, 2).await;

    for name in ["A", "B"] {
        let view = c.change_topic("disable", ECHO, name).await;
        assert_eq!(view["name"], name);
        assert_eq!(consumer_state(&view, ECHO), "disabled", "{view}");
        assert!(view["enablement"]["deny"].as_array().unwrap().contains(&json!(ECHO)), "{view}");
        assert_eq!(consumer_state(&view, NOOP), "enabled", "only the one topic is disabled: {view}");
        // The confirmed view is the state in force: the queue is no longer consumed.
        assert!(!consuming(&view).contains(&ECHO), "{view}");
        assert!(consuming(&view).contains(&NOOP), "{view}");
    }
    // Submitted as soon as the change is confirmed: the change is already in force.
    let ids = submit_n(&c, ECHO, json!({}), 5).await;
    tokio::time::sleep(NOTHING_HAPPENS).await;
    for id in &ids {
        let job = c.job(id).await;
        assert_eq!(job["state"], "QUEUED", "a job of a topic disabled everywhere was taken: {job}");
        assert!(job["worker"].is_null(), "{job}");
    }
    let q = c.queue(ECHO).await;
    assert_eq!(q["messages"], 5, "the jobs wait visibly in their queue: {q}");
    assert_eq!(q["consumers"], 0, "{q}");
    for name in ["A", "B"] {
        assert!(!consuming(&c.instance(name).await.unwrap()).contains(&ECHO));
    }

    // Enabled again on one worker: the waiting jobs run there, each once.
    let view = c.change_topic("enable", ECHO, "B").await;
    assert_eq!(consumer_state(&view, ECHO), "enabled", "{view}");
    assert!(!view["enablement"]["deny"].as_array().unwrap().contains(&json!(ECHO)), "{view}");
    let jobs = wait_succeeded(&c, &ids).await;
    for j in &jobs {
        assert_eq!(worker_of(j), "B", "{j}");
        assert_eq!(j["duplicates_ignored"], 0, "{j}");
        assert_eq!(j["attempt"], 1, "{j}");
    }
    assert_eq!(c.queue(ECHO).await["messages"], 0);
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exclusive_worker_runs_only_its_topic() {
    let mut c = Cluster::new().await;
    c.start_leader(&[]).await;
    let _a = c.start_worker("A", &[]).await;
    // B does not take noop, so every noop job has to go to A.
    let _b = c.start_worker("B", &["--deny", NOOP]).await;
    // Workers consume the queues the leader declared: declare these three first.
    let mut warm = submit_n(&c, NOOP, json!({}), 1).await;
    warm.extend(submit_n(&c, ECHO, json!({}), 1).await);
    warm.extend(submit_n(&c, SLEEP, json!({"ms": 1}), 1).await);
    wait_succeeded(&c, &warm).await;
    c.wait_queue_consumers(NOOP, 1).await;

    let view = c.change_topic("exclusive", NOOP, "A").await;
    assert_eq!(view["enablement"]["exclusive"], NOOP, "{view}");
    assert_eq!(consumer_state(&view, NOOP), "exclusive", "{view}");
    for other in [ECHO, SLEEP, FAIL] {
        assert_eq!(consumer_state(&view, other), "disabled", "{other} on an instance exclusive on noop: {view}");
    }
    assert_eq!(consuming(&view), vec![NOOP], "{view}");
    let a = c.instance("A").await.unwrap();
    assert_eq!(consuming(&a), vec![NOOP], "{a}");
    // The report shows the same, and B is untouched.
    let b = c.instance("B").await.unwrap();
    assert!(b["enablement"]["exclusive"].is_null(), "{b}");
    assert_eq!(consumer_state(&b, ECHO), "enabled", "{b}");
    assert_eq!(consumer_state(&b, NOOP), "disabled", "{b}");

    let echo = submit_n(&c, ECHO, json!({}), 6).await;
    let sleep = submit_n(&c, SLEEP, json!({"ms": 20}), 4).await;
    let noop = submit_n(&c, NOOP, json!({}), 6).await;
    for j in wait_succeeded(&c, &echo).await.iter().chain(&wait_succeeded(&c, &sleep).await) {
        assert_eq!(worker_of(j), "B", "an instance exclusive on noop ran {}: {j}", j["topic"]);
    }
    for j in wait_succeeded(&c, &noop).await {
        assert_eq!(worker_of(&j), "A", "{j}");
    }

    // Enabling another topic leaves exclusive mode.
    let view = c.change_topic("enable", ECHO, "A").await;
    assert!(view["enablement"]["exclusive"].is_null(), "{view}");
    assert_eq!(consumer_state(&view, ECHO), "enabled", "{view}");
    assert_eq!(consumer_state(&view, NOOP), "enabled", "{view}");
    assert!(consuming(&view).contains(&ECHO), "{view}");
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_enabled_on_both_workers_is_shared_round_robin() {
    let mut c = Cluster::new().await;
    c.start_leader(&[]).await;
    let _a = c.start_worker("A", &[]).await;
    let _b = c.start_worker("B", &[]).await;
    let first = submit_n(&c, SLEEP, json!({"ms": 1}), 1).await;
    wait_succeeded(&c, &first).await;
    c.wait_queue_consumers(SLEEP, 2).await;

    let ids = submit_n(&c, SLEEP, json!({"ms": 200}), 10).await;
    let jobs = wait_succeeded(&c, &ids).await;
    let counts = per_worker(&jobs);
    assert_eq!(counts.keys().map(String::as_str).collect::<Vec<_>>(), ["A", "B"], "both workers get jobs: {counts:?}");
    assert!(counts.values().all(|&n| n >= 3), "the jobs are shared roughly evenly: {counts:?}");
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_change_survives_the_worker_restart() {
    let mut c = Cluster::new().await;
    c.start_leader(&[]).await;
    let mut a = c.start_worker("A", &[]).await;
    let mut first = submit_n(&c, SLEEP, json!({"ms": 1}), 1).await;
    first.extend(submit_n(&c, NOOP, json!({}), 1).await);
    for job in wait_succeeded(&c, &first).await {
        assert_eq!(worker_of(&job), "A");
    }
    let before = c.instance("A").await.unwrap();

    let view = c.change_topic("disable", SLEEP, "A").await;
    assert!(!consuming(&view).contains(&SLEEP), "{view}");
    let status = a.terminate(Duration::from_secs(10));
    assert!(status.success(), "A did not stop cleanly: {status}; log:\n{}", a.log());

    // The same name, so the same data dir: the same instance comes back.
    let a = c.start_worker("A", &[]).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let after = loop {
        // The old process's entry may linger, or expire before the new one is heard.
        let now = c.instance("A").await.unwrap_or_default();
        if now["pid"] == a.pid() && now["draining"] == false && consuming(&now).contains(&NOOP) {
            break now;
        }
        assert!(Instant::now() < deadline, "the restarted A is not announced: {now}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(after["id"], before["id"], "a restart keeps the instance id");
    assert_eq!(after["enablement"]["deny"], json!([SLEEP]), "{after}");
    assert_eq!(consumer_state(&after, SLEEP), "disabled", "{after}");
    assert_eq!(consumer_state(&after, ECHO), "enabled", "{after}");
    assert!(!consuming(&after).contains(&SLEEP), "{after}");

    // It still does not take the topic: a new sleep job waits for someone else.
    let ids = submit_n(&c, SLEEP, json!({"ms": 1}), 2).await;
    let noop = submit_n(&c, NOOP, json!({}), 1).await;
    assert_eq!(worker_of(&wait_succeeded(&c, &noop).await[0]), "A", "the restarted A takes other topics");
    tokio::time::sleep(NOTHING_HAPPENS).await;
    for id in &ids {
        assert_eq!(c.job(id).await["state"], "QUEUED");
    }
    assert_eq!(c.queue(SLEEP).await["consumers"], 0);
    let _b = c.start_worker("B", &[]).await;
    for j in wait_succeeded(&c, &ids).await {
        assert_eq!(worker_of(&j), "B", "{j}");
    }
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_topics_command_lists_and_changes_instances() {
    let mut c = Cluster::new().await;
    c.start_leader(&[]).await;
    let _a = c.start_worker("A", &[]).await;
    let _b = c.start_worker("B", &["--deny", SLEEP]).await;
    let ids = submit_n(&c, NOOP, json!({}), 1).await;
    wait_succeeded(&c, &ids).await;
    c.wait_queue_consumers(NOOP, 2).await;

    let out = c.command(&["topics"]).output().expect("running offloader topics");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("INSTANCES") && text.contains("TOPIC QUEUES"), "{text}");
    let line_of = |name: &str| {
        text.lines()
            .find(|l| l.split_whitespace().nth(1) == Some(name))
            .unwrap_or_else(|| panic!("no line for instance {name}:\n{text}"))
            .to_owned()
    };
    assert!(line_of("A").contains("[Worker]"), "{text}");
    assert!(line_of("B").contains("[Worker]"), "{text}");
    assert!(line_of("leader").contains("[Leader]"), "{text}");
    assert!(
        text.lines().any(|l| l.trim_start().starts_with(SLEEP) && l.trim_end().ends_with("Disabled")),
        "B's sleep consumer shows as Disabled:\n{text}"
    );
    let queue_line =
        text.lines().find(|l| l.starts_with(NOOP)).unwrap_or_else(|| panic!("no noop queue line:\n{text}"));
    assert_eq!(queue_line.split_whitespace().collect::<Vec<_>>(), [NOOP, "0", "2"], "{text}");

    let out = c.command(&["topics", "--json"]).output().unwrap();
    assert!(out.status.success());
    let report: Value = serde_json::from_slice(&out.stdout).expect("topics --json prints JSON");
    let mut names: Vec<&str> =
        report["instances"].as_array().unwrap().iter().filter_map(|i| i["name"].as_str()).collect();
    names.sort();
    assert_eq!(names, ["A", "B", "leader"], "{report}");

    let out = c.command(&["topics", "disable", NOOP, "--instance", "A"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        text.lines().any(|l| l.trim_start().starts_with(NOOP) && l.trim_end().ends_with("Disabled")),
        "the command shows the new state:\n{text}"
    );
    let a = c.instance("A").await.unwrap();
    assert_eq!(consumer_state(&a, NOOP), "disabled", "{a}");
    assert!(!consuming(&a).contains(&NOOP), "{a}");
    // Now only B takes noop jobs.
    let ids = submit_n(&c, NOOP, json!({}), 4).await;
    for j in wait_succeeded(&c, &ids).await {
        assert_eq!(worker_of(&j), "B", "{j}");
    }

    let out = c.command(&["topics", "enable", NOOP, "--instance", "nobody"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("404") && err.contains("nobody"), "{err}");
    let out = c.command(&["topics", "enable", "acme/../x", "--instance", "A"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("400") && err.contains("acme/../x"), "{err}");
    c.finish().await;
}
