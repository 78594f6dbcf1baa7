//! The OpenAPI document the leader serves is what the leader answers: every route is called on
//! a live leader (with a worker), and every answer's status must be listed for its route and
//! its body must validate against the schema the document gives for that status.

mod common;

use common::cluster::{random_file, Cluster};
use reqwest::{Method, RequestBuilder, Response};
use serde_json::{json, Value};
use std::time::Duration;

/// The served document, and checks against it.
struct Contract {
    doc: Value,
    checked: std::cell::RefCell<Vec<String>>,
}

impl Contract {
    async fn fetch(c: &Cluster) -> Contract {
        let resp = c.http.get(c.url("/api/openapi.json")).send().await.expect("GET /api/openapi.json");
        assert!(resp.status().is_success(), "no OpenAPI document: {}", resp.status());
        let doc: Value = resp.json().await.expect("the document is JSON");
        assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")), "{doc}");
        Contract { doc, checked: Default::default() }
    }

    /// Sends `req` for `route` (the document's path template) and checks the answer; returns
    /// the status and body.
    async fn call(&self, method: Method, route: &str, req: RequestBuilder) -> (u16, Value) {
        let resp: Response = req.send().await.unwrap_or_else(|e| panic!("{method} {route}: {e}"));
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or_else(|e| panic!("{method} {route}: answer is not JSON: {e}"));
        self.check(&method, route, status, &body);
        (status, body)
    }

    /// Counts a call whose answer is not JSON (a stream) as checked.
    fn mark(&self, method: &Method, route: &str, status: u16) {
        let m = method.as_str().to_ascii_lowercase();
        let op = &self.doc["paths"][route][&m];
        assert!(op["responses"][status.to_string()].is_object(), "{method} {route} {status} is not documented");
        self.checked.borrow_mut().push(format!("{m} {route} {status}"));
    }

    fn check(&self, method: &Method, route: &str, status: u16, body: &Value) {
        let m = method.as_str().to_ascii_lowercase();
        let op = &self.doc["paths"][route][&m];
        assert!(op.is_object(), "{method} {route} is not in the OpenAPI document");
        let response = &op["responses"][status.to_string()];
        assert!(response.is_object(), "{method} {route} answered {status}, which the document does not list: {body}");
        let schema = &response["content"]["application/json"]["schema"];
        assert!(schema.is_object(), "{method} {route} {status}: the document gives no JSON schema");
        // The response's schema with the document's components beside it, so
        // `#/components/...` references resolve.
        let mut root = schema.clone();
        root["components"] = self.doc["components"].clone();
        let validator =
            jsonschema::validator_for(&root).unwrap_or_else(|e| panic!("schema of {method} {route} {status}: {e}"));
        let errors: Vec<String> =
            validator.iter_errors(body).map(|e| format!("{e} at {}", e.instance_path())).collect();
        assert!(
            errors.is_empty(),
            "{method} {route} {status} does not match the document:\n{}\n{body:#}",
            errors.join("\n")
        );
        self.checked.borrow_mut().push(format!("{m} {route} {status}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_matches_the_served_openapi_document() {
    let mut c = Cluster::new().await;
    c.start_leader(&[]).await;
    let _w = c.start_worker("w1", &[]).await;
    let api = Contract::fetch(&c).await;
    let http = &c.http;

    api.call(Method::GET, "/api/health", http.get(c.url("/api/health"))).await;

    // The events stream: a server-sent events answer, whose first event is the next job change.
    let mut events = http.get(c.url("/api/events")).send().await.expect("GET /api/events");
    assert_eq!(events.status().as_u16(), 200);
    let kind = events.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    assert!(kind.starts_with("text/event-stream"), "{kind}");
    api.mark(&Method::GET, "/api/events", 200);

    // Jobs: create (with an input in the datastore), read, wait, list, stop, refuse.
    let file = random_file(c.dir.path(), "in.bin", 2000);
    let blob = c.store().await.put_file(&file).await.expect("storing an input").blob;
    c.also_delete("offloader/echo");
    let create = json!({"topic": "offloader/echo", "properties": {"k": 1},
        "inputs": [{"path": "/in.bin", "blob": blob, "mime_type": "application/octet-stream"}]});
    let (status, job) = api.call(Method::POST, "/api/jobs", http.post(c.url("/api/jobs")).json(&create)).await;
    assert_eq!(status, 201, "{job}");
    let id = job["id"].as_str().unwrap().to_owned();
    let mut text = String::new();
    while !text.contains(&id) {
        let chunk = tokio::time::timeout(Duration::from_secs(10), events.chunk())
            .await
            .expect("a job event within 10 s")
            .expect("reading the events stream")
            .expect("the stream stays open");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let data = text.lines().find(|l| l.starts_with("data:") && l.contains(&id)).expect("a data line");
    let event: Value = serde_json::from_str(data.trim_start_matches("data:").trim()).expect("JSON event data");
    assert_eq!(event["topic"], "offloader/echo", "{event}");
    assert!(text.contains("event: job"), "{text}");
    drop(events);
    let (_, done) = api.call(Method::GET, "/api/jobs/{id}", http.get(c.url(&format!("/api/jobs/{id}?wait=20")))).await;
    assert_eq!(done["state"], "SUCCEEDED", "{done}");
    api.call(Method::GET, "/api/jobs", http.get(c.url("/api/jobs?limit=5&topic=offloader/**"))).await;
    api.call(Method::POST, "/api/jobs/{id}/stop", http.post(c.url(&format!("/api/jobs/{id}/stop")))).await;
    let (status, _) = api.call(Method::GET, "/api/jobs/{id}", http.get(c.url("/api/jobs/not-an-id"))).await;
    assert_eq!(status, 400);
    let unknown = "01900000-0000-7000-8000-000000000000";
    let (status, _) = api.call(Method::GET, "/api/jobs/{id}", http.get(c.url(&format!("/api/jobs/{unknown}")))).await;
    assert_eq!(status, 404);
    let (status, _) =
        api.call(Method::POST, "/api/jobs", http.post(c.url("/api/jobs")).json(&json!({"topic": "a/../b"}))).await;
    assert_eq!(status, 400);
    let (status, _) = api.call(Method::GET, "/api/jobs", http.get(c.url("/api/jobs?state=DONE"))).await;
    assert_eq!(status, 400);
    // findJobs as Sling's: a kind, a pattern, a time range, templates (OR), paging.
    let search =
        "/api/jobs?kind=HISTORY&topic=offloader/**&created_after=2020-01-01T00:00:00Z&where=k>=1&where=k=x&limit=1";
    let (status, found) = api.call(Method::GET, "/api/jobs", http.get(c.url(search))).await;
    assert_eq!((status, found["jobs"].as_array().map(Vec::len)), (200, Some(1)), "{found}");
    for bad in ["/api/jobs?nonsense=1", "/api/jobs?where=k", "/api/jobs?kind=SOON"] {
        let (status, _) = api.call(Method::GET, "/api/jobs", http.get(c.url(bad))).await;
        assert_eq!(status, 400, "{bad}");
    }

    // Statistics, overall and of some topics.
    let (_, stats) = api.call(Method::GET, "/api/stats", http.get(c.url("/api/stats"))).await;
    assert!(stats["topics"]["offloader/echo"]["finished"].as_u64() >= Some(1), "{stats}");
    let (status, _) = api.call(Method::GET, "/api/stats", http.get(c.url("/api/stats?topic=a/*/b"))).await;
    assert_eq!(status, 400);

    // Schedules: add (and refuse a bad one), list, remove (and a second time, gone).
    let every_hour = json!({"topic": "offloader/echo", "cron": "0 0 * * * *", "properties": {"k": 2}});
    let (status, added) =
        api.call(Method::POST, "/api/schedules", http.post(c.url("/api/schedules")).json(&every_hour)).await;
    assert_eq!(status, 201, "{added}");
    let both = json!({"topic": "offloader/echo", "cron": "0 0 * * * *", "at": "2030-01-01T00:00:00Z"});
    let (status, _) = api.call(Method::POST, "/api/schedules", http.post(c.url("/api/schedules")).json(&both)).await;
    assert_eq!(status, 400);
    let (_, list) = api.call(Method::GET, "/api/schedules", http.get(c.url("/api/schedules"))).await;
    assert_eq!(list["schedules"].as_array().map(Vec::len), Some(1), "{list}");
    let sid = added["id"].as_str().unwrap().to_owned();
    let one = format!("/api/schedules/{sid}");
    let (status, _) = api.call(Method::DELETE, "/api/schedules/{id}", http.delete(c.url(&one))).await;
    assert_eq!(status, 200);
    let (status, _) = api.call(Method::DELETE, "/api/schedules/{id}", http.delete(c.url(&one))).await;
    assert_eq!(status, 404);

    // Retry (a succeeded job is refused; a given-up one runs again), retry by filter, remove.
    let retry = "/api/jobs/{id}/retry";
    let (status, _) = api.call(Method::POST, retry, http.post(c.url(&format!("/api/jobs/{id}/retry")))).await;
    assert_eq!(status, 409);
    c.also_delete("offloader/fail");
    let failing = json!({"topic": "offloader/fail", "max_attempts": 1});
    let (_, failed) = api.call(Method::POST, "/api/jobs", http.post(c.url("/api/jobs")).json(&failing)).await;
    let failed_id = failed["id"].as_str().unwrap().to_owned();
    let (_, given_up) =
        api.call(Method::GET, "/api/jobs/{id}", http.get(c.url(&format!("/api/jobs/{failed_id}?wait=20")))).await;
    assert_eq!(given_up["state"], "GIVEN_UP", "{given_up}");
    let (status, _) = api.call(Method::POST, retry, http.post(c.url(&format!("/api/jobs/{failed_id}/retry")))).await;
    assert_eq!(status, 200);
    let (status, _) =
        api.call(Method::POST, "/api/jobs/retry", http.post(c.url("/api/jobs/retry?state=GIVEN_UP&topic=a/**"))).await;
    assert_eq!(status, 200);
    let (status, _) =
        api.call(Method::POST, "/api/jobs/retry", http.post(c.url("/api/jobs/retry?state=SUCCEEDED"))).await;
    assert_eq!(status, 400);
    // Counted and removed by filter: the given-up job's topic holds it; a bad filter is refused.
    let (status, count) =
        api.call(Method::GET, "/api/jobs/count", http.get(c.url("/api/jobs/count?topic=offloader/fail"))).await;
    assert_eq!((status, count["count"].as_u64()), (200, Some(1)), "{count}");
    let (status, _) = api.call(Method::GET, "/api/jobs/count", http.get(c.url("/api/jobs/count?state=NOPE"))).await;
    assert_eq!(status, 400);
    let (status, removed) =
        api.call(Method::POST, "/api/jobs/remove", http.post(c.url("/api/jobs/remove?topic=offloader/fail"))).await;
    assert_eq!(status, 200, "{removed}");
    assert_eq!(removed["jobs"][0]["id"], failed_id.as_str(), "{removed}");
    let (status, _) =
        api.call(Method::POST, "/api/jobs/remove", http.post(c.url("/api/jobs/remove?where=n%3E%3E1"))).await;
    assert_eq!(status, 400);
    // The last minutes, bucketed: 5 minutes of 10 s; too many buckets are refused.
    let (status, series) =
        api.call(Method::GET, "/api/stats/series", http.get(c.url("/api/stats/series?minutes=5&step=10"))).await;
    assert_eq!(status, 200, "{series}");
    assert_eq!(series["buckets"].as_array().map(Vec::len), Some(30), "{series}");
    let (status, _) =
        api.call(Method::GET, "/api/stats/series", http.get(c.url("/api/stats/series?minutes=60&step=1"))).await;
    assert_eq!(status, 400);
    let (status, _) = api.call(Method::DELETE, "/api/jobs/{id}", http.delete(c.url(&format!("/api/jobs/{id}")))).await;
    assert_eq!(status, 200);
    let (status, _) = api.call(Method::DELETE, "/api/jobs/{id}", http.delete(c.url(&format!("/api/jobs/{id}")))).await;
    assert_eq!(status, 404);

    // Assets: upload, read, register the same bytes elsewhere, launchers and models.
    let route = "/api/assets/{path}";
    let (status, outcome) =
        api.call(Method::PUT, route, http.put(c.url("/api/assets/content/docs/a.txt")).body("hello")).await;
    assert_eq!(status, 201, "{outcome}");
    let (status, _) =
        api.call(Method::PUT, route, http.put(c.url("/api/assets/content/docs/a.txt")).body("hello")).await;
    assert_eq!(status, 200);
    api.call(Method::GET, route, http.get(c.url("/api/assets/content/docs/a.txt"))).await;
    let register = json!({"blob": outcome["original"], "mime_type": "text/plain"});
    let (status, _) =
        api.call(Method::POST, route, http.post(c.url("/api/assets/content/docs/b.txt")).json(&register)).await;
    assert_eq!(status, 201);
    let (status, _) = api.call(Method::GET, route, http.get(c.url("/api/assets/content/nothing-here"))).await;
    assert_eq!(status, 404);
    let reprocess = "/api/reprocess/{path}";
    let (status, _) = api.call(Method::POST, reprocess, http.post(c.url("/api/reprocess/content/docs/a.txt"))).await;
    assert_eq!(status, 200);
    let (status, _) = api.call(Method::POST, reprocess, http.post(c.url("/api/reprocess/content/nothing"))).await;
    assert_eq!(status, 404);
    // Browsing: one folder of the tree; a bad folder is refused.
    let (_, folder) = api.call(Method::GET, "/api/assets", http.get(c.url("/api/assets?folder=/content/docs"))).await;
    let names: Vec<&str> = folder["assets"].as_array().unwrap().iter().filter_map(|a| a["name"].as_str()).collect();
    assert_eq!(names, ["a.txt", "b.txt"], "{folder}");
    let (_, root) = api.call(Method::GET, "/api/assets", http.get(c.url("/api/assets"))).await;
    assert_eq!(root["folders"][0]["path"], "/content", "{root}");
    let (status, _) = api.call(Method::GET, "/api/assets", http.get(c.url("/api/assets?folder=/a/../b"))).await;
    assert_eq!(status, 400);
    // Any blob by its reference (bytes, not JSON), and a bad reference.
    let sha = outcome["original"]["sha256"].as_str().unwrap();
    let bytes = http.get(c.url(&format!("/api/blobs/{sha}?size=5"))).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(&bytes[..], b"hello");
    let (status, _) = api.call(Method::GET, "/api/blobs/{sha256}", http.get(c.url("/api/blobs/nothex?size=1"))).await;
    assert_eq!(status, 400);
    api.call(Method::GET, "/api/launchers", http.get(c.url("/api/launchers"))).await;
    api.call(Method::GET, "/api/models", http.get(c.url("/api/models"))).await;

    // Processing profiles: put (new, replaced, refused), read, apply to a folder, resolve,
    // take off, remove.
    let one = "/api/profiles/{name}";
    let web = json!({"renditions": [{"name": "web.webp", "format": "webp", "width": 200, "height": 200,
        "include_mime_types": ["image/*"]}], "fpo": true});
    let (status, _) = api.call(Method::PUT, one, http.put(c.url("/api/profiles/web")).json(&web)).await;
    assert_eq!(status, 201);
    let (status, _) = api.call(Method::PUT, one, http.put(c.url("/api/profiles/web")).json(&web)).await;
    assert_eq!(status, 200);
    let (status, _) =
        api.call(Method::PUT, one, http.put(c.url("/api/profiles/bad")).json(&json!({"renditions": []}))).await;
    assert_eq!(status, 400);
    api.call(Method::GET, one, http.get(c.url("/api/profiles/web"))).await;
    let (status, _) = api.call(Method::GET, one, http.get(c.url("/api/profiles/none"))).await;
    assert_eq!(status, 404);
    let folder = "/api/folder-profiles/{path}";
    let apply = json!({"profile": "web"});
    let (status, _) =
        api.call(Method::PUT, folder, http.put(c.url("/api/folder-profiles/content/dam/web")).json(&apply)).await;
    assert_eq!(status, 200);
    let (status, _) = api
        .call(
            Method::PUT,
            folder,
            http.put(c.url("/api/folder-profiles/content/dam/x")).json(&json!({"profile": "none"})),
        )
        .await;
    assert_eq!(status, 404);
    let (_, resolved) =
        api.call(Method::GET, folder, http.get(c.url("/api/folder-profiles/content/dam/web/a/b"))).await;
    assert_eq!(resolved["folder"], "/content/dam/web", "{resolved}");
    let (_, list) = api.call(Method::GET, "/api/profiles", http.get(c.url("/api/profiles"))).await;
    assert_eq!(list["folders"][0]["profile"], "web", "{list}");
    let (status, _) =
        api.call(Method::DELETE, folder, http.delete(c.url("/api/folder-profiles/content/dam/web"))).await;
    assert_eq!(status, 200);
    let (status, _) =
        api.call(Method::DELETE, folder, http.delete(c.url("/api/folder-profiles/content/dam/web"))).await;
    assert_eq!(status, 404);
    let (status, _) = api.call(Method::DELETE, one, http.delete(c.url("/api/profiles/web"))).await;
    assert_eq!(status, 200);
    let (status, _) = api.call(Method::DELETE, one, http.delete(c.url("/api/profiles/web"))).await;
    assert_eq!(status, 404);

    // Topology: the report, a live change confirmed by the worker, an unknown instance.
    api.call(Method::GET, "/api/topics", http.get(c.url("/api/topics"))).await;
    let (_, topology) = api.call(Method::GET, "/api/topology", http.get(c.url("/api/topology"))).await;
    assert!(topology["clusters"].as_array().is_some_and(|c| !c.is_empty()), "{topology}");
    let change = json!({"topic": "offloader/sleep", "instance": "w1"});
    let (status, view) =
        api.call(Method::POST, "/api/topics/{action}", http.post(c.url("/api/topics/disable")).json(&change)).await;
    assert_eq!(status, 200, "{view}");
    let nobody = json!({"topic": "offloader/sleep", "instance": "nobody"});
    let (status, _) =
        api.call(Method::POST, "/api/topics/{action}", http.post(c.url("/api/topics/enable")).json(&nobody)).await;
    assert_eq!(status, 404);

    // Dead letters: the (empty) list, and an unknown one for each action.
    api.call(Method::GET, "/api/dead-letters", http.get(c.url("/api/dead-letters?limit=10"))).await;
    let one = "/api/dead-letters/{id}";
    let (status, _) = api.call(Method::GET, one, http.get(c.url("/api/dead-letters/0badc0de"))).await;
    assert_eq!(status, 404);
    let (status, _) = api.call(Method::DELETE, one, http.delete(c.url("/api/dead-letters/0badc0de"))).await;
    assert_eq!(status, 404);
    let (status, _) = api
        .call(Method::POST, "/api/dead-letters/{id}/replay", http.post(c.url("/api/dead-letters/0badc0de/replay")))
        .await;
    assert_eq!(status, 404);
    let (status, all) =
        api.call(Method::POST, "/api/dead-letters/replay", http.post(c.url("/api/dead-letters/replay"))).await;
    assert_eq!((status, all["replayed"].as_array().map(Vec::len)), (200, Some(0)), "{all}");

    // Every operation the document lists was called at least once.
    let checked = api.checked.borrow().clone();
    for (route, ops) in api.doc["paths"].as_object().expect("paths") {
        for method in ops.as_object().expect("operations").keys() {
            let op = format!("{method} {route} ");
            assert!(checked.iter().any(|c| c.starts_with(&op)), "{op}was never called; called: {checked:?}");
        }
    }
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_for_a_missing_token_are_documented_too() {
    let mut c = Cluster::new().await;
    c.start_leader(&["--token", "s3cret"]).await;
    let api = Contract::fetch(&c).await;
    let (status, _) =
        api.call(Method::POST, "/api/jobs", c.http.post(c.url("/api/jobs")).json(&json!({"topic": "a/b"}))).await;
    assert_eq!(status, 401);
    let (status, _) =
        api.call(Method::PUT, "/api/assets/{path}", c.http.put(c.url("/api/assets/content/x.txt")).body("x")).await;
    assert_eq!(status, 401);
    let zeros = "0".repeat(64);
    let (status, _) =
        api.call(Method::GET, "/api/blobs/{sha256}", c.http.get(c.url(&format!("/api/blobs/{zeros}?size=1")))).await;
    assert_eq!(status, 401);
    tokio::time::sleep(Duration::from_millis(10)).await;
    c.finish().await;
}
