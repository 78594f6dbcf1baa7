//! `offloader topics`: the Offloading Browser on the command line.

use super::settings::Global;
use offloader::client::LeaderClient;
use offloader::protocol::api::{InstanceView, TopicsReport};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    change: Option<Change>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Debug, clap::Subcommand)]
enum Change {
    /// Enable TOPIC on an instance (adds it to its allow list, removes it from its deny list).
    Enable(Target),
    /// Disable TOPIC on an instance: it stops taking jobs of that topic.
    Disable(Target),
    /// Make the instance process TOPIC and nothing else.
    Exclusive(Target),
}

#[derive(Debug, clap::Args)]
struct Target {
    /// A topic or pattern (`a/b/c`, `a/b/*`, `a/**`).
    topic: String,
    /// Instance id or name, as listed by `offloader topics`.
    #[arg(long)]
    instance: String,
}

pub async fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let client = LeaderClient::new(&global.leader_url, global.token.clone())?;
    let (action, target) = match args.change {
        None => {
            let report = client.topics().await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print_report(&report);
            }
            return Ok(ExitCode::SUCCESS);
        }
        Some(Change::Enable(t)) => ("enable", t),
        Some(Change::Disable(t)) => ("disable", t),
        Some(Change::Exclusive(t)) => ("exclusive", t),
    };
    // The leader answers once the instance's announcement shows the change.
    let instance = client.change_topic(action, &target.topic, &target.instance).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&instance)?);
    } else {
        print_instance(&instance);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_report(report: &TopicsReport) {
    println!("INSTANCES");
    for i in &report.instances {
        print_instance(i);
    }
    println!("\nTOPIC QUEUES");
    println!("{:<50}  {:>8}  {:>9}", "TOPIC", "WAITING", "CONSUMERS");
    for q in &report.topics {
        let n = |v: Option<u32>| v.map(|v| v.to_string()).unwrap_or_else(|| "missing".into());
        println!("{:<50}  {:>8}  {:>9}", q.topic.to_string(), n(q.messages), n(q.consumers));
    }
}

fn print_instance(i: &InstanceView) {
    let draining = if i.draining { " (draining)" } else { "" };
    println!("{} {} [{:?}] {}:{} seen {} ms ago{draining}", i.id, i.name, i.role, i.host, i.pid, i.last_seen_ms);
    for c in &i.consumers {
        println!("    {:<48}  {:?}", c.topic.to_string(), c.state);
    }
    if !i.consuming.is_empty() {
        let topics: Vec<String> = i.consuming.iter().map(|t| t.to_string()).collect();
        println!("    consuming: {}", topics.join(", "));
    }
}
