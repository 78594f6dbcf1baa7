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
