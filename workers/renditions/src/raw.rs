//! Camera raws (DNG, CR2, NEF, ARW) rendered from the JPEG preview the camera embeds, not by
//! demosaicing the sensor data: every one of these formats carries a full-size or near
//! full-size JPEG for the camera's own screen, which is what DAM thumbnails and web renditions
//! need, decoded with the JPEG path (shrunk on load, so memory stays within the budget). The
//! raw's own EXIF (make, model, date, orientation) describes the asset; `preview: "embedded"`
//! in the metadata says where the pixels came from. A raw without a usable preview is refused
//! with `SourceUnsupported`, saying so.
//!
//! All four are TIFF containers. Previews sit in IFD0 or the IFDs chained after it (CR2's
//! full-size preview is IFD0's single strip; ARW's is IFD0's JPEGInterchangeFormat) or in
//! SubIFDs (NEF, DNG), either as JPEGInterchangeFormat/Length (0x0201/0x0202) or as one strip
//! compressed as JPEG (Compression 6 or 7). The sensor data itself can also be a JPEG stream (a
//! lossless one, or a colour filter array): those are skipped.

use crate::jpeg::{self, JpegHeader};
use crate::metadata::{ImageFormat, Metadata};
use crate::pixels::{transposes, RawImage};
use crate::tiff_ifd::{find, tag, Tiff, MAX_IFDS};
use crate::{EngineError, Limits, RenditionSpec, Tuning};

/// The largest usable JPEG preview of a raw, with its header.
pub(crate) fn largest_preview(input: &[u8]) -> Option<(&[u8], JpegHeader)> {
    let tiff = Tiff::new(input)?;
    let mut queue = tiff.chain();
    let mut seen = Vec::new();
    let mut best: Option<(&[u8], JpegHeader)> = None;
    while let Some(offset) = queue.pop() {
        if seen.contains(&offset) || seen.len() >= MAX_IFDS {
            continue;
        }
        seen.push(offset);
        let Some((entries, _)) = tiff.ifd(offset) else { continue };
        if let Some(e) = find(&entries, tag::SUB_IFDS) {
            queue.extend(tiff.numbers(e).into_iter().map(|o| o as usize));
        }
        for candidate in candidates(&tiff, &entries) {
            let Some(header) = usable_jpeg(candidate) else { continue };
            let area = |h: &JpegHeader| u64::from(h.width) * u64::from(h.height);
            if best.as_ref().is_none_or(|(_, b)| area(&header) > area(b)) {
                best = Some((candidate, header));
            }
        }
    }
    best
}

/// The JPEG streams one IFD points at: JPEGInterchangeFormat, and a single (or contiguous)
/// strip compressed as JPEG unless the IFD holds sensor data.
fn candidates<'a>(tiff: &Tiff<'a>, entries: &[crate::tiff_ifd::Entry]) -> Vec<&'a [u8]> {
    let data = tiff.bytes();
    let number = |t: u16| find(entries, t).and_then(|e| tiff.numbers(e).first().copied());
    // A stream that runs past the end of the file is kept as far as it goes: the decoder then
    // says the file is truncated, rather than the raw seeming to have no preview.
    let range = |at: u64, len: u64| {
        let end = at.saturating_add(len).min(data.len() as u64);
        data.get(usize::try_from(at).ok()?..usize::try_from(end).ok()?)
    };
    let mut out = Vec::new();
    if let (Some(at), Some(len)) = (number(tag::JPEG_OFFSET), number(tag::JPEG_LENGTH)) {
        out.extend(range(u64::from(at), u64::from(len)));
    }
    // Colour filter array (32803) and LinearRaw (34892): sensor data, not a picture.
    let sensor = matches!(number(tag::PHOTOMETRIC), Some(32803 | 34892));
    if matches!(number(tag::COMPRESSION), Some(6 | 7)) && !sensor {
        let offsets = find(entries, tag::STRIP_OFFSETS).map(|e| tiff.numbers(e)).unwrap_or_default();
        let counts = find(entries, tag::STRIP_BYTE_COUNTS).map(|e| tiff.numbers(e)).unwrap_or_default();
        let contiguous = offsets.len() == counts.len()
            && offsets.windows(2).zip(&counts).all(|(w, &c)| u64::from(w[0]) + u64::from(c) == u64::from(w[1]));
        if let (Some(&first), true) = (offsets.first(), contiguous) {
            out.extend(range(u64::from(first), counts.iter().map(|&c| u64::from(c)).sum()));
        }
    }
    out
}

/// The header of `bytes` when it is a JPEG the image path renders: 8-bit, not lossless.
fn usable_jpeg(bytes: &[u8]) -> Option<JpegHeader> {
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return None;
    }
    let header = jpeg::Decoder::new(bytes).ok()?.header;
    (!header.lossless && header.precision == 8 && header.width > 0 && header.height > 0).then_some(header)
}

/// The metadata and the displayed pixels of each spec, from the raw's largest JPEG preview.
pub(crate) fn render(
    input: &[u8],
    format: ImageFormat,
    specs: &[RenditionSpec],
    limits: &Limits,
    tuning: &Tuning,
) -> Result<(Metadata, Vec<RawImage>), EngineError> {
    let Some((preview, _)) = largest_preview(input) else {
        return Err(EngineError::Unsupported {
            what: format!(
                "a {} camera raw without an embedded JPEG preview (the engine renders raws from their preview, \
                 it does not develop the sensor data)",
                format.name().to_ascii_uppercase()
            ),
        });
    };
    let mut meta = crate::probe::probe(preview, limits)?;
    // The raw's IFD0 orientation applies to its preview, which rarely carries EXIF of its own.
    let exif = crate::exif_fields::read_exif(input, ImageFormat::Tiff);
    meta.orientation = exif.as_ref().and_then(|e| e.orientation).unwrap_or(1);
    (meta.width, meta.height) = if transposes(meta.orientation) {
        (meta.stored_height, meta.stored_width)
    } else {
        (meta.stored_width, meta.stored_height)
    };
    let (mut meta, images) = crate::pipeline::render_probed(preview, meta, specs, limits, tuning)?;
    let embedded = crate::embedded::read_tiff(input);
    meta.format = format;
    meta.mime_type = format.mime_type().to_string();
    meta.exif = exif;
    meta.xmp = embedded.xmp;
    meta.iptc = embedded.iptc;
    meta.icc_profile = embedded.icc_profile.or(meta.icc_profile);
    meta.preview = Some("embedded".to_string());
    Ok((meta, images))
}
