//! Pixel decoding, in the stored orientation. JPEGs are decoded with libjpeg-turbo's DCT-domain
//! scaling (1/8, 1/4, 1/2) when the renditions are much smaller than the photo, high-quality
//! progressive ones without the scans that scale cannot show (`scans.rs`); PNGs by the `png`
//! crate; everything else at full size by the `image` crate, all under the allocation limit.

use std::io::Cursor;

use crate::error::{from_image, from_jpeg, from_png};
use crate::jpeg::{self, JpegColorspace, TjPixel};
use crate::metadata::{ImageFormat, Metadata};
use crate::pixels::{Layout, RawImage};
use crate::probe::image_format;
use crate::scans;
use crate::{EngineError, Limits, Tuning};

/// Decode the image, in its stored orientation. With a `target` (stored frame), a JPEG is
/// decoded at the smallest DCT scale that keeps at least `tuning.dct_margin` times the target
/// on each axis; other formats decode at full size.
pub(crate) fn decode(
    input: &[u8],
    meta: &Metadata,
    target: Option<(u32, u32)>,
    limits: &Limits,
    tuning: &Tuning,
) -> Result<RawImage, EngineError> {
    match meta.format {
        ImageFormat::Jpeg => decode_jpeg(input, target, limits, tuning),
        ImageFormat::Png => decode_png(input, limits),
        ImageFormat::Psd => crate::psd::decode(input, limits),
        other => decode_other(input, other, meta, limits),
    }
}

/// The DCT scales tried, in eighths. Only the power-of-two ones: libjpeg-turbo has SIMD IDCTs
/// for them, and its other n/8 IDCTs measured 5 to 12 dB worse against a full-resolution
/// Lanczos3 reference on the wallpaper corpus (3/8 on a 5640 px photo: 37 dB instead of 50).
const DCT_SCALES: [u32; 3] = [1, 2, 4];

/// The DCT scale (in eighths) to decode at: the smallest that leaves the final resize at least
/// `dct_margin` of real filtering on each axis, so shrink-on-load never lands on the target.
pub(crate) fn choose_scale(header: &jpeg::JpegHeader, target: Option<(u32, u32)>, tuning: &Tuning) -> u32 {
    let Some((tw, th)) = target else { return 8 };
    if header.lossless || header.precision != 8 {
        return 8;
    }
    let margin = f64::from(tuning.dct_margin.max(1.0));
    let need_w = (f64::from(tw) * margin).ceil() as u32;
    let need_h = (f64::from(th) * margin).ceil() as u32;
    DCT_SCALES
        .into_iter()
        .find(|&n| {
            let (w, h) = header.scaled_size(n);
            w >= need_w && h >= need_h
        })
        .unwrap_or(8)
}

fn decode_jpeg(
    input: &[u8],
    target: Option<(u32, u32)>,
    limits: &Limits,
    tuning: &Tuning,
) -> Result<RawImage, EngineError> {
    let jpeg_err = |e: &jpeg::TjError| from_jpeg(e, limits.max_alloc);
    let open = |data| {
        let dec = jpeg::Decoder::new(data).map_err(|e| jpeg_err(&e))?;
        dec.set_limits(limits.max_alloc.div_ceil(1 << 20), limits.max_pixels).map_err(|e| jpeg_err(&e))?;
        Ok::<_, EngineError>(dec)
    };
    let mut dec = open(input)?;
    let num = choose_scale(&dec.header, target, tuning);
    let prefix = tuning.skip_lsb_refinement.then(|| scans::without_final_refinement(input, num)).flatten();
    if let Some(prefix) = &prefix {
        dec = open(prefix)?;
    }

    let (w, h) = dec.header.scaled_size(num);
    let fmt = match dec.header.colorspace {
        JpegColorspace::Gray => TjPixel::Gray,
        JpegColorspace::Cmyk | JpegColorspace::Ycck => TjPixel::Cmyk,
        _ => TjPixel::Rgb,
    };
    let needed = w as u64 * h as u64 * fmt.channels() as u64;
    let (fw, fh) = (dec.header.width, dec.header.height);
    limits.check_alloc(needed, || {
        format!("the {fw}x{fh} JPEG decoded at {num}/8 ({w}x{h}) needs {needed} bytes of pixels")
    })?;
    let (w, h, buf) = match dec.decode(num, fmt) {
        Ok(v) => v,
        Err((err, Some(v))) if benign_warning(&err.message) => v,
        Err((err, _)) => return Err(jpeg_err(&err)),
    };
    Ok(match fmt {
        TjPixel::Gray => RawImage::new(w, h, Layout::Gray, buf),
        TjPixel::Rgb => RawImage::new(w, h, Layout::Rgb, buf),
        TjPixel::Cmyk => RawImage::new(w, h, Layout::Rgb, cmyk_to_rgb(&buf)),
    })
}

/// Adobe writes inverted CMYK (nearly all CMYK JPEGs, and Photoshop documents): R = C * K / 255.
/// No ICC profile is applied: renditions are previews, and this is what browsers without colour
/// management show.
pub(crate) fn cmyk_to_rgb(cmyk: &[u8]) -> Vec<u8> {
    let mut rgb = Vec::with_capacity(cmyk.len() / 4 * 3);
    for p in cmyk.chunks_exact(4) {
        let k = u32::from(p[3]);
        let mul = |c: u8| ((u32::from(c) * k + 127) / 255) as u8;
        rgb.extend_from_slice(&[mul(p[0]), mul(p[1]), mul(p[2])]);
    }
    rgb
}

/// libjpeg warnings that leave a correct image: stray bytes between markers (every MCU was
/// decoded before them), odd but valid headers and scan parameters. Anything else (a bad
/// Huffman code, a premature end, a marker inside the entropy data) leaves grey or garbage
/// pixels, so it is an error. An allow list, because libjpeg reports only the *first* warning:
/// a corrupt stream whose first complaint is unusual must not pass for a good image.
fn benign_warning(message: &str) -> bool {
    const BENIGN: [&str; 5] = [
        "extraneous bytes before marker",
        "unknown jfif revision",
        "unknown adobe color transform",
        "invalid sos parameters for sequential jpeg",
        "inconsistent progression sequence",
    ];
    let m = message.to_ascii_lowercase();
    BENIGN.iter().any(|b| m.contains(b))
}

/// PNG straight through the `png` crate into one buffer (through `image` every row is copied
/// once more), expanded to 8 bits per sample: palettes and low bit depths widened, 16 bits cut.
fn decode_png(input: &[u8], limits: &Limits) -> Result<RawImage, EngineError> {
    let png_err = |e| from_png(e, limits.max_alloc);
    let cap = usize::try_from(limits.max_alloc).unwrap_or(usize::MAX);
    let mut decoder = png::Decoder::new_with_limits(Cursor::new(input), png::Limits { bytes: cap });
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().map_err(png_err)?;
    let (color, _) = reader.output_color_type();
    let layout = match color {
        png::ColorType::Grayscale => Layout::Gray,
        png::ColorType::GrayscaleAlpha => Layout::GrayAlpha,
        png::ColorType::Rgb => Layout::Rgb,
        png::ColorType::Rgba => Layout::Rgba,
        png::ColorType::Indexed => return Err(EngineError::corrupt("png", "palette left unexpanded")),
    };
    let size = reader.output_buffer_size().ok_or_else(|| EngineError::AllocLimit {
        max_alloc: limits.max_alloc,
        detail: "the decoded PNG's size overflows".into(),
    })?;
    limits.check_alloc(size as u64, || {
        let (w, h) = reader.info().size();
        format!("a PNG cannot be shrunk while decoding, and this {w}x{h} one needs {size} bytes at full size")
    })?;
    let mut buf = vec![0u8; size];
    let info = reader.next_frame(&mut buf).map_err(png_err)?;
    buf.truncate(info.buffer_size());
    let expected = info.width as usize * info.height as usize * layout.channels();
    if buf.len() != expected || info.line_size != info.width as usize * layout.channels() {
        return Err(EngineError::corrupt(
            "png",
            format!("unexpected row layout for a {}x{} image", info.width, info.height),
        ));
    }
    Ok(RawImage::new(info.width, info.height, layout, buf))
}

/// The bytes a full-size decode through the `image` crate takes at its peak: the decoder's
/// buffer at the stored sample size, plus the 8-bit copy when the samples are wider or the
/// layout is converted.
pub(crate) fn full_decode_bytes(meta: &Metadata) -> u64 {
    let pixels = u64::from(meta.stored_width) * u64::from(meta.stored_height);
    let channels: u64 = match meta.color_type {
        crate::ColorType::Gray => 1,
        crate::ColorType::GrayAlpha => 2,
        crate::ColorType::Rgb => 3,
        crate::ColorType::Cmyk | crate::ColorType::Rgba | crate::ColorType::Indexed => 4,
    };
    let sample = u64::from(meta.bit_depth.div_ceil(8).max(1));
    let decoded = pixels * channels * sample;
    let converted = if sample > 1 || meta.color_type == crate::ColorType::Cmyk { pixels * 4 } else { 0 };
    decoded + converted
}

fn decode_other(input: &[u8], format: ImageFormat, meta: &Metadata, limits: &Limits) -> Result<RawImage, EngineError> {
    let needed = full_decode_bytes(meta);
    limits.check_alloc(needed, || {
        format!(
            "a {} cannot be shrunk while decoding, and this {}x{} one needs {needed} bytes at full size",
            format.name().to_ascii_uppercase(),
            meta.stored_width,
            meta.stored_height
        )
    })?;
    let mut reader = image::ImageReader::with_format(Cursor::new(input), image_format(format));
    let mut image_limits = image::Limits::default();
    image_limits.max_alloc = Some(limits.max_alloc);
    reader.limits(image_limits);
    let img = reader.decode().map_err(|e| from_image(format, limits.max_alloc, e))?;
    let (w, h) = (img.width(), img.height());
    use image::DynamicImage as D;
    Ok(match img {
        D::ImageLuma8(b) => RawImage::new(w, h, Layout::Gray, b.into_raw()),
        D::ImageLumaA8(b) => RawImage::new(w, h, Layout::GrayAlpha, b.into_raw()),
        D::ImageRgb8(b) => RawImage::new(w, h, Layout::Rgb, b.into_raw()),
        D::ImageRgba8(b) => RawImage::new(w, h, Layout::Rgba, b.into_raw()),
        D::ImageLuma16(_) => RawImage::new(w, h, Layout::Gray, img.into_luma8().into_raw()),
        D::ImageLumaA16(_) => RawImage::new(w, h, Layout::GrayAlpha, img.into_luma_alpha8().into_raw()),
        other if other.color().has_alpha() => RawImage::new(w, h, Layout::Rgba, other.into_rgba8().into_raw()),
        other => RawImage::new(w, h, Layout::Rgb, other.into_rgb8().into_raw()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(width: u32, height: u32) -> jpeg::JpegHeader {
        jpeg::JpegHeader { width, height, colorspace: JpegColorspace::YCbCr, precision: 8, lossless: false }
    }

    #[test]
    fn only_known_harmless_warnings_pass() {
        assert!(benign_warning("Corrupt JPEG data: 3 extraneous bytes before marker 0xd9"));
        assert!(benign_warning("Warning: unknown JFIF revision number 2.01"));
        assert!(!benign_warning("Corrupt JPEG data: premature end of data segment"));
        assert!(!benign_warning("Corrupt JPEG data: bad Huffman code"));
        assert!(!benign_warning("Unsupported marker type 0xba"));
        assert!(!benign_warning("Premature end of JPEG file"));
    }

    #[test]
    fn a_progressive_jpegs_coefficients_count_in_the_budget() {
        // 4000x3000 4:2:0 progressive: libjpeg keeps 36 MB of coefficients, whatever the scale.
        let (w, h) = (4000u32, 3000u32);
        let pixels: Vec<u8> = (0..w * h).flat_map(|i| [(i % w) as u8, (i / w) as u8, 90]).collect();
        let input = jpeg::encode_with(&pixels, w, h, TjPixel::Rgb, 85, true).expect("progressive JPEG");
        drop(pixels);
        let specs = crate::RenditionSpec::aem_defaults();
        let tight = Limits { max_alloc: 16 << 20, ..Limits::default() };
        let err = crate::process(&input, &specs, &tight).unwrap_err();
        assert!(matches!(err, EngineError::AllocLimit { .. }), "{err:?}");
        let roomy = Limits { max_alloc: 64 << 20, ..Limits::default() };
        assert_eq!(crate::process(&input, &specs, &roomy).map(|o| o.renditions.len()), Ok(4));
    }

    #[test]
    fn shrink_on_load_keeps_a_margin_above_the_target() {
        let t = Tuning::default();
        // 2560 -> 1280: 1/2 would land exactly on the target with no filtering left: full size.
        assert_eq!(choose_scale(&header(2560, 1600), Some((1280, 800)), &t), 8);
        // 4000 -> 1280: 1/2 (2000 px) leaves 1.56x for Lanczos3.
        assert_eq!(choose_scale(&header(4000, 2600), Some((1280, 832)), &t), 4);
        // 5640 -> 1280: 1/4 (1410 px) would leave only 1.1x; 1/2 it is.
        assert_eq!(choose_scale(&header(5640, 3172), Some((1280, 720)), &t), 4);
        // 12000 -> 1280: 1/4 (3000 px).
        assert_eq!(choose_scale(&header(12000, 8000), Some((1280, 853)), &t), 2);
        // 16000 -> 319: 1/8 (2000 px).
        assert_eq!(choose_scale(&header(16000, 9000), Some((319, 179)), &t), 1);
        // No target, or a lossless or 12-bit JPEG: full size.
        assert_eq!(choose_scale(&header(8000, 6000), None, &t), 8);
        let mut lossless = header(8000, 6000);
        lossless.lossless = true;
        assert_eq!(choose_scale(&lossless, Some((100, 75)), &t), 8);
    }
}
