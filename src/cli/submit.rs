//! `offloader submit`: upload inputs to the datastore, create a job on the
//! leader, and (with `--wait`) wait for its result.

use super::settings::{parse_duration, Global};
use anyhow::{bail, Context as _};
use indicatif::{ProgressBar, ProgressStyle};
use offloader::client::LeaderClient;
use offloader::protocol::api::JobRecord;
use offloader::protocol::offloading::INPUT_PAYLOAD;
use offloader::protocol::{JobState, PayloadEntry, Properties};
use serde_json::Value;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Exit status when `--timeout` runs out before the job finishes.
pub const EXIT_STILL_RUNNING: u8 = 2;

#[derive(Debug, clap::Args)]
#[command(after_help = "Exit status: 0 when the job was created (or, with --wait, succeeded); \
1 when it failed, was given up or stopped, or on any error; 2 when --timeout ran out first.")]
pub struct Args {
    /// Job topic, Sling style: segments of [A-Za-z0-9_] separated by `/`.
    #[arg(long)]
    topic: String,

    /// A job property `KEY=VALUE`. VALUE is read as JSON when it parses
    /// (`width=320`, `flag=true`, `list=[1,2]`), as a string otherwise.
    #[arg(long = "prop", value_name = "KEY=VALUE")]
    props: Vec<String>,

    /// A file to process. It is stored in the datastore (uploaded only if its
    /// content is not there yet) and the job carries a reference to it.
    #[arg(long = "input", value_name = "FILE")]
    inputs: Vec<PathBuf>,

    /// Attempts before the job is given up (default: the leader's policy).
    #[arg(long)]
    max_attempts: Option<u32>,

    /// Wait for the job to finish and print it; the exit status tells the outcome.
    #[arg(long)]
    wait: bool,

    /// With --wait: give up waiting after this long (the job keeps running).
    #[arg(long, value_parser = parse_duration)]
    timeout: Option<Duration>,
}

fn parse_props(props: &[String]) -> anyhow::Result<Properties> {
    let mut out = Properties::new();
    for p in props {
        let Some((key, value)) = p.split_once('=') else {
            bail!("--prop {p:?}: expected KEY=VALUE");
        };
        if key.is_empty() {
            bail!("--prop {p:?}: the key is empty");
        }
        let value = serde_json::from_str::<Value>(value).unwrap_or_else(|_| Value::String(value.to_owned()));
        out.insert(key.to_owned(), value);
    }
    Ok(out)
}

fn spinner(msg: String) -> ProgressBar {
    let bar = ProgressBar::new_spinner().with_message(msg);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

pub async fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    // Check what we can before uploading anything.
    args.topic.parse::<offloader::protocol::Topic>().with_context(|| format!("--topic {:?}", args.topic))?;
    let mut properties = parse_props(&args.props)?;
    let client = LeaderClient::new(&global.leader_url, global.token.clone())?;

    let mut inputs = Vec::new();
    if !args.inputs.is_empty() {
        let store = global.datastore().await?;
        for file in &args.inputs {
            let name = file
                .file_name()
                .and_then(|n| n.to_str())
                .with_context(|| format!("{} does not name a file", file.display()))?;
            let size = std::fs::metadata(file).with_context(|| format!("cannot read {}", file.display()))?.len();
            let bar = spinner(format!("storing {name} ({})", indicatif::HumanBytes(size)));
            let stored = store.put_file(file).await.with_context(|| format!("cannot store {}", file.display()));
            bar.finish_and_clear();
            let stored = stored?;
            tracing::info!(
                file = %file.display(),
                sha256 = %stored.blob.sha256,
                size = stored.blob.size,
                uploaded = stored.uploaded,
                "{}", if stored.uploaded { "input stored" } else { "input already in the datastore; nothing uploaded" }
            );
            let mime_type = mime_guess::from_path(file).first().map(|m| m.essence_str().to_owned());
            inputs.push(PayloadEntry { path: format!("/{name}"), blob: stored.blob, mime_type });
        }
        if !properties.contains_key(INPUT_PAYLOAD) {
            let paths: Vec<&str> = inputs.iter().map(|i| i.path.as_str()).collect();
            properties.insert(INPUT_PAYLOAD.into(), paths.join(",").into());
        }
    }

    let created = client.create_job(&args.topic, properties, inputs, args.max_attempts).await?;
    if !args.wait {
        println!("{}", created.id);
        return Ok(ExitCode::SUCCESS);
    }

    let started = Instant::now();
    let bar = spinner(format!("job {} {}", created.id, created.state));
    let mut job: JobRecord = created;
    while !job.state.is_final() {
        let mut slice = Duration::from_secs(30);
        if let Some(limit) = args.timeout {
            let left = limit.saturating_sub(started.elapsed());
            if left.is_zero() {
                break;
            }
            slice = slice.min(left);
        }
        job = client.get_job(job.id, slice).await?;
        bar.set_message(format!("job {} {}", job.id, job.state));
    }
    bar.finish_and_clear();
    println!("{}", serde_json::to_string_pretty(&job)?);
    Ok(match job.state {
        JobState::Succeeded => ExitCode::SUCCESS,
        s if s.is_final() => ExitCode::FAILURE,
        _ => {
            eprintln!("job {} is still {} after {:?}", job.id, job.state, args.timeout.unwrap_or_default());
            ExitCode::from(EXIT_STILL_RUNNING)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn props_are_json_when_they_parse_and_strings_otherwise() {
        let p = parse_props(&["preset=web".into(), "width=320".into(), "on=true".into(), "s=\"7\"".into()]).unwrap();
        assert_eq!(p["preset"], "web");
        assert_eq!(p["width"], 320);
        assert_eq!(p["on"], true);
        assert_eq!(p["s"], "7");
        assert!(parse_props(&["novalue".into()]).is_err());
        assert!(parse_props(&["=x".into()]).is_err());
    }
}
