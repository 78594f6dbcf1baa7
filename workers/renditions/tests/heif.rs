//! HEIC and AVIF photos, decoded by libheif's `heif-convert` (Debian `libheif-examples`, which
//! scripts/services installs; without it these tests fail, saying so). The test photos are
//! made at test time by libheif's own encoder, `heif-enc` (x265 for HEIC, aom for AVIF), from a
//! JPEG with camera EXIF, an XMP packet and an ICC profile.

mod common;

use common::{with_exif, Exif};
use offloader_renditions::synth::{described_jpeg, heif_enc, two_colour_jpeg};
use offloader_renditions::{
    extract_metadata, process, sniff_mime, EngineError, ImageFormat, Limits, Output, RenditionSpec,
};

fn run(input: &[u8]) -> Result<Output, EngineError> {
    process(input, &RenditionSpec::aem_defaults(), &Limits::default())
}

/// A 640x480 photo (left half red, right half blue) from an "iPhone", with EXIF orientation 6,
/// XMP and an ICC profile, encoded by `heif-enc` as HEIC, or as AVIF with `avif`.
fn iphone_photo(avif: bool) -> Vec<u8> {
    let jpeg = described_jpeg(&two_colour_jpeg(640, 480), "Harbour", "Ada Lovelace", &["boats"], "© Ada", "Display P3");
    let jpeg = with_exif(
        &jpeg,
        &Exif { orientation: Some(6), make: Some("Apple"), model: Some("iPhone 15 Pro"), ..Exif::default() },
    );
    heif_enc(&jpeg, avif).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn heic_and_avif_photos_get_the_four_renditions_and_their_metadata() {
    for (avif, format, mime) in [(false, ImageFormat::Heic, "image/heic"), (true, ImageFormat::Avif, "image/avif")] {
        let input = iphone_photo(avif);
        assert_eq!(sniff_mime(&input, None), Some(mime), "sniffed from the ftyp brands");
        let out = run(&input).unwrap_or_else(|e| panic!("{mime}: {e}"));
        let m = &out.metadata;
        assert_eq!((m.format, m.mime_type.as_str()), (format, mime));
        // HEIF turns images with its own irot/imir properties (libheif applies them), never
        // with the EXIF orientation: heif-enc wrote none, so the photo stays as stored.
        assert_eq!((m.width, m.height, m.orientation), (640, 480, 1), "{mime}");
        let exif = m.exif.as_ref().expect("the EXIF from the HEIF");
        assert_eq!((exif.make.as_deref(), exif.model.as_deref()), (Some("Apple"), Some("iPhone 15 Pro")));
        assert_eq!(exif.orientation, Some(6), "what the camera wrote is still reported");
        let xmp = m.xmp.as_ref().expect("the XMP from the HEIF");
        assert_eq!(
            (xmp.title.as_deref(), xmp.creator.as_slice()),
            (Some("Harbour"), &["Ada Lovelace".to_string()][..])
        );
        assert_eq!(m.icc_profile.as_deref(), Some("Display P3"), "{mime}");
        assert_eq!(out.renditions.len(), 4);
        assert_eq!((out.renditions[3].width, out.renditions[3].height), (640, 480));
        let thumb = image::load_from_memory(&out.renditions[2].bytes).expect("png").to_rgb8();
        assert_eq!(thumb.dimensions(), (319, 239));
        let (left, right) = (thumb.get_pixel(40, 120), thumb.get_pixel(280, 120));
        assert!(left[0] > 150 && left[2] < 100 && right[2] > 150 && right[0] < 100, "{mime}: {left:?} {right:?}");
        assert_eq!(extract_metadata(&input, &Limits::default()).as_ref(), Ok(m), "{mime}");
    }
}

#[test]
fn a_broken_heic_or_avif_is_refused_with_libheifs_reason() {
    let heic = iphone_photo(false);
    let err = run(&heic[..heic.len() / 2]).unwrap_err();
    assert!(matches!(err, EngineError::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains("heic") && err.to_string().contains("end of file"), "{err}");
    // The ftyp box alone: no meta box, no size to check, refused before heif-convert runs.
    let err = run(&heic[..40]).unwrap_err();
    assert!(err.to_string().contains("ispe"), "{err}");
    // Coded data scrambled: libheif 1.15 may crash on it; that is a refusal, not a dead worker.
    let mut scrambled = iphone_photo(true);
    let n = scrambled.len();
    for (i, b) in scrambled.iter_mut().enumerate().skip(n - n / 3) {
        *b ^= (i as u8).wrapping_mul(151) | 1;
    }
    match run(&scrambled) {
        Err(EngineError::Corrupt { format, .. }) => assert_eq!(format, "avif"),
        // AV1 can decode noise into a picture: then it is one.
        Ok(out) => assert_eq!(out.renditions.len(), 4),
        Err(other) => panic!("a scrambled AVIF: {other:?}"),
    }
}

#[test]
fn a_heic_over_the_memory_budget_is_refused_before_heif_convert_runs() {
    let heic = iphone_photo(false);
    // 640x480 RGBA is 1.2 MB.
    let tight = Limits { max_alloc: 1 << 20, ..Limits::default() };
    let err = process(&heic, &RenditionSpec::aem_defaults(), &tight).unwrap_err();
    assert!(matches!(err, EngineError::AllocLimit { .. }), "{err:?}");
    assert!(err.to_string().contains("640x480"), "{err}");
    let few_pixels = Limits { max_pixels: 100_000, ..Limits::default() };
    let err = process(&heic, &RenditionSpec::aem_defaults(), &few_pixels).unwrap_err();
    assert!(matches!(err, EngineError::TooLarge { width: 640, height: 480, .. }), "{err:?}");
}
