//! Repository paths of assets (`/content/dam/photos/a.jpg`), validated where they enter.
//!
//! A path arrives from the outside world (an HTTP URL, a CLI argument, a file name in a watch
//! folder) and later names rows, job properties and output paths. Validating it once, at the
//! door, with a reason a user can act on, is what keeps `..` tricks and invisible characters
//! out of everything behind it. The rules: absolute, no empty (`//`), `.` or `..` segments, no
//! control characters, no backslash, at most [`MAX_PATH_LEN`] bytes and [`MAX_SEGMENT_LEN`]
//! bytes per segment, no trailing `/`.
//!
//! Also here: the contract for where renditions live under an asset, AEM's
//! `<asset>/jcr:content/renditions/<name>`.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Longest asset path accepted, in bytes.
pub const MAX_PATH_LEN: usize = 1024;
/// Longest segment accepted, in bytes (what file systems and S3 keys allow).
pub const MAX_SEGMENT_LEN: usize = 255;
/// Where renditions live under an asset, as in AEM.
pub const RENDITIONS_DIR: &str = "jcr:content/renditions";

/// Why a string is not a usable asset path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("asset path is empty")]
    Empty,
    #[error("asset path {0:?} must be absolute (start with '/')")]
    NotAbsolute(String),
    #[error("asset path {0:?} has an empty segment ('//' or a trailing '/')")]
    EmptySegment(String),
    #[error("asset path {0:?} has a '.' or '..' segment")]
    DotSegment(String),
    #[error("asset path {0:?} contains a control character or a backslash")]
    BadCharacter(String),
    #[error("asset path is {len} bytes; at most {MAX_PATH_LEN} are allowed")]
    TooLong { len: usize },
    #[error("asset path {0:?} has a segment longer than {MAX_SEGMENT_LEN} bytes")]
    SegmentTooLong(String),
}

/// A validated absolute asset path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AssetPath(String);

impl AssetPath {
    pub fn parse(s: &str) -> Result<AssetPath, PathError> {
        if s.is_empty() {
            return Err(PathError::Empty);
        }
        let shown = || s.chars().take(120).collect::<String>();
        if s.len() > MAX_PATH_LEN {
            return Err(PathError::TooLong { len: s.len() });
        }
        if s.chars().any(|c| c.is_control() || c == '\\') {
            return Err(PathError::BadCharacter(shown()));
        }
        let Some(rest) = s.strip_prefix('/') else { return Err(PathError::NotAbsolute(shown())) };
        for seg in rest.split('/') {
            match seg {
                "" => return Err(PathError::EmptySegment(shown())),
                "." | ".." => return Err(PathError::DotSegment(shown())),
                s if s.len() > MAX_SEGMENT_LEN => return Err(PathError::SegmentTooLong(shown())),
                _ => {}
            }
        }
        Ok(AssetPath(s.to_owned()))
    }

    /// `base` joined with a relative path of `/`-separated segments (a file under a watch folder).
    pub fn join(&self, relative: &str) -> Result<AssetPath, PathError> {
        AssetPath::parse(&format!("{}/{}", self.0, relative.trim_start_matches('/')))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last segment (the asset's file name).
    pub fn name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or("")
    }

    /// Where rendition `name` of this asset lives: `<asset>/jcr:content/renditions/<name>`.
    pub fn rendition_path(&self, name: &str) -> String {
        format!("{}/{RENDITIONS_DIR}/{name}", self.0)
    }

    /// The directory of this asset's renditions (AEM's `offloading.output.payload`).
    pub fn renditions_dir(&self) -> String {
        format!("{}/{RENDITIONS_DIR}", self.0)
    }

    /// The rendition name when `path` is `<this asset>/jcr:content/renditions/<name>` with a
    /// single-segment name; `None` for any other path.
    pub fn rendition_name<'a>(&self, path: &'a str) -> Option<&'a str> {
        let name =
            path.strip_prefix(self.0.as_str())?.strip_prefix('/')?.strip_prefix(RENDITIONS_DIR)?.strip_prefix('/')?;
        super::workflow::valid_rendition_name(name).then_some(name)
    }
}

text_schema!(AssetPath, "An absolute repository path: /-separated segments, none empty, . or ..", r"^(/[^/]+)+$");

impl fmt::Display for AssetPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for AssetPath {
    type Error = PathError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        AssetPath::parse(&s)
    }
}

impl From<AssetPath> for String {
    fn from(p: AssetPath) -> String {
        p.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_paths_pass() {
        for p in ["/a", "/content/dam/photos/a.jpg", "/content/dam/x y/é.png", "/a/jcr:content"] {
            assert_eq!(AssetPath::parse(p).unwrap().as_str(), p);
        }
    }

    #[test]
    fn bad_paths_say_why() {
        let err = |p: &str| AssetPath::parse(p).unwrap_err();
        assert_eq!(err(""), PathError::Empty);
        assert!(matches!(err("content/a"), PathError::NotAbsolute(_)));
        assert!(matches!(err("/content//a"), PathError::EmptySegment(_)));
        assert!(matches!(err("/content/a/"), PathError::EmptySegment(_)));
        assert!(matches!(err("/content/../etc/passwd"), PathError::DotSegment(_)));
        assert!(matches!(err("/content/./a"), PathError::DotSegment(_)));
        assert!(matches!(err("/a\nb"), PathError::BadCharacter(_)));
        assert!(matches!(err("/a\\..\\b"), PathError::BadCharacter(_)));
        assert!(matches!(err(&format!("/{}", "a/".repeat(600))), PathError::TooLong { .. }));
        assert!(matches!(err(&format!("/{}", "a".repeat(256))), PathError::SegmentTooLong(_)));
    }

    #[test]
    fn renditions_live_under_the_asset() {
        let a = AssetPath::parse("/content/dam/a.jpg").unwrap();
        let p = a.rendition_path("cq5dam.thumbnail.48.48.png");
        assert_eq!(p, "/content/dam/a.jpg/jcr:content/renditions/cq5dam.thumbnail.48.48.png");
        assert_eq!(a.rendition_name(&p), Some("cq5dam.thumbnail.48.48.png"));
        assert_eq!(a.rendition_name("/content/dam/a.jpg.echo"), None);
        assert_eq!(a.rendition_name("/content/dam/a.jpg/jcr:content/renditions/x/y"), None);
        assert_eq!(a.rendition_name("/content/dam/a.jpgX/jcr:content/renditions/x"), None);
        assert_eq!(a.join("sub/b.png").unwrap().as_str(), "/content/dam/a.jpg/sub/b.png");
        assert!(a.join("../b").is_err());
    }
}
