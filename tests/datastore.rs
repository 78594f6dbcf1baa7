//! The datastore contract, one suite run against every implementation: the real S3 server that
//! `scripts/services` starts (SeaweedFS here, MinIO or any S3 elsewhere) and a shared
//! directory in a temp dir.
//!
//! The S3 half needs that server: when it is not reachable the tests fail, saying so; they are
//! never skipped. Each test works in its own random namespace, so runs never see each other.
//!
//!     eval "$(scripts/services)" && cargo test --test datastore

mod common;

use bytes::Bytes;
use common::seaweed::{DistributedSeaweed, VOLUME_SERVERS};
use futures::future::BoxFuture;
use offloader::datastore::{
    self, blob_key, hash_bytes, hash_file, BlobStore, DatastoreConfig, DatastoreError, Location, S3BlobStore, Stored,
};
use offloader::protocol::blob::BlobRef;
use std::sync::Arc;
use tempfile::TempDir;

/// A store under test, with a way to damage a blob behind its back.
struct Harness {
    store: Arc<dyn BlobStore>,
    /// Replaces the stored content of a blob with other bytes, bypassing the store.
    corrupt: Box<dyn Fn(BlobRef, Bytes) -> BoxFuture<'static, ()> + Send + Sync>,
    /// Deletes everything the test stored (S3 keeps data across runs; a temp dir does not).
    cleanup: Option<BoxFuture<'static, ()>>,
    /// Scratch space for files the test writes and reads.
    scratch: TempDir,
    _root: Option<TempDir>,
}

impl Harness {
    async fn finish(mut self) {
        if let Some(cleanup) = self.cleanup.take() {
            cleanup.await;
        }
    }
}

fn namespace() -> String {
    format!("test-{}", uuid::Uuid::new_v4())
}

/// The S3 store of the environment contract, in a fresh namespace.
async fn s3_harness() -> Harness {
    let ns = namespace();
    let mut cfg = DatastoreConfig::from_env(ns.clone());
    // This half of the suite is about S3, even if OFFLOADER_DATASTORE names a directory.
    let bucket = std::env::var("OFFLOADER_S3_BUCKET").unwrap_or_else(|_| "offloader".into());
    cfg.url = format!("s3://{bucket}");
    s3_harness_on(cfg, bucket, ns).await
}

/// An S3 store at `cfg` (bucket `bucket`, keys under `ns`).
async fn s3_harness_on(cfg: DatastoreConfig, bucket: String, ns: String) -> Harness {
    let store = datastore::open(&cfg).await.unwrap_or_else(|e| {
        panic!(
            "the S3 datastore must be running for these tests; start it with \
             `eval \"$(scripts/services)\"` (config: {cfg:?}).\nerror: {e}"
        )
    });
    let client = S3BlobStore::client_for(&cfg).expect("S3 client");
    let corrupt = {
        let (client, bucket, ns) = (client.clone(), bucket.clone(), ns.clone());
        Box::new(move |blob: BlobRef, bytes: Bytes| {
            let (client, bucket, key) = (client.clone(), bucket.clone(), blob_key(&ns, &blob.sha256));
            Box::pin(async move {
                client
                    .put_object()
                    .bucket(bucket)
                    .key(key)
                    .body(bytes.into())
                    .send()
                    .await
                    .expect("overwriting an object behind the store's back");
            }) as BoxFuture<'static, ()>
        }) as Box<dyn Fn(BlobRef, Bytes) -> BoxFuture<'static, ()> + Send + Sync>
    };
    let cleanup = Box::pin(async move {
        let listed = client
            .list_objects_v2()
            .bucket(&bucket)
            .prefix(format!("{ns}/"))
            .send()
            .await
            .expect("listing test objects");
        for obj in listed.contents() {
            if let Some(key) = obj.key() {
                let _ = client.delete_object().bucket(&bucket).key(key).send().await;
            }
        }
    });
    Harness { store, corrupt, cleanup: Some(cleanup), scratch: TempDir::new().expect("scratch dir"), _root: None }
}

/// A shared-directory store in a temp dir.
async fn fs_harness() -> Harness {
    let root = TempDir::new().expect("temp dir");
    let ns = namespace();
    let cfg = DatastoreConfig::dir(root.path(), ns.clone());
    let store = datastore::open(&cfg).await.expect("opening a directory store");
    let base = root.path().to_path_buf();
    let corrupt = Box::new(move |blob: BlobRef, bytes: Bytes| {
        let path = base.join(blob_key(&ns, &blob.sha256));
        Box::pin(async move {
            tokio::fs::write(&path, &bytes).await.expect("overwriting a blob file behind the store's back");
        }) as BoxFuture<'static, ()>
    });
    Harness { store, corrupt, cleanup: None, scratch: TempDir::new().expect("scratch dir"), _root: Some(root) }
}

/// Deterministic bytes that do not compress or repeat (xorshift), so a misplaced part shows.
fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

const MIB: usize = 1024 * 1024;

/// The cases, each against any store.
mod cases {
    use super::*;

    pub async fn round_trip(h: Harness) {
        let data = Bytes::from_static(b"an asset's bytes");
        let stored = h.store.put_bytes(data.clone()).await.expect("put_bytes");
        assert_eq!(stored, Stored { blob: hash_bytes(&data), uploaded: true });
        assert!(h.store.contains(&stored.blob).await.expect("contains"));
        let got = h.store.get_bytes(&stored.blob, 1024).await.expect("get_bytes");
        assert_eq!(got, data);
        let dest = h.scratch.path().join("out.bin");
        h.store.get_to_file(&stored.blob, &dest).await.expect("get_to_file");
        assert_eq!(std::fs::read(&dest).expect("reading the download"), data);
        // The empty blob is a blob too.
        let empty = h.store.put_bytes(Bytes::new()).await.expect("put empty");
        assert_eq!(h.store.get_bytes(&empty.blob, 0).await.expect("get empty"), Bytes::new());
        assert!(!h.store.describe().is_empty());
        h.finish().await;
    }

    pub async fn same_content_is_stored_once(h: Harness) {
        let data = Bytes::from(pseudo_random(4096, 7));
        let first = h.store.put_bytes(data.clone()).await.expect("first put");
        assert!(first.uploaded);
        let again = h.store.put_bytes(data.clone()).await.expect("second put");
        assert_eq!(again, Stored { blob: first.blob.clone(), uploaded: false });

        let path = h.scratch.path().join("same.bin");
        std::fs::write(&path, &data).expect("writing input");
        let from_file = h.store.put_file(&path).await.expect("put_file");
        assert_eq!(from_file, Stored { blob: first.blob.clone(), uploaded: false });

        let reader = Box::new(std::io::Cursor::new(data.to_vec()));
        let from_reader = h.store.put_reader(reader).await.expect("put_reader");
        assert_eq!(from_reader, Stored { blob: first.blob, uploaded: false });
        h.finish().await;
    }

    pub async fn large_file_streams_and_round_trips(h: Harness) {
        // Over the 8 MiB part size: S3 takes the multipart path (two parts).
        let data = pseudo_random(10 * MIB + 12_345, 42);
        let src = h.scratch.path().join("large.bin");
        std::fs::write(&src, &data).expect("writing input");
        let expected = hash_file(&src).await.expect("hashing input");

        let stored = h.store.put_file(&src).await.expect("put_file of a large file");
        assert_eq!(stored, Stored { blob: expected.clone(), uploaded: true });
        assert!(h.store.contains(&expected).await.expect("contains"));

        let dest = h.scratch.path().join("large.out");
        h.store.get_to_file(&expected, &dest).await.expect("get_to_file");
        assert_eq!(hash_file(&dest).await.expect("hashing output"), expected);

        let got = h.store.get_bytes(&expected, expected.size).await.expect("get_bytes at exactly max_size");
        assert!(got[..] == data[..], "content differs");

        let again = h.store.put_file(&src).await.expect("second put_file");
        assert!(!again.uploaded);
        h.finish().await;
    }

    pub async fn missing_blob_is_not_found(h: Harness) {
        let blob = hash_bytes(b"never stored");
        assert!(!h.store.contains(&blob).await.expect("contains"));
        let err = h.store.get_bytes(&blob, 1024).await.expect_err("get_bytes of nothing");
        assert!(matches!(err, DatastoreError::NotFound { .. }), "{err}");
        let dest = h.scratch.path().join("missing.out");
        let err = h.store.get_to_file(&blob, &dest).await.expect_err("get_to_file of nothing");
        assert!(matches!(err, DatastoreError::NotFound { .. }), "{err}");
        assert!(!dest.exists(), "a failed download must leave no file");
        h.finish().await;
    }

    pub async fn corruption_is_detected(h: Harness) {
        let data = Bytes::from(pseudo_random(100_000, 3));
        let stored = h.store.put_bytes(data.clone()).await.expect("put");
        let dest = h.scratch.path().join("corrupt.out");

        // Same size, different content: only the hash can tell.
        let mut damaged = data.to_vec();
        damaged[50_000] ^= 0xff;
        (h.corrupt)(stored.blob.clone(), Bytes::from(damaged)).await;
        let err = h.store.get_bytes(&stored.blob, u64::MAX).await.expect_err("damaged");
        assert!(matches!(err, DatastoreError::Corrupt { .. }), "{err}");
        let err = h.store.get_to_file(&stored.blob, &dest).await.expect_err("damaged");
        assert!(matches!(err, DatastoreError::Corrupt { .. }), "{err}");
        assert!(!dest.exists(), "a corrupt download must leave no file");

        // Truncated.
        (h.corrupt)(stored.blob.clone(), data.slice(..10)).await;
        let err = h.store.get_bytes(&stored.blob, u64::MAX).await.expect_err("truncated");
        assert!(matches!(err, DatastoreError::Corrupt { .. }), "{err}");
        let err = h.store.get_to_file(&stored.blob, &dest).await.expect_err("truncated");
        assert!(matches!(err, DatastoreError::Corrupt { .. }), "{err}");
        assert!(!dest.exists());
        h.finish().await;
    }

    pub async fn max_size_is_enforced(h: Harness) {
        let data = Bytes::from(pseudo_random(2048, 5));
        let stored = h.store.put_bytes(data.clone()).await.expect("put");
        let err = h.store.get_bytes(&stored.blob, 2047).await.expect_err("over the limit");
        assert!(matches!(err, DatastoreError::TooLarge { size: 2048, max: 2047 }), "{err}");
        assert_eq!(h.store.get_bytes(&stored.blob, 2048).await.expect("at the limit"), data);
        // A reference lying about the size is refused before anything is fetched...
        let lying = BlobRef { sha256: stored.blob.sha256.clone(), size: 1 << 40 };
        let err = h.store.get_bytes(&lying, 4096).await.expect_err("lying size");
        assert!(matches!(err, DatastoreError::TooLarge { .. }), "{err}");
        // ... or found corrupt once fetched.
        let small_lie = BlobRef { sha256: stored.blob.sha256.clone(), size: 10 };
        let err = h.store.get_bytes(&small_lie, 4096).await.expect_err("small lie");
        assert!(matches!(err, DatastoreError::Corrupt { .. }), "{err}");
        h.finish().await;
    }

    pub async fn put_reader_stores_streams(h: Harness) {
        // Small (one request) and large (spooled, then multipart on S3).
        for (len, seed) in [(3 * MIB, 11), (9 * MIB + 1, 12)] {
            let data = pseudo_random(len, seed);
            let (client, mut server) = tokio::io::duplex(64 * 1024);
            let writer = {
                let data = data.clone();
                tokio::spawn(async move {
                    use tokio::io::AsyncWriteExt;
                    server.write_all(&data).await.expect("feeding the stream");
                    server.shutdown().await.expect("closing the stream");
                })
            };
            let stored = h.store.put_reader(Box::new(client)).await.expect("put_reader");
            writer.await.expect("writer task");
            assert_eq!(stored, Stored { blob: hash_bytes(&data), uploaded: true });
            let got = h.store.get_bytes(&stored.blob, len as u64).await.expect("get_bytes");
            assert!(got[..] == data[..], "content differs");
        }
        h.finish().await;
    }
}

/// Every case, one after the other, against stores that `harness` makes.
async fn all_cases<F: std::future::Future<Output = Harness>>(harness: impl Fn() -> F) {
    cases::round_trip(harness().await).await;
    cases::same_content_is_stored_once(harness().await).await;
    cases::large_file_streams_and_round_trips(harness().await).await;
    cases::missing_blob_is_not_found(harness().await).await;
    cases::corruption_is_detected(harness().await).await;
    cases::max_size_is_enforced(harness().await).await;
    cases::put_reader_stores_streams(harness().await).await;
}

/// The suite against a distributed SeaweedFS (a master, three volume servers with replication
/// `001`, a filer and the S3 gateway), then again while one volume server is SIGKILLed in the
/// middle of it: every case passes both times, and what was stored before the kill still
/// reads back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_suite_passes_on_distributed_seaweedfs_with_a_volume_server_killed() {
    const BUCKET: &str = "offloader-distributed";
    let seaweed = DistributedSeaweed::start(BUCKET).await;
    let on_seaweed = || {
        let ns = namespace();
        s3_harness_on(seaweed.config(BUCKET, &ns), BUCKET.to_owned(), ns)
    };
    // Blobs that must survive the kill, spread over the volumes.
    let keeper = datastore::open(&seaweed.config(BUCKET, &namespace())).await.expect("opening the store");
    let mut kept = Vec::new();
    for i in 0..20u64 {
        let bytes = Bytes::from(pseudo_random(64 * 1024 + i as usize, i + 7));
        let stored = keeper.put_bytes(bytes.clone()).await.expect("storing before the kill");
        kept.push((stored.blob, bytes));
    }
    all_cases(on_seaweed).await;

    // The second round, with a volume server taken away under it once it got going.
    let round = all_cases(on_seaweed);
    tokio::pin!(round);
    let early = tokio::time::timeout(std::time::Duration::from_millis(500), &mut round).await;
    assert!(early.is_err(), "the second round ended within 500 ms, before the kill could land in it");
    seaweed.kill_volume_server(VOLUME_SERVERS - 1);
    round.await;
    for (blob, bytes) in kept {
        let back = keeper.get_bytes(&blob, 1 << 20).await.unwrap_or_else(|e| {
            panic!(
                "a blob stored before the kill is lost: {e}
s3 log:
{}",
                seaweed.log("s3")
            )
        });
        assert_eq!(back, bytes, "a blob stored before the kill changed");
    }
}

/// Runs every case against one implementation, as separately named tests.
macro_rules! suite {
    ($module:ident, $harness:ident) => {
        mod $module {
            use super::*;

            #[tokio::test]
            async fn round_trip() {
                cases::round_trip($harness().await).await
            }
            #[tokio::test]
            async fn same_content_is_stored_once() {
                cases::same_content_is_stored_once($harness().await).await
            }
            #[tokio::test]
            async fn large_file_streams_and_round_trips() {
                cases::large_file_streams_and_round_trips($harness().await).await
            }
            #[tokio::test]
            async fn missing_blob_is_not_found() {
                cases::missing_blob_is_not_found($harness().await).await
            }
            #[tokio::test]
            async fn corruption_is_detected() {
                cases::corruption_is_detected($harness().await).await
            }
            #[tokio::test]
            async fn max_size_is_enforced() {
                cases::max_size_is_enforced($harness().await).await
            }
            #[tokio::test]
            async fn put_reader_stores_streams() {
                cases::put_reader_stores_streams($harness().await).await
            }
        }
    };
}

suite!(s3, s3_harness);
suite!(fs, fs_harness);

// What each implementation says when it cannot be used: clearly, naming where it looked.

#[tokio::test]
async fn s3_down_fails_clearly_naming_the_endpoint() {
    let mut cfg = DatastoreConfig::from_env(namespace());
    cfg.url = "s3://offloader".into();
    cfg.endpoint = Some("http://127.0.0.1:9".into()); // discard port: nothing listens
    let err = datastore::open(&cfg).await.err().expect("open must fail");
    assert!(matches!(err, DatastoreError::Unreachable { .. }), "{err}");
    assert!(err.to_string().contains("http://127.0.0.1:9"), "{err}");
}

#[tokio::test]
async fn s3_missing_bucket_fails_clearly() {
    let mut cfg = DatastoreConfig::from_env(namespace());
    cfg.url = format!("s3://no-such-bucket-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let err = datastore::open(&cfg).await.err().expect("open must fail");
    assert!(matches!(err, DatastoreError::Missing { .. }), "{err}");
    assert!(err.to_string().contains("no-such-bucket-"), "{err}");
}

#[tokio::test]
async fn missing_directory_fails_clearly() {
    let root = TempDir::new().expect("temp dir");
    let gone = root.path().join("not-mounted");
    let err = datastore::open(&DatastoreConfig::dir(&gone, "x")).await.err().expect("open must fail");
    assert!(matches!(err, DatastoreError::Missing { .. }), "{err}");
    assert!(err.to_string().contains("not-mounted"), "{err}");
}

#[test]
fn config_from_env_names_an_s3_bucket_by_default() {
    let cfg = DatastoreConfig::from_env("ns");
    if std::env::var_os("OFFLOADER_DATASTORE").is_none() {
        assert!(matches!(cfg.location(), Ok(Location::S3 { .. })), "{cfg:?}");
    }
    assert!(!format!("{cfg:?}").contains("offloader-secret"), "secrets must not be logged");
}
