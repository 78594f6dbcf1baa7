//! Processing profiles on the leader: kept as ledger documents, applied to folders, resolved
//! for an asset when its workflow starts.
//!
//! Two document kinds, so both ledger engines keep them with the statements they already have:
//! `profile` (key: the name; the [`ProcessingProfile`]) and `profile-folder` (key: the folder
//! path; `{"profile": "<name>"}`), as AEM keeps the profile a folder uses on the folder itself.
//! Resolving is a handful of key lookups, the asset's ancestor folders nearest first, in one
//! transaction; removing a profile removes its folder assignments in the same transaction, so no
//! folder ever names a profile that does not exist.

use crate::leader::ledger::{Ledger, LedgerError, Tx};
use crate::protocol::api::{FolderProfile, ProfileList, ResolvedProfile};
use crate::protocol::profile::ancestor_folders;
use crate::protocol::{AssetPath, ProcessingProfile};
use serde_json::{json, Value};

const PROFILE: &str = "profile";
const FOLDER: &str = "profile-folder";
/// Folder assignments read per page when listing.
const PAGE: usize = 1000;

/// Why a profile change is refused.
#[derive(Debug, thiserror::Error)]
pub enum ProfileStoreError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("no processing profile {0:?}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
}

/// The profiles and their folders; a view on the ledger's documents.
#[derive(Clone)]
pub struct ProfileStore {
    ledger: Ledger,
}

async fn profile(t: &mut dyn Tx, name: &str) -> Result<Option<ProcessingProfile>, LedgerError> {
    Ok(t.doc(PROFILE, name).await?.map(serde_json::from_value).transpose()?)
}

/// The profile name a folder document holds.
fn assigned(doc: &Value) -> Option<String> {
    doc.get("profile").and_then(Value::as_str).map(str::to_owned)
}

async fn assignments(t: &mut dyn Tx) -> Result<Vec<FolderProfile>, LedgerError> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = t.docs(FOLDER, "", after.as_deref(), PAGE).await?;
        let full = page.len() == PAGE;
        for (folder, doc) in page {
            if let Some(profile) = assigned(&doc) {
                out.push(FolderProfile { folder: folder.clone(), profile });
            }
            after = Some(folder);
        }
        if !full {
            return Ok(out);
        }
    }
}

impl ProfileStore {
    pub fn new(ledger: Ledger) -> Self {
        ProfileStore { ledger }
    }

    /// Every profile, by name, and every folder a profile is applied to, by path.
    pub async fn list(&self) -> Result<ProfileList, LedgerError> {
        self.ledger
            .run(|t| {
                Box::pin(async move {
                    let mut profiles = Vec::new();
                    let mut after: Option<String> = None;
                    loop {
                        let page = t.docs(PROFILE, "", after.as_deref(), PAGE).await?;
                        let full = page.len() == PAGE;
                        for (name, doc) in page {
                            profiles.push(serde_json::from_value(doc)?);
                            after = Some(name);
                        }
                        if !full {
                            break;
                        }
                    }
                    Ok(ProfileList { profiles, folders: assignments(t).await? })
                })
            })
            .await
    }

    pub async fn get(&self, name: String) -> Result<Option<ProcessingProfile>, LedgerError> {
        self.ledger.run(move |t| Box::pin(async move { profile(t, &name).await })).await
    }

    /// Creates or replaces a profile (validated first); `true` when it is new. Folders it is
    /// applied to use the new version from the next workflow that starts there.
    pub async fn put(&self, p: ProcessingProfile) -> Result<bool, ProfileStoreError> {
        p.validate().map_err(|e| ProfileStoreError::Invalid(e.to_string()))?;
        let doc = serde_json::to_value(&p).map_err(LedgerError::from)?;
        Ok(self
            .ledger
            .run(move |t| {
                Box::pin(async move {
                    let new = t.doc(PROFILE, &p.name).await?.is_none();
                    t.put_doc(PROFILE, &p.name, &doc).await?;
                    Ok(new)
                })
            })
            .await?)
    }

    /// Removes a profile and takes it off every folder it was applied to; answers it and those
    /// folders, `None` when there was no such profile.
    pub async fn remove(&self, name: String) -> Result<Option<(ProcessingProfile, Vec<String>)>, LedgerError> {
        self.ledger
            .run(move |t| {
                Box::pin(async move {
                    let Some(p) = profile(t, &name).await? else { return Ok(None) };
                    let mut folders = Vec::new();
                    for a in assignments(t).await?.into_iter().filter(|a| a.profile == name) {
                        t.delete_doc(FOLDER, &a.folder).await?;
                        folders.push(a.folder);
                    }
                    t.delete_doc(PROFILE, &name).await?;
                    Ok(Some((p, folders)))
                })
            })
            .await
    }

    /// Applies profile `name` to `folder` and everything below it (replacing the folder's
    /// previous profile); the profile must exist.
    pub async fn apply(&self, folder: AssetPath, name: String) -> Result<FolderProfile, ProfileStoreError> {
        let wanted = name.clone();
        let out = self
            .ledger
            .run(move |t| {
                Box::pin(async move {
                    if profile(t, &name).await?.is_none() {
                        return Ok(None);
                    }
                    t.put_doc(FOLDER, folder.as_str(), &json!({ "profile": name })).await?;
                    Ok(Some(FolderProfile { folder: folder.to_string(), profile: name }))
                })
            })
            .await?;
        out.ok_or(ProfileStoreError::NotFound(wanted))
    }

    /// Takes the profile off `folder` (folders above it may still have one); answers what was
    /// applied there, `None` when nothing was.
    pub async fn unapply(&self, folder: AssetPath) -> Result<Option<FolderProfile>, LedgerError> {
        self.ledger
            .run(move |t| {
                Box::pin(async move {
                    let Some(doc) = t.doc(FOLDER, folder.as_str()).await? else { return Ok(None) };
                    t.delete_doc(FOLDER, folder.as_str()).await?;
                    Ok(assigned(&doc).map(|profile| FolderProfile { folder: folder.to_string(), profile }))
                })
            })
            .await
    }

    /// The profile that holds for `path`: the one applied to the nearest folder above it, or to
    /// `path` itself when `path_is_folder`.
    pub async fn resolve(&self, path: AssetPath, path_is_folder: bool) -> Result<ResolvedProfile, LedgerError> {
        self.ledger
            .run(move |t| {
                Box::pin(async move {
                    for folder in ancestor_folders(path.as_str(), path_is_folder) {
                        let Some(name) = t.doc(FOLDER, &folder).await?.as_ref().and_then(assigned) else {
                            continue;
                        };
                        // Removal takes a profile off its folders in the same transaction, so
                        // this is found; were it not, the folder would act as if it had none.
                        if let Some(p) = profile(t, &name).await? {
                            return Ok(ResolvedProfile {
                                path: path.to_string(),
                                folder: Some(folder),
                                profile: Some(p),
                            });
                        }
                    }
                    Ok(ResolvedProfile { path: path.to_string(), folder: None, profile: None })
                })
            })
            .await
    }
}
