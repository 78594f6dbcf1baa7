//! Benchmark the renditions engine on one thread over a directory of images.
//!
//!     cargo run --release -p offloader-renditions --example bench -- DIR [ROUNDS] [--psnr]
//!
//! Prints the throughput, and with `--psnr` the PSNR of every web rendition against a
//! full-resolution Lanczos3 reference (exit status 1 if any is below 40 dB). The last line is
//! `images_per_s=… images=… seconds=… [cpu_seconds=…] [min_psnr_db=…]` for scripts.

use std::path::PathBuf;
use std::process::ExitCode;

use offloader_renditions::{bench, Limits, RenditionSpec, Tuning};

const MIN_PSNR_DB: f64 = 40.0;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let check_psnr = args.iter().any(|a| a == "--psnr");
    let positional: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let Some(dir) = positional.first().map(PathBuf::from) else {
        eprintln!("usage: bench DIR [ROUNDS] [--psnr]");
        return ExitCode::from(2);
    };
    let rounds: usize = match positional.get(1).map(|s| s.parse()) {
        None => 1,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("ROUNDS must be a positive integer");
            return ExitCode::from(2);
        }
    };
    let files = match bench::image_files(&dir) {
        Ok(f) if !f.is_empty() => f,
        Ok(_) => {
            eprintln!("no files in {}", dir.display());
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("cannot read {}: {e}", dir.display());
            return ExitCode::from(2);
        }
    };
    let specs = RenditionSpec::aem_defaults();
    let (limits, tuning) = (Limits::default(), Tuning::default());
    let report = match bench::run(&files, &specs, &limits, &tuning, rounds) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("benchmark failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    let cpu = report.images_per_cpu_s();
    println!(
        "engine: {} images ({} refused) in {:.2} s on 1 thread: {:.2} images/s wall-clock, {} \
         per CPU second; {} KiB of renditions",
        report.images,
        report.failed,
        report.seconds,
        report.images_per_s(),
        cpu.map_or("?".into(), |c| format!("{c:.2}")),
        report.output_bytes / 1024
    );
    let mut last =
        format!("images_per_s={:.2} images={} seconds={:.3}", report.images_per_s(), report.images, report.seconds);
    if let Some(cpu_s) = report.cpu_seconds {
        last.push_str(&format!(" cpu_seconds={cpu_s:.3}"));
    }
    let mut ok = true;
    if check_psnr {
        let web = specs.iter().find(|s| s.name.starts_with("cq5dam.web"));
        let per_file = match web.map(|w| bench::psnr_per_file(&files, w, &limits, &tuning)) {
            Some(Ok(v)) => v,
            Some(Err(e)) => {
                eprintln!("PSNR check failed: {e}");
                return ExitCode::FAILURE;
            }
            None => Vec::new(),
        };
        let mut min = f64::INFINITY;
        for (path, db) in &per_file {
            println!("psnr {db:6.2} dB  {}", path.display());
            min = min.min(*db);
        }
        ok = min >= MIN_PSNR_DB;
        last.push_str(&format!(" min_psnr_db={min:.2}"));
    }
    println!("{last}");
    if ok {
        ExitCode::SUCCESS
    } else {
        eprintln!("a web rendition is below {MIN_PSNR_DB} dB");
        ExitCode::FAILURE
    }
}
