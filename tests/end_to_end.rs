//! A job through the whole pipeline on the real services, driven the way a user
//! drives it: the `offloader` command line against a leader and a worker.

mod common;

use common::cluster::{random_file, stdout_json, worker_of, Cluster, Tap};
use common::schema::assert_valid;
use offloader::datastore::hash_file;
use serde_json::Value;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_10_mib_input_goes_end_to_end_by_reference() {
    let mut c = Cluster::new().await;
    c.start_leader(&[]).await;
    let _worker = c.start_worker("w1", &[]).await;
    let broker = c.broker().await;
    let tap = Tap::new(&c.amqp, &broker.names().jobs_exchange(), "#").await;
    let input = random_file(c.dir.path(), "clip.mov", 10 << 20);
    let path = input.to_str().unwrap();

    let out = c
        .command(&[
            "submit",
            "--topic",
            "offloader/echo",
            "--prop",
            "preset=web",
            "--input",
            path,
            "--wait",
            "--timeout",
            "60s",
        ])
        .output()
        .expect("running offloader submit");
    let job = stdout_json(&out);
    assert!(out.status.success(), "submit --wait failed: {job}\n{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(job["state"], "SUCCEEDED");
    assert_eq!(job["result"]["status"], "OK");
    assert_eq!(job["attempt"], 1);
    assert_eq!(worker_of(&job), "w1");
    assert_eq!(job["properties"]["preset"], "web");
    assert_eq!(job["properties"]["offloading.input.payload"], "/clip.mov");
    assert_eq!(job["inputs"][0]["mime_type"], "video/quicktime");
    for t in ["created_at", "queued_at", "started_at", "finished_at"] {
        assert!(job[t].is_string(), "{t} missing: {job}");
    }

    // The output blob is the input's content, fetched and verified from the datastore.
    let blob = hash_file(&input).await.expect("hashing the input");
    let output = &job["outputs"][0];
    assert_eq!(output["path"], "/clip.mov.echo");
    assert_eq!(output["blob"]["sha256"], blob.sha256.to_string());
    assert_eq!(output["blob"]["size"], blob.size);
    let bytes = c.store().await.get_bytes(&blob, 11 << 20).await.expect("fetching the output");
    assert_eq!(bytes.as_ref(), std::fs::read(&input).unwrap().as_slice(), "the output differs from the input");

    // Binary-less transport: the job on the wire is a small reference, in the contract's shape.
    let msg = tap.next(Duration::from_secs(5)).await.expect("the job message on the jobs exchange");
    assert!(msg.data.len() < 2048, "the job message is {} bytes", msg.data.len());
    let body: Value = serde_json::from_slice(&msg.data).unwrap();
    assert_valid("offloader.job.v1", &body);
    let props = &msg.properties;
    assert_eq!(props.content_type().as_ref().map(|s| s.as_str()), Some("application/json"));
    assert_eq!(*props.delivery_mode(), Some(2));
    assert_eq!(props.message_id().as_ref().map(|s| s.to_string()), job["id"].as_str().map(String::from));
    assert_eq!(props.kind().as_ref().map(|s| s.as_str()), Some("offloader.job.v1"));
    assert_eq!(msg.routing_key.as_str(), "offloader.echo");

    // One trace per job: the record's trace id travels in the job's `traceparent` header, and
    // the worker logs its run of the job under the same trace id.
    let trace = job["trace"].as_str().expect("the job records its trace");
    let trace_id = trace.split('-').nth(1).expect("a W3C traceparent");
    let header = msg
        .properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get("traceparent").cloned())
        .map(|v| match v {
            lapin::types::AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
            other => format!("{other:?}"),
        })
        .expect("the job message carries a traceparent header");
    assert_eq!(header.split('-').nth(1), Some(trace_id), "{header} vs {trace}");
    let worker_log = _worker.log();
    assert!(
        worker_log.contains(&format!("trace_id={trace_id}")),
        "the worker's log does not name trace {trace_id}:\n{worker_log}"
    );

    // The same input again: nothing new is uploaded.
    let again = c
        .command(&["submit", "--topic", "offloader/echo", "--input", path, "--log-format", "json"])
        .output()
        .expect("running offloader submit");
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "second submit failed: {stderr}");
    assert!(stderr.contains("\"uploaded\":false"), "the second submit uploaded again: {stderr}");
    let id = String::from_utf8_lossy(&again.stdout).trim().to_owned();
    let second = c.wait_job(&id, Duration::from_secs(30)).await;
    assert_eq!(second["state"], "SUCCEEDED");
    assert_eq!(second["outputs"][0]["blob"], job["outputs"][0]["blob"]);
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_exit_status_and_the_job_console_tell_the_outcome() {
    let mut c = Cluster::new().await;
    c.start_leader(&[]).await;
    let _worker = c.start_worker("w1", &[]).await;

    let failed = c
        .command(&[
            "submit",
            "--topic",
            "offloader/fail",
            "--prop",
            "retry=false",
            "--prop",
            "reason=bad asset",
            "--wait",
            "--timeout",
            "60s",
        ])
        .output()
        .unwrap();
    assert_eq!(failed.status.code(), Some(1), "{}", String::from_utf8_lossy(&failed.stderr));
    let job = stdout_json(&failed);
    assert_eq!(job["state"], "ERROR");
    assert_eq!(job["result"]["reason"], "bad asset");

    let retried = c
        .command(&["submit", "--topic", "offloader/fail", "--max-attempts", "3", "--wait", "--timeout", "60s"])
        .output()
        .unwrap();
    let job = stdout_json(&retried);
    assert_eq!(retried.status.code(), Some(1));
    assert_eq!(job["state"], "GIVEN_UP");
    assert_eq!(job["attempt"], 3, "three attempts were made: {job}");

    // A topic nobody consumes: the job waits, and --timeout says so with status 2.
    let waiting = c.command(&["submit", "--topic", "acme/nobody/home", "--wait", "--timeout", "1s"]).output().unwrap();
    assert_eq!(waiting.status.code(), Some(2), "{}", String::from_utf8_lossy(&waiting.stderr));
    assert_eq!(stdout_json(&waiting)["state"], "QUEUED");

    let bad = c.command(&["submit", "--topic", "acme/../etc"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("topic"), "{}", String::from_utf8_lossy(&bad.stderr));

    let listed = c.command(&["job", "list", "--state", "given_up", "--json"]).output().unwrap();
    assert!(listed.status.success());
    let listed = stdout_json(&listed);
    assert_eq!(listed["jobs"].as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed["counts"]["ERROR"], 1);
    assert_eq!(listed["counts"]["QUEUED"], 1);

    let id = job["id"].as_str().unwrap();
    let got = c.command(&["job", "get", id]).output().unwrap();
    assert_eq!(stdout_json(&got)["id"], id);
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_guards_changes_but_not_reads() {
    let mut c = Cluster::new().await;
    c.start_leader(&["--token", "s3cret"]).await;
    let denied =
        c.http.post(c.url("/api/jobs")).json(&serde_json::json!({"topic": "offloader/noop"})).send().await.unwrap();
    assert_eq!(denied.status(), 401);
    let allowed = c
        .http
        .post(c.url("/api/jobs"))
        .bearer_auth("s3cret")
        .json(&serde_json::json!({"topic": "offloader/noop"}))
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), 201);
    let read = c.http.get(c.url("/api/jobs")).send().await.unwrap();
    assert_eq!(read.status(), 200);
    let cli = c.command(&["--token", "s3cret", "submit", "--topic", "offloader/noop"]).output().unwrap();
    assert!(cli.status.success(), "{}", String::from_utf8_lossy(&cli.stderr));
    c.finish().await;
}

/// A worker started before its leader (the usual order when containers come up together) and
/// a job with an input through S3: neither log holds an ERROR or a WARN line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_start_logs_no_error_or_warning() {
    let mut c = Cluster::new().await;
    let worker = c.start_worker("early", &[]).await;
    // Long enough for the worker to try its topics' queues, which no leader declared yet.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    c.start_leader(&[]).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while c.instance("early").await.is_none() {
        assert!(std::time::Instant::now() < deadline, "the leader never saw the early worker");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let input = random_file(c.dir.path(), "photo.jpg", 64 << 10);
    let out = c
        .command(&[
            "submit",
            "--topic",
            "offloader/echo",
            "--input",
            input.to_str().unwrap(),
            "--wait",
            "--timeout",
            "60s",
        ])
        .output()
        .expect("running offloader submit");
    let job = stdout_json(&out);
    assert_eq!(job["state"], "SUCCEEDED", "{job}");
    let leader_log = c.leader.as_ref().map(|l| l.log()).unwrap_or_default();
    for (who, log) in [("worker", worker.log()), ("leader", leader_log)] {
        let loud: Vec<&str> = log.lines().filter(|l| l.contains(" ERROR ") || l.contains(" WARN ")).collect();
        assert!(loud.is_empty(), "the {who} logged errors or warnings on a healthy start:\n{}", loud.join("\n"));
    }
    c.finish().await;
}
