//! The documents of the leader's HTTP API: what `GET /api/jobs/{id}`, `GET /api/assets/...`
//! and `GET /api/topics` answer, and what the CLI and other clients read back.
//!
//! They are plain data, like the wire messages, so a client (the `offloader` CLI, the bench,
//! a script) can read them without linking the leader. The rules that change a job record
//! live with the leader (`leader::jobs::lifecycle`); the shapes live here. The OpenAPI
//! document the leader serves at `/api/openapi.json` is generated from these types.

mod asset;
mod dead_letter;
mod job_record;
mod profile;
mod schedule;
mod stats;
mod topics;
mod topology;

pub use asset::{
    Asset, AssetChange, AssetEntry, AssetFolder, AssetJob, FolderEntry, IngestOutcome, RenditionRecord, StartedJob,
};
pub use dead_letter::{DeadLetterList, DeadLetterView, FailedReplay, ReplayedDeadLetters, DEAD_LETTER_PREVIEW_BYTES};
pub use job_record::{JobCount, JobEvent, JobList, JobRecord, RemovedJobs, RetriedJobs, WorkerRef};
pub use profile::{ApplyProfile, FolderProfile, ProfileList, RemovedProfile, ResolvedProfile};
pub use schedule::{NewSchedule, Schedule, ScheduleList};
pub use stats::{JobStatistics, SeriesBucket, StatsReport, StatsSeries, TopicRate};
pub use topics::{QueueView, TopicsReport};
pub use topology::{
    ClusterView, ConsumerView, EventKind, InstanceView, RefusedInstance, TopologyEvent, TopologyReport, TopologyState,
};

use serde::{Deserialize, Serialize};

/// Every error answer of the API: `{"error": "<what went wrong and what to do>"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: String,
}
