//! `offloader dead list|show|replay|discard`: the dead-letter queue, through the leader's API.

use super::settings::Global;
use offloader::client::LeaderClient;
use offloader::protocol::api::DeadLetterView;
use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// List dead letters, oldest first, as a table (or JSON with --json).
    List {
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Print the leader's JSON answer instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print one dead letter as JSON: reason, origin, worker, time, a preview of its body.
    Show { id: String },
    /// Publish a dead letter again where it was going, so it is processed again; or, with
    /// --all, every dead letter.
    Replay {
        #[arg(required_unless_present = "all")]
        id: Option<String>,
        /// Replay every dead letter (those no queue takes stay dead and are listed).
        #[arg(long, conflicts_with = "id")]
        all: bool,
    },
    /// Drop a dead letter for good.
    Discard { id: String },
}

pub async fn run(global: &Global, cmd: Command) -> anyhow::Result<ExitCode> {
    let client = LeaderClient::new(&global.leader_url, global.token.clone())?;
    let one = match cmd {
        Command::List { limit, json } => {
            let list = client.dead_letters(limit).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                print_table(&list.dead_letters);
            }
            return Ok(ExitCode::SUCCESS);
        }
        Command::Show { id } => client.dead_letter(&id).await?,
        Command::Replay { id: Some(id), .. } => client.replay_dead_letter(&id).await?,
        Command::Replay { id: None, .. } => {
            let answer = client.replay_all_dead_letters().await?;
            print_table(&answer.replayed);
            for f in &answer.failed {
                eprintln!("not replayed: {} ({}): {}", f.dead_letter.id, f.dead_letter.routing_key, f.error);
            }
            eprintln!("{} replayed, {} not", answer.replayed.len(), answer.failed.len());
            return Ok(if answer.failed.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE });
        }
        Command::Discard { id } => client.discard_dead_letter(&id).await?,
    };
    println!("{}", serde_json::to_string_pretty(&one)?);
    Ok(ExitCode::SUCCESS)
}

fn print_table(letters: &[DeadLetterView]) {
    println!("{:<24}  {:<25}  {:<36}  {:<40}  REASON", "ID", "DEAD AT", "MESSAGE ID", "ROUTING KEY");
    for d in letters {
        let mut reason: String = d.reason.chars().take(80).collect();
        if reason.len() < d.reason.len() {
            reason.push('…');
        }
        println!(
            "{:<24}  {:<25}  {:<36}  {:<40}  {}",
            d.id,
            d.dead_at.as_deref().unwrap_or("-"),
            d.message_id.as_deref().unwrap_or("-"),
            d.routing_key,
            reason
        );
    }
    println!("\n{} dead letters shown", letters.len());
}
