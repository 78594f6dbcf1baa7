//! Assets end to end on the real services: ingestion hooks (HTTP PUT, CLI `ingest`, watch
//! folder) raise asset events, launchers turn them into offloading jobs, workers run them, and
//! the leader writes the results back into its asset repository.
//!
//! The workers here serve the offloading topic with the built-in `echo` consumer, so these tests
//! are about the hooks and the repository, not images: the job flows exactly as a real one
//! would, and the asset gets what echo really produces (a copy of the original at
//! `<asset>.echo`, kept as an "other output"). `tests/dam.rs` runs the real renditions.

mod common;

use common::cluster::{random_file, stdout_json, worker_of, Cluster};
use common::schema::assert_valid;
use offloader::datastore::hash_bytes;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

const OFFLOADING: &str = "com/adobe/granite/workflow/offloading";
const ECHO_OFFLOADING: &str = "com/adobe/granite/workflow/offloading=echo";

fn bytes(seed: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

async fn put(c: &Cluster, path: &str, body: Vec<u8>, mime: Option<&str>) -> (u16, Value) {
    let mut req = c.http.put(c.url(&format!("/api/assets{path}"))).body(body);
    if let Some(m) = mime {
        req = req.header("content-type", m);
    }
    let resp = req.send().await.expect("PUT /api/assets");
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.expect("JSON answer");
    if status < 300 {
        assert_valid("offloader.ingest-outcome.v1", &body);
    }
    (status, body)
}

async fn get_asset(c: &Cluster, path: &str) -> (u16, Value) {
    let resp = c.http.get(c.url(&format!("/api/assets{path}"))).send().await.expect("GET /api/assets");
    let status = resp.status().as_u16();
    let body = resp.json().await.unwrap_or(Value::Null);
    if status == 200 {
        assert_valid("offloader.asset.v1", &body);
    }
    (status, body)
}

/// Waits until the asset shows a final job state.
async fn wait_asset_done(c: &Cluster, path: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, asset) = get_asset(c, path).await;
        if status == 200 && matches!(asset["job"]["state"].as_str(), Some("SUCCEEDED" | "ERROR" | "GIVEN_UP")) {
            return asset;
        }
        assert!(Instant::now() < deadline, "asset {path} not processed within 30 s: {asset}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn job_count(c: &Cluster) -> usize {
    let list: Value = c.http.get(c.url("/api/jobs?limit=10000")).send().await.unwrap().json().await.unwrap();
    list["jobs"].as_array().map(Vec::len).unwrap_or(0)
}

/// Stops the cluster and also deletes the queues of the topics launchers published on (the
/// harness only knows the topics of jobs it submitted itself).
async fn finish(c: Cluster) {
    c.also_delete(OFFLOADING);
    c.also_delete("acme/special");
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_creates_then_modifies_and_the_same_bytes_change_nothing() {
    let mut c = Cluster::new().await;
    c.start_leader(&[]).await;
    let _w = c.start_worker("w1", &["--consume", ECHO_OFFLOADING]).await;
    let path = "/content/dam/photos/a.jpg";
    let first = bytes(1, 3 << 20); // bigger than axum's default body limit: streamed, not buffered

    let (status, created) = put(&c, path, first.clone(), Some("image/jpeg")).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["change"], "created");
    assert_eq!(created["launcher"], "dam_update_asset_create");
    assert_eq!(created["workflow"], "dam/update_asset_offloading");
    assert_eq!(created["job"]["topic"], OFFLOADING);
    let job_id = created["job"]["id"].as_str().expect("a job was created").to_owned();

    // The job is AEM's offloading job, with the model travelling in it.
    let job = c.wait_job(&job_id, Duration::from_secs(30)).await;
    assert_eq!(job["state"], "SUCCEEDED", "{job}");
    assert_eq!(worker_of(&job), "w1");
    let props = &job["properties"];
    assert_eq!(props["offloading.workflow.model"], "dam/update_asset");
    assert_eq!(props["offloading.workflow.payload"], path);
    assert_eq!(props["offloading.input.payload"], path);
    assert_eq!(props["offloading.output.payload"], format!("{path}/jcr:content/renditions"));
    assert_valid("offloader.workflow-model.v1", &props["offloading.workflow.model.definition"]);
    let blob = hash_bytes(&first);
    assert_eq!(job["inputs"][0]["path"], path);
    assert_eq!(job["inputs"][0]["blob"]["sha256"], blob.sha256.to_string());

    // The asset, with what echo really produced.
    let asset = wait_asset_done(&c, path).await;
    assert_eq!(asset["original"]["sha256"], blob.sha256.to_string());
    assert_eq!(asset["original"]["size"], first.len());
    assert_eq!(asset["mime_type"], "image/jpeg");
    assert_eq!(asset["job"]["id"], job_id.as_str());
    assert_eq!(asset["job"]["workflow"], "dam/update_asset_offloading");
    assert_eq!(asset["renditions"], json!([]), "echo makes no renditions");
    assert_eq!(asset["other_outputs"][0]["path"], format!("{path}.echo"));
    assert_eq!(asset["other_outputs"][0]["blob"]["sha256"], blob.sha256.to_string());

    // The same bytes again: unchanged, no new job.
    let jobs_before = job_count(&c).await;
    let (status, again) = put(&c, path, first.clone(), Some("image/jpeg")).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["change"], "unchanged");
    assert!(again["job"].is_null(), "{again}");
    assert_eq!(job_count(&c).await, jobs_before, "the same bytes started a job");

    // New bytes: modified, a new job, and the asset follows it.
    let second = bytes(2, 1000);
    let (status, modified) = put(&c, path, second.clone(), None).await;
    assert_eq!(status, 200, "{modified}");
    assert_eq!(modified["change"], "modified");
    assert_eq!(modified["launcher"], "dam_update_asset_modify");
    assert_eq!(modified["mime_type"], "image/jpeg", "guessed from the name");
    let second_job = modified["job"]["id"].as_str().expect("a new job").to_owned();
    assert_ne!(second_job, job_id);
    c.wait_job(&second_job, Duration::from_secs(30)).await;
    let asset = wait_asset_done(&c, path).await;
    assert_eq!(asset["job"]["id"], second_job.as_str());
    assert_eq!(asset["original"]["sha256"], hash_bytes(&second).sha256.to_string());

    // Neither an image, a video nor a PDF: recorded, but no launcher fires.
    let (status, text) = put(&c, "/content/dam/docs/a.txt", bytes(3, 100), None).await;
    assert_eq!(status, 201);
    assert_eq!(text["mime_type"], "text/plain");
    assert!(text["launcher"].is_null() && text["job"].is_null(), "{text}");

    // Renditions over HTTP: `original` streams the bytes; unknown names are 404.
    let resp = c.http.get(c.url(&format!("/api/assets{path}/renditions/original"))).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "image/jpeg");
    assert_eq!(resp.bytes().await.unwrap().as_ref(), second.as_slice());
    let resp =
        c.http.get(c.url(&format!("/api/assets{path}/renditions/cq5dam.web.1280.1280.jpeg"))).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(get_asset(&c, "/content/dam/nope.jpg").await.0, 404);

    // The same through the CLI.
    let out = c.command(&["asset", "get", path]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout_json(&out), asset);
    let dest = c.dir.path().join("original.jpg");
    let out = c.command(&["asset", "rendition", path, "original", "-o", dest.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read(&dest).unwrap(), second);
    let out = c.command(&["asset", "rendition", path, "nope.png", "-o", dest.to_str().unwrap()]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no rendition"), "{}", String::from_utf8_lossy(&out.stderr));

    // Launchers: AEM's two, over HTTP and CLI.
    let out = c.command(&["launchers", "--json"]).output().unwrap();
    let launchers = stdout_json(&out);
    let list = launchers["launchers"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{launchers}");
    assert!(list.iter().all(|l| l["path"] == "/content/dam/**" && l["mime_type"] == "image/*|video/*|application/pdf"));
    let table = c.command(&["launchers"]).output().unwrap();
    assert!(String::from_utf8_lossy(&table.stdout).contains("dam_update_asset_modify"));
    finish(c).await;
}

/// Sends a raw request line, so the path reaches the leader exactly as written (HTTP clients
/// normalize `..` away).
fn raw_put(c: &Cluster, target: &str, token: Option<&str>) -> (u16, String) {
    let addr = c.url("").trim_start_matches("http://").to_owned();
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(s, "PUT {target} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Length: 3\r\nConnection: close\r\n\r\nabc")
        .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let status = answer.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, answer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_paths_are_refused_with_a_reason_and_changes_need_the_token() {
    let mut c = Cluster::new().await;
    c.start_leader(&["--token", "s3cret"]).await;
    let long = format!("/api/assets/content/{}", "a/".repeat(600));
    let cases = [
        ("/api/assets/content/../etc/passwd", "'.' or '..' segment"),
        ("/api/assets/content/%2e%2e/etc", "'.' or '..' segment"),
        ("/api/assets/content/./a.jpg", "'.' or '..' segment"),
        ("/api/assets/content//a.jpg", "empty segment"),
        ("/api/assets//content/a.jpg", "empty segment"),
        ("/api/assets/content/a.jpg/", "empty segment"),
        ("/api/assets/content/a%0Ab.jpg", "control character"),
        (long.as_str(), "at most 1024"),
    ];
    for (target, reason) in cases {
        let (status, answer) = raw_put(&c, target, Some("s3cret"));
        assert_eq!(status, 400, "{target}: {answer}");
        assert!(answer.contains(reason), "{target}: expected {reason:?} in {answer}");
    }
    let (status, answer) = raw_put(&c, "/api/assets/content/dam/a.jpg", None);
    assert_eq!(status, 401, "{answer}");
    let (status, answer) = raw_put(&c, "/api/assets/content/dam/a.jpg", Some("s3cret"));
    assert_eq!(status, 201, "{answer}");
    // Reads stay open.
    assert_eq!(get_asset(&c, "/content/dam/a.jpg").await.0, 200);
    // The CLI refuses the same paths before asking the leader.
    let out = c.command(&["asset", "get", "/content/../x"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("'.' or '..'"), "{}", String::from_utf8_lossy(&out.stderr));
    finish(c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_ingest_of_a_folder_prints_a_summary() {
    let mut c = Cluster::new().await;
    c.start_leader(&[]).await;
    let _w = c.start_worker("w1", &["--consume", ECHO_OFFLOADING]).await;
    let photos = c.dir.path().join("photos");
    std::fs::create_dir_all(photos.join("sub")).unwrap();
    random_file(&photos, "a.jpg", 2000);
    random_file(&photos.join("sub"), "b.png", 3000);
    std::fs::write(photos.join("notes.txt"), "not an image").unwrap();
    std::fs::write(photos.join(".hidden.jpg"), "skipped").unwrap();
    let dir = photos.to_str().unwrap();

    let out = c.command(&["ingest", dir, "--to", "/content/dam/photos", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary = stdout_json(&out);
    assert_eq!(summary["created"], 3, "{summary}");
    assert_eq!(summary["ingested"], 3);
    assert_eq!(summary["unchanged"], 0);
    assert_eq!(summary["jobs"], 2, "two images, two workflows: {summary}");
    assert_eq!(summary["failed"], json!([]));
    for p in ["/content/dam/photos/a.jpg", "/content/dam/photos/sub/b.png"] {
        let asset = wait_asset_done(&c, p).await;
        assert_eq!(asset["job"]["state"], "SUCCEEDED", "{asset}");
    }
    assert_eq!(get_asset(&c, "/content/dam/photos/notes.txt").await.1["mime_type"], "text/plain");
    assert_eq!(get_asset(&c, "/content/dam/photos/.hidden.jpg").await.0, 404);

    // Again, plus one changed file and one whose name is not a valid path: the human summary.
    random_file(&photos, "a.jpg", 2100);
    std::fs::write(photos.join("bad\u{1}name.jpg"), "x").unwrap();
    let out = c.command(&["ingest", dir, "--to", "/content/dam/photos"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "a failure makes the exit status 1:\n{text}");
    assert!(text.contains("ingested 1 (created 0, modified 1), unchanged 2, failed 1"), "{text}");
    assert!(text.contains("control character"), "{text}");
    finish(c).await;
}

async fn wait_file(p: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !p.exists() {
        assert!(Instant::now() < deadline, "{} did not appear within 20 s", p.display());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_folder_ingests_complete_files_once() {
    let mut c = Cluster::new().await;
    let inbox = c.dir.path().join("inbox");
    let inbox_s = inbox.to_str().unwrap().to_owned();
    c.start_leader(&["--watch", &inbox_s, "--watch-to", "/content/dam/inbox", "--watch-interval", "200ms"]).await;
    let _w = c.start_worker("w1", &["--consume", ECHO_OFFLOADING]).await;

    std::fs::create_dir_all(inbox.join("shoot")).unwrap();
    let file = random_file(&inbox.join("shoot"), "x.jpg", 5000);
    let original = std::fs::read(&file).unwrap();
    wait_file(&inbox.join(".done/shoot/x.jpg")).await;
    assert!(!file.exists(), "the file was moved out of the inbox");
    let asset = wait_asset_done(&c, "/content/dam/inbox/shoot/x.jpg").await;
    assert_eq!(asset["original"]["sha256"], hash_bytes(&original).sha256.to_string());
    assert_eq!(asset["job"]["state"], "SUCCEEDED");

    // A name that is no valid asset path goes to .failed with the reason.
    std::fs::write(inbox.join("bad\u{7}.jpg"), "x").unwrap();
    wait_file(&inbox.join(".failed/bad\u{7}.jpg.error")).await;
    let reason = std::fs::read_to_string(inbox.join(".failed/bad\u{7}.jpg.error")).unwrap();
    assert!(reason.contains("control character"), "{reason}");

    // Nothing was taken twice.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(job_count(&c).await, 1);
    finish(c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_launcher_topic_routes_assets_to_the_worker_exclusive_on_it() {
    let mut c = Cluster::new().await;
    let launchers = c.dir.path().join("launchers.toml");
    std::fs::write(
        &launchers,
        r#"
[[launcher]]
id = "special_images"
event = "created"
path = "/content/dam/special/**"
mime_type = "image/*"
workflow = "dam/update_asset_offloading"
topic = "acme/special"

[[launcher]]
id = "dam_update_asset_create"
event = "created"
path = "/content/dam/**"
mime_type = "image/*"
workflow = "dam/update_asset_offloading"
"#,
    )
    .unwrap();
    c.start_leader(&["--launchers", launchers.to_str().unwrap()]).await;
    let both = ["--consume", "acme/**=echo", "--consume", ECHO_OFFLOADING];
    let _special = c.start_worker("special", &both).await;
    let mut general_args = both.to_vec();
    general_args.extend(["--deny", "acme/special"]);
    let _general = c.start_worker("general", &general_args).await;
    let view = c.change_topic("exclusive", "acme/special", "special").await;
    assert_eq!(view["enablement"]["exclusive"], "acme/special", "{view}");

    let mut ids = Vec::new();
    for i in 0..4 {
        for dir in ["special", "other"] {
            let (status, out) = put(&c, &format!("/content/dam/{dir}/{i}.png"), bytes(i, 500), None).await;
            assert_eq!(status, 201, "{out}");
            let topic = if dir == "special" { "acme/special" } else { OFFLOADING };
            assert_eq!(out["job"]["topic"], topic, "{out}");
            ids.push((dir, out["job"]["id"].as_str().unwrap().to_owned()));
        }
    }
    for (dir, id) in ids {
        let job = c.wait_job(&id, Duration::from_secs(30)).await;
        assert_eq!(job["state"], "SUCCEEDED", "{job}");
        let expected = if dir == "special" { "special" } else { "general" };
        assert_eq!(worker_of(&job), expected, "{dir} asset ran on the wrong worker: {job}");
    }
    finish(c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_naming_assets_in_its_input_payload_gets_their_originals() {
    let mut c = Cluster::new().await;
    c.start_leader(&[]).await;
    let _w = c.start_worker("w1", &["--consume", "acme/copy=echo"]).await;
    c.also_delete("acme/copy");
    // Outside /content/dam: no launcher fires, the asset just sits in the repository.
    let (status, created) = put(&c, "/content/docs/a.txt", bytes(5, 3000), Some("text/plain")).await;
    assert_eq!(status, 201, "{created}");
    assert!(created["job"].is_null(), "{created}");

    // The job names the asset by path only, as AEM's offloading jobs do.
    let properties = json!({
        "offloading.workflow.model": "acme/copy",
        "offloading.workflow.payload": "/content/docs/a.txt",
        "offloading.input.payload": "/content/docs/a.txt",
    });
    let job = c.submit("acme/copy", properties.clone()).await;
    assert_eq!(job["inputs"][0]["path"], "/content/docs/a.txt", "{job}");
    assert_eq!(job["inputs"][0]["blob"], created["original"], "the asset's original became the input: {job}");
    let done = c.wait_job(job["id"].as_str().unwrap(), Duration::from_secs(30)).await;
    assert_eq!(done["state"], "SUCCEEDED", "{done}");
    // Its result is applied to the asset it ran on: echo's copy is kept as an other output.
    let (_, asset) = get_asset(&c, "/content/docs/a.txt").await;
    assert_eq!(asset["job"]["id"], done["id"], "{asset}");
    assert_eq!(asset["other_outputs"][0]["blob"], created["original"], "{asset}");

    // A path that is no asset is refused with the reason, before anything is recorded.
    let mut missing = properties;
    missing["offloading.input.payload"] = json!("/content/docs/none.txt");
    let resp = c
        .http
        .post(c.url("/api/jobs"))
        .json(&json!({"topic": "acme/copy", "properties": missing}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let err: Value = resp.json().await.unwrap();
    assert!(err["error"].as_str().unwrap().contains("/content/docs/none.txt"), "{err}");
    finish(c).await;
}
