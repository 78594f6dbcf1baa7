//! Bad inputs give typed errors, never panics: corrupt, truncated, unsupported, too large.

mod common;

use common::{jpeg, photo_like, png, png_bomb, Rng};
use offloader_renditions::{process, EngineError, Format, Limits, RenditionSpec};

fn run(input: &[u8]) -> Result<(), EngineError> {
    process(input, &RenditionSpec::aem_defaults(), &Limits::default()).map(|_| ())
}

#[test]
fn text_file_named_jpg_is_unsupported() {
    let err = run(b"Quarterly report\nRevenue: up\n").unwrap_err();
    assert!(matches!(err, EngineError::Unsupported { .. }), "{err:?}");
    assert!(err.to_string().contains("text, not an image"), "{err}");
    assert_eq!(err.code(), "unsupported");
    assert!(matches!(run(b"").unwrap_err(), EngineError::Unsupported { .. }));
    // A Photoshop header in indexed colour: sniffed as PSD, refused for its colour mode.
    let psd = run(b"8BPS\0\x01\0\0\0\0\0\0\0\x03\0\0\0\x02\0\0\0\x02\0\x08\0\x02").unwrap_err();
    assert!(matches!(psd, EngineError::Unsupported { .. }) && psd.to_string().contains("Photoshop"), "{psd}");
}

#[test]
fn corrupt_jpeg_is_corrupt() {
    let good = jpeg(&photo_like(64, 64, 21), 90);
    // Break the Huffman tables: every DHT segment's code counts claim more codes than exist.
    let mut bad = good.clone();
    let mut i = 2;
    let mut broken = 0;
    while i + 4 < bad.len() {
        if bad[i] == 0xFF && bad[i + 1] == 0xC4 {
            for b in &mut bad[i + 5..i + 21] {
                *b = 0xFF;
            }
            broken += 1;
        }
        if bad[i] == 0xFF && bad[i + 1] == 0xDA {
            break;
        }
        i += 1;
    }
    assert!(broken > 0, "test JPEG has no DHT");
    let err = run(&bad).unwrap_err();
    assert!(matches!(err, EngineError::Corrupt { .. }), "{err:?}");
    // A JPEG signature followed by garbage.
    let err = run(b"\xFF\xD8\xFF\xE0garbage garbage garbage").unwrap_err();
    assert!(matches!(err, EngineError::Corrupt { .. } | EngineError::Truncated { .. }), "{err:?}");
}

#[test]
fn truncated_jpeg_is_truncated() {
    let good = jpeg(&photo_like(256, 256, 22), 90);
    let err = run(&good[..good.len() * 2 / 3]).unwrap_err();
    assert!(matches!(err, EngineError::Truncated { .. }), "{err:?}");
    assert_eq!(err.code(), "truncated");
}

#[test]
fn truncated_png_is_truncated() {
    let raw: Vec<u8> = (0..128 * 128 * 3).map(|i| (i * 31 % 251) as u8).collect();
    let good = png(&raw, 128, 128, image::ExtendedColorType::Rgb8);
    run(&good).expect("the whole PNG is fine");
    let err = run(&good[..good.len() / 2]).unwrap_err();
    assert!(matches!(err, EngineError::Truncated { .. }), "{err:?}");
    // Cut inside the header: still a typed error.
    let err = run(&good[..20]).unwrap_err();
    assert!(matches!(err, EngineError::Truncated { .. } | EngineError::Corrupt { .. }), "{err:?}");
}

#[test]
fn png_bomb_is_refused_from_its_header() {
    let bomb = png_bomb(50_000);
    let start = std::time::Instant::now();
    let err = run(&bomb).unwrap_err();
    assert!(start.elapsed() < std::time::Duration::from_millis(500), "{:?}", start.elapsed());
    match err {
        EngineError::TooLarge { width, height, max_pixels } => {
            assert_eq!((width, height, max_pixels), (50_000, 50_000, 1_000_000_000));
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    // The same construction at a small size is a real, decodable image: the bomb is genuine.
    let small = png_bomb(64);
    let img = image::load_from_memory(&small).expect("valid PNG");
    assert_eq!((img.width(), img.height()), (64, 64));
    run(&small).expect("a small all-black PNG renders");
}

#[test]
fn jpeg_claiming_a_huge_size_is_refused_before_decoding() {
    let mut input = jpeg(&photo_like(16, 16, 23), 90);
    // Patch the SOF0 frame header's height and width to 60000 x 60000.
    let sof = input.windows(2).position(|w| w == [0xFF, 0xC0]).expect("SOF0");
    input[sof + 5..sof + 9].copy_from_slice(&[0xEA, 0x60, 0xEA, 0x60]);
    let err = run(&input).unwrap_err();
    assert!(matches!(err, EngineError::TooLarge { width: 60000, height: 60000, .. }), "{err:?}");
}

#[test]
fn limits_are_enforced() {
    let input = jpeg(&photo_like(1000, 800, 24), 90);
    let tight = Limits { max_input_bytes: 100, ..Limits::default() };
    let err = process(&input, &RenditionSpec::aem_defaults(), &tight).unwrap_err();
    assert!(matches!(err, EngineError::InputTooLarge { .. }), "{err:?}");
    let tight = Limits { max_pixels: 500_000, ..Limits::default() };
    let err = process(&input, &RenditionSpec::aem_defaults(), &tight).unwrap_err();
    assert!(matches!(err, EngineError::TooLarge { .. }), "{err:?}");
    let tight = Limits { max_alloc: 1 << 20, ..Limits::default() };
    let err = process(&input, &RenditionSpec::aem_defaults(), &tight).unwrap_err();
    assert!(matches!(err, EngineError::AllocLimit { .. }), "{err:?}");
}

#[test]
fn invalid_specs_are_refused() {
    let input = jpeg(&photo_like(64, 64, 25), 90);
    let zero = [RenditionSpec::new("zero.png", 0, 10, Format::Png)];
    let err = process(&input, &zero, &Limits::default()).unwrap_err();
    assert!(matches!(err, EngineError::InvalidSpec { ref name, .. } if name == "zero.png"), "{err:?}");
    let q = [RenditionSpec::new("q.jpeg", 10, 10, Format::Jpeg { quality: 0 })];
    assert!(matches!(process(&input, &q, &Limits::default()), Err(EngineError::InvalidSpec { .. })));
}

/// Random damage to valid files must give Ok or a typed error, never a panic or a hang.
#[test]
fn damaged_inputs_never_panic() {
    let jpeg_in = jpeg(&photo_like(96, 64, 26), 85);
    let raw: Vec<u8> = (0..80 * 60 * 4).map(|i| (i * 13 % 256) as u8).collect();
    let png_in = png(&raw, 80, 60, image::ExtendedColorType::Rgba8);
    let mut rng = Rng::new(27);
    let mut outcomes = [0usize; 2];
    for round in 0..300 {
        let mut input = if round % 2 == 0 { jpeg_in.clone() } else { png_in.clone() };
        match rng.below(3) {
            0 => {
                for _ in 0..=rng.below(8) {
                    let i = rng.below(input.len() as u64) as usize;
                    input[i] = rng.next() as u8;
                }
            }
            1 => {
                let keep = rng.below(input.len() as u64) as usize;
                input.truncate(keep);
            }
            _ => {
                let i = rng.below(input.len() as u64) as usize;
                let n = rng.below(64) as usize;
                input.splice(i..i, std::iter::repeat_n(rng.next() as u8, n));
            }
        }
        let result = std::panic::catch_unwind(|| run(&input));
        match result {
            Ok(Ok(())) => outcomes[0] += 1,
            Ok(Err(_)) => outcomes[1] += 1,
            Err(_) => panic!("round {round}: the engine panicked"),
        }
    }
    // Both outcomes occur: the damage is real, and some damage is survivable.
    assert!(outcomes[0] > 0 && outcomes[1] > 0, "{outcomes:?}");
}
