//! The workflow-offloading consumer: what a worker runs for a job on
//! `com/adobe/granite/workflow/offloading`, AEM's "DAM Update Asset" on the far side.
//!
//! The job names a workflow model (and, unless the launcher said otherwise, carries its
//! definition), the asset path (`offloading.workflow.payload`) and the original as an input.
//! This consumer fetches the original by reference, runs the model's steps with the renditions
//! engine, stores every rendition content-addressed and hands back what the leader's asset
//! repository expects (see `leader::assets`): outputs at
//! `<asset>/jcr:content/renditions/<name>`, and the properties `metadata` and `renditions`
//! (pixel sizes). Bad input (corrupt, truncated, not an image, too large) cancels the job with
//! the engine's reason: retrying cannot make those bytes better.

use super::{Context, JobConsumer};
use crate::models::ModelRegistry;
use crate::processing::Plan;
use crate::protocol::workflow::{
    carried_model, WorkflowModel, WORKFLOW_MODEL, WORKFLOW_MODEL_VERSION, WORKFLOW_PAYLOAD,
};
use crate::protocol::{Job, JobResult, PayloadEntry};
use offloader_renditions::Limits;
use std::sync::Arc;

/// Runs workflow models named by offloading jobs. Cheap to clone: every clone shares the
/// models, so one set serves every topic the consumer is registered on.
#[derive(Clone)]
pub struct WorkflowConsumer {
    /// Models this worker knows by id, for jobs that do not carry their definition.
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

    /// The model to run: the definition the job carries, or this worker's copy of the named
    /// model, which must then be the version the job asks for.
    fn model(&self, job: &Job) -> Result<WorkflowModel, String> {
        if let Some(carried) = carried_model(&job.properties) {
            return carried;
        }
        let id = job.property::<String>(WORKFLOW_MODEL).ok_or_else(|| format!("the job names no {WORKFLOW_MODEL}"))?;
        let model = self.models.get(&id).ok_or_else(|| {
            format!("this worker has no workflow model {id:?}; give it the leader's models with --models DIR")
        })?;
        if let Some(version) = job.property::<u32>(WORKFLOW_MODEL_VERSION) {
            if version != model.version {
                return Err(format!("the job needs {id} version {version}; this worker has version {}", model.version));
            }
        }
        Ok(model.clone())
    }
}

impl Default for WorkflowConsumer {
    fn default() -> Self {
        Self::new()
    }
}

/// The input the workflow works on: the one at the payload path, or the only one.
fn original<'a>(job: &'a Job, payload: &str) -> Option<&'a PayloadEntry> {
    job.inputs.iter().find(|i| i.path == payload).or(match job.inputs.as_slice() {
        [only] => Some(only),
        _ => None,
    })
}

#[async_trait::async_trait]
impl JobConsumer for WorkflowConsumer {
    async fn process(&self, job: &Job, ctx: &Context) -> JobResult {
        let model = match self.model(job) {
            Ok(m) => m,
            Err(reason) => return JobResult::cancel(reason),
        };
        let Some(payload) = job.property::<String>(WORKFLOW_PAYLOAD) else {
            return JobResult::cancel(format!("the job names no {WORKFLOW_PAYLOAD}"));
        };
        let Some(input) = original(job, &payload) else {
            return JobResult::cancel(format!("the job carries no input for {payload}"));
        };
        let plan = match Plan::of(&model) {
            Ok(p) => p,
            Err(e) => return JobResult::cancel(e.to_string()),
        };
        let bytes = match ctx.input_bytes(input).await {
            Ok(b) => b,
            Err(e) => return e.into_result(),
        };
        let limits = self.limits;
        let processed = match ctx.run_blocking(move || plan.run(&bytes, &limits)).await {
            Ok(Ok(out)) => out,
            Ok(Err(e)) => return JobResult::cancel(format!("{payload}: {e}")),
            Err(result) => return result,
        };
        for (name, value) in processed.properties() {
            ctx.set_property(name, value);
        }
        for r in processed.renditions {
            let path = format!("{payload}/jcr:content/renditions/{}", r.name);
            if let Err(e) = ctx.store_output(path, r.bytes.into(), Some(r.mime_type.to_owned())).await {
                return e.into_result();
            }
        }
        JobResult::Ok
    }
}
