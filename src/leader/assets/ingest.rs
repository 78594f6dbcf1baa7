//! Ingestion: one entry point for every hook (HTTP upload, CLI `ingest`, watch folder).
//!
//! Each hook stores the bytes in the datastore first and then calls [`Ingestor::ingest`] with
//! the blob reference, so whatever the door, the rest is identical: record the original, raise
//! *asset created* or *asset modified* (nothing for the same bytes again), and let the first
//! matching launcher start its workflow. The asset is recorded even when no launcher matches or
//! the workflow cannot start; the outcome (and the asset) says why.

use super::profiles::ProfileStore;
use super::repository::AssetRepository;
use crate::leader::jobs::{JobError, JobManager};
use crate::leader::ledger::LedgerError;
use crate::leader::workflows::{workflow_job, AssetEvent, Launch, Launchers, LocalRunner};
use crate::models::ModelRegistry;
use crate::protocol::api::{AssetChange, IngestOutcome, StartedJob};
use crate::protocol::{AssetPath, BlobRef, PayloadEntry};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Job(#[from] JobError),
    /// The workflow cannot start; recorded on the asset, not an error of the ingestion.
    #[error("{0}")]
    Unlaunchable(String),
}

pub struct Ingestor {
    pub repo: AssetRepository,
    pub jobs: Arc<JobManager>,
    pub models: Arc<ModelRegistry>,
    pub launchers: Arc<Launchers>,
    /// The processing profiles whose renditions a workflow adds for the asset's folder.
    pub profiles: ProfileStore,
    /// Runs models without an offload step on the leader; `None` when the leader has no
    /// datastore to read originals from and write renditions to.
    pub local: Option<Arc<LocalRunner>>,
}

impl Ingestor {
    /// Records `blob` (already in the datastore) as the original of `path` and fires launchers.
    pub async fn ingest(
        &self,
        path: AssetPath,
        blob: BlobRef,
        mime_type: String,
    ) -> Result<IngestOutcome, IngestError> {
        let change = self.repo.put_original(path.clone(), blob.clone(), mime_type.clone()).await?;
        let out = IngestOutcome {
            path: path.clone(),
            change,
            original: blob.clone(),
            mime_type: mime_type.clone(),
            launcher: None,
            workflow: None,
            profile: None,
            job: None,
            workflow_error: None,
        };
        let event = match change {
            AssetChange::Created => AssetEvent::Created,
            AssetChange::Modified => AssetEvent::Modified,
            AssetChange::Unchanged => {
                tracing::info!(asset = %path, "same bytes again; unchanged, no event");
                return Ok(out);
            }
        };
        tracing::info!(asset = %path, ?event, sha256 = %blob.sha256, size = blob.size, %mime_type, "asset ingested");
        self.launch(event, out).await
    }

    /// Runs the asset's workflow again on the original it has, though its bytes did not change
    /// (AEM's *Reprocess Assets*): a new model, a fixed engine, a failed run, a changed
    /// processing profile (the one its folder has now applies). The launcher is the
    /// one an *asset modified* event picks, else the one for *asset created*. `None` when there
    /// is no asset at `path`.
    pub async fn reprocess(&self, path: AssetPath) -> Result<Option<IngestOutcome>, IngestError> {
        let Some(asset) = self.repo.get(&path).await? else { return Ok(None) };
        let out = IngestOutcome {
            path: path.clone(),
            change: AssetChange::Unchanged,
            original: asset.original.clone(),
            mime_type: asset.mime_type.clone(),
            launcher: None,
            workflow: None,
            profile: None,
            job: None,
            workflow_error: None,
        };
        let event = if self.launchers.find(AssetEvent::Modified, path.as_str(), &asset.mime_type).is_some() {
            AssetEvent::Modified
        } else {
            AssetEvent::Created
        };
        tracing::info!(asset = %path, ?event, "asset reprocessed");
        let out = self.launch(event, out).await?;
        if out.launcher.is_none() {
            return Ok(Some(IngestOutcome {
                workflow_error: Some(format!("no launcher matches {path} ({})", asset.mime_type)),
                ..out
            }));
        }
        Ok(Some(out))
    }

    /// Starts the workflow of the first launcher matching `event` on the outcome's asset.
    async fn launch(&self, event: AssetEvent, mut out: IngestOutcome) -> Result<IngestOutcome, IngestError> {
        let (path, blob, mime_type) = (out.path.clone(), out.original.clone(), out.mime_type.clone());
        let Some(launcher) = self.launchers.find(event, path.as_str(), &mime_type) else { return Ok(out) };
        out.launcher = Some(launcher.id.clone());
        out.workflow = Some(launcher.workflow.clone());
        // The profile as it is now: a job in flight keeps the one it was started with.
        let profile = self.profiles.resolve(path.clone(), false).await?.profile.and_then(|p| p.for_asset(&mime_type));
        out.profile = profile.as_ref().map(|p| p.name.clone());
        let original = PayloadEntry { path: path.as_str().into(), blob: blob.clone(), mime_type: Some(mime_type) };
        let started = match workflow_job(launcher, &self.models, &path, original, profile) {
            Ok(Launch::Offload(new)) => self.jobs.add_job(new).await.map_err(IngestError::from),
            Ok(Launch::Local(new)) => match &self.local {
                Some(local) => local.start(new).await.map_err(IngestError::from),
                None => Err(IngestError::Unlaunchable("the leader runs workflows itself only with a datastore".into())),
            },
            Err(e) => Err(IngestError::Unlaunchable(e.to_string())),
        };
        match started {
            Ok(rec) => {
                self.repo.attach_job(path.clone(), blob.sha256.clone(), launcher.workflow.clone(), &rec).await?;
                tracing::info!(asset = %path, job = %rec.id, topic = %rec.topic, launcher = %launcher.id, profile = ?out.profile, "workflow job created");
                out.job = Some(StartedJob { id: rec.id, topic: rec.topic, state: rec.state });
            }
            Err(IngestError::Unlaunchable(e)) => {
                tracing::warn!(asset = %path, launcher = %launcher.id, error = %e, "workflow not started");
                self.repo.workflow_failed(path, blob.sha256, launcher.workflow.clone(), e.clone()).await?;
                out.workflow_error = Some(e);
            }
            Err(other) => return Err(other),
        }
        Ok(out)
    }
}
