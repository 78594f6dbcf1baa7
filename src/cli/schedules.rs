//! `offloader schedule ...`: jobs created at a time or on a cron schedule (Sling's
//! `JobBuilder.schedule()`), kept by the leader.

use super::settings::Global;
use anyhow::Context as _;
use offloader::client::LeaderClient;
use offloader::protocol::api::NewSchedule;
use offloader::protocol::Properties;
use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// List the schedules with their next due time and how often they fired.
    List {
        /// Print the leader's JSON answer instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Add a schedule: --at a time, or --cron an expression with seconds.
    Add {
        /// The topic of the jobs it creates.
        topic: String,
        /// Once, at this time (RFC 3339).
        #[arg(long, conflicts_with = "cron", required_unless_present = "cron")]
        at: Option<String>,
        /// On every due time of `sec min hour day-of-month month day-of-week [year]`, e.g.
        /// `0 */5 * * * *` every five minutes.
        #[arg(long)]
        cron: Option<String>,
        /// The jobs' properties, as a JSON object.
        #[arg(long, value_name = "JSON")]
        properties: Option<String>,
    },
    /// Remove a schedule (the jobs it created stay).
    Remove { id: String },
}

pub async fn run(global: &Global, cmd: Command) -> anyhow::Result<ExitCode> {
    let client = LeaderClient::new(&global.leader_url, global.token.clone())?;
    match cmd {
        Command::List { json } => {
            let list = client.schedules().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
                return Ok(ExitCode::SUCCESS);
            }
            println!("{:<36}  {:<25}  {:<25}  {:>6}  TOPIC", "ID", "WHEN", "NEXT DUE", "FIRED");
            for s in list.schedules {
                let when = s.cron.clone().or(s.at.map(|t| t.to_rfc3339())).unwrap_or_default();
                let next = s.next_due.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string()).unwrap_or_else(|| "-".into());
                println!("{:<36}  {:<25}  {:<25}  {:>6}  {}", s.id, when, next, s.fired, s.topic);
            }
        }
        Command::Add { topic, at, cron, properties } => {
            let properties: Properties = match properties {
                Some(p) => serde_json::from_str(&p).context("--properties must be a JSON object")?,
                None => Properties::new(),
            };
            let at = at
                .map(|t| chrono::DateTime::parse_from_rfc3339(&t).map(|t| t.with_timezone(&chrono::Utc)))
                .transpose()
                .context("--at must be an RFC 3339 time, e.g. 2026-12-24T18:00:00Z")?;
            let topic = topic.parse().context("the topic")?;
            let s = client.add_schedule(&NewSchedule { topic, properties, at, cron }).await?;
            println!("{}", serde_json::to_string_pretty(&s)?);
        }
        Command::Remove { id } => {
            let s = client.remove_schedule(&id).await?;
            println!("{}", serde_json::to_string_pretty(&s)?);
        }
    }
    Ok(ExitCode::SUCCESS)
}
