//! `submit-and-wait TOPIC FILE`: what a program of yours does to offload work.
//!
//! 1. Store the file in the datastore (only if that content is not there yet): jobs carry
//!    references to binaries, never the bytes.
//! 2. Create a job on the leader's HTTP API with that reference.
//! 3. Wait for it (long polling) and print the outcome; exit 0 when it succeeded.
//!
//! Settings come from the environment, as for the `offloader` command: `OFFLOADER_LEADER_URL`
//! (default `http://127.0.0.1:8080`), `OFFLOADER_TOKEN`, `OFFLOADER_NAMESPACE` and the
//! datastore's `OFFLOADER_S3_*` / `AWS_*`.

use anyhow::{bail, Context as _};
use offloader::client::LeaderClient;
use offloader::datastore::{self, DatastoreConfig};
use offloader::protocol::{JobState, PayloadEntry, Properties};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let mut args = std::env::args().skip(1);
    let (Some(topic), Some(file)) = (args.next(), args.next().map(PathBuf::from)) else {
        bail!("usage: submit-and-wait TOPIC FILE");
    };
    let env = |k: &str, default: &str| std::env::var(k).unwrap_or_else(|_| default.to_owned());

    // 1. The bytes go to the datastore, under their sha256.
    let store = datastore::open(&DatastoreConfig::from_env(env("OFFLOADER_NAMESPACE", "offloader"))).await?;
    let stored = store.put_file(&file).await.with_context(|| format!("storing {}", file.display()))?;
    let name = file.file_name().and_then(|n| n.to_str()).context("the file needs a UTF-8 name")?;
    let input = PayloadEntry { path: format!("/{name}"), blob: stored.blob, mime_type: None };

    // 2. The job carries the reference.
    let leader = LeaderClient::new(
        &env("OFFLOADER_LEADER_URL", "http://127.0.0.1:8080"),
        std::env::var("OFFLOADER_TOKEN").ok(),
    )?;
    let mut job = leader.create_job(&topic, Properties::new(), vec![input], None).await?;
    eprintln!("job {} created on {topic}", job.id);

    // 3. Long polling: each call returns as soon as the job is final, or after 30 s.
    let deadline = Instant::now() + Duration::from_secs(600);
    while !job.state.is_final() && Instant::now() < deadline {
        job = leader.get_job(job.id, Duration::from_secs(30)).await?;
    }
    println!("{}", serde_json::to_string_pretty(&job)?);
    Ok(if job.state == JobState::Succeeded { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
