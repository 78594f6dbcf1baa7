//! Decoding a progressive JPEG only as far as a shrunk rendition can show.
//!
//! A progressive JPEG is a series of scans, each adding precision to the DCT coefficients the
//! earlier ones sent. The usual scripts (libjpeg's, Photoshop's) end with *refinement* scans
//! that carry nothing but the least significant bit of every AC coefficient. In a high-quality
//! photo those last scans are a third of the file and the slowest part of decoding it:
//! libjpeg's refinement decoder walks the bit stream one coefficient at a time, and it has to
//! walk all 63 coefficients of every block whatever the output scale.
//!
//! That bit is worth one quantizer step of each coefficient. When the steps are tiny (quality
//! 95 and up) and the image is shrunk at least twice while decoding, then filtered down again,
//! what the bit adds to a rendition is under one 8-bit level (RMS): 50 to 55 dB between the web
//! renditions made with and without it on the benchmark's photographs, 49 dB on synthetic grain
//! (the worst case, every coefficient busy). So, under exactly those conditions, the engine
//! hands libjpeg the file without its trailing LSB refinement scans, followed by an end-of-image
//! marker. A truncated progressive file is valid JPEG (it is what a browser shows while the
//! rest is downloading); libjpeg estimates the missing bits of the lowest coefficients from the
//! neighbouring blocks (block smoothing). On the two quality-100 photos of the benchmark corpus
//! this takes a third off the decode.
//!
//! Damage that lies only inside the dropped scans goes unnoticed: those bytes are never read,
//! and the renditions are what the intact file would give to within that level.
//!
//! Anything this parser does not understand (a baseline file, a missing table, odd markers) just
//! means "decode the whole file": it never fails an image.

/// The largest quantizer step (of the coefficients a scaled decode uses) whose last bit may be
/// dropped: the error left on a coefficient is at most one step. Quality-100 files have steps
/// of 1, quality 95 of 2; from quality 90 (steps of 3 and more) the bit is kept.
const MAX_DROPPED_STEP: u16 = 2;

/// Zig-zag positions of the coefficients libjpeg's scaled inverse DCT reads, by scale in
/// eighths: 1/8 uses the DC term only, 1/4 the top-left 2x2, 1/2 the top-left 4x4.
fn coefficients_used(scale_eighths: u32) -> &'static [usize] {
    const DC: [usize; 1] = [0];
    const TWO: [usize; 4] = [0, 1, 2, 4];
    const FOUR: [usize; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 16, 17, 24];
    match scale_eighths {
        1 => &DC,
        2 => &TWO,
        _ => &FOUR,
    }
}

/// The parts of a JPEG's marker structure this module needs.
#[derive(Debug, Default)]
struct Layout {
    progressive: bool,
    /// Quantization tables by slot (0..=3), in zig-zag order.
    tables: [Option<[u16; 64]>; 4],
    /// The quantization slot of each component of the frame.
    component_tables: Vec<u8>,
    scans: Vec<Scan>,
}

/// One scan: where its SOS marker starts, and its spectral band and successive approximation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Scan {
    offset: usize,
    ss: u8,
    ah: u8,
    al: u8,
}

impl Scan {
    /// A scan that only adds the last bit of AC coefficients already sent.
    fn is_final_ac_refinement(&self) -> bool {
        self.ss >= 1 && self.ah == 1 && self.al == 0
    }
}

/// `input` without its trailing AC refinement scans, ended by an EOI marker, if dropping them is
/// invisible at DCT scale `scale_eighths` (1, 2 or 4); `None` means "decode all of it".
pub(crate) fn without_final_refinement(input: &[u8], scale_eighths: u32) -> Option<Vec<u8>> {
    if scale_eighths > 4 {
        return None;
    }
    // The tables are checked as soon as the first scan starts, so that a file whose last bit
    // matters is not walked to its end for nothing.
    let worth_it = |layout: &Layout| droppable(layout, scale_eighths);
    let layout = parse(input, worth_it)?;
    // Checked again at the end: a DQT segment may redefine a table between scans.
    if !worth_it(&layout) {
        return None;
    }
    let kept = layout.scans.iter().rposition(|s| !s.is_final_ac_refinement())? + 1;
    // Nothing to drop, or nothing would be left but the DC scans.
    let cut = layout.scans.get(kept)?.offset;
    let mut out = Vec::with_capacity(cut + 2);
    out.extend_from_slice(&input[..cut]);
    out.extend_from_slice(&[0xFF, 0xD9]);
    Some(out)
}

/// Whether the quantizer steps of every component allow dropping the last bit at this scale.
fn droppable(layout: &Layout, scale_eighths: u32) -> bool {
    if !layout.progressive || layout.component_tables.is_empty() {
        return false;
    }
    let used = coefficients_used(scale_eighths);
    layout.component_tables.iter().all(|&slot| match layout.tables.get(usize::from(slot)) {
        Some(Some(table)) => used.iter().all(|&k| table[k] <= MAX_DROPPED_STEP),
        _ => false,
    })
}

/// Walk the markers from SOI to EOI. `None` on anything unexpected, or when `worth_it` says no
/// at the first scan (the headers and tables are known by then).
fn parse(data: &[u8], worth_it: impl Fn(&Layout) -> bool) -> Option<Layout> {
    if data.get(..2)? != [0xFF, 0xD8] {
        return None;
    }
    let mut layout = Layout::default();
    let mut pos = 2;
    loop {
        // Markers may be preceded by any number of 0xFF fill bytes.
        if *data.get(pos)? != 0xFF {
            return None;
        }
        while *data.get(pos + 1)? == 0xFF {
            pos += 1;
        }
        let marker = *data.get(pos + 1)?;
        match marker {
            0xD9 => return Some(layout),
            0xD0..=0xD7 | 0x01 => {
                pos += 2;
                continue;
            }
            _ => {}
        }
        let len = usize::from(u16::from_be_bytes([*data.get(pos + 2)?, *data.get(pos + 3)?]));
        let body = data.get(pos + 4..(pos + 2).checked_add(len)?)?;
        match marker {
            0xC2 | 0xC6 | 0xCA | 0xCE => {
                layout.progressive = true;
                layout.component_tables = frame_tables(body)?;
            }
            0xC0 | 0xC1 | 0xC3 | 0xC5 | 0xC7 | 0xC9 | 0xCB | 0xCD | 0xCF => return Some(layout),
            0xDB => read_tables(body, &mut layout.tables)?,
            0xDA => {
                if layout.scans.is_empty() && !worth_it(&layout) {
                    return None;
                }
                let count = usize::from(*body.first()?);
                let params = body.get(1 + 2 * count..1 + 2 * count + 3)?;
                layout.scans.push(Scan { offset: pos, ss: params[0], ah: params[2] >> 4, al: params[2] & 0x0F });
                pos = skip_entropy_data(data, pos + 2 + len)?;
                continue;
            }
            _ => {}
        }
        pos += 2 + len;
    }
}

/// The quantization slot of each component in a SOF segment.
fn frame_tables(body: &[u8]) -> Option<Vec<u8>> {
    let count = usize::from(*body.get(5)?);
    let specs = body.get(6..6 + 3 * count)?;
    Some(specs.chunks_exact(3).map(|c| c[2] & 0x03).collect())
}

/// Every table of a DQT segment (8- or 16-bit entries).
fn read_tables(mut body: &[u8], tables: &mut [Option<[u16; 64]>; 4]) -> Option<()> {
    while let Some((&head, rest)) = body.split_first() {
        let wide = head >> 4 != 0;
        let size = if wide { 128 } else { 64 };
        let entries = rest.get(..size)?;
        let mut table = [0u16; 64];
        for (k, value) in table.iter_mut().enumerate() {
            *value =
                if wide { u16::from_be_bytes([entries[2 * k], entries[2 * k + 1]]) } else { u16::from(entries[k]) };
        }
        *tables.get_mut(usize::from(head & 0x0F))? = Some(table);
        body = &rest[size..];
    }
    Some(())
}

/// The offset of the first marker after a scan's entropy-coded data (stuffed `FF 00` bytes and
/// restart markers belong to the data).
fn skip_entropy_data(data: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        // memchr: the data is megabytes long, and a byte-by-byte search cost 7 ms on 16 MB.
        pos += memchr::memchr(0xFF, data.get(pos..)?)?;
        match *data.get(pos + 1)? {
            0x00 | 0xD0..=0xD7 | 0xFF => pos += 1,
            _ => return Some(pos),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jpeg::{self, TjPixel};
    use crate::quality::psnr;
    use crate::{render_with, Limits, RenditionSpec, Tuning};

    /// A minimal marker skeleton: SOI, DQT (one table of `step`), progressive SOF with one
    /// component, the given scans with a few bytes of "entropy data" each (one stuffed FF 00),
    /// and EOI. Enough for the parser; not a decodable image.
    fn skeleton(step: u8, scans: &[(u8, u8, u8, u8)]) -> Vec<u8> {
        let mut out = vec![0xFF, 0xD8];
        out.extend_from_slice(&[0xFF, 0xDB, 0x00, 67, 0x00]);
        out.extend_from_slice(&[step; 64]);
        out.extend_from_slice(&[0xFF, 0xC2, 0x00, 11, 8, 0x00, 0x10, 0x00, 0x10, 1, 1, 0x11, 0]);
        for &(ss, se, ah, al) in scans {
            out.extend_from_slice(&[0xFF, 0xDA, 0x00, 8, 1, 1, 0x00, ss, se, (ah << 4) | al]);
            out.extend_from_slice(&[0x12, 0xFF, 0x00, 0x34]);
        }
        out.extend_from_slice(&[0xFF, 0xD9]);
        out
    }

    const SCRIPT: [(u8, u8, u8, u8); 5] = [(0, 0, 0, 1), (1, 63, 0, 1), (0, 0, 1, 0), (1, 5, 1, 0), (6, 63, 1, 0)];

    #[test]
    fn drops_only_the_trailing_lsb_refinements() {
        let file = skeleton(1, &SCRIPT);
        let cut = without_final_refinement(&file, 4).expect("a quality-100 file is cut");
        let layout = parse(&cut, |_| true).expect("the cut file parses");
        assert_eq!(layout.scans.len(), 3, "DC, AC first pass and DC refinement remain");
        assert_eq!(&cut[cut.len() - 2..], &[0xFF, 0xD9]);
        assert_eq!(&cut[..cut.len() - 2], &file[..cut.len() - 2]);
    }

    #[test]
    fn keeps_everything_when_the_bit_matters() {
        // Coarse quantizers: the last bit is a visible step.
        assert!(without_final_refinement(&skeleton(3, &SCRIPT), 4).is_none());
        // Decoding at full or 3/4 size uses every coefficient.
        assert!(without_final_refinement(&skeleton(1, &SCRIPT), 8).is_none());
        // No trailing refinement to drop.
        assert!(without_final_refinement(&skeleton(1, &SCRIPT[..3]), 4).is_none());
        // A refinement scan followed by a first pass is not trailing.
        assert!(without_final_refinement(&skeleton(1, &[(0, 0, 0, 0), (1, 63, 1, 0), (1, 63, 0, 0)]), 4).is_none());
        // The cut never reaches a scan that is not a refinement.
        let only_dc = without_final_refinement(&skeleton(1, &[(0, 0, 0, 0), (1, 63, 1, 0)]), 4).unwrap();
        assert_eq!(parse(&only_dc, |_| true).unwrap().scans.len(), 1);
    }

    #[test]
    fn baseline_and_garbage_are_left_alone() {
        let mut baseline = skeleton(1, &SCRIPT);
        baseline[2 + 69 + 1] = 0xC0;
        assert!(without_final_refinement(&baseline, 4).is_none());
        assert!(without_final_refinement(b"not a jpeg", 4).is_none());
        let full = skeleton(1, &SCRIPT);
        for len in 0..full.len() - 2 {
            // Truncated anywhere: no panic, and never a cut beyond the data.
            if let Some(cut) = without_final_refinement(&full[..len], 4) {
                assert!(cut.len() <= len + 2);
            }
        }
    }

    /// A photo-like test image: smooth shading plus per-pixel grain, which leaves plenty of
    /// nonzero high-frequency coefficients, as real photos at quality 100 have.
    fn grainy(width: u32, height: u32) -> Vec<u8> {
        let mut out = Vec::with_capacity(width as usize * height as usize * 3);
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        for y in 0..height {
            for x in 0..width {
                let shade = 128.0 + 70.0 * (f64::from(x) / 97.0).sin() * (f64::from(y) / 61.0).cos();
                for c in 0..3u32 {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    let grain = (seed % 41) as f64 - 20.0;
                    out.push((shade + grain + f64::from(c) * 10.0).clamp(0.0, 255.0) as u8);
                }
            }
        }
        out
    }

    #[test]
    fn a_quality_100_photo_loses_its_last_scans_and_under_a_level() {
        // 4000 px wide: the web rendition is decoded at 1/2 scale (2000 px), then resized.
        let (w, h) = (4000, 2600);
        let pixels = grainy(w, h);
        let file = jpeg::encode_with(&pixels, w, h, TjPixel::Rgb, 100, true).expect("encode");
        let cut = without_final_refinement(&file, 4).expect("a quality-100 progressive file is cut");
        assert!(cut.len() * 10 < file.len() * 9, "the refinements are a large part: {} of {}", cut.len(), file.len());
        // libjpeg takes the cut file without a warning.
        let mut dec = jpeg::Decoder::new(&cut).expect("header");
        if let Err((e, _)) = dec.decode(4, TjPixel::Rgb) {
            panic!("libjpeg refused the cut file: {} (warning: {})", e.message, e.warning);
        }
        // The web rendition with and without the dropped scans.
        let web = RenditionSpec::aem_defaults().pop().expect("the web rendition");
        let render = |tuning: &Tuning| {
            let (_, mut images) = render_with(&file, std::slice::from_ref(&web), &Limits::default(), tuning)
                .expect("the engine renders the file");
            images.pop().expect("one rendition")
        };
        let skipping = Tuning::default();
        assert!(skipping.skip_lsb_refinement);
        let whole = render(&Tuning { skip_lsb_refinement: false, ..skipping });
        let db = psnr(&render(&skipping), &whole).expect("same size");
        // 48.1 dB is one level RMS; this grain is the worst case (49.3 dB when written).
        assert!((46.0..f64::INFINITY).contains(&db), "{db:.2} dB between the renditions");
        // At quality 90 the last bit is a visible step: the file is decoded whole.
        let q90 = jpeg::encode_with(&pixels, w, h, TjPixel::Rgb, 90, true).expect("encode");
        assert!(without_final_refinement(&q90, 4).is_none());
    }
}
