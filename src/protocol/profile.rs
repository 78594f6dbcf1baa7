//! Processing profiles, as in AEM as a Cloud Service: renditions an administrator adds to the
//! standard ones for the assets of a folder.
//!
//! A [`ProcessingProfile`] names renditions (format, the box they fit in, JPEG quality, and the
//! MIME types they are made for) and may ask for AEM's FPO ("for placement only") rendition. A
//! profile is applied to folders; it then holds for every asset in the folder and below it,
//! unless a folder nearer the asset has a profile of its own ([`ancestor_folders`] lists the
//! folders to look at, nearest first). The leader
//! resolves the profile when it starts an asset's workflow and puts the renditions that apply to
//! the asset's MIME type into the job ([`JobProfile`], the job property
//! [`PROFILE_PROPERTY`](crate::protocol::offloading::PROFILE_PROPERTY)), so a worker needs to know
//! nothing of profiles or folders, and a job in flight keeps the profile it was started with.
//!
//! MIME type filters follow AEM's "Includes" and "Excludes" lists, exclude first: a rendition is
//! made for a type that no exclude pattern matches and that an include pattern matches, an empty
//! include list matching every type. Patterns are `type/subtype`, `type/*` or `*/*`, compared
//! without case.
//!
//! Everything here is pure: validation, matching and resolution; storage is the leader's.

use super::workflow::{valid_rendition_name, ImageFormat, Rendition};
use serde::{Deserialize, Serialize};

/// The schema id of the profile a job carries.
pub const JOB_PROFILE_SCHEMA: &str = "offloader.job-profile.v1";
/// Longest profile name accepted.
pub const MAX_PROFILE_NAME_LEN: usize = 100;
/// Most renditions one profile may name (the FPO rendition aside).
pub const MAX_PROFILE_RENDITIONS: usize = 32;
/// Largest width or height of a profile rendition's box: beyond it a "rendition" is a copy of a
/// camera original, which is what the original is for.
pub const MAX_RENDITION_SIDE: u32 = 10_000;
/// Most MIME patterns in one include or exclude list.
pub const MAX_MIME_PATTERNS: usize = 64;
/// Rendition names with this prefix are the standard renditions' and the FPO rendition's.
pub const RESERVED_PREFIX: &str = "cq5dam.";
/// AEM's name of the FPO rendition.
pub const FPO_RENDITION: &str = "cq5dam.fpo.jpeg";
/// The FPO rendition's JPEG quality: AEM makes it at 10 %, small and meant to be replaced.
pub const FPO_QUALITY: u8 = 10;
/// The box the FPO rendition fits in. AEM downsamples to 72 PPI, which the engine cannot know
/// for every format; a fixed box keeps the file small with the original's aspect ratio.
pub const FPO_SIDE: u32 = 2048;

/// One rendition of a profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileRendition {
    /// The rendition's name, one path segment (`web.800.webp`); not starting with `cq5dam.`.
    pub name: String,
    pub format: ImageFormat,
    /// Largest width, in pixels (1 to 10000); the rendition keeps the aspect ratio and is never
    /// larger than the original.
    pub width: u32,
    /// Largest height, in pixels (1 to 10000).
    pub height: u32,
    /// JPEG quality 1..=100 (jpeg only; default 90). PNG, GIF and WebP are lossless here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<u8>,
    /// MIME types the rendition is made for (`image/*`, `image/png`); empty: every type.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include_mime_types: Vec<String>,
    /// MIME types it is never made for; checked first, so an exclude wins over an include.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_mime_types: Vec<String>,
}

/// A processing profile: renditions added to the standard ones for the assets of the folders
/// it is applied to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProcessingProfile {
    /// `A-Z a-z 0-9 _ - .`, at most 100 bytes, not starting with a dot.
    pub name: String,
    #[serde(default)]
    pub renditions: Vec<ProfileRendition>,
    /// Also make AEM's FPO rendition, `cq5dam.fpo.jpeg`: a JPEG at quality 10 inside
    /// 2048 x 2048, for layout programs to place until the original replaces it.
    #[serde(default)]
    pub fpo: bool,
}

/// Why a profile is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ProfileError(pub String);

/// Whether `name` may name a profile.
pub fn valid_profile_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_PROFILE_NAME_LEN
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Whether `pattern` is a MIME pattern: `type/subtype`, `type/*` or `*/*`, of RFC 6838's
/// restricted name characters.
pub fn valid_mime_pattern(pattern: &str) -> bool {
    let token = |s: &str| {
        !s.is_empty() && s.len() <= 127 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    match pattern.split_once('/') {
        Some(("*", "*")) => true,
        Some((t, "*")) => token(t),
        Some((t, s)) => token(t) && token(s),
        None => false,
    }
}

/// Whether the MIME pattern matches `mime` (parameters such as `; charset=` ignored).
pub fn mime_matches(pattern: &str, mime: &str) -> bool {
    let mime = mime.split(';').next().unwrap_or("").trim();
    let Some((mt, ms)) = mime.split_once('/') else { return false };
    match pattern.split_once('/') {
        Some(("*", "*")) => true,
        Some((t, "*")) => t.eq_ignore_ascii_case(mt),
        Some((t, s)) => t.eq_ignore_ascii_case(mt) && s.eq_ignore_ascii_case(ms),
        None => false,
    }
}

impl ProfileRendition {
    /// Whether the rendition is made for an asset of type `mime`: excludes first, then
    /// includes (none: every type).
    pub fn applies_to(&self, mime: &str) -> bool {
        if self.exclude_mime_types.iter().any(|p| mime_matches(p, mime)) {
            return false;
        }
        self.include_mime_types.is_empty() || self.include_mime_types.iter().any(|p| mime_matches(p, mime))
    }

    /// The rendition as a workflow step makes it.
    pub fn rendition(&self) -> Rendition {
        Rendition {
            name: self.name.clone(),
            width: self.width,
            height: self.height,
            format: self.format,
            quality: self.quality,
        }
    }
}

impl ProcessingProfile {
    /// Checks everything serde cannot, saying what is wrong with which rendition.
    pub fn validate(&self) -> Result<(), ProfileError> {
        let bad = |s: String| Err(ProfileError(s));
        if !valid_profile_name(&self.name) {
            return bad(format!(
                "profile name {:?} must be 1 to {MAX_PROFILE_NAME_LEN} of A-Z, a-z, 0-9, '_', '-' and '.', not starting with '.'",
                self.name
            ));
        }
        if self.renditions.len() > MAX_PROFILE_RENDITIONS {
            return bad(format!("a profile names at most {MAX_PROFILE_RENDITIONS} renditions"));
        }
        if self.renditions.is_empty() && !self.fpo {
            return bad("a profile needs at least one rendition, or fpo".into());
        }
        let mut names = std::collections::BTreeSet::new();
        for r in &self.renditions {
            let name = &r.name;
            if !valid_rendition_name(name) {
                return bad(format!("rendition name {name:?} must be a single path segment of at most 255 bytes"));
            }
            if name.starts_with(RESERVED_PREFIX) {
                return bad(format!(
                    "rendition name {name:?}: names starting with {RESERVED_PREFIX:?} are the standard and FPO renditions'"
                ));
            }
            if !names.insert(name.as_str()) {
                return bad(format!("rendition {name:?} is listed twice"));
            }
            if !(1..=MAX_RENDITION_SIDE).contains(&r.width) || !(1..=MAX_RENDITION_SIDE).contains(&r.height) {
                return bad(format!("rendition {name:?}: width and height must be 1 to {MAX_RENDITION_SIDE} pixels"));
            }
            match (r.format, r.quality) {
                (ImageFormat::Jpeg, Some(q)) if !(1..=100).contains(&q) => {
                    return bad(format!("rendition {name:?}: quality must be 1 to 100"));
                }
                (ImageFormat::Png | ImageFormat::Gif | ImageFormat::Webp, Some(_)) => {
                    return bad(format!(
                        "rendition {name:?}: quality applies to jpeg only (png, gif and webp are lossless here)"
                    ));
                }
                _ => {}
            }
            for (list, which) in [(&r.include_mime_types, "include"), (&r.exclude_mime_types, "exclude")] {
                if list.len() > MAX_MIME_PATTERNS {
                    return bad(format!("rendition {name:?}: at most {MAX_MIME_PATTERNS} {which} MIME types"));
                }
                if let Some(p) = list.iter().find(|p| !valid_mime_pattern(p)) {
                    return bad(format!(
                        "rendition {name:?}: {which} MIME type {p:?} must be type/subtype, type/* or */*"
                    ));
                }
            }
        }
        Ok(())
    }

    /// What the profile adds to the workflow of an asset of type `mime`: the renditions whose
    /// MIME filters let it through, then the FPO rendition if asked. `None` when that is
    /// nothing, so the job carries no empty profile.
    pub fn for_asset(&self, mime: &str) -> Option<JobProfile> {
        let mut renditions: Vec<Rendition> =
            self.renditions.iter().filter(|r| r.applies_to(mime)).map(ProfileRendition::rendition).collect();
        if self.fpo {
            renditions.push(fpo_rendition());
        }
        (!renditions.is_empty()).then(|| JobProfile {
            schema: JOB_PROFILE_SCHEMA.into(),
            name: self.name.clone(),
            renditions,
        })
    }
}

/// AEM's FPO rendition.
pub fn fpo_rendition() -> Rendition {
    Rendition {
        name: FPO_RENDITION.into(),
        width: FPO_SIDE,
        height: FPO_SIDE,
        format: ImageFormat::Jpeg,
        quality: Some(FPO_QUALITY),
    }
}

/// What a job carries of a profile: its name and the renditions for this asset, already
/// filtered by MIME type. The contract is `schemas/offloader.job-profile.v1.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobProfile {
    /// Always [`JOB_PROFILE_SCHEMA`]; a worker refuses a version it does not know rather than
    /// make the wrong renditions.
    pub schema: String,
    pub name: String,
    pub renditions: Vec<Rendition>,
}

impl JobProfile {
    /// Checks what a worker must not trust blindly: the schema, names, sizes and qualities.
    pub fn validate(&self) -> Result<(), ProfileError> {
        let bad = |s: String| Err(ProfileError(s));
        if self.schema != JOB_PROFILE_SCHEMA {
            return bad(format!("profile schema is {:?}; this process knows {JOB_PROFILE_SCHEMA}", self.schema));
        }
        let mut names = std::collections::BTreeSet::new();
        for r in &self.renditions {
            if !valid_rendition_name(&r.name) || !names.insert(r.name.as_str()) {
                return bad(format!("profile rendition name {:?} is not a single path segment, or repeats", r.name));
            }
            if !(1..=MAX_RENDITION_SIDE).contains(&r.width) || !(1..=MAX_RENDITION_SIDE).contains(&r.height) {
                return bad(format!(
                    "profile rendition {:?}: width and height must be 1 to {MAX_RENDITION_SIDE}",
                    r.name
                ));
            }
            if matches!(r.quality, Some(q) if !(1..=100).contains(&q)) {
                return bad(format!("profile rendition {:?}: quality must be 1 to 100", r.name));
            }
        }
        Ok(())
    }
}

/// The folders whose profile could hold for `path`, nearest first: `/content/dam/a/b.jpg`
/// gives `/content/dam/a`, `/content/dam`, `/content`. A folder's own profile holds for it, so
/// a folder path gives itself first.
pub fn ancestor_folders(path: &str, include_self: bool) -> Vec<String> {
    let trimmed = path.trim_end_matches('/');
    let mut out = Vec::new();
    if include_self && !trimmed.is_empty() {
        out.push(trimmed.to_owned());
    }
    let mut rest = trimmed;
    while let Some(i) = rest.rfind('/') {
        rest = &rest[..i];
        if rest.is_empty() {
            break;
        }
        out.push(rest.to_owned());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rendition(name: &str, include: &[&str], exclude: &[&str]) -> ProfileRendition {
        ProfileRendition {
            name: name.into(),
            format: ImageFormat::Webp,
            width: 200,
            height: 200,
            quality: None,
            include_mime_types: include.iter().map(|s| s.to_string()).collect(),
            exclude_mime_types: exclude.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn mime_patterns_match_types_subtypes_and_wildcards_without_case() {
        assert!(mime_matches("image/*", "image/png"));
        assert!(mime_matches("IMAGE/PNG", "image/png; charset=binary"));
        assert!(mime_matches("*/*", "application/pdf"));
        assert!(!mime_matches("image/*", "application/pdf"));
        assert!(!mime_matches("image/png", "image/pngx"));
        assert!(!mime_matches("image/png", "nonsense"));
        for good in ["image/*", "*/*", "image/svg+xml", "application/vnd.adobe.photoshop"] {
            assert!(valid_mime_pattern(good), "{good}");
        }
        for bad in ["image", "*/png", "image/", "/png", "image/p ng", "image/png/x", ""] {
            assert!(!valid_mime_pattern(bad), "{bad}");
        }
    }

    #[test]
    fn exclude_comes_first_and_an_empty_include_means_every_type() {
        assert!(rendition("a", &[], &[]).applies_to("video/mp4"));
        assert!(rendition("a", &["image/*"], &[]).applies_to("image/gif"));
        assert!(!rendition("a", &["image/*"], &[]).applies_to("application/pdf"));
        let r = rendition("a", &["image/*"], &["image/gif"]);
        assert!(!r.applies_to("image/gif"), "exclude wins over a matching include");
        assert!(r.applies_to("image/jpeg"));
        assert!(!rendition("a", &[], &["*/*"]).applies_to("image/png"));
    }

    #[test]
    fn the_nearest_folder_with_a_profile_wins() {
        assert_eq!(ancestor_folders("/content/dam/a/b.jpg", false), ["/content/dam/a", "/content/dam", "/content"]);
        assert_eq!(ancestor_folders("/content/dam/a", true), ["/content/dam/a", "/content/dam", "/content"]);
        assert!(ancestor_folders("/x.jpg", false).is_empty());
        let with = ["/content/dam/a", "/content/dam/a/b"];
        let nearest = |path: &str| ancestor_folders(path, false).into_iter().find(|f| with.contains(&f.as_str()));
        assert_eq!(nearest("/content/dam/a/b/c/x.jpg").as_deref(), Some("/content/dam/a/b"));
        assert_eq!(nearest("/content/dam/a/bb/x.jpg").as_deref(), Some("/content/dam/a"), "a prefix is not a folder");
        assert_eq!(nearest("/content/dam/a/b").as_deref(), Some("/content/dam/a"), "an asset is not its own folder");
        assert_eq!(nearest("/content/dam/x.jpg"), None);
    }

    #[test]
    fn for_asset_keeps_the_renditions_for_the_type_and_adds_fpo() {
        let p = ProcessingProfile {
            name: "web".into(),
            renditions: vec![rendition("all.webp", &[], &[]), rendition("png-only.webp", &["image/png"], &[])],
            fpo: true,
        };
        p.validate().unwrap();
        let job = p.for_asset("image/jpeg").unwrap();
        let names: Vec<&str> = job.renditions.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["all.webp", FPO_RENDITION]);
        assert_eq!(job.renditions[1].quality, Some(FPO_QUALITY));
        job.validate().unwrap();
        let none = ProcessingProfile { fpo: false, renditions: vec![rendition("x", &["image/png"], &[])], ..p };
        assert!(none.for_asset("image/jpeg").is_none(), "nothing to add, no profile in the job");
    }

    #[test]
    fn bad_profiles_say_what_is_wrong() {
        let bad = |v: serde_json::Value| match serde_json::from_value::<ProcessingProfile>(v) {
            Ok(p) => p.validate().unwrap_err().to_string(),
            Err(e) => e.to_string(),
        };
        let r = |extra: serde_json::Value| {
            let mut r = json!({"name": "x.webp", "format": "webp", "width": 10, "height": 10});
            r.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            json!({"name": "p", "renditions": [r]})
        };
        assert!(bad(json!({"name": "a/b", "fpo": true})).contains("profile name"));
        assert!(bad(json!({"name": "p"})).contains("at least one rendition"));
        assert!(bad(r(json!({"width": 0}))).contains("1 to 10000"));
        assert!(bad(r(json!({"height": 10001}))).contains("1 to 10000"));
        assert!(bad(r(json!({"quality": 50}))).contains("jpeg only"));
        assert!(bad(r(json!({"format": "jpeg", "quality": 101}))).contains("1 to 100"));
        assert!(bad(r(json!({"format": "tiff"}))).contains("tiff"));
        assert!(bad(r(json!({"name": "cq5dam.web.1280.1280.jpeg"}))).contains("cq5dam."));
        assert!(bad(r(json!({"name": "../x"}))).contains("single path segment"));
        assert!(bad(r(json!({"include_mime_types": ["image"]}))).contains("type/subtype"));
        assert!(bad(r(json!({"colour": "red"}))).contains("colour"));
    }
}
