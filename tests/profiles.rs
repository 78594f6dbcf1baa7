//! Processing profiles end to end on the real services: profiles put through the CLI and the
//! API, applied to folders, resolved for each uploaded asset (the nearest folder wins, MIME
//! types included and excluded), their renditions made by a worker in their formats and sizes
//! next to the standard ones, a changed profile applied by reprocessing, bad input refused.

mod common;

use common::cluster::{stdout_json, Cluster};
use image::{ImageFormat, Rgb, RgbImage};
use serde_json::{json, Value};
use std::io::Cursor;
use std::time::Duration;

const OFFLOADING: &str = "com/adobe/granite/workflow/offloading";
const PROCESSED_WITHIN: Duration = Duration::from_secs(60);
const STANDARD: [&str; 4] = [
    "cq5dam.thumbnail.48.48.png",
    "cq5dam.thumbnail.140.100.png",
    "cq5dam.thumbnail.319.319.png",
    "cq5dam.web.1280.1280.jpeg",
];

fn picture(width: u32, height: u32, format: ImageFormat) -> Vec<u8> {
    let img = RgbImage::from_fn(width, height, |x, y| {
        Rgb([(x * 255 / width) as u8, (y * 255 / height) as u8, ((x * 3 + y * 5) % 256) as u8])
    });
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format).expect("encoding a test picture");
    out.into_inner()
}

/// The asset's rendition names, sorted.
fn names(asset: &Value) -> Vec<String> {
    let mut n: Vec<String> = asset["renditions"]
        .as_array()
        .unwrap_or_else(|| panic!("no renditions: {asset}"))
        .iter()
        .filter_map(|r| r["name"].as_str().map(str::to_owned))
        .collect();
    n.sort();
    n
}

fn expected(extra: &[&str]) -> Vec<String> {
    let mut n: Vec<String> = STANDARD.iter().chain(extra).map(|s| s.to_string()).collect();
    n.sort();
    n
}

/// Downloads a rendition, checks its bytes are `format` (sniffed, whatever the name says) and
/// its pixel size is `size`.
async fn check_rendition(c: &Cluster, path: &str, name: &str, format: ImageFormat, size: (u32, u32)) {
    let url = c.url(&format!("/api/assets{path}/renditions/{name}"));
    let resp = c.http.get(url).send().await.expect("GET a rendition");
    assert!(resp.status().is_success(), "{path} {name}: {}", resp.status());
    let bytes = resp.bytes().await.expect("the rendition's bytes");
    assert_eq!(image::guess_format(&bytes).ok(), Some(format), "{path} {name}: the bytes are not {format:?}");
    let img = image::load_from_memory_with_format(&bytes, format).unwrap_or_else(|e| panic!("{path} {name}: {e}"));
    assert_eq!((img.width(), img.height()), size, "{path} {name}");
}

async fn api(c: &Cluster, method: reqwest::Method, route: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = c.http.request(method, c.url(route));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap_or_else(|e| panic!("{route}: {e}"));
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or_else(|e| panic!("{route}: not JSON: {e}")))
}

fn cli(c: &Cluster, args: &[&str]) -> Value {
    let out = c.command(args).output().expect("running offloader");
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    stdout_json(&out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profiles_add_their_renditions_to_the_folders_they_are_applied_to() {
    let mut c = Cluster::new().await;
    c.start_leader(&[]).await;
    c.also_delete(OFFLOADING);
    let worker = c.start_worker("w1", &[]).await;

    // "web" on /content/dam/a, from the CLI's flags: a WebP for every image, a GIF for all
    // but PNGs (exclude wins over the include), and the FPO rendition.
    let put = cli(
        &c,
        &[
            "profiles",
            "put",
            "web",
            "--rendition",
            "name=web.webp,format=webp,size=200x200,include=image/*",
            "--rendition",
            "name=anim.gif,format=gif,size=100x100,include=image/*,exclude=image/png",
            "--fpo",
        ],
    );
    assert_eq!(put["renditions"].as_array().map(Vec::len), Some(2), "{put}");
    cli(&c, &["profiles", "apply", "web", "/content/dam/a"]);
    // "deep" on /content/dam/a/b, from a file: its assets get it, not /content/dam/a's.
    let file = c.dir.path().join("deep.json");
    let deep =
        json!({"renditions": [{"name": "deep.jpg", "format": "jpeg", "width": 64, "height": 64, "quality": 50}]});
    std::fs::write(&file, deep.to_string()).unwrap();
    cli(&c, &["profiles", "put", "deep", "--file", file.to_str().unwrap()]);
    cli(&c, &["profiles", "apply", "deep", "/content/dam/a/b/"]);

    let which = cli(&c, &["profiles", "which", "/content/dam/a/b/c/d.jpg"]);
    assert_eq!((&which["folder"], &which["profile"]["name"]), (&json!("/content/dam/a/b"), &json!("deep")), "{which}");
    let list = cli(&c, &["profiles", "list", "--json"]);
    assert_eq!(list["profiles"].as_array().map(Vec::len), Some(2), "{list}");
    assert_eq!(
        list["folders"],
        json!([{"folder": "/content/dam/a", "profile": "web"},
        {"folder": "/content/dam/a/b", "profile": "deep"}]),
        "{list}"
    );

    let cases: [(&str, Vec<u8>, &[&str], &str); 4] = [
        (
            "/content/dam/a/x.jpg",
            picture(800, 600, ImageFormat::Jpeg),
            &["web.webp", "anim.gif", "cq5dam.fpo.jpeg"],
            "web",
        ),
        ("/content/dam/a/y.png", picture(300, 600, ImageFormat::Png), &["web.webp", "cq5dam.fpo.jpeg"], "web"),
        ("/content/dam/a/b/c/z.jpg", picture(640, 480, ImageFormat::Jpeg), &["deep.jpg"], "deep"),
        ("/content/dam/other/w.jpg", picture(640, 480, ImageFormat::Jpeg), &[], ""),
    ];
    for (path, bytes, extra, profile) in cases {
        let outcome = c.put_asset(path, bytes).await;
        assert_eq!(outcome["profile"].as_str().unwrap_or(""), profile, "{path}: {outcome}");
        let asset = c.asset_when_processed(path, PROCESSED_WITHIN).await;
        assert_eq!(asset["job"]["state"], "SUCCEEDED", "{path}: {asset}\nworker log:\n{}", worker.log());
        assert_eq!(names(&asset), expected(extra), "{path}");
        assert_eq!(asset["job"]["profile"].as_str().unwrap_or(""), profile, "the asset says which profile: {asset}");
    }
    check_rendition(&c, "/content/dam/a/x.jpg", "web.webp", ImageFormat::WebP, (200, 150)).await;
    check_rendition(&c, "/content/dam/a/x.jpg", "anim.gif", ImageFormat::Gif, (100, 75)).await;
    check_rendition(&c, "/content/dam/a/x.jpg", "cq5dam.fpo.jpeg", ImageFormat::Jpeg, (800, 600)).await;
    check_rendition(&c, "/content/dam/a/y.png", "web.webp", ImageFormat::WebP, (100, 200)).await;
    check_rendition(&c, "/content/dam/a/b/c/z.jpg", "deep.jpg", ImageFormat::Jpeg, (64, 48)).await;
    // The FPO rendition is the low-quality one: far smaller than the web rendition of the same
    // size.
    let asset = c.asset_when_processed("/content/dam/a/x.jpg", PROCESSED_WITHIN).await;
    let size = |name: &str| {
        asset["renditions"].as_array().unwrap().iter().find(|r| r["name"] == name).unwrap()["blob"]["size"].as_u64()
    };
    assert!(size("cq5dam.fpo.jpeg") < size("cq5dam.web.1280.1280.jpeg"), "{asset}");

    // A changed profile holds from the next workflow: reprocessing gives the asset the new set.
    let changed = json!({"name": "web", "renditions": [
        {"name": "web.webp", "format": "webp", "width": 100, "height": 100}]});
    let (status, body) = api(&c, reqwest::Method::PUT, "/api/profiles/web", Some(changed)).await;
    assert_eq!(status, 200, "a replaced profile: {body}");
    let outcome = cli(&c, &["asset", "reprocess", "/content/dam/a/x.jpg"]);
    assert_eq!(outcome["profile"], "web", "{outcome}");
    let job = outcome["job"]["id"].as_str().expect("a new workflow job").to_owned();
    assert_eq!(c.wait_job(&job, PROCESSED_WITHIN).await["state"], "SUCCEEDED");
    let (_, asset) = api(&c, reqwest::Method::GET, "/api/assets/content/dam/a/x.jpg", None).await;
    assert_eq!(asset["job"]["id"], job.as_str(), "{asset}");
    assert_eq!(names(&asset), expected(&["web.webp"]), "the new profile's renditions replace the old");
    check_rendition(&c, "/content/dam/a/x.jpg", "web.webp", ImageFormat::WebP, (100, 75)).await;

    // Removing "deep" takes it off its folder: /content/dam/a's profile holds below it again.
    let removed = cli(&c, &["profiles", "remove", "deep"]);
    assert_eq!(removed["folders"], json!(["/content/dam/a/b"]), "{removed}");
    let which = cli(&c, &["profiles", "which", "/content/dam/a/b/c/z.jpg"]);
    assert_eq!(which["profile"]["name"], "web", "{which}");
    let (status, _) = api(&c, reqwest::Method::DELETE, "/api/folder-profiles/content/dam/a", None).await;
    assert_eq!(status, 200);
    let (_, which) = api(&c, reqwest::Method::GET, "/api/folder-profiles/content/dam/a/x.jpg", None).await;
    assert_eq!(which["profile"], Value::Null, "{which}");
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_profiles_and_applications_are_refused_with_the_reason() {
    let mut c = Cluster::new().await;
    c.start_leader(&[]).await;
    let r = |extra: Value| {
        let mut r = json!({"name": "r.webp", "format": "webp", "width": 100, "height": 100});
        r.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        json!({"renditions": [r]})
    };
    let cases = [
        ("p", r(json!({"width": 0})), "1 to 10000"),
        ("p", r(json!({"height": 20000})), "1 to 10000"),
        ("p", r(json!({"quality": 80})), "jpeg only"),
        ("p", r(json!({"format": "jpeg", "quality": 0})), "1 to 100"),
        ("p", r(json!({"format": "tiff"})), "tiff"),
        ("p", r(json!({"include_mime_types": ["images"]})), "type/subtype"),
        ("p", r(json!({"exclude_mime_types": ["*/png"]})), "type/subtype"),
        ("p", r(json!({"name": "cq5dam.web.1280.1280.jpeg"})), "cq5dam."),
        ("p", r(json!({"name": ".."})), "single path segment"),
        ("p", json!({"renditions": []}), "at least one rendition"),
        ("p", json!({"name": "q", "fpo": true}), "not the path's"),
        ("bad%20name", json!({"fpo": true}), "profile name"),
        ("p", json!([1, 2]), "JSON object"),
    ];
    for (name, body, says) in cases {
        let (status, answer) =
            api(&c, reqwest::Method::PUT, &format!("/api/profiles/{name}"), Some(body.clone())).await;
        assert_eq!(status, 400, "{body}: {answer}");
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(error.contains(says), "{body}: the error says {says:?}: {error}");
    }
    let (status, answer) = api(&c, reqwest::Method::GET, "/api/profiles", None).await;
    assert_eq!((status, &answer["profiles"]), (200, &json!([])), "nothing refused was kept: {answer}");

    let apply = |profile: &str| Some(json!({"profile": profile}));
    let (status, answer) = api(&c, reqwest::Method::PUT, "/api/folder-profiles/content/dam/a", apply("nope")).await;
    assert_eq!(status, 404, "{answer}");
    assert!(answer["error"].as_str().unwrap_or_default().contains("nope"), "{answer}");
    let (status, _) = api(&c, reqwest::Method::PUT, "/api/profiles/ok", Some(json!({"fpo": true}))).await;
    assert_eq!(status, 201);
    let (status, answer) = api(&c, reqwest::Method::PUT, "/api/folder-profiles/content/dam%01x", apply("ok")).await;
    assert_eq!(status, 400, "{answer}");
    let (status, answer) =
        api(&c, reqwest::Method::PUT, "/api/folder-profiles/content/dam", Some(json!({"name": "ok"}))).await;
    assert_eq!(status, 400, "{answer}");
    let (status, _) = api(&c, reqwest::Method::DELETE, "/api/folder-profiles/content/dam", None).await;
    assert_eq!(status, 404, "nothing applied there");
    let (status, _) = api(&c, reqwest::Method::DELETE, "/api/profiles/nope", None).await;
    assert_eq!(status, 404);

    // The CLI says what is wrong with a spec before asking the leader, and passes on its refusal.
    let out = c.command(&["profiles", "put", "p", "--rendition", "name=a,size=100"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("WxH"), "{out:?}");
    let out = c.command(&["profiles", "put", "p", "--rendition", "name=a,format=bmp,size=1x1"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("400"), "{out:?}");
    c.finish().await;
}
