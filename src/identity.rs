//! An instance's stable identity (Sling ID), kept in its data directory.
//!
//! Keeping the id on disk is what lets a restarted worker be recognised as the
//! same instance, keep its topic enablement, and appear once in the topology.

use crate::protocol::InstanceId;
use std::fs::File;
use std::path::{Path, PathBuf};

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

/// A data directory taken from a pool, held while this value lives.
#[derive(Debug)]
pub struct Claim {
    pub dir: PathBuf,
    /// Holds the directory's lock: closing it (or the process dying) frees the directory.
    _lock: File,
}

/// The lock file in each directory of a pool.
const LOCK_FILE: &str = ".lock";

/// Takes the first directory of `pool` (`slot-0`, `slot-1`, ...) that no living process holds,
/// creating it if needed, and holds it (an exclusive `flock` on its lock file) until the claim is
/// dropped or the process ends, however it ends.
///
/// For replicas that share one volume, as `docker compose up --scale worker=3` makes them:
/// compose cannot give each replica a volume of its own, and a container's host name changes
/// when it is re-created. Each replica takes a free slot, so a re-created replica takes over
/// the id and enablement of the one it replaces, and two running replicas never share an id.
pub fn claim_slot(pool: &Path) -> Result<Claim, IdentityError> {
    let io = |dir: &Path, source| IdentityError::Io { dir: dir.display().to_string(), source };
    for slot in 0.. {
        let dir = pool.join(format!("slot-{slot}"));
        std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(LOCK_FILE))
            .map_err(|e| io(&dir, e))?;
        if try_lock(&lock).map_err(|e| io(&dir, e))? {
            return Ok(Claim { dir, _lock: lock });
        }
    }
    unreachable!("slots are unbounded")
}

/// An exclusive, non-blocking `flock`: `false` when another open file holds it.
fn try_lock(file: &File) -> std::io::Result<bool> {
    use std::os::fd::AsRawFd;
    // SAFETY: flock only reads the descriptor, which `file` keeps open for the call.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(e)
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
    fn a_slot_is_held_until_its_claim_is_dropped() {
        let pool = tempfile::tempdir().unwrap();
        let first = claim_slot(pool.path()).unwrap();
        let second = claim_slot(pool.path()).unwrap();
        assert_eq!(first.dir, pool.path().join("slot-0"));
        assert_eq!(second.dir, pool.path().join("slot-1"));
        let id = load_or_create(&first.dir).unwrap();
        drop(first);
        // The freed slot is taken again, with the id of the instance that held it.
        let again = claim_slot(pool.path()).unwrap();
        assert_eq!(again.dir, pool.path().join("slot-0"));
        assert_eq!(load_or_create(&again.dir).unwrap(), id);
    }

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
