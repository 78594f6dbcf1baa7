//! The protocol: what a job is, how topics are named and matched, and the messages
//! that cross process boundaries. Everything here is plain data and pure logic;
//! nothing imports the runtime.

/// Gives a type that travels as a validated string its OpenAPI schema: a string with a
/// description and the pattern its parser enforces.
macro_rules! text_schema {
    ($ty:ty, $description:expr, $pattern:expr) => {
        impl utoipa::PartialSchema for $ty {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .description(Some($description))
                    .pattern(Some($pattern))
                    .into()
            }
        }
        impl utoipa::ToSchema for $ty {}
    };
}

pub mod api;
pub mod asset_path;
pub mod blob;
pub mod enablement;
pub mod instance;
pub mod job;
pub mod job_query;
pub mod message;
pub mod offloading;
pub mod profile;
pub mod progress;
pub mod rfc3339;
pub mod topic;
pub mod trace;
pub mod workflow;

pub use asset_path::{AssetPath, PathError};
pub use blob::{BlobRef, Sha256Hex};
pub use enablement::{Enablement, EnablementChange, TopicState};
pub use instance::{InstanceId, InstanceInfo, Role};
pub use job::{Job, JobId, JobResult, JobState, PayloadEntry, Properties};
pub use job_query::{JobKind, PropertyTemplate};
pub use offloading::OffloadingJob;
pub use profile::{JobProfile, ProcessingProfile, ProfileRendition};
pub use progress::Progress;
pub use topic::{Topic, TopicError, TopicPattern};
pub use trace::TraceContext;
pub use workflow::{ModelError, Step, WorkflowModel};
