//! The dead-letter queue on the real services: a message a worker refused and a job RabbitMQ
//! dead-lettered itself are listed with why and where they were going; one is discarded, the
//! other replayed and then processed; `dead replay --all` sends every one back where it was going.

mod common;

use common::cluster::{raw_channel, stdout_json, Cluster};
use lapin::options::{BasicGetOptions, BasicNackOptions, BasicPublishOptions};
use lapin::BasicProperties;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

async fn dead_list(c: &Cluster) -> Vec<Value> {
    let out = c.command(&["dead", "list", "--json"]).output().expect("offloader dead list");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    stdout_json(&out)["dead_letters"].as_array().cloned().unwrap_or_default()
}

/// The dead letters once there are `n` of them.
async fn wait_dead(c: &Cluster, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let list = dead_list(c).await;
        if list.len() >= n {
            return list;
        }
        assert!(Instant::now() < deadline, "expected {n} dead letters, have {list:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_listed_shown_discarded_and_replayed() {
    let mut c = Cluster::new().await;
    c.start_leader(&[]).await;
    let w1 = c.start_worker("w1", &[]).await;
    let w1_id = c.instance("w1").await.expect("w1 in the topology")["id"].as_str().unwrap().to_owned();
    let ns = c.namespace.clone();
    let ch = raw_channel(&c.amqp).await;

    // 1. A worker refuses a message that is not a job: dead-lettered with the reason.
    let noop = c.submit("offloader/noop", json!({})).await;
    c.wait_job(noop["id"].as_str().unwrap(), Duration::from_secs(20)).await;
    let garbage = b"this is not a job".to_vec();
    ch.basic_publish(
        format!("{ns}.jobs").as_str().into(),
        "offloader.noop".into(),
        BasicPublishOptions::default(),
        &garbage,
        BasicProperties::default().with_message_id("garbage-1".into()),
    )
    .await
    .unwrap()
    .await
    .unwrap();

    // 2. A job of a topic nobody consumes yet, refused at its queue: RabbitMQ dead-letters it.
    let job = c.submit("acme/later", json!({"n": 1})).await;
    let job_id = job["id"].as_str().unwrap().to_owned();
    let queue = format!("{ns}.jobs.acme.later");
    let got = loop {
        if let Some(m) = ch.basic_get(queue.as_str().into(), BasicGetOptions { no_ack: false }).await.unwrap() {
            break m;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    got.delivery.acker.nack(BasicNackOptions { multiple: false, requeue: false }).await.unwrap();

    let list = wait_dead(&c, 2).await;
    assert_eq!(list.len(), 2, "{list:?}");
    let refused = list.iter().find(|d| d["message_id"] == "garbage-1").expect("the refused message");
    assert!(refused["reason"].as_str().unwrap().contains("not JSON"), "{refused}");
    assert_eq!(refused["routing_key"], "offloader.noop");
    assert_eq!(refused["topic"], "offloader/noop");
    assert_eq!(refused["worker"], w1_id.as_str());
    assert_eq!(refused["preview"], "this is not a job");
    assert_eq!(refused["size"], garbage.len());
    assert!(refused["dead_at"].is_string(), "{refused}");
    let rejected = list.iter().find(|d| d["message_id"] == job_id.as_str()).expect("the rejected job");
    assert!(rejected["reason"].as_str().unwrap().contains("rejected"), "{rejected}");
    assert_eq!(rejected["routing_key"], "acme.later");
    assert_eq!(rejected["topic"], "acme/later");
    assert_eq!(rejected["kind"], "offloader.job.v1");
    assert!(rejected["preview"].as_str().unwrap().contains(&job_id), "{rejected}");

    // Shown one by one (still there afterwards), over the API and the CLI.
    let refused_id = refused["id"].as_str().unwrap().to_owned();
    let resp = c.http.get(c.url(&format!("/api/dead-letters/{refused_id}"))).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let mut shown: Value = resp.json().await.unwrap();
    // Reading the queue returns its messages to it, which RabbitMQ counts as a delivery.
    assert!(shown["delivery_count"].as_u64() > refused["delivery_count"].as_u64(), "{shown}");
    shown["delivery_count"] = refused["delivery_count"].clone();
    assert_eq!(shown, *refused);
    let out = c.command(&["dead", "show", &refused_id]).output().unwrap();
    assert_eq!(stdout_json(&out)["id"], refused_id.as_str());

    // Discarded: gone.
    let out = c.command(&["dead", "discard", &refused_id]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let resp = c.http.get(c.url(&format!("/api/dead-letters/{refused_id}"))).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    assert!(resp.json::<Value>().await.unwrap()["error"].is_string());

    // Replayed once a worker serves the topic: processed, and out of the dead queue.
    drop(w1);
    let _w2 = c.start_worker("w2", &["--consume", "acme/later=noop"]).await;
    let out = c.command(&["dead", "replay", rejected["id"].as_str().unwrap()]).output().unwrap();
    let replayed = stdout_json(&out);
    assert!(out.status.success(), "{replayed}");
    assert_eq!(replayed["message_id"], job_id.as_str());
    let done = c.wait_job(&job_id, Duration::from_secs(20)).await;
    assert_eq!(done["state"], "SUCCEEDED", "{done}");
    assert_eq!(done["worker"]["name"], "w2");
    assert!(dead_list(&c).await.is_empty());
    let resp = c.http.post(c.url(&format!("/api/dead-letters/{refused_id}/replay"))).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 404);

    // Replay all, from the command line: a job dead-lettered at the queue of a topic nobody
    // consumes goes back to that queue.
    let waiting = c.submit("acme/none", json!({})).await["id"].as_str().unwrap().to_owned();
    c.also_delete("acme/none");
    let queue = format!("{ns}.jobs.acme.none");
    let got = loop {
        if let Some(m) = ch.basic_get(queue.as_str().into(), BasicGetOptions { no_ack: false }).await.unwrap() {
            break m;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    got.delivery.acker.nack(BasicNackOptions { multiple: false, requeue: false }).await.unwrap();
    wait_dead(&c, 1).await;
    let out = c.command(&["dead", "replay", "--all"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 replayed, 0 not"), "{out:?}");
    assert!(dead_list(&c).await.is_empty());
    let back = ch.basic_get(queue.as_str().into(), BasicGetOptions { no_ack: false }).await.unwrap();
    let back = back.expect("the replayed job back in its queue");
    assert_eq!(back.delivery.properties.message_id().as_ref().map(|m| m.to_string()), Some(waiting));
    c.finish().await;
}
