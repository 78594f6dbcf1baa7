//! Jobs as in Sling, through a real leader process: findJobs over HTTP and the CLI (and its
//! refusals), statistics on the API, the CLI and `/metrics`, retention that purges old
//! finished jobs and never others, and a schedule that fires once per due time across a leader
//! restart.

mod common;

use common::cluster::{stdout_json, Cluster};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

async fn get(c: &Cluster, path: &str) -> (u16, Value) {
    let resp = c.http.get(c.url(path)).send().await.expect("GET");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("a JSON answer"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn find_statistics_and_retention_on_a_live_leader() {
    let mut c = Cluster::new().await;
    c.also_delete("t/ret");
    c.also_delete("t/other");
    c.start_leader(&["--keep-jobs", "1s"]).await;
    // No worker: jobs stay QUEUED unless stopped, which makes them final (STOPPED).
    let mut ids = Vec::new();
    for (topic, size) in [("t/ret", 5), ("t/ret", 150), ("t/ret", 500), ("t/other", 150)] {
        let job = c.submit(topic, json!({"size": size, "color": "red"})).await;
        ids.push(job["id"].as_str().expect("an id").to_owned());
    }
    // findJobs: kind, pattern and templates, over HTTP and the CLI.
    let (status, list) = get(&c, "/api/jobs?kind=QUEUED&topic=t/*&where=size>=100,color=red&where=size=5").await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["jobs"].as_array().map(Vec::len), Some(4), "{list}");
    let (_, list) = get(&c, "/api/jobs?topic=t/ret&where=size>100&where=size<=5&limit=2").await;
    assert_eq!(list["jobs"].as_array().map(Vec::len), Some(2), "{list}");
    let cursor = list["next_cursor"].as_str().expect("a next page").to_owned();
    let (_, rest) =
        get(&c, &format!("/api/jobs?topic=t/ret&where=size>100&where=size<=5&limit=2&cursor={cursor}")).await;
    assert_eq!(rest["jobs"].as_array().map(Vec::len), Some(1), "{rest}");
    for bad in [
        "/api/jobs?bogus=1",
        "/api/jobs?where=size",
        "/api/jobs?kind=DONE",
        "/api/jobs?limit=2&limit=3",
        "/api/jobs?created_after=yesterday",
        "/api/jobs?cursor=x",
    ] {
        let (status, body) = get(&c, bad).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()), "{bad}: {body}");
    }
    let out = c
        .command(&["job", "list", "--json", "--kind", "queued", "--topic", "t/**", "--where", "size>=150,color=red"])
        .output()
        .expect("offloader job list");
    let found = stdout_json(&out);
    assert_eq!(found["jobs"].as_array().map(Vec::len), Some(3), "{found}");

    // Two stopped (final), one left queued: retention of one second purges the two only.
    for id in &ids[..2] {
        let resp = c.http.post(c.url(&format!("/api/jobs/{id}/stop"))).send().await.expect("stop");
        assert!(resp.status().is_success());
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let gone = [&ids[0], &ids[1]];
        let mut statuses = Vec::new();
        for id in gone {
            statuses.push(get(&c, &format!("/api/jobs/{id}")).await.0);
        }
        if statuses.iter().all(|s| *s == 404) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "stopped jobs not purged: {statuses:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    for id in &ids[2..] {
        let (status, job) = get(&c, &format!("/api/jobs/{id}")).await;
        assert_eq!((status, job["state"].as_str()), (200, Some("QUEUED")), "a job that is not final was purged");
    }
    // The statistics still count the purged jobs, on the API, the CLI and /metrics.
    let (status, stats) = get(&c, "/api/stats?topic=t/ret").await;
    assert_eq!(status, 200, "{stats}");
    let ret = &stats["topics"]["t/ret"];
    assert_eq!(
        (ret["cancelled"].as_u64(), ret["queued"].as_u64(), ret["processed"].as_u64()),
        (Some(2), Some(1), Some(2)),
        "{stats}"
    );
    assert!(stats["topics"].get("t/other").is_none(), "{stats}");
    let out = c.command(&["stats"]).output().expect("offloader stats");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && table.contains("t/ret") && table.contains("t/other"), "{table}");
    let metrics = c.http.get(c.url("/metrics")).send().await.expect("GET /metrics").text().await.expect("text");
    assert!(metrics.contains("offloader_jobs_cancelled{topic=\"t/ret\"} 2"), "{metrics}");
    assert!(metrics.contains("offloader_jobs_queued{topic=\"t/other\"} 1"), "{metrics}");
    assert!(metrics.trim_end().ends_with("# EOF"), "OpenMetrics' end marker must stay last");
    c.finish().await;
}

/// The due times of the jobs a schedule created, as RFC 3339 texts.
async fn due_times(c: &Cluster, schedule: &str) -> Vec<String> {
    let (status, list) = get(c, &format!("/api/jobs?limit=10000&where=scheduled.id=\"{schedule}\"")).await;
    assert_eq!(status, 200, "{list}");
    list["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| j["properties"]["scheduled.due"].as_str().expect("a due time").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_fires_once_per_due_time_across_a_leader_restart() {
    let mut c = Cluster::new().await;
    c.also_delete("t/sched");
    c.start_leader(&[]).await;
    let out = c
        .command(&["schedule", "add", "t/sched", "--cron", "* * * * * *", "--properties", r#"{"k": 1}"#])
        .output()
        .expect("offloader schedule add");
    let schedule = stdout_json(&out);
    let id = schedule["id"].as_str().expect("a schedule id").to_owned();
    tokio::time::sleep(Duration::from_millis(3500)).await;
    // A restart: the leader stops, a new one starts on the same ledger a moment later.
    let status = c.leader.as_mut().expect("the leader").terminate(Duration::from_secs(20));
    assert!(status.success(), "the leader stopped badly: {status:?}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    c.start_leader(&[]).await;
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let out = c.command(&["schedule", "remove", &id]).output().expect("offloader schedule remove");
    let removed = stdout_json(&out);
    let dues = due_times(&c, &id).await;
    let unique: BTreeSet<&String> = dues.iter().collect();
    assert_eq!(unique.len(), dues.len(), "a due time fired twice: {dues:?}");
    assert!(dues.len() >= 6, "too few due times fired: {dues:?}");
    // Every second from the first due time to the last, including those missed while no
    // leader ran (fired late, once), and none skipped.
    let secs: Vec<i64> =
        unique.iter().map(|d| chrono::DateTime::parse_from_rfc3339(d).expect("RFC 3339").timestamp()).collect();
    let span = secs.last().expect("one") - secs.first().expect("one") + 1;
    assert_eq!(span as usize, secs.len(), "a due time was skipped: {dues:?}");
    assert_eq!(removed["fired"].as_u64(), Some(dues.len() as u64), "{removed}");
    let (_, left) = get(&c, "/api/schedules").await;
    assert_eq!(left["schedules"].as_array().map(Vec::len), Some(0), "{left}");
    c.finish().await;
}
