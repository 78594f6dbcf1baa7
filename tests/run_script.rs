//! `scripts/run`, the local cluster a newcomer starts first: its options are used, the
//! addresses it prints are the real ones, and one worker can be stopped and started again
//! while the rest of the cluster keeps working.

mod common;

use common::cluster::{wait_until, Cluster, Proc, BIN};
use serde_json::json;
use std::process::Command;
use std::time::Duration;

/// The processes the script said it started, killed at the end even if the test fails (they
/// run in sessions of their own, so killing the script alone would leave them behind).
struct Started(Vec<u32>);

impl Drop for Started {
    fn drop(&mut self) {
        for pid in &self.0 {
            // SAFETY: a signal to a process this test's script started.
            unsafe { libc::kill(*pid as i32, libc::SIGKILL) };
        }
    }
}

/// `[run] started NAME (pid N)` lines of a script's log: (name, pid).
fn started(log: &str) -> Vec<(String, u32)> {
    log.lines()
        .filter_map(|l| l.strip_prefix("[run] started "))
        .filter_map(|rest| {
            let (name, rest) = rest.split_once(" (pid ")?;
            let pid = rest.split(')').next()?.parse().ok()?;
            Some((name.to_owned(), pid))
        })
        .collect()
}

fn script(c: &Cluster, args: &[&str]) -> Command {
    let mut cmd = Command::new("bash");
    cmd.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/run"))
        .args(args)
        .args(["--namespace", &c.namespace, "--data-dir", c.dir.path().join("state").to_str().expect("utf-8 path")])
        .env("OFFLOADER_BIN", BIN)
        .env("OFFLOADER_AMQP_URL", &c.amqp)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1");
    cmd
}

fn is_gone(pid: u32) -> bool {
    // SAFETY: signal 0 only asks whether the process exists.
    unsafe { libc::kill(pid as i32, 0) != 0 }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_run_takes_its_options_and_a_worker_restarts_alone() {
    let c = Cluster::new().await;
    let port = c.port().to_string();
    let mut run = c.spawn_program("run", script(&c, &["--workers", "2", "--port", &port]));
    let log = || run_log(&c, "run");
    wait_until(
        "both workers joining",
        Duration::from_secs(60),
        || format!("log:\n{}", log()),
        async || c.instance("worker-1").await.is_some() && c.instance("worker-2").await.is_some(),
    )
    .await;
    let printed = log();
    assert!(printed.contains(&format!("console: http://127.0.0.1:{port}/")), "{printed}");
    assert!(printed.contains(&format!("namespace {}", c.namespace)), "{printed}");
    let mut guard = Started(started(&printed).into_iter().map(|(_, pid)| pid).collect());
    let pids = started(&printed);
    assert_eq!(pids.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["leader", "worker-1", "worker-2"]);
    let first_id = c.instance("worker-1").await.expect("worker-1 is up")["id"].clone();

    // Stopping one worker leaves the leader and the other worker running.
    let worker_1 = pids[1].1;
    // SAFETY: a signal to the worker the script started.
    unsafe { libc::kill(worker_1 as i32, libc::SIGTERM) };
    wait_until("worker-1 exiting", Duration::from_secs(60), || format!("log:\n{}", log()), async || is_gone(worker_1))
        .await;
    wait_until(
        "the script reporting worker-1's exit",
        Duration::from_secs(60),
        || format!("log:\n{}", log()),
        async || log().contains("worker-1 exited; the others keep running"),
    )
    .await;
    wait_until(
        "the leader seeing worker-1 leave",
        Duration::from_secs(60),
        || format!("log:\n{}", log()),
        async || c.instance("worker-1").await.is_none(),
    )
    .await;
    assert!(run.is_running(), "the script stopped with worker-1; log:\n{}", log());
    assert!(!is_gone(pids[0].1) && !is_gone(pids[2].1), "the leader or worker-2 stopped too; log:\n{}", log());

    // Started again alone, it rejoins with its state (the same instance id) and takes jobs.
    let mut again = c.spawn_program("again", script(&c, &["worker", "worker-1"]));
    let again_log = || run_log(&c, "again");
    wait_until(
        "worker-1 rejoining",
        Duration::from_secs(60),
        || format!("log:\n{}", again_log()),
        async || c.instance("worker-1").await.is_some_and(|i| i["id"] == first_id),
    )
    .await;
    guard.0.extend(started(&again_log()).into_iter().map(|(_, pid)| pid));
    let job = c.submit("offloader/echo", json!({})).await;
    let done = c.wait_job(job["id"].as_str().expect("a job id"), Duration::from_secs(60)).await;
    assert_eq!(done["state"], "SUCCEEDED", "{done}");

    // SIGTERM to the script stops what it started.
    stop(&mut again);
    stop(&mut run);
    for pid in &guard.0 {
        assert!(is_gone(*pid), "process {pid} outlived its script; log:\n{}", log());
    }
    assert_eq!(guard.0.len(), 4, "leader, two workers and the restarted one");
    let leader_answers = reqwest::get(c.url("/api/health")).await.is_ok();
    assert!(!leader_answers, "the leader still answers after the script stopped");
    c.finish().await;
}

fn run_log(c: &Cluster, name: &str) -> String {
    std::fs::read_to_string(c.dir.path().join(format!("{name}.log"))).unwrap_or_default()
}

/// SIGTERM to a script, which drains and stops its processes within its 10 s (the harness
/// fails the test if it takes longer than 30 s).
fn stop(p: &mut Proc) {
    p.terminate(Duration::from_secs(30));
}
