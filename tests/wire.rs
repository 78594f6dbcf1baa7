//! What the running processes really put on the wire, checked against the
//! contracts in `schemas/` and the message properties the map requires: jobs,
//! announcements and control commands captured from a live cluster, and a
//! worker's job-started and completion replies read from a reply queue of our own.

mod common;

use chrono::Utc;
use common::cluster::{raw_channel, Cluster, Tap};
use common::schema::{assert_valid, assert_valid_message};
use lapin::message::Delivery;
use lapin::options::{BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Confirmation};
use offloader::broker::Broker;
use offloader::protocol::message::{
    JobMessage, ANNOUNCEMENT_SCHEMA, COMPLETION_SCHEMA, CONTROL_SCHEMA, JOB_SCHEMA, JOB_STARTED_SCHEMA,
};
use offloader::protocol::{Job, JobId, PayloadEntry, Properties, Topic};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};

fn body(d: &Delivery) -> Value {
    serde_json::from_slice(&d.data)
        .unwrap_or_else(|e| panic!("a message is not JSON ({e}): {}", String::from_utf8_lossy(&d.data)))
}

fn kind(d: &Delivery) -> Option<String> {
    d.properties.kind().as_ref().map(|s| s.to_string())
}

fn message_id(d: &Delivery) -> Option<String> {
    d.properties.message_id().as_ref().map(|s| s.to_string())
}

/// Properties every message of ours carries: JSON, and its schema as the `type`.
fn assert_typed(d: &Delivery, schema: &str) {
    assert_eq!(d.properties.content_type().as_ref().map(|s| s.as_str()), Some("application/json"));
    assert_eq!(kind(d).as_deref(), Some(schema), "the AMQP type names the schema");
}

/// Jobs and replies must survive a broker restart.
fn assert_persistent(d: &Delivery) {
    assert_eq!(*d.properties.delivery_mode(), Some(2), "{:?} is not persistent", kind(d));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_announcements_and_control_commands_match_their_schemas() {
    let mut c = Cluster::new().await;
    c.start_leader(&[]).await;
    let broker = c.broker().await;
    let names = broker.names().clone();
    let jobs = Tap::new(&c.amqp, &names.jobs_exchange(), "#").await;
    let announcements = Tap::new(&c.amqp, &names.topology_exchange(), "").await;
    let control = Tap::new(&c.amqp, &names.control_exchange(), "#").await;
    let _w1 = c.start_worker("w1", &[]).await;
    let w1_id = c.instance("w1").await.expect("w1 in the topology")["id"].as_str().unwrap().to_owned();

    // Jobs: one with an input and structured properties, and a failing one whose
    // retry is published again by the leader's republisher (attempt 2).
    let stored = c.store().await.put_bytes(bytes::Bytes::from_static(b"wire test input")).await.unwrap();
    let echo = c
        .submit_with(json!({
            "topic": "offloader/echo",
            "properties": { "preset": { "width": 320, "formats": ["webp"] }, "offloading.input.payload": "/a.jpg" },
            "inputs": [{ "path": "/a.jpg", "blob": stored.blob, "mime_type": "image/jpeg" }],
        }))
        .await;
    let fail = c.submit_with(json!({ "topic": "offloader/fail", "max_attempts": 2 })).await;
    for id in [&echo["id"], &fail["id"]] {
        c.wait_job(id.as_str().unwrap(), Duration::from_secs(15)).await;
    }
    let mut seen: Vec<(String, u64)> = Vec::new();
    while let Some(d) = jobs.next(Duration::from_millis(500)).await {
        let v = body(&d);
        assert_valid(JOB_SCHEMA, &v);
        assert_typed(&d, JOB_SCHEMA);
        assert_persistent(&d);
        assert_eq!(message_id(&d).as_deref(), v["id"].as_str(), "message_id is the job id");
        assert_eq!(d.properties.reply_to().as_ref().map(|s| s.to_string()), Some(names.replies_queue()));
        assert_eq!(v["reply_to"], names.replies_queue());
        let topic: Topic = v["topic"].as_str().unwrap().parse().unwrap();
        assert_eq!(d.routing_key.as_str(), topic.routing_key(), "routed by the job's topic");
        seen.push((v["id"].as_str().unwrap().to_owned(), v["attempt"].as_u64().unwrap()));
    }
    let (echo_id, fail_id) = (echo["id"].as_str().unwrap().to_owned(), fail["id"].as_str().unwrap().to_owned());
    seen.sort();
    let mut expected = vec![(echo_id, 1), (fail_id.clone(), 1), (fail_id, 2)];
    expected.sort();
    assert_eq!(seen, expected, "each job attempt published once");

    // Control commands: a live change through the API goes out as one command.
    let changed = c.change_topic("disable", "offloader/sleep", "w1").await;
    assert!(changed["enablement"]["deny"].as_array().unwrap().iter().any(|p| p == "offloader/sleep"), "{changed}");
    c.change_topic("enable", "offloader/sleep", "w1").await;
    let mut actions = Vec::new();
    while let Some(d) = control.next(Duration::from_millis(500)).await {
        let v = body(&d);
        assert_valid(CONTROL_SCHEMA, &v);
        assert_typed(&d, CONTROL_SCHEMA);
        assert_eq!(d.routing_key.as_str(), w1_id, "keyed by the target's id");
        assert_eq!(v["target"], w1_id.as_str());
        assert_eq!(v["topic"], "offloader/sleep");
        actions.push(v["action"].as_str().unwrap().to_owned());
    }
    assert_eq!(actions, ["disable", "enable"]);

    // Announcements: every one heard so far, the leader's and the worker's,
    // including the worker's after the changes above.
    let mut by_role: HashMap<String, usize> = HashMap::new();
    let mut worker_denied_sleep = false;
    let deadline = Instant::now() + Duration::from_secs(5);
    while let Some(d) = announcements.next(Duration::from_millis(500)).await {
        let v = body(&d);
        assert_valid(ANNOUNCEMENT_SCHEMA, &v);
        assert_typed(&d, ANNOUNCEMENT_SCHEMA);
        let role = v["instance"]["role"].as_str().unwrap().to_owned();
        if role == "worker" {
            assert_eq!(v["instance"]["id"], w1_id.as_str());
            worker_denied_sleep |=
                v["enablement"]["deny"].as_array().is_some_and(|d| d.iter().any(|p| p == "offloader/sleep"));
        }
        *by_role.entry(role).or_default() += 1;
        // Heartbeats never stop: read until both roles and the change were heard.
        if (by_role.len() == 2 && worker_denied_sleep) || Instant::now() > deadline {
            break;
        }
    }
    assert!(by_role.get("leader").is_some_and(|n| *n > 0), "no leader announcement: {by_role:?}");
    assert!(by_role.get("worker").is_some_and(|n| *n > 0), "no worker announcement: {by_role:?}");
    assert!(worker_denied_sleep, "no worker announcement showed the disabled topic");
    broker.close();
    c.finish().await;
}

async fn publish_job(ch: &lapin::Channel, broker: &Broker, msg: &JobMessage) {
    let props = BasicProperties::default()
        .with_content_type("application/json".into())
        .with_delivery_mode(2)
        .with_type(JOB_SCHEMA.into())
        .with_message_id(msg.job.id.to_string().into())
        .with_reply_to(msg.reply_to.as_str().into());
    let confirm = ch
        .basic_publish(
            broker.names().jobs_exchange().into(),
            msg.job.topic.routing_key().into(),
            BasicPublishOptions { mandatory: true, ..Default::default() },
            &serde_json::to_vec(msg).unwrap(),
            props,
        )
        .await
        .expect("basic.publish")
        .await
        .expect("a publisher confirm");
    assert_eq!(confirm, Confirmation::Ack(None), "the job was not routed to its topic queue");
}

fn job(topic: &Topic, properties: Value, inputs: Vec<PayloadEntry>, attempt: u32) -> Job {
    let properties: Properties = serde_json::from_value(properties).unwrap();
    Job { id: JobId::new(), topic: topic.clone(), properties, inputs, attempt, max_attempts: 3, timeout_ms: None }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workers_started_and_completion_replies_match_their_schemas() {
    // No leader: we play its part, so the replies come to a queue we read.
    let c = Cluster::new().await;
    let broker = c.broker().await;
    let setup = broker.setup().await.unwrap();
    setup.declare_exchanges().await.unwrap();
    let echo: Topic = "offloader/echo".parse().unwrap();
    let fail: Topic = "offloader/fail".parse().unwrap();
    for t in [&echo, &fail] {
        setup.declare_topic_queue(t, false).await.unwrap();
    }
    let ch = raw_channel(&c.amqp).await;
    let replies = ch
        .queue_declare("".into(), QueueDeclareOptions { exclusive: true, ..Default::default() }, FieldTable::default())
        .await
        .unwrap()
        .name()
        .to_string();
    ch.confirm_select(ConfirmSelectOptions::default()).await.unwrap();

    let mut w1 = c.start_worker("w1", &["--started-delay", "0"]).await; // every start reported
    let deadline = Instant::now() + Duration::from_secs(15);
    for t in [&echo, &fail] {
        let queue = broker.names().topic_queue(t);
        while broker.queue_depth(&queue).await.unwrap().is_none_or(|d| d.consumers == 0) {
            assert!(Instant::now() < deadline, "w1 does not consume {queue}; log:\n{}", w1.log());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    let stored = c.store().await.put_bytes(bytes::Bytes::from_static(b"reply wire test")).await.unwrap();
    let input = PayloadEntry {
        path: "/content/dam/b.png".into(),
        blob: stored.blob.clone(),
        mime_type: Some("image/png".into()),
    };
    let jobs = [
        job(&echo, json!({ "preset": "web" }), vec![input], 1),
        job(&fail, json!({ "reason": "try later" }), vec![], 2),
        job(&fail, json!({ "retry": false, "reason": "bad asset" }), vec![], 1),
    ];
    for j in &jobs {
        let msg = JobMessage::new(j.clone(), replies.clone(), Utc::now());
        assert_valid(JOB_SCHEMA, &serde_json::to_value(&msg).unwrap());
        publish_job(&ch, &broker, &msg).await;
    }

    // Two replies per job: started, then the completion.
    let mut got: HashMap<(String, String), Value> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while got.len() < 2 * jobs.len() {
        let Some(m) = ch.basic_get(replies.as_str().into(), BasicGetOptions { no_ack: true }).await.unwrap() else {
            assert!(Instant::now() < deadline, "only {} replies after 15 s; w1 log:\n{}", got.len(), w1.log());
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let d = m.delivery;
        let v = body(&d);
        assert_valid_message(&v);
        let schema = v["schema"].as_str().unwrap().to_owned();
        assert!([JOB_STARTED_SCHEMA, COMPLETION_SCHEMA].contains(&schema.as_str()), "unexpected reply {v}");
        assert_typed(&d, &schema);
        assert_persistent(&d);
        assert_eq!(message_id(&d).as_deref(), v["job_id"].as_str(), "message_id is the job id");
        assert_eq!(d.routing_key.as_str(), replies, "sent straight to the job's reply_to queue");
        assert_eq!(v["worker_name"], "w1");
        let previous = got.insert((v["job_id"].as_str().unwrap().to_owned(), schema), v);
        assert!(previous.is_none(), "a reply came twice: {previous:?}");
    }
    let reply = |j: &Job, schema: &str| {
        got.get(&(j.id.to_string(), schema.to_owned()))
            .cloned()
            .unwrap_or_else(|| panic!("no {schema} for {}: {got:?}", j.id))
    };

    for j in &jobs {
        let started = reply(j, JOB_STARTED_SCHEMA);
        assert_eq!((started["attempt"].as_u64(), started["redeliveries"].as_u64()), (Some(j.attempt.into()), Some(0)));
        let done = reply(j, COMPLETION_SCHEMA);
        assert_eq!(done["attempt"], j.attempt, "{done}");
        assert_eq!(done["worker"], started["worker"]);
    }
    let ok = reply(&jobs[0], COMPLETION_SCHEMA);
    assert_eq!(ok["result"], json!({ "status": "OK" }));
    assert_eq!(ok["outputs"][0]["path"], "/content/dam/b.png.echo");
    assert_eq!(ok["outputs"][0]["blob"], serde_json::to_value(&stored.blob).unwrap());
    assert_eq!(ok["properties"]["echoed"], 1);
    assert_eq!(
        reply(&jobs[1], COMPLETION_SCHEMA)["result"],
        json!({ "status": "FAILED", "reason": "try later", "retry": true })
    );
    assert_eq!(reply(&jobs[2], COMPLETION_SCHEMA)["result"], json!({ "status": "CANCEL", "reason": "bad asset" }));

    // Every job was acked after its completion: nothing left to run again.
    for t in [&echo, &fail] {
        let depth = broker.queue_depth(&broker.names().topic_queue(t)).await.unwrap();
        assert_eq!(depth.map(|d| d.messages), Some(0));
    }
    let extra = ch.basic_get(replies.as_str().into(), BasicGetOptions { no_ack: true }).await.unwrap();
    assert!(
        extra.is_none(),
        "an extra reply: {:?}",
        extra.map(|m| String::from_utf8_lossy(&m.delivery.data).into_owned())
    );

    w1.kill();
    let _ = ch.close(200, "done".into()).await;
    // These topic queues were declared here, not through the leader: delete them too.
    broker.delete_namespace(&[echo, fail]).await.unwrap();
    broker.close();
    c.finish().await;
}
