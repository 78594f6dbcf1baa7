//! Routing jobs to workers by topic on real processes: wildcard and exact
//! consumer patterns on overlapping topics, topics nobody consumes yet, and
//! topics that are not topics at all.

mod common;

use common::cluster::{worker_of, Cluster};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const TRANSCODE: &str = "acme/video/transcode";
const THUMB: &str = "acme/video/thumb";
const MIX: &str = "acme/audio/mix";
const JOB_TIMEOUT: Duration = Duration::from_secs(20);
/// Long enough for a consuming worker to have taken and finished a job.
const NOTHING_HAPPENS: Duration = Duration::from_millis(1500);

/// The `acme/...` topic queues the instance consumes (besides its built-ins).
fn consuming(instance: &Value) -> BTreeSet<&str> {
    instance["consuming"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).filter(|t| t.starts_with("acme/")).collect())
        .unwrap_or_default()
}

/// Checks that a job ran once, on its first delivery, with no stray completion.
fn assert_ran_once(job: &Value) {
    assert_eq!(job["state"], "SUCCEEDED", "{job}");
    assert_eq!(job["completions_applied"], 1, "{job}");
    assert_eq!(job["duplicates_ignored"], 0, "the job ran more than once: {job}");
    assert_eq!(job["attempt"], 1, "{job}");
    assert_eq!(job["redeliveries"], 0, "{job}");
    assert_eq!(job["output_properties"]["echoed"], 0, "the echo consumer ran it: {job}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_wildcard_and_exact_consumers_run_each_job_once() {
    let mut c = Cluster::new().await;
    c.start_leader(&[]).await;
    let _a = c.start_worker("A", &["--consume", "acme/**=echo"]).await;
    let _b = c.start_worker("B", &["--consume", "acme/video/transcode=echo", "--consume", "acme/video/*=echo"]).await;
    let b = c.instance("B").await.unwrap();
    let patterns: BTreeSet<&str> =
        b["consumers"].as_array().unwrap().iter().filter_map(|c| c["topic"].as_str()).collect();
    assert!(patterns.contains(TRANSCODE) && patterns.contains("acme/video/*"), "{b}");

    // None of these topics existed when the workers started: the first job of
    // each declares its queue, and the wildcard consumers find it from the
    // leader's announcement.
    let mut ids: Vec<(String, String)> = Vec::new();
    for topic in [TRANSCODE, THUMB, MIX] {
        let rec = c.submit(topic, json!({})).await;
        ids.push((topic.to_owned(), rec["id"].as_str().unwrap().to_owned()));
    }
    for (_, id) in &ids {
        assert_ran_once(&c.wait_job(id, JOB_TIMEOUT).await);
    }
    // Both workers are attached to the video queues; only A to the audio one.
    c.wait_queue_consumers(TRANSCODE, 2).await;
    c.wait_queue_consumers(THUMB, 2).await;
    c.wait_queue_consumers(MIX, 1).await;
    let a = c.instance("A").await.unwrap();
    assert_eq!(consuming(&a), BTreeSet::from([MIX, THUMB, TRANSCODE]), "{a}");
    let b = c.instance("B").await.unwrap();
    assert_eq!(consuming(&b), BTreeSet::from([THUMB, TRANSCODE]), "{b}");

    for i in 0..30 {
        let topic = [TRANSCODE, THUMB, MIX][i % 3];
        let rec = c.submit(topic, json!({ "n": i })).await;
        ids.push((topic.to_owned(), rec["id"].as_str().unwrap().to_owned()));
    }
    let mut ran: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (topic, id) in &ids {
        let job = c.wait_job(id, JOB_TIMEOUT).await;
        assert_ran_once(&job);
        assert_eq!(job["topic"], topic.as_str());
        *ran.entry((topic.clone(), worker_of(&job).to_owned())).or_default() += 1;
        if topic == MIX {
            assert_eq!(worker_of(&job), "A", "only A consumes {MIX}: {job}");
        }
    }
    // The video jobs were shared by the competing consumers.
    let video_workers: BTreeSet<&str> =
        ran.keys().filter(|(t, _)| t.starts_with("acme/video/")).map(|(_, w)| w.as_str()).collect();
    assert_eq!(video_workers, BTreeSet::from(["A", "B"]), "{ran:?}");

    // A late duplicate would show up as an ignored completion: there is none.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    for (_, id) in &ids {
        let job = c.job(id).await;
        assert_ran_once(&job);
    }
    for topic in [TRANSCODE, THUMB, MIX] {
        assert_eq!(c.queue(topic).await["messages"], 0, "{topic}");
    }
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_nobody_consumes_waits_until_a_consumer_starts() {
    let mut c = Cluster::new().await;
    c.start_leader(&[]).await;
    // A worker with only the built-ins: it does not consume acme/late/*.
    let _a = c.start_worker("A", &[]).await;
    let rec = c.submit("acme/late/job", json!({})).await;
    assert_eq!(rec["state"], "QUEUED", "{rec}");
    let id = rec["id"].as_str().unwrap();

    tokio::time::sleep(NOTHING_HAPPENS).await;
    let job = c.job(id).await;
    assert_eq!(job["state"], "QUEUED", "{job}");
    assert!(job["worker"].is_null(), "{job}");
    let q = c.queue("acme/late/job").await;
    assert_eq!(q["messages"], 1, "the job waits visibly in its queue: {q}");
    assert_eq!(q["consumers"], 0, "{q}");
    assert!(!consuming(&c.instance("A").await.unwrap()).contains("acme/late/job"));

    let _b = c.start_worker("B", &["--consume", "acme/late/*=noop"]).await;
    let job = c.wait_job(id, JOB_TIMEOUT).await;
    assert_eq!(job["state"], "SUCCEEDED", "{job}");
    assert_eq!(worker_of(&job), "B", "{job}");
    assert_eq!(job["completions_applied"], 1, "{job}");
    assert_eq!(job["attempt"], 1, "{job}");
    assert_eq!(c.queue("acme/late/job").await["messages"], 0);
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_topic_is_refused_with_a_clear_error() {
    let mut c = Cluster::new().await;
    c.start_leader(&[]).await;
    let long = "a/".repeat(120) + "b";
    let cases: Vec<(Value, &str)> = vec![
        (json!({"topic": "acme/../etc"}), "segment \"..\""),
        (json!({"topic": "acme//video"}), "empty segment"),
        (json!({"topic": "/acme/video"}), "empty segment"),
        (json!({"topic": ""}), "topic is empty"),
        (json!({"topic": "acme/video/*"}), "segment \"*\""),
        (json!({"topic": "acme/vidéo"}), "may only contain"),
        (json!({"topic": long}), "longer than 200 bytes"),
        (json!({"topic": 42}), "invalid job request"),
        (json!({"properties": {}}), "missing field `topic`"),
        (json!({"topic": "acme/video", "priority": 1}), "unknown field `priority`"),
    ];
    for (body, expected) in cases {
        let resp = c.http.post(c.url("/api/jobs")).json(&body).send().await.unwrap();
        assert_eq!(resp.status(), 400, "{body}");
        let answer: Value = resp.json().await.expect("the error is JSON");
        let error = answer["error"].as_str().unwrap_or_else(|| panic!("no error message: {answer}"));
        assert!(error.contains(expected), "for {body}: {error:?} does not say {expected:?}");
        let topic_error = !expected.contains('`') && !expected.starts_with("invalid");
        if let Some(topic) = body["topic"].as_str().filter(|t| topic_error && !t.is_empty() && t.len() < 50) {
            assert!(error.contains(topic), "the error names the topic {topic:?}: {error:?}");
        }
    }
    let resp = c
        .http
        .post(c.url("/api/jobs"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let answer: Value = resp.json().await.unwrap();
    assert!(answer["error"].as_str().is_some_and(|e| e.contains("invalid job request")), "{answer}");

    // Nothing was recorded, and no queue was declared.
    let list: Value = c.http.get(c.url("/api/jobs")).send().await.unwrap().json().await.unwrap();
    assert_eq!(list["jobs"], json!([]), "{list}");
    let report = c.topics_report().await;
    assert_eq!(report["topics"], json!([]), "{report}");
    // A good topic still works.
    let rec = c.submit("acme/video", json!({})).await;
    assert_eq!(rec["state"], "QUEUED");
    c.finish().await;
}
