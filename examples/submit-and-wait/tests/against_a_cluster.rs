//! The example against a real leader and worker (the library, in this process) on the real
//! RabbitMQ and S3: it stores a file, creates an echo job, waits, prints the job, exits 0.

use offloader::broker::{Broker, BrokerConfig};
use offloader::consumer::{register_builtins, ConsumerRegistry};
use offloader::datastore::{self, DatastoreConfig};
use offloader::leader::{self, LeaderConfig};
use offloader::metrics::MetricsRegistry;
use offloader::worker::{self, WorkerConfig};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_creates_waits_and_prints_the_finished_job() {
    let namespace = format!("ex-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let amqp = std::env::var("OFFLOADER_AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let broker = Broker::connect(BrokerConfig::new(amqp, namespace.clone()), "example-test")
        .await
        .expect("RabbitMQ must be running: eval \"$(scripts/services)\"");
    let store = datastore::open(&DatastoreConfig::from_env(&namespace))
        .await
        .expect("the S3 datastore must be running: eval \"$(scripts/services)\"");
    let dir = tempfile::tempdir().unwrap();
    let heartbeat = offloader::discovery::HeartbeatConfig::from_interval(Duration::from_millis(300));
    let mut config = LeaderConfig::new("leader", dir.path().join("leader"));
    config.http = Some("127.0.0.1:0".parse().unwrap());
    config.heartbeat = heartbeat;
    let leader = leader::start(broker.clone(), Some(store.clone()), config, MetricsRegistry::new()).await.unwrap();
    let mut registry = ConsumerRegistry::new();
    register_builtins(&mut registry);
    let mut wconfig = WorkerConfig::new("w1", dir.path().join("w1"));
    wconfig.heartbeat = heartbeat;
    let worker = worker::start(broker.clone(), store, registry, wconfig, MetricsRegistry::new()).await.unwrap();

    let file = dir.path().join("note.txt");
    std::fs::write(&file, "offload me").unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_submit-and-wait"))
        .arg("offloader/echo")
        .arg(&file)
        .env("OFFLOADER_NAMESPACE", &namespace)
        .env("OFFLOADER_LEADER_URL", format!("http://{}", leader.http.unwrap()))
        .output()
        .await
        .expect("running the example");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}\n{stdout}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    let job: serde_json::Value = serde_json::from_str(&stdout).expect("the example prints the job as JSON");
    assert_eq!(job["state"], "SUCCEEDED", "{job}");
    assert_eq!(job["outputs"][0]["path"], "/note.txt.echo", "{job}");

    worker.drain().await;
    leader.shutdown().await;
    let _ = broker.delete_namespace(&["offloader/echo".parse().unwrap()]).await;
    broker.close();
}
