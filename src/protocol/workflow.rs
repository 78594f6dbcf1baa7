//! Workflow models as data: what happens to an asset, step by step.
//!
//! AEM keeps its workflow models ("DAM Update Asset", "DAM Update Asset Offloading") as content
//! that administrators edit; so do we. A [`WorkflowModel`] is plain JSON (the contract is
//! `schemas/offloader.workflow-model.v1.json`), loaded from files or taken from the two built-ins,
//! and it travels inside an offloading job (`offloading.workflow.model.definition`) so a worker
//! runs exactly the model the leader chose, whatever version the worker was built with.
//!
//! Three step types exist:
//! - `metadata`: extract the asset's metadata (dimensions, EXIF...);
//! - `renditions`: produce the listed renditions (fitted inside `width` x `height`, never upscaled);
//! - `offload`: run another model on a worker, through a job on `topic`. Like AEM's "DAM Update
//!   Asset Offloading", the leader-side model is a single offload step whose job runs
//!   `dam/update_asset` remotely.
//!
//! Everything here is pure: validation, defaults and the built-ins. Loading models from a
//! folder is in `crate::models`.

use super::topic::Topic;
use serde::{Deserialize, Serialize};

/// The schema id a workflow model document carries (optional in files, always written).
pub const WORKFLOW_MODEL_SCHEMA: &str = "offloader.workflow-model.v1";

/// AEM's offloading topic, the default of an offload step.
pub const OFFLOADING_TOPIC: &str = "com/adobe/granite/workflow/offloading";

/// The topic of jobs the leader runs itself (a launcher's model without an offload step).
/// They are recorded in the ledger like any job, so the asset shows its workflow and state and
/// a crash resumes them, but never published: the job manager refuses this topic for
/// submissions, and nothing declares a queue for it.
pub const LOCAL_TOPIC: &str = "offloader/local";

/// Id of the built-in "DAM Update Asset" model.
pub const DAM_UPDATE_ASSET: &str = "dam/update_asset";
/// Id of the built-in "DAM Update Asset Offloading" model.
pub const DAM_UPDATE_ASSET_OFFLOADING: &str = "dam/update_asset_offloading";

/// Longest model id accepted.
pub const MAX_MODEL_ID_LEN: usize = 200;

/// A workflow model: an id (`dam/update_asset`), a version and ordered steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowModel {
    /// Always [`WORKFLOW_MODEL_SCHEMA`] when written; may be omitted in hand-written files.
    #[serde(default = "schema_id")]
    pub schema: String,
    pub id: String,
    pub version: u32,
    pub title: String,
    pub steps: Vec<Step>,
}

fn schema_id() -> String {
    WORKFLOW_MODEL_SCHEMA.into()
}

/// One step of a model, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum Step {
    /// Extract metadata (dimensions, EXIF...) into the asset's metadata.
    Metadata {},
    /// Produce these renditions.
    Renditions { renditions: Vec<Rendition> },
    /// Run `model` on a worker through a job.
    Offload(OffloadStep),
}

/// An offload step: AEM's "DAM Update Asset Offloading" external step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OffloadStep {
    /// The model the worker runs.
    pub model: String,
    /// The job topic (a launcher may override it to route assets to dedicated workers).
    #[serde(default = "default_topic")]
    pub topic: Topic,
    /// Ship the model's definition in the job ("Add Model To Input"); without it workers
    /// resolve the model by id and version.
    #[serde(default = "yes")]
    pub include_model: bool,
    /// Have the worker return the model it ran with its results ("Add Model To Output"), so
    /// the asset records exactly which model and version made its renditions.
    #[serde(default)]
    pub include_model_output: bool,
    /// Seconds between checks for the job's result: AEM's external step "Period" (5 s there,
    /// 15 s advised, because each check costs a repository query). Here a check is a drain of
    /// the reply queue, which costs nothing when it is empty, so the default is 0: each result
    /// is applied as it arrives. A longer period batches results into fewer ledger commits.
    /// The leader's single poller serves every step, at the shortest period among them.
    #[serde(default)]
    pub period: f64,
}

/// [`LOCAL_TOPIC`] as a topic.
pub fn local_topic() -> Topic {
    LOCAL_TOPIC.parse().unwrap_or_else(|_| unreachable!("the local topic is valid"))
}

fn default_topic() -> Topic {
    OFFLOADING_TOPIC.parse().unwrap_or_else(|_| unreachable!("the offloading topic is valid"))
}

fn yes() -> bool {
    true
}

/// Longest offload step period accepted, in seconds.
pub const MAX_PERIOD_S: f64 = 3600.0;

/// One rendition to produce, fitted inside `width` x `height` keeping the aspect ratio.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rendition {
    /// The rendition's name, a single path segment (`cq5dam.thumbnail.48.48.png`).
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub format: ImageFormat,
    /// JPEG quality 1..=100 (jpeg only; default 90, as AEM's web rendition).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<u8>,
}

/// Output encoding of a rendition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    Png,
    Jpeg,
    /// The first frame, in a palette of at most 256 colours.
    Gif,
    /// Lossless.
    Webp,
}

impl ImageFormat {
    pub fn mime_type(self) -> &'static str {
        match self {
            ImageFormat::Png => "image/png",
            ImageFormat::Jpeg => "image/jpeg",
            ImageFormat::Gif => "image/gif",
            ImageFormat::Webp => "image/webp",
        }
    }
}

/// Why a model is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    #[error("model id {0:?} must be '/'-separated segments of A-Z, a-z, 0-9, '_' and '-' (at most {MAX_MODEL_ID_LEN} bytes)")]
    BadId(String),
    #[error("model {id}: {reason}")]
    Invalid { id: String, reason: String },
    #[error("model document is not valid JSON for {WORKFLOW_MODEL_SCHEMA}: {0}")]
    Malformed(String),
}

/// Whether `id` is a well-formed model id.
pub fn valid_model_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_MODEL_ID_LEN
        && id
            .split('/')
            .all(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
}

/// Whether `name` may name a rendition: one path segment, no dot segments, no control characters.
pub fn valid_rendition_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name != "."
        && name != ".."
        && !name.contains('/')
        && !name.chars().any(char::is_control)
}

impl WorkflowModel {
    /// Parses and validates a model document.
    pub fn from_json(bytes: &[u8]) -> Result<WorkflowModel, ModelError> {
        let model: WorkflowModel = serde_json::from_slice(bytes).map_err(|e| ModelError::Malformed(e.to_string()))?;
        model.validate()?;
        Ok(model)
    }

    /// Checks what serde cannot: ids, names, sizes, qualities.
    pub fn validate(&self) -> Result<(), ModelError> {
        let invalid = |reason: String| ModelError::Invalid { id: self.id.clone(), reason };
        if !valid_model_id(&self.id) {
            return Err(ModelError::BadId(self.id.clone()));
        }
        if self.schema != WORKFLOW_MODEL_SCHEMA {
            return Err(invalid(format!("schema is {:?}, expected {WORKFLOW_MODEL_SCHEMA}", self.schema)));
        }
        if self.version == 0 {
            return Err(invalid("version must be at least 1".into()));
        }
        if self.steps.is_empty() {
            return Err(invalid("a model needs at least one step".into()));
        }
        let mut names = std::collections::BTreeSet::new();
        for step in &self.steps {
            match step {
                Step::Metadata {} => {}
                Step::Renditions { renditions } => {
                    for r in renditions {
                        if !valid_rendition_name(&r.name) {
                            return Err(invalid(format!("rendition name {:?} must be a single path segment", r.name)));
                        }
                        if !names.insert(r.name.clone()) {
                            return Err(invalid(format!("rendition {:?} is listed twice", r.name)));
                        }
                        if r.width == 0 || r.height == 0 {
                            return Err(invalid(format!(
                                "rendition {:?} needs a width and height of at least 1",
                                r.name
                            )));
                        }
                        match (r.format, r.quality) {
                            (ImageFormat::Jpeg, Some(q)) if !(1..=100).contains(&q) => {
                                return Err(invalid(format!("rendition {:?}: quality must be 1..=100", r.name)));
                            }
                            (ImageFormat::Png | ImageFormat::Gif | ImageFormat::Webp, Some(_)) => {
                                return Err(invalid(format!(
                                    "rendition {:?}: quality applies to jpeg only (png, gif and webp are lossless)",
                                    r.name
                                )));
                            }
                            _ => {}
                        }
                    }
                }
                Step::Offload(o) => {
                    if !valid_model_id(&o.model) {
                        return Err(invalid(format!("offload step: {}", ModelError::BadId(o.model.clone()))));
                    }
                    if !(0.0..=MAX_PERIOD_S).contains(&o.period) {
                        return Err(invalid(format!("offload step: period must be 0 to {MAX_PERIOD_S} seconds")));
                    }
                    if o.model == self.id {
                        return Err(invalid("an offload step cannot run its own model".into()));
                    }
                }
            }
        }
        Ok(())
    }

    /// The model's offload step, when it is an offloading model (runs on a worker).
    pub fn offload_step(&self) -> Option<&OffloadStep> {
        self.steps.iter().find_map(|s| match s {
            Step::Offload(o) => Some(o),
            _ => None,
        })
    }

    /// Every rendition the model produces, in order.
    pub fn renditions(&self) -> impl Iterator<Item = &Rendition> {
        self.steps.iter().flat_map(|s| match s {
            Step::Renditions { renditions } => renditions.as_slice(),
            _ => &[],
        })
    }
}

/// The built-in models: `dam/update_asset` and `dam/update_asset_offloading`.
pub fn builtin_models() -> Vec<WorkflowModel> {
    vec![dam_update_asset(), dam_update_asset_offloading()]
}

fn rendition(name: &str, width: u32, height: u32, format: ImageFormat, quality: Option<u8>) -> Rendition {
    Rendition { name: name.into(), width, height, format, quality }
}

/// AEM's "DAM Update Asset": metadata, three PNG thumbnails and a 1280 px JPEG web rendition.
pub fn dam_update_asset() -> WorkflowModel {
    WorkflowModel {
        schema: schema_id(),
        id: DAM_UPDATE_ASSET.into(),
        version: 1,
        title: "DAM Update Asset".into(),
        steps: vec![
            Step::Metadata {},
            Step::Renditions {
                renditions: vec![
                    rendition("cq5dam.thumbnail.48.48.png", 48, 48, ImageFormat::Png, None),
                    rendition("cq5dam.thumbnail.140.100.png", 140, 100, ImageFormat::Png, None),
                    rendition("cq5dam.thumbnail.319.319.png", 319, 319, ImageFormat::Png, None),
                    rendition("cq5dam.web.1280.1280.jpeg", 1280, 1280, ImageFormat::Jpeg, Some(90)),
                ],
            },
        ],
    }
}

/// AEM's "DAM Update Asset Offloading": one step that runs `dam/update_asset` on a worker.
pub fn dam_update_asset_offloading() -> WorkflowModel {
    WorkflowModel {
        schema: schema_id(),
        id: DAM_UPDATE_ASSET_OFFLOADING.into(),
        version: 1,
        title: "DAM Update Asset Offloading".into(),
        steps: vec![Step::Offload(OffloadStep {
            model: DAM_UPDATE_ASSET.into(),
            topic: default_topic(),
            include_model: true,
            include_model_output: false,
            period: 0.0,
        })],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn builtins_are_valid_and_round_trip() {
        for m in builtin_models() {
            m.validate().unwrap();
            let text = serde_json::to_vec(&m).unwrap();
            assert_eq!(WorkflowModel::from_json(&text).unwrap(), m);
        }
        let names: Vec<_> = dam_update_asset().renditions().map(|r| r.name.clone()).collect();
        assert_eq!(names.len(), 4);
        assert_eq!(dam_update_asset_offloading().offload_step().unwrap().topic.as_str(), OFFLOADING_TOPIC);
    }

    #[test]
    fn defaults_fill_in_an_offload_step() {
        let m = WorkflowModel::from_json(
            json!({"id": "acme/x", "version": 2, "title": "X", "steps": [{"type": "offload", "model": "dam/update_asset"}]})
                .to_string()
                .as_bytes(),
        )
        .unwrap();
        let o = m.offload_step().unwrap();
        assert!(o.include_model);
        assert_eq!(o.period, 0.0, "results are applied as they arrive");
        assert_eq!(o.topic.as_str(), OFFLOADING_TOPIC);
        assert_eq!(m.schema, WORKFLOW_MODEL_SCHEMA);
    }

    #[test]
    fn bad_models_say_why() {
        let bad = |v: serde_json::Value| WorkflowModel::from_json(v.to_string().as_bytes()).unwrap_err().to_string();
        let r = |name: &str, extra: serde_json::Value| {
            let mut r = json!({"name": name, "width": 10, "height": 10, "format": "png"});
            r.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            json!({"id": "a/b", "version": 1, "title": "t", "steps": [{"type": "renditions", "renditions": [r]}]})
        };
        assert!(bad(r("../x", json!({}))).contains("single path segment"));
        assert!(bad(r("x", json!({"quality": 50}))).contains("jpeg only"));
        assert!(bad(r("x", json!({"format": "jpeg", "quality": 0}))).contains("1..=100"));
        assert!(bad(r("x", json!({"format": "tiff"}))).contains("tiff"));
        assert!(bad(json!({"id": "a/../b", "version": 1, "title": "t", "steps": [{"type": "metadata"}]}))
            .contains("model id"));
        assert!(bad(json!({"id": "a", "version": 1, "title": "t", "steps": []})).contains("at least one step"));
        assert!(bad(
            json!({"id": "a", "version": 1, "title": "t", "steps": [{"type": "offload", "model": "b", "period": -1}]})
        )
        .contains("period"));
        assert!(bad(json!({"id": "a", "version": 1, "title": "t", "steps": [{"type": "shell"}]})).contains("shell"));
        assert!(
            bad(json!({"id": "a", "version": 1, "title": "t", "steps": [{"type": "metadata"}], "schema": "offloader.workflow-model.v2"}))
                .contains("v2")
        );
    }
}
