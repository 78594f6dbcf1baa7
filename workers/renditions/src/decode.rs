//! Format sniffing, header probing (no pixel decoded) and decoding.

use std::io::Cursor;

use crate::jpeg::{self, JpegColorspace, TjPixel};
use crate::metadata::{read_exif, ColorType, ImageFormat, Metadata};
use crate::pixels::{transposes, Layout, RawImage};
use crate::{EngineError, Limits, Tuning};

/// Identify the container from its magic bytes.
pub(crate) fn sniff(input: &[u8]) -> Result<ImageFormat, EngineError> {
    let starts = |m: &[u8]| input.starts_with(m);
    let format = if starts(&[0xFF, 0xD8, 0xFF]) {
        ImageFormat::Jpeg
    } else if starts(b"\x89PNG\r\n\x1a\n") {
        ImageFormat::Png
    } else if starts(b"GIF87a") || starts(b"GIF89a") {
        ImageFormat::Gif
    } else if input.len() >= 12 && starts(b"RIFF") && &input[8..12] == b"WEBP" {
        ImageFormat::WebP
    } else if starts(b"II*\0") || starts(b"MM\0*") {
        ImageFormat::Tiff
    } else if starts(b"BM") && input.len() >= 26 {
        ImageFormat::Bmp
    } else {
        return Err(EngineError::Unsupported {
            what: describe_magic(input),
        });
    };
    Ok(format)
}

fn describe_magic(input: &[u8]) -> String {
    if input.is_empty() {
        return "empty input".into();
    }
    let head = &input[..input.len().min(16)];
    let known = [
        (&b"%PDF"[..], "PDF document"),
        (b"\0\0\0", "ISO-BMFF (HEIF/AVIF/MP4?) or other binary"),
        (b"8BPS", "Photoshop PSD"),
        (b"PK\x03\x04", "ZIP archive"),
        (b"<svg", "SVG"),
        (b"<?xml", "XML/SVG"),
    ];
    for (magic, name) in known {
        if input.starts_with(magic) {
            return format!("{name} (magic {})", hex(head));
        }
    }
    let texty = head
        .iter()
        .all(|&b| b == b'\n' || b == b'\r' || b == b'\t' || (0x20..0x7f).contains(&b) || b >= 0x80);
    if texty {
        let text: String = String::from_utf8_lossy(head)
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        format!("text, not an image (starts with {:?})", text.trim_end())
    } else {
        format!("unknown format (magic {})", hex(head))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Everything known about an input after reading its headers.
pub(crate) struct Probe {
    pub metadata: Metadata,
}

pub(crate) fn check_input_size(input: &[u8], limits: &Limits) -> Result<(), EngineError> {
    if input.len() as u64 > limits.max_input_bytes {
        return Err(EngineError::InputTooLarge {
            size: input.len() as u64,
            max_input_bytes: limits.max_input_bytes,
        });
    }
    Ok(())
}

fn check_pixels(width: u32, height: u32, limits: &Limits) -> Result<(), EngineError> {
    if width as u64 * height as u64 > limits.max_pixels {
        return Err(EngineError::TooLarge {
            width,
            height,
            max_pixels: limits.max_pixels,
        });
    }
    Ok(())
}

/// Map a libjpeg message onto the engine's errors.
fn jpeg_error(err: &jpeg::TjError, max_alloc: u64) -> EngineError {
    let m = err.message.to_ascii_lowercase();
    if m.contains("premature end") || m.contains("insufficient data") {
        EngineError::truncated("jpeg", err.message.clone())
    } else if m.contains("12-bit") || m.contains("data precision") || m.contains("unsupported") {
        EngineError::Unsupported {
            what: format!("jpeg: {}", err.message),
        }
    } else if m.contains("too large") || m.contains("memory") || m.contains("backing store") {
        EngineError::AllocLimit {
            max_alloc,
            detail: err.message.clone(),
        }
    } else {
        EngineError::corrupt("jpeg", err.message.clone())
    }
}

fn image_error(format: ImageFormat, max_alloc: u64, err: image::ImageError) -> EngineError {
    use image::ImageError as E;
    let name = format.name();
    match err {
        E::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            EngineError::truncated(name, e.to_string())
        }
        E::Limits(e) => EngineError::AllocLimit {
            max_alloc,
            detail: e.to_string(),
        },
        E::Unsupported(e) => EngineError::Unsupported {
            what: format!("{name}: {e}"),
        },
        other => {
            let msg = other.to_string();
            let lower = msg.to_ascii_lowercase();
            if lower.contains("eof") || lower.contains("end of") || lower.contains("truncated") {
                EngineError::truncated(name, msg)
            } else {
                EngineError::corrupt(name, msg)
            }
        }
    }
}

/// Read the headers: format, stored size (refusing bombs), colour model, EXIF.
pub(crate) fn probe(input: &[u8], limits: &Limits) -> Result<Probe, EngineError> {
    check_input_size(input, limits)?;
    let format = sniff(input)?;
    let (stored_width, stored_height, color_type, bit_depth, has_alpha) = match format {
        ImageFormat::Jpeg => {
            let dec = jpeg::Decoder::new(input).map_err(|e| jpeg_error(&e, limits.max_alloc))?;
            let h = dec.header;
            let ct = match h.colorspace {
                JpegColorspace::Gray => ColorType::Gray,
                JpegColorspace::Cmyk | JpegColorspace::Ycck => ColorType::Cmyk,
                JpegColorspace::Rgb | JpegColorspace::YCbCr => ColorType::Rgb,
            };
            (h.width, h.height, ct, h.precision, false)
        }
        ImageFormat::Png => {
            let mut dec = png::Decoder::new(Cursor::new(input));
            dec.set_ignore_text_chunk(true);
            let reader = dec
                .read_info()
                .map_err(|e| png_error(e, limits.max_alloc))?;
            let info = reader.info();
            let has_trns = info.trns.is_some();
            let (ct, alpha) = match info.color_type {
                png::ColorType::Grayscale => (ColorType::Gray, has_trns),
                png::ColorType::GrayscaleAlpha => (ColorType::GrayAlpha, true),
                png::ColorType::Rgb => (ColorType::Rgb, has_trns),
                png::ColorType::Rgba => (ColorType::Rgba, true),
                png::ColorType::Indexed => (ColorType::Indexed, has_trns),
            };
            (info.width, info.height, ct, info.bit_depth as u8, alpha)
        }
        _ => {
            let fmt = image_format(format);
            let mut reader = image::ImageReader::with_format(Cursor::new(input), fmt);
            reader.no_limits();
            let dec = reader
                .into_decoder()
                .map_err(|e| image_error(format, limits.max_alloc, e))?;
            use image::ImageDecoder;
            let (w, h) = dec.dimensions();
            let (ct, depth, alpha) = extended_color(dec.original_color_type(), format);
            (w, h, ct, depth, alpha)
        }
    };
    check_pixels(stored_width, stored_height, limits)?;
    if stored_width == 0 || stored_height == 0 {
        return Err(EngineError::corrupt(format.name(), "zero width or height"));
    }
    let exif = read_exif(input, format);
    let orientation = exif.as_ref().and_then(|e| e.orientation).unwrap_or(1);
    let (width, height) = if transposes(orientation) {
        (stored_height, stored_width)
    } else {
        (stored_width, stored_height)
    };
    Ok(Probe {
        metadata: Metadata {
            format,
            mime_type: format.mime_type().to_string(),
            width,
            height,
            stored_width,
            stored_height,
            color_type,
            bit_depth,
            has_alpha,
            orientation,
            exif,
        },
    })
}

fn png_error(e: png::DecodingError, max_alloc: u64) -> EngineError {
    match e {
        png::DecodingError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            EngineError::truncated("png", io.to_string())
        }
        png::DecodingError::LimitsExceeded => EngineError::AllocLimit {
            max_alloc,
            detail: "png decoder limits".into(),
        },
        other => EngineError::corrupt("png", other.to_string()),
    }
}

fn image_format(f: ImageFormat) -> image::ImageFormat {
    match f {
        ImageFormat::Jpeg => image::ImageFormat::Jpeg,
        ImageFormat::Png => image::ImageFormat::Png,
        ImageFormat::Gif => image::ImageFormat::Gif,
        ImageFormat::WebP => image::ImageFormat::WebP,
        ImageFormat::Tiff => image::ImageFormat::Tiff,
        ImageFormat::Bmp => image::ImageFormat::Bmp,
    }
}

fn extended_color(c: image::ExtendedColorType, format: ImageFormat) -> (ColorType, u8, bool) {
    use image::ExtendedColorType as E;
    let bits = c.bits_per_pixel();
    let channels = c.channel_count().max(1) as u16;
    let depth = (bits / channels).min(255) as u8;
    match c {
        E::A8 => (ColorType::Gray, 8, true),
        E::L1 | E::L2 | E::L4 | E::L8 | E::L16 => (ColorType::Gray, depth, false),
        E::La1 | E::La2 | E::La4 | E::La8 | E::La16 => (ColorType::GrayAlpha, depth, true),
        E::Rgb1 | E::Rgb2 | E::Rgb4 | E::Rgb8 | E::Rgb16 | E::Rgb32F | E::Bgr8 => {
            // GIF is always palette-indexed.
            let ct = if format == ImageFormat::Gif {
                ColorType::Indexed
            } else {
                ColorType::Rgb
            };
            (ct, depth, false)
        }
        E::Cmyk8 | E::Cmyk16 => (ColorType::Cmyk, depth, false),
        E::Unknown(bits) => (ColorType::Indexed, bits, false),
        _ => {
            let ct = if format == ImageFormat::Gif {
                ColorType::Indexed
            } else {
                ColorType::Rgba
            };
            (ct, depth, true)
        }
    }
}

/// Decode the image, in its stored orientation, at the smallest size that still has at least
/// `tuning.dct_margin` times the pixels of `target` (stored frame) on each axis, when the format
/// can shrink while decoding (JPEG). Other formats decode at full size.
pub(crate) fn decode(
    input: &[u8],
    meta: &Metadata,
    target: Option<(u32, u32)>,
    limits: &Limits,
    tuning: &Tuning,
) -> Result<RawImage, EngineError> {
    match meta.format {
        ImageFormat::Jpeg => decode_jpeg(input, target, limits, tuning),
        other => decode_other(input, other, limits),
    }
}

/// The DCT scale (in eighths) to decode at.
pub(crate) fn choose_scale(
    dec: &jpeg::Decoder<'_>,
    target: Option<(u32, u32)>,
    tuning: &Tuning,
) -> u32 {
    let Some((tw, th)) = target else { return 8 };
    if dec.header.lossless || dec.header.precision != 8 {
        return 8;
    }
    let need_w = (tw as f64 * tuning.dct_margin as f64).ceil() as u32;
    let need_h = (th as f64 * tuning.dct_margin as f64).ceil() as u32;
    let candidates: &[u32] = if tuning.dct_all_eighths {
        &[1, 2, 3, 4, 5, 6, 7, 8]
    } else {
        &[1, 2, 4, 8]
    };
    for &n in candidates {
        let (w, h) = dec.scaled_size(n);
        if w >= need_w && h >= need_h {
            return n;
        }
    }
    8
}

fn decode_jpeg(
    input: &[u8],
    target: Option<(u32, u32)>,
    limits: &Limits,
    tuning: &Tuning,
) -> Result<RawImage, EngineError> {
    let mut dec = jpeg::Decoder::new(input).map_err(|e| jpeg_error(&e, limits.max_alloc))?;
    dec.set_limits(limits.max_alloc.div_ceil(1 << 20), limits.max_pixels)
        .map_err(|e| jpeg_error(&e, limits.max_alloc))?;
    let num = choose_scale(&dec, target, tuning);
    let (w, h) = dec.scaled_size(num);
    let fmt = match dec.header.colorspace {
        JpegColorspace::Gray => TjPixel::Gray,
        JpegColorspace::Cmyk | JpegColorspace::Ycck => TjPixel::Cmyk,
        _ => TjPixel::Rgb,
    };
    let needed = w as u64 * h as u64 * fmt.channels() as u64;
    if needed > limits.max_alloc {
        return Err(EngineError::AllocLimit {
            max_alloc: limits.max_alloc,
            detail: format!("decoded {w}x{h} image needs {needed} bytes"),
        });
    }
    let (w, h, buf) = match dec.decode(num, fmt) {
        Ok(v) => v,
        Err((err, Some(v))) if benign_warning(&err.message) => v,
        Err((err, _)) => return Err(jpeg_error(&err, limits.max_alloc)),
    };
    Ok(match fmt {
        TjPixel::Gray => RawImage::new(w, h, Layout::Gray, buf),
        TjPixel::Rgb => RawImage::new(w, h, Layout::Rgb, buf),
        TjPixel::Cmyk => {
            // Adobe writes inverted CMYK (as do nearly all CMYK JPEGs): R = C * K / 255.
            let mut rgb = Vec::with_capacity(w as usize * h as usize * 3);
            for p in buf.chunks_exact(4) {
                let k = p[3] as u32;
                rgb.extend_from_slice(&[
                    ((p[0] as u32 * k + 127) / 255) as u8,
                    ((p[1] as u32 * k + 127) / 255) as u8,
                    ((p[2] as u32 * k + 127) / 255) as u8,
                ]);
            }
            RawImage::new(w, h, Layout::Rgb, rgb)
        }
    })
}

/// libjpeg warnings that leave a correct image: stray bytes between markers, odd but valid scan
/// parameters. Truncation and corrupt entropy data are not benign.
fn benign_warning(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    if m.contains("premature end") {
        return false;
    }
    if m.contains("corrupt jpeg data") {
        return m.contains("extraneous bytes");
    }
    true
}

fn decode_other(
    input: &[u8],
    format: ImageFormat,
    limits: &Limits,
) -> Result<RawImage, EngineError> {
    let mut reader = image::ImageReader::with_format(Cursor::new(input), image_format(format));
    let mut il = image::Limits::default();
    il.max_alloc = Some(limits.max_alloc);
    reader.limits(il);
    let img = reader
        .decode()
        .map_err(|e| image_error(format, limits.max_alloc, e))?;
    let (w, h) = (img.width(), img.height());
    use image::DynamicImage as D;
    Ok(match img {
        D::ImageLuma8(b) => RawImage::new(w, h, Layout::Gray, b.into_raw()),
        D::ImageLumaA8(b) => RawImage::new(w, h, Layout::GrayAlpha, b.into_raw()),
        D::ImageRgb8(b) => RawImage::new(w, h, Layout::Rgb, b.into_raw()),
        D::ImageRgba8(b) => RawImage::new(w, h, Layout::Rgba, b.into_raw()),
        D::ImageLuma16(_) => RawImage::new(w, h, Layout::Gray, img.into_luma8().into_raw()),
        D::ImageLumaA16(_) => {
            RawImage::new(w, h, Layout::GrayAlpha, img.into_luma_alpha8().into_raw())
        }
        other if other.color().has_alpha() => {
            RawImage::new(w, h, Layout::Rgba, other.into_rgba8().into_raw())
        }
        other => RawImage::new(w, h, Layout::Rgb, other.into_rgb8().into_raw()),
    })
}
