//! `offloader-bench dam DIR`: whole assets through the real processes, offloaded to 1 and 2
//! workers and processed on the leader itself, side by side in one run.
//!
//! Every configuration gets a fresh leader process, fresh worker processes and its own
//! namespace, so none inherits another's blobs or queues. Images are uploaded the way users
//! upload them (`PUT /api/assets/...`, the leader streams them to the datastore); an asset
//! counts as done when its job is final, which is when the leader has committed its renditions.
//!
//! Two figures matter. Assets per second is what the cluster delivers. The leader's CPU time
//! per asset (read from `/proc`, so it is the leader process alone, not this client) is what
//! offloading is for: with the engine elsewhere, the leader only receives, records and
//! publishes, and the CPU that stays free serves users.

use crate::engine_run::image_files;
use crate::report::progress;
use crate::settings::Settings;
use anyhow::{bail, Context as _};
use futures::StreamExt;
use offloader::client::LeaderClient;
use offloader::protocol::workflow::OFFLOADING_TOPIC;
use offloader::protocol::{AssetPath, JobState};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "The last line is `offloaded_1_assets_per_s=… offloaded_2_assets_per_s=… \
local_assets_per_s=… leader_cpu_ms_offloaded=… leader_cpu_ms_local=… leader_cpu_local_vs_offloaded=…` \
(one offloaded_N entry per --workers value; leader_cpu_ms_offloaded is the mean over them). Needs RabbitMQ and the datastore \
(see scripts/services); each configuration runs in its own namespace (bench-<random>), whose queues \
are deleted at the end and whose blobs stay in the bucket. scripts/bench-dam builds a corpus of \
real photographs and runs this.")]
pub struct Args {
    /// A folder of JPEG and PNG images (not recursive).
    pub dir: PathBuf,

    /// Worker counts to measure offloading with, e.g. `1,2`.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    pub workers: Vec<usize>,

    /// Passes over the folder per configuration (each pass uploads its own assets).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,

    /// Uploads in flight at once.
    #[arg(long, default_value_t = 8)]
    pub inflight: usize,

    /// Engine runs at once in each worker, and on the leader when it processes itself.
    /// Default: the cores of this machine.
    #[arg(long)]
    pub concurrency: Option<usize>,
}

/// One configuration: offloaded to `workers` workers, or (0) processed on the leader.
#[derive(Debug, Clone, Copy)]
struct Setup {
    workers: usize,
}

impl Setup {
    fn local(self) -> bool {
        self.workers == 0
    }

    fn label(self) -> String {
        match self.workers {
            0 => "on the leader (dam/update_asset)".into(),
            1 => "offloaded to 1 worker".into(),
            n => format!("offloaded to {n} workers"),
        }
    }
}

/// What one configuration measured.
struct Measured {
    setup: Setup,
    assets: usize,
    seconds: f64,
    leader_cpu_s: f64,
    workers_cpu_s: f64,
}

impl Measured {
    fn assets_per_s(&self) -> f64 {
        self.assets as f64 / self.seconds.max(1e-9)
    }

    fn leader_cpu_ms(&self) -> f64 {
        1e3 * self.leader_cpu_s / self.assets.max(1) as f64
    }

    fn workers_cpu_ms(&self) -> f64 {
        1e3 * self.workers_cpu_s / self.assets.max(1) as f64
    }
}

pub async fn run(settings: &Settings, args: Args) -> anyhow::Result<ExitCode> {
    if args.rounds == 0 || args.inflight == 0 || args.workers.contains(&0) {
        bail!("--rounds, --inflight and each --workers value must be at least 1");
    }
    let corpus = corpus(&args.dir)?;
    let concurrency = args.concurrency.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    println!(
        "bench dam: {} images x {} rounds per configuration, {} uploads in flight, {} engine runs at once per process",
        corpus.len(),
        args.rounds,
        args.inflight,
        concurrency
    );
    let setups: Vec<Setup> =
        args.workers.iter().map(|&workers| Setup { workers }).chain([Setup { workers: 0 }]).collect();
    let mut results = Vec::new();
    for setup in setups {
        let m = measure(settings, &args, &corpus, setup, concurrency).await.with_context(|| setup.label())?;
        println!(
            "{}: {} assets in {:.2} s = {:.2} assets/s; leader CPU {:.1} ms/asset, workers CPU {:.1} ms/asset",
            setup.label(),
            m.assets,
            m.seconds,
            m.assets_per_s(),
            m.leader_cpu_ms(),
            m.workers_cpu_ms()
        );
        results.push(m);
    }
    print_summary(&results);
    Ok(ExitCode::SUCCESS)
}

fn print_summary(results: &[Measured]) {
    println!();
    println!("| where | assets/s | leader CPU ms/asset | workers CPU ms/asset |");
    println!("|---|---|---|---|");
    for m in results {
        println!(
            "| {} | {:.2} | {:.1} | {:.1} |",
            m.setup.label(),
            m.assets_per_s(),
            m.leader_cpu_ms(),
            m.workers_cpu_ms()
        );
    }
    let offloaded: Vec<&Measured> = results.iter().filter(|m| !m.setup.local()).collect();
    let local = results.iter().find(|m| m.setup.local());
    let mut last: Vec<String> = offloaded
        .iter()
        .map(|m| format!("offloaded_{}_assets_per_s={:.2}", m.setup.workers, m.assets_per_s()))
        .collect();
    let offloaded_cpu = offloaded.iter().map(|m| m.leader_cpu_ms()).sum::<f64>() / offloaded.len().max(1) as f64;
    if let Some(l) = local {
        last.push(format!("local_assets_per_s={:.2}", l.assets_per_s()));
        last.push(format!("leader_cpu_ms_offloaded={offloaded_cpu:.1}"));
        last.push(format!("leader_cpu_ms_local={:.1}", l.leader_cpu_ms()));
        last.push(format!("leader_cpu_local_vs_offloaded={:.1}", l.leader_cpu_ms() / offloaded_cpu.max(1e-9)));
    }
    println!("{}", last.join(" "));
}

/// The JPEG and PNG files directly in `dir`, sorted.
fn corpus(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let files = image_files(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    let images: Vec<PathBuf> = files
        .into_iter()
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| ["jpg", "jpeg", "png"].contains(&e.to_ascii_lowercase().as_str()))
        })
        .collect();
    if images.is_empty() {
        bail!("no .jpg, .jpeg or .png files in {}", dir.display());
    }
    Ok(images)
}

/// The processes of one configuration, killed when dropped (`kill_on_drop`), also when the
/// bench fails.
struct Processes {
    leader: Child,
    workers: Vec<Child>,
    logs: tempfile::TempDir,
}

impl Processes {
    fn log(&self, name: &str) -> PathBuf {
        self.logs.path().join(format!("{name}.log"))
    }

    /// Fails with the log's path if a process has exited.
    fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.leader.try_wait()? {
            bail!("the leader exited ({status}); its log: {}", self.log("leader").display());
        }
        for (i, w) in self.workers.iter_mut().enumerate() {
            if let Some(status) = w.try_wait()? {
                bail!(
                    "worker {} exited ({status}); its log: {}",
                    i + 1,
                    self.logs.path().join(format!("worker-{}.log", i + 1)).display()
                );
            }
        }
        Ok(())
    }

    fn cpu_seconds(&self) -> anyhow::Result<(f64, f64)> {
        let leader = cpu_seconds(&self.leader)?;
        let mut workers = 0.0;
        for w in &self.workers {
            workers += cpu_seconds(w)?;
        }
        Ok((leader, workers))
    }
}

/// User + system CPU seconds a running child has used, from `/proc/<pid>/stat`.
fn cpu_seconds(child: &Child) -> anyhow::Result<f64> {
    let pid = child.id().context("the process has exited")?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).context("reading /proc (Linux only)")?;
    // The command name, in parentheses, may hold spaces: the fields start after the last ')'.
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).context("unexpected /proc/<pid>/stat");
    // utime and stime are the 14th and 15th fields; the rest starts at the 3rd.
    let used = ticks(11)? + ticks(12)?;
    // SAFETY: sysconf reads a constant of the system and has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    Ok(used / if per_second > 0 { per_second as f64 } else { 100.0 })
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn spawn(exe: &Path, settings: &Settings, namespace: &str, log: &Path, args: &[&str]) -> anyhow::Result<Child> {
    let log = std::fs::File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
    Command::new(exe)
        .args(["--namespace", namespace, "--amqp-url", &settings.amqp_url, "--cluster", &settings.cluster])
        .args(args)
        .env("RUST_LOG", "warn")
        .env_remove("OFFLOADER_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .context("cannot start an offloader process")
}

async fn start(
    settings: &Settings,
    setup: Setup,
    namespace: &str,
    concurrency: usize,
) -> anyhow::Result<(Processes, String)> {
    let exe = settings.offloader()?;
    let logs = tempfile::tempdir().context("cannot create a temporary directory")?;
    let dir = logs.path().to_owned();
    let url = format!("127.0.0.1:{}", free_port()?);
    let data = dir.join("leader").to_string_lossy().into_owned();
    let mut leader_args =
        vec!["leader", "--name", "bench-leader", "--data-dir", &data, "--http", &url, "--heartbeat-interval", "1s"];
    let launchers = dir.join("launchers.toml");
    let launchers_s = launchers.to_string_lossy().into_owned();
    let concurrency_s = concurrency.to_string();
    if setup.local() {
        std::fs::write(
            &launchers,
            "[[launcher]]\nid = \"local\"\nevent = \"created\"\npath = \"/content/dam/**\"\nmime_type = \"image/*\"\nworkflow = \"dam/update_asset\"\n",
        )?;
        leader_args.extend(["--launchers", &launchers_s, "--local-concurrency", &concurrency_s]);
    }
    let leader = spawn(&exe, settings, namespace, &dir.join("leader.log"), &leader_args)?;
    let mut procs = Processes { leader, workers: Vec::new(), logs };
    for i in 1..=setup.workers {
        let name = format!("bench-worker-{i}");
        let data = dir.join(&name).to_string_lossy().into_owned();
        let args = [
            "worker",
            "--name",
            &name,
            "--data-dir",
            &data,
            "--heartbeat-interval",
            "1s",
            "--concurrency",
            &concurrency_s,
            "--allow",
            OFFLOADING_TOPIC,
        ];
        let child = spawn(&exe, settings, namespace, &dir.join(format!("worker-{i}.log")), &args)?;
        procs.workers.push(child);
    }
    Ok((procs, format!("http://{url}")))
}

async fn measure(
    settings: &Settings,
    args: &Args,
    corpus: &[PathBuf],
    setup: Setup,
    concurrency: usize,
) -> anyhow::Result<Measured> {
    let namespace = Settings::namespace();
    let (mut procs, url) = start(settings, setup, &namespace, concurrency).await?;
    let client = LeaderClient::new(&url, None)?;
    wait_healthy(&mut procs, &client).await?;

    // Warm-up: the first asset declares the offloading queue; then wait for every worker to
    // consume it, so the measurement starts with the whole pool.
    let warmup = AssetPath::parse(&format!("/content/dam/bench-warmup/{}", asset_name(&corpus[0])))?;
    process(&client, &warmup, read(&corpus[0]).await?).await?;
    let broker = settings.broker(&namespace, "dam").await?;
    let queue = broker.names().topic_queue(&OFFLOADING_TOPIC.parse()?);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !setup.local() {
        procs.check_alive()?;
        let consumers = broker.queue_depth(&queue).await?.map_or(0, |d| d.consumers as usize);
        if consumers >= setup.workers {
            break;
        }
        if Instant::now() > deadline {
            bail!("only {consumers} of {} workers consume {queue} after 60 s", setup.workers);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let work: Vec<(usize, usize)> = (0..args.rounds).flat_map(|r| (0..corpus.len()).map(move |i| (r, i))).collect();
    let bar = progress(work.len(), "assets");
    bar.set_message(setup.label());
    let (leader_before, workers_before) = procs.cpu_seconds()?;
    let started = Instant::now();
    let outcomes: Vec<anyhow::Result<()>> = futures::stream::iter(work)
        .map(|(round, i)| {
            let (client, bar) = (&client, bar.clone());
            async move {
                let file = &corpus[i];
                let path = AssetPath::parse(&format!("/content/dam/bench/r{round}/{i:04}-{}", asset_name(file)))?;
                process(client, &path, read(file).await?).await.with_context(|| file.display().to_string())?;
                bar.inc(1);
                Ok(())
            }
        })
        .buffer_unordered(args.inflight)
        .collect()
        .await;
    let seconds = started.elapsed().as_secs_f64();
    let (leader_after, workers_after) = procs.cpu_seconds()?;
    bar.finish_and_clear();
    let assets = outcomes.len();
    for outcome in outcomes {
        outcome?;
    }

    drop(procs);
    if let Err(e) = broker.delete_namespace(&[OFFLOADING_TOPIC.parse()?]).await {
        tracing::warn!(error = %e, "could not delete the bench's AMQP objects");
    }
    broker.close();
    Ok(Measured {
        setup,
        assets,
        seconds,
        leader_cpu_s: leader_after - leader_before,
        workers_cpu_s: workers_after - workers_before,
    })
}

async fn wait_healthy(procs: &mut Processes, client: &LeaderClient) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.list_jobs(&[("limit", "1".into())]).await.is_err() {
        procs.check_alive()?;
        if Instant::now() > deadline {
            bail!("the leader did not answer within 30 s; its log: {}", procs.log("leader").display());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Uploads one asset and waits until its workflow has finished; anything but SUCCEEDED fails.
async fn process(client: &LeaderClient, path: &AssetPath, bytes: Vec<u8>) -> anyhow::Result<()> {
    let outcome = client.put_asset(path, bytes).await?;
    let Some(job) = outcome.job else {
        bail!(
            "{path}: no workflow started ({})",
            outcome.workflow_error.unwrap_or_else(|| "no launcher matched".into())
        );
    };
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let rec = client.get_job(job.id, Duration::from_secs(30)).await?;
        match rec.state {
            JobState::Succeeded => return Ok(()),
            s if s.is_final() => bail!("{path}: job {} ended {s}: {:?}", rec.id, rec.result),
            s if Instant::now() > deadline => bail!("{path}: job {} still {s} after 10 minutes", rec.id),
            _ => {}
        }
    }
}

async fn read(file: &Path) -> anyhow::Result<Vec<u8>> {
    tokio::fs::read(file).await.with_context(|| format!("cannot read {}", file.display()))
}

/// The file's name, reduced to characters every asset path accepts.
fn asset_name(file: &Path) -> String {
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' }).collect()
}
