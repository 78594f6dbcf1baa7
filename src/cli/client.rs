//! A small client for the leader's HTTP API, used by `submit`, `job` and `topics`.

use anyhow::{Context as _, bail};
use offloader::leader::{InstanceView, JobRecord, TopicsReport};
use offloader::protocol::{JobId, PayloadEntry, Properties};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
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
