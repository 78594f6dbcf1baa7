//! A workflow model's steps as the renditions engine runs them: the translation from model to
//! engine, and from the engine's output to the completion properties the asset repository
//! reads. The [`WorkflowConsumer`](super::WorkflowConsumer) is its only user, on a worker and
//! on a leader processing locally alike. It knows the protocol and the engine, nothing of
//! queues, stores or processes.

use crate::protocol::profile::JobProfile;
use crate::protocol::workflow::{ImageFormat, Rendition, Step, WorkflowModel};
use crate::protocol::Properties;
use offloader_renditions::{EngineError, Format, Limits, RenditionSpec};
use serde_json::{json, Map, Value};

/// Completion property holding the extracted metadata (an object).
pub const METADATA_PROPERTY: &str = "metadata";
/// Completion property holding `{"<rendition>": {"width": W, "height": H}}`.
pub const RENDITIONS_PROPERTY: &str = "renditions";

/// Why a model cannot run here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The model hands its work to yet another process; running it here would loop.
    #[error("model {0} offloads again; it cannot run in this process")]
    OffloadsAgain(String),
    /// Two renditions would be stored at one path.
    #[error("processing profile {profile}: rendition {name:?} is already one of the model's")]
    ProfileClash { profile: String, name: String },
}

/// What a model asks of the engine: the renditions, in order, and whether to keep metadata.
#[derive(Debug, Clone)]
pub struct Plan {
    specs: Vec<RenditionSpec>,
    metadata: bool,
}

/// One encoded rendition, ready to store.
#[derive(Debug)]
pub struct Rendered {
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub mime_type: &'static str,
    pub bytes: Vec<u8>,
}

/// The engine's result for one asset.
#[derive(Debug)]
pub struct Processed {
    /// The metadata, when the model has a metadata step.
    pub metadata: Option<Value>,
    pub renditions: Vec<Rendered>,
}

impl Plan {
    pub fn of(model: &WorkflowModel) -> Result<Plan, PlanError> {
        let mut plan = Plan { specs: Vec::new(), metadata: false };
        for step in &model.steps {
            match step {
                Step::Metadata {} => plan.metadata = true,
                Step::Renditions { renditions } => plan.specs.extend(renditions.iter().map(spec)),
                Step::Offload(_) => return Err(PlanError::OffloadsAgain(model.id.clone())),
            }
        }
        Ok(plan)
    }

    /// Adds a processing profile's renditions after the model's, so the standard renditions
    /// come first whatever the profile says.
    pub fn with_profile(mut self, profile: &JobProfile) -> Result<Plan, PlanError> {
        for r in &profile.renditions {
            if self.specs.iter().any(|s| s.name == r.name) {
                return Err(PlanError::ProfileClash { profile: profile.name.clone(), name: r.name.clone() });
            }
            self.specs.push(spec(r));
        }
        Ok(self)
    }

    /// How many renditions the plan makes.
    pub fn renditions(&self) -> usize {
        self.specs.len()
    }

    /// Runs the engine: CPU-bound for up to a second on a large photo, so callers run it on a
    /// blocking thread. A model without renditions only reads the headers.
    pub fn run(&self, input: &[u8], limits: &Limits) -> Result<Processed, EngineError> {
        let (metadata, renditions) = if self.specs.is_empty() {
            (offloader_renditions::extract_metadata(input, limits)?, Vec::new())
        } else {
            let out = offloader_renditions::process(input, &self.specs, limits)?;
            (out.metadata, out.renditions)
        };
        Ok(Processed {
            // Plain data always serializes; Null would only leave the asset's metadata as it was.
            metadata: self.metadata.then(|| serde_json::to_value(&metadata).unwrap_or(Value::Null)),
            renditions: renditions
                .into_iter()
                .map(|r| Rendered {
                    name: r.name,
                    width: r.width,
                    height: r.height,
                    mime_type: r.mime_type,
                    bytes: r.bytes,
                })
                .collect(),
        })
    }
}

impl Processed {
    /// The completion properties the asset repository reads besides the outputs themselves:
    /// the metadata (if extracted) and each rendition's pixel size.
    pub fn properties(&self) -> Properties {
        let sizes: Map<String, Value> =
            self.renditions.iter().map(|r| (r.name.clone(), json!({ "width": r.width, "height": r.height }))).collect();
        let mut props = Properties::new();
        if let Some(m) = &self.metadata {
            props.insert(METADATA_PROPERTY.into(), m.clone());
        }
        props.insert(RENDITIONS_PROPERTY.into(), Value::Object(sizes));
        props
    }
}

/// The reason recorded when the engine refuses an asset: a stable label, the asset, the
/// engine's words, e.g. `SourceUnsupported: /content/dam/a.psd: unsupported input: ...`.
pub fn refusal(asset: &str, e: &EngineError) -> String {
    let label = match e.code() {
        "unsupported" => "SourceUnsupported",
        "too_large" | "input_too_large" | "alloc_limit" => "SourceTooLarge",
        "truncated" | "corrupt" => "SourceCorrupt",
        "invalid_spec" => "InvalidRendition",
        "timeout" => "SourceTimeout",
        "io" => "EngineFailure",
        "tool_missing" => "ToolMissing",
        _ => "EngineFailure",
    };
    format!("{label}: {asset}: {e}")
}

/// The engine's spec for one rendition of a model.
fn spec(r: &Rendition) -> RenditionSpec {
    let format = match r.format {
        ImageFormat::Png => Format::Png,
        ImageFormat::Jpeg => Format::Jpeg { quality: r.quality.unwrap_or(offloader_renditions::DEFAULT_JPEG_QUALITY) },
        ImageFormat::Webp => Format::WebP,
        ImageFormat::Gif => Format::Gif,
    };
    RenditionSpec::new(r.name.clone(), r.width, r.height, format)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::workflow::{dam_update_asset, dam_update_asset_offloading};

    fn png(width: u32, height: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(width, height, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 90]));
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    }

    #[test]
    fn dam_update_asset_yields_metadata_and_four_sized_renditions() {
        let plan = Plan::of(&dam_update_asset()).unwrap();
        let done = plan.run(&png(400, 200), &Limits::default()).unwrap();
        let props = done.properties();
        assert_eq!(props[METADATA_PROPERTY]["width"], 400);
        let sizes = &props[RENDITIONS_PROPERTY];
        assert_eq!(sizes["cq5dam.thumbnail.48.48.png"], json!({"width": 48, "height": 24}));
        assert_eq!(sizes["cq5dam.web.1280.1280.jpeg"], json!({"width": 400, "height": 200}), "never upscaled");
        assert_eq!(done.renditions.len(), 4);
    }

    #[test]
    fn a_profile_adds_renditions_in_its_formats_after_the_models() {
        let profile = crate::protocol::ProcessingProfile {
            name: "web".into(),
            renditions: vec![crate::protocol::ProfileRendition {
                name: "small.gif".into(),
                format: ImageFormat::Gif,
                width: 100,
                height: 100,
                quality: None,
                include_mime_types: Vec::new(),
                exclude_mime_types: Vec::new(),
            }],
            fpo: true,
        }
        .for_asset("image/png")
        .unwrap();
        let plan = Plan::of(&dam_update_asset()).unwrap().with_profile(&profile).unwrap();
        let done = plan.run(&png(400, 200), &Limits::default()).unwrap();
        let names: Vec<&str> = done.renditions.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names[4..], ["small.gif", "cq5dam.fpo.jpeg"]);
        assert!(done.renditions[4].bytes.starts_with(b"GIF8"));
        assert_eq!((done.renditions[4].width, done.renditions[4].height), (100, 50));
        assert_eq!(done.renditions[5].mime_type, "image/jpeg");

        let mut clash = profile.clone();
        clash.renditions[0].name = "cq5dam.thumbnail.48.48.png".into();
        let e = Plan::of(&dam_update_asset()).unwrap().with_profile(&clash).unwrap_err();
        assert!(e.to_string().contains("already one of the model's"), "{e}");
    }

    #[test]
    fn an_offloading_model_cannot_run_in_process() {
        let e = Plan::of(&dam_update_asset_offloading()).unwrap_err();
        assert!(e.to_string().contains("offloads again"), "{e}");
    }

    #[test]
    fn bad_bytes_are_a_typed_error() {
        let plan = Plan::of(&dam_update_asset()).unwrap();
        assert!(plan.run(b"not an image at all", &Limits::default()).is_err());
    }
}
