//! The workflow consumer: AEM's "DAM Update Asset" on the far side of an offloading job, and
//! the one runner of workflow models, wherever they run.
//!
//! A worker registers it for `com/adobe/granite/workflow/offloading` (and any topic a launcher
//! routes assets to); the leader runs the very same consumer for workflows it processes
//! itself. So an asset comes out identical whichever processed it.
//!
//! It reads the job's [`OffloadingJob`] contract, resolves the model (the definition the job
//! carries, else this process's copy of the named model and version), fetches the input at the
//! input payload path by reference, runs the model's steps, and the renditions of the processing
//! profile the job carries, with the renditions engine on a blocking thread, stores every rendition content-addressed under the output payload folder,
//! and hands back the properties the leader's asset repository reads: `metadata` and
//! `renditions` (pixel sizes), and the model it ran when the job asks for it ("Add Model To
//! Output").
//!
//! Results: bad input (corrupt, truncated, unsupported, too large for the memory budget, a PDF
//! or video whose program failed or timed out) cancels the job with the engine's reason,
//! labelled by [`refusal`](super::plan::refusal) (`SourceUnsupported: <asset>: ...`), since
//! retrying cannot make those bytes better; a model this process does
//! not have declines the job, so it goes back to its queue for a worker that has the model.

use super::{Context, JobConsumer, Plan};
use crate::models::ModelRegistry;
use crate::protocol::offloading::{WORKFLOW_MODEL, WORKFLOW_MODEL_DEFINITION, WORKFLOW_MODEL_VERSION};
use crate::protocol::{Job, JobResult, OffloadingJob, WorkflowModel};
use offloader_renditions::Limits;
use std::sync::Arc;

/// Runs workflow models named by offloading jobs. Cheap to clone: every clone shares the
/// models, so one set serves every topic the consumer is registered on.
#[derive(Clone)]
pub struct WorkflowConsumer {
    /// Models this process knows by id, for jobs that do not carry their definition.
    models: Arc<ModelRegistry>,
    limits: Limits,
}

impl WorkflowConsumer {
    /// A consumer knowing the built-in models, with the engine's default limits.
    pub fn new() -> Self {
        Self::with_models(ModelRegistry::default(), Limits::default())
    }

    /// A consumer knowing `models` (e.g. the leader's `--models` folder, loaded with
    /// [`ModelRegistry::load`]).
    pub fn with_models(models: ModelRegistry, limits: Limits) -> Self {
        WorkflowConsumer { models: Arc::new(models), limits }
    }

    /// The model to run: the definition the job carries, or this process's copy of the named
    /// model, which must then be the version the job asks for. The error says what this
    /// process lacks (another process may have it).
    fn model(&self, job: &OffloadingJob) -> Result<WorkflowModel, String> {
        if let Some(carried) = &job.definition {
            return Ok(carried.clone());
        }
        let Some(model) = self.models.get(&job.model) else {
            return Err(format!(
                "this process has no workflow model {:?}; give it the leader's models with --models DIR",
                job.model
            ));
        };
        match job.version {
            Some(v) if v != model.version => {
                Err(format!("the job needs {} version {v}; this process has version {}", job.model, model.version))
            }
            _ => Ok(model.clone()),
        }
    }
}

impl Default for WorkflowConsumer {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait::async_trait]
impl JobConsumer for WorkflowConsumer {
    async fn process(&self, job: &Job, ctx: &Context) -> JobResult {
        let contract = match OffloadingJob::from_properties(&job.properties) {
            Ok(c) => c,
            Err(e) => return JobResult::cancel(e.to_string()),
        };
        let model = match self.model(&contract) {
            Ok(m) => m,
            Err(lacking) => return JobResult::declined(lacking),
        };
        let plan = match Plan::of(&model) {
            Ok(p) => p,
            Err(e) => return JobResult::cancel(e.to_string()),
        };
        // The processing profile of the asset's folder, resolved by the leader: its renditions
        // are made with the model's, in the same decode.
        let plan = match &contract.profile {
            Some(profile) => match plan.with_profile(profile) {
                Ok(p) => p,
                Err(e) => return JobResult::cancel(e.to_string()),
            },
            None => plan,
        };
        let input = match contract.input(&job.inputs) {
            Ok(i) => i,
            Err(e) => return JobResult::cancel(e.to_string()),
        };
        // Steps: fetching the original, running the engine, storing each rendition.
        ctx.init_progress(2 + plan.renditions() as u64, None);
        let bytes = match ctx.input_bytes(input).await {
            Ok(b) => b,
            Err(e) => return e.into_result(),
        };
        ctx.increment_progress(1);
        if ctx.is_stopped() {
            return stopped();
        }
        let limits = self.limits;
        let processed = match ctx.run_blocking(move || plan.run(&bytes, &limits)).await {
            Ok(Ok(out)) => out,
            Ok(Err(e)) => return JobResult::cancel(super::plan::refusal(contract.payload.as_str(), &e)),
            Err(result) => return result,
        };
        ctx.increment_progress(1);
        for (name, value) in processed.properties() {
            ctx.set_property(name, value);
        }
        if contract.model_to_output {
            ctx.set_property(WORKFLOW_MODEL, model.id.clone());
            ctx.set_property(WORKFLOW_MODEL_VERSION, model.version);
            ctx.set_property(WORKFLOW_MODEL_DEFINITION, serde_json::to_value(&model).unwrap_or_default());
        }
        for r in processed.renditions {
            // Cooperative: a stopped job ends between renditions.
            if ctx.is_stopped() {
                return stopped();
            }
            let path = contract.output_path(&r.name);
            if let Err(e) = ctx.store_output(path, r.bytes.into(), Some(r.mime_type.to_owned())).await {
                return e.into_result();
            }
            ctx.log(format!("rendition {} stored", r.name));
            ctx.increment_progress(1);
        }
        JobResult::Ok
    }
}

/// The result of a workflow that noticed it was stopped (the leader ignores it: the job is
/// already STOPPED).
fn stopped() -> JobResult {
    JobResult::cancel("stopped before the workflow finished")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consumer::testing::TestJob;
    use crate::protocol::workflow::dam_update_asset;
    use crate::protocol::AssetPath;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(width, height, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 90]));
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    }

    fn job(include_model: bool) -> TestJob {
        let asset = AssetPath::parse("/content/dam/a.png").unwrap();
        let contract = OffloadingJob::new(&dam_update_asset(), include_model, asset);
        TestJob::on("com/adobe/granite/workflow/offloading")
            .properties(contract.to_properties())
            .input("/content/dam/a.png", png(640, 480))
    }

    #[tokio::test]
    async fn renditions_land_under_the_output_payload() {
        let done = job(true).run(&WorkflowConsumer::new()).await;
        assert_eq!(done.result, JobResult::Ok);
        let paths: Vec<&str> = done.outputs.iter().map(|o| o.path.as_str()).collect();
        assert!(paths.contains(&"/content/dam/a.png/jcr:content/renditions/cq5dam.thumbnail.48.48.png"), "{paths:?}");
        assert_eq!(done.outputs.len(), 4);
        assert_eq!(done.properties["metadata"]["width"], 640);
        let thumb = done.output_bytes("/content/dam/a.png/jcr:content/renditions/cq5dam.thumbnail.48.48.png").unwrap();
        assert!(thumb.starts_with(b"\x89PNG"));
        assert!(done.properties.get(WORKFLOW_MODEL).is_none(), "no model in the output unless asked");
    }

    #[tokio::test]
    async fn a_model_this_process_lacks_is_declined_not_failed() {
        let mut j = job(false);
        j.job_mut().properties.insert(WORKFLOW_MODEL.into(), "acme/unknown".into());
        let done = j.run(&WorkflowConsumer::new()).await;
        assert!(
            matches!(&done.result, JobResult::Declined { reason } if reason.contains("acme/unknown")),
            "{:?}",
            done.result
        );

        let mut j = job(false);
        j.job_mut().properties.insert(WORKFLOW_MODEL_VERSION.into(), 9.into());
        let done = j.run(&WorkflowConsumer::new()).await;
        assert!(
            matches!(&done.result, JobResult::Declined { reason } if reason.contains("version 9")),
            "{:?}",
            done.result
        );
    }

    #[tokio::test]
    async fn add_model_to_output_returns_the_model_that_ran() {
        let mut j = job(true);
        j.job_mut().properties.insert(crate::protocol::offloading::WORKFLOW_MODEL_OUTPUT.into(), true.into());
        let done = j.run(&WorkflowConsumer::new()).await;
        assert_eq!(done.properties[WORKFLOW_MODEL], "dam/update_asset");
        assert_eq!(done.properties[WORKFLOW_MODEL_VERSION], 1);
    }

    #[tokio::test]
    async fn bad_bytes_and_missing_inputs_cancel_with_the_reason() {
        let asset = AssetPath::parse("/content/dam/a.png").unwrap();
        let contract = OffloadingJob::new(&dam_update_asset(), true, asset);
        let done = TestJob::on("com/adobe/granite/workflow/offloading")
            .properties(contract.to_properties())
            .input("/content/dam/a.png", "not an image")
            .run(&WorkflowConsumer::new())
            .await;
        assert!(matches!(done.result, JobResult::Cancel { .. }), "{:?}", done.result);
        let done = TestJob::on("com/adobe/granite/workflow/offloading")
            .properties(contract.to_properties())
            .run(&WorkflowConsumer::new())
            .await;
        assert!(
            matches!(&done.result, JobResult::Cancel { reason } if reason.contains("no input")),
            "{:?}",
            done.result
        );
    }
}
