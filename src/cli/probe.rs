//! `offloader probe`: asks one of this process's probe endpoints, for a container's HEALTHCHECK.
//!
//! Built into the binary so that the image needs no HTTP client (curl and its libraries would
//! be most of a leader image's size).

use anyhow::{bail, Context as _};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The URL to ask, e.g. `http://127.0.0.1:8080/health` (the leader) or
    /// `http://127.0.0.1:9464/ready` (a worker's metrics server). Success is a 2xx answer.
    #[arg(env = "OFFLOADER_HEALTH_URL")]
    url: String,

    /// How long to wait for the answer.
    #[arg(long, default_value = "3s", value_parser = super::settings::parse_duration)]
    timeout: Duration,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let client = reqwest::Client::builder().timeout(args.timeout).build().context("cannot make an HTTP client")?;
    let answer = client.get(&args.url).send().await.with_context(|| format!("{} does not answer", args.url))?;
    let status = answer.status();
    let body = answer.text().await.unwrap_or_default();
    if !status.is_success() {
        bail!("{} answered {status}: {}", args.url, body.trim());
    }
    println!("{}", body.trim());
    Ok(ExitCode::SUCCESS)
}
