//! The asset repository: what the leader knows about each asset, kept as documents in the
//! ledger (kind `asset`, keyed by path).
//!
//! An asset is a path with an original (a blob), a MIME type, metadata, renditions and the
//! workflow job that last worked on it. Its document is changed by two things: an ingestion
//! (a new original), and a change to its workflow job, which the ledger reports through
//! [`AssetProjection`] inside the transaction that changed the job. So a job's completion and
//! the asset update it causes commit together, and a completion applied once is applied to
//! the asset once.
//!
//! # The completion contract (what a worker sends back for a workflow job)
//!
//! A job belongs to an asset when its offloading contract's payload
//! (`offloading.workflow.payload`) is the asset's path. When such a job changes, the asset
//! records the job id and state. When it SUCCEEDS, the completion is read as follows:
//!
//! - every output directly under one of the job's output payload folders
//!   (`offloading.output.payload`, by default `<asset>/jcr:content/renditions`) is the
//!   rendition of that name: its blob, its `mime_type` (guessed from the name when absent);
//! - the completion property `renditions` may hold `{"<name>": {"width": W, "height": H}}`;
//! - the completion property `metadata`, when a JSON object, replaces the asset's metadata;
//! - `offloading.workflow.model` and `.version`, when the worker returned them ("Add Model To
//!   Output"), record which model made the renditions;
//! - the name of the processing profile the job carried (`offloading.profile`) is the asset
//!   job's `profile`, so the asset says which profile made its extra renditions;
//! - any other output is kept as one of the asset's `other_outputs` (e.g. a test consumer's
//!   echo), so nothing a worker produced is silently dropped.
//!
//! The renditions of a successful job replace the asset's previous set. A job only counts for
//! an asset if it was made from the asset's **current** original (its input at the asset path
//! has the original's sha256) and is not older than the job the asset already shows (job ids
//! are time-ordered): results computed from replaced bytes, or arriving out of order, never
//! overwrite newer ones.

use crate::leader::ledger::{Ledger, LedgerError, Projection, Tx};
use crate::protocol::api::{
    Asset, AssetChange, AssetEntry, AssetFolder, AssetJob, FolderEntry, JobRecord, RenditionRecord,
};
use crate::protocol::offloading::{WORKFLOW_MODEL, WORKFLOW_MODEL_VERSION};
use crate::protocol::{AssetPath, BlobRef, JobState, OffloadingJob, PayloadEntry, Sha256Hex};
use chrono::Utc;
use serde_json::Value;
use std::collections::BTreeMap;

/// The ledger document kind of assets.
const KIND: &str = "asset";

/// The asset repository; a view on the ledger's documents.
#[derive(Clone)]
pub struct AssetRepository {
    ledger: Ledger,
}

fn decode(doc: Value) -> Result<Asset, LedgerError> {
    Ok(serde_json::from_value(doc)?)
}

fn encode(asset: &Asset) -> Result<Value, LedgerError> {
    Ok(serde_json::to_value(asset)?)
}

impl AssetRepository {
    pub fn new(ledger: Ledger) -> Self {
        AssetRepository { ledger }
    }

    /// Records `blob` as the original at `path`, saying whether that created, modified or
    /// changed nothing. A content change forgets the previous job (its results stay until the
    /// next job's replace them).
    pub async fn put_original(
        &self,
        path: AssetPath,
        blob: BlobRef,
        mime_type: String,
    ) -> Result<AssetChange, LedgerError> {
        self.ledger
            .update_doc(KIND, path.to_string(), move |current| {
                let now = Utc::now();
                let Some(current) = current else {
                    let asset = Asset {
                        path,
                        original: blob,
                        mime_type,
                        metadata: Value::Object(Default::default()),
                        renditions: vec![],
                        other_outputs: vec![],
                        job: None,
                        created_at: now,
                        modified_at: now,
                        processed_at: None,
                    };
                    return Ok((Some(encode(&asset)?), AssetChange::Created));
                };
                let mut asset = decode(current)?;
                if asset.original.sha256 == blob.sha256 {
                    return Ok((None, AssetChange::Unchanged));
                }
                asset.original = blob;
                asset.mime_type = mime_type;
                asset.modified_at = now;
                asset.job = None;
                Ok((Some(encode(&asset)?), AssetChange::Modified))
            })
            .await
    }

    /// Notes the job a launcher started for the asset's original `sha256`, unless the asset has
    /// moved on (other bytes, or a newer job already reported).
    pub async fn attach_job(
        &self,
        path: AssetPath,
        sha256: Sha256Hex,
        workflow: String,
        rec: &JobRecord,
    ) -> Result<(), LedgerError> {
        let (id, state, profile) = (rec.id, rec.state, profile_of(rec));
        self.ledger
            .update_doc(KIND, path.to_string(), move |current| {
                let Some(current) = current else { return Ok((None, ())) };
                let mut asset = decode(current)?;
                let newer_shown = asset.job.as_ref().and_then(|j| j.id).is_some_and(|shown| shown >= id);
                if asset.original.sha256 != sha256 || newer_shown {
                    return Ok((None, ()));
                }
                asset.job = Some(AssetJob {
                    workflow,
                    id: Some(id),
                    state: Some(state),
                    error: None,
                    model: None,
                    model_version: None,
                    profile,
                });
                Ok((Some(encode(&asset)?), ()))
            })
            .await
    }

    /// Records why a launcher's workflow could not start for the asset's current original.
    pub async fn workflow_failed(
        &self,
        path: AssetPath,
        sha256: Sha256Hex,
        workflow: String,
        error: String,
    ) -> Result<(), LedgerError> {
        self.ledger
            .update_doc(KIND, path.to_string(), move |current| {
                let Some(current) = current else { return Ok((None, ())) };
                let mut asset = decode(current)?;
                if asset.original.sha256 != sha256 {
                    return Ok((None, ()));
                }
                asset.job = Some(AssetJob {
                    workflow,
                    id: None,
                    state: None,
                    error: Some(error),
                    model: None,
                    model_version: None,
                    profile: None,
                });
                Ok((Some(encode(&asset)?), ()))
            })
            .await
    }

    pub async fn get(&self, path: &AssetPath) -> Result<Option<Asset>, LedgerError> {
        self.ledger.doc(KIND, path.to_string()).await?.map(decode).transpose()
    }

    /// One folder of the asset tree: its subfolders and the assets directly in it. Folders are
    /// not stored, they are the paths' prefixes, so this walks the assets under `folder` in key
    /// order, at most `scan` of them (a folder with more says `truncated`), rather than keeping
    /// a second index that every ingestion would have to keep in step.
    pub async fn folder(&self, folder: &str, scan: usize) -> Result<AssetFolder, LedgerError> {
        let trimmed = folder.trim_end_matches('/');
        let prefix = format!("{trimmed}/");
        let mut folders: BTreeMap<String, u64> = BTreeMap::new();
        let mut assets = Vec::new();
        let mut after: Option<String> = None;
        let mut seen = 0usize;
        let mut truncated = false;
        loop {
            let page = (scan - seen).min(500);
            if page == 0 {
                truncated = true;
                break;
            }
            let docs = self.ledger.docs(KIND, prefix.clone(), after.clone(), page).await?;
            let last = docs.len() < page;
            for (key, doc) in docs {
                seen += 1;
                let rest = &key[prefix.len()..];
                match rest.split_once('/') {
                    Some((sub, _)) => *folders.entry(sub.to_owned()).or_default() += 1,
                    None => {
                        let asset = decode(doc)?;
                        assets.push(AssetEntry {
                            name: asset.path.name().to_owned(),
                            mime_type: asset.mime_type,
                            size: asset.original.size,
                            renditions: asset.renditions.len(),
                            state: asset.job.and_then(|j| j.state),
                            modified_at: asset.modified_at,
                            path: asset.path,
                        });
                    }
                }
                after = Some(key);
            }
            if last {
                break;
            }
        }
        let folders = folders
            .into_iter()
            .map(|(name, n)| FolderEntry { path: format!("{prefix}{name}"), name, assets: n })
            .collect();
        let path = if trimmed.is_empty() { "/".to_owned() } else { trimmed.to_owned() };
        Ok(AssetFolder { path, folders, assets, truncated })
    }

    /// Resolves an offloading job's input payload to blobs: every path of
    /// `offloading.input.payload` the job carries no input for must name an asset, whose
    /// original becomes that input. So a job created over the API can name assets by path, as
    /// AEM's offloading jobs do, instead of blob references. Jobs that are not offloading jobs
    /// are left as they are.
    pub async fn resolve_inputs(
        &self,
        properties: &crate::protocol::Properties,
        inputs: &mut Vec<PayloadEntry>,
    ) -> Result<(), ResolveError> {
        if !OffloadingJob::is_offloading(properties) {
            return Ok(());
        }
        let contract = OffloadingJob::from_properties(properties).map_err(|e| ResolveError::Invalid(e.to_string()))?;
        for path in &contract.input_payload {
            if inputs.iter().any(|i| i.path == path.as_str()) {
                continue;
            }
            let asset = self.get(path).await?.ok_or_else(|| ResolveError::NoAsset(path.to_string()))?;
            inputs.push(PayloadEntry {
                path: path.to_string(),
                blob: asset.original,
                mime_type: Some(asset.mime_type),
            });
        }
        Ok(())
    }
}

/// Why an offloading job's input payload cannot be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("{0}")]
    Invalid(String),
    #[error("the input payload names {0}, which is not an asset (ingest it first, or give the input's blob)")]
    NoAsset(String),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// Keeps assets in step with their workflow jobs, inside the ledger's transactions (see the
/// module documentation for the contract).
pub struct AssetProjection;

/// The name of the processing profile a workflow job carries.
fn profile_of(rec: &JobRecord) -> Option<String> {
    OffloadingJob::from_properties(&rec.properties).ok()?.profile.map(|p| p.name)
}

#[async_trait::async_trait(?Send)]
impl Projection for AssetProjection {
    /// Only database errors are errors: whatever a worker sent that does not fit is ignored,
    /// never a reason to refuse the batch.
    async fn job_changed(&self, tx: &mut dyn Tx, rec: &JobRecord) -> Result<(), LedgerError> {
        let Ok(contract) = OffloadingJob::from_properties(&rec.properties) else { return Ok(()) };
        let path = &contract.payload;
        let Ok(input) = contract.input(&rec.inputs) else { return Ok(()) };
        let Some(current) = tx.doc(KIND, path.as_str()).await? else { return Ok(()) };
        let mut asset = decode(current)?;
        let shown = asset.job.as_ref().and_then(|j| j.id);
        if asset.original.sha256 != input.blob.sha256 || shown.is_some_and(|j| j > rec.id) {
            tracing::debug!(job = %rec.id, asset = %path, "job is about older content of the asset; not applied to it");
            return Ok(());
        }
        let workflow = contract
            .launched_by
            .clone()
            .or_else(|| asset.job.as_ref().map(|j| j.workflow.clone()))
            .unwrap_or_else(|| contract.model.clone());
        let mut job = AssetJob {
            workflow,
            id: Some(rec.id),
            state: Some(rec.state),
            error: None,
            model: None,
            model_version: None,
            profile: contract.profile.as_ref().map(|p| p.name.clone()),
        };
        if rec.state == JobState::Succeeded {
            apply_results(&mut asset, &contract, rec);
            job.model = rec.output_properties.get(WORKFLOW_MODEL).and_then(Value::as_str).map(str::to_owned);
            job.model_version = rec
                .output_properties
                .get(WORKFLOW_MODEL_VERSION)
                .and_then(Value::as_u64)
                .and_then(|v| u32::try_from(v).ok());
        } else if let Some(old) = &asset.job {
            job.model = old.model.clone();
            job.model_version = old.model_version;
        }
        if rec.state != JobState::Succeeded && rec.state.is_final() {
            // The reason a job ended without renditions (e.g. `SourceUnsupported: ...`) stays
            // on the asset, so nothing about it is silent.
            job.error = rec.result.as_ref().and_then(|r| r.reason()).map(str::to_owned);
        }
        asset.job = Some(job);
        tx.put_doc(KIND, path.as_str(), &encode(&asset)?).await
    }
}

/// A successful job's outputs and properties, written into its asset.
fn apply_results(asset: &mut Asset, contract: &OffloadingJob, rec: &JobRecord) {
    let sizes = rec.output_properties.get("renditions").and_then(Value::as_object);
    let size_of = |name: &str, key: &str| {
        sizes
            .and_then(|s| s.get(name))
            .and_then(|r| r.get(key))
            .and_then(Value::as_u64)
            .and_then(|v| u32::try_from(v).ok())
    };
    asset.renditions.clear();
    asset.other_outputs.clear();
    for out in &rec.outputs {
        match contract.output_name(&out.path) {
            Some(name) => {
                let mime_type = out
                    .mime_type
                    .clone()
                    .unwrap_or_else(|| mime_guess::from_path(name).first_or_octet_stream().essence_str().to_owned());
                asset.renditions.retain(|r| r.name != name);
                asset.renditions.push(RenditionRecord {
                    name: name.to_owned(),
                    blob: out.blob.clone(),
                    mime_type,
                    width: size_of(name, "width"),
                    height: size_of(name, "height"),
                    job_id: rec.id,
                });
            }
            None => asset.other_outputs.push(out.clone()),
        }
    }
    asset.renditions.sort_by(|a, b| a.name.cmp(&b.name));
    if let Some(metadata) = rec.output_properties.get("metadata").filter(|m| m.is_object()) {
        asset.metadata = metadata.clone();
    }
    asset.processed_at = Some(Utc::now());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leader::jobs::Queues;
    use crate::protocol::message::{Completion, Reply};
    use crate::protocol::offloading::WORKFLOW_LAUNCHED_BY;
    use crate::protocol::workflow::dam_update_asset;
    use crate::protocol::{InstanceId, Job, JobId, JobResult, Properties};
    use serde_json::json;
    use std::sync::Arc;

    fn blob(b: u8) -> BlobRef {
        BlobRef { sha256: Sha256Hex::from_digest(&[b; 32]), size: u64::from(b) }
    }

    fn job_for(path: &AssetPath, original: &BlobRef) -> JobRecord {
        let mut contract = OffloadingJob::new(&dam_update_asset(), false, path.clone());
        contract.launched_by = Some("dam/update_asset_offloading".into());
        let job = Job {
            id: JobId::new(),
            topic: "a/b".parse().unwrap(),
            properties: contract.to_properties(),
            inputs: vec![PayloadEntry { path: path.as_str().into(), blob: original.clone(), mime_type: None }],
            attempt: 1,
            max_attempts: 3,
            timeout_ms: None,
        };
        JobRecord::new(&job, Utc::now())
    }

    fn done(rec: &JobRecord, path: &AssetPath) -> Reply {
        let mut properties = Properties::new();
        properties.insert("metadata".into(), json!({"width": 640, "height": 480}));
        properties.insert("renditions".into(), json!({"thumb.png": {"width": 48, "height": 36}}));
        Reply::Completion(Completion {
            job_id: rec.id,
            attempt: 1,
            worker: InstanceId::random(),
            worker_name: "w".into(),
            result: JobResult::Ok,
            outputs: vec![
                PayloadEntry { path: path.rendition_path("thumb.png"), blob: blob(7), mime_type: None },
                PayloadEntry { path: format!("{path}.echo"), blob: blob(8), mime_type: None },
            ],
            properties,
            started_at: Utc::now(),
            finished_at: Utc::now(),
            redeliveries: 0,
        })
    }

    #[tokio::test]
    async fn completions_fill_the_asset_once_and_stale_ones_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open_sqlite(&dir.path().join("l.sqlite"), Arc::new(AssetProjection)).unwrap();
        let repo = AssetRepository::new(ledger.clone());
        let path = AssetPath::parse("/content/dam/a.jpg").unwrap();
        let first = blob(1);
        let put = |b: &BlobRef| repo.put_original(path.clone(), b.clone(), "image/jpeg".into());
        assert_eq!(put(&first).await.unwrap(), AssetChange::Created);
        assert_eq!(put(&first).await.unwrap(), AssetChange::Unchanged);

        let rec = job_for(&path, &first);
        assert_eq!(rec.properties[WORKFLOW_LAUNCHED_BY], "dam/update_asset_offloading");
        ledger.insert(rec.clone()).await.unwrap();
        repo.attach_job(path.clone(), first.sha256.clone(), "dam/update_asset_offloading".into(), &rec).await.unwrap();
        let reply = done(&rec, &path);
        ledger.apply_replies(vec![reply.clone(), reply], Queues::default()).await.unwrap();
        let asset = repo.get(&path).await.unwrap().unwrap();
        assert_eq!(asset.metadata["width"], 640);
        assert_eq!(asset.renditions.len(), 1);
        assert_eq!((asset.renditions[0].width, asset.renditions[0].height), (Some(48), Some(36)));
        assert_eq!(asset.renditions[0].mime_type, "image/png");
        assert_eq!(asset.other_outputs.len(), 1);
        let job = asset.job.unwrap();
        assert_eq!((job.id, job.state), (Some(rec.id), Some(JobState::Succeeded)));

        // New bytes: the old job's late results do not belong to them.
        assert_eq!(put(&blob(2)).await.unwrap(), AssetChange::Modified);
        let stale = job_for(&path, &first);
        ledger.insert(stale.clone()).await.unwrap();
        ledger.apply_replies(vec![done(&stale, &path)], Queues::default()).await.unwrap();
        let asset = repo.get(&path).await.unwrap().unwrap();
        assert!(asset.job.is_none(), "{asset:?}");
        assert_eq!(asset.original, blob(2));
    }

    #[tokio::test]
    async fn a_folder_lists_its_subfolders_and_its_own_assets_and_says_when_it_read_too_few() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open_sqlite(&dir.path().join("l.sqlite"), Arc::new(AssetProjection)).unwrap();
        let repo = AssetRepository::new(ledger);
        for p in ["/content/dam/a.jpg", "/content/dam/b/c.jpg", "/content/dam/b/d/e.jpg", "/content/dam-x/f.jpg"] {
            repo.put_original(AssetPath::parse(p).unwrap(), blob(3), "image/jpeg".into()).await.unwrap();
        }
        let f = repo.folder("/content/dam/", 100).await.unwrap();
        assert_eq!(f.path, "/content/dam");
        let folders: Vec<_> = f.folders.iter().map(|d| (d.path.as_str(), d.assets)).collect();
        assert_eq!(folders, [("/content/dam/b", 2)]);
        let assets: Vec<_> = f.assets.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(assets, ["a.jpg"]);
        assert!(!f.truncated);

        let root = repo.folder("", 100).await.unwrap();
        assert_eq!(root.path, "/");
        assert_eq!(root.folders.iter().map(|d| d.assets).collect::<Vec<_>>(), [4]);
        assert!(repo.folder("/content/dam", 2).await.unwrap().truncated);
        assert!(repo.folder("/nothing", 10).await.unwrap().folders.is_empty());
    }
}
