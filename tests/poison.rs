//! Bad input on the real broker: messages a worker cannot act on are
//! dead-lettered with the reason, a job whose input is gone ends with a clear
//! recorded error, and in every case the worker goes on with the next job.

mod common;

use common::cluster::{raw_channel, worker_of, Cluster};
use lapin::options::{BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::AMQPValue;
use lapin::{BasicProperties, Confirmation};
use offloader::broker::Broker;
use offloader::datastore::{blob_key, DatastoreConfig, Location, S3BlobStore};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Publishes `body` straight to `queue` (default exchange), persistent and
/// confirmed, the way a misbehaving producer would.
async fn publish_raw(amqp: &str, queue: &str, body: &[u8]) {
    let ch = raw_channel(amqp).await;
    ch.confirm_select(ConfirmSelectOptions::default()).await.expect("confirm mode");
    let props = BasicProperties::default().with_delivery_mode(2).with_content_type("application/json".into());
    let confirm = ch
        .basic_publish(
            "".into(),
            queue.into(),
            BasicPublishOptions { mandatory: true, ..Default::default() },
            body,
            props,
        )
        .await
        .expect("basic.publish")
        .await
        .expect("a publisher confirm");
    assert_eq!(confirm, Confirmation::Ack(None), "the broker did not take the message for {queue}");
    let _ = ch.close(200, "published".into()).await;
}

fn header(delivery: &lapin::message::Delivery, name: &str) -> Option<String> {
    match delivery.properties.headers().as_ref()?.inner().get(name)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.to_string()),
        other => Some(format!("{other:?}")),
    }
}

/// Takes `n` messages from the dead-letter queue, waiting up to 10 s for them.
async fn take_dead(amqp: &str, broker: &Broker, n: usize) -> Vec<lapin::message::Delivery> {
    let ch = raw_channel(amqp).await;
    let queue = broker.names().dead_queue();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = Vec::new();
    while got.len() < n {
        match ch.basic_get(queue.as_str().into(), BasicGetOptions { no_ack: true }).await.expect("basic.get") {
            Some(m) => got.push(m.delivery),
            None => {
                assert!(Instant::now() < deadline, "only {} of {n} messages reached {queue} within 10 s", got.len());
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    let _ = ch.close(200, "done".into()).await;
    got
}

async fn ready(broker: &Broker, queue: &str) -> u32 {
    broker.queue_depth(queue).await.expect("a passive declare").map(|d| d.messages).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_messages_are_dead_lettered_with_the_reason_and_the_worker_goes_on() {
    let mut c = Cluster::new().await;
    c.start_leader(&[]).await;
    let mut w1 = c.start_worker("w1", &[]).await;
    let w1_id = c.instance("w1").await.expect("w1 in the topology")["id"].as_str().unwrap().to_owned();
    let broker = c.broker().await;

    // A good job first: the queue exists and w1 consumes it.
    let first = c.submit("offloader/noop", json!({})).await;
    let first = c.wait_job(first["id"].as_str().unwrap(), Duration::from_secs(10)).await;
    assert_eq!(first["state"], "SUCCEEDED", "{first}");
    let queue = broker.names().topic_queue(&"offloader/noop".parse().unwrap());

    let partial = json!({
        "schema": "offloader.job.v1",
        "id": uuid::Uuid::now_v7(),
        "topic": "offloader/noop",
        "properties": {},
    });
    let newer = json!({
        "schema": "offloader.job.v2",
        "id": uuid::Uuid::now_v7(),
        "topic": "offloader/noop",
        "work": {"kind": "noop"},
    });
    // Each bad message, and what its reason must say.
    let poison: Vec<(Vec<u8>, &str)> = vec![
        (b"\x89PNG this is not JSON {".to_vec(), "not JSON"),
        (br#"{"hello": "world"}"#.to_vec(), "JSON but not a valid offloader.job.v1: missing field `schema`"),
        // The first field it lacks, in the order the schema lists them.
        (serde_json::to_vec(&partial).unwrap(), "JSON but not a valid offloader.job.v1: missing field `attempt`"),
        (serde_json::to_vec(&newer).unwrap(), r#"schema "offloader.job.v2", expected offloader.job.v1"#),
    ];
    for (body, _) in &poison {
        publish_raw(&c.amqp, &queue, body).await;
    }

    let dead = take_dead(&c.amqp, &broker, poison.len()).await;
    let by_body: HashMap<&[u8], &lapin::message::Delivery> = dead.iter().map(|d| (d.data.as_slice(), d)).collect();
    for (body, expected) in &poison {
        let d = by_body
            .get(body.as_slice())
            .unwrap_or_else(|| panic!("{:?} was not dead-lettered unchanged", String::from_utf8_lossy(body)));
        let reason = header(d, "x-offloader-reason").expect("a reason header");
        assert!(
            reason.contains(expected),
            "reason {reason:?} for {:?} does not say {expected:?}",
            String::from_utf8_lossy(body)
        );
        assert!(reason.contains("offloader.job.v1"), "reason {reason:?} does not name the expected schema");
        assert_eq!(header(d, "x-offloader-routing-key").as_deref(), Some(queue.as_str()));
        assert_eq!(header(d, "x-offloader-worker").as_deref(), Some(w1_id.as_str()));
        assert_eq!(d.properties.kind().as_ref().map(|k| k.as_str()), Some("offloader.dead-letter"));
        assert_eq!(*d.properties.delivery_mode(), Some(2), "dead letters are kept on disk");
    }
    // Dead-lettered once each: not requeued, not looping through the queue.
    assert_eq!(ready(&broker, &queue).await, 0);
    assert_eq!(ready(&broker, &broker.names().dead_queue()).await, 0, "more dead letters than bad messages");

    // The worker is alive and takes the next job as if nothing happened.
    assert!(w1.is_running(), "w1 died; log:\n{}", w1.log());
    let next = c.submit("offloader/noop", json!({})).await;
    let next = c.wait_job(next["id"].as_str().unwrap(), Duration::from_secs(10)).await;
    assert_eq!((next["state"].as_str(), worker_of(&next)), (Some("SUCCEEDED"), "w1"), "{next}");
    let log = w1.log();
    assert_eq!(log.matches("dead-lettering malformed message").count(), poison.len(), "log:\n{log}");
    // The ledger knows only the two real jobs.
    let listed: Value = c.http.get(c.url("/api/jobs")).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed["jobs"].as_array().map(Vec::len), Some(2), "{listed}");
    broker.close();
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_input_is_gone_from_the_datastore_ends_in_error_with_the_reason() {
    const TOPIC: &str = "acme/poison/missing";
    let mut c = Cluster::new().await;
    c.start_leader(&[]).await;
    let broker = c.broker().await;

    // A real input, accepted by the leader (it checks the blob exists)...
    let store = c.store().await;
    let stored = store.put_bytes(bytes::Bytes::from(format!("gone soon {}", c.namespace))).await.expect("storing");
    let job = c
        .submit_with(json!({
            "topic": TOPIC,
            "inputs": [{ "path": "/content/dam/gone.bin", "blob": stored.blob, "mime_type": "application/octet-stream" }],
        }))
        .await;
    let id = job["id"].as_str().unwrap().to_owned();
    assert_eq!(job["state"], "QUEUED", "no worker consumes {TOPIC} yet: {job}");

    // ...then removed behind everyone's back before a worker takes the job.
    let cfg = DatastoreConfig::from_env(c.namespace.clone());
    let Location::S3 { bucket } = cfg.location().expect("a datastore location") else {
        panic!("this test needs the S3 datastore of scripts/services");
    };
    let s3 = S3BlobStore::open(&cfg, bucket.clone()).await.expect("opening S3");
    s3.client()
        .delete_object()
        .bucket(&bucket)
        .key(blob_key(&c.namespace, &stored.blob.sha256))
        .send()
        .await
        .expect("deleting the input blob");
    assert!(!store.contains(&stored.blob).await.unwrap(), "the blob is still there");

    let mut w1 = c.start_worker("w1", &["--consume", &format!("{TOPIC}=echo")]).await;
    let done = c.wait_job(&id, Duration::from_secs(15)).await;
    // Retrying cannot bring the bytes back: one attempt, a final ERROR, and the
    // reason names the missing blob.
    assert_eq!(done["state"], "ERROR", "{done}\nw1 log:\n{}", w1.log());
    assert_eq!(done["attempt"], 1, "{done}");
    assert_eq!(done["result"]["status"], "CANCEL", "{done}");
    let reason = done["result"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("not found"), "unclear reason {reason:?}");
    assert!(reason.contains(stored.blob.sha256.as_str()), "the reason does not name the blob: {reason:?}");
    assert_eq!(done["completions_applied"], 1, "{done}");
    assert_eq!(worker_of(&done), "w1");
    assert_eq!(done["outputs"].as_array().map(Vec::len), Some(0), "{done}");

    // A well-formed job with a bad input is an error of the job, not poison.
    assert_eq!(ready(&broker, &broker.names().dead_queue()).await, 0);
    let queue = broker.names().topic_queue(&TOPIC.parse().unwrap());
    assert_eq!(ready(&broker, &queue).await, 0);

    // The worker goes on: the same topic with an input that exists succeeds.
    assert!(w1.is_running(), "w1 died; log:\n{}", w1.log());
    let present = store.put_bytes(bytes::Bytes::from_static(b"still here")).await.unwrap();
    let ok = c
        .submit_with(json!({ "topic": TOPIC, "inputs": [{ "path": "/content/dam/here.bin", "blob": present.blob }] }))
        .await;
    let ok = c.wait_job(ok["id"].as_str().unwrap(), Duration::from_secs(10)).await;
    assert_eq!(ok["state"], "SUCCEEDED", "{ok}");
    assert_eq!(ok["outputs"][0]["blob"], serde_json::to_value(&present.blob).unwrap());
    broker.close();
    c.finish().await;
}
