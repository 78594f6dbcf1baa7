//! What can go wrong when storing or fetching a blob.
//!
//! Every variant names where it happened (the endpoint, the bucket or directory, the key), so
//! a log line alone tells an operator which store is down or which blob is bad.

use crate::protocol::blob::BlobRef;
use std::io;

/// An error from a [`BlobStore`](super::BlobStore).
#[derive(Debug, thiserror::Error)]
pub enum DatastoreError {
    /// The store could not be reached at all (connection refused, timeout, DNS, missing mount):
    /// usually an outage, worth retrying later.
    #[error("datastore at {endpoint} is unreachable: {cause}")]
    Unreachable { endpoint: String, cause: String },

    /// The bucket (or shared directory) the configuration names does not exist.
    #[error("{what} does not exist at {endpoint}")]
    Missing { what: String, endpoint: String },

    /// No blob under this key.
    #[error("blob {key} not found in {store}")]
    NotFound { key: String, store: String },

    /// What was read does not hash to what the reference says: the blob was damaged or replaced
    /// behind the store's back, or the transfer was cut short. Never retried silently.
    #[error("blob {key} is corrupt: expected sha256 {} and {} bytes, found {actual}", expected.sha256, expected.size)]
    Corrupt { key: String, expected: BlobRef, actual: String },

    /// The blob is bigger than the caller accepts (checked before anything is fetched).
    #[error("blob of {size} bytes exceeds the limit of {max} bytes")]
    TooLarge { size: u64, max: u64 },

    /// A file given to `put_file` changed between hashing and uploading.
    #[error("{path} changed while it was being stored; not stored")]
    SourceChanged { path: String },

    /// A local I/O error (temp files, the shared directory, a body cut mid-stream).
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },

    /// S3 answered with an error (access denied, bad request, ...).
    #[error("S3 {operation} at {endpoint} failed: {cause}")]
    S3 { operation: &'static str, endpoint: String, cause: String },

    /// The datastore configuration is unusable.
    #[error("datastore configuration: {0}")]
    Config(String),
}

impl DatastoreError {
    /// Wraps an I/O error with what we were doing.
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        DatastoreError::Io { context: context.into(), source }
    }

    /// True for errors that may go away by themselves (an outage, a cut connection), so a
    /// caller may retry the whole operation later; false for errors that will not.
    pub fn is_transient(&self) -> bool {
        matches!(self, DatastoreError::Unreachable { .. } | DatastoreError::Io { .. })
    }
}
