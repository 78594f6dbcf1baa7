//! PDFs and videos, through the programs that read them best: poppler's `pdftoppm`/`pdfinfo`
//! and `ffmpeg`/`ffprobe` (Debian's `poppler-utils` and `ffmpeg`, installed by
//! scripts/services). HEIF and AVIF use the same runner for `heif-convert` (`heif.rs`). Each is run as a subprocess on a temporary copy of the input, with a time
//! limit (`Limits::tool_timeout_secs`) past which it is killed; what it renders (the first page,
//! a frame from the middle) then goes through the image pipeline like any PNG.
//!
//! Programs rather than bindings: a crash, a hang or a memory blow-up inside a PDF or video
//! parser (the most attacked code there is) takes down a child process the engine kills and
//! reports, never the worker; no C library is linked into the worker, so the build needs no
//! poppler or libav headers; and the Debian packages get their security updates apart from us.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::metadata::{DocumentInfo, ImageFormat, VideoInfo};
use crate::{process_with, EngineError, Limits, MediaType, Output, RenditionSpec, Tuning};

/// A PDF: `pdfinfo` for the document information, `pdftoppm` for the first page, rendered so
/// its long side is the largest rendition's box (a vector page has no size of its own to keep).
pub(crate) fn pdf(
    input: &[u8],
    specs: &[RenditionSpec],
    limits: &Limits,
    tuning: &Tuning,
) -> Result<Output, EngineError> {
    let dir = work_dir()?;
    let file = dir.path().join("input.pdf");
    std::fs::write(&file, input).map_err(|e| io_error("writing the PDF to a temporary file", &e))?;
    let info = run(Command::new("pdfinfo").arg(&file), "pdfinfo", "poppler-utils", limits)?;
    if !info.ok {
        return Err(pdf_failure(&info.stderr));
    }
    let document = parse_pdfinfo(&String::from_utf8_lossy(&info.stdout));
    let long_side = specs.iter().map(|s| s.width.max(s.height)).max().unwrap_or(1280).clamp(16, 8192);
    let root = dir.path().join("page");
    let render = run(
        Command::new("pdftoppm")
            .args(["-f", "1", "-l", "1", "-singlefile", "-png", "-scale-to"])
            .arg(long_side.to_string())
            .arg(&file)
            .arg(&root),
        "pdftoppm",
        "poppler-utils",
        limits,
    )?;
    if !render.ok {
        return Err(pdf_failure(&render.stderr));
    }
    let png = std::fs::read(dir.path().join("page.png"))
        .map_err(|e| EngineError::corrupt("pdf", format!("pdftoppm rendered no first page ({e})")))?;
    let mut out = process_with(&png, specs, limits, tuning)?;
    out.metadata.format = ImageFormat::Pdf;
    out.metadata.mime_type = ImageFormat::Pdf.mime_type().to_string();
    out.metadata.document = Some(document);
    Ok(out)
}

/// A video: `ffprobe` for duration, codec, size and frame rate, `ffmpeg` for one frame from the
/// middle.
pub(crate) fn video(
    input: &[u8],
    kind: MediaType,
    specs: &[RenditionSpec],
    limits: &Limits,
    tuning: &Tuning,
) -> Result<Output, EngineError> {
    let dir = work_dir()?;
    let file = dir.path().join("input.video");
    std::fs::write(&file, input).map_err(|e| io_error("writing the video to a temporary file", &e))?;
    let probe = run(
        Command::new("ffprobe")
            .args(["-v", "error", "-print_format", "json", "-show_format", "-show_streams"])
            .arg(&file),
        "ffprobe",
        "ffmpeg",
        limits,
    )?;
    if !probe.ok {
        return Err(EngineError::corrupt("video", last_line(&probe.stderr)));
    }
    let mut info = parse_ffprobe(&probe.stdout)?;
    // The middle, for a poster frame that shows the content rather than a fade from black.
    info.poster_at = info.duration.map(|d| (d / 2.0).max(0.0)).unwrap_or(0.0);
    let poster = dir.path().join("poster.png");
    let grab = |at: f64| {
        run(
            Command::new("ffmpeg")
                .args(["-nostdin", "-v", "error", "-y", "-ss"])
                .arg(format!("{at:.3}"))
                .arg("-i")
                .arg(&file)
                .args(["-map", "0:v:0", "-an", "-sn", "-frames:v", "1", "-f", "image2", "-c:v", "png"])
                .arg(&poster),
            "ffmpeg",
            "ffmpeg",
            limits,
        )
    };
    let mut done = grab(info.poster_at)?;
    if (!done.ok || !poster.exists()) && info.poster_at > 0.0 {
        // A duration that lies (or a seek past the last key frame): take the first frame.
        info.poster_at = 0.0;
        done = grab(0.0)?;
    }
    if !done.ok || !poster.exists() {
        return Err(EngineError::corrupt("video", format!("ffmpeg extracted no frame: {}", last_line(&done.stderr))));
    }
    let png = std::fs::read(&poster).map_err(|e| io_error("reading the poster frame", &e))?;
    let mut out = process_with(&png, specs, limits, tuning)?;
    let format = match kind {
        MediaType::QuickTime => ImageFormat::QuickTime,
        MediaType::Matroska => ImageFormat::Matroska,
        MediaType::WebM => ImageFormat::WebM,
        _ => ImageFormat::Mp4,
    };
    out.metadata.format = format;
    out.metadata.mime_type = format.mime_type().to_string();
    out.metadata.video = Some(info);
    Ok(out)
}

/// A finished program: whether it exited 0, and what it printed.
pub(crate) struct Ran {
    pub ok: bool,
    status: std::process::ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Ran {
    /// Why it failed: its last line on stderr, else how it ended (e.g. killed by SIGSEGV).
    pub fn failure(&self) -> String {
        if String::from_utf8_lossy(&self.stderr).trim().is_empty() {
            format!("the program ended with {}", self.status)
        } else {
            last_line(&self.stderr)
        }
    }
}

/// Runs `cmd` with its output captured, killing it past the time limit.
pub(crate) fn run(cmd: &mut Command, tool: &str, package: &str, limits: &Limits) -> Result<Ran, EngineError> {
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            EngineError::ToolMissing { tool: tool.to_string(), package: package.to_string() }
        } else {
            io_error(&format!("starting {tool}"), &e)
        }
    })?;
    // Drained on threads, so a chatty program never blocks on a full pipe.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                // At most 16 MiB of output is kept.
                let _ = p.by_ref().take(16 << 20).read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = drain(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let err = drain(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let secs = limits.tool_timeout_secs.max(1);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(EngineError::Timeout { tool: tool.to_string(), secs });
            }
            Err(e) => return Err(io_error(&format!("waiting for {tool}"), &e)),
        }
    };
    Ok(Ran {
        ok: status.success(),
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

pub(crate) fn work_dir() -> Result<tempfile::TempDir, EngineError> {
    tempfile::Builder::new().prefix("offloader-engine-").tempdir().map_err(|e| io_error("a temporary directory", &e))
}

fn io_error(what: &str, e: &std::io::Error) -> EngineError {
    EngineError::Io { detail: format!("{what}: {e}") }
}

fn last_line(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let line = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no message").trim();
    line.chars().take(300).collect()
}

/// poppler says why it cannot open a PDF on stderr: a password, or a broken file.
fn pdf_failure(stderr: &[u8]) -> EngineError {
    let text = String::from_utf8_lossy(stderr).to_ascii_lowercase();
    if text.contains("password") || text.contains("encrypt") {
        EngineError::Unsupported { what: "encrypted PDF: a password is needed to open it".into() }
    } else {
        EngineError::corrupt("pdf", last_line(stderr))
    }
}

/// The fields of `pdfinfo`'s `Key:   value` lines the engine keeps.
pub(crate) fn parse_pdfinfo(text: &str) -> DocumentInfo {
    let mut info = DocumentInfo::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        match key.trim() {
            "Pages" => info.pages = value.parse().unwrap_or(0),
            "Title" if !value.is_empty() => info.title = Some(value.to_string()),
            "Author" if !value.is_empty() => info.author = Some(value.to_string()),
            "Page size" => {
                // "612 x 792 pts (letter)"
                let mut nums = value.split_whitespace().filter_map(|w| w.parse::<f64>().ok());
                info.page_width_pt = nums.next();
                info.page_height_pt = nums.next();
            }
            _ => {}
        }
    }
    info
}

/// The first video stream of `ffprobe -print_format json -show_format -show_streams`.
pub(crate) fn parse_ffprobe(json: &[u8]) -> Result<VideoInfo, EngineError> {
    let v: serde_json::Value = serde_json::from_slice(json)
        .map_err(|e| EngineError::corrupt("video", format!("unreadable ffprobe answer: {e}")))?;
    let streams = v["streams"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let Some(s) = streams.iter().find(|s| s["codec_type"] == "video") else {
        return Err(EngineError::Unsupported { what: "a media file without a video stream".into() });
    };
    let number = |x: &serde_json::Value| x.as_str().and_then(|t| t.parse::<f64>().ok()).filter(|d| d.is_finite());
    let fps = s["avg_frame_rate"].as_str().and_then(|r| {
        let (n, d) = r.split_once('/')?;
        let (n, d) = (n.parse::<f64>().ok()?, d.parse::<f64>().ok()?);
        (d > 0.0 && n > 0.0).then(|| ((n / d) * 1000.0).round() / 1000.0)
    });
    let dim = |k: &str| s[k].as_u64().and_then(|n| u32::try_from(n).ok()).unwrap_or(0);
    Ok(VideoInfo {
        duration: number(&v["format"]["duration"]).or_else(|| number(&s["duration"])),
        codec: s["codec_name"].as_str().unwrap_or("unknown").to_string(),
        width: dim("width"),
        height: dim("height"),
        fps,
        poster_at: 0.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pdfinfo_lines() {
        let text = "Title:           Quarterly report\nAuthor:          Ada Lovelace\nCreator:         x\n\
                    Pages:           3\nEncrypted:       no\nPage size:       595.276 x 841.89 pts (A4)\n";
        let info = parse_pdfinfo(text);
        assert_eq!(info.pages, 3);
        assert_eq!(info.title.as_deref(), Some("Quarterly report"));
        assert_eq!(info.author.as_deref(), Some("Ada Lovelace"));
        assert_eq!(info.page_width_pt, Some(595.276));
        assert_eq!(info.page_height_pt, Some(841.89));
        assert_eq!(parse_pdfinfo("Title:\nPages: x\n"), DocumentInfo::default());
    }

    #[test]
    fn ffprobe_json() {
        let json = br#"{"streams":[{"codec_type":"audio","codec_name":"aac"},
            {"codec_type":"video","codec_name":"h264","width":320,"height":240,"avg_frame_rate":"30000/1001"}],
            "format":{"duration":"2.000000"}}"#;
        let info = parse_ffprobe(json).unwrap();
        assert_eq!((info.codec.as_str(), info.width, info.height), ("h264", 320, 240));
        assert_eq!(info.duration, Some(2.0));
        assert_eq!(info.fps, Some(29.97));
        let audio = br#"{"streams":[{"codec_type":"audio"}],"format":{}}"#;
        assert!(matches!(parse_ffprobe(audio), Err(EngineError::Unsupported { .. })));
        assert!(matches!(parse_ffprobe(b"not json"), Err(EngineError::Corrupt { .. })));
    }

    #[test]
    fn a_program_past_its_time_limit_is_stopped_and_a_missing_one_named() {
        let limits = Limits { tool_timeout_secs: 1, ..Limits::default() };
        let started = Instant::now();
        let err = run(Command::new("sleep").arg("30"), "sleep", "coreutils", &limits).err();
        assert!(matches!(&err, Some(EngineError::Timeout { secs: 1, .. })), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(5), "killed at the limit");
        let err = run(&mut Command::new("no-such-program-here"), "pdftoppm", "poppler-utils", &limits).err();
        let msg = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains("poppler-utils") && msg.contains("scripts/services"), "{msg}");
    }

    #[test]
    fn pdf_failures_say_why() {
        let e = pdf_failure(b"Command Line Error: Incorrect password\n");
        assert!(e.to_string().contains("encrypted PDF"), "{e}");
        let e =
            pdf_failure(b"Syntax Error: Couldn't find trailer dictionary\nSyntax Error: Couldn't read xref table\n");
        assert!(matches!(e, EngineError::Corrupt { .. }) && e.to_string().contains("xref"), "{e}");
    }
}
