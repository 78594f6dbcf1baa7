//! Quality measurement: PSNR of the engine's output against a slow, full-resolution reference.
//! The engine's speed tricks (shrink-on-load, chained resizes) are only acceptable while the web
//! rendition stays >= 40 dB from this reference; the tests and the benchmark check it.

use crate::pixels::RawImage;
use crate::resize::{Filter, Resizer};
use crate::{decode, probe, EngineError, Limits, Tuning};

/// Peak signal-to-noise ratio in dB between two images of the same size, over RGB (gray is
/// expanded, alpha flattened onto white). Identical images give `f64::INFINITY`; images of
/// different sizes give `None`.
pub fn psnr(a: &RawImage, b: &RawImage) -> Option<f64> {
    if (a.width, a.height) != (b.width, b.height) {
        return None;
    }
    let (a, b) = (a.to_rgb(), b.to_rgb());
    let sum: u64 = a
        .data
        .iter()
        .zip(&b.data)
        .map(|(&x, &y)| {
            let d = i64::from(x) - i64::from(y);
            (d * d) as u64
        })
        .sum();
    if sum == 0 {
        return Some(f64::INFINITY);
    }
    let mse = sum as f64 / a.data.len().max(1) as f64;
    Some(10.0 * (255.0f64 * 255.0 / mse).log10())
}

/// The reference rendition: decode at full resolution, apply the EXIF orientation, and resize
/// with Lanczos3 straight to `width` x `height`.
pub fn reference(input: &[u8], width: u32, height: u32, limits: &Limits) -> Result<RawImage, EngineError> {
    let meta = probe::probe(input, limits)?;
    let full = decode::decode(input, &meta, None, limits, &Tuning::default())?;
    let full = full.oriented(meta.orientation);
    Resizer::new(Filter::Lanczos3).resize(&full, width, height)
}

/// Decode an encoded image (a rendition: PNG, JPEG, WebP, ...) into pixels at full size, as
/// stored (no EXIF orientation applied).
pub fn decode_rendition(bytes: &[u8]) -> Result<RawImage, EngineError> {
    let limits = Limits::default();
    let meta = probe::probe(bytes, &limits)?;
    decode::decode(bytes, &meta, None, &limits, &Tuning::default())
}
