//! A datastore in an S3 bucket: MinIO in production, SeaweedFS on development and CI machines,
//! AWS or any S3-compatible server elsewhere. Plain S3 only: path-style addressing, a custom
//! endpoint, static credentials.
//!
//! Small blobs (up to one part, 8 MiB) go up in one `PutObject`, made conditional
//! (`If-None-Match: *`) so an existing blob is never replaced; larger ones stream as a multipart
//! upload, one part in memory at a time, re-hashed on the way so a file that changed since it
//! was hashed is never stored under the wrong name. Downloads stream and are verified.
//!
//! Short S3 outages are absorbed by the SDK's standard retries (with backoff); errors that
//! remain name the endpoint and bucket.

use super::digest::{corrupt, hash_bytes_off_thread, hash_file, read_verified, BlobHasher};
use super::fs::{download_to, temp_file_in};
use super::{blob_key, BlobStore, DatastoreConfig, DatastoreError, Stored};
use crate::protocol::blob::BlobRef;
use async_trait::async_trait;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{Credentials, Region, ResponseChecksumValidation};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use bytes::{Bytes, BytesMut};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Multipart part size: S3's minimum is 5 MiB; 8 MiB is the usual default. Also the largest
/// blob uploaded in a single request, and so the most memory one upload holds.
pub const PART_SIZE: usize = 8 * 1024 * 1024;
/// S3 allows 10 000 parts; stay below, growing the part size for very large files.
const MAX_PARTS: u64 = 9_000;

/// Blobs stored as objects `<namespace>/blobs/<ab>/<sha256>` in one bucket.
#[derive(Debug, Clone)]
pub struct S3BlobStore {
    client: Client,
    bucket: String,
    namespace: String,
    /// For messages: the endpoint URL (or "AWS S3 (region)").
    endpoint: String,
    /// Where `put_reader` spools streams before uploading.
    spool_dir: PathBuf,
}

/// What a `HeadObject` found under a blob's key.
enum Existing {
    Absent,
    Present,
    /// An object of the wrong size: damaged, so it may (and should) be replaced.
    WrongSize(u64),
}

impl S3BlobStore {
    /// Builds an S3 client from `cfg` (no ambient AWS configuration is consulted: what the
    /// configuration says is what is used).
    pub fn client_for(cfg: &DatastoreConfig) -> Result<Client, DatastoreError> {
        let (Some(access), Some(secret)) = (&cfg.access_key, &cfg.secret_key) else {
            return Err(DatastoreError::Config(
                "S3 needs credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY".into(),
            ));
        };
        // Retries ride out a short outage (a restart takes seconds): up to 6 attempts,
        // backing off from 0.5 s to 5 s, about 10 s in all.
        let retry = RetryConfig::standard()
            .with_max_attempts(6)
            .with_initial_backoff(Duration::from_millis(500))
            .with_max_backoff(Duration::from_secs(5));
        let timeouts = TimeoutConfig::builder().connect_timeout(Duration::from_secs(5)).build();
        let mut builder = aws_sdk_s3::config::Builder::new()
            .credentials_provider(Credentials::new(access.clone(), secret.clone(), None, None, "offloader-config"))
            .region(Region::new(cfg.region.clone()))
            .force_path_style(cfg.path_style)
            .retry_config(retry)
            .timeout_config(timeouts)
            // Every read is verified against its sha256 (the blob's name), which is stronger than
            // the SDK's response checksums, and those cannot be checked on objects uploaded in
            // parts anyway (the SDK warns on every such read). Uploads still send a checksum.
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        if let Some(endpoint) = &cfg.endpoint {
            builder = builder.endpoint_url(endpoint.clone());
        }
        Ok(Client::from_conf(builder.build()))
    }

    /// Opens the store and checks the bucket answers (`HeadBucket`).
    pub async fn open(cfg: &DatastoreConfig, bucket: String) -> Result<Self, DatastoreError> {
        let store = S3BlobStore {
            client: Self::client_for(cfg)?,
            bucket,
            namespace: cfg.namespace.clone(),
            endpoint: cfg.endpoint.clone().unwrap_or_else(|| format!("AWS S3 ({})", cfg.region)),
            spool_dir: std::env::temp_dir(),
        };
        let head = store.client.head_bucket().bucket(&store.bucket).send().await;
        match head {
            Ok(_) => Ok(store),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Err(DatastoreError::Missing {
                what: format!("bucket '{}'", store.bucket),
                endpoint: store.endpoint.clone(),
            }),
            Err(e) => Err(store.error("HeadBucket", e)),
        }
    }

    /// Spools `put_reader` streams into `dir` instead of the system temp dir.
    pub fn with_spool_dir(mut self, dir: PathBuf) -> Self {
        self.spool_dir = dir;
        self
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    fn key(&self, blob: &BlobRef) -> String {
        blob_key(&self.namespace, &blob.sha256)
    }

    /// Turns an SDK error into ours: connection failures and timeouts (after retries) are
    /// `Unreachable`; anything S3 answered is `S3`, with its code, message and HTTP status.
    fn error<E>(&self, operation: &'static str, err: SdkError<E>) -> DatastoreError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        match &err {
            SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => DatastoreError::Unreachable {
                endpoint: format!("{} (bucket {})", self.endpoint, self.bucket),
                cause: DisplayErrorContext(&err).to_string(),
            },
            _ => {
                let status = err.raw_response().map(|r| r.status().as_u16());
                let mut cause = match (err.code(), err.message()) {
                    (Some(code), Some(msg)) => format!("{code}: {msg}"),
                    (Some(code), None) => code.to_owned(),
                    _ => DisplayErrorContext(&err).to_string(),
                };
                if let Some(status) = status {
                    cause.push_str(&format!(" (HTTP {status})"));
                }
                if status == Some(403) {
                    cause.push_str("; check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY");
                }
                DatastoreError::S3 { operation, endpoint: format!("{} (bucket {})", self.endpoint, self.bucket), cause }
            }
        }
    }

    async fn existing(&self, blob: &BlobRef) -> Result<Existing, DatastoreError> {
        let head = self.client.head_object().bucket(&self.bucket).key(self.key(blob)).send().await;
        match head {
            Ok(out) => {
                let len = out.content_length().unwrap_or_default();
                if u64::try_from(len).ok() == Some(blob.size) {
                    Ok(Existing::Present)
                } else {
                    Ok(Existing::WrongSize(len.max(0) as u64))
                }
            }
            Err(e) if is_not_found(&e) => Ok(Existing::Absent),
            Err(e) => Err(self.error("HeadObject", e)),
        }
    }

    /// Stores `data` (named `blob`) in one request unless it is already there.
    async fn store_small(&self, data: Bytes, blob: BlobRef) -> Result<Stored, DatastoreError> {
        let replace = match self.existing(&blob).await? {
            Existing::Present => return Ok(Stored { blob, uploaded: false }),
            Existing::Absent => false,
            Existing::WrongSize(len) => {
                self.warn_replacing(&blob, len);
                true
            }
        };
        let mut put = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(self.key(&blob))
            .content_length(blob.size as i64)
            .content_type("application/octet-stream")
            .body(ByteStream::from(data));
        if !replace {
            // Never replace a blob someone stored meanwhile (S3 answers 412; servers that do
            // not know the header just store the same content again, which is harmless).
            put = put.if_none_match("*");
        }
        match put.send().await {
            Ok(_) => Ok(Stored { blob, uploaded: true }),
            Err(e) if is_status(&e, 412) => Ok(Stored { blob, uploaded: false }),
            Err(e) => Err(self.error("PutObject", e)),
        }
    }

    fn warn_replacing(&self, blob: &BlobRef, len: u64) {
        tracing::warn!(
            key = %self.key(blob),
            expected_size = blob.size,
            actual_size = len,
            store = %self.describe(),
            "replacing a damaged blob (wrong size) with verified content"
        );
    }

    /// Stores the file at `path`; `known` is its reference when the caller already hashed it.
    async fn store_path(&self, path: &Path, known: Option<BlobRef>) -> Result<Stored, DatastoreError> {
        let open_err = |e| DatastoreError::io(format!("opening {}", path.display()), e);
        let changed = || DatastoreError::SourceChanged { path: path.display().to_string() };
        let mut file = tokio::fs::File::open(path).await.map_err(open_err)?;
        let len = file.metadata().await.map_err(open_err)?.len();
        if len <= PART_SIZE as u64 {
            // Small: one read into memory (bounded by the part size), one request.
            let data = read_up_to(&mut file, PART_SIZE, path).await?;
            if data.len() > PART_SIZE {
                return Err(changed());
            }
            let blob = hash_bytes_off_thread(&data).await?;
            if known.as_ref().is_some_and(|k| *k != blob) {
                return Err(changed());
            }
            return self.store_small(data, blob).await;
        }
        drop(file);
        let blob = match known {
            Some(blob) => blob,
            None => hash_file(path).await?,
        };
        match self.existing(&blob).await? {
            Existing::Present => return Ok(Stored { blob, uploaded: false }),
            Existing::Absent => {}
            Existing::WrongSize(len) => self.warn_replacing(&blob, len),
        }
        self.upload_multipart(path, &blob).await?;
        Ok(Stored { blob, uploaded: true })
    }

    /// Multipart upload of the file at `path`, which must hash to `blob`; aborted (so S3 keeps
    /// no orphaned parts) on any failure.
    async fn upload_multipart(&self, path: &Path, blob: &BlobRef) -> Result<(), DatastoreError> {
        let key = self.key(blob);
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(&key)
            .content_type("application/octet-stream")
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .send()
            .await
            .map_err(|e| self.error("CreateMultipartUpload", e))?;
        let Some(upload_id) = created.upload_id() else {
            return Err(DatastoreError::S3 {
                operation: "CreateMultipartUpload",
                endpoint: self.endpoint.clone(),
                cause: "no upload id in the answer".into(),
            });
        };
        let uploaded = match self.upload_parts(path, blob, &key, upload_id).await {
            Ok(parts) => self
                .client
                .complete_multipart_upload()
                .bucket(&self.bucket)
                .key(&key)
                .upload_id(upload_id)
                .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
                .send()
                .await
                .map(|_| ())
                .map_err(|e| self.error("CompleteMultipartUpload", e)),
            Err(e) => Err(e),
        };
        if uploaded.is_err() {
            let abort =
                self.client.abort_multipart_upload().bucket(&self.bucket).key(&key).upload_id(upload_id).send().await;
            if let Err(e) = abort {
                tracing::warn!(%key, error = %DisplayErrorContext(&e), "could not abort a failed multipart upload");
            }
        }
        uploaded
    }

    /// Uploads the parts, one in memory at a time, re-hashing the file as it goes.
    async fn upload_parts(
        &self,
        path: &Path,
        blob: &BlobRef,
        key: &str,
        upload_id: &str,
    ) -> Result<Vec<CompletedPart>, DatastoreError> {
        // Grow parts for huge files so they stay under S3's 10 000-part limit.
        let part_size = (PART_SIZE as u64).max(blob.size.div_ceil(MAX_PARTS)) as usize;
        let mut file = tokio::fs::File::open(path)
            .await
            .map_err(|e| DatastoreError::io(format!("opening {}", path.display()), e))?;
        let mut hasher = BlobHasher::new();
        let mut parts = Vec::new();
        for part_number in 1.. {
            let data = read_up_to(&mut file, part_size, path).await?;
            if data.is_empty() {
                break;
            }
            hasher.update(&data);
            if hasher.size() > blob.size {
                break; // grew: caught by the check below
            }
            let out = self
                .client
                .upload_part()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(upload_id)
                .part_number(part_number)
                .content_length(data.len() as i64)
                .checksum_algorithm(ChecksumAlgorithm::Crc32)
                .body(ByteStream::from(data))
                .send()
                .await
                .map_err(|e| self.error("UploadPart", e))?;
            parts.push(
                CompletedPart::builder()
                    .part_number(part_number)
                    .set_e_tag(out.e_tag().map(str::to_owned))
                    .set_checksum_crc32(out.checksum_crc32().map(str::to_owned))
                    .build(),
            );
        }
        if hasher.finish() != *blob {
            return Err(DatastoreError::SourceChanged { path: path.display().to_string() });
        }
        Ok(parts)
    }

    /// Starts a download, checking existence and size before any content is read.
    async fn get_body(&self, blob: &BlobRef) -> Result<ByteStream, DatastoreError> {
        let key = self.key(blob);
        let out = match self.client.get_object().bucket(&self.bucket).key(&key).send().await {
            Ok(out) => out,
            Err(e) if is_not_found(&e) => return Err(DatastoreError::NotFound { key, store: self.describe() }),
            Err(e) => return Err(self.error("GetObject", e)),
        };
        if let Some(len) = out.content_length() {
            if u64::try_from(len).ok() != Some(blob.size) {
                return Err(corrupt(&key, blob, format!("{len} bytes")));
            }
        }
        Ok(out.body)
    }
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn put_bytes(&self, bytes: Bytes) -> Result<Stored, DatastoreError> {
        if bytes.len() <= PART_SIZE {
            let blob = hash_bytes_off_thread(&bytes).await?;
            return self.store_small(bytes, blob).await;
        }
        // Already in memory, but one request per 8 MiB keeps each retry cheap: spool and
        // take the multipart path (hashing on the way).
        let reader: Box<dyn AsyncRead + Send + Unpin> = Box::new(std::io::Cursor::new(bytes));
        self.put_reader(reader).await
    }

    async fn put_file(&self, path: &Path) -> Result<Stored, DatastoreError> {
        self.store_path(path, None).await
    }

    async fn put_reader(&self, mut reader: Box<dyn AsyncRead + Send + Unpin>) -> Result<Stored, DatastoreError> {
        let (mut file, temp) = temp_file_in(&self.spool_dir).await?;
        let blob = super::digest::copy_hashing(&mut *reader, &mut file, "spooling a stream").await?;
        drop(file);
        // The spool file is ours and deleted when `temp` drops, after the upload.
        self.store_path(&temp, Some(blob)).await
    }

    async fn contains(&self, blob: &BlobRef) -> Result<bool, DatastoreError> {
        Ok(matches!(self.existing(blob).await?, Existing::Present))
    }

    async fn get_bytes(&self, blob: &BlobRef, max_size: u64) -> Result<Bytes, DatastoreError> {
        if blob.size > max_size {
            return Err(DatastoreError::TooLarge { size: blob.size, max: max_size });
        }
        let body = self.get_body(blob).await?;
        let reader = body.into_async_read();
        tokio::pin!(reader);
        read_verified(&mut reader, blob, &self.key(blob)).await
    }

    async fn get_to_file(&self, blob: &BlobRef, dest: &Path) -> Result<(), DatastoreError> {
        let body = self.get_body(blob).await?;
        let reader = body.into_async_read();
        tokio::pin!(reader);
        download_to(&mut reader, blob, &self.key(blob), dest).await
    }

    fn describe(&self) -> String {
        if self.namespace.is_empty() {
            format!("s3://{} at {}", self.bucket, self.endpoint)
        } else {
            format!("s3://{}/{} at {}", self.bucket, self.namespace, self.endpoint)
        }
    }
}

/// Reads up to `limit` + 1 bytes (one more, to notice a file that grew).
async fn read_up_to(file: &mut tokio::fs::File, limit: usize, path: &Path) -> Result<Bytes, DatastoreError> {
    let mut buf = BytesMut::with_capacity(limit);
    let mut limited = file.take(limit as u64 + 1);
    loop {
        let n = limited
            .read_buf(&mut buf)
            .await
            .map_err(|e| DatastoreError::io(format!("reading {}", path.display()), e))?;
        if n == 0 {
            return Ok(buf.freeze());
        }
    }
}

fn is_not_found<E: ProvideErrorMetadata>(err: &SdkError<E>) -> bool {
    is_status(err, 404) || matches!(err.code(), Some("NoSuchKey" | "NotFound"))
}

fn is_status<E>(err: &SdkError<E>, status: u16) -> bool {
    err.raw_response().is_some_and(|r| r.status().as_u16() == status)
}
