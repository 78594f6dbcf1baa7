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
use crate::renditions::children_cpu_seconds;

#[derive(Debug, clap::Args)]
#[command(after_help = "The last line is `cpu_s_median=… peak_rss_mib=… rss_before_mib=… cpu_s_mean=…` \
(CPU includes the programs the engine runs, such as poppler's for a PDF). \
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

/// The largest peak resident set of the children waited for (`ru_maxrss`), in MiB.
fn children_peak_rss_mib() -> Option<f64> {
    // SAFETY: `rusage` is plain integers, for which all zeroes is a valid value, and getrusage
    // writes only into the struct it is given.
    let (rc, usage) = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        (libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage), usage)
    };
    (rc == 0 && usage.ru_maxrss > 0).then(|| usage.ru_maxrss as f64 / 1024.0)
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let input = std::fs::read(&args.file).with_context(|| format!("cannot read {}", args.file.display()))?;
    let limits = Limits { max_alloc: args.max_memory, ..Limits::default() };
    let specs = RenditionSpec::aem_defaults();
    let before = peak_rss_mib();
    let mut cpu = Vec::new();
    for run in 1..=args.runs.max(1) {
        let (start, children) = (thread_cpu_seconds(), children_cpu_seconds()?);
        let out = process(&input, &specs, &limits).map_err(|e| anyhow::anyhow!("{}: {e}", args.file.display()))?;
        // The programs the engine runs for some formats (poppler's for a PDF) count too.
        let helpers = children_cpu_seconds()? - children;
        let spent = thread_cpu_seconds().zip(start).map(|(end, start)| end - start + helpers);
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
    let mean = (!cpu.is_empty()).then(|| cpu.iter().sum::<f64>() / cpu.len() as f64);
    cpu.sort_by(f64::total_cmp);
    let median = cpu.get(cpu.len() / 2).copied();
    let show = |v: Option<f64>, digits: usize| v.map_or("n/a".to_owned(), |v| format!("{v:.digits$}"));
    // A program the engine ran (poppler's for a PDF) had its own memory: the larger peak counts.
    let peak = match (peak_rss_mib(), children_peak_rss_mib()) {
        (Some(me), Some(child)) => Some(me.max(child)),
        (me, child) => me.or(child),
    };
    println!(
        "cpu_s_median={} peak_rss_mib={} rss_before_mib={} cpu_s_mean={}",
        show(median, 3),
        show(peak, 1),
        show(before, 1),
        show(mean, 4)
    );
    Ok(ExitCode::SUCCESS)
}
