//! The topology as Sling Discovery keeps it, on real processes: joins and departures in the
//! history, TOPOLOGY_CHANGING → TOPOLOGY_CHANGED after `min_event_delay`, the connector allow
//! list, and `offloader topology`.

mod common;

use chrono::{DateTime, Utc};
use common::cluster::{stdout_json, Cluster};
use serde_json::Value;
use std::time::{Duration, Instant};

async fn topology(c: &Cluster) -> Value {
    let resp = c.http.get(c.url("/api/topology")).send().await.expect("GET /api/topology");
    assert!(resp.status().is_success());
    resp.json().await.unwrap()
}

fn instances(t: &Value) -> Vec<Value> {
    t["clusters"].as_array().unwrap().iter().flat_map(|c| c["instances"].as_array().unwrap().clone()).collect()
}

fn events<'a>(t: &'a Value, kind: &str, name: &str) -> Vec<&'a Value> {
    t["history"].as_array().unwrap().iter().filter(|e| e["kind"] == kind && e["name"] == name).collect()
}

fn at(e: &Value) -> DateTime<Utc> {
    e["at"].as_str().unwrap().parse().unwrap()
}

/// Waits until `pred` holds for the topology.
async fn until(c: &Cluster, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let t = topology(c).await;
        if pred(&t) {
            return t;
        }
        assert!(Instant::now() < deadline, "{what} within 20 s: {t:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_leaves_and_the_topology_settles_after_the_event_delay() {
    let mut c = Cluster::new().await;
    c.start_leader(&["--min-event-delay", "1s"]).await;
    let mut w1 = c.start_worker("w1", &[]).await;
    let settled = until(&c, "w1 joins and the topology settles", |t| {
        t["state"] == "CHANGED" && instances(t).iter().any(|i| i["name"] == "w1")
    })
    .await;
    // The leader is current and elected; the worker joined after it.
    let all = instances(&settled);
    let leader = all.iter().find(|i| i["name"] == "leader").unwrap();
    assert_eq!((leader["current"].as_bool(), leader["leader"].as_bool()), (Some(true), Some(true)), "{leader}");
    assert_eq!(all[0]["name"], "leader", "join order: {all:?}");
    assert_eq!(settled["clusters"][0]["leader"], leader["id"]);
    let joined = events(&settled, "joined", "w1");
    assert_eq!(joined.len(), 1, "{settled:#}");

    // SIGKILL: no goodbye. It leaves after the heartbeat timeout (300 ms heartbeats: 800 ms).
    let killed = Instant::now();
    w1.kill();
    let gone = until(&c, "w1 leaves", |t| !instances(t).iter().any(|i| i["name"] == "w1")).await;
    assert!(killed.elapsed() >= Duration::from_millis(500), "left too early: {:?}", killed.elapsed());
    let left = events(&gone, "left", "w1");
    assert_eq!(left.len(), 1, "{gone:#}");
    // CHANGED follows the last change by at least min_event_delay.
    let changed = until(&c, "the topology settles again", |t| {
        t["state"] == "CHANGED" && t["version"].as_u64() > settled["version"].as_u64()
    })
    .await;
    let last_changed = changed["history"].as_array().unwrap().iter().rev().find(|e| e["kind"] == "changed").unwrap();
    let delay = at(last_changed) - at(events(&changed, "left", "w1")[0]);
    assert!(delay >= chrono::Duration::milliseconds(1000), "CHANGED came {delay} after the departure");
    assert!(delay < chrono::Duration::milliseconds(3000), "CHANGED came {delay} after the departure");
    assert!(c.leader.as_ref().unwrap().log().contains("instance left"), "the leader logs the departure");
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_off_the_allow_list_is_refused_and_listed() {
    let mut c = Cluster::new().await;
    c.start_leader(&["--topology-allow", "leader,w1"]).await;
    let _w1 = c.start_worker("w1", &[]).await;
    // w2 is not on the list: the leader never lets it in (start_worker would wait for it).
    let data = c.data_dir("w2");
    let mut cmd =
        c.command(&["worker", "--name", "w2", "--heartbeat-interval", "300ms", "--data-dir", data.to_str().unwrap()]);
    cmd.stdin(std::process::Stdio::null());
    let _w2 = c.spawn_program("w2", cmd);
    let t = until(&c, "w2 is refused", |t| t["refused"].as_array().unwrap().iter().any(|r| r["name"] == "w2")).await;
    assert!(!instances(&t).iter().any(|i| i["name"] == "w2"), "{t:#}");
    assert!(instances(&t).iter().any(|i| i["name"] == "w1"));
    assert_eq!(t["allow"], serde_json::json!(["leader", "w1"]));
    assert_eq!(events(&t, "refused", "w2").len(), 1);
    let refused = t["refused"].as_array().unwrap().iter().find(|r| r["name"] == "w2").unwrap().clone();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let later = topology(&c).await;
    let again = later["refused"].as_array().unwrap().iter().find(|r| r["name"] == "w2").unwrap();
    assert!(again["announcements"].as_u64() > refused["announcements"].as_u64(), "still refused, still counted");
    assert_eq!(c.leader.as_ref().unwrap().log().matches("announcement refused").count(), 1, "logged once");
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_topology_command_shows_clusters_instances_and_history() {
    let mut c = Cluster::new().await;
    c.start_leader(&[]).await;
    let _w = c.start_worker("w1", &[]).await;
    let out = c.command(&["topology", "--history"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("cluster default"), "{text}");
    let leader_line = text.lines().find(|l| l.trim_start().starts_with("leader ")).unwrap_or_else(|| panic!("{text}"));
    assert!(leader_line.contains("elected leader") && leader_line.contains("current"), "{leader_line}");
    assert!(text.lines().any(|l| l.trim_start().starts_with("w1 ")), "{text}");
    assert!(text.contains("Joined"), "the history is printed: {text}");
    let json = c.command(&["topology", "--json"]).output().unwrap();
    let t = stdout_json(&json);
    assert_eq!(t["clusters"][0]["name"], "default");
    c.finish().await;
}
