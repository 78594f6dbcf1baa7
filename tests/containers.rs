//! The compose cluster, for real: `compose/docker-compose.yml` with
//! `compose/docker-compose.local.yml` on top (the same services, with images built here from a
//! debootstrapped Debian base instead of pulled from a registry): RabbitMQ, SeaweedFS standing
//! in for MinIO, a leader and workers as containers of the image `compose/Dockerfile` makes
//! around this test's own binary.
//!
//! It runs a job and a DAM ingest end to end, scales the workers from 1 to 3 and sees the
//! consumers on the topic's queue follow, stops a worker container (`docker stop`: SIGTERM)
//! in the middle of its jobs and finds every job finished once, by the drain, and re-creates
//! the workers and finds the same instances again (their data dirs are on a volume).
//!
//! Needs a running dockerd and the base image: `scripts/containers` (which `scripts/services`,
//! and so `scripts/test`, runs) installs and starts both. The project is its own (name, ports,
//! volumes, network) and is removed at the end, whatever happened; the machine's shared
//! RabbitMQ and S3 are never touched.

mod common;

use common::cluster::free_port;
use image::{ImageFormat, Rgb, RgbImage};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use tempfile::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_offloader");
const SLEEP: &str = "offloader/sleep";

/// The repository, where compose/ is.
fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn base_image() -> String {
    std::env::var("OFFLOADER_BASE_IMAGE").unwrap_or_else(|_| "offloader-base:bookworm".into())
}

/// Runs a command to the end; panics with its output when it fails.
fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn docker() -> Command {
    Command::new("docker")
}

/// Compose v1 (`docker-compose`, Debian's package) when installed, else the v2 plugin.
fn compose_program() -> Vec<String> {
    let v1 = Command::new("docker-compose").arg("version").output().is_ok_and(|o| o.status.success());
    if v1 {
        vec!["docker-compose".into()]
    } else {
        vec!["docker".into(), "compose".into()]
    }
}

/// Fails the test, clearly, when Docker cannot be used here.
fn check_docker() {
    let info = docker().args(["info", "--format", "{{.ServerVersion}}"]).output();
    match info {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "dockerd does not answer (`docker info`: {}); start it with scripts/containers (scripts/test runs it)",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => panic!("no docker CLI ({e}); scripts/containers installs Debian's docker.io"),
    }
    let base = base_image();
    let has_base = docker().args(["image", "inspect", &base]).output().is_ok_and(|o| o.status.success());
    assert!(has_base, "no base image {base}; scripts/containers makes it with debootstrap");
}

/// Builds `compose/Dockerfile` around `binary` as `tag`, FROM the local base; the package
/// layer comes from the cache after the first run. The image this tag named before (now
/// untagged) is removed, so that runs do not pile up images.
fn build_offloader_image(binary: &Path, tag: &str, extra_packages: &str) {
    let before = docker().args(["image", "inspect", "--format", "{{.Id}}", tag]).output().ok().map(|o| stdout(&o));
    let context = TempDir::new().expect("temp dir");
    // Without its debug information: the image takes a few tens of MB instead of hundreds.
    let copy = context.path().join("offloader");
    run(Command::new("objcopy").arg("--strip-debug").arg(binary).arg(&copy));
    run(docker()
        .env("DOCKER_BUILDKIT", "0")
        .args(["build", "--quiet", "--network", "host", "-t", tag, "-f"])
        .arg(repo().join("compose/Dockerfile"))
        .args(["--build-arg", &format!("BASE_IMAGE={}", base_image())])
        .args(["--build-arg", "BINARY=offloader"])
        .args(["--build-arg", &format!("EXTRA_PACKAGES={extra_packages}")])
        .arg(context.path()));
    let after = stdout(&run(docker().args(["image", "inspect", "--format", "{{.Id}}", tag])));
    if let Some(old) = before.filter(|old| !old.is_empty() && *old != after) {
        let _ = docker().args(["rmi", &old]).output();
    }
}

/// One compose project: its own name, ports and volumes; taken down (volumes too) on drop.
struct Project {
    name: String,
    program: Vec<String>,
    env: Vec<(&'static str, String)>,
    http_port: u16,
    token: String,
    http: reqwest::Client,
}

impl Project {
    fn new() -> Project {
        let suffix = &uuid::Uuid::new_v4().simple().to_string()[..10];
        let token = format!("token-{suffix}");
        let http_port = free_port();
        let env = vec![
            ("OFFLOADER_BASE_IMAGE", base_image()),
            ("OFFLOADER_HTTP_PORT", http_port.to_string()),
            ("OFFLOADER_RABBITMQ_UI_PORT", free_port().to_string()),
            ("OFFLOADER_S3_PORT", free_port().to_string()),
            ("OFFLOADER_S3_CONSOLE_PORT", free_port().to_string()),
            ("OFFLOADER_TOKEN", token.clone()),
        ];
        Project {
            name: format!("offloader-test-{suffix}"),
            program: compose_program(),
            env,
            http_port,
            token,
            http: reqwest::Client::new(),
        }
    }

    /// A compose command on both files of this project.
    fn compose(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.program[0]);
        cmd.args(&self.program[1..])
            .arg("--project-name")
            .arg(&self.name)
            .arg("-f")
            .arg(repo().join("compose/docker-compose.yml"))
            .arg("-f")
            .arg(repo().join("compose/docker-compose.local.yml"))
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())));
        cmd
    }

    /// Brings the project to `workers` workers, without building anything.
    fn up(&self, workers: usize, extra: &[&str]) {
        let scale = format!("worker={workers}");
        let mut args = vec!["up", "-d", "--no-build", "--scale", &scale];
        args.extend_from_slice(extra);
        run(&mut self.compose(&args));
    }

    /// The ids of the running containers of `service`.
    fn containers(&self, service: &str) -> Vec<String> {
        stdout(&run(&mut self.compose(&["ps", "-q", service]))).lines().map(str::to_owned).collect()
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.http_port)
    }

    async fn get(&self, path: &str) -> Value {
        let resp = self.http.get(self.url(path)).bearer_auth(&self.token).send().await;
        let resp = resp.unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or_else(|e| panic!("GET {path}: not JSON: {e}"));
        assert!(status.is_success(), "GET {path}: {status} {body}");
        body
    }

    async fn submit(&self, topic: &str, properties: Value) -> String {
        let resp = self
            .http
            .post(self.url("/api/jobs"))
            .bearer_auth(&self.token)
            .json(&json!({ "topic": topic, "properties": properties }))
            .send()
            .await
            .expect("POST /api/jobs");
        let status = resp.status();
        let body: Value = resp.json().await.expect("a JSON answer");
        assert!(status.is_success(), "POST /api/jobs: {status} {body}");
        body["id"].as_str().expect("a job id").to_owned()
    }

    /// Polls `path` until `done` holds for its answer; panics after `timeout`.
    async fn wait_for(&self, path: &str, timeout: Duration, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let answer = self.http.get(self.url(path)).bearer_auth(&self.token).send().await;
            let body = match answer {
                Ok(resp) => resp.json::<Value>().await.unwrap_or(Value::Null),
                Err(_) => Value::Null,
            };
            if done(&body) {
                return body;
            }
            if Instant::now() >= deadline {
                panic!("{path}: not there within {timeout:?}; last answer: {body}\n{}", self.logs());
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn wait_job(&self, id: &str, timeout: Duration) -> Value {
        let finals = ["SUCCEEDED", "ERROR", "GIVEN_UP", "STOPPED"];
        self.wait_for(&format!("/api/jobs/{id}"), timeout, |j| finals.contains(&j["state"].as_str().unwrap_or("")))
            .await
    }

    /// The workers in the leader's topology: instance id by name (the container's host name).
    async fn workers(&self) -> Vec<(String, String)> {
        let report = self.get("/api/topics").await;
        let instances = report["instances"].as_array().cloned().unwrap_or_default();
        instances
            .iter()
            .filter(|i| i["role"] == "worker")
            .map(|i| (i["name"].as_str().unwrap_or("").to_owned(), i["id"].as_str().unwrap_or("").to_owned()))
            .collect()
    }

    /// Waits until RabbitMQ counts `n` consumers on the topic's queue.
    async fn wait_consumers(&self, topic: &str, n: u64) {
        self.wait_for("/api/topics", Duration::from_secs(60), |report| {
            report["topics"]
                .as_array()
                .and_then(|t| t.iter().find(|q| q["topic"] == topic))
                .is_some_and(|q| q["consumers"] == n)
        })
        .await;
    }

    /// The last lines of every container's log, for failure messages.
    fn logs(&self) -> String {
        self.compose(&["logs", "--no-color", "--tail", "40"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("containers of {}:\n{}", self.name, self.logs());
        }
        let down = self.compose(&["down", "--volumes", "--remove-orphans", "--timeout", "10"]).output();
        match down {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!("compose down of {} failed: {}", self.name, String::from_utf8_lossy(&out.stderr)),
            Err(e) => eprintln!("compose down of {} failed: {e}", self.name),
        }
    }
}

/// A photo-like JPEG.
fn jpeg(width: u32, height: u32) -> Vec<u8> {
    let img = RgbImage::from_fn(width, height, |x, y| {
        Rgb([(x * 255 / width) as u8, (y * 255 / height) as u8, ((x ^ y) % 256) as u8])
    });
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Jpeg).expect("encoding a test JPEG");
    out.into_inner()
}

fn inspect(container: &str, format: &str) -> String {
    stdout(&run(docker().args(["inspect", "--format", format, container])))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compose_cluster_runs_jobs_scales_and_drains() {
    // On a fresh machine the image builds alone take about four minutes (apt and pip); a hang
    // anywhere fails the test instead of stalling the suite.
    tokio::time::timeout(Duration::from_secs(900), scenario())
        .await
        .expect("the compose scenario did not finish within 15 minutes");
}

async fn scenario() {
    check_docker();
    let started = Instant::now();
    let project = Project::new();
    // The stand-ins' images (cached after the first run), then leader and worker around the
    // binary under test.
    run(&mut project.compose(&["build", "rabbitmq", "minio"]));
    build_offloader_image(Path::new(BIN), "offloader-local/leader", "");
    build_offloader_image(Path::new(BIN), "offloader-local/worker", "ffmpeg poppler-utils libheif-examples");
    println!("images built in {:.1} s", started.elapsed().as_secs_f64());

    let up = Instant::now();
    project.up(1, &[]);
    project.wait_for("/ready", Duration::from_secs(120), |r| r["status"] == "ok").await;
    println!("cluster up and the leader ready in {:.1} s", up.elapsed().as_secs_f64());
    let leader = project.containers("leader").pop().expect("a leader container");
    assert_eq!(inspect(&leader, "{{.Config.User}}"), "offloader", "the leader runs as a non-root user");

    // A job, end to end.
    let id = project.submit(SLEEP, json!({ "ms": 50 })).await;
    let job = project.wait_job(&id, Duration::from_secs(60)).await;
    assert_eq!(job["state"], "SUCCEEDED", "{job}");

    // A DAM ingest: the upload becomes an offloading job, the worker makes the renditions.
    let path = "/content/dam/containers/photo.jpg";
    let resp = project
        .http
        .put(project.url(&format!("/api/assets{path}")))
        .bearer_auth(&project.token)
        .body(jpeg(1600, 1200))
        .send()
        .await
        .expect("PUT /api/assets");
    assert!(resp.status().is_success(), "PUT {path}: {}", resp.status());
    let asset = project
        .wait_for(&format!("/api/assets{path}"), Duration::from_secs(90), |a| {
            matches!(a["job"]["state"].as_str(), Some("SUCCEEDED" | "ERROR" | "GIVEN_UP"))
        })
        .await;
    assert_eq!(asset["job"]["state"], "SUCCEEDED", "{asset}");
    assert_eq!(asset["metadata"]["width"], 1600, "{asset}");
    let web = project
        .http
        .get(project.url(&format!("/api/assets{path}/renditions/cq5dam.web.1280.1280.jpeg")))
        .bearer_auth(&project.token)
        .send()
        .await
        .expect("GET a rendition");
    assert!(web.status().is_success(), "the web rendition: {}", web.status());
    let img = image::load_from_memory(&web.bytes().await.expect("rendition bytes")).expect("a JPEG rendition");
    assert_eq!((img.width(), img.height()), (1280, 960));

    // Scaling from 1 to 3 workers: three consumers on the topic's queue.
    project.wait_consumers(SLEEP, 1).await;
    let scaled = Instant::now();
    project.up(3, &[]);
    project.wait_consumers(SLEEP, 3).await;
    println!("scaled from 1 to 3 workers in {:.1} s", scaled.elapsed().as_secs_f64());
    let workers = project.containers("worker");
    assert_eq!(workers.len(), 3, "{workers:?}");
    let before: BTreeSet<_> = project.workers().await.into_iter().map(|(_, id)| id).collect();
    assert_eq!(before.len(), 3, "three worker instances, each its own id: {before:?}");

    // SIGTERM in the middle of jobs: the worker drains (finishes what it holds) and exits 0.
    let ids: Vec<String> = {
        let mut ids = Vec::new();
        for _ in 0..9 {
            ids.push(project.submit(SLEEP, json!({ "ms": 3000 })).await);
        }
        ids
    };
    // A job running on some worker: stop that worker's container (a worker's name is its
    // host name, the container id's first 12 characters).
    let running = project
        .wait_for("/api/jobs?state=ACTIVE&limit=50", Duration::from_secs(30), |list| {
            list["jobs"].as_array().is_some_and(|jobs| !jobs.is_empty())
        })
        .await;
    let victim_name = running["jobs"][0]["worker"]["name"].as_str().expect("a worker name").to_owned();
    let victim = workers.iter().find(|c| c.starts_with(&victim_name)).expect("the worker's container").clone();
    let held = project.get("/api/jobs?state=ACTIVE&limit=50").await["jobs"]
        .as_array()
        .map(|jobs| jobs.iter().filter(|j| j["worker"]["name"] == victim_name).count())
        .unwrap_or(0);
    let stop = Instant::now();
    run(docker().args(["stop", "--time", "60", &victim]));
    let drained = stop.elapsed();
    assert_eq!(inspect(&victim, "{{.State.ExitCode}}"), "0", "the worker drained and exited by itself");
    println!("docker stop of a worker holding {held} job(s): drained and exited in {:.1} s", drained.as_secs_f64());
    for id in &ids {
        let job = project.wait_job(id, Duration::from_secs(60)).await;
        assert_eq!(job["state"], "SUCCEEDED", "{job}");
        assert_eq!(job["completions_applied"], 1, "{job}");
    }

    // Re-created workers are the same instances: each takes a free slot of the volume.
    let recreate = Instant::now();
    project.up(3, &["--force-recreate", "--no-deps", "worker"]);
    project.wait_consumers(SLEEP, 3).await;
    let after: BTreeSet<_> = project.workers().await.into_iter().map(|(_, id)| id).collect();
    assert_eq!(after, before, "re-created workers keep their instance ids");
    println!("workers re-created in {:.1} s with the same instance ids", recreate.elapsed().as_secs_f64());

    // A worker's readiness probe (its metrics server's /ready: RabbitMQ answers), asked the way
    // an orchestrator's exec probe would.
    let worker = project.containers("worker")[0].clone();
    let ready = run(docker().args(["exec", &worker, "offloader", "probe", "http://127.0.0.1:9464/ready"]));
    assert_eq!(stdout(&ready), "ok");

    // The images' health checks pass (the first runs 10 s after start, then every 10 s).
    for container in [leader.clone(), worker] {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let health = inspect(&container, "{{.State.Health.Status}}");
            if health == "healthy" {
                break;
            }
            assert!(Instant::now() < deadline, "{container} is {health} after 60 s");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    println!("whole scenario: {:.1} s", started.elapsed().as_secs_f64());
}
