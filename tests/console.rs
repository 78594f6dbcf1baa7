//! The web console in a real browser: headless Chromium driven through chromedriver (WebDriver)
//! against a leader (with a token) and a worker of the real services. Every page loads without
//! a script error; the Offloading Browser disables a topic on the worker and shows it once the
//! worker confirms; a dead letter is replayed from Failures; a new job appears in the Jobs list
//! without a reload; a given-up job is retried, a running one stopped and one removed from their
//! pages; an asset's rendition is drawn and the asset reprocessed; the pages fit a phone; the
//! overview charts the last minutes and the Offloading Browser shows each topic's rate. The
//! Jobs list filters by state, topic, time and properties and pages along the cursor; the jobs
//! a filter selects are removed in bulk after a confirmation that counts them; Failures
//! replays every dead letter at once.
//!
//! With `OFFLOADER_SCREENSHOTS=1`, each page is saved to `docs/console/<page>.png` (the README
//! shows them); without, nothing in the tree changes.

mod common;

use common::cluster::{free_port, Cluster};
use fantoccini::{Client, ClientBuilder, Locator};
use image::{ImageFormat, Rgb, RgbImage};
use lapin::options::{BasicGetOptions, BasicNackOptions};
use serde_json::{json, Value};
use std::io::Cursor;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TOKEN: &str = "s3cret";
const OFFLOADING: &str = "com/adobe/granite/workflow/offloading";

/// A program on the PATH, or a failure that says how to get it.
fn require(names: &[&str]) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in names {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "{} is not installed: the console test needs headless Chromium and chromedriver. Install them with \
         `eval \"$(scripts/services)\"` (it installs Debian's chromium and chromium-driver).",
        names.join(" / ")
    );
}

/// chromedriver (killed when dropped) and a browser session in it.
struct Browser {
    driver: Child,
    client: Client,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

async fn start_browser() -> Browser {
    let chromium = require(&["chromium", "chromium-browser", "google-chrome"]);
    let chromedriver = require(&["chromedriver"]);
    let port = free_port();
    let driver = Command::new(&chromedriver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromedriver.display()));
    let profile = tempfile::TempDir::new().expect("a browser profile dir");
    let url = format!("http://127.0.0.1:{port}");
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,900", "--hide-scrollbars", format!("--user-data-dir={}", profile.path().display())],
        }),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let client = loop {
        match ClientBuilder::rustls().expect("a TLS setup").capabilities(caps.clone()).connect(&url).await {
            Ok(c) => break c,
            Err(e) => {
                assert!(Instant::now() < deadline, "chromedriver at {url} gave no browser session within 20 s: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    Browser { driver, client, _profile: profile }
}

/// The page, seen from the browser.
struct Page<'a> {
    b: &'a Client,
    base: String,
}

impl Page<'_> {
    async fn js(&self, script: &str) -> Value {
        self.b.execute(script, vec![]).await.unwrap_or_else(|e| panic!("script {script:?} failed: {e}"))
    }

    /// Waits until `condition` (a JS expression) is truthy.
    async fn wait(&self, condition: &str, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let script = format!("return !!({condition});");
        loop {
            if self.js(&script).await == Value::Bool(true) {
                return;
            }
            if Instant::now() > deadline {
                let text = self.js("return document.querySelector('main').innerText").await;
                let errors = self.js("return window.__consoleErrors").await;
                panic!("{what}: not so within 30 s ({condition}).\npage:\n{text}\nerrors: {errors}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Goes to a console route without reloading the page, and waits until it has drawn.
    async fn open(&self, hash: &str, page: &str) {
        self.js(&format!("location.hash = {}; return null;", json!(hash))).await;
        self.wait(
            &format!(
                "document.querySelector('#view').dataset.page === '{page}' && document.querySelector('#view').dataset.loaded \
                 && document.querySelector('#view').dataset.route === location.hash"
            ),
            &format!("page {page} at {hash}"),
        )
        .await;
        self.no_errors(hash).await;
    }

    async fn no_errors(&self, when: &str) {
        let errors = self.js("return window.__consoleErrors").await;
        assert_eq!(errors, json!([]), "script errors on {when}");
    }

    /// Clicks the element `css` finds. The console redraws a page when its event stream brings
    /// news, which can replace the element between finding and clicking it ("stale element"):
    /// then it is found again.
    async fn click(&self, css: &str) {
        for tries in 1.. {
            let el = self.b.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("no {css} on the page: {e}"));
            match el.click().await {
                Ok(()) => return,
                Err(e) if tries < 10 && e.to_string().contains("stale element") => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("clicking {css}: {e}"),
            }
        }
    }

    /// Accepts the console's confirmation dialog.
    async fn confirm(&self) {
        self.wait("document.querySelector('#confirm-dialog').open", "the confirmation dialog").await;
        self.click("#confirm-ok").await;
    }

    async fn screenshot(&self, name: &str) {
        if std::env::var("OFFLOADER_SCREENSHOTS").as_deref() != Ok("1") {
            return;
        }
        // Let images and the last poll settle, so the picture is what a user sees.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let png = self.b.screenshot().await.expect("a screenshot");
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/console");
        std::fs::create_dir_all(&dir).expect("docs/console");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("writing a screenshot");
    }
}

/// A photo-like JPEG.
fn jpeg(width: u32, height: u32) -> Vec<u8> {
    let img = RgbImage::from_fn(width, height, |x, y| {
        Rgb([(x * 255 / width) as u8, (y * 255 / height) as u8, (((x / 40) + (y / 40)) % 2 * 160) as u8])
    });
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Jpeg).expect("encoding a test JPEG");
    out.into_inner()
}

/// A change over the API, with the token.
async fn post(c: &Cluster, path: &str, body: Value) -> Value {
    let resp = c.http.post(c.url(path)).bearer_auth(TOKEN).json(&body).send().await.expect("POST");
    let status = resp.status();
    let body: Value = resp.json().await.expect("a JSON answer");
    assert!(status.is_success(), "POST {path}: {status} {body}");
    body
}

async fn submit(c: &Cluster, topic: &str, max_attempts: Option<u32>) -> String {
    c.also_delete(topic);
    let job = post(c, "/api/jobs", json!({"topic": topic, "max_attempts": max_attempts})).await;
    job["id"].as_str().expect("a job id").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_every_page_and_its_actions_work_in_a_real_browser() {
    let mut c = Cluster::new().await;
    c.start_leader(&["--token", TOKEN]).await;
    let _w1 = c.start_worker("w1", &[]).await;
    c.also_delete(OFFLOADING);

    // Something to show: a processed photo, a done job, a given-up job.
    let photo = "/content/dam/console/photo.jpg";
    let resp =
        c.http.put(c.url(&format!("/api/assets{photo}"))).bearer_auth(TOKEN).body(jpeg(640, 480)).send().await.unwrap();
    assert!(resp.status().is_success(), "uploading the photo: {}", resp.status());
    let noop = submit(&c, "offloader/noop", None).await;
    assert_eq!(c.wait_job(&noop, Duration::from_secs(30)).await["state"], "SUCCEEDED");
    let failing = submit(&c, "offloader/fail", Some(1)).await;
    let given_up = c.wait_job(&failing, Duration::from_secs(30)).await;
    assert_eq!(given_up["state"], "GIVEN_UP", "{given_up}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let asset: Value =
            c.http.get(c.url(&format!("/api/assets{photo}"))).send().await.unwrap().json().await.unwrap();
        if asset["job"]["state"] == "SUCCEEDED" {
            break;
        }
        assert!(Instant::now() < deadline, "the photo was not processed within 60 s: {asset}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let browser = start_browser().await;
    let base = c.url("");
    let p = Page { b: &browser.client, base };
    p.b.goto(&format!("{}/#/", p.base)).await.expect("opening the console");
    p.wait("document.querySelector('#view').dataset.loaded", "the overview").await;
    p.no_errors("the overview").await;
    p.wait("Number(document.querySelector('#card-instances .value').textContent) >= 2", "two instances up").await;
    p.wait("document.querySelector('#ov-states [data-state=GIVEN_UP] b').textContent === '1'", "one job given up")
        .await;
    // The last minutes' chart: bars for the two jobs that finished, one of them failed.
    p.wait(
        "document.querySelectorAll('#chart-throughput rect.ok').length >= 1 && document.querySelector('#chart-throughput rect.bad') \
         && document.querySelector('#chart-latency polyline.p95, #chart-latency circle.p95')",
        "the throughput and latency chart",
    )
    .await;
    p.screenshot("overview").await;

    // Every page draws without a script error.
    p.open("#/topology", "topology").await;
    p.wait("document.querySelector('[data-instance=w1] .props')", "w1's properties").await;
    p.wait(
        "document.querySelector('.instance .mark.leader') && document.querySelector('.instance .mark.current')",
        "the leader and current markers",
    )
    .await;
    p.screenshot("topology").await;

    // Offloading Browser: disable offloader/noop on w1 with one click; the leader asks for the
    // token first (a 401), kept for the rest of the session.
    p.open("#/offloading", "offloading").await;
    let cell = "td[data-topic='offloader/noop'][data-instance='w1']";
    p.wait(&format!("document.querySelector(\"{cell}\").dataset.state === 'enabled'"), "noop enabled on w1").await;
    p.wait(
        "Number(document.querySelector(\"tr[data-topic='offloader/noop'] .rate\").dataset.rate) > 0",
        "noop's rate over the last 5 minutes",
    )
    .await;
    p.click(&format!("{cell} button[data-set=disabled]")).await;
    p.wait("document.querySelector('#token-dialog').open", "the token dialog").await;
    p.b.find(Locator::Css("#token-input")).await.expect("the token field").send_keys(TOKEN).await.expect("typing");
    p.click("#token-ok").await;
    p.wait(
        &format!("document.querySelector(\"{cell}\").dataset.state === 'disabled' && !document.querySelector(\"{cell}\").dataset.pending"),
        "noop disabled on w1, confirmed",
    )
    .await;
    assert_eq!(p.js("return sessionStorage.getItem('offloader.token')").await, json!(TOKEN));
    let w1 = c.instance("w1").await.expect("w1");
    let state = w1["consumers"].as_array().and_then(|cs| cs.iter().find(|x| x["topic"] == "offloader/noop")).cloned();
    assert_eq!(state.map(|s| s["state"].clone()), Some(json!("disabled")), "{w1}");
    c.wait_queue_consumers("offloader/noop", 0).await;
    p.no_errors("the offloading browser").await;
    p.screenshot("offloading").await;

    // Jobs: a job created now appears in the list without a reload.
    p.open("#/jobs", "jobs").await;
    p.js("window.__sameDocument = true; return null;").await;
    let late = submit(&c, "offloader/noop", None).await;
    p.wait(
        &format!("document.querySelector(\"tr[data-job='{late}']\") && window.__sameDocument"),
        "the new job in the list",
    )
    .await;
    p.wait("window.__jobEvents > 0", "a job change pushed by GET /api/events").await;
    p.screenshot("jobs").await;

    // Failures: the new job and another, dead-lettered from their queue (nobody consumes it
    // now): one shown and discarded, the other replayed.
    let doomed = submit(&c, "offloader/noop", None).await;
    let ch = common::cluster::raw_channel(&c.amqp).await;
    let queue = format!("{}.jobs.offloader.noop", c.namespace);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut rejected = 0;
    while rejected < 2 {
        match ch.basic_get(queue.as_str().into(), BasicGetOptions { no_ack: false }).await.expect("basic.get") {
            Some(m) => {
                m.delivery.acker.nack(BasicNackOptions { multiple: false, requeue: false }).await.expect("nack");
                rejected += 1;
            }
            None => {
                assert!(Instant::now() < deadline, "jobs {late} and {doomed} never reached their queue");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    p.open("#/failures", "failures").await;
    let row = format!("tr[data-message='{late}']");
    let other = format!("tr[data-message='{doomed}']");
    p.wait(
        &format!("document.querySelector(\"{row}\") && document.querySelector(\"{other}\")"),
        "the dead letters in Failures",
    )
    .await;
    p.screenshot("failures").await;
    p.click(&format!("{other} a[href^='#/failures/']")).await;
    p.wait(
        &format!("document.querySelector('#view').dataset.page === 'deadLetter' && document.querySelector('pre.preview') && document.querySelector('pre.preview').textContent.includes('{doomed}')"),
        "the dead letter shown with its preview",
    )
    .await;
    p.no_errors("a dead letter's page").await;
    p.click("button[data-action=dead-discard]").await;
    p.confirm().await;
    p.wait("document.querySelector('#flash').textContent.includes('Discarded')", "the dead letter discarded").await;
    p.open("#/failures", "failures").await;
    p.wait(&format!("!document.querySelector(\"{other}\")"), "the discarded dead letter gone").await;
    p.click(&format!("{row} button[data-action=dead-replay]")).await;
    p.confirm().await;
    p.wait(
        &format!(
            "!document.querySelector(\"{row}\") && document.querySelector('#flash').textContent.includes('Replayed')"
        ),
        "the dead letter replayed",
    )
    .await;
    // Enabled again from the console, the worker runs the replayed job.
    p.open("#/offloading", "offloading").await;
    p.click(&format!("{cell} button[data-set=enabled]")).await;
    p.wait(&format!("document.querySelector(\"{cell}\").dataset.state === 'enabled' && !document.querySelector(\"{cell}\").dataset.pending"), "noop enabled again")
        .await;
    assert_eq!(c.wait_job(&late, Duration::from_secs(30)).await["state"], "SUCCEEDED");

    // A given-up job retried from its page: it runs (and fails) again, a higher attempt.
    p.open(&format!("#/jobs/{failing}"), "job").await;
    let attempt = given_up["attempt"].as_u64().expect("an attempt number");
    p.wait("document.querySelector('#job-props').dataset.state === 'GIVEN_UP'", "the given-up job").await;
    p.screenshot("job").await;
    p.click("#job-retry").await;
    p.confirm().await;
    p.wait(&format!("Number(document.querySelector('#job-props').dataset.attempt) > {attempt}"), "a new attempt").await;
    let again = c.wait_job_until(&failing, Duration::from_secs(30), |j| j["attempt"].as_u64() > Some(attempt)).await;
    assert!(again["retries"].as_u64() >= Some(1), "{again}");
    p.wait("document.querySelector('#job-props').dataset.state === 'GIVEN_UP'", "the retried job given up again").await;
    // And again with the bulk retry of the jobs the list's filters select.
    let second = c.job(&failing).await["attempt"].as_u64().expect("an attempt number");
    p.open("#/jobs?state=GIVEN_UP&topic=offloader/fail", "jobs").await;
    p.wait(&format!("document.querySelector(\"tr[data-job='{failing}']\")"), "the given-up job in the filtered list")
        .await;
    p.click("#retry-matching").await;
    p.confirm().await;
    p.wait("document.querySelector('#flash').textContent.includes('1 job(s) queued again')", "the bulk retry").await;
    c.wait_job_until(&failing, Duration::from_secs(30), |j| j["attempt"].as_u64() > Some(second)).await;

    // Assets: browse to the photo; its rendition thumbnails are really drawn.
    p.open("#/assets?folder=/content/dam/console", "assets").await;
    p.wait(&format!("document.querySelector(\"tr[data-asset='{photo}'] a\")"), "the photo in its folder").await;
    p.screenshot("assets").await;
    p.click(&format!("tr[data-asset='{photo}'] a")).await;
    p.wait(
        "document.querySelector('#view').dataset.page === 'asset' && document.querySelector('#view').dataset.loaded",
        "the asset page",
    )
    .await;
    p.wait(
        "[...document.querySelectorAll('#asset-renditions img')].length >= 2 && \
         [...document.querySelectorAll('#asset-renditions img')].every(i => i.complete && i.naturalWidth > 0)",
        "every rendition image drawn",
    )
    .await;
    let thumbs =
        p.js("return [...document.querySelectorAll('#asset-renditions figure')].map(f => f.dataset.rendition)").await;
    assert!(
        thumbs.as_array().is_some_and(|t| t.iter().any(|n| n.as_str().is_some_and(|n| n.contains("thumbnail")))),
        "{thumbs}"
    );
    p.no_errors("the asset page").await;
    p.screenshot("asset").await;
    p.click("#asset-reprocess").await;
    p.confirm().await;
    p.wait("document.querySelector('#flash').textContent.includes('Workflow started')", "the reprocess started").await;

    // A running job stopped from its page; a job removed from its page.
    c.also_delete("offloader/sleep");
    let sleeping = post(&c, "/api/jobs", json!({"topic": "offloader/sleep", "properties": {"ms": 60000}})).await;
    let sleeping = sleeping["id"].as_str().expect("a job id").to_owned();
    c.wait_job_until(&sleeping, Duration::from_secs(30), |j| j["state"] == "ACTIVE").await;
    p.open(&format!("#/jobs/{sleeping}"), "job").await;
    p.click("#job-stop").await;
    p.confirm().await;
    p.wait("document.querySelector('#job-props').dataset.state === 'STOPPED'", "the job stopped").await;
    assert_eq!(c.job(&sleeping).await["state"], "STOPPED");
    p.open(&format!("#/jobs/{noop}"), "job").await;
    p.click("#job-remove").await;
    p.confirm().await;
    p.wait(
        "location.hash === '#/jobs' && document.querySelector('#flash').textContent.includes('removed')",
        "back to the list, the job removed",
    )
    .await;
    let gone = c.http.get(c.url(&format!("/api/jobs/{noop}"))).send().await.expect("GET the removed job");
    assert_eq!(gone.status().as_u16(), 404);

    // Keyboard: the skip link moves the focus to the page (without changing the route), and
    // the live toggle pauses and resumes.
    let hash = p.js("return location.hash").await;
    let skip = p.b.find(Locator::Css("a.skip")).await.expect("the skip link");
    skip.send_keys("\u{E007}").await.expect("Enter on the skip link");
    p.wait("document.activeElement === document.querySelector('#view')", "the focus on the page").await;
    assert_eq!(p.js("return location.hash").await, hash);
    let live = p.b.find(Locator::Css("#live-toggle")).await.expect("the live toggle");
    live.send_keys("\u{E007}").await.expect("Enter on the live toggle");
    p.wait("document.querySelector('#live-toggle').getAttribute('aria-pressed') === 'false'", "paused").await;
    live.send_keys("\u{E007}").await.expect("Enter on the live toggle");
    p.wait("document.querySelector('#live-toggle').getAttribute('aria-pressed') === 'true'", "live again").await;

    // Phone width: the pages fit, tables scroll inside their boxes.
    p.b.set_window_size(390, 844).await.expect("a phone-sized window");
    for (hash, page) in
        [("#/", "overview"), ("#/jobs", "jobs"), ("#/topology", "topology"), ("#/offloading", "offloading")]
    {
        p.open(hash, page).await;
        let fits = p.js("return document.documentElement.scrollWidth <= window.innerWidth + 1").await;
        assert_eq!(fits, json!(true), "{hash} is wider than a phone");
    }
    p.open("#/jobs", "jobs").await;
    p.screenshot("phone-jobs").await;
    p.no_errors("the end").await;

    let Browser { client, .. } = &browser;
    client.clone().close().await.expect("closing the browser");
    drop(browser);
    c.finish().await;
}

/// The ids of the rows the Jobs list shows, top to bottom.
async fn rows(p: &Page<'_>) -> Vec<String> {
    let ids = p.js("return [...document.querySelectorAll('#job-list tr[data-job]')].map(r => r.dataset.job)").await;
    serde_json::from_value(ids).expect("a list of ids")
}

/// Sets a filter field of the Jobs list.
async fn set_filter(p: &Page<'_>, id: &str, value: &str) {
    p.js(&format!("document.querySelector('#{id}').value = {}; return null;", json!(value))).await;
}

/// Submits the Jobs list's filters, and waits until the list shows them.
async fn apply_filters(p: &Page<'_>, expect_hash: &str) {
    p.click("#job-filter button[type=submit]").await;
    p.wait(
        &format!(
            "location.hash === {} && document.querySelector('#view').dataset.route === location.hash && document.querySelector('#view').dataset.loaded",
            json!(expect_hash)
        ),
        &format!("the list filtered as {expect_hash}"),
    )
    .await;
    p.no_errors(expect_hash).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_job_list_filters_and_pages_by_cursor_and_acts_on_whole_selections() {
    let mut c = Cluster::new().await;
    c.start_leader(&[]).await;
    // No worker: the jobs stay QUEUED where the test puts them.
    let mut a = Vec::new();
    for n in 0..60 {
        c.also_delete("console/a");
        let job = post(&c, "/api/jobs", json!({"topic": "console/a", "properties": {"n": n}})).await;
        a.push(job["id"].as_str().expect("a job id").to_owned());
    }
    let mut b = Vec::new();
    for n in 0..5 {
        c.also_delete("console/b");
        let job = post(&c, "/api/jobs", json!({"topic": "console/b", "properties": {"n": n}})).await;
        b.push(job["id"].as_str().expect("a job id").to_owned());
    }
    // Three stopped: they finished (STOPPED) now, which the overview's chart shows.
    for id in &a[..3] {
        post(&c, &format!("/api/jobs/{id}/stop"), json!({})).await;
    }
    let newest_first = |ids: &[String]| ids.iter().rev().cloned().collect::<Vec<_>>();

    let browser = start_browser().await;
    let p = Page { b: &browser.client, base: c.url("") };
    p.b.goto(&format!("{}/#/", p.base)).await.expect("opening the console");
    p.wait("document.querySelector('#view').dataset.loaded", "the overview").await;
    p.wait("document.querySelector('#chart-throughput figcaption').textContent.includes('3 finished')", "the chart")
        .await;
    p.no_errors("the overview").await;

    // Unfiltered, the newest 25 of the 65 jobs.
    p.open("#/jobs", "jobs").await;
    let all: Vec<String> = newest_first(&b).into_iter().chain(newest_first(&a)).collect();
    assert_eq!(rows(&p).await, all[..25].to_vec());
    // By topic: the five of console/b only.
    set_filter(&p, "filter-topic", "console/b").await;
    apply_filters(&p, "#/jobs?topic=console%2Fb").await;
    assert_eq!(rows(&p).await, newest_first(&b));
    // By state: console/* jobs STOPPED are the three stopped ones; none SUCCEEDED.
    set_filter(&p, "filter-topic", "console/*").await;
    set_filter(&p, "filter-state", "STOPPED").await;
    apply_filters(&p, "#/jobs?state=STOPPED&topic=console%2F*").await;
    assert_eq!(rows(&p).await, newest_first(&a[..3]));
    set_filter(&p, "filter-state", "SUCCEEDED").await;
    apply_filters(&p, "#/jobs?state=SUCCEEDED&topic=console%2F*").await;
    p.wait("document.querySelector('#no-jobs')", "no job matches").await;
    // By property, with alternatives: n >= 58 or n = 1, on console/a.
    set_filter(&p, "filter-state", "").await;
    set_filter(&p, "filter-topic", "console/a").await;
    set_filter(&p, "filter-where", "n>=58 | n=1").await;
    apply_filters(&p, "#/jobs?topic=console%2Fa&where=n%3E%3D58+%7C+n%3D1").await;
    assert_eq!(rows(&p).await, vec![a[59].clone(), a[58].clone(), a[1].clone()]);
    // A malformed property search is said, not thrown.
    set_filter(&p, "filter-where", "n>>1").await;
    apply_filters(&p, "#/jobs?topic=console%2Fa&where=n%3E%3E1").await;
    p.wait("document.querySelector('#filter-error')", "the refused search explained").await;
    // By creation time: nothing was created before an hour ago, everything after.
    let hour_ago = chrono::Local::now() - chrono::Duration::hours(1);
    let local = hour_ago.format("%Y-%m-%dT%H:%M:%S").to_string();
    set_filter(&p, "filter-where", "").await;
    set_filter(&p, "filter-before", &local).await;
    apply_filters(&p, &format!("#/jobs?topic=console%2Fa&before={}", local.replace(':', "%3A"))).await;
    p.wait("document.querySelector('#no-jobs')", "nothing created before an hour ago").await;
    set_filter(&p, "filter-before", "").await;
    set_filter(&p, "filter-after", &local).await;
    apply_filters(&p, &format!("#/jobs?topic=console%2Fa&after={}", local.replace(':', "%3A"))).await;
    let a_newest = newest_first(&a);
    assert_eq!(rows(&p).await, a_newest[..25].to_vec());

    // Paging along the cursor: 60 jobs of console/a are 25 + 25 + 10, and back.
    p.open("#/jobs?topic=console%2Fa", "jobs").await;
    assert_eq!(rows(&p).await, a_newest[..25].to_vec());
    p.screenshot("jobs-filtered").await;
    p.click("#page-older").await;
    p.wait("document.querySelector('#page-number')?.textContent === 'Page 2' && document.querySelector('#view').dataset.loaded", "page 2").await;
    assert!(
        p.js("return location.hash").await.as_str().is_some_and(|h| h.contains("cursor=")),
        "the cursor in the route"
    );
    assert_eq!(rows(&p).await, a_newest[25..50].to_vec());
    p.click("#page-older").await;
    p.wait("document.querySelector('#page-number')?.textContent === 'Page 3' && document.querySelector('#view').dataset.loaded", "page 3").await;
    assert_eq!(rows(&p).await, a_newest[50..].to_vec());
    assert_eq!(
        p.js("return document.querySelector('#page-older').tagName").await,
        json!("SPAN"),
        "no page after the last"
    );
    p.click("#page-newer").await;
    p.wait("document.querySelector('#page-number')?.textContent === 'Page 2' && document.querySelector('#view').dataset.loaded", "back to page 2").await;
    assert_eq!(rows(&p).await, a_newest[25..50].to_vec());
    p.no_errors("paging").await;

    // Remove all matching: the confirmation counts the selection; afterwards it is gone.
    p.open("#/jobs?topic=console%2Fb", "jobs").await;
    p.click("#remove-matching").await;
    p.wait("document.querySelector('#confirm-dialog').open", "the confirmation").await;
    let question = p.js("return document.querySelector('#confirm-text').textContent").await;
    assert!(question.as_str().is_some_and(|q| q.starts_with("Remove 5 job(s) (on console/b)")), "{question}");
    p.screenshot("jobs-bulk").await;
    p.click("#confirm-ok").await;
    p.wait("document.querySelector('#flash').textContent.includes('5 job(s) removed')", "the bulk removal").await;
    p.wait("document.querySelector('#no-jobs')", "the list empty").await;
    for id in &b {
        let resp = c.http.get(c.url(&format!("/api/jobs/{id}"))).send().await.expect("GET a removed job");
        assert_eq!(resp.status().as_u16(), 404, "job {id} is still there");
    }
    let left: Value = c.http.get(c.url("/api/jobs/count?topic=console/a")).send().await.unwrap().json().await.unwrap();
    assert_eq!(left["count"], 60, "the other topic is untouched: {left}");
    // Cancelled, nothing happens.
    p.open("#/jobs?topic=console%2Fa", "jobs").await;
    p.click("#remove-matching").await;
    p.wait("document.querySelector('#confirm-dialog').open", "the confirmation").await;
    p.click("#confirm-cancel").await;
    let left: Value = c.http.get(c.url("/api/jobs/count?topic=console/a")).send().await.unwrap().json().await.unwrap();
    assert_eq!(left["count"], 60, "a cancelled removal removed: {left}");

    // Replay all: two messages of console/a dead-lettered, both replayed at once.
    let ch = common::cluster::raw_channel(&c.amqp).await;
    let queue = format!("{}.jobs.console.a", c.namespace);
    for _ in 0..2 {
        let m = ch.basic_get(queue.as_str().into(), BasicGetOptions { no_ack: false }).await.expect("basic.get");
        let m = m.expect("a job message in console/a's queue");
        m.delivery.acker.nack(BasicNackOptions { multiple: false, requeue: false }).await.expect("nack");
    }
    p.open("#/failures", "failures").await;
    p.wait("document.querySelectorAll('tr[data-dead]').length === 2", "two dead letters").await;
    p.click("#dead-replay-all").await;
    p.wait("document.querySelector('#confirm-dialog').open", "the confirmation").await;
    let question = p.js("return document.querySelector('#confirm-text').textContent").await;
    assert!(question.as_str().is_some_and(|q| q.starts_with("Replay all 2 dead letter(s)")), "{question}");
    p.click("#confirm-ok").await;
    p.wait(
        "document.querySelector('#flash').textContent.includes('2 replayed') && document.querySelector('#no-dead')",
        "every dead letter replayed",
    )
    .await;
    // Back in their queue: all 60 messages of console/a wait there again (stopping a job that
    // waits does not take its message out).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let q = c.queue("console/a").await;
        if q["messages"] == 60 {
            break;
        }
        assert!(Instant::now() < deadline, "the replayed messages are not back in console/a's queue: {q}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    p.no_errors("the end").await;

    let Browser { client, .. } = &browser;
    client.clone().close().await.expect("closing the browser");
    drop(browser);
    c.finish().await;
}
