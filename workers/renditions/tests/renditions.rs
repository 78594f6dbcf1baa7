//! The four AEM renditions: sizes (never upscaled, aspect kept), EXIF orientation, decodability,
//! and quality against a full-resolution Lanczos3 reference.

mod common;

use common::{jpeg, photo_like, with_exif, Exif};
use image::{GenericImageView, Rgb, RgbImage};
use offloader_renditions::{process, quality, render_with, Limits, RenditionSpec, Tuning};

fn sizes(input: &[u8]) -> Vec<(String, u32, u32)> {
    let out = process(input, &RenditionSpec::aem_defaults(), &Limits::default()).expect("process");
    out.renditions.into_iter().map(|r| (r.name, r.width, r.height)).collect()
}

fn named(list: &[(&str, u32, u32)]) -> Vec<(String, u32, u32)> {
    list.iter().map(|(n, w, h)| (n.to_string(), *w, *h)).collect()
}

#[test]
fn landscape_fits_every_box() {
    let input = jpeg(&photo_like(1500, 1000, 1), 90);
    assert_eq!(
        sizes(&input),
        named(&[
            ("cq5dam.thumbnail.48.48.png", 48, 32),
            ("cq5dam.thumbnail.140.100.png", 140, 93),
            ("cq5dam.thumbnail.319.319.png", 319, 213),
            ("cq5dam.web.1280.1280.jpeg", 1280, 853),
        ])
    );
}

#[test]
fn portrait_fits_every_box() {
    let input = jpeg(&photo_like(1000, 1500, 2), 90);
    assert_eq!(
        sizes(&input),
        named(&[
            ("cq5dam.thumbnail.48.48.png", 32, 48),
            ("cq5dam.thumbnail.140.100.png", 67, 100),
            ("cq5dam.thumbnail.319.319.png", 213, 319),
            ("cq5dam.web.1280.1280.jpeg", 853, 1280),
        ])
    );
}

#[test]
fn small_images_are_never_upscaled() {
    let input = jpeg(&photo_like(100, 80, 3), 90);
    assert_eq!(
        sizes(&input),
        named(&[
            ("cq5dam.thumbnail.48.48.png", 48, 38),
            ("cq5dam.thumbnail.140.100.png", 100, 80),
            ("cq5dam.thumbnail.319.319.png", 100, 80),
            ("cq5dam.web.1280.1280.jpeg", 100, 80),
        ])
    );
    let one = jpeg(&photo_like(1, 1, 4), 90);
    assert!(sizes(&one).iter().all(|(_, w, h)| (*w, *h) == (1, 1)));
}

#[test]
fn outputs_decode_as_what_they_claim() {
    let input = jpeg(&photo_like(1600, 1000, 5), 90);
    let out = process(&input, &RenditionSpec::aem_defaults(), &Limits::default()).unwrap();
    for r in &out.renditions {
        let format = image::guess_format(&r.bytes).expect("a known format");
        let expected = match r.mime_type {
            "image/png" => image::ImageFormat::Png,
            "image/jpeg" => image::ImageFormat::Jpeg,
            other => panic!("unexpected MIME type {other}"),
        };
        assert_eq!(format, expected, "{}", r.name);
        let decoded = image::load_from_memory(&r.bytes).expect("decodable");
        assert_eq!(decoded.dimensions(), (r.width, r.height), "{}", r.name);
        assert_eq!(r.name.ends_with(".png"), r.mime_type == "image/png");
    }
    // The thumbnails are real pictures, not flat fills: the gradient survives.
    let web = image::load_from_memory(&out.renditions[3].bytes).unwrap().to_rgb8();
    let mean_red = |xs: std::ops::Range<u32>| {
        let (mut sum, mut n) = (0u64, 0u64);
        for x in xs {
            for y in 0..web.height() {
                sum += u64::from(web.get_pixel(x, y)[0]);
                n += 1;
            }
        }
        sum / n
    };
    let (left, right) = (mean_red(0..128), mean_red(1152..1280));
    assert!(right > left + 40, "red gradient lost: {left} -> {right}");
}

/// Four distinct quadrants, so any flip or rotation shows.
fn quadrants(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| match (x < width / 2, y < height / 2) {
        (true, true) => Rgb([230, 20, 20]),
        (false, true) => Rgb([20, 230, 20]),
        (true, false) => Rgb([20, 20, 230]),
        (false, false) => Rgb([240, 240, 240]),
    })
}

#[test]
fn exif_orientations_1_to_8_are_applied() {
    let stored = quadrants(600, 400);
    let base = jpeg(&stored, 95);
    for orientation in 1..=8u8 {
        let input = with_exif(&base, &Exif { orientation: Some(u16::from(orientation)), ..Exif::default() });
        let out = process(&input, &RenditionSpec::aem_defaults(), &Limits::default()).unwrap();
        assert_eq!(out.metadata.orientation, orientation);
        // The reference display: the image crate's own EXIF transform of the stored pixels.
        let mut expected = image::DynamicImage::ImageRgb8(stored.clone());
        expected.apply_orientation(image::metadata::Orientation::from_exif(orientation).expect("valid orientation"));
        let expected = expected.to_rgb8();
        let transposed = orientation >= 5;
        let (dw, dh) = if transposed { (400, 600) } else { (600, 400) };
        assert_eq!((out.metadata.width, out.metadata.height), (dw, dh));
        assert_eq!((expected.width(), expected.height()), (dw, dh));
        for r in &out.renditions {
            let img = image::load_from_memory(&r.bytes).unwrap().to_rgb8();
            // Portrait after orientation 5..8, landscape otherwise.
            assert_eq!(img.height() > img.width(), transposed, "{} o={orientation}", r.name);
            for (fx, fy) in [(0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)] {
                let got = img.get_pixel((fx * img.width() as f64) as u32, (fy * img.height() as f64) as u32);
                let want = expected.get_pixel((fx * dw as f64) as u32, (fy * dh as f64) as u32);
                let close = got.0.iter().zip(want.0).all(|(a, b)| (*a as i32 - b as i32).abs() < 40);
                assert!(close, "{} o={orientation} at ({fx},{fy}): got {got:?}, want {want:?}", r.name);
            }
        }
    }
}

/// PSNR of the engine's rendition for `spec` against the full-resolution Lanczos3 reference.
fn psnr_vs_reference(input: &[u8], spec: &RenditionSpec) -> f64 {
    let limits = Limits::default();
    let (_, images) = render_with(input, std::slice::from_ref(spec), &limits, &Tuning::default()).unwrap();
    let reference = quality::reference(input, images[0].width, images[0].height, &limits).unwrap();
    quality::psnr(&images[0], &reference).expect("same size")
}

fn web() -> RenditionSpec {
    RenditionSpec::aem_defaults().pop().unwrap()
}

#[test]
fn renditions_stay_above_40_db_at_the_deeper_shrink_on_load_scales() {
    // Real photographs are checked by scripts/bench-renditions on Debian's wallpapers (it fails
    // under 40 dB); here a photo-like image large enough for the 1/4 and 1/8 decode scales.
    let input = jpeg(&photo_like(4800, 3000, 9), 92);
    for side in [800, 400] {
        let spec = RenditionSpec::new(format!("box.{side}.jpeg"), side, side, web().format);
        let db = psnr_vs_reference(&input, &spec);
        assert!(db >= 40.0, "{side} px box: {db:.2} dB");
    }
}

#[test]
fn web_rendition_is_at_least_40_db_when_shrunk_on_load() {
    // 4000 px wide: decoded at 1/2 (2000 px, 1.56x the target), then Lanczos3 to 1280.
    let input = jpeg(&photo_like(4000, 2600, 7), 92);
    let db = psnr_vs_reference(&input, &web());
    assert!(db >= 40.0, "{db:.2} dB");
    // The pipeline is not just the reference itself.
    assert!(db.is_finite());
}

#[test]
fn each_rendition_is_close_to_its_own_reference() {
    let input = jpeg(&photo_like(1600, 1100, 8), 92);
    for spec in RenditionSpec::aem_defaults() {
        let db = psnr_vs_reference(&input, &spec);
        // Thumbnails come from the chain (1280 -> 319 -> 140 -> 48), not from the original.
        assert!(db >= 35.0, "{}: {db:.2} dB", spec.name);
    }
}

#[test]
fn rendition_sets_are_data() {
    // A user adds a WebP thumbnail and a 2048 px web rendition in configuration, no code.
    let json = r#"[
        {"name": "cq5dam.web.2048.2048.jpeg", "width": 2048, "height": 2048,
         "format": {"type": "jpeg", "quality": 85}},
        {"name": "cq5dam.thumbnail.319.319.webp", "width": 319, "height": 319,
         "format": {"type": "webp"}},
        {"name": "cq5dam.web.1280.1280.jpeg", "width": 1280, "height": 1280,
         "format": {"type": "jpeg"}}
    ]"#;
    let specs: Vec<RenditionSpec> = serde_json::from_str(json).unwrap();
    assert_eq!(specs[2], web(), "quality defaults to AEM's 90");
    let input = jpeg(&photo_like(2600, 1700, 9), 90);
    let out = process(&input, &specs, &Limits::default()).unwrap();
    let got: Vec<_> = out.renditions.iter().map(|r| (r.name.as_str(), r.width, r.height, r.mime_type)).collect();
    assert_eq!(
        got,
        [
            ("cq5dam.web.2048.2048.jpeg", 2048, 1339, "image/jpeg"),
            ("cq5dam.thumbnail.319.319.webp", 319, 209, "image/webp"),
            ("cq5dam.web.1280.1280.jpeg", 1280, 837, "image/jpeg"),
        ]
    );
    let webp = image::load_from_memory(&out.renditions[1].bytes).unwrap();
    assert_eq!((webp.width(), webp.height()), (319, 209));
    // And the defaults round-trip through JSON.
    let defaults = RenditionSpec::aem_defaults();
    let back: Vec<RenditionSpec> = serde_json::from_str(&serde_json::to_string(&defaults).unwrap()).unwrap();
    assert_eq!(back, defaults);
}

/// A 64x48 PNG of one colour, written by the `png` crate in any colour type and bit depth.
fn solid_png(
    color: png::ColorType,
    depth: png::BitDepth,
    row: &[u8],
    palette: Option<(&[u8], Option<&[u8]>)>,
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, 64, 48);
    enc.set_color(color);
    enc.set_depth(depth);
    if let Some((entries, alpha)) = palette {
        enc.set_palette(entries.to_vec());
        if let Some(alpha) = alpha {
            enc.set_trns(alpha.to_vec());
        }
    }
    let mut writer = enc.write_header().expect("PNG header");
    writer.write_image_data(&row.repeat(48)).expect("PNG data");
    writer.finish().expect("PNG end");
    out
}

#[test]
fn every_png_colour_type_and_depth_keeps_its_colour() {
    use png::{BitDepth as D, ColorType as C};
    let red16 = [0xC8, 0xC8, 0x1E, 0x1E, 0x3C, 0x3C, 0x80, 0x80];
    let cases: Vec<(&str, Vec<u8>, [u8; 4])> = vec![
        ("palette", solid_png(C::Indexed, D::Eight, &[0; 64], Some((&[200, 30, 60], None))), [200, 30, 60, 255]),
        (
            "palette with transparency",
            solid_png(C::Indexed, D::Eight, &[0; 64], Some((&[200, 30, 60], Some(&[128])))),
            [200, 30, 60, 128],
        ),
        ("1-bit gray", solid_png(C::Grayscale, D::One, &[0xFF; 8], None), [255, 255, 255, 255]),
        ("16-bit gray", solid_png(C::Grayscale, D::Sixteen, &[0x80, 0x80].repeat(64), None), [128, 128, 128, 255]),
        ("gray and alpha", solid_png(C::GrayscaleAlpha, D::Eight, &[90, 200].repeat(64), None), [90, 90, 90, 200]),
        ("16-bit RGBA", solid_png(C::Rgba, D::Sixteen, &red16.repeat(64), None), [200, 30, 60, 128]),
    ];
    for (what, input, [r, g, b, a]) in cases {
        let out = process(&input, &RenditionSpec::aem_defaults(), &Limits::default())
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        // The smallest thumbnail, a PNG that keeps the alpha channel.
        let thumb = image::load_from_memory(&out.renditions[0].bytes).expect("decodable").to_rgba8();
        assert_eq!(thumb.dimensions(), (48, 36), "{what}");
        let px = thumb.get_pixel(24, 18).0;
        let close = px.iter().zip([r, g, b, a]).all(|(&got, want)| got.abs_diff(want) <= 1);
        assert!(close, "{what}: {px:?}, expected {:?}", [r, g, b, a]);
        // The web rendition (JPEG) is flattened onto white.
        let web = image::load_from_memory(&out.renditions[3].bytes).expect("decodable").to_rgb8();
        let blend = |c: u8| ((u32::from(c) * u32::from(a) + 255 * (255 - u32::from(a)) + 127) / 255) as u8;
        let px = web.get_pixel(32, 24).0;
        let close = px.iter().zip([blend(r), blend(g), blend(b)]).all(|(&got, want)| got.abs_diff(want) <= 4);
        assert!(close, "{what}: web {px:?}");
    }
}
