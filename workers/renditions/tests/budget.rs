//! The memory budget (`Limits::max_alloc`, the worker's `--max-memory`) counts what is decoded:
//! a JPEG shrunk on load fits where a PNG or TIFF of the same size, which must be decoded whole,
//! is refused with a reason that says so.

use image::{ImageFormat, RgbImage};
use offloader_renditions::synth::grey_jpeg;
use offloader_renditions::{process, EngineError, Limits, RenditionSpec};
use std::io::Cursor;

fn encoded(width: u32, height: u32, format: ImageFormat) -> Vec<u8> {
    let img = RgbImage::from_fn(width, height, |x, y| image::Rgb([x as u8, y as u8, 128]));
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format).expect("encoding a test image");
    out.into_inner()
}

#[test]
fn a_jpeg_fits_a_budget_its_full_size_would_not() {
    // 4000x3000 RGB is 36 MB at full size; at 1/2 (the web rendition needs 1920 px) 9 MB.
    let limits = Limits { max_alloc: 16 << 20, ..Limits::default() };
    let out = process(&grey_jpeg(4000, 3000), &RenditionSpec::aem_defaults(), &limits).expect("within budget");
    assert_eq!(out.renditions.len(), 4);
    assert_eq!((out.renditions[3].width, out.renditions[3].height), (1280, 960));
    // A budget too small even for the shrunk decode is refused, with the sizes in the reason.
    let tiny = Limits { max_alloc: 4 << 20, ..Limits::default() };
    let err = process(&grey_jpeg(4000, 3000), &RenditionSpec::aem_defaults(), &tiny).unwrap_err();
    assert!(matches!(err, EngineError::AllocLimit { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("4000x3000") && msg.contains("--max-memory"), "{msg}");
}

#[test]
fn formats_that_cannot_shrink_on_load_are_refused_only_past_the_budget() {
    let specs = RenditionSpec::aem_defaults();
    for format in [ImageFormat::Png, ImageFormat::Tiff, ImageFormat::Bmp] {
        let input = encoded(1500, 1000, format);
        // 4.5 MB decoded: refused by a 4 MiB budget, with why...
        let tight = Limits { max_alloc: 4 << 20, ..Limits::default() };
        let err = process(&input, &specs, &tight).unwrap_err();
        assert!(matches!(err, EngineError::AllocLimit { .. }), "{format:?}: {err:?}");
        let msg = err.to_string();
        assert!(msg.contains("cannot be shrunk while decoding") && msg.contains("1500x1000"), "{msg}");
        // ...and rendered by a 16 MiB one (the TIFF decoder wants room for its strips too).
        let roomy = Limits { max_alloc: 16 << 20, ..Limits::default() };
        let out = process(&input, &specs, &roomy).unwrap_or_else(|e| panic!("{format:?}: {e}"));
        assert_eq!((out.renditions[3].width, out.renditions[3].height), (1280, 853), "{format:?}");
    }
}
