//! The protocol: what a job is, how topics are named and matched, and the messages
//! that cross process boundaries. Everything here is plain data and pure logic;
//! nothing imports the runtime.

pub mod api;
pub mod asset_path;
pub mod blob;
pub mod enablement;
pub mod instance;
pub mod job;
pub mod message;
pub mod offloading;
pub mod topic;
pub mod trace;
pub mod workflow;

pub use asset_path::{AssetPath, PathError};
pub use blob::{BlobRef, Sha256Hex};
pub use enablement::{Enablement, EnablementChange, TopicState};
pub use instance::{InstanceId, InstanceInfo, Role};
pub use job::{Job, JobId, JobResult, JobState, PayloadEntry, Properties};
pub use offloading::OffloadingJob;
pub use topic::{Topic, TopicError, TopicPattern};
pub use trace::TraceContext;
pub use workflow::{ModelError, Step, WorkflowModel};
