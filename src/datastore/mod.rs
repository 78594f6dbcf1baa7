//! The shared datastore: content-addressed blobs that leaders and workers exchange by reference.
//!
//! Messages never carry bytes (AEM's "shared datastore + binary-less replication"): they carry a
//! [`BlobRef`], the sha256 and size of the content. A blob's key is derived from its hash, so
//!
//! - storing the same content twice stores nothing new ([`Stored::uploaded`] says which),
//! - a blob is never overwritten, so any number of workers may store the same output at once,
//! - every reader verifies what it fetched against the reference ([`DatastoreError::Corrupt`]).
//!
//! Two implementations of [`BlobStore`] to deploy: [`S3BlobStore`] (any S3-compatible server:
//! MinIO in production, SeaweedFS on development and CI machines) and [`FsBlobStore`] (a shared
//! directory, like AEM's FileDataStore); [`open`] picks one from a [`DatastoreConfig`].
//! [`MemoryBlobStore`] keeps blobs in memory, for tests of consumers.
//!
//! Layout, the same in both: `<namespace>/blobs/<first two hex digits>/<sha256>`. The two-digit
//! fan-out keeps directories small; the namespace isolates tenants and test runs.

mod config;
mod digest;
mod error;
mod fs;
mod memory;
mod s3;

pub use config::{DatastoreConfig, Location};
pub use digest::{hash_bytes, hash_file, BlobHasher};
pub use error::DatastoreError;
pub use fs::FsBlobStore;
pub use memory::MemoryBlobStore;
pub use s3::S3BlobStore;

use crate::protocol::blob::{BlobRef, Sha256Hex};
use async_trait::async_trait;
use bytes::Bytes;
use std::path::Path;
use std::sync::Arc;
use tokio::io::AsyncRead;

/// The result of storing content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The reference naming what was stored.
    pub blob: BlobRef,
    /// False when the blob was already there and nothing was transferred.
    pub uploaded: bool,
}

/// A content-addressed blob store. Every method is safe to call concurrently, from any number
/// of processes sharing the same store.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Stores bytes already in memory.
    async fn put_bytes(&self, bytes: Bytes) -> Result<Stored, DatastoreError>;

    /// Stores a file's content, streaming it: memory use does not grow with the file's size.
    /// The file must not change while it is being stored (if it does, nothing is stored and
    /// [`DatastoreError::SourceChanged`] is returned).
    async fn put_file(&self, path: &Path) -> Result<Stored, DatastoreError>;

    /// Stores everything `reader` yields (e.g. an HTTP upload body), spooling it to a
    /// temporary file while hashing, since the key is only known at the end.
    async fn put_reader(&self, reader: Box<dyn AsyncRead + Send + Unpin>) -> Result<Stored, DatastoreError>;

    /// Whether the blob is in the store.
    async fn contains(&self, blob: &BlobRef) -> Result<bool, DatastoreError>;

    /// Fetches a blob into memory, refusing blobs larger than `max_size` before fetching, and
    /// verifying size and sha256.
    async fn get_bytes(&self, blob: &BlobRef, max_size: u64) -> Result<Bytes, DatastoreError>;

    /// Streams a blob to `dest` (replacing it), verified: `dest` appears only once the whole
    /// content has been checked, so a failed or corrupt download leaves no partial file.
    async fn get_to_file(&self, blob: &BlobRef, dest: &Path) -> Result<(), DatastoreError>;

    /// Where this store keeps its blobs, for logs (never includes secrets).
    fn describe(&self) -> String;
}

/// The key (relative path) of a blob: `<namespace>/blobs/<ab>/<sha256>`, or `blobs/<ab>/<sha256>`
/// without a namespace.
pub fn blob_key(namespace: &str, sha256: &Sha256Hex) -> String {
    let hex = sha256.as_str();
    if namespace.is_empty() {
        format!("blobs/{}/{hex}", &hex[..2])
    } else {
        format!("{namespace}/blobs/{}/{hex}", &hex[..2])
    }
}

/// Opens the datastore `cfg` names and checks it is reachable (the bucket exists and answers,
/// or the directory exists), so a misconfiguration fails at startup, naming the endpoint,
/// rather than at the first job.
pub async fn open(cfg: &DatastoreConfig) -> Result<Arc<dyn BlobStore>, DatastoreError> {
    match cfg.location()? {
        Location::S3 { bucket } => Ok(Arc::new(S3BlobStore::open(cfg, bucket).await?)),
        Location::Dir { root } => Ok(Arc::new(FsBlobStore::open(root, &cfg.namespace).await?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_fan_out_by_the_first_two_hex_digits() {
        let sha: Sha256Hex = format!("ab{}", "0".repeat(62)).parse().unwrap();
        assert_eq!(blob_key("", &sha), format!("blobs/ab/{sha}"));
        assert_eq!(blob_key("t/1", &sha), format!("t/1/blobs/ab/{sha}"));
    }
}
