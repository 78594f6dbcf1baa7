//! The workflow models an instance knows: the built-ins, plus any loaded from `--models DIR`.
//!
//! The leader needs them to start workflows; a worker needs them for jobs that name a model
//! without carrying it (an offload step with `include_model = false`), so both load the same
//! way and a worker given the leader's folder resolves exactly the leader's models.
//!
//! Built-ins are always present so a leader with no configuration behaves as AEM does out of
//! the box; a file whose model has a built-in's id replaces it (that is how an administrator
//! changes the renditions of `dam/update_asset`). Every file is validated at start, and an
//! offload step must name a model that exists and runs on a worker (has no offload step
//! itself), so a typo fails the start instead of the first asset.

use crate::protocol::workflow::{builtin_models, ModelError};
use crate::protocol::WorkflowModel;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum ModelsError {
    #[error("cannot read workflow models from {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("workflow model file {path}: {source}")]
    Invalid { path: String, source: ModelError },
    #[error("workflow model {model}: its offload step runs {target:?}, {why}")]
    BadReference { model: String, target: String, why: &'static str },
}

/// Workflow models by id.
#[derive(Debug, Clone)]
pub struct ModelRegistry {
    models: BTreeMap<String, WorkflowModel>,
}

impl Default for ModelRegistry {
    fn default() -> Self {
        ModelRegistry { models: builtin_models().into_iter().map(|m| (m.id.clone(), m)).collect() }
    }
}

impl ModelRegistry {
    /// The built-ins plus every `*.json` file in `dir` (not recursive).
    pub fn load(dir: Option<&Path>) -> Result<ModelRegistry, ModelsError> {
        let mut reg = ModelRegistry::default();
        if let Some(dir) = dir {
            let io = |source| ModelsError::Io { path: dir.display().to_string(), source };
            let mut files: Vec<_> = std::fs::read_dir(dir)
                .map_err(io)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "json") && p.is_file())
                .collect();
            files.sort();
            for path in files {
                let shown = path.display().to_string();
                let bytes = std::fs::read(&path).map_err(|source| ModelsError::Io { path: shown.clone(), source })?;
                let model =
                    WorkflowModel::from_json(&bytes).map_err(|source| ModelsError::Invalid { path: shown, source })?;
                tracing::info!(model = %model.id, version = model.version, file = %path.display(), "workflow model loaded");
                reg.models.insert(model.id.clone(), model);
            }
        }
        reg.check_references()?;
        Ok(reg)
    }

    fn check_references(&self) -> Result<(), ModelsError> {
        for m in self.models.values() {
            if let Some(o) = m.offload_step() {
                let why = match self.models.get(&o.model) {
                    None => Some("which is not a known model"),
                    Some(t) if t.offload_step().is_some() => Some("which offloads again; a worker runs it locally"),
                    Some(_) => None,
                };
                if let Some(why) = why {
                    return Err(ModelsError::BadReference { model: m.id.clone(), target: o.model.clone(), why });
                }
            }
        }
        Ok(())
    }

    pub fn get(&self, id: &str) -> Option<&WorkflowModel> {
        self.models.get(id)
    }

    pub fn all(&self) -> impl Iterator<Item = &WorkflowModel> {
        self.models.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::workflow::{DAM_UPDATE_ASSET, DAM_UPDATE_ASSET_OFFLOADING};
    use serde_json::json;

    #[test]
    fn builtins_are_always_there_and_files_override_them() {
        let dir = tempfile::tempdir().unwrap();
        let reg = ModelRegistry::load(Some(dir.path())).unwrap();
        assert!(reg.get(DAM_UPDATE_ASSET).is_some() && reg.get(DAM_UPDATE_ASSET_OFFLOADING).is_some());
        let custom = json!({"id": "dam/update_asset", "version": 7, "title": "mine", "steps": [{"type": "metadata"}]});
        std::fs::write(dir.path().join("a.json"), custom.to_string()).unwrap();
        std::fs::write(dir.path().join("ignored.txt"), "x").unwrap();
        let reg = ModelRegistry::load(Some(dir.path())).unwrap();
        assert_eq!(reg.get(DAM_UPDATE_ASSET).unwrap().version, 7);
    }

    #[test]
    fn broken_files_and_dangling_references_fail_the_load() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.json"), "{").unwrap();
        let e = ModelRegistry::load(Some(dir.path())).unwrap_err().to_string();
        assert!(e.contains("a.json"), "{e}");
        let off = json!({"id": "x", "version": 1, "title": "x", "steps": [{"type": "offload", "model": "nope"}]});
        std::fs::write(dir.path().join("a.json"), off.to_string()).unwrap();
        let e = ModelRegistry::load(Some(dir.path())).unwrap_err().to_string();
        assert!(e.contains("not a known model"), "{e}");
    }
}
