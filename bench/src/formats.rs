//! `offloader-bench formats SOURCE`: the renditions engine against libvips format by format.
//!
//! The corpus run (`renditions`) is JPEGs and PNGs; assets are also TIFFs, WebPs, GIFs, BMPs,
//! PDFs and Photoshop files. This command makes one sample of each from the same photo (so the
//! pixels are the same and only the container and codec differ), then, per sample, runs the
//! engine and libvips one after the other, each on one thread, each making AEM's four
//! renditions, and prints images per CPU second of both, their ratio and each one's peak
//! resident memory.
//!
//! - The engine runs in a fresh process per sample (`offloader-bench render`), so its peak is
//!   that sample's; its CPU includes the programs it runs (poppler's `pdftoppm` for a PDF).
//! - libvips runs as in `renditions`: pyvips in one process, `thumbnail` with shrink-on-load,
//!   then each thumbnail from the previous one (its own CPU and peak, interpreter included).
//!
//! HEIC and AVIF samples are made when libheif's `heif-enc` is installed and measured when the
//! engine reads them; until it does, their rows say why not, so the table fills in by itself
//! once a decoder lands.

use crate::renditions::{default_convert, default_python, last_line, one_thread, vips_versions, VIPS_SCRIPT};
use anyhow::{bail, Context as _};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "The last line is `jpeg_vs_vips=… min_vs_vips=… max_peak_rss_mib=…`. \
scripts/bench-renditions --formats installs libvips (pyvips), ImageMagick and poppler, and runs this \
on the largest photo of its corpus.")]
pub struct Args {
    /// The photo every sample is made from (any file libvips reads).
    pub source: PathBuf,

    /// Runs per tool and sample.
    #[arg(long, default_value_t = 5)]
    #[arg(value_parser = clap::value_parser!(u32).range(1..))]
    pub runs: u32,

    /// The samples' long side, in pixels (the source is shrunk to it, never enlarged).
    #[arg(long, default_value_t = 3000)]
    pub size: u32,

    /// More files to measure as they are (e.g. a 151-megapixel camera JPEG).
    #[arg(long = "file", value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// The Python that has pyvips [default: as for `renditions`].
    #[arg(long, value_name = "PATH")]
    pub python: Option<PathBuf>,

    /// ImageMagick's convert, which makes the BMP and PSD samples [default: as for `renditions`].
    #[arg(long, value_name = "PATH")]
    pub convert: Option<PathBuf>,
}

/// Makes the samples libvips can write, from `argv[1]` shrunk to `argv[3]` px, into `argv[2]`,
/// and prints the name of each it made (`gif` needs libvips built with cgif).
const MAKE_SAMPLES: &str = r#"import sys
import pyvips

src, out, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
img = pyvips.Image.thumbnail(src, size, height=size, size="down").copy_memory()
if img.bands == 4:
    img = img.flatten(background=255)
img.jpegsave(f"{out}/sample.jpg", Q=90, subsample_mode="on", strip=True); print("sample.jpg")
img.pngsave(f"{out}/sample.png", compression=6, strip=True); print("sample.png")
img.tiffsave(f"{out}/sample-8bit.tif", compression="lzw", strip=True); print("sample-8bit.tif")
wide = (img.cast("ushort") * 257).cast("ushort").copy(interpretation="rgb16")
wide.tiffsave(f"{out}/sample-16bit.tif", compression="deflate", strip=True); print("sample-16bit.tif")
img.webpsave(f"{out}/sample.webp", Q=90, strip=True); print("sample.webp")
try:
    img.gifsave(f"{out}/sample.gif"); print("sample.gif")
except pyvips.Error:
    pass
"#;

/// One sample: the format's name and the file.
struct Sample {
    format: String,
    file: PathBuf,
}

/// What one tool did with one sample.
#[derive(Debug, Clone, Copy)]
struct Measured {
    /// CPU seconds per image.
    cpu_s: f64,
    peak_rss_mib: Option<f64>,
}

impl Measured {
    fn per_cpu_s(&self) -> f64 {
        if self.cpu_s > 0.0 {
            1.0 / self.cpu_s
        } else {
            0.0
        }
    }
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    // Everything here waits on child processes.
    tokio::task::spawn_blocking(move || bench(args)).await.context("the benchmark's thread failed")?
}

fn bench(args: Args) -> anyhow::Result<ExitCode> {
    let python = args.python.clone().unwrap_or_else(default_python);
    let convert = args.convert.clone().unwrap_or_else(default_convert);
    let (libvips, pyvips) = vips_versions(&python)?;
    let work = tempfile::tempdir().context("cannot create a temporary directory")?;
    let mut samples = make_samples(&args, &python, &convert, work.path())?;
    samples.extend(args.files.iter().map(|f| Sample {
        format: f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        file: f.clone(),
    }));
    std::fs::write(work.path().join("vips_bench.py"), VIPS_SCRIPT)?;
    eprintln!(
        "bench formats: {} samples from {} (long side {} px), {} runs per tool; libvips {libvips} (pyvips {pyvips})",
        samples.len(),
        args.source.display(),
        args.size,
        args.runs
    );

    let mut table = String::from(
        "| format | sample | engine images/s per core | libvips images/s per core | engine / libvips | \
         engine peak RSS MiB | libvips peak RSS MiB |\n|---|---|---:|---:|---:|---:|---:|\n",
    );
    let (mut jpeg, mut ratios, mut max_rss) = (None, Vec::new(), 0.0_f64);
    for sample in &samples {
        let what = describe(&sample.file);
        let engine = engine_side(&sample.file, args.runs);
        let vips = vips_side(&python, work.path(), &sample.file, args.runs);
        let cell = |m: &anyhow::Result<Measured>| match m {
            Ok(m) => format!("{:.2}", m.per_cpu_s()),
            Err(e) => format!("— ({e:#})"),
        };
        let rss = |m: &anyhow::Result<Measured>| match m {
            Ok(Measured { peak_rss_mib: Some(r), .. }) => format!("{r:.1}"),
            _ => "—".to_owned(),
        };
        let ratio = match (&engine, &vips) {
            (Ok(e), Ok(v)) if v.per_cpu_s() > 0.0 => Some(e.per_cpu_s() / v.per_cpu_s()),
            _ => None,
        };
        if let Some(r) = ratio {
            ratios.push(r);
            if sample.format == "JPEG" {
                jpeg = Some(r);
            }
        }
        if let Ok(Measured { peak_rss_mib: Some(r), .. }) = &engine {
            max_rss = max_rss.max(*r);
        }
        let _ = writeln!(
            table,
            "| {} | {what} | {} | {} | {} | {} | {} |",
            sample.format,
            cell(&engine),
            cell(&vips),
            ratio.map_or("—".to_owned(), |r| format!("{r:.2}×")),
            rss(&engine),
            rss(&vips)
        );
        eprintln!("{}: engine {} / libvips {} images per CPU second", sample.format, cell(&engine), cell(&vips));
    }
    print!("{table}");
    let min = ratios.iter().copied().reduce(f64::min);
    let show = |v: Option<f64>| v.map_or("n/a".to_owned(), |v| format!("{v:.2}"));
    println!("jpeg_vs_vips={} min_vs_vips={} max_peak_rss_mib={max_rss:.1}", show(jpeg), show(min));
    Ok(ExitCode::SUCCESS)
}

/// The samples: libvips writes the formats it can, ImageMagick the BMP and the Photoshop file,
/// this program the PDF (a page holding the JPEG sample, as a scanner or a layout program
/// makes one), libheif's `heif-enc` the HEIC and AVIF ones if it is installed.
fn make_samples(args: &Args, python: &Path, convert: &Path, dir: &Path) -> anyhow::Result<Vec<Sample>> {
    let out = one_thread(python)
        .args(["-c", MAKE_SAMPLES])
        .arg(&args.source)
        .arg(dir)
        .arg(args.size.to_string())
        .output()
        .with_context(|| format!("cannot run {}", python.display()))?;
    if !out.status.success() {
        bail!("libvips could not make the samples from {}: {}", args.source.display(), last_line(&out.stderr));
    }
    let made: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect();
    let named = |format: &str, name: &str| Sample { format: format.to_owned(), file: dir.join(name) };
    let mut samples = Vec::new();
    for (format, name) in [
        ("JPEG", "sample.jpg"),
        ("PNG", "sample.png"),
        ("TIFF 8-bit", "sample-8bit.tif"),
        ("TIFF 16-bit", "sample-16bit.tif"),
        ("WebP", "sample.webp"),
        ("GIF", "sample.gif"),
    ] {
        if made.iter().any(|m| m == name) {
            samples.push(named(format, name));
        }
    }
    let png = dir.join("sample.png");
    // GIF through ImageMagick when libvips cannot write it (no cgif).
    let wanted: [(&str, &str, &str, bool); 3] = [
        ("GIF", "sample.gif", "gif", !made.iter().any(|m| m == "sample.gif")),
        ("BMP", "sample.bmp", "BMP3", true),
        ("PSD", "sample.psd", "psd", true),
    ];
    for (format, name, coder, needed) in wanted {
        if !needed {
            continue;
        }
        let target = dir.join(name);
        let made = one_thread(convert).arg(&png).arg(format!("{coder}:{}", target.display())).output();
        match made {
            Ok(o) if o.status.success() => samples.push(named(format, name)),
            Ok(o) => eprintln!("no {format} sample: ImageMagick failed ({})", last_line(&o.stderr)),
            Err(e) => eprintln!("no {format} sample: cannot run {} ({e})", convert.display()),
        }
    }
    let jpeg = std::fs::read(dir.join("sample.jpg")).context("the JPEG sample is missing")?;
    let (w, h) = jpeg_size(&jpeg).context("the JPEG sample has no readable size")?;
    std::fs::write(dir.join("sample.pdf"), pdf_with_jpeg(&jpeg, w, h))?;
    samples.push(named("PDF", "sample.pdf"));
    // The hook for HEIF decoders: made here, measured wherever the engine reads them.
    for (format, name, flags) in [("HEIC", "sample.heic", &[][..]), ("AVIF", "sample.avif", &["--avif"][..])] {
        let made = Command::new("heif-enc")
            .args(flags)
            .args(["-q", "80", "-o"])
            .arg(dir.join(name))
            .arg(dir.join("sample.jpg"))
            .stdin(Stdio::null())
            .output();
        match made {
            Ok(o) if o.status.success() => samples.push(named(format, name)),
            Ok(o) => eprintln!("no {format} sample: heif-enc failed ({})", last_line(&o.stderr)),
            Err(_) => eprintln!("no {format} sample: heif-enc (Debian libheif-examples) is not installed"),
        }
    }
    Ok(samples)
}

/// A one-page PDF showing `jpeg` (its bytes as they are, `DCTDecode`) over the whole page, at
/// 300 dpi.
fn pdf_with_jpeg(jpeg: &[u8], width: u32, height: u32) -> Vec<u8> {
    let (pw, ph) = (f64::from(width) * 72.0 / 300.0, f64::from(height) * 72.0 / 300.0);
    let content = format!("q {pw:.2} 0 0 {ph:.2} 0 0 cm /Im0 Do Q\n");
    let mut pdf: Vec<u8> = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::new();
    let mut object = |pdf: &mut Vec<u8>, head: String, stream: Option<&[u8]>| {
        offsets.push(pdf.len());
        pdf.extend_from_slice(format!("{} 0 obj\n{head}", offsets.len()).as_bytes());
        if let Some(bytes) = stream {
            pdf.extend_from_slice(b"\nstream\n");
            pdf.extend_from_slice(bytes);
            pdf.extend_from_slice(b"\nendstream");
        }
        pdf.extend_from_slice(b"\nendobj\n");
    };
    object(&mut pdf, "<< /Type /Catalog /Pages 2 0 R >>".into(), None);
    object(&mut pdf, "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".into(), None);
    object(
        &mut pdf,
        format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {pw:.2} {ph:.2}] /Resources << /XObject << /Im0 4 0 R >> >> \
             /Contents 5 0 R >>"
        ),
        None,
    );
    object(
        &mut pdf,
        format!(
            "<< /Type /XObject /Subtype /Image /Width {width} /Height {height} /ColorSpace /DeviceRGB \
             /BitsPerComponent 8 /Filter /DCTDecode /Length {} >>",
            jpeg.len()
        ),
        Some(jpeg),
    );
    object(&mut pdf, format!("<< /Length {} >>", content.len()), Some(content.as_bytes()));
    let xref = pdf.len();
    let mut tail = format!("xref\n0 {}\n0000000000 65535 f \n", offsets.len() + 1);
    for o in &offsets {
        let _ = writeln!(tail, "{o:010} 00000 n ");
    }
    let _ = write!(tail, "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n", offsets.len() + 1);
    pdf.extend_from_slice(tail.as_bytes());
    pdf
}

/// The width and height in a JPEG's start-of-frame marker.
fn jpeg_size(jpeg: &[u8]) -> Option<(u32, u32)> {
    let mut i = 2;
    while i + 9 < jpeg.len() {
        if jpeg[i] != 0xFF {
            return None;
        }
        let marker = jpeg[i + 1];
        let len = usize::from(u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]));
        if matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC) {
            let h = u16::from_be_bytes([jpeg[i + 5], jpeg[i + 6]]);
            let w = u16::from_be_bytes([jpeg[i + 7], jpeg[i + 8]]);
            return Some((u32::from(w), u32::from(h)));
        }
        i += 2 + len;
    }
    None
}

/// The sample's size on disk.
fn describe(file: &Path) -> String {
    let bytes = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// The engine on `file` in a fresh process (`render`): CPU per image (mean of the runs) and
/// that process's peak memory.
fn engine_side(file: &Path, runs: u32) -> anyhow::Result<Measured> {
    let me = std::env::current_exe().context("cannot find this program's path")?;
    let out = Command::new(me)
        .arg("render")
        .arg(file)
        .args(["--runs", &runs.to_string()])
        .stdin(Stdio::null())
        .output()
        .context("cannot run offloader-bench render")?;
    if !out.status.success() {
        let why = last_line(&out.stderr);
        let why = why.trim_start_matches("error: ");
        bail!("{}", why.strip_prefix(&format!("{}: ", file.display())).unwrap_or(why));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| -> Option<f64> {
        text.lines().last()?.split_whitespace().find_map(|w| w.strip_prefix(name)?.parse().ok())
    };
    Ok(Measured {
        cpu_s: field("cpu_s_mean=").context("render printed no cpu_s_mean")?,
        peak_rss_mib: field("peak_rss_mib="),
    })
}

/// libvips on `file`, `runs` times in one pyvips process: CPU per image and the process's peak.
fn vips_side(python: &Path, work: &Path, file: &Path, runs: u32) -> anyhow::Result<Measured> {
    let list = work.join("vips-files");
    let mut names = Vec::new();
    for _ in 0..runs {
        names.extend_from_slice(file.as_os_str().as_encoded_bytes());
        names.push(0);
    }
    std::fs::write(&list, names)?;
    let out = one_thread(python)
        .arg(work.join("vips_bench.py"))
        .arg(&list)
        .output()
        .with_context(|| format!("cannot run {}", python.display()))?;
    if !out.status.success() {
        bail!("{}", last_line(&out.stderr));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let done = text.lines().find_map(|l| l.strip_prefix("done ")).context("the pyvips script printed no timings")?;
    let words: Vec<f64> = done.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    let (Some(cpu), peak_kib) = (words.get(1), words.get(2)) else { bail!("unreadable timings: {done}") };
    Ok(Measured { cpu_s: cpu / f64::from(runs), peak_rss_mib: peak_kib.map(|k| k / 1024.0) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pdf_sample_is_one_page_around_the_jpeg() {
        let jpeg = [0xFF, 0xD8, 0xFF, 0xC0, 0, 17, 8, 0, 20, 0, 30, 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1, 0xFF, 0xD9];
        assert_eq!(jpeg_size(&jpeg), Some((30, 20)));
        let pdf = pdf_with_jpeg(&jpeg, 30, 20);
        let find = |needle: &[u8]| pdf.windows(needle.len()).position(|w| w == needle);
        assert!(pdf.starts_with(b"%PDF-1.4"));
        assert!(find(b"/Width 30 /Height 20").is_some());
        assert!(find(b"/Count 1").is_some());
        // The cross-reference table points at each object's first byte.
        let tail = String::from_utf8_lossy(&pdf[find(b"startxref").unwrap()..]).into_owned();
        let xref_at: usize = tail.lines().nth(1).unwrap().parse().unwrap();
        assert!(pdf[xref_at..].starts_with(b"xref"));
        let table = String::from_utf8_lossy(&pdf[xref_at..]).into_owned();
        for (n, line) in table.lines().skip(3).take(5).enumerate() {
            let at: usize = line[..10].parse().unwrap();
            assert!(pdf[at..].starts_with(format!("{} 0 obj", n + 1).as_bytes()), "object {}", n + 1);
        }
    }
}
