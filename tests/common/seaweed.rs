//! A distributed S3 store of one test's own: a SeaweedFS master, three volume servers, a filer
//! and the S3 gateway, each a process on ports of its own, data in a temp dir. Files are
//! replicated `001` (a second copy on another volume server of the same rack), so any one
//! volume server may die without losing a blob: the production layout of a distributed MinIO
//! or SeaweedFS, shrunk to one machine. It runs the `weed` binary `scripts/services` installs.

use super::cluster::free_port;
use offloader::datastore::{DatastoreConfig, S3BlobStore};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// Volume servers the store has.
pub const VOLUME_SERVERS: usize = 3;

pub struct DistributedSeaweed {
    dir: TempDir,
    /// The master, then the volume servers, the filer and the S3 gateway.
    master: Child,
    volumes: Vec<Option<Child>>,
    filer: Child,
    s3: Child,
    pub endpoint: String,
}

/// The `weed` binary: `OFFLOADER_WEED`, or where `scripts/services` installs it.
fn weed() -> PathBuf {
    if let Some(p) = std::env::var_os("OFFLOADER_WEED") {
        return p.into();
    }
    let home = std::env::var_os("OFFLOADER_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".local/share/offloader"));
    let weed = home.join("venv/bin/weed");
    assert!(
        weed.exists(),
        "this test runs a SeaweedFS cluster of its own and needs {} (scripts/services installs it)",
        weed.display()
    );
    weed
}

impl DistributedSeaweed {
    /// Starts every server and waits until the S3 gateway answers; the bucket `bucket` exists.
    pub async fn start(bucket: &str) -> DistributedSeaweed {
        let dir = TempDir::new().expect("temp dir");
        let weed = weed();
        // `weed <command> <args>`, its output in `<name>.log`, its data in `<name>/`.
        let spawn = |name: &str, command: &str, args: Vec<String>| -> Child {
            let log = std::fs::File::create(dir.path().join(format!("{name}.log"))).expect("log file");
            let work = dir.path().join(name);
            std::fs::create_dir_all(&work).expect("server dir");
            Command::new(&weed)
                .arg(command)
                .args(&args)
                .current_dir(&work)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log file"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start weed {name}: {e}"))
        };
        // SeaweedFS addresses a server's gRPC port as `host:http.grpc`.
        let (m, mg) = (free_port(), free_port());
        let master_addr = format!("127.0.0.1:{m}.{mg}");
        let loopback = || vec!["-ip=127.0.0.1".to_owned(), "-ip.bind=127.0.0.1".to_owned()];
        let mut args = loopback();
        args.extend([
            format!("-port={m}"),
            format!("-port.grpc={mg}"),
            "-mdir=.".into(),
            "-defaultReplication=001".into(),
            "-volumeSizeLimitMB=32".into(),
            "-telemetry=false".into(),
        ]);
        let master = spawn("master", "master", args);
        let volumes = (1..=VOLUME_SERVERS)
            .map(|i| {
                let mut args = loopback();
                args.extend([
                    format!("-port={}", free_port()),
                    format!("-port.grpc={}", free_port()),
                    "-dir=.".into(),
                    format!("-master={master_addr}"),
                    "-max=16".into(),
                    "-minFreeSpace=1".into(),
                ]);
                Some(spawn(&format!("volume-{i}"), "volume", args))
            })
            .collect();
        let (f, fg) = (free_port(), free_port());
        let mut args = loopback();
        args.extend([
            format!("-port={f}"),
            format!("-port.grpc={fg}"),
            format!("-master={master_addr}"),
            format!("-debug.port={}", free_port()),
        ]);
        let filer = spawn("filer", "filer", args);
        let access = std::env::var("AWS_ACCESS_KEY_ID").unwrap_or_else(|_| "offloader".into());
        let secret = std::env::var("AWS_SECRET_ACCESS_KEY").unwrap_or_else(|_| "offloader-secret".into());
        let identities = serde_json::json!({"identities": [{
            "name": "admin",
            "credentials": [{"accessKey": access, "secretKey": secret}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }]});
        let config = dir.path().join("s3.json");
        std::fs::write(&config, identities.to_string()).expect("s3 identities");
        let s3_port = free_port();
        let s3 = spawn(
            "s3",
            "s3",
            vec![
                "-ip.bind=127.0.0.1".into(),
                format!("-filer=127.0.0.1:{f}.{fg}"),
                format!("-port={s3_port}"),
                format!("-port.grpc={}", free_port()),
                format!("-port.iceberg={}", free_port()),
                format!("-port.lance={}", free_port()),
                format!("-config={}", config.display()),
            ],
        );
        let store =
            DistributedSeaweed { dir, master, volumes, filer, s3, endpoint: format!("http://127.0.0.1:{s3_port}") };
        store.create_bucket(bucket).await;
        store
    }

    /// A datastore configuration for this store (the environment's credentials and region).
    pub fn config(&self, bucket: &str, namespace: &str) -> DatastoreConfig {
        let mut cfg = DatastoreConfig::from_env(namespace.to_owned());
        cfg.url = format!("s3://{bucket}");
        cfg.endpoint = Some(self.endpoint.clone());
        cfg
    }

    /// Creates the bucket, retrying while the servers are still finding each other.
    async fn create_bucket(&self, bucket: &str) {
        let client = S3BlobStore::client_for(&self.config(bucket, "setup")).expect("S3 client");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match client.create_bucket().bucket(bucket).send().await {
                Ok(_) => return,
                Err(e) => {
                    assert!(
                        Instant::now() < deadline,
                        "the distributed SeaweedFS did not take a bucket within 60 s: {e:?}\ns3 log:\n{}\nfiler log:\n{}",
                        self.log("s3"),
                        self.log("filer")
                    );
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
            }
        }
    }

    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{name}.log"))).unwrap_or_default()
    }

    /// SIGKILL of volume server `i` (0-based): its copies are gone. By pid, so a test may do it
    /// while stores made from this one are in use; the process is reaped when this is dropped.
    pub fn kill_volume_server(&self, i: usize) {
        if let Some(v) = &self.volumes[i] {
            // SAFETY: a signal to a child this harness started and has not reaped.
            unsafe { libc::kill(v.id() as i32, libc::SIGKILL) };
        }
    }
}

impl Drop for DistributedSeaweed {
    fn drop(&mut self) {
        let volumes = self.volumes.iter_mut().flatten();
        for child in [&mut self.s3, &mut self.filer].into_iter().chain(volumes).chain([&mut self.master]) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
