//! `offloader-bench console`: the web console's Jobs list over a big ledger. Fills a SQLite
//! ledger with `--jobs` jobs (the same history as `offloader-bench find`: 30 days, 50 topics,
//! mostly SUCCEEDED), starts a real leader on it, then measures, each against the 1 s target:
//!
//! - the server time of the requests the Jobs list makes: its first page (`GET /api/jobs?limit=25`,
//!   which also counts the jobs per state), filtered first pages, and a page deep in the list
//!   reached with the cursor;
//! - the time headless Chromium takes to show the list: from the navigation's start to the
//!   list's rows being in the document (the console records `performance.now()` then, in
//!   `window.__jobListDrawnAt`), over a fresh page load each run.

use anyhow::{bail, Context as _};
use fantoccini::ClientBuilder;
use offloader::leader::ledger::{Ledger, NoProjection};
use offloader::protocol::api::JobRecord;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

use crate::settings::Settings;

#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "Needs chromium and chromedriver on the PATH (scripts/services installs Debian's), \
RabbitMQ and the S3 datastore the leader uses (OFFLOADER_* settings, as for `offloader leader`). Each line: \
the median and the slowest of --runs, and the 1 s target.")]
pub struct Args {
    /// Jobs to fill the ledger with.
    #[arg(long, default_value_t = 100_000)]
    pub jobs: usize,

    /// Times each request and each page load runs.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
}

/// What the issue holds the Jobs list to, server and browser alike.
const TARGET: Duration = Duration::from_secs(1);

/// The console's page size (`PAGE_SIZE` in console.js).
const PAGE: usize = 25;

pub async fn run(settings: &Settings, args: Args) -> anyhow::Result<ExitCode> {
    let exe = settings.offloader()?;
    let chromium = on_path(&["chromium", "chromium-browser", "google-chrome"])?;
    let chromedriver = on_path(&["chromedriver"])?;
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("leader");
    std::fs::create_dir_all(&data)?;

    // The ledger, filled before the leader opens it (the leader's default file in its data dir).
    let ledger = Ledger::open_sqlite(&data.join("ledger.sqlite"), Arc::new(NoProjection))?;
    let now = chrono::Utc::now();
    let started = Instant::now();
    let mut i = 0;
    while i < args.jobs {
        let n = 20_000.min(args.jobs - i);
        let recs: Vec<JobRecord> = (i..i + n).map(|k| crate::find::record(k, args.jobs, now)).collect();
        ledger.insert_many(recs).await.context("filling the ledger")?;
        i += n;
    }
    drop(ledger);
    println!(
        "bench console: {} jobs in a SQLite ledger, filled in {:.1} s",
        args.jobs,
        started.elapsed().as_secs_f64()
    );

    let namespace = Settings::namespace();
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let base = format!("http://127.0.0.1:{port}");
    let log = dir.path().join("leader.log");
    let mut leader = Command::new(&exe)
        .args(["--namespace", &namespace, "--amqp-url", &settings.amqp_url, "--cluster", &settings.cluster])
        .args(["leader", "--name", "bench-console", "--http", &format!("127.0.0.1:{port}"), "--keep-jobs", "3650d"])
        .arg("--data-dir")
        .arg(&data)
        .env("RUST_LOG", "warn")
        .env_remove("OFFLOADER_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?)
        .kill_on_drop(true)
        .spawn()
        .context("cannot start the leader")?;
    let driver_port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let mut driver = Command::new(&chromedriver)
        .arg(format!("--port={driver_port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("cannot start chromedriver")?;
    let result = async {
        let http = reqwest::Client::new();
        wait_for_leader(&http, &base, &mut leader, &log).await?;
        measure(&args, &http, &base, &chromium, &format!("http://127.0.0.1:{driver_port}")).await
    }
    .await;
    let _ = leader.kill().await;
    let _ = driver.kill().await;
    let broker = settings.broker(&namespace, "console").await?;
    let topics: Vec<offloader::protocol::Topic> =
        (0..50).filter_map(|n| format!("bench/t{}/s{}", n % 10, n / 10).parse().ok()).collect();
    if let Err(e) = broker.delete_namespace(&topics).await {
        tracing::warn!(error = %e, "could not delete the bench's AMQP objects");
    }
    result
}

async fn measure(
    args: &Args,
    http: &reqwest::Client,
    base: &str,
    chromium: &Path,
    driver_url: &str,
) -> anyhow::Result<ExitCode> {
    // A cursor deep in the list: the one after the newest half of the jobs.
    let mut cursor: Option<String> = None;
    for _ in 0..(args.jobs / 2).div_ceil(10_000) {
        let mut url = format!("{base}/api/jobs?limit=10000");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page: Value = http.get(url).send().await?.error_for_status()?.json().await?;
        cursor = page["next_cursor"].as_str().map(str::to_owned);
    }
    let deep = cursor.context("the list has no middle page")?;

    let mut over = 0;
    println!("{:<66} {:>9} {:>8}  target", "request (as the Jobs list makes it)", "median ms", "max ms");
    let requests = [
        ("first page: GET /api/jobs?limit=25 (+ counts per state)".to_owned(), format!("/api/jobs?limit={PAGE}")),
        ("filtered by state: ?state=ERROR".to_owned(), format!("/api/jobs?state=ERROR&limit={PAGE}")),
        ("filtered by topic: ?topic=bench/t3/*".to_owned(), format!("/api/jobs?topic=bench%2Ft3%2F*&limit={PAGE}")),
        (
            "property search: ?where=size>=900,color=red".to_owned(),
            format!("/api/jobs?where=size%3E%3D900%2Ccolor%3Dred&limit={PAGE}"),
        ),
        (format!("a page {} jobs deep, by cursor", args.jobs / 2), format!("/api/jobs?limit={PAGE}&cursor={deep}")),
    ];
    let mut first_server = 0.0;
    for (i, (name, path)) in requests.iter().enumerate() {
        let mut times = Vec::new();
        for _ in 0..args.runs.max(1) {
            let t = Instant::now();
            let page: Value = http.get(format!("{base}{path}")).send().await?.error_for_status()?.json().await?;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            if page["jobs"].as_array().is_none_or(|j| j.is_empty()) {
                bail!("{path} answered no jobs: {page}");
            }
        }
        let (median, max) = median_max(&mut times);
        if i == 0 {
            first_server = median;
        }
        over += usize::from(max > TARGET.as_secs_f64() * 1000.0);
        println!("{name:<66} {median:>9.1} {max:>8.1}  {}", verdict(max));
    }

    let client = browser(chromium, driver_url).await?;
    let result = async {
        let mut first_render = 0.0;
        for (i, (name, route)) in [
            ("the Jobs list rendered: navigation start -> rows in the DOM", "#/jobs"),
            ("filtered (#/jobs?state=GIVEN_UP&topic=bench/t4/*), rendered", "#/jobs?state=GIVEN_UP&topic=bench%2Ft4%2F*"),
        ]
        .into_iter()
        .enumerate()
        {
            let mut times = Vec::new();
            for _ in 0..args.runs.max(1) {
                client.goto("about:blank").await?;
                client.goto(&format!("{base}/{route}")).await?;
                let deadline = Instant::now() + Duration::from_secs(30);
                let drawn = loop {
                    let v = client
                        .execute(
                            "return [window.__jobListDrawnAt, document.querySelectorAll('#job-list tr[data-job]').length, window.__consoleErrors];",
                            vec![],
                        )
                        .await?;
                    if let Some(ms) = v[0].as_f64() {
                        if v[2].as_array().is_some_and(|e| !e.is_empty()) {
                            bail!("script errors on {route}: {}", v[2]);
                        }
                        if v[1] != json!(PAGE) {
                            bail!("{route} drew {} rows, not {PAGE}", v[1]);
                        }
                        break ms;
                    }
                    if Instant::now() > deadline {
                        bail!("{route}: the list was not drawn within 30 s");
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                };
                times.push(drawn);
            }
            let (median, max) = median_max(&mut times);
            if i == 0 {
                first_render = median;
            }
            over += usize::from(max > TARGET.as_secs_f64() * 1000.0);
            println!("{name:<66} {median:>9.1} {max:>8.1}  {}", verdict(max));
        }
        Ok::<_, anyhow::Error>(first_render)
    }
    .await;
    let _ = client.close().await;
    let first_render = result?;
    println!("first_page_server_ms={first_server:.1} first_page_render_ms={first_render:.1} over_target={over}");
    Ok(ExitCode::SUCCESS)
}

fn verdict(ms: f64) -> &'static str {
    if ms <= TARGET.as_secs_f64() * 1000.0 {
        "<= 1 s"
    } else {
        "OVER 1 s"
    }
}

fn median_max(times: &mut [f64]) -> (f64, f64) {
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], times[times.len() - 1])
}

fn on_path(names: &[&str]) -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in names {
            if dir.join(name).is_file() {
                return Ok(dir.join(name));
            }
        }
    }
    bail!("{} is not on the PATH (scripts/services installs Debian's chromium and chromium-driver)", names.join(" / "))
}

async fn wait_for_leader(http: &reqwest::Client, base: &str, leader: &mut Child, log: &Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(r) = http.get(format!("{base}/api/jobs?limit=1")).send().await {
            if r.status().is_success() {
                return Ok(());
            }
        }
        if let Some(status) = leader.try_wait()? {
            bail!("the leader exited ({status}): {}", std::fs::read_to_string(log).unwrap_or_default());
        }
        if Instant::now() > deadline {
            bail!("the leader did not answer within 120 s: {}", std::fs::read_to_string(log).unwrap_or_default());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn browser(chromium: &Path, driver_url: &str) -> anyhow::Result<fantoccini::Client> {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900"],
        }),
    );
    // chromedriver listens a moment after it starts.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match ClientBuilder::rustls()?.capabilities(caps.clone()).connect(driver_url).await {
            Ok(c) => return Ok(c),
            Err(e) if Instant::now() > deadline => bail!("no browser session from chromedriver within 20 s: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}
