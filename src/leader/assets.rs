//! The asset repository: what the leader knows about each asset, in the ledger's SQLite file.
//!
//! An asset is a path with an original (a blob), a MIME type, metadata, renditions and the
//! workflow job that last worked on it. The tables live next to the jobs table and are written
//! by the ledger's single writer thread, so a job's completion and the asset update it causes
//! commit in **one transaction**: the ledger's idempotency (a completion is applied once) is
//! the asset's idempotency, and a crash can never leave a job SUCCEEDED without its renditions.
//!
//! # The completion contract (what a worker sends back for a workflow job)
//!
//! A job belongs to an asset when its property `offloading.workflow.payload` is the asset's path.
//! When such a job's event is applied, the asset records the job id and state. When the job
//! SUCCEEDS, the completion is read as follows:
//!
//! - every output whose path is `<asset>/jcr:content/renditions/<name>` (one segment) is the
//!   rendition `<name>`: its blob, its `mime_type` (guessed from the name when absent);
//! - the completion property `renditions` may hold `{"<name>": {"width": W, "height": H}}` with
//!   each rendition's pixel size;
//! - the completion property `metadata`, when a JSON object, replaces the asset's metadata;
//! - any other output is kept as one of the asset's `other_outputs` (e.g. a test consumer's
//!   echo), so nothing a worker produced is silently dropped.
//!
//! The renditions of a successful job replace the asset's previous set. A job only counts for
//! an asset if it was made from the asset's **current** original (its input at the asset path
//! has the original's sha256) and is not older than the job the asset already shows (job ids
//! are time-ordered): results computed from replaced bytes, or arriving out of order, never
//! overwrite newer ones.

use super::ledger::{Ledger, LedgerError};
use super::record::JobRecord;
use crate::protocol::workflow::{WORKFLOW_LAUNCHED_BY, WORKFLOW_PAYLOAD};
use crate::protocol::{AssetPath, BlobRef, JobId, JobState, PayloadEntry, Sha256Hex};
use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Creates the asset tables (called when the ledger opens its database).
pub(super) fn create_tables(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS assets (
             path TEXT PRIMARY KEY,
             sha256 TEXT NOT NULL,
             size INTEGER NOT NULL,
             mime_type TEXT NOT NULL,
             metadata TEXT NOT NULL DEFAULT '{}',
             other_outputs TEXT NOT NULL DEFAULT '[]',
             workflow TEXT,
             job_id TEXT,
             job_state TEXT,
             workflow_error TEXT,
             created_at INTEGER NOT NULL,
             modified_at INTEGER NOT NULL,
             processed_at INTEGER
         );
         CREATE TABLE IF NOT EXISTS renditions (
             asset TEXT NOT NULL,
             name TEXT NOT NULL,
             sha256 TEXT NOT NULL,
             size INTEGER NOT NULL,
             mime_type TEXT NOT NULL,
             width INTEGER,
             height INTEGER,
             job_id TEXT NOT NULL,
             PRIMARY KEY (asset, name)
         );",
    )
}

/// What storing an original did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssetJob {
    /// The leader-side model a launcher started (e.g. `dam/update_asset_offloading`).
    pub workflow: String,
    #[serde(default)]
    pub id: Option<JobId>,
    #[serde(default)]
    pub state: Option<JobState>,
    /// Why no job could be started (e.g. a model that must run on the leader).
    #[serde(default)]
    pub error: Option<String>,
}

/// An asset as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

fn millis(t: Option<i64>) -> Option<DateTime<Utc>> {
    t.and_then(|ms| Utc.timestamp_millis_opt(ms).single())
}

/// The asset repository; a view on the ledger's database.
#[derive(Clone)]
pub struct AssetRepository {
    ledger: Ledger,
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
            .run(move |t| {
                let now = Utc::now().timestamp_millis();
                let current: Option<String> = t
                    .prepare_cached("SELECT sha256 FROM assets WHERE path = ?1")?
                    .query_row(params![path.as_str()], |r| r.get(0))
                    .optional()?;
                let change = match current {
                    None => {
                        t.prepare_cached(
                            "INSERT INTO assets(path, sha256, size, mime_type, created_at, modified_at)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                        )?
                        .execute(params![
                            path.as_str(),
                            blob.sha256.as_str(),
                            blob.size as i64,
                            mime_type,
                            now
                        ])?;
                        AssetChange::Created
                    }
                    Some(sha) if sha == blob.sha256.as_str() => AssetChange::Unchanged,
                    Some(_) => {
                        t.prepare_cached(
                            "UPDATE assets SET sha256 = ?2, size = ?3, mime_type = ?4, modified_at = ?5,
                                    workflow = NULL, job_id = NULL, job_state = NULL, workflow_error = NULL
                             WHERE path = ?1",
                        )?
                        .execute(params![
                            path.as_str(),
                            blob.sha256.as_str(),
                            blob.size as i64,
                            mime_type,
                            now
                        ])?;
                        AssetChange::Modified
                    }
                };
                Ok(change)
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
        let (id, state) = (rec.id.to_string(), rec.state.as_str());
        self.ledger
            .run(move |t| {
                t.prepare_cached(
                    "UPDATE assets SET workflow = ?3, job_id = ?4, job_state = ?5, workflow_error = NULL
                     WHERE path = ?1 AND sha256 = ?2 AND (job_id IS NULL OR job_id < ?4)",
                )?
                .execute(params![path.as_str(), sha256.as_str(), workflow, id, state])?;
                Ok(())
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
            .run(move |t| {
                t.prepare_cached(
                    "UPDATE assets SET workflow = ?3, job_id = NULL, job_state = NULL, workflow_error = ?4
                     WHERE path = ?1 AND sha256 = ?2",
                )?
                .execute(params![path.as_str(), sha256.as_str(), workflow, error])?;
                Ok(())
            })
            .await
    }

    pub async fn get(&self, path: AssetPath) -> Result<Option<Asset>, LedgerError> {
        self.ledger.run(move |t| load(t, &path)).await
    }
}

type Row = (
    String,
    i64,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
    i64,
    Option<i64>,
);

fn load(t: &Transaction<'_>, path: &AssetPath) -> Result<Option<Asset>, LedgerError> {
    let row: Option<Row> = t
        .prepare_cached(
            "SELECT sha256, size, mime_type, metadata, other_outputs, workflow, job_id, job_state, workflow_error,
                    created_at, modified_at, processed_at
             FROM assets WHERE path = ?1",
        )?
        .query_row(params![path.as_str()], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
                r.get(8)?,
                r.get(9)?,
                r.get(10)?,
                r.get(11)?,
            ))
        })
        .optional()?;
    let Some((sha, size, mime_type, metadata, other, workflow, job_id, job_state, error, created, modified, processed)) =
        row
    else {
        return Ok(None);
    };
    let mut stmt = t.prepare_cached(
        "SELECT name, sha256, size, mime_type, width, height, job_id FROM renditions WHERE asset = ?1 ORDER BY name",
    )?;
    let rows = stmt.query_map(params![path.as_str()], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, Option<u32>>(4)?,
            r.get::<_, Option<u32>>(5)?,
            r.get::<_, String>(6)?,
        ))
    })?;
    let mut renditions = Vec::new();
    for row in rows {
        let (name, sha, size, mime_type, width, height, job) = row?;
        // Rows are only ever written from validated values; skip one that is not readable.
        let (Ok(sha256), Ok(job_id)) = (sha.parse::<Sha256Hex>(), job.parse::<JobId>()) else { continue };
        renditions.push(RenditionRecord {
            name,
            blob: BlobRef { sha256, size: size as u64 },
            mime_type,
            width,
            height,
            job_id,
        });
    }
    let Ok(sha256) = sha.parse::<Sha256Hex>() else { return Ok(None) };
    let job = workflow.map(|workflow| AssetJob {
        workflow,
        id: job_id.and_then(|j| j.parse().ok()),
        state: job_state.and_then(|s| s.parse().ok()),
        error,
    });
    Ok(Some(Asset {
        path: path.clone(),
        original: BlobRef { sha256, size: size as u64 },
        mime_type,
        metadata: serde_json::from_str(&metadata)?,
        renditions,
        other_outputs: serde_json::from_str(&other)?,
        job,
        created_at: millis(Some(created)).unwrap_or_default(),
        modified_at: millis(Some(modified)).unwrap_or_default(),
        processed_at: millis(processed),
    }))
}

/// Applies a job's new state to its asset, inside the ledger transaction that changed the job
/// (see the module documentation for the contract). Only database errors are errors: whatever
/// a worker sent that does not fit is ignored, never a reason to refuse the batch.
pub(super) fn apply_job(t: &Transaction<'_>, rec: &JobRecord) -> Result<(), LedgerError> {
    let Some(payload) = rec.properties.get(WORKFLOW_PAYLOAD).and_then(Value::as_str) else { return Ok(()) };
    let Ok(path) = AssetPath::parse(payload) else { return Ok(()) };
    let Some(input) = rec.inputs.iter().find(|i| i.path == path.as_str()).or(rec.inputs.first()) else {
        return Ok(());
    };
    let id = rec.id.to_string();
    let current: Option<(String, Option<String>)> = t
        .prepare_cached("SELECT sha256, job_id FROM assets WHERE path = ?1")?
        .query_row(params![path.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((sha, shown_job)) = current else { return Ok(()) };
    if sha != input.blob.sha256.as_str() || shown_job.as_deref().is_some_and(|j| j > id.as_str()) {
        tracing::debug!(job = %rec.id, asset = %path, "job is about older content of the asset; not applied to it");
        return Ok(());
    }
    let workflow = rec.properties.get(WORKFLOW_LAUNCHED_BY).and_then(Value::as_str).map(str::to_owned);
    t.prepare_cached(
        "UPDATE assets SET job_id = ?2, job_state = ?3, workflow = COALESCE(?4, workflow), workflow_error = NULL
         WHERE path = ?1",
    )?
    .execute(params![path.as_str(), id, rec.state.as_str(), workflow])?;
    if rec.state != JobState::Succeeded {
        return Ok(());
    }

    let sizes = rec.output_properties.get("renditions").and_then(Value::as_object);
    let size_of = |name: &str, key: &str| {
        sizes
            .and_then(|s| s.get(name))
            .and_then(|r| r.get(key))
            .and_then(Value::as_u64)
            .and_then(|v| u32::try_from(v).ok())
    };
    t.prepare_cached("DELETE FROM renditions WHERE asset = ?1")?.execute(params![path.as_str()])?;
    let mut other = Vec::new();
    for out in &rec.outputs {
        match path.rendition_name(&out.path) {
            Some(name) => {
                let mime = out
                    .mime_type
                    .clone()
                    .unwrap_or_else(|| mime_guess::from_path(name).first_or_octet_stream().essence_str().to_owned());
                t.prepare_cached(
                    "INSERT OR REPLACE INTO renditions(asset, name, sha256, size, mime_type, width, height, job_id)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )?
                .execute(params![
                    path.as_str(),
                    name,
                    out.blob.sha256.as_str(),
                    out.blob.size as i64,
                    mime,
                    size_of(name, "width"),
                    size_of(name, "height"),
                    id
                ])?;
            }
            None => other.push(out.clone()),
        }
    }
    let metadata = rec.output_properties.get("metadata").filter(|m| m.is_object()).map(Value::to_string);
    t.prepare_cached(
        "UPDATE assets SET metadata = COALESCE(?2, metadata), other_outputs = ?3, processed_at = ?4 WHERE path = ?1",
    )?
    .execute(params![path.as_str(), metadata, serde_json::to_string(&other)?, Utc::now().timestamp_millis()])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leader::record::RetryPolicy;
    use crate::protocol::message::{Completion, Reply};
    use crate::protocol::{InstanceId, Job, JobResult, Properties};
    use serde_json::json;

    fn blob(b: u8) -> BlobRef {
        BlobRef { sha256: Sha256Hex::from_digest(&[b; 32]), size: u64::from(b) }
    }

    fn job_for(path: &AssetPath, original: &BlobRef) -> JobRecord {
        let mut properties = Properties::new();
        properties.insert(WORKFLOW_PAYLOAD.into(), path.as_str().into());
        properties.insert(WORKFLOW_LAUNCHED_BY.into(), "dam/update_asset_offloading".into());
        let job = Job {
            id: JobId::new(),
            topic: "a/b".parse().unwrap(),
            properties,
            inputs: vec![PayloadEntry { path: path.as_str().into(), blob: original.clone(), mime_type: None }],
            attempt: 1,
            max_attempts: 3,
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
        let ledger = Ledger::open(&dir.path().join("l.sqlite")).unwrap();
        let repo = AssetRepository::new(ledger.clone());
        let path = AssetPath::parse("/content/dam/a.jpg").unwrap();
        let first = blob(1);
        assert_eq!(
            repo.put_original(path.clone(), first.clone(), "image/jpeg".into()).await.unwrap(),
            AssetChange::Created
        );
        assert_eq!(
            repo.put_original(path.clone(), first.clone(), "image/jpeg".into()).await.unwrap(),
            AssetChange::Unchanged
        );

        let rec = job_for(&path, &first);
        ledger.insert(rec.clone()).await.unwrap();
        repo.attach_job(path.clone(), first.sha256.clone(), "dam/update_asset_offloading".into(), &rec).await.unwrap();
        let reply = done(&rec, &path);
        ledger.apply_replies(vec![reply.clone(), reply], RetryPolicy::default()).await.unwrap();
        let asset = repo.get(path.clone()).await.unwrap().unwrap();
        assert_eq!(asset.metadata["width"], 640);
        assert_eq!(asset.renditions.len(), 1);
        assert_eq!((asset.renditions[0].width, asset.renditions[0].height), (Some(48), Some(36)));
        assert_eq!(asset.renditions[0].mime_type, "image/png");
        assert_eq!(asset.other_outputs.len(), 1);
        let job = asset.job.unwrap();
        assert_eq!((job.id, job.state), (Some(rec.id), Some(JobState::Succeeded)));

        // New bytes: the old job's late results do not belong to them.
        assert_eq!(repo.put_original(path.clone(), blob(2), "image/jpeg".into()).await.unwrap(), AssetChange::Modified);
        let stale = job_for(&path, &first);
        ledger.insert(stale.clone()).await.unwrap();
        ledger.apply_replies(vec![done(&stale, &path)], RetryPolicy::default()).await.unwrap();
        let asset = repo.get(path).await.unwrap().unwrap();
        assert!(asset.job.is_none(), "{asset:?}");
        assert_eq!(asset.original, blob(2));
    }
}
