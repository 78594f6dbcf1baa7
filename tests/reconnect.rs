//! RabbitMQ connections that drop (a broker restart, a network blip, an operator
//! closing them) are re-established with backoff, consumers resume, and nothing
//! is lost. Connections are closed through RabbitMQ's management API, which
//! `scripts/services` enables, so other tests sharing the broker are not disturbed.

mod common;

use common::cluster::{worker_of, Cluster};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const MANAGEMENT: &str = "http://127.0.0.1:15672/api";

/// Closes every AMQP connection opened by the processes with these pids; returns the pids
/// that had one.
async fn close_connections_of(http: &reqwest::Client, pids: &[u32]) -> BTreeSet<u32> {
    let resp = http.get(format!("{MANAGEMENT}/connections")).basic_auth("guest", Some("guest")).send().await;
    let connections: Vec<Value> = match resp {
        Ok(r) if r.status().is_success() => r.json().await.expect("the connection list is JSON"),
        other => {
            panic!("this test needs RabbitMQ's management API at {MANAGEMENT} (scripts/services enables it): {other:?}")
        }
    };
    let mut closed = BTreeSet::new();
    for c in connections {
        let name = c["client_properties"]["connection_name"].as_str().unwrap_or("");
        if let Some(&pid) = pids.iter().find(|pid| name.ends_with(&format!(":{pid}"))) {
            let conn = c["name"].as_str().expect("a connection name");
            let url = format!("{MANAGEMENT}/connections/{}", urlencode(conn));
            let r = http.delete(url).basic_auth("guest", Some("guest")).send().await.expect("DELETE connection");
            assert!(r.status().is_success(), "closing {conn}: {}", r.status());
            closed.insert(pid);
        }
    }
    closed
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_and_worker_ride_out_lost_connections() {
    let mut c = Cluster::new().await;
    c.start_leader(&[]).await;
    let mut worker = c.start_worker("w1", &[]).await;
    let first = c.submit("offloader/noop", json!({})).await;
    let first = c.wait_job(first["id"].as_str().unwrap(), Duration::from_secs(15)).await;
    assert_eq!(first["state"], "SUCCEEDED", "{first}");

    let leader_pid = c.leader.as_mut().expect("the leader runs").pid();
    let pids = [leader_pid, worker.pid()];
    // The management API lists a new connection only after a moment, and a process may hold
    // more than one: keep closing until both processes report that a consumer lost its
    // connection.
    let hit = |log: &str| log.contains("resubscribing");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let leader_log = c.leader.as_ref().expect("the leader runs").log();
        if hit(&worker.log()) && hit(&leader_log) {
            break;
        }
        assert!(Instant::now() < deadline, "consumers did not lose their connections; worker log:\n{}", worker.log());
        close_connections_of(&c.http, &pids).await;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // Both processes reconnect; jobs submitted now run to completion.
    let mut ids = Vec::new();
    for _ in 0..5 {
        let job = c.submit("offloader/noop", json!({})).await;
        ids.push(job["id"].as_str().unwrap().to_owned());
    }
    for id in &ids {
        let job = c.wait_job(id, Duration::from_secs(30)).await;
        assert_eq!(job["state"], "SUCCEEDED", "{job}\nworker log:\n{}", worker.log());
        assert_eq!(worker_of(&job), "w1");
        assert_eq!(job["completions_applied"], 1, "{job}");
    }
    assert!(
        worker.log().contains("resubscribing"),
        "the worker did not notice the lost connection; log:\n{}",
        worker.log()
    );
    assert!(worker.is_running(), "the worker exited; log:\n{}", worker.log());
    assert!(c.leader.as_mut().unwrap().is_running(), "the leader exited");
    c.finish().await;
}
