//! Assets on the leader: the repository of assets ([`AssetRepository`], documents in the
//! ledger kept in step with their workflow jobs), the one entry point of every ingestion hook
//! ([`Ingestor`]), the processing profiles of folders ([`ProfileStore`]), and the watch folder
//! hook ([`watch`]).

mod ingest;
pub mod mime;
mod profiles;
mod repository;
pub mod watch;

pub use ingest::{IngestError, Ingestor};
pub use profiles::{ProfileStore, ProfileStoreError};
pub use repository::{AssetProjection, AssetRepository, ResolveError};
pub use watch::WatchConfig;
