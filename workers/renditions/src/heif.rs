//! HEIC/HEIF (iPhone photos, HEVC inside) and AVIF (AV1 inside), decoded by libheif's
//! `heif-convert` (Debian `libheif-examples`; libheif 1.15 with libde265 for HEVC and dav1d/aom
//! for AV1) run as a program like the PDF and video tools (`external.rs`), into a PNG that then
//! goes through the image path. `heif-convert` writes the file's EXIF (`eXIf`), XMP (`iTXt`) and
//! ICC profile (`iCCP`) into that PNG, so the metadata is read by the same code as any PNG's.
//!
//! Why the program and not a binding (`libheif-rs`): HEVC and AV1 decoders are large C/C++
//! parsers of hostile input, and libheif 1.15 crashes on some corrupt files (a scrambled HEIC
//! makes `heif-convert` die of SIGSEGV); in a child process that is a refusal, in the worker
//! it would take every job down. Nothing is linked, so the worker builds without libheif's
//! headers (and without matching libheif-rs to Debian's 1.15), and a worker without the program
//! still runs every other job.
//!
//! Memory: `heif-convert` cannot decode a HEIF at less than full size, so the primary image's
//! size is read from the file's `ispe` properties *before* it runs: more pixels than the
//! engine's cap, or a full-size RGBA decode over the memory budget, is refused without starting
//! it. The PNG is then decoded under the same budget as any PNG.
//!
//! Orientation: HEIF rotates and mirrors with its own `irot`/`imir` properties, which libheif
//! applies while decoding; the EXIF orientation a camera also writes describes the same turn
//! and must not be applied twice, so the rendered image's `orientation` is 1 (the EXIF field
//! still shows what the camera wrote).

use std::process::Command;

use crate::external::{run, work_dir};
use crate::metadata::{ImageFormat, Metadata};
use crate::pixels::RawImage;
use crate::{EngineError, Limits, RenditionSpec, Tuning};

/// The metadata and the displayed pixels of each spec, from the primary image.
pub(crate) fn render(
    input: &[u8],
    format: ImageFormat,
    specs: &[RenditionSpec],
    limits: &Limits,
    tuning: &Tuning,
) -> Result<(Metadata, Vec<RawImage>), EngineError> {
    let name = format.name();
    let (w, h) = largest_image_size(input)
        .ok_or_else(|| EngineError::corrupt(name, "no image size (ispe property) in the file's meta box"))?;
    limits.check_pixels(w, h)?;
    let needed = u64::from(w) * u64::from(h) * 4;
    limits.check_alloc(needed, || {
        format!(
            "a {} cannot be shrunk while decoding, and this {w}x{h} one needs {needed} bytes at full size",
            name.to_ascii_uppercase()
        )
    })?;
    let dir = work_dir()?;
    let file = dir.path().join(format!("input.{name}"));
    std::fs::write(&file, input)
        .map_err(|e| EngineError::Io { detail: format!("writing the {name} to a temporary file: {e}") })?;
    let out = dir.path().join("image.png");
    let ran = run(
        Command::new("heif-convert").arg("--quiet").arg(&file).arg(&out),
        "heif-convert",
        "libheif-examples",
        limits,
    )?;
    // A file of several top-level images makes `image-1.png`, `image-2.png`...: the first.
    let png = [out.clone(), dir.path().join("image-1.png")].into_iter().find_map(|p| std::fs::read(p).ok());
    let png = match (ran.ok, png) {
        (true, Some(png)) => png,
        _ => return Err(failure(name, &ran.failure())),
    };
    let mut meta = crate::probe::probe(&png, limits)?;
    meta.orientation = 1;
    (meta.width, meta.height) = (meta.stored_width, meta.stored_height);
    let (mut meta, images) = crate::pipeline::render_probed(&png, meta, specs, limits, tuning)?;
    meta.format = format;
    meta.mime_type = format.mime_type().to_string();
    Ok((meta, images))
}

/// libheif names what it cannot do ("Unsupported feature", "Unsupported codec"); anything else
/// is a broken file.
fn failure(format: &str, message: &str) -> EngineError {
    if message.to_ascii_lowercase().contains("unsupported") {
        EngineError::Unsupported { what: format!("{format}: {message}") }
    } else {
        EngineError::corrupt(format, message)
    }
}

/// The largest `ispe` (image spatial extents) property in `meta/iprp/ipco`: the primary image
/// is the largest image of a HEIF (the others are thumbnails, tiles of a grid, or auxiliary
/// images such as depth maps), so this bounds what a decode of it costs.
pub(crate) fn largest_image_size(input: &[u8]) -> Option<(u32, u32)> {
    let meta = child(input, b"meta")?;
    // `meta` is a full box: version and flags first.
    let iprp = child(meta.get(4..)?, b"iprp")?;
    let ipco = child(iprp, b"ipco")?;
    boxes(ipco)
        .filter(|(kind, _)| kind == b"ispe")
        .filter_map(|(_, body)| {
            let be = |at: usize| body.get(at..at + 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
            Some((be(4)?, be(8)?))
        })
        .max_by_key(|&(w, h)| u64::from(w) * u64::from(h))
}

/// The body of the first box of type `kind` among the boxes of `data`.
fn child<'a>(data: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
    boxes(data).find(|(k, _)| k == kind).map(|(_, body)| body)
}

/// The ISO-BMFF boxes of `data`, as (type, body); ends at the first malformed one.
fn boxes(data: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8])> {
    let mut rest = data;
    std::iter::from_fn(move || {
        let size = u32::from_be_bytes(rest.get(0..4)?.try_into().ok()?) as u64;
        let kind: [u8; 4] = rest.get(4..8)?.try_into().ok()?;
        let (header, size) = match size {
            0 => (8, rest.len() as u64),
            1 => (16, u64::from_be_bytes(rest.get(8..16)?.try_into().ok()?)),
            n => (8, n),
        };
        let size = usize::try_from(size).ok()?;
        if size < header || size > rest.len() {
            return None;
        }
        let body = &rest[header..size];
        rest = &rest[size..];
        Some((kind, body))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxed(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut b = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        b.extend(kind);
        b.extend(body);
        b
    }

    fn ispe(w: u32, h: u32) -> Vec<u8> {
        let mut body = vec![0; 4];
        body.extend(w.to_be_bytes());
        body.extend(h.to_be_bytes());
        boxed(b"ispe", &body)
    }

    #[test]
    fn the_largest_ispe_bounds_the_primary_image() {
        let mut ipco = ispe(320, 240);
        ipco.extend(ispe(4032, 3024));
        ipco.extend(ispe(512, 512));
        let mut meta = vec![0; 4];
        meta.extend(boxed(b"hdlr", &[0; 24]));
        meta.extend(boxed(b"iprp", &boxed(b"ipco", &ipco)));
        let mut file = boxed(b"ftyp", b"heic\0\0\0\0mif1heic");
        file.extend(boxed(b"meta", &meta));
        file.extend(boxed(b"mdat", &[0; 16]));
        assert_eq!(largest_image_size(&file), Some((4032, 3024)));
        // Truncated inside `meta`: no size, no panic.
        assert_eq!(largest_image_size(&file[..60]), None);
        assert_eq!(largest_image_size(b"\0\0\0\x01ftyp"), None);
    }

    #[test]
    fn libheif_messages_map_to_reasons() {
        assert!(matches!(failure("heic", "Unsupported feature: Unsupported codec"), EngineError::Unsupported { .. }));
        let e = failure("avif", "Invalid input: No 'meta' box");
        assert!(matches!(e, EngineError::Corrupt { .. }) && e.to_string().contains("meta"), "{e}");
    }
}
