//! The reference for `offloader-bench pipeline`: the same round trip with nothing but
//! lapin. A persistent job goes through a topic exchange into a durable quorum
//! queue; a consumer publishes a persistent reply with a confirm, then acks the
//! job; the publisher drains the replies. Whatever the pipeline adds on top of
//! this (ledger, JSON, waiters) shows up as the gap between the two figures.

use crate::cpu::{Counted, CpuSample};
use crate::pipeline::Args;
use crate::report::{progress, Figures};
use crate::settings::Settings;
use anyhow::Context as _;
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
    ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, Semaphore};

const ROUTING_KEY: &str = "offloader.noop";

struct Names {
    exchange: String,
    jobs: String,
    replies: String,
}

async fn declare(ch: &Channel, n: &Names) -> anyhow::Result<()> {
    let durable = QueueDeclareOptions { durable: true, ..Default::default() };
    let mut quorum = FieldTable::default();
    quorum.insert("x-queue-type".into(), AMQPValue::LongString(LongString::from("quorum")));
    ch.exchange_declare(
        n.exchange.as_str().into(),
        ExchangeKind::Topic,
        ExchangeDeclareOptions { durable: true, ..Default::default() },
        FieldTable::default(),
    )
    .await?;
    ch.queue_declare(n.jobs.as_str().into(), durable, quorum.clone()).await?;
    ch.queue_declare(n.replies.as_str().into(), durable, quorum).await?;
    ch.queue_bind(
        n.jobs.as_str().into(),
        n.exchange.as_str().into(),
        ROUTING_KEY.into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await?;
    Ok(())
}

fn persistent() -> BasicProperties {
    BasicProperties::default().with_delivery_mode(2).with_content_type("application/json".into())
}

/// A consumer standing in for a worker: reply with a confirm, then ack.
/// A connection of its own, as each process of the pipeline has.
async fn connect(url: &str, name: &str) -> anyhow::Result<Connection> {
    let props = ConnectionProperties::default().with_connection_name(name.into());
    Connection::connect(url, props).await.context("cannot connect to RabbitMQ")
}

/// `json` (an object) grown to `len` bytes with a padding field, when it is shorter.
fn padded(json: &str, len: usize) -> Vec<u8> {
    let room = len.saturating_sub(json.len() + r#","pad":"""#.len());
    if room == 0 {
        return json.as_bytes().to_vec();
    }
    let open = json.trim_end_matches('}');
    format!(r#"{open},"pad":"{}"}}"#, "x".repeat(room)).into_bytes()
}

async fn consume_jobs(conn: Connection, n: Arc<Names>, prefetch: u16, body_bytes: usize) -> anyhow::Result<()> {
    let ch = conn.create_channel().await?;
    ch.basic_qos(prefetch, BasicQosOptions::default()).await?;
    ch.confirm_select(ConfirmSelectOptions::default()).await?;
    let mut deliveries = ch
        .basic_consume(
            n.jobs.as_str().into(),
            "raw-worker".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let reply: Arc<[u8]> = padded(r#"{"status":"OK"}"#, body_bytes).into();
    while let Some(delivery) = deliveries.next().await {
        let delivery = delivery?;
        let reply = reply.clone();
        let (ch, n) = (ch.clone(), n.clone());
        // One task per job, so confirms overlap as they do in the worker runtime.
        tokio::spawn(async move {
            let props = persistent().with_message_id(delivery.properties.message_id().clone().unwrap_or_default());
            let published = ch
                .basic_publish("".into(), n.replies.as_str().into(), BasicPublishOptions::default(), &reply, props)
                .await;
            if let Ok(confirm) = published {
                if confirm.await.is_ok() {
                    let _ = delivery.acker.ack(BasicAckOptions::default()).await;
                }
            }
        });
    }
    Ok(())
}

pub async fn run(settings: &Settings, ns: &str, args: &Args) -> anyhow::Result<Figures> {
    let n = Arc::new(Names {
        exchange: format!("{ns}.raw.jobs"),
        jobs: format!("{ns}.raw.jobs.{ROUTING_KEY}"),
        replies: format!("{ns}.raw.replies"),
    });
    let leader = connect(&settings.amqp_url, "offloader-bench-raw-leader").await?;
    let setup = leader.create_channel().await?;
    declare(&setup, &n).await.context("cannot declare the bench's queues")?;

    let mut workers = Vec::new();
    for i in 0..args.workers {
        let conn = connect(&settings.amqp_url, &format!("offloader-bench-raw-worker-{i}")).await?;
        workers.push(tokio::spawn(consume_jobs(conn, n.clone(), args.prefetch, args.body_bytes)));
    }

    // Replies are matched to their publisher by message id.
    let pending: Arc<Mutex<HashMap<String, oneshot::Sender<()>>>> = Arc::default();
    let replies_ch = leader.create_channel().await?;
    replies_ch.basic_qos(args.prefetch.max(500), BasicQosOptions::default()).await?;
    let mut replies = replies_ch
        .basic_consume(
            n.replies.as_str().into(),
            "raw-leader".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let reply_task = tokio::spawn({
        let pending = pending.clone();
        async move {
            while let Some(Ok(delivery)) = replies.next().await {
                let id = delivery.properties.message_id().as_ref().map(|s| s.to_string()).unwrap_or_default();
                let _ = delivery.acker.ack(BasicAckOptions::default()).await;
                if let Some(tx) = pending.lock().unwrap_or_else(|e| e.into_inner()).remove(&id) {
                    let _ = tx.send(());
                }
            }
        }
    });

    let publish_ch = leader.create_channel().await?;
    publish_ch.confirm_select(ConfirmSelectOptions::default()).await?;
    let body_bytes = args.body_bytes;
    let inflight = Arc::new(Semaphore::new(args.inflight));
    // The consumers run in this process too: "client" is the leader's and the workers' part.
    let counted = [
        Counted { name: "client", pids: vec![std::process::id()] },
        Counted { name: "rabbitmq", pids: crate::cpu::rabbitmq_pid().into_iter().collect() },
    ];
    let cpu_before = CpuSample::take(&counted);
    let bar = progress(args.jobs, "jobs");
    let started = Instant::now();
    let results: Vec<anyhow::Result<Duration>> = futures::stream::iter(0..args.jobs)
        .map(|i| {
            let (ch, n, pending, inflight, bar) =
                (publish_ch.clone(), n.clone(), pending.clone(), inflight.clone(), bar.clone());
            async move {
                let _permit = inflight.acquire().await?;
                let id = format!("job-{i}");
                let (tx, rx) = oneshot::channel();
                pending.lock().unwrap_or_else(|e| e.into_inner()).insert(id.clone(), tx);
                let t0 = Instant::now();
                let body = padded(&format!(r#"{{"id":"{id}","topic":"offloader/noop"}}"#), body_bytes);
                ch.basic_publish(
                    n.exchange.as_str().into(),
                    ROUTING_KEY.into(),
                    BasicPublishOptions { mandatory: true, ..Default::default() },
                    &body,
                    persistent().with_message_id(id.into()),
                )
                .await?
                .await?;
                tokio::time::timeout(Duration::from_secs(300), rx).await.context("no reply within 300 s")??;
                bar.inc(1);
                Ok(t0.elapsed())
            }
        })
        .buffer_unordered(args.inflight)
        .collect()
        .await;
    let elapsed = started.elapsed();
    let cpu = CpuSample::take(&counted).since(&cpu_before, args.jobs);
    bar.finish_and_clear();
    let latencies = results.into_iter().collect::<anyhow::Result<Vec<_>>>()?;

    reply_task.abort();
    for w in workers {
        w.abort();
    }
    let ch = leader.create_channel().await?;
    for q in [&n.jobs, &n.replies] {
        let _ = ch.queue_delete(q.as_str().into(), QueueDeleteOptions::default()).await;
    }
    let _ = ch.exchange_delete(n.exchange.as_str().into(), ExchangeDeleteOptions::default()).await;
    let _ = leader.close(200, "done".into()).await;
    Ok(Figures { jobs: args.jobs, elapsed, latencies, cpu: Some(cpu) })
}
