//! Turning "a launcher fired for this asset" into the job that offloads its workflow.
//!
//! The job is AEM's offloading job, property for property: the model the worker runs
//! (`offloading.workflow.model`, plus its version, plus the definition itself unless the offload
//! step says `include_model = false`), the asset (`offloading.workflow.payload`), and the input
//! and output payloads. The input payload is the asset path and the original travels as the
//! job's one input entry (by reference); the output payload is `<asset>/jcr:content/renditions`,
//! where the worker's outputs are expected (see the completion contract in `assets.rs`).

use super::job_manager::NewJob;
use super::launchers::Launcher;
use super::models::ModelRegistry;
use crate::protocol::job::{INPUT_PAYLOAD, OUTPUT_PAYLOAD};
use crate::protocol::workflow::{
    WORKFLOW_LAUNCHED_BY, WORKFLOW_MODEL, WORKFLOW_MODEL_DEFINITION, WORKFLOW_MODEL_VERSION, WORKFLOW_PAYLOAD,
};
use crate::protocol::{AssetPath, PayloadEntry, Properties};

/// Why a launcher's workflow cannot start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LaunchError {
    #[error("workflow model {0:?} is not known")]
    UnknownModel(String),
    /// The model has no offload step: it would run on the leader itself, which is not built yet.
    #[error(
        "workflow model {0:?} would run on the leader itself, and local processing is not built yet \
         (issue 4); launch an offloading model instead, e.g. dam/update_asset_offloading"
    )]
    NeedsLocalProcessing(String),
}

/// The job that runs `launcher`'s workflow on the asset at `path` whose original is `original`.
pub fn offloading_job(
    launcher: &Launcher,
    models: &ModelRegistry,
    path: &AssetPath,
    original: PayloadEntry,
) -> Result<NewJob, LaunchError> {
    let model = models.get(&launcher.workflow).ok_or_else(|| LaunchError::UnknownModel(launcher.workflow.clone()))?;
    let step = model.offload_step().ok_or_else(|| LaunchError::NeedsLocalProcessing(model.id.clone()))?;
    let remote = models.get(&step.model).ok_or_else(|| LaunchError::UnknownModel(step.model.clone()))?;
    let mut properties = Properties::new();
    properties.insert(WORKFLOW_MODEL.into(), remote.id.clone().into());
    properties.insert(WORKFLOW_MODEL_VERSION.into(), remote.version.into());
    if step.include_model {
        // Serializing a plain data struct cannot fail; an empty value would only omit the copy.
        properties.insert(WORKFLOW_MODEL_DEFINITION.into(), serde_json::to_value(remote).unwrap_or_default());
    }
    properties.insert(WORKFLOW_PAYLOAD.into(), path.as_str().into());
    properties.insert(WORKFLOW_LAUNCHED_BY.into(), model.id.clone().into());
    properties.insert(INPUT_PAYLOAD.into(), path.as_str().into());
    properties.insert(OUTPUT_PAYLOAD.into(), path.renditions_dir().into());
    let topic = launcher.topic.clone().unwrap_or_else(|| step.topic.clone());
    Ok(NewJob { topic, properties, inputs: vec![original], max_attempts: None })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leader::launchers::Launchers;
    use crate::protocol::workflow::{DAM_UPDATE_ASSET, OFFLOADING_TOPIC};
    use crate::protocol::{BlobRef, Sha256Hex};

    fn original(path: &AssetPath) -> PayloadEntry {
        PayloadEntry {
            path: path.as_str().into(),
            blob: BlobRef { sha256: Sha256Hex::from_digest(&[1; 32]), size: 1 },
            mime_type: Some("image/jpeg".into()),
        }
    }

    #[test]
    fn the_default_launcher_builds_aems_offloading_job() {
        let models = ModelRegistry::default();
        let launchers = Launchers::defaults();
        let path = AssetPath::parse("/content/dam/a.jpg").unwrap();
        let launcher = &launchers.list()[0];
        let job = offloading_job(launcher, &models, &path, original(&path)).unwrap();
        assert_eq!(job.topic.as_str(), OFFLOADING_TOPIC);
        assert_eq!(job.properties[WORKFLOW_MODEL], DAM_UPDATE_ASSET);
        assert_eq!(job.properties[WORKFLOW_PAYLOAD], "/content/dam/a.jpg");
        assert_eq!(job.properties[INPUT_PAYLOAD], "/content/dam/a.jpg");
        assert_eq!(job.properties[OUTPUT_PAYLOAD], "/content/dam/a.jpg/jcr:content/renditions");
        assert_eq!(job.properties[WORKFLOW_MODEL_DEFINITION]["id"], DAM_UPDATE_ASSET);
        assert_eq!(job.inputs.len(), 1);

        let mut routed = launcher.clone();
        routed.topic = Some("acme/special".parse().unwrap());
        assert_eq!(offloading_job(&routed, &models, &path, original(&path)).unwrap().topic.as_str(), "acme/special");
    }

    #[test]
    fn a_local_model_says_local_processing_is_not_built() {
        let models = ModelRegistry::default();
        let mut launcher = Launchers::defaults().list()[0].clone();
        launcher.workflow = DAM_UPDATE_ASSET.into();
        let path = AssetPath::parse("/content/dam/a.jpg").unwrap();
        let e = offloading_job(&launcher, &models, &path, original(&path)).unwrap_err();
        assert!(e.to_string().contains("local processing is not built yet"), "{e}");
    }
}
