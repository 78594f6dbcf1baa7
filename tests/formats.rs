//! DAM Update Asset for the files people really upload, end to end on the real services
//! (docs/formats.md): the MIME type is sniffed from the bytes at ingestion, every supported
//! format gets its metadata and renditions, and everything else ends with a recorded reason on
//! the asset.

mod common;

use common::cluster::Cluster;
use common::schema::assert_valid;
use serde_json::Value;
use std::time::{Duration, Instant};

const OFFLOADING: &str = "com/adobe/granite/workflow/offloading";

async fn put(c: &Cluster, path: &str, body: Vec<u8>) -> Value {
    let resp = c.http.put(c.url(&format!("/api/assets{path}"))).body(body).send().await.expect("PUT /api/assets");
    let status = resp.status();
    let body: Value = resp.json().await.expect("a JSON answer");
    assert!(status.is_success(), "PUT {path}: {status} {body}");
    assert_valid("offloader.ingest-outcome.v1", &body);
    body
}

async fn asset_when_processed(c: &Cluster, path: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let asset: Value = c.http.get(c.url(&format!("/api/assets{path}"))).send().await.unwrap().json().await.unwrap();
        if matches!(asset["job"]["state"].as_str(), Some("SUCCEEDED" | "ERROR" | "GIVEN_UP")) {
            assert_valid("offloader.asset.v1", &asset);
            return asset;
        }
        assert!(Instant::now() < deadline, "{path} not processed within 120 s: {asset}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn finish(c: Cluster) {
    c.also_delete(OFFLOADING);
    c.finish().await;
}

/// The header of a Photoshop file (RGB, 8 bits, 300 x 200) and a little of what follows.
fn psd() -> Vec<u8> {
    let mut b = b"8BPS".to_vec();
    b.extend(1u16.to_be_bytes());
    b.extend([0; 6]);
    b.extend(3u16.to_be_bytes());
    b.extend(200u32.to_be_bytes());
    b.extend(300u32.to_be_bytes());
    b.extend(8u16.to_be_bytes());
    b.extend(3u16.to_be_bytes());
    b.extend([0; 64]);
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mime_type_comes_from_the_bytes_and_an_unsupported_one_is_a_recorded_reason() {
    let mut c = Cluster::new().await;
    c.start_leader(&[]).await;
    let mut worker = c.start_worker("w1", &[]).await;

    // A PSD, sent as octet-stream under a misleading name: sniffed, launched, refused with a reason.
    let path = "/content/dam/design/layers.bin";
    let outcome = put(&c, path, psd()).await;
    assert_eq!(outcome["mime_type"], "image/vnd.adobe.photoshop", "{outcome}");
    assert!(outcome["job"]["id"].is_string(), "image/* launches DAM Update Asset: {outcome}");
    let asset = asset_when_processed(&c, path).await;
    assert_eq!(asset["mime_type"], "image/vnd.adobe.photoshop");
    assert_eq!(asset["job"]["state"], "ERROR", "{asset}");
    let error = asset["job"]["error"].as_str().unwrap_or_default();
    assert!(error.starts_with("SourceUnsupported: /content/dam/design/layers.bin"), "on the asset: {asset}");
    assert!(error.contains("Photoshop"), "{asset}");

    // A PNG named .jpg is a PNG.
    let img = image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([x as u8 * 4, y as u8 * 5, 7]));
    let mut png = std::io::Cursor::new(Vec::new());
    img.write_to(&mut png, image::ImageFormat::Png).unwrap();
    let path = "/content/dam/design/really-a-png.jpg";
    let outcome = put(&c, path, png.into_inner()).await;
    assert_eq!(outcome["mime_type"], "image/png", "{outcome}");
    let asset = asset_when_processed(&c, path).await;
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
        put(&c, &path, offloader_renditions::synth::grey_jpeg(w, h)).await;
        let asset = asset_when_processed(&c, &path).await;
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
        let outcome = put(&c, &path, bytes.clone()).await;
        assert_eq!(outcome["mime_type"], *mime, "{outcome}");
        let asset = asset_when_processed(&c, &path).await;
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
        let outcome = put(&c, &path, corrupt).await;
        assert_eq!(outcome["mime_type"], *mime, "still sniffed from the magic: {outcome}");
        let asset = asset_when_processed(&c, &path).await;
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
