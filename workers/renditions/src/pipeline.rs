//! The rendition pipeline without the final encoding: probe, one decode (shrunk on load when
//! possible), then a chain of resizes from the largest rendition down to the smallest.

use crate::metadata::Metadata;
use crate::pixels::{transposes, RawImage};
use crate::resize::{Filter, Resizer};
use crate::spec::{Format, RenditionSpec};
use crate::{decode, probe, EngineError, Limits};

/// Speed/quality knobs. The defaults are the ones measured best (fast, and >= 40 dB against a
/// full-resolution Lanczos3 reference on every image of the benchmark corpus); the others exist
/// for the benchmark and for experiments.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tuning {
    /// Resampling filter for every resize.
    pub filter: Filter,
    /// When shrinking a JPEG while decoding, keep at least this many times the largest
    /// rendition's size on each axis, so the final resize still filters (values below 1 count
    /// as 1). 1.5 keeps the hardest corpus image at 42 dB; 1.1 dropped it to 35 dB.
    pub dct_margin: f32,
    /// Make each rendition from the previous, larger one (else each from the decoded image).
    pub chain: bool,
    /// When a high-quality progressive JPEG is shrunk on load, leave out its trailing scans that
    /// only refine the last bit of AC coefficients (see `scans.rs`: invisible at that scale,
    /// and the slowest third of the decode).
    pub skip_lsb_refinement: bool,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning { filter: Filter::Lanczos3, dct_margin: 1.5, chain: true, skip_lsb_refinement: true }
    }
}

/// The metadata and, per spec (in the specs' order), the displayed (oriented) pixels. Used by
/// [`process_with`](crate::process_with), the quality checks and the benchmark.
pub fn render_with(
    input: &[u8],
    specs: &[RenditionSpec],
    limits: &Limits,
    tuning: &Tuning,
) -> Result<(Metadata, Vec<RawImage>), EngineError> {
    render_probed(input, probe::probe(input, limits)?, specs, limits, tuning)
}

/// [`render_with`] from metadata already read (and perhaps adjusted: a camera raw's preview
/// takes the raw's orientation, a HEIF's decoded image has its rotation already applied).
pub(crate) fn render_probed(
    input: &[u8],
    metadata: Metadata,
    specs: &[RenditionSpec],
    limits: &Limits,
    tuning: &Tuning,
) -> Result<(Metadata, Vec<RawImage>), EngineError> {
    for spec in specs {
        validate(spec)?;
    }
    let targets: Vec<(u32, u32)> = specs.iter().map(|s| s.fit(metadata.width, metadata.height)).collect();
    // Largest first; each later one is made from the one before it.
    let mut order: Vec<usize> = (0..specs.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(u64::from(targets[i].0) * u64::from(targets[i].1)));
    let Some((&first, rest)) = order.split_first() else {
        return Ok((metadata, Vec::new()));
    };
    let orientation = metadata.orientation;
    let largest = targets[first];
    let stored_target = if transposes(orientation) { (largest.1, largest.0) } else { largest };
    let decoded = decode::decode(input, &metadata, Some(stored_target), limits, tuning)?;

    let mut resizer = Resizer::new(tuning.filter);
    let mut out: Vec<Option<RawImage>> = vec![None; specs.len()];
    // The largest rendition is resized in the stored frame, then oriented: cheaper than
    // orienting the whole decoded image. The oriented result feeds the rest of the chain.
    let largest_img = resizer.resize(&decoded, stored_target.0, stored_target.1)?.oriented(orientation);
    let decoded_oriented = (!tuning.chain).then(|| decoded.oriented(orientation));
    out[first] = Some(largest_img);
    let mut prev = first;
    for &i in rest {
        let (w, h) = targets[i];
        let src = match &decoded_oriented {
            Some(full) => full,
            None => {
                out[prev].as_ref().ok_or_else(|| EngineError::Resize { detail: "a rendition was skipped".into() })?
            }
        };
        let img = resizer.resize(src, w, h)?;
        out[i] = Some(img);
        prev = i;
    }
    let images = out.into_iter().flatten().collect::<Vec<_>>();
    if images.len() != specs.len() {
        return Err(EngineError::Resize { detail: "a rendition was not produced".into() });
    }
    Ok((metadata, images))
}

fn validate(spec: &RenditionSpec) -> Result<(), EngineError> {
    let bad = |detail: &str| EngineError::InvalidSpec { name: spec.name.clone(), detail: detail.to_string() };
    if spec.width == 0 || spec.height == 0 {
        return Err(bad("width and height must be at least 1"));
    }
    if let Format::Jpeg { quality } = spec.format {
        if !(1..=100).contains(&quality) {
            return Err(bad("JPEG quality must be within 1..=100"));
        }
    }
    Ok(())
}
