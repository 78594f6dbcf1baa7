//! `offloader stats`: job statistics as Sling's, overall and per topic, from the leader.

use super::settings::Global;
use offloader::client::LeaderClient;
use offloader::protocol::api::JobStatistics;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only topics matching this pattern (`a/b`, `a/b/*`, `a/**`).
    #[arg(long)]
    topic: Option<String>,
    /// Print the leader's JSON answer instead of a table.
    #[arg(long)]
    json: bool,
}

pub async fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let client = LeaderClient::new(&global.leader_url, global.token.clone())?;
    let report = client.stats(args.topic.as_deref()).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<32} {:>8} {:>7} {:>9} {:>7} {:>9} {:>10} {:>9} {:>11}  LAST FINISHED",
        "TOPIC", "QUEUED", "ACTIVE", "FINISHED", "FAILED", "CANCELLED", "PROCESSED", "WAIT ms", "PROCESS ms"
    );
    for (topic, s) in &report.topics {
        row(topic, s);
    }
    row("(all topics)", &report.overall);
    Ok(ExitCode::SUCCESS)
}

fn row(name: &str, s: &JobStatistics) {
    let ms = |v: Option<f64>| v.map(|v| format!("{v:.0}")).unwrap_or_else(|| "-".into());
    println!(
        "{name:<32} {:>8} {:>7} {:>9} {:>7} {:>9} {:>10} {:>9} {:>11}  {}",
        s.queued,
        s.active,
        s.finished,
        s.failed,
        s.cancelled,
        s.processed,
        ms(s.average_waiting_ms),
        ms(s.average_processing_ms),
        s.last_finished_at.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string()).unwrap_or_else(|| "-".into())
    );
}
