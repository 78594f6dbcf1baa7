//! DAM Update Asset for the files people really upload, end to end on the real services
//! (docs/formats.md): the MIME type is sniffed from the bytes at ingestion, every supported
//! format gets its metadata and renditions, and everything else ends with a recorded reason on
//! the asset.

mod common;

use common::cluster::Cluster;
use serde_json::Value;
use std::time::Duration;

const OFFLOADING: &str = "com/adobe/granite/workflow/offloading";

/// How long an upload may take to be processed before the test fails.
const PROCESSED_WITHIN: Duration = Duration::from_secs(120);

async fn finish(c: Cluster) {
    c.also_delete(OFFLOADING);
    c.finish().await;
}

/// A Photoshop file, 300 x 200, 8 bits, in colour `mode` (3 RGB, 9 Lab), with empty sections and
/// a raw composite of three channels (a gradient).
fn psd(mode: u16) -> Vec<u8> {
    let (w, h) = (300u32, 200u32);
    let mut b = b"8BPS".to_vec();
    b.extend(1u16.to_be_bytes());
    b.extend([0; 6]);
    b.extend(3u16.to_be_bytes());
    b.extend(h.to_be_bytes());
    b.extend(w.to_be_bytes());
    b.extend(8u16.to_be_bytes());
    b.extend(mode.to_be_bytes());
    b.extend([0; 12]); // colour mode data, image resources, layers: all empty
    b.extend(0u16.to_be_bytes()); // raw
    for c in 0..3u32 {
        b.extend((0..w * h).map(|i| ((i % w) * 255 / w) as u8 ^ (c as u8 * 40)));
    }
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mime_type_comes_from_the_bytes_and_an_unsupported_one_is_a_recorded_reason() {
    let mut c = Cluster::new().await;
    c.start_leader(&[]).await;
    let mut worker = c.start_worker("w1", &[]).await;

    // A PSD, sent as octet-stream under a misleading name: sniffed, launched, rendered from its
    // composite image.
    let path = "/content/dam/design/poster.bin";
    let outcome = c.put_asset(path, psd(3)).await;
    assert_eq!(outcome["mime_type"], "image/vnd.adobe.photoshop", "{outcome}");
    let asset = c.asset_when_processed(path, PROCESSED_WITHIN).await;
    assert_eq!(asset["job"]["state"], "SUCCEEDED", "{asset}\nworker log:\n{}", worker.log());
    assert_eq!(asset["metadata"]["format"], "psd", "{asset}");
    assert_eq!(asset["renditions"].as_array().map(Vec::len), Some(4), "{asset}");

    // One in a colour mode the engine does not render: refused, with the reason on the asset.
    let path = "/content/dam/design/layers.bin";
    let outcome = c.put_asset(path, psd(9)).await;
    assert_eq!(outcome["mime_type"], "image/vnd.adobe.photoshop", "{outcome}");
    assert!(outcome["job"]["id"].is_string(), "image/* launches DAM Update Asset: {outcome}");
    let asset = c.asset_when_processed(path, PROCESSED_WITHIN).await;
    assert_eq!(asset["mime_type"], "image/vnd.adobe.photoshop");
    assert_eq!(asset["job"]["state"], "ERROR", "{asset}");
    let error = asset["job"]["error"].as_str().unwrap_or_default();
    assert!(error.starts_with("SourceUnsupported: /content/dam/design/layers.bin"), "on the asset: {asset}");
    assert!(error.contains("Photoshop") && error.contains("Lab"), "{asset}");

    // A PNG named .jpg is a PNG.
    let img = image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([x as u8 * 4, y as u8 * 5, 7]));
    let mut png = std::io::Cursor::new(Vec::new());
    img.write_to(&mut png, image::ImageFormat::Png).unwrap();
    let path = "/content/dam/design/really-a-png.jpg";
    let outcome = c.put_asset(path, png.into_inner()).await;
    assert_eq!(outcome["mime_type"], "image/png", "{outcome}");
    let asset = c.asset_when_processed(path, PROCESSED_WITHIN).await;
    assert_eq!(asset["job"]["state"], "SUCCEEDED", "{asset}");
    assert_eq!(asset["metadata"]["format"], "png", "{asset}");
    assert!(asset["job"]["error"].is_null(), "{asset}");
    assert!(worker.is_running(), "the worker died; log:\n{}", worker.log());
    finish(c).await;
}

fn rendition_size(asset: &Value, name: &str) -> (u64, u64) {
    let r = asset["renditions"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["name"] == name))
        .unwrap_or_else(|| panic!("no rendition {name}: {asset}"));
    (r["width"].as_u64().unwrap_or(0), r["height"].as_u64().unwrap_or(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn camera_size_jpegs_get_every_rendition_within_the_workers_memory_budget() {
    let mut c = Cluster::new().await;
    c.start_leader(&[]).await;
    // 256 MiB: less than either photo takes decoded at full size (302 MB and 454 MB).
    let worker = c.start_worker("w1", &["--max-memory", "256MiB"]).await;
    for (w, h, web) in [(12000u16, 8400u16, (1280, 896)), (14204, 10652, (1280, 960))] {
        let path = format!("/content/dam/camera/{w}x{h}.jpg");
        c.put_asset(&path, offloader_renditions::synth::grey_jpeg(w, h)).await;
        let asset = c.asset_when_processed(&path, PROCESSED_WITHIN).await;
        assert_eq!(asset["job"]["state"], "SUCCEEDED", "{asset}\nworker log:\n{}", worker.log());
        assert_eq!(
            (asset["metadata"]["width"].as_u64(), asset["metadata"]["height"].as_u64()),
            (Some(w.into()), Some(h.into()))
        );
        assert_eq!(rendition_size(&asset, "cq5dam.web.1280.1280.jpeg"), web, "{asset}");
        assert_eq!(rendition_size(&asset, "cq5dam.thumbnail.48.48.png").0, 48, "{asset}");
        assert_eq!(asset["renditions"].as_array().map(Vec::len), Some(4), "{asset}");
    }
    finish(c).await;
}

/// A 16-bit RGB TIFF, LZW-compressed, of two pages (the second smaller).
fn tiff16_two_pages(w: u32, h: u32) -> Vec<u8> {
    use tiff::encoder::{colortype, Compression, TiffEncoder};
    let page = |w: u32, h: u32| -> Vec<u16> {
        (0..w * h).flat_map(|i| [((i % w) * 100) as u16, ((i / w) * 150) as u16, 30_000]).collect()
    };
    let mut out = std::io::Cursor::new(Vec::new());
    let mut enc = TiffEncoder::new(&mut out).expect("tiff encoder").with_compression(Compression::Lzw);
    enc.write_image::<colortype::RGB16>(w, h, &page(w, h)).expect("page 1");
    enc.write_image::<colortype::RGB16>(40, 30, &page(40, 30)).expect("page 2");
    out.into_inner()
}

fn encoded(w: u32, h: u32, format: image::ImageFormat) -> Vec<u8> {
    let img = image::RgbaImage::from_fn(w, h, |x, y| image::Rgba([x as u8, y as u8, 60, 255]));
    let mut out = std::io::Cursor::new(Vec::new());
    match format {
        image::ImageFormat::WebP => {
            image::codecs::webp::WebPEncoder::new_lossless(&mut out)
                .encode(img.as_raw(), w, h, image::ExtendedColorType::Rgba8)
                .expect("webp");
        }
        image::ImageFormat::Bmp => {
            image::DynamicImage::ImageRgba8(img).to_rgb8().write_to(&mut out, format).expect("bmp")
        }
        _ => img.write_to(&mut out, format).expect("encoding"),
    }
    out.into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiff_webp_gif_and_bmp_get_renditions_and_a_corrupt_copy_a_recorded_reason() {
    let mut c = Cluster::new().await;
    c.start_leader(&[]).await;
    let mut worker = c.start_worker("w1", &[]).await;
    let cases = [
        ("scan.tif", tiff16_two_pages(900, 600), "image/tiff", "tiff", (900u32, 600u32), 16),
        ("logo.webp", encoded(640, 480, image::ImageFormat::WebP), "image/webp", "webp", (640, 480), 8),
        ("anim.gif", encoded(320, 200, image::ImageFormat::Gif), "image/gif", "gif", (320, 200), 8),
        ("old.bmp", encoded(500, 400, image::ImageFormat::Bmp), "image/bmp", "bmp", (500, 400), 8),
    ];
    for (name, bytes, mime, format, (w, h), depth) in &cases {
        let path = format!("/content/dam/formats/{name}");
        let outcome = c.put_asset(&path, bytes.clone()).await;
        assert_eq!(outcome["mime_type"], *mime, "{outcome}");
        let asset = c.asset_when_processed(&path, PROCESSED_WITHIN).await;
        assert_eq!(asset["job"]["state"], "SUCCEEDED", "{asset}\nworker log:\n{}", worker.log());
        let m = &asset["metadata"];
        assert_eq!((m["width"].as_u64(), m["height"].as_u64()), (Some(u64::from(*w)), Some(u64::from(*h))), "{asset}");
        assert_eq!(m["format"], *format, "{asset}");
        assert_eq!(m["bit_depth"], *depth, "{asset}");
        assert_eq!(asset["renditions"].as_array().map(Vec::len), Some(4), "{asset}");
        assert_eq!(rendition_size(&asset, "cq5dam.web.1280.1280.jpeg"), (u64::from(*w), u64::from(*h)), "{asset}");
        assert_eq!(rendition_size(&asset, "cq5dam.thumbnail.48.48.png").0, 48, "{asset}");
    }
    // A corrupt copy of each: the magic kept, the rest scrambled. CANCEL with the reason.
    for (name, bytes, mime, ..) in &cases {
        let mut corrupt = bytes.clone();
        for (i, b) in corrupt.iter_mut().enumerate().skip(16) {
            *b = (i as u8).wrapping_mul(151) ^ 0x5A;
        }
        let path = format!("/content/dam/formats/corrupt-{name}");
        let outcome = c.put_asset(&path, corrupt).await;
        assert_eq!(outcome["mime_type"], *mime, "still sniffed from the magic: {outcome}");
        let asset = c.asset_when_processed(&path, PROCESSED_WITHIN).await;
        assert_eq!(asset["job"]["state"], "ERROR", "{asset}");
        let error = asset["job"]["error"].as_str().unwrap_or_default();
        assert!(error.starts_with("Source") && error.contains(&path), "the reason on the asset: {asset}");
        let job = c.job(asset["job"]["id"].as_str().unwrap_or_default()).await;
        assert_eq!(job["result"]["status"], "CANCEL", "{job}");
        assert_eq!(job["attempt"], 1, "not retried: {job}");
    }
    assert!(worker.is_running(), "the worker died; log:\n{}", worker.log());
    finish(c).await;
}

/// A 2-second 320x240 test video made by ffmpeg (installed by scripts/services).
fn test_video(container: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join(format!("clip.{container}"));
    let status = std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-t", "2"])
        .arg(&file)
        .status()
        .unwrap_or_else(|e| panic!("cannot run ffmpeg ({e}): install it with scripts/services"));
    assert!(status.success(), "ffmpeg could not make the test video (install it with scripts/services)");
    std::fs::read(&file).expect("the test video")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pdfs_and_videos_get_a_rendered_page_or_poster_frame_and_their_information() {
    use offloader_renditions::synth::{encrypted_pdf, pdf};
    let mut c = Cluster::new().await;
    c.start_leader(&[]).await;
    let mut worker = c.start_worker("w1", &[]).await;

    let path = "/content/dam/docs/report.pdf";
    let outcome = c.put_asset(path, pdf("Annual report", "Ada Lovelace", 4)).await;
    assert_eq!(outcome["mime_type"], "application/pdf");
    assert_eq!(outcome["launcher"], "dam_update_asset_create", "{outcome}");
    let asset = c.asset_when_processed(path, PROCESSED_WITHIN).await;
    assert_eq!(asset["job"]["state"], "SUCCEEDED", "{asset}\nworker log:\n{}", worker.log());
    let m = &asset["metadata"];
    assert_eq!(m["format"], "pdf", "{asset}");
    assert_eq!(m["document"]["pages"], 4, "{asset}");
    assert_eq!(m["document"]["title"], "Annual report", "{asset}");
    assert_eq!(m["document"]["author"], "Ada Lovelace", "{asset}");
    assert_eq!(rendition_size(&asset, "cq5dam.web.1280.1280.jpeg").1, 1280, "{asset}");
    assert_eq!(asset["renditions"].as_array().map(Vec::len), Some(4), "{asset}");

    for (name, container, mime, format) in
        [("clip.mp4", "mp4", "video/mp4", "mp4"), ("clip.webm", "webm", "video/webm", "webm")]
    {
        let path = format!("/content/dam/videos/{name}");
        let outcome = c.put_asset(&path, test_video(container)).await;
        assert_eq!(outcome["mime_type"], mime, "{outcome}");
        let asset = c.asset_when_processed(&path, PROCESSED_WITHIN).await;
        assert_eq!(asset["job"]["state"], "SUCCEEDED", "{asset}\nworker log:\n{}", worker.log());
        let m = &asset["metadata"];
        assert_eq!(m["format"], format, "{asset}");
        assert_eq!((m["video"]["width"].as_u64(), m["video"]["height"].as_u64()), (Some(320), Some(240)), "{asset}");
        assert_eq!(m["video"]["fps"], 25.0, "{asset}");
        assert!(m["video"]["duration"].as_f64().is_some_and(|d| (d - 2.0).abs() < 0.1), "{asset}");
        assert!(m["video"]["codec"].as_str().is_some_and(|c| !c.is_empty()), "{asset}");
        assert_eq!(rendition_size(&asset, "cq5dam.web.1280.1280.jpeg"), (320, 240), "{asset}");
        assert_eq!(asset["renditions"].as_array().map(Vec::len), Some(4), "{asset}");
    }

    // Encrypted and broken files: the reason on the asset; the worker goes on.
    let mut broken = pdf("t", "a", 1);
    broken.truncate(40);
    let mut scrambled = test_video("mp4");
    for (i, b) in scrambled.iter_mut().enumerate().skip(32) {
        *b = (i as u8).wrapping_mul(151) ^ 0x5A;
    }
    for (path, bytes, label, words) in [
        ("/content/dam/docs/secret.pdf", encrypted_pdf(), "SourceUnsupported", "encrypted PDF"),
        ("/content/dam/docs/broken.pdf", broken, "SourceCorrupt", "pdf"),
        ("/content/dam/videos/broken.mp4", scrambled, "SourceCorrupt", "video"),
    ] {
        c.put_asset(path, bytes).await;
        let asset = c.asset_when_processed(path, PROCESSED_WITHIN).await;
        assert_eq!(asset["job"]["state"], "ERROR", "{asset}");
        let error = asset["job"]["error"].as_str().unwrap_or_default();
        assert!(error.starts_with(&format!("{label}: {path}")) && error.contains(words), "{path}: {asset}");
    }
    assert!(worker.is_running(), "the worker died; log:\n{}", worker.log());
    finish(c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xmp_iptc_and_the_icc_profile_name_land_in_the_assets_metadata() {
    use offloader_renditions::synth::{described_jpeg, grey_jpeg};
    let mut c = Cluster::new().await;
    c.start_leader(&[]).await;
    let worker = c.start_worker("w1", &[]).await;
    let path = "/content/dam/photos/described.jpg";
    let bytes = described_jpeg(
        &grey_jpeg(800, 600),
        "Beach & sea",
        "Ada Lovelace",
        &["beach", "été"],
        "© 2024 Ada",
        "Display P3",
    );
    c.put_asset(path, bytes).await;
    let asset = c.asset_when_processed(path, PROCESSED_WITHIN).await;
    assert_eq!(asset["job"]["state"], "SUCCEEDED", "{asset}\nworker log:\n{}", worker.log());
    let m = &asset["metadata"];
    assert_eq!(m["xmp"]["title"], "Beach & sea", "{asset}");
    assert_eq!(m["xmp"]["creator"], serde_json::json!(["Ada Lovelace"]), "{asset}");
    assert_eq!(m["xmp"]["subject"], serde_json::json!(["beach", "été"]), "{asset}");
    assert_eq!(m["xmp"]["rights"], "© 2024 Ada", "{asset}");
    assert_eq!(m["iptc"]["object_name"], "Beach & sea", "{asset}");
    assert_eq!(m["iptc"]["keywords"], serde_json::json!(["beach", "été"]), "{asset}");
    assert_eq!(m["iptc"]["copyright"], "© 2024 Ada", "{asset}");
    assert_eq!(m["icc_profile"], "Display P3", "{asset}");
    assert_eq!(asset["renditions"].as_array().map(Vec::len), Some(4), "{asset}");
    finish(c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heic_avif_camera_raws_and_described_pngs_and_tiffs_get_renditions_and_their_metadata() {
    use offloader_renditions::synth::{
        camera_raw, described_jpeg, described_png, described_tiff, heif_enc, two_colour_jpeg, Description, RawKind,
    };
    let mut c = Cluster::new().await;
    c.start_leader(&[]).await;
    let mut worker = c.start_worker("w1", &[]).await;

    // iPhone-like photos: HEIC (HEVC) and AVIF made by libheif's heif-enc from a described JPEG.
    let jpeg = described_jpeg(&two_colour_jpeg(640, 480), "Harbour", "Ada Lovelace", &["boats"], "© Ada", "Display P3");
    let heic = heif_enc(&jpeg, false).unwrap_or_else(|e| panic!("{e}"));
    let avif = heif_enc(&jpeg, true).unwrap_or_else(|e| panic!("{e}"));
    for (path, bytes, mime, format) in [
        ("/content/dam/phone/IMG_0001.HEIC", heic.clone(), "image/heic", "heic"),
        ("/content/dam/phone/IMG_0002.avif", avif, "image/avif", "avif"),
    ] {
        let outcome = c.put_asset(path, bytes).await;
        assert_eq!(outcome["mime_type"], mime, "{outcome}");
        let asset = c.asset_when_processed(path, PROCESSED_WITHIN).await;
        assert_eq!(asset["job"]["state"], "SUCCEEDED", "{asset}\nworker log:\n{}", worker.log());
        let m = &asset["metadata"];
        assert_eq!(m["format"], format, "{asset}");
        assert_eq!((m["width"].as_u64(), m["height"].as_u64()), (Some(640), Some(480)), "{asset}");
        assert_eq!(m["xmp"]["title"], "Harbour", "{asset}");
        assert_eq!(m["icc_profile"], "Display P3", "{asset}");
        assert_eq!(rendition_size(&asset, "cq5dam.web.1280.1280.jpeg"), (640, 480), "{asset}");
        assert_eq!(asset["renditions"].as_array().map(Vec::len), Some(4), "{asset}");
    }

    // Camera raws (synthesized containers, see synth::camera_raw): the embedded preview, turned
    // by the raw's orientation, and the raw's EXIF.
    let preview = two_colour_jpeg(1200, 800);
    for (name, kind, mime, format) in [
        ("DSC_0001.NEF", RawKind::Nef, "image/x-nikon-nef", "nef"),
        ("IMG_0001.CR2", RawKind::Cr2, "image/x-canon-cr2", "cr2"),
        ("L1000001.DNG", RawKind::Dng, "image/x-adobe-dng", "dng"),
        ("DSC00001.ARW", RawKind::Arw, "image/x-sony-arw", "arw"),
    ] {
        let path = format!("/content/dam/raw/{name}");
        let outcome = c.put_asset(&path, camera_raw(kind, &preview, 6)).await;
        assert_eq!(outcome["mime_type"], mime, "{outcome}");
        let asset = c.asset_when_processed(&path, PROCESSED_WITHIN).await;
        assert_eq!(asset["job"]["state"], "SUCCEEDED", "{asset}\nworker log:\n{}", worker.log());
        let m = &asset["metadata"];
        assert_eq!((m["format"].as_str(), m["preview"].as_str()), (Some(format), Some("embedded")), "{asset}");
        assert_eq!((m["width"].as_u64(), m["height"].as_u64()), (Some(800), Some(1200)), "{asset}");
        assert!(m["exif"]["model"].as_str().is_some_and(|s| !s.is_empty()), "{asset}");
        assert_eq!(rendition_size(&asset, "cq5dam.web.1280.1280.jpeg"), (800, 1200), "{asset}");
        assert_eq!(asset["renditions"].as_array().map(Vec::len), Some(4), "{asset}");
    }

    // XMP (and IPTC, ICC) from a PNG's chunks and a TIFF's tags.
    let d = Description {
        title: "Beach & sea",
        creator: "Ada Lovelace",
        keywords: &["beach", "été"],
        rights: "© 2024 Ada",
        icc_name: "Adobe RGB (1998)",
    };
    let mut png = std::io::Cursor::new(Vec::new());
    image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([x as u8 * 4, y as u8 * 5, 7]))
        .write_to(&mut png, image::ImageFormat::Png)
        .expect("png");
    for (path, bytes, format) in [
        ("/content/dam/described/a.png", described_png(&png.into_inner(), &d), "png"),
        ("/content/dam/described/b.tif", described_tiff(64, 48, &d), "tiff"),
    ] {
        c.put_asset(path, bytes).await;
        let asset = c.asset_when_processed(path, PROCESSED_WITHIN).await;
        assert_eq!(asset["job"]["state"], "SUCCEEDED", "{asset}\nworker log:\n{}", worker.log());
        let m = &asset["metadata"];
        assert_eq!(m["format"], format, "{asset}");
        assert_eq!(m["xmp"]["title"], "Beach & sea", "{asset}");
        assert_eq!(m["xmp"]["subject"], serde_json::json!(["beach", "été"]), "{asset}");
        assert_eq!(m["xmp"]["rights"], "© 2024 Ada", "{asset}");
        assert_eq!(m["icc_profile"], "Adobe RGB (1998)", "{asset}");
        if format == "tiff" {
            assert_eq!(m["iptc"]["object_name"], "Beach & sea", "{asset}");
        }
    }

    // Broken ones: the reason on the asset, the job not retried, the worker up.
    let mut no_preview = offloader_renditions::synth::TiffWriter::new(false);
    no_preview.ifd(vec![
        offloader_renditions::synth::TiffWriter::ascii(0x010F, "Leica Camera AG"),
        (0xC612, 1, 4, vec![1, 4, 0, 0]),
    ]);
    let nef = camera_raw(RawKind::Nef, &preview, 1);
    let cut = nef.windows(preview.len()).position(|w| w == preview.as_slice()).expect("preview") + preview.len() / 2;
    for (path, bytes, label, words) in [
        ("/content/dam/broken/half.heic", heic[..heic.len() / 2].to_vec(), "SourceCorrupt", "heic"),
        (
            "/content/dam/broken/sensor-only.dng",
            no_preview.finish(),
            "SourceUnsupported",
            "without an embedded JPEG preview",
        ),
        ("/content/dam/broken/cut.nef", nef[..cut].to_vec(), "SourceCorrupt", "jpeg"),
    ] {
        c.put_asset(path, bytes).await;
        let asset = c.asset_when_processed(path, PROCESSED_WITHIN).await;
        assert_eq!(asset["job"]["state"], "ERROR", "{asset}");
        let error = asset["job"]["error"].as_str().unwrap_or_default();
        assert!(error.starts_with(&format!("{label}: {path}")) && error.contains(words), "{path}: {asset}");
        let job = c.job(asset["job"]["id"].as_str().unwrap_or_default()).await;
        assert_eq!(job["result"]["status"], "CANCEL", "{job}");
    }
    assert!(worker.is_running(), "the worker died; log:\n{}", worker.log());
    finish(c).await;
}
