//! Processing profiles as the API shows them: the profiles, the folders they are applied to,
//! and which profile holds for a path.

use crate::protocol::ProcessingProfile;
use serde::{Deserialize, Serialize};

/// A profile applied to a folder: it holds for the folder and everything below it, unless a
/// folder nearer an asset has one of its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FolderProfile {
    pub folder: String,
    pub profile: String,
}

/// `PUT /api/folder-profiles/{*folder}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplyProfile {
    /// The name of an existing profile.
    pub profile: String,
}

/// `GET /api/profiles`: every profile, by name, and every folder one is applied to, by path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProfileList {
    pub profiles: Vec<ProcessingProfile>,
    pub folders: Vec<FolderProfile>,
}

/// `GET /api/folder-profiles/{*path}`: the profile that holds for a folder (or an asset's path),
/// and the folder it is applied to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ResolvedProfile {
    pub path: String,
    /// The nearest folder with a profile; absent when none holds.
    #[serde(default)]
    pub folder: Option<String>,
    #[serde(default)]
    pub profile: Option<ProcessingProfile>,
}

/// `DELETE /api/profiles/{name}`: the profile removed and the folders it was taken off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RemovedProfile {
    pub profile: ProcessingProfile,
    pub folders: Vec<String>,
}
