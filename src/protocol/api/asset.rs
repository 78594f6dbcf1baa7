//! Assets as the API shows them, and what an ingestion did.

use crate::protocol::{AssetPath, BlobRef, JobId, JobState, PayloadEntry, Topic};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What storing an original did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AssetChange {
    /// A new path: raises *asset created*.
    Created,
    /// New bytes at a known path: raises *asset modified*.
    Modified,
    /// The same bytes again: no event.
    Unchanged,
}

/// One rendition of an asset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RenditionRecord {
    pub name: String,
    pub blob: BlobRef,
    pub mime_type: String,
    #[serde(default)]
    pub width: Option<u32>,
    #[serde(default)]
    pub height: Option<u32>,
    /// The job that produced it.
    pub job_id: JobId,
}

/// The workflow that last ran (or could not run) on an asset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AssetJob {
    /// The leader-side model a launcher started (e.g. `dam/update_asset_offloading`).
    pub workflow: String,
    #[serde(default)]
    pub id: Option<JobId>,
    #[serde(default)]
    pub state: Option<JobState>,
    /// Why no job could be started (e.g. no datastore to run a model on the leader).
    #[serde(default)]
    pub error: Option<String>,
    /// The model (id and version) that made the renditions, when the worker returned it
    /// (an offload step with `include_model_output`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_version: Option<u32>,
    /// The processing profile whose renditions the job adds, when it carries one: which
    /// profile made the asset's extra renditions, even after the profile changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

/// An asset: its original, what the workflow extracted and produced, and the job that did it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Asset {
    pub path: AssetPath,
    pub original: BlobRef,
    pub mime_type: String,
    pub metadata: Value,
    pub renditions: Vec<RenditionRecord>,
    pub other_outputs: Vec<PayloadEntry>,
    pub job: Option<AssetJob>,
    pub created_at: DateTime<Utc>,
    pub modified_at: DateTime<Utc>,
    #[serde(default)]
    pub processed_at: Option<DateTime<Utc>>,
}

/// The job a launcher started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StartedJob {
    pub id: JobId,
    pub topic: Topic,
    pub state: JobState,
}

/// What one ingestion did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IngestOutcome {
    pub path: AssetPath,
    pub change: AssetChange,
    pub original: BlobRef,
    pub mime_type: String,
    /// The launcher that fired, if any.
    #[serde(default)]
    pub launcher: Option<String>,
    /// The workflow model it started.
    #[serde(default)]
    pub workflow: Option<String>,
    /// The processing profile whose renditions the workflow adds (the one applied to the
    /// asset's nearest folder that has one, when any of its renditions is for the asset's type).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    #[serde(default)]
    pub job: Option<StartedJob>,
    /// Why the workflow could not start.
    #[serde(default)]
    pub workflow_error: Option<String>,
}

/// `GET /api/assets?folder=`: one folder of the asset tree, as a browser shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AssetFolder {
    /// The folder listed (`/` for the root).
    pub path: String,
    /// Its subfolders, by name, each with how many assets it holds at any depth.
    pub folders: Vec<FolderEntry>,
    /// The assets directly in it, by path.
    pub assets: Vec<AssetEntry>,
    /// The folder holds more than one listing reads: the lists are incomplete.
    pub truncated: bool,
}

/// A subfolder in an [`AssetFolder`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FolderEntry {
    pub name: String,
    pub path: String,
    /// Assets under it, at any depth (as far as the listing read).
    pub assets: u64,
}

/// An asset in an [`AssetFolder`]: enough to show a row; the whole asset is one GET away.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AssetEntry {
    pub path: AssetPath,
    pub name: String,
    pub mime_type: String,
    pub size: u64,
    pub renditions: usize,
    /// The state of the workflow job that last ran on it, if any.
    #[serde(default)]
    pub state: Option<JobState>,
    pub modified_at: DateTime<Utc>,
}
