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
use crate::protocol::workflow::{
    builtin_models, ImageFormat, Rendition, Step, WorkflowModel, WORKFLOW_MODEL, WORKFLOW_MODEL_DEFINITION,
    WORKFLOW_MODEL_VERSION, WORKFLOW_PAYLOAD,
};
use crate::protocol::{Job, JobResult, PayloadEntry};
use offloader_renditions::{Format, Limits, RenditionSpec};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// Runs workflow models named by offloading jobs.
pub struct WorkflowConsumer {
    /// Models this worker knows by id, for jobs that do not carry their definition.
    models: BTreeMap<String, WorkflowModel>,
    limits: Limits,
}

impl WorkflowConsumer {
    /// A consumer knowing the built-in models, with the engine's default limits.
    pub fn new() -> Self {
        Self::with_models(builtin_models(), Limits::default())
    }

    pub fn with_models(models: Vec<WorkflowModel>, limits: Limits) -> Self {
        WorkflowConsumer { models: models.into_iter().map(|m| (m.id.clone(), m)).collect(), limits }
    }

    /// The model to run: the definition the job carries, or this worker's copy of the named
    /// model, which must then be the version the job asks for.
    fn model(&self, job: &Job) -> Result<WorkflowModel, String> {
        if let Some(definition) = job.properties.get(WORKFLOW_MODEL_DEFINITION) {
            let model: WorkflowModel = serde_json::from_value(definition.clone())
                .map_err(|e| format!("the job's workflow model definition is invalid: {e}"))?;
            model.validate().map_err(|e| e.to_string())?;
            return Ok(model);
        }
        let id = job.property::<String>(WORKFLOW_MODEL).ok_or_else(|| format!("the job names no {WORKFLOW_MODEL}"))?;
        let model = self.models.get(&id).ok_or_else(|| format!("this worker has no workflow model {id:?}"))?;
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

/// The engine's spec for one rendition of a model.
fn spec(r: &Rendition) -> RenditionSpec {
    let format = match r.format {
        ImageFormat::Png => Format::Png,
        ImageFormat::Jpeg => Format::Jpeg { quality: r.quality.unwrap_or(offloader_renditions::DEFAULT_JPEG_QUALITY) },
        ImageFormat::Webp => Format::WebP,
    };
    RenditionSpec::new(r.name.clone(), r.width, r.height, format)
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
        let mut specs = Vec::new();
        let mut wants_metadata = false;
        for step in &model.steps {
            match step {
                Step::Metadata {} => wants_metadata = true,
                Step::Renditions { renditions } => specs.extend(renditions.iter().map(spec)),
                Step::Offload(_) => {
                    return JobResult::cancel(format!("model {} offloads again; a worker cannot run it", model.id));
                }
            }
        }
        let bytes = match ctx.input_bytes(input).await {
            Ok(b) => b,
            Err(e) => return e.into_result(),
        };

        let limits = self.limits;
        let ran = ctx
            .run_blocking(move || {
                if specs.is_empty() {
                    offloader_renditions::extract_metadata(&bytes, &limits).map(|m| (m, Vec::new()))
                } else {
                    offloader_renditions::process(&bytes, &specs, &limits).map(|o| (o.metadata, o.renditions))
                }
            })
            .await;
        let (metadata, renditions) = match ran {
            Ok(Ok(out)) => out,
            Ok(Err(e)) => return JobResult::cancel(format!("{payload}: {e}")),
            Err(result) => return result,
        };

        let mut sizes = Map::new();
        for r in renditions {
            sizes.insert(r.name.clone(), json!({ "width": r.width, "height": r.height }));
            let path = format!("{payload}/jcr:content/renditions/{}", r.name);
            if let Err(e) = ctx.store_output(path, r.bytes.into(), Some(r.mime_type.to_owned())).await {
                return e.into_result();
            }
        }
        if wants_metadata {
            ctx.set_property("metadata", serde_json::to_value(&metadata).unwrap_or(Value::Null));
        }
        ctx.set_property("renditions", Value::Object(sizes));
        JobResult::Ok
    }
}
