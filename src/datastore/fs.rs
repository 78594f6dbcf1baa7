//! A datastore in a shared directory, like AEM's FileDataStore: every instance mounts the same
//! directory (NFS, a volume) and reads and writes blobs as files.
//!
//! Content is written to a temporary file under `<namespace>/tmp/` and then renamed into place
//! without replacing anything (`rename` with no-clobber semantics), so a reader never sees a
//! half-written blob, a crash leaves debris only in `tmp/`, and concurrent writers of the same
//! content cannot damage each other: the first rename wins, the others find it there.

use super::digest::{copy_hashing, copy_verified, corrupt, hash_bytes_off_thread, hash_file, read_verified};
use super::{blob_key, BlobStore, DatastoreError, Stored};
use crate::protocol::blob::BlobRef;
use async_trait::async_trait;
use bytes::Bytes;
use std::io;
use std::path::{Path, PathBuf};
use tempfile::TempPath;
use tokio::io::AsyncRead;

/// Blobs stored as files under `<root>/<namespace>/blobs/<ab>/<sha256>`.
#[derive(Debug, Clone)]
pub struct FsBlobStore {
    root: PathBuf,
    namespace: String,
    /// `<root>/<namespace>`, where `blobs/` and `tmp/` live.
    base: PathBuf,
}

impl FsBlobStore {
    /// Opens the store. `root` must already exist: an unmounted share must fail loudly rather
    /// than silently fill the local disk. The namespace's directories are created as needed.
    pub async fn open(root: PathBuf, namespace: &str) -> Result<Self, DatastoreError> {
        match tokio::fs::metadata(&root).await {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(DatastoreError::Config(format!("{} is not a directory", root.display()))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(DatastoreError::Missing {
                    what: "datastore directory".into(),
                    endpoint: root.display().to_string(),
                })
            }
            Err(e) => {
                return Err(DatastoreError::Unreachable { endpoint: root.display().to_string(), cause: e.to_string() })
            }
        }
        let base = if namespace.is_empty() { root.clone() } else { root.join(namespace) };
        let store = FsBlobStore { root, namespace: namespace.to_owned(), base };
        for dir in [store.base.join("blobs"), store.tmp_dir()] {
            tokio::fs::create_dir_all(&dir)
                .await
                .map_err(|e| DatastoreError::io(format!("creating {}", dir.display()), e))?;
        }
        Ok(store)
    }

    /// The file holding `blob` (whether or not it exists).
    pub fn blob_path(&self, blob: &BlobRef) -> PathBuf {
        self.root.join(blob_key(&self.namespace, &blob.sha256))
    }

    fn tmp_dir(&self) -> PathBuf {
        self.base.join("tmp")
    }

    fn key(&self, blob: &BlobRef) -> String {
        self.blob_path(blob).display().to_string()
    }

    async fn exists(&self, blob: &BlobRef) -> Result<bool, DatastoreError> {
        let path = self.blob_path(blob);
        tokio::fs::try_exists(&path).await.map_err(|e| DatastoreError::io(format!("checking {}", path.display()), e))
    }

    /// Moves a complete, verified temporary file into place as `blob`, unless it is already
    /// there. Returns whether this call stored it.
    async fn commit(&self, temp: TempPath, blob: &BlobRef) -> Result<bool, DatastoreError> {
        let dest = self.blob_path(blob);
        let parent = dest.parent().map(Path::to_path_buf).unwrap_or_default();
        tokio::fs::create_dir_all(&parent)
            .await
            .map_err(|e| DatastoreError::io(format!("creating {}", parent.display()), e))?;
        let target = dest.clone();
        let outcome = tokio::task::spawn_blocking(move || temp.persist_noclobber(&target))
            .await
            .map_err(|e| DatastoreError::io("storing a blob", io::Error::other(e)))?;
        match outcome {
            Ok(()) => Ok(true),
            // Someone stored the same content first; ours is dropped (and deleted).
            Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(DatastoreError::io(format!("renaming into {}", dest.display()), e.error)),
        }
    }

    /// Copies `reader` into a temporary file, returning it with the reference of its content.
    async fn spool(
        &self,
        reader: &mut (dyn AsyncRead + Send + Unpin),
        what: &str,
    ) -> Result<(TempPath, BlobRef), DatastoreError> {
        let (mut file, temp) = temp_file_in(&self.tmp_dir()).await?;
        let blob = copy_hashing(reader, &mut file, what).await?;
        file.sync_all().await.map_err(|e| DatastoreError::io(format!("{what}: syncing"), e))?;
        Ok((temp, blob))
    }
}

#[async_trait]
impl BlobStore for FsBlobStore {
    async fn put_bytes(&self, bytes: Bytes) -> Result<Stored, DatastoreError> {
        let blob = hash_bytes_off_thread(&bytes).await?;
        if self.exists(&blob).await? {
            return Ok(Stored { blob, uploaded: false });
        }
        let (temp, _) = self.spool(&mut &bytes[..], "storing bytes").await?;
        let uploaded = self.commit(temp, &blob).await?;
        Ok(Stored { blob, uploaded })
    }

    async fn put_file(&self, path: &Path) -> Result<Stored, DatastoreError> {
        // Hash first (a read) so content already stored costs no write at all.
        let blob = hash_file(path).await?;
        if self.exists(&blob).await? {
            return Ok(Stored { blob, uploaded: false });
        }
        let mut source = tokio::fs::File::open(path)
            .await
            .map_err(|e| DatastoreError::io(format!("opening {}", path.display()), e))?;
        let what = format!("storing {}", path.display());
        let (temp, copied) = self.spool(&mut source, &what).await?;
        if copied != blob {
            return Err(DatastoreError::SourceChanged { path: path.display().to_string() });
        }
        let uploaded = self.commit(temp, &blob).await?;
        Ok(Stored { blob, uploaded })
    }

    async fn put_reader(&self, mut reader: Box<dyn AsyncRead + Send + Unpin>) -> Result<Stored, DatastoreError> {
        // Spooled straight into the store's own tmp/: same file system, so committing is a rename.
        let (temp, blob) = self.spool(&mut *reader, "storing a stream").await?;
        let uploaded = self.commit(temp, &blob).await?;
        Ok(Stored { blob, uploaded })
    }

    async fn contains(&self, blob: &BlobRef) -> Result<bool, DatastoreError> {
        self.exists(blob).await
    }

    async fn get_bytes(&self, blob: &BlobRef, max_size: u64) -> Result<Bytes, DatastoreError> {
        if blob.size > max_size {
            return Err(DatastoreError::TooLarge { size: blob.size, max: max_size });
        }
        let mut file = self.open_blob(blob).await?;
        read_verified(&mut file, blob, &self.key(blob)).await
    }

    async fn get_to_file(&self, blob: &BlobRef, dest: &Path) -> Result<(), DatastoreError> {
        let mut file = self.open_blob(blob).await?;
        let key = self.key(blob);
        download_to(&mut file, blob, &key, dest).await
    }

    fn describe(&self) -> String {
        format!("directory {}", self.base.display())
    }
}

impl FsBlobStore {
    /// Opens a blob's file, checking its size before anything is read.
    async fn open_blob(&self, blob: &BlobRef) -> Result<tokio::fs::File, DatastoreError> {
        let path = self.blob_path(blob);
        let file = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(DatastoreError::NotFound {
                    key: blob_key(&self.namespace, &blob.sha256),
                    store: self.describe(),
                })
            }
            Err(e) => return Err(DatastoreError::io(format!("opening {}", path.display()), e)),
        };
        let len =
            file.metadata().await.map_err(|e| DatastoreError::io(format!("reading {}", path.display()), e))?.len();
        if len != blob.size {
            return Err(corrupt(&self.key(blob), blob, format!("{len} bytes")));
        }
        Ok(file)
    }
}

/// Streams `blob` from `reader` to `dest`, verified, through a temporary file beside `dest` that
/// replaces it only once complete and correct.
pub(crate) async fn download_to(
    reader: &mut (dyn AsyncRead + Send + Unpin),
    blob: &BlobRef,
    key: &str,
    dest: &Path,
) -> Result<(), DatastoreError> {
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let (mut file, temp) = temp_file_in(&dir).await?;
    copy_verified(reader, &mut file, blob, key).await?;
    file.sync_all().await.map_err(|e| DatastoreError::io(format!("writing {}", dest.display()), e))?;
    drop(file);
    let target = dest.to_path_buf();
    tokio::task::spawn_blocking(move || temp.persist(&target))
        .await
        .map_err(|e| DatastoreError::io("moving a download into place", io::Error::other(e)))?
        .map_err(|e| DatastoreError::io(format!("moving into {}", dest.display()), e.error))
}

/// A new temporary file in `dir` (deleted unless persisted), readable by others like any file a
/// shared store or a user expects (tempfile creates them 0600).
pub(crate) async fn temp_file_in(dir: &Path) -> Result<(tokio::fs::File, TempPath), DatastoreError> {
    let dir = dir.to_path_buf();
    let made = tokio::task::spawn_blocking(move || {
        let temp = tempfile::Builder::new()
            .prefix(".offloader-")
            .tempfile_in(&dir)
            .map_err(|e| DatastoreError::io(format!("creating a temp file in {}", dir.display()), e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            temp.as_file()
                .set_permissions(std::fs::Permissions::from_mode(0o644))
                .map_err(|e| DatastoreError::io("setting temp file permissions", e))?;
        }
        Ok::<_, DatastoreError>(temp.into_parts())
    })
    .await
    .map_err(|e| DatastoreError::io("creating a temp file", io::Error::other(e)))??;
    let (file, path) = made;
    Ok((tokio::fs::File::from_std(file), path))
}
