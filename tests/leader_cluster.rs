//! Several leaders: one cluster on a shared PostgreSQL ledger, the active leader killed under
//! load, a second leader with a ledger of its own refused, two clusters sharing one pool of
//! workers. Real processes, real RabbitMQ, S3 and PostgreSQL.

mod common;

use common::cluster::{free_port, is_final, Cluster, Proc};
use common::postgres::TestDb;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};

const OFFLOADING_ECHO: &str = "com/adobe/granite/workflow/offloading=echo";

async fn post_job(http: &reqwest::Client, base: &str, topic: &str, props: Value) -> reqwest::Result<Value> {
    let resp = http.post(format!("{base}/api/jobs")).json(&json!({"topic": topic, "properties": props})).send().await?;
    let resp = resp.error_for_status()?;
    resp.json().await
}

async fn get_job(http: &reqwest::Client, base: &str, id: &str, wait: f64) -> reqwest::Result<Value> {
    http.get(format!("{base}/api/jobs/{id}?wait={wait}")).send().await?.error_for_status()?.json().await
}

/// The instance that holds the cluster's duties, as one leader's topology shows it.
async fn elected(http: &reqwest::Client, base: &str) -> Option<String> {
    let topology: Value = http.get(format!("{base}/api/topology")).send().await.ok()?.json().await.ok()?;
    topology["clusters"]
        .as_array()?
        .iter()
        .flat_map(|c| c["instances"].as_array().cloned().unwrap_or_default())
        .find_map(|i| (i["leader"] == true).then(|| i["name"].as_str().unwrap_or_default().to_owned()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_leader_with_a_ledger_of_its_own_is_refused() {
    let mut c = Cluster::new().await;
    c.start_leader(&[]).await;
    let refused = c.launch_leader("leader-2", free_port(), &[]).await;
    let mut proc = match refused {
        Ok(p) => panic!("a second SQLite leader of the cluster started; log:\n{}", p.log()),
        Err(p) => p,
    };
    let log = proc.log();
    assert!(log.contains("already has leaders on another ledger"), "{log}");
    assert!(log.contains("--ledger postgres://") && log.contains("--cluster"), "the message says what to do: {log}");
    assert!(!proc.is_running());
    // The first leader is undisturbed.
    let job = c.submit("offloader/noop", json!({})).await;
    assert!(job["state"].is_string());
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_leaders_on_one_postgres_ledger_complete_every_job_once() {
    let db = TestDb::create().await;
    let mut c = Cluster::new().await;
    c.start_leader(&["--ledger", &db.url]).await;
    let (_b, b) = c.spawn_leader("leader-b", &["--ledger", &db.url]).await;
    let a = c.url("");
    let _w1 = c.start_worker("w1", &[]).await;
    let _w2 = c.start_worker("w2", &[]).await;
    c.also_delete("offloader/sleep");
    let http = c.http.clone();
    // Jobs created on both leaders; each waited for on the other one.
    let mut ids = Vec::new();
    for i in 0..12 {
        let (on, _) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let job = post_job(&http, on, "offloader/sleep", json!({"ms": 100})).await.unwrap();
        ids.push((i, job["id"].as_str().unwrap().to_owned()));
    }
    for (i, id) in &ids {
        let other = if i % 2 == 0 { &b } else { &a };
        let done = get_job(&http, other, id, 30.0).await.unwrap();
        assert_eq!(done["state"], "SUCCEEDED", "{done}");
        assert_eq!(done["completions_applied"], 1, "{done}");
    }
    // One ledger: both leaders list every job.
    for base in [&a, &b] {
        let list: Value = http.get(format!("{base}/api/jobs?limit=100")).send().await.unwrap().json().await.unwrap();
        assert_eq!(list["counts"]["SUCCEEDED"], 12, "{list}");
    }
    // One of them holds the duties.
    let deadline = Instant::now() + Duration::from_secs(10);
    while elected(&http, &a).await.is_none() {
        assert!(Instant::now() < deadline, "no leader is elected");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    c.finish().await;
    db.drop_db().await;
}

/// Creates a job on whichever leader answers, trying each in turn: what a client that knows
/// several leaders does. Returns the job's id and the leader that took it.
async fn create_anywhere(http: &reqwest::Client, leaders: &[String], topic: &str, props: Value) -> (String, String) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        for base in leaders {
            if let Ok(job) = post_job(http, base, topic, props.clone()).await {
                return (job["id"].as_str().unwrap().to_owned(), base.clone());
            }
        }
        assert!(Instant::now() < deadline, "no leader took a job for 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_active_leader_killed_three_times_loses_nothing() {
    let db = TestDb::create().await;
    let mut c = Cluster::new().await;
    let ledger = ["--ledger", db.url.as_str()];
    c.start_leader(&ledger).await;
    let mut leaders: HashMap<String, (Option<Proc>, String)> = HashMap::new();
    leaders.insert("leader".into(), (c.leader.take(), c.url("")));
    let (b, b_url) = c.spawn_leader("leader-b", &ledger).await;
    leaders.insert("leader-b".into(), (Some(b), b_url));
    let _w1 = c.start_worker("w1", &["--consume", OFFLOADING_ECHO]).await;
    let _w2 = c.start_worker("w2", &["--consume", OFFLOADING_ECHO]).await;
    c.also_delete("offloader/sleep");
    c.also_delete("com/adobe/granite/workflow/offloading");
    let http = c.http.clone();
    let urls: Vec<String> = leaders.values().map(|(_, u)| u.clone()).collect();

    let mut jobs: Vec<String> = Vec::new();
    let mut assets: Vec<String> = Vec::new();
    for round in 0..3 {
        // Work in flight: sleep jobs and asset ingests, created on any leader.
        for i in 0..8 {
            let (id, _) = create_anywhere(&http, &urls, "offloader/sleep", json!({"ms": 400})).await;
            jobs.push(id);
            let path = format!("/content/dam/r{round}/a{i}.png");
            let body = format!("asset {round} {i}").into_bytes();
            'put: loop {
                for base in &urls {
                    if let Ok(r) = http
                        .put(format!("{base}/api/assets{path}"))
                        .header("content-type", "image/png")
                        .body(body.clone())
                        .send()
                        .await
                    {
                        if r.status().is_success() {
                            break 'put;
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            assets.push(path);
        }
        // SIGKILL the elected leader, then start it again (it becomes a standby).
        let deadline = Instant::now() + Duration::from_secs(15);
        let active = loop {
            let mut found = None;
            for base in &urls {
                if let Some(name) = elected(&http, base).await {
                    found = Some(name);
                    break;
                }
            }
            if let Some(name) = found {
                break name;
            }
            assert!(Instant::now() < deadline, "no elected leader");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let killed_at = Instant::now();
        leaders.get_mut(&active).unwrap().0.as_mut().unwrap().kill();
        // Another leader takes the duties over.
        let survivor = urls.iter().find(|u| **u != leaders[&active].1).unwrap().clone();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(name) = elected(&http, &survivor).await {
                if name != active {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "no standby took over within 10 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        println!("round {round}: {active} killed; a standby was elected {:?} later", killed_at.elapsed());
        let name = active.clone();
        let port: u16 = leaders[&name].1.rsplit(':').next().unwrap().parse().unwrap();
        let restarted = c
            .launch_leader(&name, port, &ledger)
            .await
            .unwrap_or_else(|p| panic!("{name} did not restart:\n{}", p.log()));
        leaders.get_mut(&name).unwrap().0 = Some(restarted);
    }

    // Every job and every asset completes; nothing applied twice, nothing stuck.
    for id in &jobs {
        let mut done = Value::Null;
        let deadline = Instant::now() + Duration::from_secs(60);
        while !is_final(&done) {
            assert!(Instant::now() < deadline, "job {id} is stuck: {done}");
            done = get_job(&http, &urls[0], id, 5.0).await.unwrap_or(Value::Null);
        }
        assert_eq!(done["state"], "SUCCEEDED", "{done}");
        assert_eq!(done["completions_applied"], 1, "{done}");
    }
    for path in &assets {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let asset: Value =
                http.get(format!("{}/api/assets{path}", urls[0])).send().await.unwrap().json().await.unwrap();
            if asset["job"]["state"] == "SUCCEEDED" {
                assert_eq!(asset["other_outputs"].as_array().map(Vec::len), Some(1), "{asset}");
                break;
            }
            assert!(Instant::now() < deadline, "asset {path} is stuck: {asset}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let list: Value = http.get(format!("{}/api/jobs?limit=10000", urls[0])).send().await.unwrap().json().await.unwrap();
    for state in ["NEW", "QUEUED", "ACTIVE", "FAILED"] {
        assert!(list["counts"][state].is_null(), "jobs left {state}: {}", list["counts"]);
    }
    for (_, (p, _)) in leaders.iter_mut() {
        if let Some(p) = p.as_mut() {
            p.kill();
        }
    }
    c.finish().await;
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clusters_share_one_pool_of_workers() {
    let mut c = Cluster::new().await;
    c.start_leader(&["--cluster", "east"]).await;
    let (_west, west) = c.spawn_leader("leader-west", &["--cluster", "west"]).await;
    let east = c.url("");
    let _w1 = c.start_worker("w1", &[]).await;
    let _w2 = c.start_worker("w2", &[]).await;
    c.also_delete("offloader/sleep");
    let http = c.http.clone();
    let mut ids = Vec::new();
    for i in 0..10 {
        let base = if i % 2 == 0 { &east } else { &west };
        let job = post_job(&http, base, "offloader/sleep", json!({"ms": 50})).await.unwrap();
        ids.push((base.clone(), job["id"].as_str().unwrap().to_owned()));
    }
    let mut workers = std::collections::BTreeSet::new();
    for (base, id) in &ids {
        let done = get_job(&http, base, id, 30.0).await.unwrap();
        assert_eq!(done["state"], "SUCCEEDED", "{done}");
        workers.insert(done["worker"]["name"].as_str().unwrap().to_owned());
        // A job belongs to its cluster only: the other cluster's leader does not know it.
        let other = if *base == east { &west } else { &east };
        let status = http.get(format!("{other}/api/jobs/{id}")).send().await.unwrap().status();
        assert_eq!(status, 404);
    }
    assert_eq!(workers.len(), 2, "both workers served both clusters: {workers:?}");
    // Each cluster's leader drained only its own reply queue.
    let broker = c.broker().await;
    for cluster in ["east", "west"] {
        let q = format!("{}.replies.{cluster}", c.namespace);
        let depth = broker.queue_depth(&q).await.unwrap().expect("the cluster's reply queue");
        assert_eq!(depth.messages, 0, "{q}");
    }
    c.finish().await;
}
