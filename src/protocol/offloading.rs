//! The offloading job's contract: AEM's `offloading.*` job properties, typed.
//!
//! A workflow that runs on a worker travels as an ordinary job whose properties say which
//! model to run, on which asset, reading which inputs and writing where. AEM spells these as
//! string properties (`offloading.workflow.model`, `offloading.input.payload`, ...), and so do we
//! on the wire, so a job is readable in the RabbitMQ UI and a worker in another language needs
//! no Rust type to follow it. Inside the code there is exactly one reader and one writer of
//! those strings: [`OffloadingJob`]. The leader builds one when a launcher fires, the worker's
//! workflow consumer and the leader's local run read one, and the asset repository reads one to
//! apply the results.
//!
//! | property | meaning |
//! |---|---|
//! | `offloading.workflow.model` | id of the model the worker runs (`dam/update_asset`) |
//! | `offloading.workflow.model.version` | its version, so a worker without the definition can resolve it |
//! | `offloading.workflow.model.definition` | the model itself ("Add Model To Input"), unless the offload step says `include_model = false` |
//! | `offloading.workflow.model.output` | `true`: the worker returns the model it ran with the results ("Add Model To Output") |
//! | `offloading.workflow.payload` | the asset path the workflow runs on |
//! | `offloading.input.payload` | comma-separated asset paths the job reads; each is one of the job's inputs |
//! | `offloading.output.payload` | comma-separated paths where the outputs are applied (`<asset>/jcr:content/renditions`) |
//! | `offloading.workflow.launched_by` | the leader-side model that started the job (`dam/update_asset_offloading`) |
//! | `offloading.profile` | the processing profile's renditions for this asset, made besides the model's ([`JobProfile`]) |

use super::asset_path::AssetPath;
use super::job::{PayloadEntry, Properties};
use super::profile::JobProfile;
use super::workflow::WorkflowModel;
use serde_json::Value;

/// Id of the model the worker runs (AEM's `offloading.workflow.model`).
pub const WORKFLOW_MODEL: &str = "offloading.workflow.model";
/// Version of that model.
pub const WORKFLOW_MODEL_VERSION: &str = "offloading.workflow.model.version";
/// The model itself, as JSON ("Add Model To Input").
pub const WORKFLOW_MODEL_DEFINITION: &str = "offloading.workflow.model.definition";
/// Whether the completion carries the model it ran ("Add Model To Output").
pub const WORKFLOW_MODEL_OUTPUT: &str = "offloading.workflow.model.output";
/// The asset the workflow runs on (AEM's `offloading.workflow.payload`).
pub const WORKFLOW_PAYLOAD: &str = "offloading.workflow.payload";
/// The leader-side model that started the job.
pub const WORKFLOW_LAUNCHED_BY: &str = "offloading.workflow.launched_by";
/// The processing profile's renditions for the asset ([`JobProfile`], an object with its own
/// schema id), added to the model's renditions.
pub const PROFILE_PROPERTY: &str = "offloading.profile";
/// AEM's property naming the repository paths a job reads (comma-separated).
pub const INPUT_PAYLOAD: &str = "offloading.input.payload";
/// AEM's property naming the repository paths a job writes back (comma-separated).
pub const OUTPUT_PAYLOAD: &str = "offloading.output.payload";

/// Why a job's properties are not a usable offloading job.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OffloadingError {
    #[error("the job names no {WORKFLOW_MODEL}")]
    NoModel,
    #[error("the job names no {WORKFLOW_PAYLOAD}")]
    NoPayload,
    #[error("property {property} is invalid: {reason}")]
    Invalid { property: &'static str, reason: String },
    #[error("the job carries no input for {0}")]
    NoInput(String),
}

/// An offloading job's properties, read once and typed.
#[derive(Debug, Clone, PartialEq)]
pub struct OffloadingJob {
    /// Id of the model to run.
    pub model: String,
    /// The model's version; `None` accepts whatever version the worker has.
    pub version: Option<u32>,
    /// The model's definition, when the job carries it ("Add Model To Input").
    pub definition: Option<WorkflowModel>,
    /// Return the model with the results ("Add Model To Output").
    pub model_to_output: bool,
    /// The asset the workflow runs on.
    pub payload: AssetPath,
    /// Asset paths the job reads; the first is the one the workflow processes. Defaults to the
    /// payload.
    pub input_payload: Vec<AssetPath>,
    /// Where outputs are applied: the folder each output's name is written under. Defaults to
    /// the payload's renditions folder.
    pub output_payload: Vec<String>,
    /// The leader-side model that started the job.
    pub launched_by: Option<String>,
    /// The processing profile of the asset's folder: renditions made besides the model's.
    pub profile: Option<JobProfile>,
}

impl OffloadingJob {
    /// The job that runs `model` on `payload`, carrying the model's definition when
    /// `include_model`, with AEM's default payloads: read the asset, write its renditions.
    pub fn new(model: &WorkflowModel, include_model: bool, payload: AssetPath) -> Self {
        OffloadingJob {
            model: model.id.clone(),
            version: Some(model.version),
            definition: include_model.then(|| model.clone()),
            model_to_output: false,
            input_payload: vec![payload.clone()],
            output_payload: vec![payload.renditions_dir()],
            payload,
            launched_by: None,
            profile: None,
        }
    }

    /// Whether the properties look like an offloading job at all (they name a workflow payload).
    pub fn is_offloading(properties: &Properties) -> bool {
        properties.contains_key(WORKFLOW_PAYLOAD)
    }

    /// Reads the contract from a job's properties.
    pub fn from_properties(properties: &Properties) -> Result<Self, OffloadingError> {
        let text = |name: &'static str| -> Result<Option<String>, OffloadingError> {
            match properties.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => {
                    Err(OffloadingError::Invalid { property: name, reason: format!("{other} is not a string") })
                }
            }
        };
        let path = |name: &'static str, s: &str| {
            AssetPath::parse(s.trim()).map_err(|e| OffloadingError::Invalid { property: name, reason: e.to_string() })
        };
        let payload = path(WORKFLOW_PAYLOAD, &text(WORKFLOW_PAYLOAD)?.ok_or(OffloadingError::NoPayload)?)?;
        let model = text(WORKFLOW_MODEL)?.ok_or(OffloadingError::NoModel)?;
        let version = match properties.get(WORKFLOW_MODEL_VERSION) {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_u64().and_then(|n| u32::try_from(n).ok()).ok_or_else(|| {
                OffloadingError::Invalid { property: WORKFLOW_MODEL_VERSION, reason: format!("{v} is not a version") }
            })?),
        };
        let definition = match properties.get(WORKFLOW_MODEL_DEFINITION) {
            None | Some(Value::Null) => None,
            Some(v) => {
                let invalid = |reason: String| OffloadingError::Invalid { property: WORKFLOW_MODEL_DEFINITION, reason };
                let m: WorkflowModel = serde_json::from_value(v.clone()).map_err(|e| invalid(e.to_string()))?;
                m.validate().map_err(|e| invalid(e.to_string()))?;
                if m.id != model {
                    return Err(invalid(format!("it defines {:?}, the job runs {model:?}", m.id)));
                }
                Some(m)
            }
        };
        let profile = match properties.get(PROFILE_PROPERTY) {
            None | Some(Value::Null) => None,
            Some(v) => {
                let invalid = |reason: String| OffloadingError::Invalid { property: PROFILE_PROPERTY, reason };
                let p: JobProfile = serde_json::from_value(v.clone()).map_err(|e| invalid(e.to_string()))?;
                p.validate().map_err(|e| invalid(e.to_string()))?;
                Some(p)
            }
        };
        let list = |name: &'static str| -> Result<Vec<String>, OffloadingError> {
            Ok(match properties.get(name) {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::String(s)) => {
                    s.split(',').map(str::trim).filter(|p| !p.is_empty()).map(str::to_owned).collect()
                }
                Some(Value::Array(items)) => {
                    items.iter().map(|i| i.as_str().map(str::to_owned)).collect::<Option<Vec<_>>>().ok_or_else(
                        || OffloadingError::Invalid { property: name, reason: "not a list of paths".into() },
                    )?
                }
                Some(other) => {
                    return Err(OffloadingError::Invalid {
                        property: name,
                        reason: format!("{other} is not a path list"),
                    })
                }
            })
        };
        let mut input_payload =
            list(INPUT_PAYLOAD)?.iter().map(|p| path(INPUT_PAYLOAD, p)).collect::<Result<Vec<_>, _>>()?;
        if input_payload.is_empty() {
            input_payload.push(payload.clone());
        }
        let mut output_payload = list(OUTPUT_PAYLOAD)?;
        for p in &output_payload {
            path(OUTPUT_PAYLOAD, p)?;
        }
        if output_payload.is_empty() {
            output_payload.push(payload.renditions_dir());
        }
        Ok(OffloadingJob {
            model,
            version,
            definition,
            model_to_output: properties.get(WORKFLOW_MODEL_OUTPUT).and_then(Value::as_bool).unwrap_or(false),
            payload,
            input_payload,
            output_payload,
            launched_by: text(WORKFLOW_LAUNCHED_BY)?,
            profile,
        })
    }

    /// Writes the contract into job properties (the wire form).
    pub fn to_properties(&self) -> Properties {
        let mut p = Properties::new();
        p.insert(WORKFLOW_MODEL.into(), self.model.clone().into());
        if let Some(v) = self.version {
            p.insert(WORKFLOW_MODEL_VERSION.into(), v.into());
        }
        if let Some(m) = &self.definition {
            // Plain data always serializes; Null would only drop the copy and make the worker
            // resolve the model by id.
            p.insert(WORKFLOW_MODEL_DEFINITION.into(), serde_json::to_value(m).unwrap_or(Value::Null));
        }
        if self.model_to_output {
            p.insert(WORKFLOW_MODEL_OUTPUT.into(), true.into());
        }
        p.insert(WORKFLOW_PAYLOAD.into(), self.payload.as_str().into());
        let joined = |paths: Vec<&str>| paths.join(",");
        p.insert(INPUT_PAYLOAD.into(), joined(self.input_payload.iter().map(AssetPath::as_str).collect()).into());
        p.insert(OUTPUT_PAYLOAD.into(), joined(self.output_payload.iter().map(String::as_str).collect()).into());
        if let Some(l) = &self.launched_by {
            p.insert(WORKFLOW_LAUNCHED_BY.into(), l.clone().into());
        }
        if let Some(profile) = &self.profile {
            // Plain data always serializes.
            p.insert(PROFILE_PROPERTY.into(), serde_json::to_value(profile).unwrap_or(Value::Null));
        }
        p
    }

    /// The input the workflow processes: the job's input entry at the first input payload path.
    pub fn input<'a>(&self, inputs: &'a [PayloadEntry]) -> Result<&'a PayloadEntry, OffloadingError> {
        let wanted = self.input_payload.first().unwrap_or(&self.payload);
        inputs.iter().find(|i| i.path == wanted.as_str()).ok_or_else(|| OffloadingError::NoInput(wanted.to_string()))
    }

    /// Where an output named `name` goes: under the first output payload folder.
    pub fn output_path(&self, name: &str) -> String {
        let dir = self.output_payload.first().cloned().unwrap_or_else(|| self.payload.renditions_dir());
        format!("{}/{name}", dir.trim_end_matches('/'))
    }

    /// The output's name when `path` lies directly under one of the output payload folders.
    pub fn output_name<'a>(&self, path: &'a str) -> Option<&'a str> {
        self.output_payload.iter().find_map(|dir| {
            let name = path.strip_prefix(dir.as_str())?.strip_prefix('/')?;
            super::workflow::valid_rendition_name(name).then_some(name)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::workflow::{dam_update_asset, DAM_UPDATE_ASSET};
    use crate::protocol::{BlobRef, Sha256Hex};
    use serde_json::json;

    fn asset() -> AssetPath {
        AssetPath::parse("/content/dam/a.jpg").unwrap()
    }

    #[test]
    fn round_trips_through_properties_with_aems_names() {
        let mut job = OffloadingJob::new(&dam_update_asset(), true, asset());
        job.launched_by = Some("dam/update_asset_offloading".into());
        job.profile =
            crate::protocol::profile::ProcessingProfile { name: "print".into(), renditions: Vec::new(), fpo: true }
                .for_asset("image/jpeg");
        let p = job.to_properties();
        assert_eq!(p[PROFILE_PROPERTY]["schema"], crate::protocol::profile::JOB_PROFILE_SCHEMA);
        assert_eq!(p[PROFILE_PROPERTY]["renditions"][0]["name"], "cq5dam.fpo.jpeg");
        assert_eq!(p[WORKFLOW_MODEL], DAM_UPDATE_ASSET);
        assert_eq!(p[INPUT_PAYLOAD], "/content/dam/a.jpg");
        assert_eq!(p[OUTPUT_PAYLOAD], "/content/dam/a.jpg/jcr:content/renditions");
        assert_eq!(p[WORKFLOW_MODEL_DEFINITION]["id"], DAM_UPDATE_ASSET);
        assert_eq!(OffloadingJob::from_properties(&p).unwrap(), job);
    }

    #[test]
    fn payloads_default_to_the_asset_and_its_renditions() {
        let p: Properties = json!({WORKFLOW_MODEL: "m", WORKFLOW_PAYLOAD: "/a.png"}).as_object().unwrap().clone();
        let job = OffloadingJob::from_properties(&p).unwrap();
        assert_eq!(job.input_payload, [AssetPath::parse("/a.png").unwrap()]);
        assert_eq!(job.output_path("x.png"), "/a.png/jcr:content/renditions/x.png");
        assert_eq!(job.output_name("/a.png/jcr:content/renditions/x.png"), Some("x.png"));
        assert_eq!(job.output_name("/a.png/jcr:content/renditions/x/y"), None);
        assert_eq!(job.output_name("/a.png.echo"), None);
        assert!(job.definition.is_none() && job.version.is_none());
    }

    #[test]
    fn the_input_is_the_entry_at_the_input_payload_path() {
        let job = OffloadingJob::new(&dam_update_asset(), false, asset());
        let entry = |path: &str| PayloadEntry {
            path: path.into(),
            blob: BlobRef { sha256: Sha256Hex::from_digest(&[1; 32]), size: 1 },
            mime_type: None,
        };
        let inputs = [entry("/other"), entry("/content/dam/a.jpg")];
        assert_eq!(job.input(&inputs).unwrap().path, "/content/dam/a.jpg");
        assert_eq!(job.input(&inputs[..1]), Err(OffloadingError::NoInput("/content/dam/a.jpg".into())));
    }

    #[test]
    fn bad_properties_say_which() {
        let bad =
            |v: serde_json::Value| OffloadingJob::from_properties(v.as_object().unwrap()).unwrap_err().to_string();
        assert!(bad(json!({WORKFLOW_MODEL: "m"})).contains(WORKFLOW_PAYLOAD));
        assert!(bad(json!({WORKFLOW_PAYLOAD: "/a"})).contains(WORKFLOW_MODEL));
        assert!(bad(json!({WORKFLOW_MODEL: "m", WORKFLOW_PAYLOAD: "/../etc"})).contains("'..'"));
        assert!(bad(json!({WORKFLOW_MODEL: "m", WORKFLOW_PAYLOAD: "/a", WORKFLOW_MODEL_VERSION: "x"}))
            .contains(WORKFLOW_MODEL_VERSION));
        assert!(bad(json!({WORKFLOW_MODEL: "m", WORKFLOW_PAYLOAD: "/a", WORKFLOW_MODEL_DEFINITION: {"id": "x"}}))
            .contains(WORKFLOW_MODEL_DEFINITION));
        assert!(
            bad(json!({WORKFLOW_MODEL: "m", WORKFLOW_PAYLOAD: "/a", INPUT_PAYLOAD: "/a,b"})).contains(INPUT_PAYLOAD)
        );
        let profile = |schema: &str| json!({WORKFLOW_MODEL: "m", WORKFLOW_PAYLOAD: "/a", PROFILE_PROPERTY: {"schema": schema, "name": "p", "renditions": []}});
        assert!(bad(profile("offloader.job-profile.v2")).contains("v2"));
        assert!(OffloadingJob::from_properties(profile("offloader.job-profile.v1").as_object().unwrap()).is_ok());
    }
}
