//! A small client for the leader's HTTP API, used by the CLI commands and `bench dam`.

use anyhow::{bail, Context as _};
use offloader::leader::{IngestOutcome, InstanceView, JobRecord, TopicsReport};
use offloader::protocol::{AssetPath, BlobRef, JobId, PayloadEntry, Properties};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::time::Duration;

pub struct LeaderClient {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl LeaderClient {
    pub fn new(base: &str, token: Option<String>) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(LeaderClient { base: base.trim_end_matches('/').to_owned(), token, http })
    }

    pub async fn create_job(
        &self,
        topic: &str,
        properties: Properties,
        inputs: Vec<PayloadEntry>,
        max_attempts: Option<u32>,
    ) -> anyhow::Result<JobRecord> {
        let body = json!({ "topic": topic, "properties": properties, "inputs": inputs, "max_attempts": max_attempts });
        self.send(self.http.post(self.url("/api/jobs")).json(&body)).await
    }

    /// The job, waiting up to `wait` for it to finish (long polling).
    pub async fn get_job(&self, id: JobId, wait: Duration) -> anyhow::Result<JobRecord> {
        let mut req = self.http.get(self.url(&format!("/api/jobs/{id}")));
        if !wait.is_zero() {
            req = req.query(&[("wait", wait.as_secs_f64())]).timeout(wait + Duration::from_secs(30));
        }
        self.send(req).await
    }

    pub async fn stop_job(&self, id: JobId) -> anyhow::Result<JobRecord> {
        self.send(self.http.post(self.url(&format!("/api/jobs/{id}/stop")))).await
    }

    pub async fn list_jobs(&self, query: &[(&str, String)]) -> anyhow::Result<Value> {
        self.send(self.http.get(self.url("/api/jobs")).query(query)).await
    }

    pub async fn topics(&self) -> anyhow::Result<TopicsReport> {
        self.send(self.http.get(self.url("/api/topics"))).await
    }

    pub async fn change_topic(&self, action: &str, topic: &str, instance: &str) -> anyhow::Result<InstanceView> {
        let body = json!({ "topic": topic, "instance": instance });
        self.send(self.http.post(self.url(&format!("/api/topics/{action}"))).json(&body)).await
    }

    /// `/api/assets/<asset path>[/renditions/<name>]`, each segment percent-encoded.
    fn asset_url(&self, path: &AssetPath, rendition: Option<&str>) -> anyhow::Result<reqwest::Url> {
        let mut url = reqwest::Url::parse(&self.url("/api/assets")).context("the leader URL is not a URL")?;
        {
            let mut segs = url.path_segments_mut().map_err(|_| anyhow::anyhow!("the leader URL cannot have a path"))?;
            segs.extend(path.as_str().trim_start_matches('/').split('/'));
            if let Some(name) = rendition {
                segs.extend(["renditions", name]);
            }
        }
        Ok(url)
    }

    /// Registers a blob already in the datastore as the original of `path`.
    pub async fn register_asset(
        &self,
        path: &AssetPath,
        blob: &BlobRef,
        mime_type: Option<&str>,
    ) -> anyhow::Result<IngestOutcome> {
        let body = json!({ "blob": blob, "mime_type": mime_type });
        self.send(self.http.post(self.asset_url(path, None)?).json(&body)).await
    }

    /// Uploads `body` as the original of `path` through the leader (`PUT /api/assets/...`),
    /// the way a user's upload arrives: the leader streams it to the datastore itself.
    pub async fn put_asset(&self, path: &AssetPath, body: Vec<u8>) -> anyhow::Result<IngestOutcome> {
        self.send(self.http.put(self.asset_url(path, None)?).body(body)).await
    }

    pub async fn get_asset(&self, path: &AssetPath) -> anyhow::Result<Value> {
        self.send(self.http.get(self.asset_url(path, None)?)).await
    }

    pub async fn launchers(&self) -> anyhow::Result<Value> {
        self.send(self.http.get(self.url("/api/launchers"))).await
    }

    /// Streams rendition `name` of `path` into `dest` (written to a temp file first, so a failed
    /// download leaves no partial file). Returns the bytes written.
    pub async fn download_rendition(
        &self,
        path: &AssetPath,
        name: &str,
        dest: &std::path::Path,
    ) -> anyhow::Result<u64> {
        use tokio::io::AsyncWriteExt as _;
        let mut req = self.http.get(self.asset_url(path, Some(name))?);
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        let mut resp = req.send().await.with_context(|| format!("cannot reach the leader at {}", self.base))?;
        let status = resp.status();
        if !status.is_success() {
            let bytes = resp.bytes().await.unwrap_or_default();
            let msg = serde_json::from_slice::<Value>(&bytes)
                .ok()
                .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
            bail!("the leader answered {status}: {msg}");
        }
        let dir = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
        let tmp = tempfile::NamedTempFile::new_in(dir).with_context(|| format!("cannot write in {}", dir.display()))?;
        let mut file = tokio::fs::File::from_std(tmp.reopen().context("reopening the temp file")?);
        let mut written = 0u64;
        while let Some(chunk) = resp.chunk().await.context("the download was cut")? {
            file.write_all(&chunk).await.context("writing the rendition")?;
            written += chunk.len() as u64;
        }
        file.flush().await.context("writing the rendition")?;
        tmp.persist(dest).with_context(|| format!("cannot write {}", dest.display()))?;
        Ok(written)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn send<T: DeserializeOwned>(&self, mut req: reqwest::RequestBuilder) -> anyhow::Result<T> {
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        let resp = req.send().await.with_context(|| {
            format!("cannot reach the leader at {} (is `offloader leader` running? see --leader-url)", self.base)
        })?;
        let status = resp.status();
        let bytes = resp.bytes().await.context("reading the leader's answer")?;
        if !status.is_success() {
            let msg = serde_json::from_slice::<Value>(&bytes)
                .ok()
                .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
            bail!("the leader answered {status}: {msg}");
        }
        serde_json::from_slice(&bytes).context("the leader's answer is not what this client expects")
    }
}
