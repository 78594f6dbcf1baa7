//! `offloader asset get|rendition|reprocess` and `offloader launchers`: reading the asset repository and
//! the launcher configuration through the leader's API.

use super::settings::Global;
use anyhow::Context as _;
use offloader::client::LeaderClient;
use offloader::protocol::AssetPath;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Print an asset as JSON: original, size, MIME type, metadata, renditions, job and state.
    Get {
        /// The asset's path, e.g. /content/dam/photos/a.jpg.
        path: String,
    },
    /// Download one rendition (`original` for the original).
    Rendition {
        path: String,
        /// The rendition's name, e.g. cq5dam.thumbnail.48.48.png.
        name: String,
        /// Where to write it.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Run the asset's workflow again on its current original (AEM's Reprocess Assets), and
    /// print what started.
    Reprocess { path: String },
}

fn asset_path(p: &str) -> anyhow::Result<AssetPath> {
    AssetPath::parse(p).with_context(|| format!("asset path {p:?}"))
}

pub async fn run(global: &Global, cmd: Command) -> anyhow::Result<ExitCode> {
    let client = LeaderClient::new(&global.leader_url, global.token.clone())?;
    match cmd {
        Command::Get { path } => {
            let asset = client.get_asset(&asset_path(&path)?).await?;
            println!("{}", serde_json::to_string_pretty(&asset)?);
        }
        Command::Reprocess { path } => {
            let outcome = client.reprocess_asset(&asset_path(&path)?).await?;
            println!("{}", serde_json::to_string_pretty(&outcome)?);
        }
        Command::Rendition { path, name, output } => {
            let n = client.download_rendition(&asset_path(&path)?, &name, &output).await?;
            eprintln!("{} bytes written to {}", n, output.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `offloader launchers`: the launchers the leader runs, in the order they are tried.
#[derive(Debug, clap::Args)]
pub struct LaunchersArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub async fn launchers(global: &Global, args: LaunchersArgs) -> anyhow::Result<ExitCode> {
    let client = LeaderClient::new(&global.leader_url, global.token.clone())?;
    let list = client.launchers().await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("{:<28} {:<9} {:<24} {:<10} {:<32} {:<8} TOPIC", "ID", "EVENT", "PATH", "MIME", "WORKFLOW", "ENABLED");
    for l in list["launchers"].as_array().map(Vec::as_slice).unwrap_or_default() {
        let s = |k: &str| l[k].as_str().unwrap_or("").to_owned();
        println!(
            "{:<28} {:<9} {:<24} {:<10} {:<32} {:<8} {}",
            s("id"),
            s("event"),
            s("path"),
            s("mime_type"),
            s("workflow"),
            l["enabled"].as_bool().unwrap_or(false),
            l["topic"].as_str().unwrap_or("(model's)")
        );
    }
    Ok(ExitCode::SUCCESS)
}
