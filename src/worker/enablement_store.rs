//! Topic enablement that survives restarts: live changes are written to the
//! worker's data directory, and the file wins over the configured lists from
//! then on (delete it to return to the configuration).

use crate::protocol::Enablement;
use std::path::{Path, PathBuf};

const FILE: &str = "enablement.json";

pub struct EnablementStore {
    path: PathBuf,
}

impl EnablementStore {
    pub fn new(data_dir: &Path) -> Self {
        EnablementStore { path: data_dir.join(FILE) }
    }

    /// The saved enablement, or `initial` when none was saved. A damaged file is
    /// reported and ignored rather than stopping the worker.
    pub fn load_or(&self, initial: Enablement) -> Enablement {
        match std::fs::read(&self.path) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(e) => e,
                Err(err) => {
                    tracing::error!(file = %self.path.display(), error = %err, "ignoring unreadable enablement file");
                    initial
                }
            },
            Err(_) => initial,
        }
    }

    pub fn save(&self, e: &Enablement) -> std::io::Result<()> {
        let tmp = self.path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(e).map_err(std::io::Error::other)?)?;
        std::fs::rename(tmp, &self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::EnablementChange;

    #[test]
    fn saved_changes_win_over_initial() {
        let dir = tempfile::tempdir().unwrap();
        let store = EnablementStore::new(dir.path());
        assert_eq!(store.load_or(Enablement::default()), Enablement::default());
        let mut e = Enablement::default();
        e.apply(EnablementChange::Disable, &"a/b".parse().unwrap());
        store.save(&e).unwrap();
        assert_eq!(store.load_or(Enablement::default()), e);
    }
}
