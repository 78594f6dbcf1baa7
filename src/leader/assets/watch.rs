//! The watch folder: files dropped into a directory become assets.
//!
//! A file is taken once it is complete, which a poller can only guess: its size and
//! modification time must be the same on two consecutive polls (`--watch-interval` apart), so
//! a copy still in progress is left alone. A file that was ingested (created, modified or
//! unchanged) moves to `.done/<same relative path>`; one that cannot be (a name that is not a
//! valid asset path, say) moves to `.failed/` with a `<name>.error` file saying why, so nothing
//! is taken twice and nothing fails silently. Transient trouble (the datastore or the ledger
//! away) leaves the file in place for the next poll. Names starting with `.` are ignored, which
//! also keeps `.done` and `.failed` out of the walk.

use super::ingest::Ingestor;
use crate::datastore::BlobStore;
use crate::protocol::AssetPath;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio_util::sync::CancellationToken;

/// Where to watch and where files go in the repository.
#[derive(Debug, Clone)]
pub struct WatchConfig {
    pub dir: PathBuf,
    /// The repository folder files land in (`/content/dam/inbox`).
    pub to: AssetPath,
    pub interval: Duration,
}

pub const DONE_DIR: &str = ".done";
pub const FAILED_DIR: &str = ".failed";

type Seen = HashMap<PathBuf, (u64, Option<SystemTime>)>;

/// Every regular file under `dir` (relative paths), skipping dot-names.
fn walk(dir: &Path) -> Seen {
    let mut out = Seen::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let Ok(meta) = e.metadata() else { continue };
            if meta.is_dir() {
                stack.push(e.path());
            } else if meta.is_file() {
                if let Ok(rel) = e.path().strip_prefix(dir) {
                    out.insert(rel.to_path_buf(), (meta.len(), meta.modified().ok()));
                }
            }
        }
    }
    out
}

/// Runs until `cancel` fires.
pub async fn watch_loop(
    cfg: WatchConfig,
    store: Arc<dyn BlobStore>,
    ingestor: Arc<Ingestor>,
    cancel: CancellationToken,
) {
    tracing::info!(dir = %cfg.dir.display(), to = %cfg.to, "watching folder");
    let mut last = Seen::new();
    loop {
        let dir = cfg.dir.clone();
        let now = tokio::task::spawn_blocking(move || walk(&dir)).await.unwrap_or_default();
        for (rel, stat) in &now {
            if last.get(rel) != Some(stat) {
                continue; // new or still growing: look again next time
            }
            if cancel.is_cancelled() {
                return;
            }
            take(&cfg, rel, store.as_ref(), &ingestor).await;
        }
        last = now;
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(cfg.interval) => {}
        }
    }
}

/// Ingests one complete file and moves it out of the way.
async fn take(cfg: &WatchConfig, rel: &Path, store: &dyn BlobStore, ingestor: &Ingestor) {
    let file = cfg.dir.join(rel);
    let asset = match rel.to_str() {
        Some(r) => cfg.to.join(&r.replace(std::path::MAIN_SEPARATOR, "/")).map_err(|e| e.to_string()),
        None => Err(format!("{} is not a UTF-8 name", rel.display())),
    };
    let asset = match asset {
        Ok(a) => a,
        Err(reason) => return settle(cfg, rel, Err(reason)).await,
    };
    let stored = match store.put_file(&file).await {
        Ok(s) => s,
        Err(e) if e.is_transient() || matches!(e, crate::datastore::DatastoreError::SourceChanged { .. }) => {
            tracing::warn!(file = %file.display(), error = %e, "watch folder: will try again");
            return;
        }
        Err(e) => return settle(cfg, rel, Err(e.to_string())).await,
    };
    let name = file.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let mime = super::mime::content_mime(&read_head(&file).await, name, None);
    match ingestor.ingest(asset.clone(), stored.blob, mime).await {
        Ok(outcome) => {
            tracing::info!(file = %file.display(), asset = %asset, change = ?outcome.change, "watch folder: ingested");
            settle(cfg, rel, Ok(())).await
        }
        Err(e) => tracing::warn!(file = %file.display(), error = %e, "watch folder: will try again"),
    }
}

/// The file's first bytes for the sniffer (none when it cannot be read: the name decides).
async fn read_head(file: &Path) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut head = Vec::with_capacity(super::mime::SNIFF_LEN);
    if let Ok(f) = tokio::fs::File::open(file).await {
        let _ = f.take(super::mime::SNIFF_LEN as u64).read_to_end(&mut head).await;
    }
    head
}

/// Moves the file to `.done/` or, with the reason, to `.failed/`.
async fn settle(cfg: &WatchConfig, rel: &Path, result: Result<(), String>) {
    let (sub, reason) = match &result {
        Ok(()) => (DONE_DIR, None),
        Err(r) => (FAILED_DIR, Some(r.clone())),
    };
    let dest = cfg.dir.join(sub).join(rel);
    let moved = async {
        if let Some(parent) = dest.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        tokio::fs::rename(cfg.dir.join(rel), &dest).await?;
        if let Some(reason) = &reason {
            let mut note = dest.clone().into_os_string();
            note.push(".error");
            tokio::fs::write(PathBuf::from(note), format!("{reason}\n")).await?;
        }
        std::io::Result::Ok(())
    };
    match moved.await {
        Ok(()) if reason.is_some() => {
            tracing::warn!(file = %rel.display(), reason = reason.as_deref().unwrap_or(""), "watch folder: not ingested")
        }
        Ok(()) => {}
        Err(e) => {
            tracing::error!(file = %rel.display(), error = %e, "watch folder: cannot move the file out of the way")
        }
    }
}
