//! The formats beyond JPEG and PNG (docs/formats.md): TIFF (8 and 16 bits, LZW and deflate,
//! first page of several), WebP, GIF (first frame), BMP each give their metadata and the four
//! renditions; a corrupt or truncated copy of each is a typed error, never a panic.

use image::codecs::gif::{GifEncoder, Repeat};
use image::codecs::webp::WebPEncoder;
use image::{Delay, Frame, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};
use offloader_renditions::{process, ColorType, EngineError, Limits, Output, RenditionSpec};
use std::io::Cursor;
use tiff::encoder::{colortype, Compression, DeflateLevel, TiffEncoder};

fn run(input: &[u8]) -> Result<Output, EngineError> {
    process(input, &RenditionSpec::aem_defaults(), &Limits::default())
}

fn rgb8(w: u32, h: u32) -> Vec<u8> {
    (0..w * h).flat_map(|i| [(i % w) as u8, (i / w) as u8, 200]).collect()
}

fn tiff_rgb8(w: u32, h: u32, compression: Compression) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    let mut enc = TiffEncoder::new(&mut out).expect("tiff encoder").with_compression(compression);
    enc.write_image::<colortype::RGB8>(w, h, &rgb8(w, h)).expect("tiff page");
    out.into_inner()
}

fn tiff_rgb16(w: u32, h: u32, compression: Compression) -> Vec<u8> {
    let data: Vec<u16> = (0..w * h).flat_map(|i| [((i % w) * 100) as u16, ((i / w) * 200) as u16, 40_000]).collect();
    let mut out = Cursor::new(Vec::new());
    let mut enc = TiffEncoder::new(&mut out).expect("tiff encoder").with_compression(compression);
    enc.write_image::<colortype::RGB16>(w, h, &data).expect("tiff page");
    out.into_inner()
}

fn tiff_gray16(w: u32, h: u32) -> Vec<u8> {
    let data: Vec<u16> = (0..w * h).map(|i| (i % 65_536) as u16).collect();
    let mut out = Cursor::new(Vec::new());
    let mut enc = TiffEncoder::new(&mut out).expect("tiff encoder").with_compression(Compression::Lzw);
    enc.write_image::<colortype::Gray16>(w, h, &data).expect("tiff page");
    out.into_inner()
}

/// Two pages: 400x300, then 50x50. Only the first is rendered.
fn tiff_two_pages() -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    let mut enc = TiffEncoder::new(&mut out).expect("tiff encoder").with_compression(Compression::Lzw);
    enc.write_image::<colortype::RGB8>(400, 300, &rgb8(400, 300)).expect("page 1");
    enc.write_image::<colortype::RGB8>(50, 50, &rgb8(50, 50)).expect("page 2");
    out.into_inner()
}

fn webp_lossless(w: u32, h: u32) -> Vec<u8> {
    let img = RgbaImage::from_fn(w, h, |x, y| Rgba([x as u8, y as u8, 90, if x < 10 { 0 } else { 255 }]));
    let mut out = Vec::new();
    WebPEncoder::new_lossless(&mut out).encode(img.as_raw(), w, h, image::ExtendedColorType::Rgba8).expect("webp");
    out
}

/// Two frames: red, then blue. The renditions show the first.
fn gif_two_frames(w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = GifEncoder::new(&mut out);
        enc.set_repeat(Repeat::Infinite).expect("gif repeat");
        for colour in [Rgba([255, 0, 0, 255]), Rgba([0, 0, 255, 255])] {
            let frame =
                Frame::from_parts(RgbaImage::from_pixel(w, h, colour), 0, 0, Delay::from_numer_denom_ms(100, 1));
            enc.encode_frame(frame).expect("gif frame");
        }
    }
    out
}

fn bmp(w: u32, h: u32) -> Vec<u8> {
    let img = RgbImage::from_fn(w, h, |x, y| Rgb([x as u8, y as u8, 7]));
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Bmp).expect("bmp");
    out.into_inner()
}

/// One case: name, bytes, displayed size, format name, bit depth.
type Case = (&'static str, Vec<u8>, (u32, u32), &'static str, u8);

fn cases() -> Vec<Case> {
    vec![
        ("tiff 8-bit LZW", tiff_rgb8(600, 400, Compression::Lzw), (600, 400), "tiff", 8),
        ("tiff 8-bit deflate", tiff_rgb8(600, 400, Compression::Deflate(DeflateLevel::Fast)), (600, 400), "tiff", 8),
        ("tiff 16-bit deflate", tiff_rgb16(500, 300, Compression::Deflate(DeflateLevel::Fast)), (500, 300), "tiff", 16),
        ("tiff 16-bit gray LZW", tiff_gray16(320, 240), (320, 240), "tiff", 16),
        ("tiff two pages", tiff_two_pages(), (400, 300), "tiff", 8),
        ("webp lossless", webp_lossless(300, 200), (300, 200), "webp", 8),
        ("gif two frames", gif_two_frames(200, 150), (200, 150), "gif", 8),
        ("bmp", bmp(350, 250), (350, 250), "bmp", 8),
    ]
}

#[test]
fn each_format_gives_metadata_and_the_four_renditions() {
    for (name, input, (w, h), format, depth) in cases() {
        let out = run(&input).unwrap_or_else(|e| panic!("{name}: {e}"));
        let m = &out.metadata;
        assert_eq!((m.width, m.height), (w, h), "{name}");
        assert_eq!(serde_json::to_value(m.format).unwrap(), format, "{name}");
        assert_eq!(m.bit_depth, depth, "{name}");
        assert_eq!(out.renditions.len(), 4, "{name}");
        let web = &out.renditions[3];
        assert_eq!((web.width, web.height), (w, h), "{name}: never upscaled");
        assert!(web.bytes.starts_with(&[0xFF, 0xD8]), "{name}: the web rendition is a JPEG");
        let thumb = &out.renditions[0];
        assert_eq!(thumb.width.max(thumb.height), 48, "{name}");
        assert!(thumb.bytes.starts_with(b"\x89PNG"), "{name}");
    }
}

#[test]
fn first_page_and_first_frame_are_the_ones_rendered() {
    let gif = run(&gif_two_frames(200, 150)).expect("gif");
    assert_eq!(gif.metadata.color_type, ColorType::Indexed);
    let thumb = image::load_from_memory(&gif.renditions[0].bytes).expect("png thumbnail").to_rgb8();
    let p = thumb.get_pixel(10, 10);
    assert!(p[0] > 200 && p[2] < 50, "the first (red) frame, got {p:?}");
    let tiff = run(&tiff_two_pages()).expect("tiff");
    assert_eq!(tiff.renditions[2].width, 319, "the 400x300 first page, not the 50x50 second");
    let webp = run(&webp_lossless(300, 200)).expect("webp");
    assert!(webp.metadata.has_alpha);
}

#[test]
fn a_corrupt_or_truncated_copy_of_each_is_a_typed_error() {
    for (name, input, ..) in cases() {
        let mut truncated = input.clone();
        truncated.truncate(input.len() / 2);
        let mut corrupt = input.clone();
        // Keep the magic and the first header bytes; scramble the rest.
        for (i, b) in corrupt.iter_mut().enumerate().skip(16) {
            *b = (i as u8).wrapping_mul(151) ^ 0x5A;
        }
        for (variant, bytes) in [("truncated", truncated), ("corrupt", corrupt)] {
            match run(&bytes) {
                Err(e) => assert!(
                    matches!(e.code(), "truncated" | "corrupt" | "unsupported" | "too_large" | "alloc_limit"),
                    "{variant} {name}: {e:?}"
                ),
                Ok(out) => panic!("{variant} {name} rendered as {}x{}", out.metadata.width, out.metadata.height),
            }
        }
    }
}
