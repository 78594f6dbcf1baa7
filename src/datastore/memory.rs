//! A datastore in this process's memory: for unit tests of consumers
//! ([`crate::consumer::testing`]) and anything else that wants the datastore's contract with
//! nothing to run. It keeps every blob until dropped, so it is no place for real volumes.

use super::digest::{copy_hashing, hash_bytes};
use super::{BlobStore, DatastoreError, Stored};
use crate::protocol::blob::{BlobRef, Sha256Hex};
use async_trait::async_trait;
use bytes::Bytes;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use tokio::io::AsyncRead;

/// Blobs in a map from digest to bytes.
#[derive(Debug, Default)]
pub struct MemoryBlobStore {
    blobs: Mutex<HashMap<Sha256Hex, Bytes>>,
}

impl MemoryBlobStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores `bytes` and names them, synchronously (for setting up tests).
    pub fn insert(&self, bytes: Bytes) -> BlobRef {
        let blob = hash_bytes(&bytes);
        self.lock().entry(blob.sha256.clone()).or_insert(bytes);
        blob
    }

    /// The bytes of `blob`, if stored.
    pub fn bytes(&self, blob: &BlobRef) -> Option<Bytes> {
        self.lock().get(&blob.sha256).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Sha256Hex, Bytes>> {
        self.blobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn key(blob: &BlobRef) -> String {
        super::blob_key("", &blob.sha256)
    }
}

#[async_trait]
impl BlobStore for MemoryBlobStore {
    async fn put_bytes(&self, bytes: Bytes) -> Result<Stored, DatastoreError> {
        let blob = hash_bytes(&bytes);
        let uploaded = self.lock().insert(blob.sha256.clone(), bytes).is_none();
        Ok(Stored { blob, uploaded })
    }

    async fn put_file(&self, path: &Path) -> Result<Stored, DatastoreError> {
        let bytes =
            tokio::fs::read(path).await.map_err(|e| DatastoreError::io(format!("reading {}", path.display()), e))?;
        self.put_bytes(bytes.into()).await
    }

    async fn put_reader(&self, mut reader: Box<dyn AsyncRead + Send + Unpin>) -> Result<Stored, DatastoreError> {
        let mut buf = Vec::new();
        copy_hashing(&mut *reader, &mut buf, "reading a stream").await?;
        self.put_bytes(buf.into()).await
    }

    async fn contains(&self, blob: &BlobRef) -> Result<bool, DatastoreError> {
        Ok(self.lock().get(&blob.sha256).is_some_and(|b| b.len() as u64 == blob.size))
    }

    async fn get_bytes(&self, blob: &BlobRef, max_size: u64) -> Result<Bytes, DatastoreError> {
        if blob.size > max_size {
            return Err(DatastoreError::TooLarge { size: blob.size, max: max_size });
        }
        let bytes = self
            .bytes(blob)
            .ok_or_else(|| DatastoreError::NotFound { key: Self::key(blob), store: self.describe() })?;
        if bytes.len() as u64 != blob.size {
            return Err(super::digest::corrupt(&Self::key(blob), blob, format!("{} bytes", bytes.len())));
        }
        Ok(bytes)
    }

    async fn get_to_file(&self, blob: &BlobRef, dest: &Path) -> Result<(), DatastoreError> {
        let bytes = self.get_bytes(blob, u64::MAX).await?;
        tokio::fs::write(dest, &bytes).await.map_err(|e| DatastoreError::io(format!("writing {}", dest.display()), e))
    }

    fn describe(&self) -> String {
        "memory".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keeps_the_contract() {
        let store = MemoryBlobStore::new();
        let first = store.put_bytes(Bytes::from_static(b"hello")).await.unwrap();
        assert!(first.uploaded);
        assert!(!store.put_bytes(Bytes::from_static(b"hello")).await.unwrap().uploaded);
        assert_eq!(store.get_bytes(&first.blob, 5).await.unwrap(), "hello");
        assert!(matches!(store.get_bytes(&first.blob, 4).await, Err(DatastoreError::TooLarge { .. })));
        let other = hash_bytes(b"other");
        assert!(matches!(store.get_bytes(&other, 99).await, Err(DatastoreError::NotFound { .. })));
        assert!(!store.contains(&other).await.unwrap());
    }
}
