//! Turning "a launcher fired for this asset" into the job that runs its workflow: a job that
//! offloads it to a worker, or one the leader runs itself when the model has no offload step.
//!
//! The job is AEM's offloading job, property for property: the model the worker runs
//! (`offloading.workflow.model`, plus its version, plus the definition itself unless the offload
//! step says `include_model = false`), the asset (`offloading.workflow.payload`), and the input
//! and output payloads. The input payload is the asset path and the original travels as the
//! job's one input entry (by reference); the output payload is `<asset>/jcr:content/renditions`,
//! where the worker's outputs are expected (see the completion contract in `assets.rs`).

use super::job_manager::NewJob;
use super::launchers::Launcher;
use crate::models::ModelRegistry;
use crate::protocol::job::{INPUT_PAYLOAD, OUTPUT_PAYLOAD};
use crate::protocol::workflow::{
    local_topic, WorkflowModel, WORKFLOW_LAUNCHED_BY, WORKFLOW_MODEL, WORKFLOW_MODEL_DEFINITION,
    WORKFLOW_MODEL_VERSION, WORKFLOW_PAYLOAD,
};
use crate::protocol::{AssetPath, PayloadEntry, Properties};

/// Why a launcher's workflow cannot start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LaunchError {
    #[error("workflow model {0:?} is not known")]
    UnknownModel(String),
}

/// Where a launcher's workflow runs.
#[derive(Debug, Clone)]
pub enum Launch {
    /// On a worker: publish this job (AEM's DAM Update Asset Offloading).
    Offload(NewJob),
    /// On the leader itself: the model has no offload step (AEM's plain DAM Update Asset).
    /// The job is recorded, not published; its definition always travels in it, so a resumed
    /// run after a restart does exactly what the launcher chose.
    Local(NewJob),
}

/// The job that runs `launcher`'s workflow on the asset at `path` whose original is `original`.
pub fn workflow_job(
    launcher: &Launcher,
    models: &ModelRegistry,
    path: &AssetPath,
    original: PayloadEntry,
) -> Result<Launch, LaunchError> {
    let model = models.get(&launcher.workflow).ok_or_else(|| LaunchError::UnknownModel(launcher.workflow.clone()))?;
    let Some(step) = model.offload_step() else {
        let properties = workflow_properties(model, true, model, path);
        return Ok(Launch::Local(NewJob {
            topic: local_topic(),
            properties,
            inputs: vec![original],
            max_attempts: Some(1),
        }));
    };
    let remote = models.get(&step.model).ok_or_else(|| LaunchError::UnknownModel(step.model.clone()))?;
    let properties = workflow_properties(remote, step.include_model, model, path);
    let topic = launcher.topic.clone().unwrap_or_else(|| step.topic.clone());
    Ok(Launch::Offload(NewJob { topic, properties, inputs: vec![original], max_attempts: None }))
}

/// AEM's offloading job properties: the model `run` (with its definition when `include_model`),
/// the asset, the input and output payloads, and the leader-side model that `launched` it.
fn workflow_properties(
    run: &WorkflowModel,
    include_model: bool,
    launched: &WorkflowModel,
    path: &AssetPath,
) -> Properties {
    let mut properties = Properties::new();
    properties.insert(WORKFLOW_MODEL.into(), run.id.clone().into());
    properties.insert(WORKFLOW_MODEL_VERSION.into(), run.version.into());
    if include_model {
        // Serializing a plain data struct cannot fail; an empty value would only omit the copy.
        properties.insert(WORKFLOW_MODEL_DEFINITION.into(), serde_json::to_value(run).unwrap_or_default());
    }
    properties.insert(WORKFLOW_PAYLOAD.into(), path.as_str().into());
    properties.insert(WORKFLOW_LAUNCHED_BY.into(), launched.id.clone().into());
    properties.insert(INPUT_PAYLOAD.into(), path.as_str().into());
    properties.insert(OUTPUT_PAYLOAD.into(), path.renditions_dir().into());
    properties
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leader::launchers::Launchers;
    use crate::protocol::workflow::{DAM_UPDATE_ASSET, LOCAL_TOPIC, OFFLOADING_TOPIC};
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
        let Launch::Offload(job) = workflow_job(launcher, &models, &path, original(&path)).unwrap() else {
            panic!("the default launcher offloads")
        };
        assert_eq!(job.topic.as_str(), OFFLOADING_TOPIC);
        assert_eq!(job.properties[WORKFLOW_MODEL], DAM_UPDATE_ASSET);
        assert_eq!(job.properties[WORKFLOW_PAYLOAD], "/content/dam/a.jpg");
        assert_eq!(job.properties[INPUT_PAYLOAD], "/content/dam/a.jpg");
        assert_eq!(job.properties[OUTPUT_PAYLOAD], "/content/dam/a.jpg/jcr:content/renditions");
        assert_eq!(job.properties[WORKFLOW_MODEL_DEFINITION]["id"], DAM_UPDATE_ASSET);
        assert_eq!(job.inputs.len(), 1);

        let mut routed = launcher.clone();
        routed.topic = Some("acme/special".parse().unwrap());
        let Launch::Offload(job) = workflow_job(&routed, &models, &path, original(&path)).unwrap() else {
            panic!("still offloads")
        };
        assert_eq!(job.topic.as_str(), "acme/special");
    }

    #[test]
    fn a_model_without_offload_step_runs_on_the_leader_with_its_definition() {
        let models = ModelRegistry::default();
        let mut launcher = Launchers::defaults().list()[0].clone();
        launcher.workflow = DAM_UPDATE_ASSET.into();
        let path = AssetPath::parse("/content/dam/a.jpg").unwrap();
        let Launch::Local(job) = workflow_job(&launcher, &models, &path, original(&path)).unwrap() else {
            panic!("dam/update_asset has no offload step")
        };
        assert_eq!(job.topic.as_str(), LOCAL_TOPIC);
        assert_eq!(job.max_attempts, Some(1));
        assert_eq!(job.properties[WORKFLOW_LAUNCHED_BY], DAM_UPDATE_ASSET);
        assert_eq!(job.properties[WORKFLOW_MODEL_DEFINITION]["id"], DAM_UPDATE_ASSET);
    }
}
