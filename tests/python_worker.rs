//! A worker written in another language from `docs/protocol.md` alone
//! (`examples/python-worker`, pika and boto3) takes part in a real cluster: it runs jobs, shows
//! in the topology, obeys live topic changes, dead-letters what it cannot read, and drains on
//! SIGTERM. Its venv is made by `scripts/services`.

mod common;

use common::cluster::{random_file, raw_channel, stdout_json, Cluster};
use serde_json::{json, Value};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const TOPIC: &str = "acme/upper";

fn python() -> String {
    std::env::var("OFFLOADER_EXAMPLES_PYTHON").unwrap_or_else(|_| {
        panic!("OFFLOADER_EXAMPLES_PYTHON is not set: run the tests through scripts/test, or eval \"$(scripts/services)\" first (it makes the example's venv)")
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_worker_takes_part_in_a_cluster() {
    let mut c = Cluster::new().await;
    c.start_leader(&[]).await;
    c.also_delete(TOPIC);
    let mut cmd = Command::new(python());
    cmd.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/python-worker/worker.py"))
        .args(["--topic", TOPIC, "--name", "py1"])
        .env("OFFLOADER_NAMESPACE", &c.namespace)
        .env("OFFLOADER_AMQP_URL", &c.amqp)
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null());
    let mut py = c.spawn_program("py1", cmd);
    let deadline = Instant::now() + Duration::from_secs(30);
    while c.instance("py1").await.is_none() {
        assert!(py.is_running(), "the Python worker exited; log:\n{}", py.log());
        assert!(Instant::now() < deadline, "the leader did not see py1 within 30 s; log:\n{}", py.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A job through the CLI: the output is the input, upper-cased, in the datastore.
    let input = c.dir.path().join("fox.txt");
    std::fs::write(&input, "the quick brown fox\n").unwrap();
    let out = c
        .command(&["submit", "--topic", TOPIC, "--input", input.to_str().unwrap(), "--wait", "--timeout", "60s"])
        .output()
        .unwrap();
    let job = stdout_json(&out);
    assert!(out.status.success(), "{job}\n{}\npython log:\n{}", String::from_utf8_lossy(&out.stderr), py.log());
    assert_eq!(job["worker"]["name"], "py1", "{job}");
    assert_eq!(job["output_properties"]["uppered"], 1, "{job}");
    let output: offloader::protocol::BlobRef = serde_json::from_value(job["outputs"][0]["blob"].clone()).unwrap();
    let bytes = c.store().await.get_bytes(&output, 1 << 20).await.unwrap();
    assert_eq!(bytes.as_ref(), b"THE QUICK BROWN FOX\n");

    // Live enablement: disabled, a job waits; enabled again, it runs.
    c.wait_consuming("py1", TOPIC, true).await;
    let view = c.change_topic("disable", TOPIC, "py1").await;
    assert!(
        view["consumers"].as_array().unwrap().iter().any(|x| x["topic"] == TOPIC && x["state"] == "disabled"),
        "{view}"
    );
    c.wait_queue_consumers(TOPIC, 0).await;
    let file = random_file(c.dir.path(), "later.bin", 500);
    let blob = c.store().await.put_file(&file).await.unwrap().blob;
    let waiting = c.submit_with(json!({"topic": TOPIC, "inputs": [{"path": "/later.bin", "blob": blob}]})).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(c.job(waiting["id"].as_str().unwrap()).await["state"], "QUEUED");
    c.change_topic("enable", TOPIC, "py1").await;
    let done = c.wait_job(waiting["id"].as_str().unwrap(), Duration::from_secs(30)).await;
    assert_eq!(done["state"], "SUCCEEDED", "{done}");

    // A body it cannot read goes to the dead-letter queue with the reason; it goes on.
    let ch = raw_channel(&c.amqp).await;
    let queue = format!("{}.jobs.{}", c.namespace, TOPIC.replace('/', "."));
    ch.basic_publish(
        "".into(),
        queue.as_str().into(),
        lapin::options::BasicPublishOptions::default(),
        b"{not json",
        lapin::BasicProperties::default(),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    let dead = format!("{}.dead", c.namespace);
    let deadline = Instant::now() + Duration::from_secs(15);
    let reason = loop {
        let got = ch.basic_get(dead.as_str().into(), lapin::options::BasicGetOptions { no_ack: true }).await.unwrap();
        if let Some(m) = got {
            let headers = m.delivery.properties.headers().clone().unwrap_or_default();
            let reason = headers.inner().get("x-offloader-reason").map(|v| format!("{v:?}")).unwrap_or_default();
            break reason;
        }
        assert!(Instant::now() < deadline, "nothing reached {dead}; python log:\n{}", py.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(!reason.is_empty(), "the dead letter carries no reason");
    let after = c.submit_with(json!({"topic": TOPIC, "inputs": [{"path": "/again.bin", "blob": blob}]})).await;
    let after: Value = c.wait_job(after["id"].as_str().unwrap(), Duration::from_secs(30)).await;
    assert_eq!(after["state"], "SUCCEEDED", "{after}");

    // SIGTERM: it finishes what it holds and exits successfully.
    let status = py.terminate(Duration::from_secs(20));
    assert!(status.success(), "{status}; log:\n{}", py.log());
    c.finish().await;
}
