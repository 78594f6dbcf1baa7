//! Command-line wiring: one module per subcommand, plus the settings they share.

mod assets;
mod dead;
mod ingest;
mod jobs;
mod leader;
mod probe;
mod profiles;
mod schedules;
mod settings;
mod shutdown;
mod stats;
mod submit;
mod topics;
mod topology;
mod worker;

use clap::{Parser, Subcommand};
use settings::Global;
use std::process::ExitCode;

/// Offload heavy asset processing from a leader onto a pool of workers,
/// over RabbitMQ (jobs) and an S3-compatible datastore (binaries).
///
/// A typical cluster is one `offloader leader` and any number of
/// `offloader worker` processes sharing one RabbitMQ and one bucket. Jobs are
/// created with `offloader submit` (or the leader's HTTP API) and inspected
/// with `offloader job` and `offloader topics`.
///
/// Every setting can also come from the environment (shown as [env: ...]);
/// `scripts/services` prints the ones for the local development services.
#[derive(Debug, Parser)]
#[command(name = "offloader", version, propagate_version = true, max_term_width = 100)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the leader: job ledger, reply poller and HTTP API.
    Leader(leader::Args),
    /// Run a worker: consume the enabled job topics and process them.
    Worker(worker::Args),
    /// Create a job (uploading its input files first) and optionally wait for it.
    Submit(submit::Args),
    /// Read, stop, retry or remove jobs in the leader's ledger.
    #[command(subcommand)]
    Job(jobs::Command),
    /// Job statistics as Sling's, overall and per topic.
    Stats(stats::Args),
    /// List, add or remove scheduled jobs (at a time, or on a cron expression).
    #[command(subcommand)]
    Schedule(schedules::Command),
    /// Show every instance's topics, or enable/disable/make exclusive a topic live.
    Topics(topics::Args),
    /// Show the topology: clusters, their instances in join order, the elected leader, the
    /// history of changes and the instances the allow list refused.
    Topology(topology::Args),
    /// Ingest files or folders as assets (uploads, then lets launchers start workflows).
    Ingest(ingest::Args),
    /// Read an asset, download one of its renditions, or run its workflow again.
    #[command(subcommand)]
    Asset(assets::Command),
    /// Processing profiles: renditions added to the standard ones for the assets of a folder
    /// and everything below it (list, show, put, apply, unapply, which, remove).
    #[command(subcommand)]
    Profiles(profiles::Command),
    /// List the workflow launchers the leader runs.
    Launchers(assets::LaunchersArgs),
    /// Inspect, replay or discard dead letters (messages nobody could act on).
    #[command(subcommand)]
    Dead(dead::Command),
    /// Ask a probe endpoint (`/health`, `/ready`) and exit 0 on a 2xx answer: a container's
    /// HEALTHCHECK without an HTTP client in the image.
    Probe(probe::Args),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    settings::init_tracing(&cli.global);
    let json_logs = cli.global.log_format == settings::LogFormat::Json;
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Leader(args) => leader::run(&cli.global, args).await,
            Command::Worker(args) => worker::run(&cli.global, args).await,
            Command::Submit(args) => submit::run(&cli.global, args).await,
            Command::Job(cmd) => jobs::run(&cli.global, cmd).await,
            Command::Stats(args) => stats::run(&cli.global, args).await,
            Command::Schedule(cmd) => schedules::run(&cli.global, cmd).await,
            Command::Topics(args) => topics::run(&cli.global, args).await,
            Command::Topology(args) => topology::run(&cli.global, args).await,
            Command::Ingest(args) => ingest::run(&cli.global, args).await,
            Command::Asset(cmd) => assets::run(&cli.global, cmd).await,
            Command::Profiles(cmd) => profiles::run(&cli.global, cmd).await,
            Command::Launchers(args) => assets::launchers(&cli.global, args).await,
            Command::Dead(cmd) => dead::run(&cli.global, cmd).await,
            Command::Probe(args) => probe::run(args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            // Once: as a log record for collectors, as a line for people. `{:#}` prints the whole
            // chain of causes on one line.
            if json_logs {
                tracing::error!(error = format!("{e:#}"), "offloader failed");
            } else {
                eprintln!("error: {e:#}");
            }
            ExitCode::FAILURE
        }
    }
}
