//! `offloader topology`: the Topology Browser on the command line.

use super::settings::Global;
use offloader::client::LeaderClient;
use offloader::protocol::api::{TopologyEvent, TopologyReport};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the leader's JSON answer instead of tables.
    #[arg(long)]
    json: bool,
    /// Also print the history of changes (the most recent last).
    #[arg(long)]
    history: bool,
}

pub async fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let client = LeaderClient::new(&global.leader_url, global.token.clone())?;
    let report = client.topology().await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print(&report, args.history);
    }
    Ok(ExitCode::SUCCESS)
}

fn print(t: &TopologyReport, history: bool) {
    println!("topology {:?} (version {}, since {})", t.state, t.version, t.changed_at.format("%Y-%m-%d %H:%M:%S"));
    for c in &t.clusters {
        println!("\ncluster {}", c.name);
        for i in &c.instances {
            let mut marks = Vec::new();
            if i.leader {
                marks.push("elected leader");
            }
            if i.current {
                marks.push("current");
            }
            if i.draining {
                marks.push("draining");
            }
            let marks = if marks.is_empty() { String::new() } else { format!(" ({})", marks.join(", ")) };
            println!(
                "  {:<20} {:<7} {}:{} v{} joined {} last heartbeat {} ms ago{marks}",
                i.name,
                i.role,
                i.host,
                i.pid,
                i.version,
                i.joined_at.format("%H:%M:%S"),
                i.last_seen_ms
            );
            println!(
                "      id {}  endpoints {}",
                i.id,
                if i.endpoints.is_empty() { "-".into() } else { i.endpoints.join(" ") }
            );
            if !i.consumers.is_empty() {
                let topics: Vec<String> = i.consumers.iter().map(|c| format!("{} {:?}", c.topic, c.state)).collect();
                println!("      consumers {}", topics.join(", "));
                let list = |l: &[offloader::protocol::TopicPattern]| {
                    l.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(",")
                };
                println!("      allow [{}] deny [{}]", list(&i.enablement.allow), list(&i.enablement.deny));
            }
            if !i.consuming.is_empty() {
                let topics: Vec<String> = i.consuming.iter().map(|t| t.to_string()).collect();
                println!("      topics {}", topics.join(", "));
            }
        }
    }
    if !t.refused.is_empty() {
        println!("\nrefused (not on the allow list {:?})", t.allow);
        for r in &t.refused {
            println!("  {:<20} {} {} on {} ({} announcements)", r.name, r.role, r.id, r.host, r.announcements);
        }
    }
    if history {
        println!("\nhistory");
        for e in &t.history {
            print_event(e);
        }
    }
}

fn print_event(e: &TopologyEvent) {
    println!(
        "  {} {:<18} {} {}",
        e.at.format("%H:%M:%S%.3f"),
        format!("{:?}", e.kind),
        e.name.as_deref().unwrap_or(""),
        e.detail.as_deref().unwrap_or("")
    );
}
