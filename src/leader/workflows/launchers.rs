//! Workflow launchers: which asset events start which workflow model.
//!
//! AEM's launchers match a node event (created / modified), a path glob and a MIME type, and
//! start a model. Ours are the same, as data (`--launchers FILE`, TOML or JSON), with AEM's two
//! DAM launchers built in: images created or modified under `/content/dam/**` run
//! `dam/update_asset_offloading`. A launcher may override the job topic, which is how images of
//! one kind go to dedicated workers (a worker made Exclusive on that topic does only those).
//!
//! Unlike AEM, where every matching launcher starts its workflow (and exclusions keep two from
//! running on one asset), the *first* enabled launcher that matches wins: one asset event,
//! at most one workflow, with no exclusion lists to keep in sync. Put specific launchers first.
//!
//! Globs: in paths, `*` matches within one segment and `**` (a whole segment) any number of
//! segments, including none; in MIME types, `*` matches any run of characters (`image/*`).
//!
//! A launcher whose model has no offload step (`dam/update_asset`) runs it on the leader
//! itself, as AEM does without offloading; see [`super::local`].

use crate::models::ModelRegistry;
use crate::protocol::workflow::DAM_UPDATE_ASSET_OFFLOADING;
use crate::protocol::Topic;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// What happened to an asset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AssetEvent {
    /// A path that did not exist before.
    Created,
    /// New bytes at a known path.
    Modified,
}

/// One launcher.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Launcher {
    /// A name for logs and listings.
    pub id: String,
    pub event: AssetEvent,
    /// Path glob, e.g. `/content/dam/**`.
    pub path: String,
    /// MIME type glob, e.g. `image/*`; alternatives separated by `|`, e.g.
    /// `image/*|video/*|application/pdf`.
    #[serde(default = "any_mime")]
    pub mime_type: String,
    /// Id of the workflow model to start.
    pub workflow: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Publish the job on this topic instead of the model's offload step topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<Topic>,
}

fn any_mime() -> String {
    "*".into()
}

fn yes() -> bool {
    true
}

#[derive(Debug, thiserror::Error)]
pub enum LaunchersError {
    #[error("cannot read launchers file {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("launchers file {path}: {reason}")]
    Invalid { path: String, reason: String },
}

/// The file's shape: `[[launcher]]` tables in TOML, `{"launchers": [...]}` in JSON.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LaunchersFile {
    #[serde(alias = "launcher", default)]
    launchers: Vec<Launcher>,
}

/// What the default launchers start DAM Update Asset for.
pub const DAM_MIME_TYPES: &str = "image/*|video/*|application/pdf";

/// The launchers, in the order they are tried.
#[derive(Debug, Clone)]
pub struct Launchers {
    list: Vec<Launcher>,
}

impl Launchers {
    /// AEM's two DAM Update Asset launchers, for every type the renditions engine renders
    /// (docs/formats.md): images, videos and PDFs.
    pub fn defaults() -> Launchers {
        let dam = |id: &str, event| Launcher {
            id: id.into(),
            event,
            path: "/content/dam/**".into(),
            mime_type: DAM_MIME_TYPES.into(),
            workflow: DAM_UPDATE_ASSET_OFFLOADING.into(),
            enabled: true,
            topic: None,
        };
        Launchers {
            list: vec![
                dam("dam_update_asset_create", AssetEvent::Created),
                dam("dam_update_asset_modify", AssetEvent::Modified),
            ],
        }
    }

    /// Reads `file` (TOML, or JSON when it ends in `.json`); it replaces the defaults entirely,
    /// so a file can also turn them off. Without a file, the defaults.
    pub fn load(file: Option<&Path>, models: &ModelRegistry) -> Result<Launchers, LaunchersError> {
        let Some(file) = file else {
            let d = Launchers::defaults();
            d.check(models, "built-in launchers")?;
            return Ok(d);
        };
        let shown = file.display().to_string();
        let text =
            std::fs::read_to_string(file).map_err(|source| LaunchersError::Io { path: shown.clone(), source })?;
        let invalid = |reason: String| LaunchersError::Invalid { path: shown.clone(), reason };
        let parsed: LaunchersFile = if file.extension().is_some_and(|e| e == "json") {
            serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?
        } else {
            toml::from_str(&text).map_err(|e| invalid(e.to_string()))?
        };
        let launchers = Launchers { list: parsed.launchers };
        launchers.check(models, &shown)?;
        Ok(launchers)
    }

    fn check(&self, models: &ModelRegistry, origin: &str) -> Result<(), LaunchersError> {
        let invalid = |reason: String| LaunchersError::Invalid { path: origin.into(), reason };
        for l in &self.list {
            let Some(model) = models.get(&l.workflow) else {
                return Err(invalid(format!("launcher {:?} starts unknown workflow model {:?}", l.id, l.workflow)));
            };
            if l.topic.is_some() && model.offload_step().is_none() {
                return Err(invalid(format!(
                    "launcher {:?} sets a topic, but its model {:?} runs on the leader itself (it has no offload step)",
                    l.id, l.workflow
                )));
            }
            if !l.path.starts_with('/') {
                return Err(invalid(format!("launcher {:?}: path glob {:?} must start with '/'", l.id, l.path)));
            }
        }
        Ok(())
    }

    pub fn list(&self) -> &[Launcher] {
        &self.list
    }

    /// The first enabled launcher matching the event, path and MIME type.
    pub fn find(&self, event: AssetEvent, path: &str, mime_type: &str) -> Option<&Launcher> {
        self.list.iter().find(|l| {
            l.enabled && l.event == event && path_glob(&l.path, path) && mime_matches(&l.mime_type, mime_type)
        })
    }
}

/// A launcher's MIME pattern: globs separated by `|`, any of which may match.
fn mime_matches(pattern: &str, mime_type: &str) -> bool {
    pattern.split('|').any(|p| wildcard(p.trim(), mime_type))
}

/// Path glob over `/` segments: `**` is any number of segments, `*` inside a segment any run of
/// characters within it.
pub fn path_glob(pattern: &str, path: &str) -> bool {
    let pat: Vec<&str> = pattern.trim_start_matches('/').split('/').collect();
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    fn go(p: &[&str], s: &[&str]) -> bool {
        match p.split_first() {
            None => s.is_empty(),
            Some((&"**", rest)) => (0..=s.len()).any(|i| go(rest, &s[i..])),
            Some((head, rest)) => s.split_first().is_some_and(|(first, tail)| wildcard(head, first) && go(rest, tail)),
        }
    }
    go(&pat, &segs)
}

/// `*` matches any run of characters (case-insensitive, as MIME types are).
pub fn wildcard(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let t: Vec<char> = text.to_lowercase().chars().collect();
    // Iterative matching with backtracking to the last star: linear-ish, no recursion blow-up.
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && p[pi] != '*' && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(path_glob("/content/dam/**", "/content/dam/a.jpg"));
        assert!(path_glob("/content/dam/**", "/content/dam/x/y/a.jpg"));
        assert!(!path_glob("/content/dam/**", "/content/other/a.jpg"));
        assert!(path_glob("/content/dam/*/a.jpg", "/content/dam/x/a.jpg"));
        assert!(!path_glob("/content/dam/*/a.jpg", "/content/dam/x/y/a.jpg"));
        assert!(path_glob("/content/dam/**/*.png", "/content/dam/x/y/a.png"));
        assert!(!path_glob("/content/dam/**/*.png", "/content/dam/x/y/a.jpg"));
        assert!(wildcard("image/*", "image/jpeg"));
        assert!(wildcard("*", "application/pdf"));
        assert!(wildcard("IMAGE/JPEG", "image/jpeg"));
        assert!(!wildcard("image/*", "video/mp4"));
        assert!(mime_matches(DAM_MIME_TYPES, "video/quicktime"));
        assert!(mime_matches(DAM_MIME_TYPES, "application/pdf"));
        assert!(mime_matches(DAM_MIME_TYPES, "image/vnd.adobe.photoshop"));
        assert!(!mime_matches(DAM_MIME_TYPES, "text/plain"));
    }

    #[test]
    fn first_enabled_match_wins_and_defaults_are_aems() {
        let d = Launchers::defaults();
        let l = d.find(AssetEvent::Created, "/content/dam/a.jpg", "image/jpeg").unwrap();
        assert_eq!(l.workflow, DAM_UPDATE_ASSET_OFFLOADING);
        assert!(d.find(AssetEvent::Modified, "/content/dam/a.jpg", "image/png").is_some());
        assert!(d.find(AssetEvent::Created, "/content/dam/a.pdf", "application/pdf").is_some());
        assert!(d.find(AssetEvent::Created, "/content/dam/a.mov", "video/quicktime").is_some());
        assert!(d.find(AssetEvent::Created, "/content/dam/a.txt", "text/plain").is_none());
        assert!(d.find(AssetEvent::Created, "/var/a.jpg", "image/jpeg").is_none());
    }

    #[test]
    fn files_in_toml_and_json() {
        let models = ModelRegistry::default();
        let dir = tempfile::tempdir().unwrap();
        let toml = dir.path().join("l.toml");
        std::fs::write(
            &toml,
            r#"
[[launcher]]
id = "special"
event = "created"
path = "/content/dam/special/**"
mime_type = "image/*"
workflow = "dam/update_asset_offloading"
topic = "acme/special"

[[launcher]]
id = "off"
event = "modified"
path = "/**"
workflow = "dam/update_asset_offloading"
enabled = false
"#,
        )
        .unwrap();
        let l = Launchers::load(Some(&toml), &models).unwrap();
        let hit = l.find(AssetEvent::Created, "/content/dam/special/a.png", "image/png").unwrap();
        assert_eq!(hit.topic.as_ref().unwrap().as_str(), "acme/special");
        assert!(l.find(AssetEvent::Modified, "/x", "image/png").is_none(), "disabled launchers never fire");
        let json = dir.path().join("l.json");
        std::fs::write(&json, r#"{"launchers": [{"id": "x", "event": "created", "path": "/**", "workflow": "nope"}]}"#)
            .unwrap();
        let e = Launchers::load(Some(&json), &models).unwrap_err().to_string();
        assert!(e.contains("unknown workflow model"), "{e}");
    }
}
