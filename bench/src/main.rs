//! `offloader-bench`: offloader measured against the references it names, in one run each,
//! on the real services (these 2-core machines are noisy, so ratios within one run mean more
//! than absolute figures). `docs/benchmarks.md` records the figures and how to read them.
//!
//! - `offloader-bench pipeline`: jobs through the real leader code and real worker processes,
//!   or (`--raw`) through bare lapin, the ceiling the pipeline is built on;
//! - `offloader-bench renditions DIR`: the renditions engine against libvips and ImageMagick;
//! - `offloader-bench render FILE`: one file through the engine, its CPU time and peak memory;
//! - `offloader-bench formats SOURCE`: one sample per format made from a photo, the engine
//!   against libvips on each;
//! - `offloader-bench dam DIR`: whole assets offloaded to workers against processed on the
//!   leader, and the leader's CPU per asset;
//! - `offloader-bench takeover`: two leaders on one PostgreSQL ledger, the active one killed
//!   under load, and how soon the survivor is elected and applies completions;
//! - `offloader-bench find`: Sling's findJobs over a ledger of a million jobs, each search
//!   against 100 ms;
//! - `offloader-bench console`: the web console's Jobs list over a ledger of 100 000 jobs, the
//!   server time of its requests and the time Chromium takes to show it, against 1 s.

/// The allocator of the `offloader` binary, so the leader measured in this process runs as it
/// does there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod console;
mod cpu;
mod dam;
mod engine_run;
mod find;
mod formats;
mod ledger_db;
mod pipeline;
mod raw;
mod render;
mod renditions;
mod report;
mod settings;
mod takeover;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Benchmarks of offloader, each against the reference it names, in one run.
#[derive(Debug, Parser)]
#[command(name = "offloader-bench", version, max_term_width = 100)]
struct Cli {
    #[command(flatten)]
    settings: settings::Settings,
    #[command(subcommand)]
    what: What,
}

#[derive(Debug, Subcommand)]
enum What {
    /// End-to-end throughput and latency of no-op jobs: the pipeline, or the bare lapin round trip.
    Pipeline(pipeline::Args),
    /// The renditions engine on one thread over a folder of images, against libvips and
    /// ImageMagick in the same run.
    Renditions(renditions::Args),
    /// One file through the renditions engine in a fresh process: CPU seconds per run and the
    /// peak resident memory (for camera-size photos).
    Render(render::Args),
    /// One sample per format (JPEG, PNG, TIFF 8 and 16 bits, WebP, GIF, BMP, PDF, PSD) made from
    /// one photo: the engine against libvips on each, per CPU second, with peak memory.
    Formats(formats::Args),
    /// Whole assets through leader -> workers -> leader, and the leader's CPU per asset
    /// offloaded versus processed on the leader itself.
    Dam(dam::Args),
    /// Two leaders on one PostgreSQL ledger under load: the active one SIGKILLed, the time until
    /// the survivor is elected and until it applies its first completion.
    Takeover(takeover::Args),
    /// Sling's findJobs over a ledger of a million jobs: each representative search timed
    /// against the 100 ms target.
    Find(find::Args),
    /// The web console's Jobs list over a ledger of 100 000 jobs: the server time of its first
    /// page and the time headless Chromium takes to show it, against 1 s.
    Console(console::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.what {
            What::Pipeline(args) => pipeline::run(&cli.settings, args).await,
            What::Renditions(args) => renditions::run(args).await,
            What::Render(args) => render::run(args),
            What::Formats(args) => formats::run(args).await,
            What::Dam(args) => dam::run(&cli.settings, args).await,
            What::Takeover(args) => takeover::run(&cli.settings, args).await,
            What::Find(args) => find::run(args).await,
            What::Console(args) => console::run(&cli.settings, args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
