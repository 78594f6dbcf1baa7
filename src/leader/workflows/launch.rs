//! Turning "a launcher fired for this asset" into the job that runs its workflow: a job that
//! offloads it to a worker, or one the leader runs itself when the model has no offload step.
//!
//! The job is AEM's offloading job (see [`OffloadingJob`]): the model the worker runs, with its
//! definition unless the offload step says `include_model = false`, the asset, and the input
//! and output payloads, and the renditions of the asset folder's processing profile. The
//! original travels as the job's one input entry (by reference), at the input payload path.

use super::launchers::Launcher;
use crate::leader::jobs::NewJob;
use crate::models::ModelRegistry;
use crate::protocol::workflow::local_topic;
use crate::protocol::{AssetPath, JobProfile, OffloadingJob, PayloadEntry};

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

/// The job that runs `launcher`'s workflow on the asset at `path` whose original is `original`,
/// adding `profile`'s renditions (already chosen for the asset's folder and type).
pub fn workflow_job(
    launcher: &Launcher,
    models: &ModelRegistry,
    path: &AssetPath,
    original: PayloadEntry,
    profile: Option<JobProfile>,
) -> Result<Launch, LaunchError> {
    let model = models.get(&launcher.workflow).ok_or_else(|| LaunchError::UnknownModel(launcher.workflow.clone()))?;
    let Some(step) = model.offload_step() else {
        let mut contract = OffloadingJob::new(model, true, path.clone());
        contract.launched_by = Some(model.id.clone());
        contract.profile = profile;
        return Ok(Launch::Local(NewJob {
            properties: contract.to_properties(),
            inputs: vec![original],
            max_attempts: Some(1),
            ..NewJob::new(local_topic())
        }));
    };
    let remote = models.get(&step.model).ok_or_else(|| LaunchError::UnknownModel(step.model.clone()))?;
    let mut contract = OffloadingJob::new(remote, step.include_model, path.clone());
    contract.model_to_output = step.include_model_output;
    contract.launched_by = Some(model.id.clone());
    contract.profile = profile;
    let topic = launcher.topic.clone().unwrap_or_else(|| step.topic.clone());
    Ok(Launch::Offload(NewJob { properties: contract.to_properties(), inputs: vec![original], ..NewJob::new(topic) }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leader::workflows::launchers::Launchers;
    use crate::protocol::offloading::{
        INPUT_PAYLOAD, OUTPUT_PAYLOAD, PROFILE_PROPERTY, WORKFLOW_LAUNCHED_BY, WORKFLOW_MODEL,
        WORKFLOW_MODEL_DEFINITION, WORKFLOW_PAYLOAD,
    };
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
        let Launch::Offload(job) = workflow_job(launcher, &models, &path, original(&path), None).unwrap() else {
            panic!("the default launcher offloads")
        };
        assert_eq!(job.topic.as_str(), OFFLOADING_TOPIC);
        assert_eq!(job.properties[WORKFLOW_MODEL], DAM_UPDATE_ASSET);
        assert_eq!(job.properties[WORKFLOW_PAYLOAD], "/content/dam/a.jpg");
        assert_eq!(job.properties[INPUT_PAYLOAD], "/content/dam/a.jpg");
        assert_eq!(job.properties[OUTPUT_PAYLOAD], "/content/dam/a.jpg/jcr:content/renditions");
        assert_eq!(job.properties[WORKFLOW_MODEL_DEFINITION]["id"], DAM_UPDATE_ASSET);
        assert_eq!(job.inputs.len(), 1);
        assert!(!job.properties.contains_key(PROFILE_PROPERTY), "no profile, no property");

        let profile = crate::protocol::ProcessingProfile { name: "p".into(), renditions: Vec::new(), fpo: true }
            .for_asset("image/jpeg");
        let Launch::Offload(job) = workflow_job(launcher, &models, &path, original(&path), profile).unwrap() else {
            panic!("the default launcher offloads")
        };
        let carried = OffloadingJob::from_properties(&job.properties).unwrap().profile.unwrap();
        assert_eq!((carried.name.as_str(), carried.renditions.len()), ("p", 1));

        let mut routed = launcher.clone();
        routed.topic = Some("acme/special".parse().unwrap());
        let Launch::Offload(job) = workflow_job(&routed, &models, &path, original(&path), None).unwrap() else {
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
        let profile = crate::protocol::ProcessingProfile { name: "p".into(), renditions: Vec::new(), fpo: true }
            .for_asset("image/jpeg");
        let Launch::Local(job) = workflow_job(&launcher, &models, &path, original(&path), profile).unwrap() else {
            panic!("dam/update_asset has no offload step")
        };
        assert_eq!(
            job.properties[PROFILE_PROPERTY]["name"], "p",
            "the leader's own run makes the profile's renditions too"
        );
        assert_eq!(job.topic.as_str(), LOCAL_TOPIC);
        assert_eq!(job.max_attempts, Some(1));
        assert_eq!(job.properties[WORKFLOW_LAUNCHED_BY], DAM_UPDATE_ASSET);
        assert_eq!(job.properties[WORKFLOW_MODEL_DEFINITION]["id"], DAM_UPDATE_ASSET);
    }
}
