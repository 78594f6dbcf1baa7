//! A client of the leader's HTTP API: what the `offloader` command, the bench and any Rust
//! program use to create jobs, wait for them, ingest assets and read the topology.
//!
//! ```no_run
//! # async fn demo() -> Result<(), offloader::client::ClientError> {
//! use offloader::client::LeaderClient;
//! use std::time::Duration;
//!
//! let leader = LeaderClient::new("http://127.0.0.1:8080", None)?;
//! let job = leader.create_job("offloader/noop", Default::default(), vec![], None).await?;
//! let done = leader.get_job(job.id, Duration::from_secs(30)).await?;
//! println!("{} ended {}", done.id, done.state);
//! # Ok(()) }
//! ```

use crate::protocol::api::{
    DeadLetterList, DeadLetterView, FolderProfile, IngestOutcome, InstanceView, JobList, JobRecord, NewSchedule,
    ProfileList, RemovedJobs, RemovedProfile, ReplayedDeadLetters, ResolvedProfile, RetriedJobs, Schedule,
    ScheduleList, StatsReport, TopicsReport, TopologyReport,
};
use crate::protocol::{AssetPath, BlobRef, JobId, PayloadEntry, ProcessingProfile, Properties};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the leader at {base} (is `offloader leader` running? see --leader-url): {source}")]
    Unreachable { base: String, source: reqwest::Error },
    #[error("the leader answered {status}: {message}")]
    Refused { status: reqwest::StatusCode, message: String },
    #[error("the leader's answer is not what this client expects: {0}")]
    Unexpected(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("cannot build the HTTP client: {0}")]
    Setup(String),
}

/// A handle on one leader's API.
#[derive(Clone)]
pub struct LeaderClient {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl LeaderClient {
    /// A client of the leader at `base` (`http://host:port`), sending `token` as the bearer
    /// token when given.
    pub fn new(base: &str, token: Option<String>) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| ClientError::Setup(e.to_string()))?;
        Ok(LeaderClient { base: base.trim_end_matches('/').to_owned(), token, http })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Creates a job (`POST /api/jobs`).
    pub async fn create_job(
        &self,
        topic: &str,
        properties: Properties,
        inputs: Vec<PayloadEntry>,
        max_attempts: Option<u32>,
    ) -> Result<JobRecord, ClientError> {
        let body = json!({ "topic": topic, "properties": properties, "inputs": inputs, "max_attempts": max_attempts });
        self.send(self.http.post(self.url("/api/jobs")).json(&body)).await
    }

    /// The job, waiting up to `wait` for it to finish (long polling).
    pub async fn get_job(&self, id: JobId, wait: Duration) -> Result<JobRecord, ClientError> {
        let mut req = self.http.get(self.url(&format!("/api/jobs/{id}")));
        if !wait.is_zero() {
            req = req.query(&[("wait", wait.as_secs_f64())]).timeout(wait + Duration::from_secs(30));
        }
        self.send(req).await
    }

    pub async fn stop_job(&self, id: JobId) -> Result<JobRecord, ClientError> {
        self.send(self.http.post(self.url(&format!("/api/jobs/{id}/stop")))).await
    }

    /// Runs a GIVEN_UP, ERROR or STOPPED job again under the same id.
    pub async fn retry_job(&self, id: JobId) -> Result<JobRecord, ClientError> {
        self.send(self.http.post(self.url(&format!("/api/jobs/{id}/retry")))).await
    }

    /// Retries every job the filters (`state`, `topic`, `limit`) select.
    pub async fn retry_jobs(&self, query: &[(&str, String)]) -> Result<RetriedJobs, ClientError> {
        self.send(self.http.post(self.url("/api/jobs/retry")).query(query)).await
    }

    /// Removes the jobs the filters (`state`, `topic`, `limit`, ...) select, stopping running
    /// ones first; the records as they were.
    pub async fn remove_jobs(&self, query: &[(&str, String)]) -> Result<RemovedJobs, ClientError> {
        self.send(self.http.post(self.url("/api/jobs/remove")).query(query)).await
    }

    /// Removes a job (stopping it first if it runs); the record as it was.
    pub async fn remove_job(&self, id: JobId) -> Result<JobRecord, ClientError> {
        self.send(self.http.delete(self.url(&format!("/api/jobs/{id}")))).await
    }

    /// Runs an asset's workflow again on its current original.
    pub async fn reprocess_asset(&self, path: &AssetPath) -> Result<IngestOutcome, ClientError> {
        let mut url = self.asset_url(path, None)?;
        url.set_path(&url.path().replacen("/api/assets/", "/api/reprocess/", 1));
        self.send(self.http.post(url)).await
    }

    /// The first `limit` dead letters.
    pub async fn dead_letters(&self, limit: usize) -> Result<DeadLetterList, ClientError> {
        self.send(self.http.get(self.url("/api/dead-letters")).query(&[("limit", limit)])).await
    }

    pub async fn dead_letter(&self, id: &str) -> Result<DeadLetterView, ClientError> {
        self.send(self.http.get(self.dead_url(id, "")?)).await
    }

    /// Publishes a dead letter again where it was going.
    pub async fn replay_dead_letter(&self, id: &str) -> Result<DeadLetterView, ClientError> {
        self.send(self.http.post(self.dead_url(id, "/replay")?)).await
    }

    /// Publishes every dead letter again where it was going.
    pub async fn replay_all_dead_letters(&self) -> Result<ReplayedDeadLetters, ClientError> {
        self.send(self.http.post(self.url("/api/dead-letters/replay"))).await
    }

    pub async fn discard_dead_letter(&self, id: &str) -> Result<DeadLetterView, ClientError> {
        self.send(self.http.delete(self.dead_url(id, "")?)).await
    }

    /// `/api/dead-letters/<id><suffix>`; ids are hex, anything else is refused here.
    fn dead_url(&self, id: &str, suffix: &str) -> Result<String, ClientError> {
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(ClientError::Setup(format!("{id:?} is not a dead letter id (see `offloader dead list`)")));
        }
        Ok(self.url(&format!("/api/dead-letters/{id}{suffix}")))
    }

    /// `GET /api/jobs` with query parameters (`state`, `topic`, `limit`, ...).
    pub async fn list_jobs(&self, query: &[(&str, String)]) -> Result<JobList, ClientError> {
        self.send(self.http.get(self.url("/api/jobs")).query(query)).await
    }

    /// Job statistics (`GET /api/stats`), of the topics `topic` matches when given.
    pub async fn stats(&self, topic: Option<&str>) -> Result<StatsReport, ClientError> {
        let query: Vec<(&str, &str)> = topic.map(|t| ("topic", t)).into_iter().collect();
        self.send(self.http.get(self.url("/api/stats")).query(&query)).await
    }

    pub async fn schedules(&self) -> Result<ScheduleList, ClientError> {
        self.send(self.http.get(self.url("/api/schedules"))).await
    }

    pub async fn add_schedule(&self, schedule: &NewSchedule) -> Result<Schedule, ClientError> {
        self.send(self.http.post(self.url("/api/schedules")).json(schedule)).await
    }

    /// Removes a schedule; answers the schedule removed.
    pub async fn remove_schedule(&self, id: &str) -> Result<Schedule, ClientError> {
        self.send(self.http.delete(self.url(&format!("/api/schedules/{id}")))).await
    }

    /// The topology: clusters, instances in join order, history, refused instances.
    pub async fn topology(&self) -> Result<TopologyReport, ClientError> {
        self.send(self.http.get(self.url("/api/topology"))).await
    }

    pub async fn topics(&self) -> Result<TopicsReport, ClientError> {
        self.send(self.http.get(self.url("/api/topics"))).await
    }

    /// Enables, disables or makes exclusive `topic` on `instance` (`enable`, `disable`,
    /// `exclusive`); answers once the instance confirms.
    pub async fn change_topic(&self, action: &str, topic: &str, instance: &str) -> Result<InstanceView, ClientError> {
        let body = json!({ "topic": topic, "instance": instance });
        self.send(self.http.post(self.url(&format!("/api/topics/{action}"))).json(&body)).await
    }

    /// `/api/assets/<asset path>[/renditions/<name>]`, each segment percent-encoded.
    fn asset_url(&self, path: &AssetPath, rendition: Option<&str>) -> Result<reqwest::Url, ClientError> {
        let mut segments: Vec<&str> = path.as_str().trim_start_matches('/').split('/').collect();
        if let Some(name) = rendition {
            segments.extend(["renditions", name]);
        }
        self.segments_url("/api/assets", &segments)
    }

    /// `base` followed by `segments`, each percent-encoded.
    fn segments_url(&self, base: &str, segments: &[&str]) -> Result<reqwest::Url, ClientError> {
        let bad = |why: &str| ClientError::Setup(format!("the leader URL {}: {why}", self.base));
        let mut url = reqwest::Url::parse(&self.url(base)).map_err(|_| bad("not a URL"))?;
        url.path_segments_mut().map_err(|_| bad("it cannot have a path"))?.extend(segments);
        Ok(url)
    }

    /// Every processing profile and every folder one is applied to.
    pub async fn profiles(&self) -> Result<ProfileList, ClientError> {
        self.send(self.http.get(self.url("/api/profiles"))).await
    }

    pub async fn profile(&self, name: &str) -> Result<ProcessingProfile, ClientError> {
        self.send(self.http.get(self.segments_url("/api/profiles", &[name])?)).await
    }

    /// Creates or replaces profile `name` with `profile` (a JSON object, checked by the leader).
    pub async fn put_profile(&self, name: &str, profile: &Value) -> Result<ProcessingProfile, ClientError> {
        self.send(self.http.put(self.segments_url("/api/profiles", &[name])?).json(profile)).await
    }

    /// Removes a profile and takes it off its folders.
    pub async fn remove_profile(&self, name: &str) -> Result<RemovedProfile, ClientError> {
        self.send(self.http.delete(self.segments_url("/api/profiles", &[name])?)).await
    }

    fn folder_url(&self, folder: &AssetPath) -> Result<reqwest::Url, ClientError> {
        let segments: Vec<&str> = folder.as_str().trim_start_matches('/').split('/').collect();
        self.segments_url("/api/folder-profiles", &segments)
    }

    /// The profile that holds for a folder (or an asset path), and the folder it is applied to.
    pub async fn folder_profile(&self, folder: &AssetPath) -> Result<ResolvedProfile, ClientError> {
        self.send(self.http.get(self.folder_url(folder)?)).await
    }

    /// Applies profile `name` to `folder` and everything below it.
    pub async fn apply_profile(&self, folder: &AssetPath, name: &str) -> Result<FolderProfile, ClientError> {
        self.send(self.http.put(self.folder_url(folder)?).json(&json!({ "profile": name }))).await
    }

    /// Takes the profile off `folder`.
    pub async fn unapply_profile(&self, folder: &AssetPath) -> Result<FolderProfile, ClientError> {
        self.send(self.http.delete(self.folder_url(folder)?)).await
    }

    /// Registers a blob already in the datastore as the original of `path`.
    pub async fn register_asset(
        &self,
        path: &AssetPath,
        blob: &BlobRef,
        mime_type: Option<&str>,
    ) -> Result<IngestOutcome, ClientError> {
        let body = json!({ "blob": blob, "mime_type": mime_type });
        self.send(self.http.post(self.asset_url(path, None)?).json(&body)).await
    }

    /// Uploads `body` as the original of `path` through the leader (`PUT /api/assets/...`),
    /// the way a user's upload arrives: the leader streams it to the datastore itself.
    pub async fn put_asset(&self, path: &AssetPath, body: Vec<u8>) -> Result<IngestOutcome, ClientError> {
        self.send(self.http.put(self.asset_url(path, None)?).body(body)).await
    }

    /// The asset as JSON.
    pub async fn get_asset(&self, path: &AssetPath) -> Result<Value, ClientError> {
        self.send(self.http.get(self.asset_url(path, None)?)).await
    }

    pub async fn launchers(&self) -> Result<Value, ClientError> {
        self.send(self.http.get(self.url("/api/launchers"))).await
    }

    /// Streams rendition `name` of `path` into `dest` (written to a temp file first, so a failed
    /// download leaves no partial file). Returns the bytes written.
    pub async fn download_rendition(
        &self,
        path: &AssetPath,
        name: &str,
        dest: &std::path::Path,
    ) -> Result<u64, ClientError> {
        use tokio::io::AsyncWriteExt as _;
        let req = self.authorized(self.http.get(self.asset_url(path, Some(name))?));
        let mut resp =
            req.send().await.map_err(|source| ClientError::Unreachable { base: self.base.clone(), source })?;
        let status = resp.status();
        if !status.is_success() {
            let bytes = resp.bytes().await.unwrap_or_default();
            return Err(ClientError::Refused { status, message: error_text(&bytes) });
        }
        let dir = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
        let tmp = tempfile::NamedTempFile::new_in(dir)?;
        let mut file = tokio::fs::File::from_std(tmp.reopen()?);
        let mut written = 0u64;
        while let Some(chunk) =
            resp.chunk().await.map_err(|e| ClientError::Unexpected(format!("the download was cut: {e}")))?
        {
            file.write_all(&chunk).await?;
            written += chunk.len() as u64;
        }
        file.flush().await?;
        tmp.persist(dest).map_err(|e| ClientError::Io(e.error))?;
        Ok(written)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn authorized(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(token) => req.bearer_auth(token),
            None => req,
        }
    }

    async fn send<T: DeserializeOwned>(&self, req: reqwest::RequestBuilder) -> Result<T, ClientError> {
        let resp = self
            .authorized(req)
            .send()
            .await
            .map_err(|source| ClientError::Unreachable { base: self.base.clone(), source })?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| ClientError::Unexpected(format!("reading the answer: {e}")))?;
        if !status.is_success() {
            return Err(ClientError::Refused { status, message: error_text(&bytes) });
        }
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Unexpected(e.to_string()))
    }
}

/// The `error` of an API error answer, or the body as text.
fn error_text(bytes: &[u8]) -> String {
    serde_json::from_slice::<Value>(bytes)
        .ok()
        .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(bytes).into_owned())
}
