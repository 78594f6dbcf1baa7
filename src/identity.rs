//! An instance's stable identity (Sling ID), kept in its data directory.
//!
//! Keeping the id on disk is what lets a restarted worker be recognised as the
//! same instance, keep its topic enablement, and appear once in the topology.

use crate::protocol::InstanceId;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("cannot use data directory {dir}: {source}")]
    Io { dir: String, source: std::io::Error },
    #[error("{file} does not hold an instance id: {content:?}")]
    Corrupt { file: String, content: String },
}

const ID_FILE: &str = "instance-id";

/// Reads the instance id from `data_dir`, creating the directory and a new id on
/// first start.
pub fn load_or_create(data_dir: &Path) -> Result<InstanceId, IdentityError> {
    let io = |source| IdentityError::Io { dir: data_dir.display().to_string(), source };
    std::fs::create_dir_all(data_dir).map_err(io)?;
    let file = data_dir.join(ID_FILE);
    match std::fs::read_to_string(&file) {
        Ok(text) => text.trim().parse().map_err(|_| IdentityError::Corrupt {
            file: file.display().to_string(),
            content: text.chars().take(64).collect(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let id = InstanceId::random();
            let tmp = data_dir.join(format!("{ID_FILE}.tmp"));
            std::fs::write(&tmp, format!("{id}\n")).map_err(io)?;
            std::fs::rename(&tmp, &file).map_err(io)?;
            Ok(id)
        }
        Err(e) => Err(io(e)),
    }
}

/// What an instance says about its host and process, for announcements.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_is_stable_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create(&dir.path().join("w1")).unwrap();
        let b = load_or_create(&dir.path().join("w1")).unwrap();
        assert_eq!(a, b);
        let c = load_or_create(&dir.path().join("w2")).unwrap();
        assert_ne!(a, c);
    }

    #[test]
    fn corrupt_id_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(ID_FILE), "not-a-uuid").unwrap();
        let err = load_or_create(dir.path()).unwrap_err();
        assert!(err.to_string().contains("does not hold an instance id"), "{err}");
    }
}
