//! `offloader-bench takeover`: how long a cluster of two leaders on one PostgreSQL ledger needs,
//! after its active leader is SIGKILLed under load, to be whole again: the survivor elected for
//! the cluster's duties, and the first completion applied by it.
//!
//! The load is a steady stream of short sleep jobs created and awaited on the survivor. The
//! first completion counted is that of a job *created after the kill*: only the survivor can
//! have applied it (a job finishing just after the kill may have been applied by the dead
//! leader a moment before). So the figure includes one job's own run (`--job-ms`) and is an
//! upper bound. Every job of every round must end SUCCEEDED.

use crate::settings::Settings;
use anyhow::{bail, Context as _};
use offloader::client::LeaderClient;
use offloader::protocol::{JobId, JobState, Properties};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "The last line is `election_ms_max=… first_completion_ms_max=…`. \
The bench makes a database of its own on the server --ledger names and drops it afterwards, \
and uses its own AMQP namespace.")]
pub struct Args {
    /// The PostgreSQL server to put the shared ledger on (`postgres://user@host:port/db`).
    #[arg(long, env = "OFFLOADER_PG_URL", value_name = "URL")]
    pub ledger: String,

    /// Times the active leader is killed (and started again as a standby).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,

    /// Sleep jobs in flight on the survivor while the other is killed.
    #[arg(long, default_value_t = 16)]
    pub inflight: usize,

    /// How long each job sleeps, in milliseconds.
    #[arg(long, default_value_t = 50)]
    pub job_ms: u64,
}

/// One leader process and how to start it again.
struct LeaderProc {
    name: String,
    client: LeaderClient,
    port: u16,
    child: Option<Child>,
}

pub async fn run(settings: &Settings, args: Args) -> anyhow::Result<ExitCode> {
    if args.rounds == 0 || args.inflight == 0 {
        bail!("--rounds and --inflight must be at least 1");
    }
    let db = crate::ledger_db::TempDatabase::create(&args.ledger).await?;
    let namespace = Settings::namespace();
    println!(
        "bench leader takeover: 2 leaders on one PostgreSQL ledger, {} rounds, {} sleep jobs of {} ms in flight, namespace {namespace}",
        args.rounds, args.inflight, args.job_ms
    );
    let result = rounds(settings, &args, &namespace, &db.url).await;
    db.drop().await;
    if let Ok(broker) = settings.broker(&namespace, "cleanup").await {
        let sleep = offloader::consumer::SLEEP.parse()?;
        let _ = broker.delete_namespace(&[sleep]).await;
        broker.close();
    }
    let (elections, firsts) = result?;
    let max = |v: &[Duration]| v.iter().max().copied().unwrap_or_default().as_secs_f64() * 1000.0;
    println!("election_ms_max={:.0} first_completion_ms_max={:.0}", max(&elections), max(&firsts));
    Ok(ExitCode::SUCCESS)
}

async fn rounds(
    settings: &Settings,
    args: &Args,
    namespace: &str,
    ledger: &str,
) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)> {
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let exe = settings.offloader()?;
    let base = |cmd: &mut Command| {
        cmd.args(["--namespace", namespace, "--amqp-url", &settings.amqp_url, "--cluster", &settings.cluster])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .kill_on_drop(true);
    };
    let mut worker = Command::new(&exe);
    base(&mut worker);
    worker
        .args(["worker", "--name", "bench-worker", "--heartbeat-interval", "1s", "--concurrency", "64"])
        .args(["--allow", offloader::consumer::SLEEP])
        .arg("--data-dir")
        .arg(dir.path().join("worker"))
        .stderr(log_file(dir.path(), "worker")?);
    let _worker = worker.spawn().context("cannot start the worker")?;

    let mut leaders = Vec::new();
    for name in ["leader-a", "leader-b"] {
        let port = free_port()?;
        let client = LeaderClient::new(&format!("http://127.0.0.1:{port}"), None)?;
        let mut p = LeaderProc { name: name.into(), client, port, child: None };
        start_leader(&mut p, &exe, &base, dir.path(), ledger).await?;
        leaders.push(p);
    }

    let (mut elections, mut firsts) = (Vec::new(), Vec::new());
    for round in 1..=args.rounds {
        let active = elected(&leaders).await?;
        let survivor = 1 - active;
        let load = Load::start(leaders[survivor].client.clone(), args);
        // Steady state first: jobs completing at their pace.
        load.wait_for_completions(args.inflight * 2, Duration::from_secs(60)).await?;

        let killed_at = Instant::now();
        if let Some(child) = leaders[active].child.as_mut() {
            child.start_kill().context("cannot kill the active leader")?;
            let _ = child.wait().await;
        }
        let election = loop {
            if is_elected(&leaders[survivor]).await {
                break killed_at.elapsed();
            }
            if killed_at.elapsed() > Duration::from_secs(30) {
                bail!("{} was not elected within 30 s of the kill", leaders[survivor].name);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let first = load.first_completion_after(killed_at, Duration::from_secs(30)).await?;
        println!(
            "round {round}: {} killed; {} elected after {:.0} ms; first completion applied by it after {:.0} ms",
            leaders[active].name,
            leaders[survivor].name,
            election.as_secs_f64() * 1000.0,
            first.as_secs_f64() * 1000.0
        );
        elections.push(election);
        firsts.push(first);
        let created = load.stop().await?;
        println!("round {round}: all {created} jobs SUCCEEDED");
        start_leader(&mut leaders[active], &exe, &base, dir.path(), ledger).await?;
    }
    Ok((elections, firsts))
}

fn log_file(dir: &Path, name: &str) -> anyhow::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("{name}.log")))
        .with_context(|| format!("cannot create the log of {name}"))
}

fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("cannot find a free port")?;
    Ok(l.local_addr()?.port())
}

/// Starts (or restarts) a leader and waits until it answers and sees itself.
async fn start_leader(
    p: &mut LeaderProc,
    exe: &PathBuf,
    base: &impl Fn(&mut Command),
    dir: &Path,
    ledger: &str,
) -> anyhow::Result<()> {
    let mut cmd = Command::new(exe);
    base(&mut cmd);
    cmd.args(["leader", "--name", &p.name, "--http", &format!("127.0.0.1:{}", p.port), "--ledger", ledger])
        .args(["--heartbeat-interval", "1s"])
        .arg("--data-dir")
        .arg(dir.join(&p.name))
        .stderr(log_file(dir, &p.name)?);
    p.child = Some(cmd.spawn().with_context(|| format!("cannot start {}", p.name))?);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(t) = p.client.topology().await {
            if t.clusters.iter().flat_map(|c| &c.instances).any(|i| i.current) {
                return Ok(());
            }
        }
        if let Some(Ok(Some(status))) = p.child.as_mut().map(|c| c.try_wait()) {
            bail!("{} exited ({status}); its log is in {}", p.name, dir.display());
        }
        if Instant::now() > deadline {
            bail!("{} did not answer within 60 s", p.name);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether `p` reports itself as the elected leader.
async fn is_elected(p: &LeaderProc) -> bool {
    match p.client.topology().await {
        Ok(t) => t.clusters.iter().flat_map(|c| &c.instances).any(|i| i.current && i.leader),
        Err(_) => false,
    }
}

/// The index of the elected leader (waiting for the election to settle).
async fn elected(leaders: &[LeaderProc]) -> anyhow::Result<usize> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        for (i, p) in leaders.iter().enumerate() {
            if is_elected(p).await {
                return Ok(i);
            }
        }
        if Instant::now() > deadline {
            bail!("no leader was elected within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A steady stream of sleep jobs created and awaited on one leader.
struct Load {
    /// When each job was created and when it was seen finished.
    done: Arc<Mutex<Vec<(Instant, Instant)>>>,
    stop: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<anyhow::Result<usize>>>,
}

impl Load {
    fn start(client: LeaderClient, args: &Args) -> Load {
        let done = Arc::new(Mutex::new(Vec::new()));
        let stop = CancellationToken::new();
        let mut properties = Properties::new();
        properties.insert("ms".into(), args.job_ms.into());
        let tasks = (0..args.inflight)
            .map(|_| {
                let (client, done, stop, properties) = (client.clone(), done.clone(), stop.clone(), properties.clone());
                tokio::spawn(async move {
                    let mut created = 0;
                    while !stop.is_cancelled() {
                        let asked = Instant::now();
                        let job =
                            client.create_job(offloader::consumer::SLEEP, properties.clone(), vec![], None).await?;
                        created += 1;
                        finish(&client, job.id).await?;
                        done.lock().unwrap_or_else(|e| e.into_inner()).push((asked, Instant::now()));
                    }
                    Ok(created)
                })
            })
            .collect();
        Load { done, stop, tasks }
    }

    fn completions(&self) -> Vec<(Instant, Instant)> {
        self.done.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    async fn wait_for_completions(&self, n: usize, within: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        while self.completions().len() < n {
            if Instant::now() > deadline {
                bail!("only {} of {n} warm-up jobs completed in {within:?}", self.completions().len());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// How long after `t` the first job created after `t` was seen finished.
    async fn first_completion_after(&self, t: Instant, within: Duration) -> anyhow::Result<Duration> {
        loop {
            if let Some(first) =
                self.completions().into_iter().filter(|(asked, _)| *asked > t).map(|(_, done)| done).min()
            {
                return Ok(first - t);
            }
            if t.elapsed() > within {
                bail!("no job completed within {within:?} of the kill");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Stops creating jobs, waits for every one created to succeed; returns how many.
    async fn stop(self) -> anyhow::Result<usize> {
        self.stop.cancel();
        let mut created = 0;
        for t in self.tasks {
            created += t.await.context("a load task panicked")??;
        }
        Ok(created)
    }
}

/// Waits for a job to end and insists that it succeeded.
async fn finish(client: &LeaderClient, id: JobId) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let job = client.get_job(id, Duration::from_secs(10)).await?;
        match job.state {
            JobState::Succeeded => return Ok(()),
            s if s.is_final() => bail!("job {id} ended {s}: {:?}", job.result),
            _ if Instant::now() > deadline => bail!("job {id} still {} after 120 s", job.state),
            _ => {}
        }
    }
}
