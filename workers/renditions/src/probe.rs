//! Header probing: format, stored size, colour model and EXIF, with no pixel decoded. This is
//! where decompression bombs are refused, from the size the header claims.

use std::io::Cursor;

use crate::error::{from_image, from_jpeg, from_png};
use crate::exif_fields::read_exif;
use crate::jpeg::{self, JpegColorspace};
use crate::metadata::{ColorType, ImageFormat, Metadata};
use crate::pixels::transposes;
use crate::sniff::sniff;
use crate::{EngineError, Limits};

/// Read the headers: format, stored size (refusing bombs), colour model, EXIF.
pub(crate) fn probe(input: &[u8], limits: &Limits) -> Result<Metadata, EngineError> {
    limits.check_input_size(input)?;
    let format = sniff(input)?;
    let mut embedded = crate::embedded::Embedded::default();
    let header = match format {
        ImageFormat::Jpeg => jpeg_header(input, limits)?,
        ImageFormat::Png => png_header(input, limits, &mut embedded)?,
        ImageFormat::Psd => psd_header(input)?,
        other => image_header(input, other, limits)?,
    };
    if header.width == 0 || header.height == 0 {
        return Err(EngineError::corrupt(format.name(), "zero width or height"));
    }
    limits.check_pixels(header.width, header.height)?;
    let exif = read_exif(input, format);
    let orientation = exif.as_ref().and_then(|e| e.orientation).unwrap_or(1);
    let (width, height) =
        if transposes(orientation) { (header.height, header.width) } else { (header.width, header.height) };
    match format {
        ImageFormat::Jpeg => embedded = crate::embedded::read_jpeg(input),
        ImageFormat::Tiff => embedded = crate::embedded::read_tiff(input),
        _ => {}
    }
    Ok(Metadata {
        format,
        mime_type: format.mime_type().to_string(),
        width,
        height,
        stored_width: header.width,
        stored_height: header.height,
        color_type: header.color_type,
        bit_depth: header.bit_depth,
        has_alpha: header.has_alpha,
        orientation,
        exif,
        xmp: embedded.xmp,
        iptc: embedded.iptc,
        icc_profile: embedded.icc_profile,
        document: None,
        video: None,
        preview: None,
    })
}

/// What a header says, whatever the format.
struct Header {
    width: u32,
    height: u32,
    color_type: ColorType,
    bit_depth: u8,
    has_alpha: bool,
}

fn jpeg_header(input: &[u8], limits: &Limits) -> Result<Header, EngineError> {
    let dec = jpeg::Decoder::new(input).map_err(|e| from_jpeg(&e, limits.max_alloc))?;
    let h = dec.header;
    let color_type = match h.colorspace {
        JpegColorspace::Gray => ColorType::Gray,
        JpegColorspace::Cmyk | JpegColorspace::Ycck => ColorType::Cmyk,
        JpegColorspace::Rgb | JpegColorspace::YCbCr => ColorType::Rgb,
    };
    Ok(Header { width: h.width, height: h.height, color_type, bit_depth: h.precision, has_alpha: false })
}

/// PNG headers are read with the `png` crate directly: it stops after IHDR and the chunks
/// before IDAT, so a bomb's compressed pixels are never touched. The XMP (`iTXt`) and ICC
/// (`iCCP`) chunks met on the way go to `embedded`.
fn png_header(input: &[u8], limits: &Limits, embedded: &mut crate::embedded::Embedded) -> Result<Header, EngineError> {
    let dec = png::Decoder::new(Cursor::new(input));
    let reader = dec.read_info().map_err(|e| from_png(e, limits.max_alloc))?;
    let info = reader.info();
    *embedded = crate::embedded::read_png(info);
    let has_trns = info.trns.is_some();
    let (color_type, has_alpha) = match info.color_type {
        png::ColorType::Grayscale => (ColorType::Gray, has_trns),
        png::ColorType::GrayscaleAlpha => (ColorType::GrayAlpha, true),
        png::ColorType::Rgb => (ColorType::Rgb, has_trns),
        png::ColorType::Rgba => (ColorType::Rgba, true),
        png::ColorType::Indexed => (ColorType::Indexed, has_trns),
    };
    Ok(Header { width: info.width, height: info.height, color_type, bit_depth: info.bit_depth as u8, has_alpha })
}

fn psd_header(input: &[u8]) -> Result<Header, EngineError> {
    let h = crate::psd::header(input)?;
    let bit_depth = u8::try_from(h.depth).unwrap_or(u8::MAX);
    let has_alpha = usize::from(h.channels) > if h.color_type() == ColorType::Gray { 1 } else { 3 };
    Ok(Header { width: h.width, height: h.height, color_type: h.color_type(), bit_depth, has_alpha })
}

fn image_header(input: &[u8], format: ImageFormat, limits: &Limits) -> Result<Header, EngineError> {
    use image::ImageDecoder;
    let mut reader = image::ImageReader::with_format(Cursor::new(input), image_format(format));
    // Only the header is read here; the size is checked by the caller before any decode.
    reader.no_limits();
    let dec = reader.into_decoder().map_err(|e| from_image(format, limits.max_alloc, e))?;
    let (width, height) = dec.dimensions();
    let (color_type, bit_depth, has_alpha) = extended_color(dec.original_color_type(), format);
    Ok(Header { width, height, color_type, bit_depth, has_alpha })
}

pub(crate) fn image_format(f: ImageFormat) -> image::ImageFormat {
    match f {
        // Never read by the `image` crate: `process` hands documents, videos and HEIF to their
        // programs, and Photoshop files to `psd.rs`.
        ImageFormat::Pdf
        | ImageFormat::Mp4
        | ImageFormat::QuickTime
        | ImageFormat::Matroska
        | ImageFormat::WebM
        | ImageFormat::Heic
        | ImageFormat::Avif
        | ImageFormat::Psd => image::ImageFormat::Png,
        // Camera raws are rendered from their JPEG preview (`raw.rs`); as TIFF only if asked.
        ImageFormat::Dng | ImageFormat::Cr2 | ImageFormat::Nef | ImageFormat::Arw => image::ImageFormat::Tiff,
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
    // GIF is always palette-indexed, whatever the decoder expands it to.
    let rgb = if format == ImageFormat::Gif { ColorType::Indexed } else { ColorType::Rgb };
    let rgba = if format == ImageFormat::Gif { ColorType::Indexed } else { ColorType::Rgba };
    match c {
        E::A8 => (ColorType::Gray, 8, true),
        E::L1 | E::L2 | E::L4 | E::L8 | E::L16 => (ColorType::Gray, depth, false),
        E::La1 | E::La2 | E::La4 | E::La8 | E::La16 => (ColorType::GrayAlpha, depth, true),
        E::Rgb1 | E::Rgb2 | E::Rgb4 | E::Rgb8 | E::Rgb16 | E::Rgb32F | E::Bgr8 => (rgb, depth, false),
        E::Cmyk8 | E::Cmyk16 => (ColorType::Cmyk, depth, false),
        E::Unknown(bits) => (ColorType::Indexed, bits, false),
        _ => (rgba, depth, true),
    }
}
