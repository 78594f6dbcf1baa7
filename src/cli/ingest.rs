//! `offloader ingest`: files or folders into the asset repository.
//!
//! Each file is uploaded to the datastore directly (skipped when that content is already
//! there), then registered with the leader, which raises asset created / modified and fires
//! launchers. Going straight to the datastore keeps big files off the leader's network path,
//! as `submit` does. A summary follows: ingested (created, modified), unchanged, failed with
//! reasons. The exit status is 1 when anything failed.

use super::settings::Global;
use anyhow::{bail, Context as _};
use futures::StreamExt as _;
use indicatif::{ProgressBar, ProgressStyle};
use offloader::client::LeaderClient;
use offloader::protocol::api::{AssetChange, IngestOutcome};
use offloader::protocol::AssetPath;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Files or folders to ingest; folders are walked (names starting with '.' are skipped) and
    /// keep their structure under --to.
    #[arg(required = true, value_name = "FILE_OR_DIR")]
    sources: Vec<PathBuf>,

    /// The repository folder to put them in, e.g. /content/dam/photos.
    #[arg(long, value_name = "PATH")]
    to: String,

    /// Files uploaded at once.
    #[arg(long, default_value_t = 4)]
    parallel: usize,

    /// Print the summary as JSON (every asset's outcome, every failure's reason).
    #[arg(long)]
    json: bool,
}

/// Each file to ingest, with its asset path (or why it has none).
fn plan(sources: &[PathBuf], to: &AssetPath) -> anyhow::Result<Vec<(PathBuf, Result<AssetPath, String>)>> {
    let mut out = Vec::new();
    for src in sources {
        let meta = std::fs::metadata(src).with_context(|| format!("cannot read {}", src.display()))?;
        if meta.is_file() {
            let name = src.file_name().and_then(|n| n.to_str()).map(str::to_owned);
            let asset = name
                .ok_or_else(|| "not a UTF-8 file name".to_owned())
                .and_then(|n| to.join(&n).map_err(|e| e.to_string()));
            out.push((src.clone(), asset));
            continue;
        }
        let mut stack = vec![src.clone()];
        while let Some(dir) = stack.pop() {
            let entries = std::fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))?;
            for e in entries {
                let e = e.with_context(|| format!("cannot read {}", dir.display()))?;
                if e.file_name().to_string_lossy().starts_with('.') {
                    continue;
                }
                let path = e.path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.is_file() {
                    let rel = path
                        .strip_prefix(src)
                        .ok()
                        .and_then(Path::to_str)
                        .map(|r| r.replace(std::path::MAIN_SEPARATOR, "/"));
                    let asset = rel
                        .ok_or_else(|| "not a UTF-8 file name".to_owned())
                        .and_then(|r| to.join(&r).map_err(|e| e.to_string()));
                    out.push((path, asset));
                }
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

pub async fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let to = AssetPath::parse(&args.to).with_context(|| format!("--to {:?}", args.to))?;
    let files = plan(&args.sources, &to)?;
    if files.is_empty() {
        bail!("nothing to ingest: no files in {:?}", args.sources);
    }
    let client = LeaderClient::new(&global.leader_url, global.token.clone())?;
    let store = global.datastore().await?;

    let bar = ProgressBar::new(files.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} {msg} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let results: Vec<(PathBuf, Result<IngestOutcome, String>)> = futures::stream::iter(files)
        .map(|(file, asset)| {
            let (client, store, bar) = (&client, store.clone(), bar.clone());
            async move {
                let result = async {
                    let asset = asset?;
                    let stored = store.put_file(&file).await.map_err(|e| e.to_string())?;
                    // What the bytes are, else the name's guess (the leader does not read them).
                    let head = read_head(&file).await;
                    let name = file.file_name().and_then(|n| n.to_str());
                    let mime = offloader_renditions::sniff_mime(&head, name)
                        .map(str::to_owned)
                        .or_else(|| mime_guess::from_path(&file).first().map(|m| m.essence_str().to_owned()));
                    client.register_asset(&asset, &stored.blob, mime.as_deref()).await.map_err(|e| format!("{e:#}"))
                }
                .await;
                bar.set_message(file.display().to_string());
                bar.inc(1);
                (file, result)
            }
        })
        .buffer_unordered(args.parallel.max(1))
        .collect()
        .await;
    bar.finish_and_clear();

    let count = |c: AssetChange| results.iter().filter(|(_, r)| r.as_ref().is_ok_and(|o| o.change == c)).count();
    let (created, modified, unchanged) =
        (count(AssetChange::Created), count(AssetChange::Modified), count(AssetChange::Unchanged));
    let failed: Vec<(&PathBuf, &String)> =
        results.iter().filter_map(|(f, r)| r.as_ref().err().map(|e| (f, e))).collect();
    let jobs = results.iter().filter(|(_, r)| r.as_ref().is_ok_and(|o| o.job.is_some())).count();
    if args.json {
        let assets: Vec<&IngestOutcome> = results.iter().filter_map(|(_, r)| r.as_ref().ok()).collect();
        let failures: Vec<_> = failed.iter().map(|(f, e)| json!({"file": f, "reason": e})).collect();
        let summary = json!({
            "ingested": created + modified, "created": created, "modified": modified,
            "unchanged": unchanged, "jobs": jobs, "failed": failures, "assets": assets,
        });
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        for (_, r) in &results {
            if let Ok(o) = r {
                let job = o.job.as_ref().map(|j| format!(" job {} on {}", j.id, j.topic)).unwrap_or_default();
                let why =
                    o.workflow_error.as_ref().map(|e| format!(" (workflow not started: {e})")).unwrap_or_default();
                println!("{:<9} {}{job}{why}", format!("{:?}", o.change).to_lowercase(), o.path);
            }
        }
        println!(
            "ingested {} (created {created}, modified {modified}), unchanged {unchanged}, failed {}; {jobs} workflow jobs started",
            created + modified,
            failed.len()
        );
        for (f, e) in &failed {
            println!("  failed {}: {e}", f.display());
        }
    }
    Ok(if failed.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// A file's first bytes, for the MIME sniffer (none when it cannot be read).
async fn read_head(file: &Path) -> Vec<u8> {
    use tokio::io::AsyncReadExt as _;
    let mut head = Vec::with_capacity(offloader_renditions::SNIFF_LEN);
    if let Ok(f) = tokio::fs::File::open(file).await {
        let _ = f.take(offloader_renditions::SNIFF_LEN as u64).read_to_end(&mut head).await;
    }
    head
}
