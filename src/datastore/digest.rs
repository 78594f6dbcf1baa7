//! Streaming sha256: naming content as it flows, and checking what we read against its name.
//!
//! Everything here reads in fixed-size chunks, so hashing or verifying a blob takes the same
//! small amount of memory whatever its size.

use super::DatastoreError;
use crate::protocol::blob::{BlobRef, Sha256Hex};
use bytes::{Bytes, BytesMut};
use sha2::{Digest, Sha256};
use std::path::Path;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Read size for streaming; large enough to keep syscalls rare, small enough to stay cheap.
pub(crate) const CHUNK: usize = 256 * 1024;

/// A sha256 being computed over a stream, with the byte count.
#[derive(Default, Clone)]
pub struct BlobHasher {
    sha: Sha256,
    size: u64,
}

impl BlobHasher {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn update(&mut self, data: &[u8]) {
        self.sha.update(data);
        self.size += data.len() as u64;
    }

    /// Bytes seen so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The reference naming everything seen.
    pub fn finish(self) -> BlobRef {
        let digest: [u8; 32] = self.sha.finalize().into();
        BlobRef { sha256: Sha256Hex::from_digest(&digest), size: self.size }
    }
}

/// The reference naming `data`.
pub fn hash_bytes(data: &[u8]) -> BlobRef {
    let mut h = BlobHasher::new();
    h.update(data);
    h.finish()
}

/// Like [`hash_bytes`], on a blocking thread when the data is big enough to stall the runtime.
pub(crate) async fn hash_bytes_off_thread(data: &Bytes) -> Result<BlobRef, DatastoreError> {
    if data.len() < 1024 * 1024 {
        return Ok(hash_bytes(data));
    }
    let data = data.clone(); // a reference count, not a copy
    tokio::task::spawn_blocking(move || hash_bytes(&data))
        .await
        .map_err(|e| DatastoreError::io("hashing", std::io::Error::other(e)))
}

/// The reference naming a file's content, read in chunks.
pub async fn hash_file(path: &Path) -> Result<BlobRef, DatastoreError> {
    let context = || format!("hashing {}", path.display());
    let mut file = tokio::fs::File::open(path).await.map_err(|e| DatastoreError::io(context(), e))?;
    let mut hasher = BlobHasher::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = file.read(&mut buf).await.map_err(|e| DatastoreError::io(context(), e))?;
        if n == 0 {
            return Ok(hasher.finish());
        }
        hasher.update(&buf[..n]);
    }
}

/// Copies `reader` into `writer`, hashing on the way; returns the reference of what was copied.
/// `context` names the copy in I/O errors.
pub async fn copy_hashing<R, W>(reader: &mut R, writer: &mut W, context: &str) -> Result<BlobRef, DatastoreError>
where
    R: AsyncRead + Unpin + ?Sized,
    W: AsyncWrite + Unpin + ?Sized,
{
    let mut hasher = BlobHasher::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = reader.read(&mut buf).await.map_err(|e| DatastoreError::io(format!("{context}: reading"), e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        writer.write_all(&buf[..n]).await.map_err(|e| DatastoreError::io(format!("{context}: writing"), e))?;
    }
    writer.flush().await.map_err(|e| DatastoreError::io(format!("{context}: writing"), e))?;
    Ok(hasher.finish())
}

/// Reads the blob `expected` from `reader` into memory and checks it.
///
/// Reads at most one byte more than `expected.size`, so a blob that grew behind the store's
/// back cannot make us allocate more than the caller agreed to.
pub async fn read_verified<R>(reader: &mut R, expected: &BlobRef, key: &str) -> Result<Bytes, DatastoreError>
where
    R: AsyncRead + Unpin + ?Sized,
{
    let size = usize::try_from(expected.size)
        .map_err(|_| DatastoreError::TooLarge { size: expected.size, max: usize::MAX as u64 })?;
    let mut out = BytesMut::with_capacity(size);
    let mut hasher = BlobHasher::new();
    let mut limited = reader.take(expected.size + 1);
    let mut buf = vec![0u8; CHUNK.min(size + 1)];
    loop {
        let n = limited.read(&mut buf).await.map_err(|e| DatastoreError::io(format!("reading blob {key}"), e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.extend_from_slice(&buf[..n]);
    }
    check(expected, hasher, key)?;
    Ok(out.freeze())
}

/// Streams the blob `expected` from `reader` into `writer`, checking it; the caller must
/// discard what was written when this fails.
pub async fn copy_verified<R, W>(
    reader: &mut R,
    writer: &mut W,
    expected: &BlobRef,
    key: &str,
) -> Result<(), DatastoreError>
where
    R: AsyncRead + Unpin + ?Sized,
    W: AsyncWrite + Unpin + ?Sized,
{
    let mut limited = reader.take(expected.size + 1);
    let mut hasher = BlobHasher::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = limited.read(&mut buf).await.map_err(|e| DatastoreError::io(format!("reading blob {key}"), e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        if hasher.size() > expected.size {
            break; // too long: corrupt; no need to write the excess
        }
        writer.write_all(&buf[..n]).await.map_err(|e| DatastoreError::io(format!("writing blob {key}"), e))?;
    }
    check(expected, hasher, key)?;
    writer.flush().await.map_err(|e| DatastoreError::io(format!("writing blob {key}"), e))
}

/// Compares what was read with what was expected.
fn check(expected: &BlobRef, hasher: BlobHasher, key: &str) -> Result<(), DatastoreError> {
    if hasher.size() > expected.size {
        return Err(corrupt(key, expected, format!("more than {} bytes", expected.size)));
    }
    let actual = hasher.finish();
    if actual != *expected {
        let found = format!("sha256 {} and {} bytes", actual.sha256, actual.size);
        return Err(corrupt(key, expected, found));
    }
    Ok(())
}

pub(crate) fn corrupt(key: &str, expected: &BlobRef, actual: String) -> DatastoreError {
    DatastoreError::Corrupt { key: key.to_owned(), expected: expected.clone(), actual }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_known_vector() {
        let r = hash_bytes(b"abc");
        assert_eq!(r.sha256.as_str(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(r.size, 3);
    }

    #[tokio::test]
    async fn read_verified_rejects_longer_and_different_content() {
        let expected = hash_bytes(b"hello");
        let ok = read_verified(&mut &b"hello"[..], &expected, "k").await;
        assert_eq!(ok.ok().as_deref(), Some(&b"hello"[..]));
        let longer = read_verified(&mut &b"hello world"[..], &expected, "k").await;
        assert!(matches!(longer, Err(DatastoreError::Corrupt { .. })));
        let other = read_verified(&mut &b"jello"[..], &expected, "k").await;
        assert!(matches!(other, Err(DatastoreError::Corrupt { .. })));
        let shorter = read_verified(&mut &b"hell"[..], &expected, "k").await;
        assert!(matches!(shorter, Err(DatastoreError::Corrupt { .. })));
    }
}
