//! `offloader job ...`: the job console, read from the leader's ledger.

use super::settings::{parse_duration, Global};
use offloader::client::LeaderClient;
use offloader::protocol::api::JobRecord;
use offloader::protocol::JobId;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Print one job as JSON.
    Get {
        id: JobId,
        /// Wait up to this long for the job to finish first.
        #[arg(long, value_parser = parse_duration)]
        wait: Option<Duration>,
    },
    /// Find jobs, newest first, as Sling's findJobs; a table (or JSON with --json).
    List {
        /// Which jobs by state: ALL, ACTIVE, QUEUED, HISTORY (every final state), CANCELLED,
        /// SUCCEEDED, STOPPED, GIVEN_UP, ERROR, FAILED (waiting for a retry), NEW.
        #[arg(long)]
        kind: Option<String>,
        /// Only jobs in this one state: QUEUED, ACTIVE, SUCCEEDED, FAILED, GIVEN_UP, ERROR, STOPPED, NEW.
        #[arg(long)]
        state: Option<String>,
        /// Only jobs whose topic matches this pattern (`a/b`, `a/b/*` one level, `a/**` any depth).
        #[arg(long)]
        topic: Option<String>,
        /// Only jobs created at or after this time (RFC 3339).
        #[arg(long, value_name = "TIME")]
        created_after: Option<String>,
        /// Only jobs created before this time (RFC 3339).
        #[arg(long, value_name = "TIME")]
        created_before: Option<String>,
        /// A property template, `size>=100,color=red` (all must hold; =, <, <=, >, >=). Repeat
        /// it: a job matching any template is listed.
        #[arg(long = "where", value_name = "TEMPLATE")]
        templates: Vec<String>,
        /// Where to continue: the cursor the previous page printed.
        #[arg(long)]
        cursor: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Print the leader's JSON answer instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Stop a job that has not finished: the worker running it is told to cancel it, it will
    /// not be retried, and a late result is ignored.
    Stop { id: JobId },
    /// Run a GIVEN_UP, ERROR or STOPPED job again under the same id, its attempts counted
    /// afresh; or, without an id, every job the filters select.
    Retry {
        /// The job; omit it to retry by --state and --topic.
        id: Option<JobId>,
        /// Retry the jobs in this state (GIVEN_UP, ERROR or STOPPED; all three by default).
        #[arg(long, conflicts_with = "id")]
        state: Option<String>,
        /// Retry only jobs whose topic matches this pattern.
        #[arg(long, conflicts_with = "id")]
        topic: Option<String>,
        /// At most this many jobs.
        #[arg(long, default_value_t = 1000, conflicts_with = "id")]
        limit: usize,
    },
    /// Remove a job from the ledger, stopping it first if it runs; or, without an id, the jobs
    /// the filters select (at least one filter).
    Remove {
        /// The job; omit it to remove by --state and --topic.
        id: Option<JobId>,
        /// Remove the jobs in this state.
        #[arg(long, conflicts_with = "id")]
        state: Option<String>,
        /// Remove only jobs whose topic matches this pattern.
        #[arg(long, conflicts_with = "id")]
        topic: Option<String>,
        /// At most this many jobs (newest first).
        #[arg(long, default_value_t = 1000, conflicts_with = "id")]
        limit: usize,
    },
}

pub async fn run(global: &Global, cmd: Command) -> anyhow::Result<ExitCode> {
    let client = LeaderClient::new(&global.leader_url, global.token.clone())?;
    match cmd {
        Command::Get { id, wait } => {
            let job = client.get_job(id, wait.unwrap_or_default()).await?;
            println!("{}", serde_json::to_string_pretty(&job)?);
        }
        Command::Stop { id } => {
            let job = client.stop_job(id).await?;
            println!("{}", serde_json::to_string_pretty(&job)?);
        }
        Command::Retry { id: Some(id), .. } => {
            let job = client.retry_job(id).await?;
            println!("{}", serde_json::to_string_pretty(&job)?);
        }
        Command::Retry { id: None, state, topic, limit } => {
            let answer = client.retry_jobs(&selection(state, topic, limit)).await?;
            print_table(&answer.jobs);
            eprintln!(
                "{} jobs retried{}",
                answer.jobs.len(),
                if answer.next_cursor.is_some() { "; more may match (run it again)" } else { "" }
            );
        }
        Command::Remove { id: Some(id), .. } => {
            let job = client.remove_job(id).await?;
            println!("{}", serde_json::to_string_pretty(&job)?);
        }
        Command::Remove { id: None, state, topic, limit } => {
            if state.is_none() && topic.is_none() {
                anyhow::bail!("name a job, or select jobs with --state and/or --topic");
            }
            let answer = client.remove_jobs(&selection(state, topic, limit)).await?;
            print_table(&answer.jobs);
            eprintln!(
                "{} jobs removed{}",
                answer.jobs.len(),
                if answer.next_cursor.is_some() { "; more match (run it again)" } else { "" }
            );
        }
        Command::List { kind, state, topic, created_after, created_before, templates, cursor, limit, json } => {
            let mut query = vec![("limit", limit.to_string())];
            let optional = [
                ("kind", kind.map(|k| k.to_uppercase())),
                ("state", state.map(|s| s.to_uppercase())),
                ("topic", topic),
                ("created_after", created_after),
                ("created_before", created_before),
                ("cursor", cursor),
            ];
            query.extend(optional.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))));
            query.extend(templates.into_iter().map(|t| ("where", t)));
            let answer = client.list_jobs(&query).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&answer)?);
            } else {
                print_table(&answer.jobs);
                let summary: Vec<String> = answer.counts.iter().map(|(k, v)| format!("{k}={v}")).collect();
                println!("\nall jobs: {}", summary.join(" "));
                if let Some(next) = &answer.next_cursor {
                    println!("more: --cursor {next}");
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_table(jobs: &[JobRecord]) {
    println!("{:<36}  {:<10}  {:>7}  {:<20}  {:<25}  TOPIC", "ID", "STATE", "ATTEMPT", "WORKER", "CREATED");
    for j in jobs {
        let worker = j.worker.as_ref().map(|w| w.name.as_str()).unwrap_or("-");
        println!(
            "{:<36}  {:<10}  {:>3}/{:<3}  {:<20}  {:<25}  {}",
            j.id.to_string(),
            j.state.to_string(),
            j.attempt,
            j.max_attempts,
            worker,
            j.created_at.format("%Y-%m-%d %H:%M:%S%.3f"),
            j.topic
        );
    }
}

/// The query string of a bulk retry or remove: the jobs of `state` and `topic`, `limit` of them.
fn selection(state: Option<String>, topic: Option<String>, limit: usize) -> Vec<(&'static str, String)> {
    let mut query = vec![("limit", limit.to_string())];
    if let Some(s) = state {
        query.push(("state", s.to_uppercase()));
    }
    if let Some(t) = topic {
        query.push(("topic", t));
    }
    query
}
