//! Where the datastore is and how to reach it.
//!
//! One configuration type for every implementation, read from the same environment variables
//! that `scripts/services` prints, so a process started after
//! `eval "$(scripts/services)"` finds the development S3 server without any flags.

use super::DatastoreError;
use std::path::PathBuf;

/// Default S3 endpoint: the SeaweedFS that `scripts/services` runs.
pub const DEFAULT_S3_ENDPOINT: &str = "http://127.0.0.1:8333";
/// Default bucket (created by `scripts/services`).
pub const DEFAULT_S3_BUCKET: &str = "offloader";
/// Default region; S3-compatible servers accept any, SigV4 just needs one.
pub const DEFAULT_S3_REGION: &str = "us-east-1";
/// Development credentials `scripts/services` starts SeaweedFS with.
pub const DEFAULT_ACCESS_KEY: &str = "offloader";
pub const DEFAULT_SECRET_KEY: &str = "offloader-secret";

/// How to open a datastore.
#[derive(Clone, PartialEq, Eq)]
pub struct DatastoreConfig {
    /// `s3://BUCKET` for S3, `file:///absolute/dir` for a shared directory.
    pub url: String,
    /// S3 endpoint (`http://host:port`); `None` means the SDK's default (AWS).
    pub endpoint: Option<String>,
    pub region: String,
    /// Static credentials; `None` sends unsigned (anonymous) requests.
    pub access_key: Option<String>,
    pub secret_key: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`), which every S3-compatible server speaks;
    /// virtual-hosted style needs DNS per bucket.
    pub path_style: bool,
    /// Prefix of every key, isolating tenants and test runs from each other in one bucket.
    /// Empty for none. Segments separated by `/`, each of `[A-Za-z0-9._-]`, never `.` or `..`.
    pub namespace: String,
}

/// Where a [`DatastoreConfig::url`] points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    S3 { bucket: String },
    Dir { root: PathBuf },
}

impl DatastoreConfig {
    /// Reads the environment contract of `scripts/services`:
    ///
    /// | variable | default |
    /// |---|---|
    /// | `OFFLOADER_DATASTORE` | `s3://$OFFLOADER_S3_BUCKET` (or `file:///dir`) |
    /// | `OFFLOADER_S3_BUCKET` | `offloader` |
    /// | `OFFLOADER_S3_ENDPOINT` | `http://127.0.0.1:8333`; set it empty for AWS's own endpoint |
    /// | `OFFLOADER_S3_REGION` | `us-east-1` |
    /// | `OFFLOADER_S3_PATH_STYLE` | `true` |
    /// | `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` | `offloader`, `offloader-secret` |
    ///
    /// The defaults are the development services', so tests and `scripts/run` need no setup.
    pub fn from_env(namespace: impl Into<String>) -> Self {
        let var = |name: &str| std::env::var(name).ok();
        let bucket =
            var("OFFLOADER_S3_BUCKET").filter(|b| !b.is_empty()).unwrap_or_else(|| DEFAULT_S3_BUCKET.to_owned());
        let url = var("OFFLOADER_DATASTORE").filter(|u| !u.is_empty()).unwrap_or_else(|| format!("s3://{bucket}"));
        let endpoint = match var("OFFLOADER_S3_ENDPOINT") {
            None => Some(DEFAULT_S3_ENDPOINT.to_owned()),
            Some(e) if e.is_empty() => None,
            Some(e) => Some(e),
        };
        let path_style = !matches!(var("OFFLOADER_S3_PATH_STYLE").as_deref(), Some("false" | "0" | "no"));
        DatastoreConfig {
            url,
            endpoint,
            region: var("OFFLOADER_S3_REGION")
                .filter(|r| !r.is_empty())
                .unwrap_or_else(|| DEFAULT_S3_REGION.to_owned()),
            access_key: Some(var("AWS_ACCESS_KEY_ID").unwrap_or_else(|| DEFAULT_ACCESS_KEY.to_owned())),
            secret_key: Some(var("AWS_SECRET_ACCESS_KEY").unwrap_or_else(|| DEFAULT_SECRET_KEY.to_owned())),
            path_style,
            namespace: namespace.into(),
        }
    }

    /// A shared-directory datastore rooted at `root` (which must exist when opened).
    pub fn dir(root: impl Into<PathBuf>, namespace: impl Into<String>) -> Self {
        let root = root.into();
        DatastoreConfig {
            url: format!("file://{}", root.display()),
            endpoint: None,
            region: DEFAULT_S3_REGION.to_owned(),
            access_key: None,
            secret_key: None,
            path_style: true,
            namespace: namespace.into(),
        }
    }

    /// Parses and checks [`url`](Self::url) and [`namespace`](Self::namespace).
    pub fn location(&self) -> Result<Location, DatastoreError> {
        validate_namespace(&self.namespace)?;
        if let Some(bucket) = self.url.strip_prefix("s3://") {
            // Bucket naming rules, loosely: what S3-compatible servers accept in a path.
            let ok = (3..=63).contains(&bucket.len())
                && bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.".contains(&b));
            if !ok {
                return Err(DatastoreError::Config(format!(
                    "{:?} is not s3://BUCKET with a valid bucket name (3-63 of a-z 0-9 . -)",
                    self.url
                )));
            }
            Ok(Location::S3 { bucket: bucket.to_owned() })
        } else if let Some(path) = self.url.strip_prefix("file://") {
            let root = PathBuf::from(path);
            if !root.is_absolute() {
                return Err(DatastoreError::Config(format!(
                    "{:?} must name an absolute directory: file:///abs/dir",
                    self.url
                )));
            }
            Ok(Location::Dir { root })
        } else {
            Err(DatastoreError::Config(format!(
                "unsupported datastore URL {:?}: use s3://BUCKET or file:///abs/dir",
                self.url
            )))
        }
    }
}

/// Secrets stay out of logs.
impl std::fmt::Debug for DatastoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatastoreConfig")
            .field("url", &self.url)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key", &self.access_key)
            .field("secret_key", &self.secret_key.as_ref().map(|_| "<redacted>"))
            .field("path_style", &self.path_style)
            .field("namespace", &self.namespace)
            .finish()
    }
}

/// A namespace becomes part of every key and path, so it must not be able to escape them.
fn validate_namespace(ns: &str) -> Result<(), DatastoreError> {
    if ns.is_empty() {
        return Ok(());
    }
    let bad = ns.len() > 200
        || ns.split('/').any(|seg| {
            seg.is_empty()
                || seg == "."
                || seg == ".."
                || !seg.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        });
    if bad {
        return Err(DatastoreError::Config(format!(
            "namespace {ns:?}: use segments of [A-Za-z0-9._-] separated by single '/', not '.' or '..'"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(url: &str, ns: &str) -> DatastoreConfig {
        DatastoreConfig { url: url.into(), namespace: ns.into(), ..DatastoreConfig::dir("/tmp", "") }
    }

    #[test]
    fn parses_locations() {
        assert_eq!(cfg("s3://offloader", "").location().ok(), Some(Location::S3 { bucket: "offloader".into() }));
        assert_eq!(cfg("file:///srv/ds", "t1").location().ok(), Some(Location::Dir { root: "/srv/ds".into() }));
        assert!(cfg("file://rel/dir", "").location().is_err());
        assert!(cfg("s3://a/b", "").location().is_err());
        assert!(cfg("http://x", "").location().is_err());
    }

    #[test]
    fn rejects_escaping_namespaces() {
        for ns in ["..", "a/../b", "/a", "a/", "a//b", "a b", "a\\b"] {
            assert!(cfg("s3://offloader", ns).location().is_err(), "{ns}");
        }
        for ns in ["", "test-1", "tenant/a.b_c"] {
            assert!(cfg("s3://offloader", ns).location().is_ok(), "{ns}");
        }
    }
}
