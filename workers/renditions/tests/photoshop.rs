//! Photoshop documents, PSD and PSB, become renditions from their composite image; what cannot
//! be rendered is refused with a reason. The files are written here, byte by byte, as Adobe's
//! specification lays them out (a layer section is present and skipped, as in real files).

use offloader_renditions::{process, EngineError, Limits, RenditionSpec};

/// PackBits of one row: a literal run per 128 bytes (valid, if not the smallest).
fn packbits(row: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in row.chunks(128) {
        out.push((chunk.len() - 1) as u8);
        out.extend_from_slice(chunk);
    }
    out
}

/// A Photoshop file of `planes` (one `Vec` per channel, `depth` bits per sample, big-endian),
/// `mode` 1 grey / 3 RGB / 4 CMYK, PackBits-compressed when `rle`, PSB when `large`.
fn photoshop(w: u32, h: u32, mode: u16, depth: u16, planes: &[Vec<u8>], rle: bool, large: bool) -> Vec<u8> {
    let mut f = b"8BPS".to_vec();
    f.extend_from_slice(&(if large { 2u16 } else { 1 }).to_be_bytes());
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&(planes.len() as u16).to_be_bytes());
    f.extend_from_slice(&h.to_be_bytes());
    f.extend_from_slice(&w.to_be_bytes());
    f.extend_from_slice(&depth.to_be_bytes());
    f.extend_from_slice(&mode.to_be_bytes());
    f.extend_from_slice(&0u32.to_be_bytes()); // colour mode data
    f.extend_from_slice(&4u32.to_be_bytes()); // image resources: 4 bytes of nothing useful
    f.extend_from_slice(b"junk");
    // Layer and mask information: a few bytes a reader must skip.
    if large {
        f.extend_from_slice(&6u64.to_be_bytes());
    } else {
        f.extend_from_slice(&6u32.to_be_bytes());
    }
    f.extend_from_slice(&[0xAB; 6]);
    let row_bytes = w as usize * usize::from(depth / 8);
    f.extend_from_slice(&(if rle { 1u16 } else { 0 }).to_be_bytes());
    if rle {
        let packed: Vec<Vec<u8>> =
            planes.iter().flat_map(|p| p.chunks(row_bytes).map(packbits).collect::<Vec<_>>()).collect();
        for row in &packed {
            if large {
                f.extend_from_slice(&(row.len() as u32).to_be_bytes());
            } else {
                f.extend_from_slice(&(row.len() as u16).to_be_bytes());
            }
        }
        for row in packed {
            f.extend_from_slice(&row);
        }
    } else {
        for p in planes {
            f.extend_from_slice(p);
        }
    }
    f
}

fn plane(w: u32, h: u32, value: impl Fn(u32, u32) -> u8) -> Vec<u8> {
    (0..h).flat_map(|y| (0..w).map(move |x| (x, y))).map(|(x, y)| value(x, y)).collect()
}

#[test]
fn an_rgb_psd_with_alpha_gets_every_rendition_from_its_composite() {
    let (w, h) = (600, 400);
    // Left half red, right half blue; an alpha channel the composite ignores.
    let red = plane(w, h, |x, _| if x < w / 2 { 255 } else { 0 });
    let green = plane(w, h, |_, _| 0);
    let blue = plane(w, h, |x, _| if x < w / 2 { 0 } else { 255 });
    let alpha = plane(w, h, |_, _| 255);
    let psd = photoshop(w, h, 3, 8, &[red, green, blue, alpha], true, false);
    let out = process(&psd, &RenditionSpec::aem_defaults(), &Limits::default()).expect("an RGB PSD renders");
    assert_eq!(out.metadata.mime_type, "image/vnd.adobe.photoshop");
    assert_eq!((out.metadata.width, out.metadata.height), (600, 400));
    let sizes: Vec<(u32, u32)> = out.renditions.iter().map(|r| (r.width, r.height)).collect();
    assert_eq!(sizes.len(), 4, "{sizes:?}");
    assert_eq!(sizes[3], (600, 400), "the web rendition is not enlarged");
    // The web rendition (JPEG) shows red on the left and blue on the right.
    let web = image::load_from_memory(&out.renditions[3].bytes).expect("the web rendition decodes").to_rgb8();
    let left = web.get_pixel(100, 200);
    let right = web.get_pixel(500, 200);
    assert!(left[0] > 200 && left[2] < 60, "left is red: {left:?}");
    assert!(right[2] > 200 && right[0] < 60, "right is blue: {right:?}");
}

#[test]
fn sixteen_bit_grey_raw_and_a_psb_render_too() {
    let (w, h) = (300, 200);
    // 16-bit big-endian grey, a horizontal ramp: the high byte is what counts.
    let grey16: Vec<u8> = plane(w, h, |x, _| (x * 255 / (w - 1)) as u8).into_iter().flat_map(|v| [v, 0x5A]).collect();
    let psd = photoshop(w, h, 1, 16, &[grey16], false, false);
    let out = process(&psd, &RenditionSpec::aem_defaults(), &Limits::default()).expect("16-bit grey renders");
    let web = image::load_from_memory(&out.renditions[3].bytes).expect("decodes").to_luma8();
    assert!(web.get_pixel(5, 100)[0] < 30 && web.get_pixel(295, 100)[0] > 225, "the ramp survives");

    let cmyk: Vec<Vec<u8>> = (0..4).map(|c| plane(w, h, |_, _| if c == 3 { 255 } else { 0 })).collect();
    let psb = photoshop(w, h, 4, 8, &cmyk, true, true);
    let out = process(&psb, &RenditionSpec::aem_defaults(), &Limits::default()).expect("a CMYK PSB renders");
    let web = image::load_from_memory(&out.renditions[3].bytes).expect("decodes").to_rgb8();
    // Photoshop's inverted CMYK: 0 ink in C, M, Y with K = 255 stored is black.
    assert!(web.get_pixel(150, 100).0.iter().all(|&v| v < 20), "{:?}", web.get_pixel(150, 100));
}

#[test]
fn what_cannot_be_rendered_is_refused_with_a_reason() {
    let (w, h) = (64, 64);
    let rgb: Vec<Vec<u8>> = (0..3).map(|_| plane(w, h, |x, y| (x ^ y) as u8)).collect();
    let good = photoshop(w, h, 3, 8, &rgb, true, false);

    // Truncated inside the compressed rows.
    let cut = &good[..good.len() - 40];
    let err = process(cut, &RenditionSpec::aem_defaults(), &Limits::default()).expect_err("truncated");
    assert!(matches!(err, EngineError::Truncated { .. }), "{err}");

    // Lab colour mode is not rendered, and says so.
    let mut lab = good.clone();
    lab[24..26].copy_from_slice(&9u16.to_be_bytes());
    let err = process(&lab, &RenditionSpec::aem_defaults(), &Limits::default()).expect_err("Lab");
    assert!(err.to_string().contains("Lab colour mode"), "{err}");

    // A composite larger than the memory budget is refused before it is allocated.
    let tiny = Limits { max_alloc: 10_000, ..Limits::default() };
    let err = process(&good, &RenditionSpec::aem_defaults(), &tiny).expect_err("over budget");
    assert!(matches!(err, EngineError::AllocLimit { .. }), "{err}");
}
