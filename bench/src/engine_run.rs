//! The engine's side of `offloader-bench renditions`: the engine, single-threaded, over a
//! directory of images, as the bench runs it against libvips and ImageMagick. Each image's file is
//! read inside the timed loop (the other tools read files too); renditions stay in memory.

use std::path::{Path, PathBuf};
use std::time::Instant;

use offloader_renditions::{process_with, quality, render_with, Limits, RenditionSpec, Tuning};

/// What one benchmark run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchReport {
    /// Images processed successfully (per round, times rounds).
    pub images: usize,
    /// Inputs the engine refused (counted, not timed separately).
    pub failed: usize,
    /// Wall-clock seconds for all rounds.
    pub seconds: f64,
    /// CPU seconds this thread spent on them, where the OS tells (Linux); unlike wall-clock
    /// time it does not grow when other work on the machine takes the core away.
    pub cpu_seconds: Option<f64>,
    /// Bytes of renditions produced.
    pub output_bytes: u64,
}

/// CPU time of the calling thread in seconds, from Linux's `/proc/thread-self/schedstat`
/// (nanoseconds on CPU); `None` elsewhere.
pub fn thread_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = stat.split_whitespace().next()?.parse().ok()?;
    Some(ns as f64 / 1e9)
}

/// The regular files of `dir`, sorted by name (not recursive).
pub fn image_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

/// Run the engine over `files`, `rounds` times, on the calling thread.
pub fn run(
    files: &[PathBuf],
    specs: &[RenditionSpec],
    limits: &Limits,
    tuning: &Tuning,
    rounds: usize,
) -> std::io::Result<BenchReport> {
    let mut report = BenchReport { images: 0, failed: 0, seconds: 0.0, cpu_seconds: None, output_bytes: 0 };
    let cpu_start = thread_cpu_seconds();
    let start = Instant::now();
    for _ in 0..rounds {
        for path in files {
            let input = std::fs::read(path)?;
            match process_with(&input, specs, limits, tuning) {
                Ok(out) => {
                    report.images += 1;
                    report.output_bytes += out.renditions.iter().map(|r| r.bytes.len() as u64).sum::<u64>();
                }
                Err(_) => report.failed += 1,
            }
        }
    }
    report.seconds = start.elapsed().as_secs_f64();
    report.cpu_seconds = cpu_start.zip(thread_cpu_seconds()).map(|(a, b)| b - a);
    Ok(report)
}

/// The PSNR (dB) of `spec`'s rendition of each file against the full-resolution Lanczos3
/// reference ([`quality::reference`]); files the engine refuses are left out.
pub fn psnr_per_file(
    files: &[PathBuf],
    spec: &RenditionSpec,
    limits: &Limits,
    tuning: &Tuning,
) -> std::io::Result<Vec<(PathBuf, f64)>> {
    let mut out = Vec::new();
    for path in files {
        let input = std::fs::read(path)?;
        let Ok((_, images)) = render_with(&input, std::slice::from_ref(spec), limits, tuning) else {
            continue;
        };
        let Some(img) = images.first() else { continue };
        let Ok(reference) = quality::reference(&input, img.width, img.height, limits) else {
            continue;
        };
        if let Some(db) = quality::psnr(img, &reference) {
            out.push((path.clone(), db));
        }
    }
    Ok(out)
}
