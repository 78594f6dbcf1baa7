//! "DAM Update Asset Offloading" end to end on the real services: an image uploaded to the
//! leader becomes an offloading job, a worker runs `dam/update_asset` with the renditions
//! engine, and the asset gets AEM's four renditions and its metadata back.

mod common;

use common::cluster::{worker_of, Cluster};
use image::{ImageFormat, Rgb, RgbImage};
use serde_json::Value;
use std::io::Cursor;
use std::time::Duration;

const OFFLOADING: &str = "com/adobe/granite/workflow/offloading";

/// A photo-like JPEG: smooth gradients with some texture.
fn jpeg(width: u32, height: u32) -> Vec<u8> {
    let img = RgbImage::from_fn(width, height, |x, y| {
        let t = ((x * 7 + y * 13) % 31) as u8;
        Rgb([(x * 255 / width) as u8 ^ t, (y * 255 / height) as u8, ((x + y) % 256) as u8])
    });
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Jpeg).expect("encoding a test JPEG");
    out.into_inner()
}

/// A small PNG whose header claims 50 000 x 50 000 pixels (7.5 GB of RGB): a decompression bomb
/// to any decoder that trusts it. Its one IDAT chunk holds a tiny zlib stream; a decoder that
/// checks the header first refuses it before inflating anything.
fn png_bomb_header() -> Vec<u8> {
    fn chunk(png: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
        let mut body = kind.to_vec();
        body.extend(data);
        png.extend((data.len() as u32).to_be_bytes());
        png.extend(&body);
        png.extend(crc32(&body).to_be_bytes());
    }
    let mut ihdr = Vec::new();
    ihdr.extend(50_000u32.to_be_bytes());
    ihdr.extend(50_000u32.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]); // 8-bit RGB, deflate, no filter, no interlace
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut png, b"IHDR", &ihdr);
    chunk(&mut png, b"IDAT", &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
    chunk(&mut png, b"IEND", &[]);
    png
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// How long an upload may take to be processed before the test fails.
const PROCESSED_WITHIN: Duration = Duration::from_secs(60);

/// Stops the cluster and deletes its AMQP objects, including the offloading topic's queue,
/// which a launcher declared (the harness knows only the topics it submitted to).
async fn finish(c: Cluster) {
    c.also_delete(OFFLOADING);
    c.finish().await;
}

fn rendition<'a>(asset: &'a Value, name: &str) -> &'a Value {
    asset["renditions"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["name"] == name))
        .unwrap_or_else(|| panic!("no rendition {name}: {asset}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uploaded_photo_gets_its_renditions_and_metadata_from_a_worker() {
    let mut c = Cluster::new().await;
    c.start_leader(&[]).await;
    let worker = c.start_worker("w1", &[]).await;

    let path = "/content/dam/photos/beach.jpg";
    c.put_asset(path, jpeg(2000, 1500)).await;
    let asset = c.asset_when_processed(path, PROCESSED_WITHIN).await;
    assert_eq!(asset["job"]["state"], "SUCCEEDED", "{asset}\nworker log:\n{}", worker.log());
    assert_eq!(asset["metadata"]["width"], 2000, "{asset}");
    assert_eq!(asset["metadata"]["height"], 1500, "{asset}");
    assert_eq!(asset["metadata"]["mime_type"], "image/jpeg", "{asset}");

    // AEM's defaults, fitted inside their boxes with the aspect kept.
    for (name, w, h, format) in [
        ("cq5dam.thumbnail.48.48.png", 48, 36, ImageFormat::Png),
        ("cq5dam.thumbnail.140.100.png", 133, 100, ImageFormat::Png),
        ("cq5dam.thumbnail.319.319.png", 319, 239, ImageFormat::Png),
        ("cq5dam.web.1280.1280.jpeg", 1280, 960, ImageFormat::Jpeg),
    ] {
        let r = rendition(&asset, name);
        assert_eq!((r["width"].as_u64(), r["height"].as_u64()), (Some(w), Some(h)), "{r}");
        let url = c.url(&format!("/api/assets{path}/renditions/{name}"));
        let bytes = c.http.get(url).send().await.unwrap().bytes().await.unwrap();
        let img = image::load_from_memory_with_format(&bytes, format).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!((img.width(), img.height()), (w as u32, h as u32), "{name} as decoded");
    }
    let job = c.job(asset["job"]["id"].as_str().unwrap()).await;
    assert_eq!(job["topic"], OFFLOADING);
    assert_eq!(worker_of(&job), "w1");
    finish(c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_images_fail_their_job_with_the_reason_and_the_worker_goes_on() {
    let mut c = Cluster::new().await;
    c.start_leader(&[]).await;
    let mut worker = c.start_worker("w1", &[]).await;

    let mut truncated = jpeg(640, 480);
    truncated.truncate(truncated.len() / 3);
    // Entropy-coded data overwritten with all-ones bits (byte-stuffed): no valid Huffman code.
    let mut corrupt = jpeg(640, 480);
    let third = corrupt.len() / 3;
    for (i, b) in corrupt[third..2 * third].iter_mut().enumerate() {
        *b = if i % 2 == 0 { 0xff } else { 0x00 };
    }
    let mut truncated_png = png(640, 480);
    truncated_png.truncate(truncated_png.len() / 2);
    let cases: [(&str, Vec<u8>, &str); 5] = [
        ("/content/dam/bad/truncated.jpg", truncated, ""),
        ("/content/dam/bad/corrupt.jpg", corrupt, ""),
        ("/content/dam/bad/truncated.png", truncated_png, ""),
        ("/content/dam/bad/notes.jpg", b"just some text, not a JPEG at all".to_vec(), ""),
        ("/content/dam/bad/bomb.png", png_bomb_header(), "50000"),
    ];
    for (path, bytes, mention) in cases {
        c.put_asset(path, bytes).await;
        let asset = c.asset_when_processed(path, PROCESSED_WITHIN).await;
        assert_eq!(asset["job"]["state"], "ERROR", "{path}: {asset}");
        let job = c.job(asset["job"]["id"].as_str().unwrap()).await;
        let reason = job["result"]["reason"].as_str().unwrap_or_default();
        assert!(reason.contains(path), "{path}: the reason names the asset: {job}");
        assert!(reason.contains(mention), "{path}: the reason says why ({mention}): {job}");
        assert_eq!(job["attempt"], 1, "bad input is not retried: {job}");
        assert!(asset["renditions"].as_array().is_some_and(Vec::is_empty), "{asset}");
    }

    // The worker is still there and processes the next good image.
    assert!(worker.is_running(), "the worker died; log:\n{}", worker.log());
    let good = "/content/dam/bad/after.jpg";
    c.put_asset(good, jpeg(300, 200)).await;
    let asset = c.asset_when_processed(good, PROCESSED_WITHIN).await;
    assert_eq!(asset["job"]["state"], "SUCCEEDED", "{asset}");
    assert_eq!(rendition(&asset, "cq5dam.web.1280.1280.jpeg")["width"], 300, "never upscaled: {asset}");
    finish(c).await;
}

/// The JPEG with an EXIF block holding only an orientation tag, as cameras write it.
fn with_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    let mut tiff = b"MM\0\x2a\0\0\0\x08".to_vec(); // big-endian TIFF, first IFD at 8
    tiff.extend(1u16.to_be_bytes()); // one entry:
    tiff.extend(0x0112u16.to_be_bytes()); // Orientation
    tiff.extend(3u16.to_be_bytes()); // SHORT
    tiff.extend(1u32.to_be_bytes()); // one value
    tiff.extend(orientation.to_be_bytes());
    tiff.extend([0, 0]);
    tiff.extend(0u32.to_be_bytes()); // no next IFD
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend(tiff);
    let mut out = jpeg[..2].to_vec(); // SOI
    out.extend([0xff, 0xe1]);
    out.extend(((app1.len() + 2) as u16).to_be_bytes());
    out.extend(app1);
    out.extend(&jpeg[2..]);
    out
}

fn png(width: u32, height: u32) -> Vec<u8> {
    let img = RgbImage::from_fn(width, height, |x, y| Rgb([(x % 256) as u8, (y % 256) as u8, 128]));
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Png).expect("encoding a test PNG");
    out.into_inner()
}

fn dims(asset: &Value, name: &str) -> (u64, u64) {
    let r = rendition(asset, name);
    (r["width"].as_u64().unwrap_or(0), r["height"].as_u64().unwrap_or(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn photos_from_the_cli_and_the_watch_folder_get_oriented_renditions() {
    let mut c = Cluster::new().await;
    let inbox = c.dir.path().join("inbox");
    let inbox_s = inbox.to_str().unwrap().to_owned();
    c.start_leader(&["--watch", &inbox_s, "--watch-to", "/content/dam/inbox", "--watch-interval", "200ms"]).await;
    let _worker = c.start_worker("w1", &[]).await;

    // `offloader ingest` of a folder: a landscape JPEG, a camera JPEG stored sideways
    // (EXIF orientation 6: shown rotated 90°), and a PNG.
    let photos = c.dir.path().join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    std::fs::write(photos.join("landscape.jpg"), jpeg(1600, 1000)).unwrap();
    std::fs::write(photos.join("sideways.jpg"), with_orientation(&jpeg(1200, 800), 6)).unwrap();
    std::fs::write(photos.join("graphic.png"), png(500, 700)).unwrap();
    let out =
        c.command(&["ingest", photos.to_str().unwrap(), "--to", "/content/dam/photos", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let landscape = c.asset_when_processed("/content/dam/photos/landscape.jpg", PROCESSED_WITHIN).await;
    assert_eq!(landscape["job"]["state"], "SUCCEEDED", "{landscape}");
    assert_eq!(dims(&landscape, "cq5dam.web.1280.1280.jpeg"), (1280, 800));
    assert_eq!(dims(&landscape, "cq5dam.thumbnail.140.100.png"), (140, 88));

    let sideways = c.asset_when_processed("/content/dam/photos/sideways.jpg", PROCESSED_WITHIN).await;
    assert_eq!(sideways["job"]["state"], "SUCCEEDED", "{sideways}");
    assert_eq!(sideways["metadata"]["orientation"], 6, "{sideways}");
    assert_eq!(
        (sideways["metadata"]["width"].as_u64(), sideways["metadata"]["height"].as_u64()),
        (Some(800), Some(1200))
    );
    assert_eq!(dims(&sideways, "cq5dam.web.1280.1280.jpeg"), (800, 1200), "rotated, never upscaled");
    assert_eq!(dims(&sideways, "cq5dam.thumbnail.319.319.png"), (213, 319));

    let graphic = c.asset_when_processed("/content/dam/photos/graphic.png", PROCESSED_WITHIN).await;
    assert_eq!(graphic["job"]["state"], "SUCCEEDED", "{graphic}");
    assert_eq!(graphic["metadata"]["mime_type"], "image/png", "{graphic}");
    assert_eq!(dims(&graphic, "cq5dam.thumbnail.48.48.png"), (34, 48));

    // The watch folder: a file dropped there becomes an asset with the same renditions.
    std::fs::create_dir_all(&inbox).unwrap();
    std::fs::write(inbox.join("drop.jpg"), jpeg(640, 480)).unwrap();
    let dropped = c.asset_when_processed("/content/dam/inbox/drop.jpg", PROCESSED_WITHIN).await;
    assert_eq!(dropped["job"]["state"], "SUCCEEDED", "{dropped}");
    assert_eq!(dims(&dropped, "cq5dam.thumbnail.319.319.png"), (319, 239));

    // The same bytes again reuse the blobs: nothing changes, no new job.
    let again =
        c.command(&["ingest", photos.to_str().unwrap(), "--to", "/content/dam/photos", "--json"]).output().unwrap();
    let summary: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(summary["unchanged"], 3, "{summary}");
    assert_eq!(summary["jobs"], 0, "{summary}");
    finish(c).await;
}

/// Launchers that run `dam/update_asset` on the leader itself under `/content/dam/local`, and
/// offload everywhere else under `/content/dam`.
fn local_launchers(c: &Cluster) -> String {
    let file = c.dir.path().join("launchers.toml");
    std::fs::write(
        &file,
        r#"
[[launcher]]
id = "local"
event = "created"
path = "/content/dam/local/**"
mime_type = "image/*"
workflow = "dam/update_asset"

[[launcher]]
id = "offload"
event = "created"
path = "/content/dam/**"
mime_type = "image/*"
workflow = "dam/update_asset_offloading"
"#,
    )
    .expect("writing the launchers file");
    file.to_str().expect("utf-8 path").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_runs_dam_update_asset_itself_with_the_same_result_as_a_worker() {
    let mut c = Cluster::new().await;
    let launchers = local_launchers(&c);
    c.start_leader(&["--launchers", &launchers]).await;
    let worker = c.start_worker("w1", &[]).await;

    let photo = jpeg(2000, 1500);
    c.put_asset("/content/dam/local/beach.jpg", photo.clone()).await;
    c.put_asset("/content/dam/offloaded/beach.jpg", photo).await;
    let local = c.asset_when_processed("/content/dam/local/beach.jpg", PROCESSED_WITHIN).await;
    let offloaded = c.asset_when_processed("/content/dam/offloaded/beach.jpg", PROCESSED_WITHIN).await;
    assert_eq!(local["job"]["state"], "SUCCEEDED", "{local}");
    assert_eq!(offloaded["job"]["state"], "SUCCEEDED", "{offloaded}\nworker log:\n{}", worker.log());
    assert_eq!(local["job"]["workflow"], "dam/update_asset", "{local}");

    let local_job = c.job(local["job"]["id"].as_str().unwrap()).await;
    assert_eq!(local_job["topic"], "offloader/local", "{local_job}");
    assert_eq!(worker_of(&local_job), "leader", "the leader ran it: {local_job}");
    let offloaded_job = c.job(offloaded["job"]["id"].as_str().unwrap()).await;
    assert_eq!(worker_of(&offloaded_job), "w1", "{offloaded_job}");

    // Same engine, same plan: byte-identical renditions and the same metadata either way.
    assert_eq!(local["metadata"], offloaded["metadata"]);
    assert_eq!(local["renditions"].as_array().map(Vec::len), Some(4), "{local}");
    for r in local["renditions"].as_array().unwrap() {
        let name = r["name"].as_str().unwrap();
        let twin = rendition(&offloaded, name);
        assert_eq!(r["blob"], twin["blob"], "{name} differs between leader and worker");
        assert_eq!((&r["width"], &r["height"]), (&twin["width"], &twin["height"]));
        let url = c.url(&format!("/api/assets/content/dam/local/beach.jpg/renditions/{name}"));
        let bytes = c.http.get(url).send().await.unwrap().bytes().await.unwrap();
        image::load_from_memory(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    }

    // Bad input fails the local job with the reason; the leader goes on.
    let mut corrupt = jpeg(640, 480);
    corrupt.truncate(corrupt.len() / 3);
    c.put_asset("/content/dam/local/truncated.jpg", corrupt).await;
    let bad = c.asset_when_processed("/content/dam/local/truncated.jpg", PROCESSED_WITHIN).await;
    assert_eq!(bad["job"]["state"], "ERROR", "{bad}");
    let bad_job = c.job(bad["job"]["id"].as_str().unwrap()).await;
    let reason = bad_job["result"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("/content/dam/local/truncated.jpg"), "{bad_job}");

    // Nobody can publish on the leader's own topic.
    let resp =
        c.http.post(c.url("/api/jobs")).json(&serde_json::json!({"topic": "offloader/local"})).send().await.unwrap();
    assert_eq!(resp.status(), 400, "{}", resp.text().await.unwrap_or_default());
    finish(c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_workflows_a_crash_interrupted_run_again_at_the_next_start() {
    let mut c = Cluster::new().await;
    let launchers = local_launchers(&c);
    // One at a time, so that most are still waiting when the leader dies.
    c.start_leader(&["--launchers", &launchers, "--local-concurrency", "1"]).await;
    let paths: Vec<String> = (0..4).map(|i| format!("/content/dam/local/p{i}.jpg")).collect();
    for (i, path) in paths.iter().enumerate() {
        let started = c.put_asset(path, jpeg(2400 + i as u32, 1800)).await;
        assert_eq!(started["job"]["topic"], "offloader/local", "{started}");
    }
    let mut leader = c.leader.take().expect("the leader runs");
    leader.kill();

    c.start_leader(&["--launchers", &launchers]).await;
    for path in &paths {
        let asset = c.asset_when_processed(path, PROCESSED_WITHIN).await;
        assert_eq!(asset["job"]["state"], "SUCCEEDED", "{asset}");
        assert_eq!(asset["renditions"].as_array().map(Vec::len), Some(4), "{asset}");
    }
    let log = c.leader.as_ref().map(|l| l.log()).unwrap_or_default();
    assert!(log.contains("resuming a local workflow"), "the restarted leader resumed nothing:\n{log}");
    finish(c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_naming_a_model_it_does_not_carry_waits_for_a_worker_that_has_it() {
    let mut c = Cluster::new().await;
    let models = c.dir.path().join("models");
    std::fs::create_dir_all(&models).unwrap();
    let thumbs = serde_json::json!({
        "id": "acme/thumbs", "version": 3, "title": "WebP thumbnail",
        "steps": [{"type": "renditions", "renditions": [{"name": "thumb.webp", "width": 100, "height": 100, "format": "webp"}]}]
    });
    let offloading = serde_json::json!({
        "id": "acme/thumbs_offloading", "version": 1, "title": "WebP thumbnail, offloaded",
        "steps": [{"type": "offload", "model": "acme/thumbs", "include_model": false}]
    });
    std::fs::write(models.join("thumbs.json"), thumbs.to_string()).unwrap();
    std::fs::write(models.join("thumbs_offloading.json"), offloading.to_string()).unwrap();
    let launchers = c.dir.path().join("launchers.toml");
    std::fs::write(
        &launchers,
        "[[launcher]]\nid = \"thumbs\"\nevent = \"created\"\npath = \"/content/dam/**\"\nworkflow = \"acme/thumbs_offloading\"\n",
    )
    .unwrap();
    let models_s = models.to_str().unwrap().to_owned();
    c.start_leader(&["--models", &models_s, "--launchers", launchers.to_str().unwrap()]).await;

    // A worker with only the built-ins cannot resolve acme/thumbs: it hands the job back, and
    // the job waits (QUEUED, with the reason) instead of failing.
    let mut plain = c.start_worker("plain", &[]).await;
    c.put_asset("/content/dam/a.jpg", jpeg(400, 300)).await;
    let asset = c.http.get(c.url("/api/assets/content/dam/a.jpg")).send().await.unwrap().json::<Value>().await.unwrap();
    let id = asset["job"]["id"].as_str().expect("a job was started").to_owned();
    let declined = c.wait_job_until(&id, Duration::from_secs(30), |j| j["declines"].as_u64().unwrap_or(0) >= 2).await;
    assert_eq!(declined["state"], "QUEUED", "{declined}");
    assert_eq!(declined["result"]["status"], "DECLINED", "{declined}");
    let reason = declined["result"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("no workflow model \"acme/thumbs\""), "{declined}");
    assert!(declined["properties"].get("offloading.workflow.model.definition").is_none(), "{declined}");
    plain.terminate(Duration::from_secs(20));

    // Given the leader's folder, a worker runs the model by name and version: the same job.
    let _informed = c.start_worker("informed", &["--models", &models_s]).await;
    let done = c.asset_when_processed("/content/dam/a.jpg", PROCESSED_WITHIN).await;
    assert_eq!(done["job"]["state"], "SUCCEEDED", "{done}");
    assert_eq!(done["job"]["id"], id.as_str(), "{done}");
    assert_eq!(dims(&done, "thumb.webp"), (100, 75));
    assert_eq!(rendition(&done, "thumb.webp")["mime_type"], "image/webp", "{done}");
    let job = c.job(&id).await;
    assert_eq!(job["worker"]["name"], "informed", "{job}");
    assert!(job["declines"].as_u64().unwrap() >= 2, "{job}");
    finish(c).await;
}
