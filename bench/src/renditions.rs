//! `offloader-bench renditions DIR`: the renditions engine on one thread against what a user
//! would otherwise pick, libvips (pyvips, one process) and ImageMagick (`convert` per image),
//! in one run over the same files, so that the ratios do not depend on the machine or the day.
//!
//! Throughput is counted per CPU second (user + system) of each tool, which other work on the
//! machine does not inflate the way it inflates wall-clock time; the tools also take turns round
//! by round so that whatever load there is falls on all three alike.

use crate::engine_run as bench;
use crate::report::progress;
use anyhow::{bail, Context as _};
use indicatif::ProgressBar;
use offloader_renditions::{process_with, Limits, RenditionSpec, Tuning};
use std::ffi::OsStr;
use std::io::{BufRead as _, BufReader};
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "The last line is `images_per_s=… vs_vips=… vs_imagemagick=… min_psnr_db=…`: \
the engine's images per CPU second, its ratios to libvips' and ImageMagick's (per CPU second too), \
and the lowest PSNR of its web renditions against a full-resolution Lanczos3 reference (the run \
fails under 40 dB). Every tool runs on one thread and makes AEM's four renditions, each from the \
previous one. scripts/bench-renditions installs the references (Debian packages, pyvips in a venv) \
and a corpus, then runs this.")]
pub struct Args {
    /// The folder of images: every .jpg, .jpeg and .png file under it, subfolders included.
    pub dir: PathBuf,

    /// Passes over the folder per tool; the tools take turns, one pass each per round.
    #[arg(long, default_value_t = 2, help_heading = "Benchmark")]
    #[arg(value_parser = clap::value_parser!(u32).range(1..))]
    pub rounds: u32,

    /// The Python that has pyvips [default: $OFFLOADER_HOME/bench-venv/bin/python if it exists,
    /// else python3].
    #[arg(long, value_name = "PATH", help_heading = "Benchmark")]
    pub python: Option<PathBuf>,

    /// ImageMagick's convert [default: convert-im6.q16 if on PATH, else convert].
    #[arg(long, value_name = "PATH", help_heading = "Benchmark")]
    pub convert: Option<PathBuf>,
}

/// The PSNR under which a web rendition counts as visibly worse than the reference.
const MIN_PSNR_DB: f64 = 40.0;

/// Every child runs on one thread, like the engine, so that "per core" means the same for all.
const ONE_THREAD: [(&str, &str); 3] =
    [("VIPS_CONCURRENCY", "1"), ("MAGICK_THREAD_LIMIT", "1"), ("OMP_NUM_THREADS", "1")];

/// libvips as a user would drive it: shrink-on-load for the web rendition, kept in memory, then
/// each thumbnail from the previous one, everything saved to buffers. It prints `image` after
/// each file (for the progress bar) and then `done WALL_S CPU_S PEAK_RSS_KIB`, its own times
/// (so that the interpreter's start-up and imports are not counted against it) and its peak
/// memory.
pub(crate) const VIPS_SCRIPT: &str = r#"import os, resource, sys, time
import pyvips

pyvips.cache_set_max(0)
with open(sys.argv[1], "rb") as f:
    files = [os.fsdecode(p) for p in f.read().split(b"\0") if p]

def renditions(path):
    img = pyvips.Image.thumbnail(path, 1280, height=1280, size="down").copy_memory()
    out = [img.jpegsave_buffer(Q=90, subsample_mode="on", strip=True)]
    for w, h in ((319, 319), (140, 100), (48, 48)):
        img = img.thumbnail_image(w, height=h, size="down").copy_memory()
        out.append(img.pngsave_buffer(compression=1, strip=True))
    return out

start, cpu_start = time.perf_counter(), time.process_time()
for f in files:
    renditions(f)
    print("image", flush=True)
wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
print(f"done {wall:.6f} {cpu:.6f} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}", flush=True)
"#;

/// Prints the versions pyvips binds, and fails if it cannot be imported.
const VIPS_VERSION: &str = "import pyvips; \
print('%d.%d.%d' % tuple(pyvips.version(i) for i in range(3)), pyvips.__version__)";

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    // Everything here blocks (the engine, and waiting for the other tools' processes), and the
    // engine's CPU time is that of the thread it runs on.
    tokio::task::spawn_blocking(move || bench(args)).await.context("the benchmark's thread failed")?
}

fn bench(args: Args) -> anyhow::Result<ExitCode> {
    let setup = Setup::new(args)?;
    setup.announce();
    let totals = measure(&setup)?;
    let min_psnr = check_psnr(&setup.files)?;
    report(&setup, &totals, min_psnr);
    Ok(ExitCode::SUCCESS)
}

/// What a run needs, found and checked before anything is timed, so that a missing reference
/// fails in a second rather than after the engine's rounds.
struct Setup {
    dir: PathBuf,
    files: Vec<PathBuf>,
    rounds: u32,
    python: PathBuf,
    convert: PathBuf,
    libvips_version: String,
    pyvips_version: String,
    im_version: String,
    /// Holds the pyvips script, its file list and ImageMagick's outputs; removed when dropped.
    work: tempfile::TempDir,
}

impl Setup {
    fn new(args: Args) -> anyhow::Result<Setup> {
        let dir = std::fs::canonicalize(&args.dir).with_context(|| format!("cannot open {}", args.dir.display()))?;
        let files = image_files(&dir)?;
        if files.is_empty() {
            bail!("no .jpg, .jpeg or .png files under {}", dir.display());
        }
        let python = args.python.unwrap_or_else(default_python);
        let convert = args.convert.unwrap_or_else(default_convert);
        let (libvips_version, pyvips_version) = vips_versions(&python)?;
        let im_version = imagemagick_version(&convert)?;
        let work = tempfile::tempdir().context("cannot create a temporary directory")?;
        std::fs::write(work.path().join("vips_bench.py"), VIPS_SCRIPT)?;
        std::fs::write(work.path().join("files"), nul_separated(&files))?;
        Ok(Setup {
            dir,
            files,
            rounds: args.rounds,
            python,
            convert,
            libvips_version,
            pyvips_version,
            im_version,
            work,
        })
    }

    /// What is compared with what, on stderr, so that a saved run says which tools it measured.
    fn announce(&self) {
        eprintln!(
            "bench renditions: {} images ({:.1} MB) under {}; {} round(s) per tool; libvips {} (pyvips {}) via {}, \
             ImageMagick {} via {}",
            self.files.len(),
            corpus_bytes(&self.files) as f64 / 1e6,
            self.dir.display(),
            self.rounds,
            self.libvips_version,
            self.pyvips_version,
            self.python.display(),
            self.im_version,
            self.convert.display()
        );
    }
}

/// Every JPEG and PNG under `dir` (by extension, following symlinks to files but not to
/// folders, so that a link cannot loop), sorted so that every tool sees the same order.
fn image_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("cannot list {}", d.display()))? {
            let path = entry?.path();
            let meta = std::fs::symlink_metadata(&path)?;
            if meta.is_dir() {
                dirs.push(path);
            } else if is_image_name(&path) && path.is_file() {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

fn is_image_name(path: &Path) -> bool {
    let ext = path.extension().and_then(OsStr::to_str).map(str::to_ascii_lowercase);
    matches!(ext.as_deref(), Some("jpg" | "jpeg" | "png"))
}

fn corpus_bytes(files: &[PathBuf]) -> u64 {
    files.iter().filter_map(|f| std::fs::metadata(f).ok()).map(|m| m.len()).sum()
}

/// The file list for the pyvips script: NUL-separated, since a path may hold any other byte.
fn nul_separated(files: &[PathBuf]) -> Vec<u8> {
    files.iter().flat_map(|f| f.as_os_str().as_bytes().iter().copied().chain([0])).collect()
}

/// The venv `scripts/bench-renditions` makes, if it is there.
pub(crate) fn default_python() -> PathBuf {
    let home = std::env::var_os("OFFLOADER_HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share/offloader")));
    match home.map(|h| h.join("bench-venv/bin/python")) {
        Some(venv) if venv.is_file() => venv,
        _ => PathBuf::from("python3"),
    }
}

/// Debian's ImageMagick 6 by its own name, since `convert` may be another alternative (or
/// ImageMagick 7's deprecated shim).
pub(crate) fn default_convert() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("convert-im6.q16").is_file()))
        .unwrap_or(false);
    PathBuf::from(if on_path { "convert-im6.q16" } else { "convert" })
}

pub(crate) fn one_thread(program: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.envs(ONE_THREAD).stdin(Stdio::null());
    cmd
}

/// The versions of libvips and pyvips, or why `python` cannot be used.
pub(crate) fn vips_versions(python: &Path) -> anyhow::Result<(String, String)> {
    let out = one_thread(python).args(["-c", VIPS_VERSION]).output();
    let text = match out {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
        Ok(out) => bail!(
            "{} cannot import pyvips ({}); scripts/bench-renditions installs it (Debian libvips42, and PyPI \
             pyvips in $OFFLOADER_HOME/bench-venv), or pass --python",
            python.display(),
            last_line(&out.stderr)
        ),
        Err(e) => bail!(
            "cannot run {} ({e}); scripts/bench-renditions installs a Python with pyvips in \
             $OFFLOADER_HOME/bench-venv, or pass --python",
            python.display()
        ),
    };
    let mut words = text.split_whitespace();
    match (words.next(), words.next()) {
        (Some(libvips), Some(pyvips)) => Ok((libvips.to_owned(), pyvips.to_owned())),
        _ => bail!("{} printed no pyvips version: {text:?}", python.display()),
    }
}

/// ImageMagick's version, e.g. `6.9.11-60`, or why `convert` cannot be used.
fn imagemagick_version(convert: &Path) -> anyhow::Result<String> {
    let hint = "scripts/bench-renditions installs ImageMagick (Debian imagemagick), or pass --convert";
    let out = match one_thread(convert).arg("-version").output() {
        Ok(out) if out.status.success() => out,
        Ok(out) => bail!("{} -version failed ({}); {hint}", convert.display(), last_line(&out.stderr)),
        Err(e) => bail!("cannot run {} ({e}); {hint}", convert.display()),
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text
        .lines()
        .find_map(|l| l.strip_prefix("Version: ImageMagick "))
        .and_then(|rest| rest.split_whitespace().next());
    match version {
        Some(v) => Ok(v.to_owned()),
        None => bail!("{} is not ImageMagick (no `Version: ImageMagick` in its -version); {hint}", convert.display()),
    }
}

pub(crate) fn last_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no message").trim().to_owned()
}

/// One tool's images and the seconds they took.
#[derive(Debug, Clone, Copy, Default)]
struct Tally {
    images: usize,
    wall_s: f64,
    cpu_s: f64,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.images += other.images;
        self.wall_s += other.wall_s;
        self.cpu_s += other.cpu_s;
    }

    fn per_cpu_s(&self) -> f64 {
        ratio(self.images as f64, self.cpu_s)
    }

    fn per_wall_s(&self) -> f64 {
        ratio(self.images as f64, self.wall_s)
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}

#[derive(Debug, Default)]
struct Totals {
    engine: Tally,
    vips: Tally,
    imagemagick: Tally,
}

/// The rounds, each tool taking its turn in each.
fn measure(setup: &Setup) -> anyhow::Result<Totals> {
    let per_round = setup.files.len() as u64 * 3;
    let bar = progress((per_round * u64::from(setup.rounds)) as usize, "images");
    let mut totals = Totals::default();
    for round in 1..=setup.rounds {
        let step = |tool: &str| bar.set_message(format!("round {round}/{}: {tool}", setup.rounds));
        step("engine");
        totals.engine.add(engine_round(&setup.files, &bar)?);
        step("libvips");
        totals.vips.add(vips_round(setup, &bar)?);
        step("ImageMagick");
        totals.imagemagick.add(imagemagick_round(setup, &bar)?);
        let Totals { engine: e, vips: v, imagemagick: m } = &totals;
        bar.suspend(|| {
            eprintln!(
                "round {round}/{}, cumulative wall/CPU s: engine {:.2}/{:.2}, libvips {:.2}/{:.2}, ImageMagick \
                 {:.2}/{:.2}",
                setup.rounds, e.wall_s, e.cpu_s, v.wall_s, v.cpu_s, m.wall_s, m.cpu_s
            )
        });
    }
    bar.finish_and_clear();
    Ok(totals)
}

/// One pass of the engine, on this thread, timed file by file so that the progress bar stays
/// out of the measurement and every refused image can be named.
fn engine_round(files: &[PathBuf], bar: &ProgressBar) -> anyhow::Result<Tally> {
    let specs = RenditionSpec::aem_defaults();
    let (limits, tuning) = (Limits::default(), Tuning::default());
    let mut tally = Tally::default();
    let mut refused = Vec::new();
    for file in files {
        let report = bench::run(std::slice::from_ref(file), &specs, &limits, &tuning, 1)
            .with_context(|| format!("cannot read {}", file.display()))?;
        let cpu_s = report
            .cpu_seconds
            .context("the engine's CPU time is unknown here: it is read from Linux's /proc/thread-self/schedstat")?;
        if report.failed > 0 {
            refused.push(file.as_path());
        }
        tally.add(Tally { images: report.images, wall_s: report.seconds, cpu_s });
        bar.inc(1);
    }
    if !refused.is_empty() {
        bail!("the engine refused {} of {} images: {}", refused.len(), files.len(), refusals(&refused, &specs));
    }
    Ok(tally)
}

/// Each refused file with the engine's reason, made again untimed (the benchmark only counts).
fn refusals(files: &[&Path], specs: &[RenditionSpec]) -> String {
    let reason = |f: &Path| match std::fs::read(f) {
        Ok(bytes) => match process_with(&bytes, specs, &Limits::default(), &Tuning::default()) {
            Ok(_) => "refused once, accepted again".to_owned(),
            Err(e) => e.to_string(),
        },
        Err(e) => e.to_string(),
    };
    files.iter().map(|f| format!("{} ({})", f.display(), reason(f))).collect::<Vec<_>>().join("; ")
}

/// One pass of libvips: one Python process over every file, timed by the script itself.
fn vips_round(setup: &Setup, bar: &ProgressBar) -> anyhow::Result<Tally> {
    let errors = setup.work.path().join("vips.stderr");
    let mut child = one_thread(&setup.python)
        .arg(setup.work.path().join("vips_bench.py"))
        .arg(setup.work.path().join("files"))
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&errors)?)
        .spawn()
        .with_context(|| format!("cannot run {}", setup.python.display()))?;
    let stdout = child.stdout.take().context("the pyvips script has no stdout")?;
    let (mut images, mut times) = (0, None);
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        if line == "image" {
            images += 1;
            bar.inc(1);
        } else if let Some(rest) = line.strip_prefix("done ") {
            times = parse_times(rest);
        }
    }
    let status = child.wait()?;
    if !status.success() {
        let stderr = std::fs::read(&errors).unwrap_or_default();
        bail!("the pyvips script failed ({status}): {}", last_line(&stderr));
    }
    match times {
        Some((wall_s, cpu_s)) if images == setup.files.len() => Ok(Tally { images, wall_s, cpu_s }),
        _ => bail!("the pyvips script made {images} of {} images and no timings", setup.files.len()),
    }
}

fn parse_times(text: &str) -> Option<(f64, f64)> {
    let mut words = text.split_whitespace().map(str::parse::<f64>);
    match (words.next(), words.next()) {
        (Some(Ok(wall)), Some(Ok(cpu))) => Some((wall, cpu)),
        _ => None,
    }
}

/// One pass of ImageMagick: one `convert` per image, as a shell script would run it. Its CPU
/// time is that of the children this process waited for during the pass, which is only them:
/// the engine runs in-process and the pyvips script has been waited for before.
fn imagemagick_round(setup: &Setup, bar: &ProgressBar) -> anyhow::Result<Tally> {
    let out = setup.work.path();
    let cpu_start = children_cpu_seconds()?;
    let mut wall_s = 0.0;
    for file in &setup.files {
        let start = Instant::now();
        let result = imagemagick_command(&setup.convert, file, out)
            .stdout(Stdio::null())
            .output()
            .with_context(|| format!("cannot run {}", setup.convert.display()))?;
        wall_s += start.elapsed().as_secs_f64();
        if !result.status.success() {
            bail!("ImageMagick failed on {} ({}): {}", file.display(), result.status, last_line(&result.stderr));
        }
        bar.inc(1);
    }
    let cpu_s = children_cpu_seconds()? - cpu_start;
    Ok(Tally { images: setup.files.len(), wall_s, cpu_s })
}

/// The four renditions in one command, each `-resize` applied to the previous result: the JPEG
/// shrink-on-load hint at twice the box, as ImageMagick's documentation advises, then the web
/// rendition, then the thumbnails.
fn imagemagick_command(convert: &Path, file: &Path, out: &Path) -> Command {
    let mut cmd = one_thread(convert);
    cmd.args(["-define", "jpeg:size=2560x2560"]).arg(file);
    cmd.args(["-auto-orient", "-strip", "-resize", "1280x1280>", "-sampling-factor", "4:2:0", "-quality", "90"]);
    cmd.arg("-write").arg(out.join("web.jpeg")).args(["-define", "png:compression-level=1"]);
    cmd.args(["-resize", "319x319>", "-write"]).arg(out.join("t319.png"));
    cmd.args(["-resize", "140x100>", "-write"]).arg(out.join("t140.png"));
    cmd.args(["-resize", "48x48>"]).arg(out.join("t48.png"));
    cmd
}

/// CPU seconds (user + system) of the children of this process that have ended and been
/// waited for.
pub(crate) fn children_cpu_seconds() -> anyhow::Result<f64> {
    // SAFETY: `rusage` is plain integers, for which all zeroes is a valid value, and getrusage
    // writes only into the struct it is given.
    let (rc, usage) = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        (libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage), usage)
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).context("getrusage(RUSAGE_CHILDREN) failed");
    }
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Ok(seconds(usage.ru_utime) + seconds(usage.ru_stime))
}

/// The lowest PSNR of the engine's web renditions against the full-resolution Lanczos3
/// reference, untimed; fails naming every file under [`MIN_PSNR_DB`] or without a figure, since
/// the throughput is only worth comparing at a quality no one would see as worse.
fn check_psnr(files: &[PathBuf]) -> anyhow::Result<f64> {
    let specs = RenditionSpec::aem_defaults();
    let web = specs.iter().find(|s| s.name.starts_with("cq5dam.web")).context("no web rendition among the specs")?;
    let (limits, tuning) = (Limits::default(), Tuning::default());
    let bar = progress(files.len(), "images");
    bar.set_message("PSNR check");
    let (mut worst, mut bad): (Option<(f64, &Path)>, _) = (None, Vec::new());
    for file in files {
        let per_file = bench::psnr_per_file(std::slice::from_ref(file), web, &limits, &tuning)
            .with_context(|| format!("cannot read {}", file.display()))?;
        match per_file.first() {
            Some(&(_, db)) => {
                if db < MIN_PSNR_DB {
                    bad.push(format!("{} ({db:.2} dB)", file.display()));
                }
                if worst.is_none_or(|(w, _)| db < w) {
                    worst = Some((db, file));
                }
            }
            None => bad.push(format!("{} (no reference could be made)", file.display())),
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    if !bad.is_empty() {
        bail!("web renditions below {MIN_PSNR_DB} dB PSNR from the reference: {}", bad.join("; "));
    }
    let (db, file) = worst.context("no web rendition was checked")?;
    eprintln!("worst web rendition: {db:.2} dB PSNR, {}", file.display());
    Ok(db)
}

/// One line per tool, the wall-clock ratios, then the line scripts read.
fn report(setup: &Setup, t: &Totals, min_psnr: f64) {
    let (e, v, m) = (&t.engine, &t.vips, &t.imagemagick);
    println!(
        "engine (offloader-renditions): {:.2} images/s per core ({:.2} wall-clock); web renditions >= {min_psnr:.2} \
         dB PSNR",
        e.per_cpu_s(),
        e.per_wall_s()
    );
    println!(
        "libvips {} (pyvips {}, 1 process): {:.2} images/s per core ({:.2} wall-clock)",
        setup.libvips_version,
        setup.pyvips_version,
        v.per_cpu_s(),
        v.per_wall_s()
    );
    println!(
        "ImageMagick {} (convert per image): {:.2} images/s per core ({:.2} wall-clock)",
        setup.im_version,
        m.per_cpu_s(),
        m.per_wall_s()
    );
    println!(
        "wall-clock ratios: vs_vips={:.2} vs_imagemagick={:.2}",
        ratio(e.per_wall_s(), v.per_wall_s()),
        ratio(e.per_wall_s(), m.per_wall_s())
    );
    println!(
        "images_per_s={:.2} vs_vips={:.2} vs_imagemagick={:.2} min_psnr_db={min_psnr:.2}",
        e.per_cpu_s(),
        ratio(e.per_cpu_s(), v.per_cpu_s()),
        ratio(e.per_cpu_s(), m.per_cpu_s())
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imagemagick_command_matches_the_documented_one() {
        let cmd = imagemagick_command(Path::new("convert"), Path::new("/c/a.jpg"), Path::new("/o"));
        let line: Vec<String> = cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        assert_eq!(
            line.join(" "),
            "-define jpeg:size=2560x2560 /c/a.jpg -auto-orient -strip -resize 1280x1280> -sampling-factor 4:2:0 \
             -quality 90 -write /o/web.jpeg -define png:compression-level=1 -resize 319x319> -write /o/t319.png \
             -resize 140x100> -write /o/t140.png -resize 48x48> /o/t48.png"
        );
    }

    #[test]
    fn corpus_is_every_jpeg_and_png_below_the_folder_sorted() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        std::fs::create_dir(dir.path().join("sub"))?;
        for name in ["b.PNG", "a.jpg", "sub/c.jpeg", "notes.txt", "d.gif"] {
            std::fs::write(dir.path().join(name), b"x")?;
        }
        let names: Vec<PathBuf> = image_files(dir.path())?
            .iter()
            .filter_map(|f| f.strip_prefix(dir.path()).ok().map(Path::to_path_buf))
            .collect();
        assert_eq!(names, [PathBuf::from("a.jpg"), "b.PNG".into(), "sub/c.jpeg".into()]);
        Ok(())
    }

    #[test]
    fn file_list_is_nul_separated() {
        assert_eq!(nul_separated(&["/a b".into(), "/c".into()]), b"/a b\0/c\0");
    }

    #[test]
    fn pyvips_timings_are_parsed() {
        assert_eq!(parse_times("1.5 1.25"), Some((1.5, 1.25)));
        assert_eq!(parse_times("1.5"), None);
    }
}
