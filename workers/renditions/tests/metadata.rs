//! Metadata read from headers: format, MIME type, size, colour model, bit depth, EXIF fields.

mod common;

use common::{jpeg, photo_like, png, with_exif, Exif};
use offloader_renditions::{extract_metadata, process, ColorType, ImageFormat, Limits, RenditionSpec};

#[test]
fn jpeg_with_camera_exif() {
    let input = with_exif(
        &jpeg(&photo_like(320, 240, 11), 90),
        &Exif {
            orientation: Some(6),
            make: Some("Canon"),
            model: Some("Canon EOS 5D Mark IV"),
            date_taken: Some("2024:05:17 14:03:59"),
            exposure: Some((1, 250)),
            gps: Some(([48, 51, 30], "N", [2, 17, 40], "W")),
        },
    );
    let meta = extract_metadata(&input, &Limits::default()).unwrap();
    assert_eq!(meta.format, ImageFormat::Jpeg);
    assert_eq!(meta.mime_type, "image/jpeg");
    // Orientation 6 turns the stored 320x240 into a displayed 240x320.
    assert_eq!((meta.stored_width, meta.stored_height), (320, 240));
    assert_eq!((meta.width, meta.height), (240, 320));
    assert_eq!(meta.color_type, ColorType::Rgb);
    assert_eq!(meta.bit_depth, 8);
    assert!(!meta.has_alpha);
    let exif = meta.exif.as_ref().expect("EXIF present");
    assert_eq!(exif.make.as_deref(), Some("Canon"));
    assert_eq!(exif.model.as_deref(), Some("Canon EOS 5D Mark IV"));
    assert_eq!(exif.date_taken.as_deref(), Some("2024:05:17 14:03:59"));
    assert_eq!(exif.orientation, Some(6));
    assert_eq!(exif.exposure_time, Some(0.004));
    let lat = exif.gps_latitude.expect("latitude");
    let lon = exif.gps_longitude.expect("longitude");
    assert!((lat - (48.0 + 51.0 / 60.0 + 30.0 / 3600.0)).abs() < 1e-9, "{lat}");
    assert!((lon + (2.0 + 17.0 / 60.0 + 40.0 / 3600.0)).abs() < 1e-9, "{lon}");

    // process() reports the same metadata, and it serialises for the job's output payload.
    let out = process(&input, &RenditionSpec::aem_defaults(), &Limits::default()).unwrap();
    assert_eq!(out.metadata, meta);
    let json = serde_json::to_value(&meta).unwrap();
    assert_eq!(json["format"], "jpeg");
    assert_eq!(json["exif"]["model"], "Canon EOS 5D Mark IV");
}

#[test]
fn jpeg_without_exif_has_none() {
    let meta = extract_metadata(&jpeg(&photo_like(64, 48, 12), 90), &Limits::default()).unwrap();
    assert_eq!(meta.exif, None);
    assert_eq!(meta.orientation, 1);
    assert_eq!((meta.width, meta.height), (64, 48));
}

#[test]
fn png_colour_models_and_depths() {
    let rgba16: Vec<u8> = (0..32 * 16 * 8).map(|i| (i * 7 % 256) as u8).collect();
    let meta = extract_metadata(&png(&rgba16, 32, 16, image::ExtendedColorType::Rgba16), &Limits::default()).unwrap();
    assert_eq!(meta.format, ImageFormat::Png);
    assert_eq!(meta.mime_type, "image/png");
    assert_eq!((meta.width, meta.height), (32, 16));
    assert_eq!(meta.color_type, ColorType::Rgba);
    assert_eq!(meta.bit_depth, 16);
    assert!(meta.has_alpha);

    let gray: Vec<u8> = (0..40 * 30).map(|i| (i % 256) as u8).collect();
    let input = png(&gray, 40, 30, image::ExtendedColorType::L8);
    let meta = extract_metadata(&input, &Limits::default()).unwrap();
    assert_eq!((meta.color_type, meta.bit_depth, meta.has_alpha), (ColorType::Gray, 8, false));
    // A 16-bit, alpha PNG renders too, and the PNG thumbnails keep its alpha.
    let out = process(
        &png(&rgba16, 32, 16, image::ExtendedColorType::Rgba16),
        &RenditionSpec::aem_defaults(),
        &Limits::default(),
    )
    .unwrap();
    let thumb = image::load_from_memory(&out.renditions[0].bytes).unwrap();
    assert!(thumb.color().has_alpha());
}

#[test]
fn grayscale_jpeg() {
    let img = image::GrayImage::from_fn(200, 100, |x, _| image::Luma([(x % 256) as u8]));
    let mut bytes = Vec::new();
    image::DynamicImage::ImageLuma8(img)
        .write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Jpeg)
        .unwrap();
    let out = process(&bytes, &RenditionSpec::aem_defaults(), &Limits::default()).unwrap();
    assert_eq!(out.metadata.color_type, ColorType::Gray);
    assert_eq!(out.renditions[3].width, 200);
}

#[test]
fn other_formats_are_read() {
    let img = photo_like(300, 200, 13);
    for format in [image::ImageFormat::Gif, image::ImageFormat::Bmp, image::ImageFormat::Tiff, image::ImageFormat::WebP]
    {
        let mut bytes = Vec::new();
        image::DynamicImage::ImageRgb8(img.clone()).write_to(&mut std::io::Cursor::new(&mut bytes), format).unwrap();
        let out = process(&bytes, &RenditionSpec::aem_defaults(), &Limits::default())
            .unwrap_or_else(|e| panic!("{format:?}: {e}"));
        assert_eq!(out.metadata.mime_type, format.to_mime_type(), "{format:?}");
        assert_eq!((out.renditions[2].width, out.renditions[2].height), (300, 200));
    }
}

#[test]
fn xmp_iptc_and_the_icc_profile_name_come_from_a_jpegs_segments() {
    let jpeg = offloader_renditions::synth::grey_jpeg(640, 480);
    let input = offloader_renditions::synth::described_jpeg(
        &jpeg,
        "Beach & sea",
        "Ada Lovelace",
        &["beach", "été"],
        "© 2024 Ada",
        "sRGB IEC61966-2.1",
    );
    let m = offloader_renditions::extract_metadata(&input, &offloader_renditions::Limits::default()).expect("metadata");
    let xmp = m.xmp.as_ref().expect("xmp");
    assert_eq!(xmp.title.as_deref(), Some("Beach & sea"));
    assert_eq!(xmp.creator, ["Ada Lovelace"]);
    assert_eq!(xmp.subject, ["beach", "été"]);
    assert_eq!(xmp.rights.as_deref(), Some("© 2024 Ada"));
    let iptc = m.iptc.as_ref().expect("iptc");
    assert_eq!(iptc.object_name.as_deref(), Some("Beach & sea"));
    assert_eq!(iptc.keywords, ["beach", "été"]);
    assert_eq!(m.icc_profile.as_deref(), Some("sRGB IEC61966-2.1"));
    let json = serde_json::to_value(&m).unwrap();
    assert_eq!(json["xmp"]["subject"][1], "été");
    assert_eq!(json["iptc"]["by_line"][0], "Ada Lovelace");
    // The pixels are still read: the segments change nothing of the renditions.
    let out = offloader_renditions::process(
        &input,
        &offloader_renditions::RenditionSpec::aem_defaults(),
        &offloader_renditions::Limits::default(),
    )
    .expect("renditions");
    assert_eq!(out.renditions.len(), 4);
}

#[test]
fn xmp_and_the_icc_profile_name_come_from_a_pngs_chunks_and_a_tiffs_tags_too() {
    use offloader_renditions::synth::{described_png, described_tiff, Description};
    let d = Description {
        title: "Beach & sea",
        creator: "Ada Lovelace",
        keywords: &["beach", "été"],
        rights: "© 2024 Ada",
        icc_name: "Adobe RGB (1998)",
    };
    let rgb: Vec<u8> = (0..64 * 48 * 3).map(|i| (i % 251) as u8).collect();
    let png_input = described_png(&png(&rgb, 64, 48, image::ExtendedColorType::Rgb8), &d);
    let tiff_input = described_tiff(64, 48, &d);
    for (input, format) in [(png_input, ImageFormat::Png), (tiff_input, ImageFormat::Tiff)] {
        let out = process(&input, &RenditionSpec::aem_defaults(), &Limits::default())
            .unwrap_or_else(|e| panic!("{format:?}: {e}"));
        let m = &out.metadata;
        assert_eq!(m.format, format);
        let xmp = m.xmp.as_ref().unwrap_or_else(|| panic!("{format:?}: xmp"));
        assert_eq!(xmp.title.as_deref(), Some("Beach & sea"));
        assert_eq!(xmp.creator, ["Ada Lovelace"]);
        assert_eq!(xmp.subject, ["beach", "été"]);
        assert_eq!(xmp.rights.as_deref(), Some("© 2024 Ada"));
        assert_eq!(m.icc_profile.as_deref(), Some("Adobe RGB (1998)"), "{format:?}");
        assert_eq!(out.renditions.len(), 4);
        assert_eq!(extract_metadata(&input, &Limits::default()).as_ref(), Ok(m));
    }
    // IPTC-IIM has a TIFF tag (33723); PNG has no standard place for it.
    let m = extract_metadata(&described_tiff(64, 48, &d), &Limits::default()).expect("tiff");
    let iptc = m.iptc.expect("iptc");
    assert_eq!(
        (iptc.object_name.as_deref(), iptc.keywords.as_slice()),
        (Some("Beach & sea"), &["beach".to_string(), "été".to_string()][..])
    );
    assert_eq!(iptc.copyright.as_deref(), Some("© 2024 Ada"));
}
