//! The example deployed for real: a leader (the library, in this process), the
//! `measure-worker` binary as a worker process, RabbitMQ and S3 from `scripts/services`; a
//! job on `acme/text/measure` comes back with the counts.

use measure_worker::TOPIC;
use offloader::broker::{Broker, BrokerConfig};
use offloader::client::LeaderClient;
use offloader::datastore::{self, DatastoreConfig};
use offloader::leader::{self, LeaderConfig};
use offloader::metrics::MetricsRegistry;
use offloader::protocol::{JobState, PayloadEntry, Properties};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_measure_worker_runs_jobs_of_its_topic() {
    let namespace = format!("ex-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let amqp = std::env::var("OFFLOADER_AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let broker = Broker::connect(BrokerConfig::new(amqp.clone(), namespace.clone()), "example-test")
        .await
        .expect("RabbitMQ must be running: eval \"$(scripts/services)\"");
    let store = datastore::open(&DatastoreConfig::from_env(&namespace))
        .await
        .expect("the S3 datastore must be running: eval \"$(scripts/services)\"");
    let dir = tempfile::tempdir().unwrap();
    let mut config = LeaderConfig::new("leader", dir.path().join("leader"));
    config.http = Some("127.0.0.1:0".parse().unwrap());
    config.heartbeat = offloader::discovery::HeartbeatConfig::from_interval(Duration::from_millis(300));
    let leader = leader::start(broker.clone(), Some(store.clone()), config, MetricsRegistry::new()).await.unwrap();
    let client = LeaderClient::new(&format!("http://{}", leader.http.unwrap()), None).unwrap();

    let mut worker = Command::new(env!("CARGO_BIN_EXE_measure-worker"))
        .args(["--name", "measure-1", "--data-dir"])
        .arg(dir.path().join("worker"))
        .env("OFFLOADER_NAMESPACE", &namespace)
        .env("OFFLOADER_HEARTBEAT_INTERVAL", "300ms")
        .stdin(Stdio::null())
        .spawn()
        .expect("starting the example worker");

    let stored = store.put_bytes("to be or not\nto be\n".into()).await.unwrap();
    let input = PayloadEntry { path: "/hamlet.txt".into(), blob: stored.blob, mime_type: Some("text/plain".into()) };
    let job = client.create_job(TOPIC, Properties::new(), vec![input], None).await.unwrap();
    let done = client.get_job(job.id, Duration::from_secs(30)).await.unwrap();
    assert_eq!(done.state, JobState::Succeeded, "{done:?}");
    assert_eq!(done.output_properties["words"], 6, "{done:?}");
    assert_eq!(done.output_properties["lines"], 2);
    assert_eq!(done.worker.as_ref().map(|w| w.name.as_str()), Some("measure-1"));

    // It shows in the topology with its one topic enabled and consumed.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let report = client.topics().await.unwrap();
        let me = report.instances.iter().find(|i| i.name == "measure-1");
        if me.is_some_and(|i| i.consuming.iter().any(|t| t.as_str() == TOPIC)) {
            break;
        }
        assert!(Instant::now() < deadline, "measure-1 not seen consuming {TOPIC}: {report:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // SIGTERM drains it: it exits by itself, successfully.
    // SAFETY: sending a signal to a child we spawned and have not reaped.
    unsafe { libc::kill(worker.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = worker.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "the example worker did not exit after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status}");

    leader.shutdown().await;
    let _ = broker.delete_namespace(&[TOPIC.parse().unwrap()]).await;
    broker.close();
}
