//! `offloader-bench render FILE`: what one file costs the engine, alone in a fresh process: CPU
//! seconds per run on one thread and the process's peak resident memory. The renditions bench
//! times many files against other tools but also builds a full-resolution reference for its
//! quality check, which would swamp a memory figure; this command does nothing but the engine's
//! work, so its peak is the engine's (plus the program itself, printed before the first run).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use offloader_renditions::{process, Limits, RenditionSpec};

use crate::engine_run::thread_cpu_seconds;

#[derive(Debug, clap::Args)]
#[command(after_help = "The last line is `cpu_s_median=… peak_rss_mib=… rss_before_mib=…`. \
Use it for files too big for a corpus run, e.g. a 151-megapixel camera JPEG (target: under 1.5 s \
per core and 400 MiB).")]
pub struct Args {
    /// The image (any format the engine reads).
    file: PathBuf,

    /// Runs, each timed; the median is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,

    /// The engine's memory budget, as a worker's `--max-memory` (bytes).
    #[arg(long, default_value_t = 1 << 30)]
    max_memory: u64,
}

/// The process's peak resident set so far (`VmHWM`), in MiB; `None` off Linux.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let input = std::fs::read(&args.file).with_context(|| format!("cannot read {}", args.file.display()))?;
    let limits = Limits { max_alloc: args.max_memory, ..Limits::default() };
    let specs = RenditionSpec::aem_defaults();
    let before = peak_rss_mib();
    let mut cpu = Vec::new();
    for run in 1..=args.runs.max(1) {
        let start = thread_cpu_seconds();
        let out = process(&input, &specs, &limits).map_err(|e| anyhow::anyhow!("{}: {e}", args.file.display()))?;
        let spent = thread_cpu_seconds().zip(start).map(|(end, start)| end - start);
        let sizes: Vec<String> = out.renditions.iter().map(|r| format!("{}x{}", r.width, r.height)).collect();
        println!(
            "run {run}: {}x{} → {} in {} s of CPU",
            out.metadata.width,
            out.metadata.height,
            sizes.join(", "),
            spent.map_or("n/a".to_owned(), |s| format!("{s:.3}"))
        );
        cpu.extend(spent);
    }
    cpu.sort_by(f64::total_cmp);
    let median = cpu.get(cpu.len() / 2).copied();
    let show = |v: Option<f64>, digits: usize| v.map_or("n/a".to_owned(), |v| format!("{v:.digits$}"));
    println!(
        "cpu_s_median={} peak_rss_mib={} rss_before_mib={}",
        show(median, 3),
        show(peak_rss_mib(), 1),
        show(before, 1)
    );
    Ok(ExitCode::SUCCESS)
}
