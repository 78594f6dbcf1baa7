//! Camera raws (DNG, CR2, NEF, ARW) rendered from their largest embedded JPEG preview. The
//! inputs are *synthesized* containers (`synth::camera_raw`): each format's TIFF structure and
//! the places it keeps its previews, with placeholder sensor data, not files from a camera.

use offloader_renditions::synth::{camera_raw, described_tiff, two_colour_jpeg, Description, RawKind, TiffWriter};
use offloader_renditions::{
    extract_metadata, process, sniff_mime, EngineError, ImageFormat, Limits, Output, RenditionSpec,
};

fn run(input: &[u8]) -> Result<Output, EngineError> {
    process(input, &RenditionSpec::aem_defaults(), &Limits::default())
}

const KINDS: [(RawKind, ImageFormat, &str, &str); 4] = [
    (RawKind::Dng, ImageFormat::Dng, "image/x-adobe-dng", "LEICA Q2"),
    (RawKind::Cr2, ImageFormat::Cr2, "image/x-canon-cr2", "Canon EOS 5D Mark IV"),
    (RawKind::Nef, ImageFormat::Nef, "image/x-nikon-nef", "NIKON D850"),
    (RawKind::Arw, ImageFormat::Arw, "image/x-sony-arw", "ILCE-7RM4"),
];

#[test]
fn each_raw_is_rendered_from_its_largest_preview_turned_by_the_raws_orientation() {
    // 1200x800, left half red; the raw says orientation 6 (turn 90 degrees clockwise).
    let preview = two_colour_jpeg(1200, 800);
    for (kind, format, mime, model) in KINDS {
        let raw = camera_raw(kind, &preview, 6);
        assert_eq!(sniff_mime(&raw, None), Some(mime), "{kind:?}: known from its bytes, whatever its name");
        assert_eq!(sniff_mime(&raw, Some("upload.tif")), Some(mime), "{kind:?}");
        let out = run(&raw).unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        let m = &out.metadata;
        assert_eq!((m.format, m.mime_type.as_str()), (format, mime));
        assert_eq!(m.preview.as_deref(), Some("embedded"));
        // Not the 160x120 thumbnail, nor the larger sensor data: the preview, turned.
        assert_eq!((m.stored_width, m.stored_height), (1200, 800), "{kind:?}");
        assert_eq!((m.width, m.height, m.orientation), (800, 1200, 6), "{kind:?}");
        let exif = m.exif.as_ref().expect("the raw's EXIF");
        assert_eq!(exif.model.as_deref(), Some(model));
        assert_eq!(out.renditions.len(), 4);
        assert_eq!((out.renditions[3].width, out.renditions[3].height), (800, 1200), "{kind:?}");
        let thumb = image::load_from_memory(&out.renditions[2].bytes).expect("png").to_rgb8();
        assert_eq!(thumb.dimensions(), (213, 319), "{kind:?}");
        // Turned clockwise: the stored left (red) half is now on top.
        let (top, bottom) = (thumb.get_pixel(106, 40), thumb.get_pixel(106, 280));
        assert!(top[0] > 150 && top[2] < 100 && bottom[2] > 150 && bottom[0] < 100, "{kind:?}: {top:?} {bottom:?}");
        assert_eq!(extract_metadata(&raw, &Limits::default()).as_ref(), Ok(m), "{kind:?}");
        let json = serde_json::to_value(m).unwrap();
        assert_eq!((json["format"].as_str(), json["preview"].as_str()), (Some(format.name()), Some("embedded")));
    }
}

#[test]
fn a_raw_without_a_preview_or_with_a_cut_one_is_refused_with_the_reason() {
    // A DNG whose only image is its sensor data.
    let mut w = TiffWriter::new(false);
    w.ifd(vec![
        TiffWriter::ascii(0x010F, "Leica Camera AG"),
        (0xC612, 1, 4, vec![1, 4, 0, 0]),
        TiffWriter::short(0x0103, 7),
        TiffWriter::short(0x0106, 32803),
    ]);
    let err = run(&w.finish()).unwrap_err();
    assert!(matches!(err, EngineError::Unsupported { .. }), "{err:?}");
    assert!(err.to_string().contains("DNG camera raw without an embedded JPEG preview"), "{err}");

    // A NEF cut inside its preview: the preview is still chosen, and found truncated.
    let preview = two_colour_jpeg(1200, 800);
    let raw = camera_raw(RawKind::Nef, &preview, 1);
    let at = raw.windows(preview.len()).position(|w| w == preview.as_slice()).expect("the preview is in the NEF");
    let err = run(&raw[..at + preview.len() / 2]).unwrap_err();
    assert!(matches!(err, EngineError::Truncated { .. } | EngineError::Corrupt { .. }), "{err:?}");
}

#[test]
fn a_tiff_is_a_tiff_unless_its_bytes_or_name_say_raw() {
    let d = Description { title: "t", creator: "c", keywords: &[], rights: "r", icc_name: "sRGB" };
    let tiff = described_tiff(40, 30, &d);
    assert_eq!(sniff_mime(&tiff, None), Some("image/tiff"));
    assert_eq!(sniff_mime(&tiff, Some("IMG_0001.NEF")), Some("image/x-nikon-nef"), "the name breaks the tie");
    // A scanner's TIFF from a maker that also makes cameras, without SubIFDs: a TIFF.
    let mut w = TiffWriter::new(false);
    w.ifd(vec![TiffWriter::ascii(0x010F, "NIKON"), TiffWriter::long(0x0100, 1)]);
    assert_eq!(sniff_mime(&w.finish(), None), Some("image/tiff"));
    assert_eq!(run(&tiff).map(|o| o.metadata.format), Ok(ImageFormat::Tiff));
}
