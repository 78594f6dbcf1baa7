//! The renditions engine of offloader: image bytes in, metadata and rendition bytes out.
//!
//! It knows nothing of queues or object stores. [`process`] reads the headers (refusing
//! decompression bombs before any pixel is decoded), decodes once — JPEGs with libjpeg-turbo's
//! DCT-domain downscaling when the renditions are much smaller than the photo — applies the EXIF
//! orientation, and makes each rendition from the previous, larger one with a SIMD Lanczos3
//! resampler, then encodes them.
//!
//! ```no_run
//! use offloader_renditions::{process, Limits, RenditionSpec};
//! let bytes = std::fs::read("photo.jpg").unwrap();
//! let out = process(&bytes, &RenditionSpec::aem_defaults(), &Limits::default()).unwrap();
//! for r in &out.renditions {
//!     println!("{} {}x{} {} bytes", r.name, r.width, r.height, r.bytes.len());
//! }
//! ```

pub mod bench;
mod decode;
mod encode;
mod error;
mod jpeg;
mod metadata;
mod pixels;
pub mod quality;
mod resize;
mod spec;

use serde::{Deserialize, Serialize};

pub use error::EngineError;
pub use metadata::{ColorType, ExifData, ImageFormat, Metadata};
pub use pixels::{Layout, RawImage};
pub use resize::Filter;
pub use spec::{fit_inside, Format, RenditionSpec, DEFAULT_JPEG_QUALITY};

/// Hard limits applied to every input, checked before any large allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Largest image accepted, in pixels (width x height as stored), read from the header.
    pub max_pixels: u64,
    /// Largest input accepted, in bytes.
    pub max_input_bytes: u64,
    /// Largest memory a decoder may allocate, in bytes.
    pub max_alloc: u64,
}

impl Default for Limits {
    /// 100 megapixels, 256 MiB of input, 1 GiB of decoder memory.
    fn default() -> Self {
        Limits {
            max_pixels: 100_000_000,
            max_input_bytes: 256 << 20,
            max_alloc: 1 << 30,
        }
    }
}

/// Speed/quality knobs. The defaults are what the benchmark measured as best; they are exposed
/// for the benchmark and for experiments.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tuning {
    /// Resampling filter for every resize.
    pub filter: Filter,
    /// When shrinking a JPEG while decoding, keep at least this many times the largest
    /// rendition's size on each axis, so the final resize still filters (>= 1.0).
    pub dct_margin: f32,
    /// Allow every DCT scale n/8 (else only 1/8, 1/4, 1/2 and 1, which have SIMD IDCTs).
    pub dct_all_eighths: bool,
    /// Make each rendition from the previous, larger one (else each from the decoded image).
    pub chain: bool,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            filter: Filter::Lanczos3,
            dct_margin: 2.0,
            dct_all_eighths: true,
            chain: true,
        }
    }
}

/// One produced rendition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendition {
    /// The spec's name.
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub mime_type: &'static str,
    /// The encoded file.
    pub bytes: Vec<u8>,
}

/// The result of [`process`]: the metadata and one rendition per spec, in the specs' order.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    pub metadata: Metadata,
    pub renditions: Vec<Rendition>,
}

/// Read an image's metadata from its headers, without decoding pixels. Refuses inputs over the
/// limits like [`process`] does.
pub fn extract_metadata(input: &[u8], limits: &Limits) -> Result<Metadata, EngineError> {
    Ok(decode::probe(input, limits)?.metadata)
}

/// Produce the metadata and every rendition of `specs` from an encoded image.
pub fn process(
    input: &[u8],
    specs: &[RenditionSpec],
    limits: &Limits,
) -> Result<Output, EngineError> {
    process_with(input, specs, limits, &Tuning::default())
}

/// [`process`] with explicit [`Tuning`].
pub fn process_with(
    input: &[u8],
    specs: &[RenditionSpec],
    limits: &Limits,
    tuning: &Tuning,
) -> Result<Output, EngineError> {
    let (metadata, images) = render_with(input, specs, limits, tuning)?;
    let renditions = specs
        .iter()
        .zip(images)
        .map(|(spec, img)| {
            let bytes = encode::encode(&img, spec)?;
            Ok(Rendition {
                name: spec.name.clone(),
                width: img.width,
                height: img.height,
                mime_type: spec.format.mime_type(),
                bytes,
            })
        })
        .collect::<Result<Vec<_>, EngineError>>()?;
    Ok(Output {
        metadata,
        renditions,
    })
}

fn validate(spec: &RenditionSpec) -> Result<(), EngineError> {
    let bad = |detail: &str| EngineError::InvalidSpec {
        name: spec.name.clone(),
        detail: detail.to_string(),
    };
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

/// The rendition pipeline without the final encoding: the metadata and, per spec (in order),
/// the displayed (oriented) pixels. Used by [`process_with`], the quality checks and the
/// benchmark.
pub fn render_with(
    input: &[u8],
    specs: &[RenditionSpec],
    limits: &Limits,
    tuning: &Tuning,
) -> Result<(Metadata, Vec<RawImage>), EngineError> {
    let metadata = decode::probe(input, limits)?.metadata;
    for spec in specs {
        validate(spec)?;
    }
    if specs.is_empty() {
        return Ok((metadata, Vec::new()));
    }
    let orientation = metadata.orientation;
    let targets: Vec<(u32, u32)> = specs
        .iter()
        .map(|s| s.fit(metadata.width, metadata.height))
        .collect();
    // Largest first; each later one is made from the one before it.
    let mut order: Vec<usize> = (0..specs.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(targets[i].0 as u64 * targets[i].1 as u64));
    let largest = targets[order[0]];
    let stored_target = if pixels::transposes(orientation) {
        (largest.1, largest.0)
    } else {
        largest
    };
    let decoded = decode::decode(input, &metadata, Some(stored_target), limits, tuning)?;

    let mut resizer = resize::Resizer::new(tuning.filter);
    let mut out: Vec<Option<RawImage>> = vec![None; specs.len()];
    // The first rendition is resized in the stored frame, then oriented (cheaper than orienting
    // the full decoded image); the oriented result feeds the rest of the chain.
    let first = resizer.resize(&decoded, stored_target.0, stored_target.1)?;
    let first = first.oriented(orientation);
    let decoded_oriented = if tuning.chain {
        None
    } else {
        Some(decoded.oriented(orientation))
    };
    let mut prev = first;
    out[order[0]] = Some(prev.clone());
    for &i in &order[1..] {
        let (w, h) = targets[i];
        let src = decoded_oriented.as_ref().unwrap_or(&prev);
        let img = resizer.resize(src, w, h)?;
        out[i] = Some(img.clone());
        if tuning.chain {
            prev = img;
        }
    }
    Ok((metadata, out.into_iter().map(Option::unwrap).collect()))
}
