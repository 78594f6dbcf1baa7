//! PDFs (first page, via poppler's pdftoppm and pdfinfo) and videos (a frame from the middle,
//! via ffmpeg and ffprobe). These need the programs scripts/services installs; without them the
//! tests fail, saying so.

use offloader_renditions::synth::{encrypted_pdf, pdf};
use offloader_renditions::{process, EngineError, Limits, Output, RenditionSpec};
use std::process::Command;

fn run(input: &[u8]) -> Result<Output, EngineError> {
    process(input, &RenditionSpec::aem_defaults(), &Limits::default())
}

/// A 2-second 320x240 test video made by ffmpeg, in `container` (`mp4`, `webm`...).
fn test_video(container: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join(format!("clip.{container}"));
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-t", "2"])
        .arg(&file)
        .status()
        .unwrap_or_else(|e| panic!("cannot run ffmpeg ({e}): install it with scripts/services"));
    assert!(status.success(), "ffmpeg could not make the test video (install it with scripts/services)");
    std::fs::read(&file).expect("the test video")
}

#[test]
fn a_pdf_gets_its_first_page_rendered_and_its_document_information() {
    let out = run(&pdf("Quarterly (draft)", "Ada Lovelace", 3)).unwrap_or_else(|e| panic!("{e}"));
    let m = &out.metadata;
    assert_eq!(m.mime_type, "application/pdf");
    let doc = m.document.as_ref().expect("document information");
    assert_eq!(doc.pages, 3);
    assert_eq!(doc.title.as_deref(), Some("Quarterly (draft)"));
    assert_eq!(doc.author.as_deref(), Some("Ada Lovelace"));
    assert_eq!((doc.page_width_pt, doc.page_height_pt), (Some(612.0), Some(792.0)));
    // Letter, rendered with its long side at the web rendition's 1280 px.
    assert_eq!(m.height, 1280);
    assert_eq!(out.renditions.len(), 4);
    assert_eq!(out.renditions[3].height, 1280);
    assert_eq!(out.renditions[0].height, 48);
    // The page's blue rectangle is in the middle of the thumbnail.
    let thumb = image::load_from_memory(&out.renditions[2].bytes).expect("png").to_rgb8();
    let p = thumb.get_pixel(thumb.width() / 2, thumb.height() / 2);
    assert!(p[2] > 150 && p[0] < 100, "the page is rendered: {p:?}");
}

#[test]
fn an_encrypted_or_broken_pdf_is_refused_with_the_reason() {
    let err = run(&encrypted_pdf()).unwrap_err();
    assert!(matches!(err, EngineError::Unsupported { .. }) && err.to_string().contains("encrypted PDF"), "{err}");
    let mut broken = pdf("t", "a", 1);
    broken.truncate(30);
    let err = run(&broken).unwrap_err();
    assert!(matches!(err, EngineError::Corrupt { .. }), "{err:?}");
}

#[test]
fn a_video_gets_a_poster_frame_from_the_middle_and_its_stream_information() {
    for (container, mime) in
        [("mp4", "video/mp4"), ("webm", "video/webm"), ("mov", "video/quicktime"), ("mkv", "video/x-matroska")]
    {
        let out = run(&test_video(container)).unwrap_or_else(|e| panic!("{container}: {e}"));
        let m = &out.metadata;
        assert_eq!(m.mime_type, mime);
        assert_eq!((m.width, m.height), (320, 240), "{container}");
        let v = m.video.as_ref().expect("video information");
        assert_eq!((v.width, v.height), (320, 240));
        assert_eq!(v.fps, Some(25.0), "{container}");
        assert!(v.duration.is_some_and(|d| (d - 2.0).abs() < 0.1), "{container}: {v:?}");
        assert!((v.poster_at - 1.0).abs() < 0.1, "the middle: {v:?}");
        assert!(!v.codec.is_empty());
        assert_eq!(out.renditions.len(), 4);
        assert_eq!((out.renditions[3].width, out.renditions[3].height), (320, 240));
    }
}

#[test]
fn a_broken_video_is_refused_with_the_reason() {
    let mut clip = test_video("mp4");
    // Keep the ftyp box, scramble the rest: no readable moov.
    for (i, b) in clip.iter_mut().enumerate().skip(32) {
        *b = (i as u8).wrapping_mul(151) ^ 0x5A;
    }
    let err = run(&clip).unwrap_err();
    assert!(matches!(err, EngineError::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains("video"), "{err}");
}
