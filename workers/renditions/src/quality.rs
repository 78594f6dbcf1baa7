//! Quality measurement: PSNR of the engine's output against a slow, full-resolution reference.

use crate::decode;
use crate::pixels::RawImage;
use crate::resize::{Filter, Resizer};
use crate::{EngineError, Limits, Tuning};

/// Peak signal-to-noise ratio in dB between two images of the same size, over RGB (gray is
/// expanded, alpha flattened onto white). Identical images give `f64::INFINITY`.
pub fn psnr(a: &RawImage, b: &RawImage) -> f64 {
    assert_eq!(
        (a.width, a.height),
        (b.width, b.height),
        "PSNR needs images of the same size"
    );
    let (a, b) = (a.to_rgb(), b.to_rgb());
    let sum: u64 = a
        .data
        .iter()
        .zip(&b.data)
        .map(|(&x, &y)| {
            let d = x as i64 - y as i64;
            (d * d) as u64
        })
        .sum();
    if sum == 0 {
        return f64::INFINITY;
    }
    let mse = sum as f64 / a.data.len() as f64;
    10.0 * (255.0f64 * 255.0 / mse).log10()
}

/// The reference rendition: decode at full resolution, apply the EXIF orientation, and resize
/// with Lanczos3 straight to `width` x `height`.
pub fn reference(
    input: &[u8],
    width: u32,
    height: u32,
    limits: &Limits,
) -> Result<RawImage, EngineError> {
    let meta = decode::probe(input, limits)?.metadata;
    let full = decode::decode(input, &meta, None, limits, &Tuning::default())?;
    let full = full.oriented(meta.orientation);
    Resizer::new(Filter::Lanczos3).resize(&full, width, height)
}

/// Decode an encoded rendition (PNG, JPEG, WebP, ...) back into pixels.
pub fn decode_rendition(bytes: &[u8]) -> Result<RawImage, EngineError> {
    let limits = Limits::default();
    let meta = decode::probe(bytes, &limits)?.metadata;
    decode::decode(bytes, &meta, None, &limits, &Tuning::default())
}
