//! Photoshop documents (PSD, and PSB, Photoshop's large format): the composite image.
//!
//! A Photoshop file ends with the merged image Photoshop saves for readers that do not compose
//! layers ("Maximize compatibility", on by default): planar channels, raw or PackBits-compressed
//! row by row. That is what AEM's renditions show, and all this reads: the header, then three
//! length-prefixed sections skipped whole (colour mode data, image resources, layers and masks),
//! then the composite. Layers are never decoded, so memory is the composite's RGB (or grey)
//! buffer at 8 bits, checked against the budget before it is allocated; 16- and 32-bit channels
//! keep their most significant byte. The crates that read PSD decode every layer and do not
//! read PSB, hence this small reader.
//!
//! Layout (Adobe's "Photoshop File Formats Specification"): a 26-byte header `8BPS`, version
//! (1 PSD, 2 PSB), 6 reserved bytes, channels (u16), height and width (u32), depth (u16),
//! colour mode (u16); sections of u32 length (the layer section's length is u64 in PSB); the
//! image data's compression (u16: 0 raw, 1 PackBits; 2 and 3 are ZIP, which Photoshop does not
//! write for the composite), then, for PackBits, the byte count of every row of every channel
//! (u16, u32 in PSB), then the rows.

use crate::error::EngineError;
use crate::limits::Limits;
use crate::metadata::ColorType;
use crate::pixels::{Layout, RawImage};

const FORMAT: &str = "PSD";

/// What the header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PsdHeader {
    pub width: u32,
    pub height: u32,
    pub channels: u16,
    pub depth: u16,
    pub mode: ColorMode,
    /// PSB (Photoshop's large document format): wider lengths in two places.
    pub large: bool,
}

/// The colour modes whose composite becomes a rendition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ColorMode {
    Gray,
    Rgb,
    Cmyk,
}

impl PsdHeader {
    pub fn color_type(&self) -> ColorType {
        match self.mode {
            ColorMode::Gray => ColorType::Gray,
            ColorMode::Rgb => ColorType::Rgb,
            ColorMode::Cmyk => ColorType::Cmyk,
        }
    }

    /// Colour channels read from the composite (extra ones, such as alpha, are ignored).
    fn colour_channels(&self) -> usize {
        match self.mode {
            ColorMode::Gray => 1,
            ColorMode::Rgb => 3,
            ColorMode::Cmyk => 4,
        }
    }
}

/// A cursor over the file that fails as a truncated PSD instead of panicking.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], EngineError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len()).ok_or_else(|| {
            EngineError::truncated(FORMAT, format!("the file ends inside {what} (at byte {})", self.pos))
        })?;
        let bytes = &self.data[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn u16(&mut self, what: &str) -> Result<u16, EngineError> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, what: &str) -> Result<u32, EngineError> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self, what: &str) -> Result<u64, EngineError> {
        let b = self.take(8, what)?;
        Ok(u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
    }

    /// Skips a section whose length comes first.
    fn skip_section(&mut self, wide: bool, what: &str) -> Result<(), EngineError> {
        let len = if wide { self.u64(what)? } else { u64::from(self.u32(what)?) };
        let len =
            usize::try_from(len).map_err(|_| EngineError::corrupt(FORMAT, format!("{what} claims {len} bytes")))?;
        self.take(len, what).map(|_| ())
    }
}

/// Reads and checks the header.
pub(crate) fn header(input: &[u8]) -> Result<PsdHeader, EngineError> {
    let mut r = Reader { data: input, pos: 0 };
    if r.take(4, "the signature")? != b"8BPS" {
        return Err(EngineError::corrupt(FORMAT, "no 8BPS signature"));
    }
    let large = match r.u16("the version")? {
        1 => false,
        2 => true,
        v => return Err(EngineError::corrupt(FORMAT, format!("version {v} (1 is PSD, 2 is PSB)"))),
    };
    r.take(6, "the reserved bytes")?;
    let channels = r.u16("the channel count")?;
    let height = r.u32("the height")?;
    let width = r.u32("the width")?;
    let depth = r.u16("the depth")?;
    let mode = match r.u16("the colour mode")? {
        1 => ColorMode::Gray,
        3 => ColorMode::Rgb,
        4 => ColorMode::Cmyk,
        m => {
            let name = match m {
                0 => "bitmap",
                2 => "indexed",
                7 => "multichannel",
                8 => "duotone",
                9 => "Lab",
                _ => "unknown",
            };
            return Err(EngineError::Unsupported {
                what: format!("a Photoshop document in {name} colour mode ({m}); grey, RGB and CMYK are rendered"),
            });
        }
    };
    if ![8, 16, 32].contains(&depth) {
        return Err(EngineError::Unsupported {
            what: format!("a Photoshop document of {depth} bits per channel; 8, 16 and 32 are rendered"),
        });
    }
    let h = PsdHeader { width, height, channels, depth, mode, large };
    if usize::from(channels) < h.colour_channels() {
        return Err(EngineError::corrupt(FORMAT, format!("{channels} channels for a {mode:?} image")));
    }
    Ok(h)
}

/// Decodes the composite image to 8-bit grey or RGB (CMYK converted as Adobe inverts it).
pub(crate) fn decode(input: &[u8], limits: &Limits) -> Result<RawImage, EngineError> {
    let h = header(input)?;
    let (w, rows) = (h.width as usize, h.height as usize);
    let out_channels = if h.mode == ColorMode::Gray { 1 } else { 3 };
    let needed = (w as u64) * (rows as u64) * out_channels as u64;
    // CMYK needs its four channels before converting: one more plane's worth.
    let working = if h.mode == ColorMode::Cmyk { needed / 3 * 4 } else { needed };
    limits.check_alloc(working, || {
        format!("the {}x{} Photoshop composite needs {working} bytes of pixels", h.width, h.height)
    })?;
    let mut r = Reader { data: input, pos: 26 };
    r.skip_section(false, "the colour mode data")?;
    r.skip_section(false, "the image resources")?;
    r.skip_section(h.large, "the layer and mask information")?;
    let compression = r.u16("the composite's compression")?;
    let bytes_per_sample = usize::from(h.depth / 8);
    let row_bytes = w * bytes_per_sample;
    let planes = h.colour_channels();
    let stored = usize::from(h.channels);
    let mut samples = vec![0u8; w * rows * planes];
    match compression {
        0 => {
            for c in 0..planes {
                for y in 0..rows {
                    let row = r.take(row_bytes, "the composite's raw rows")?;
                    put_row(&mut samples, row, c, y, w, planes, bytes_per_sample);
                }
            }
        }
        1 => {
            // Every stored channel's row counts come first, the rows after them.
            let mut counts = Vec::with_capacity(stored * rows);
            for _ in 0..stored * rows {
                counts.push(if h.large {
                    r.u32("the row byte counts")? as usize
                } else {
                    usize::from(r.u16("the row byte counts")?)
                });
            }
            let mut row = vec![0u8; row_bytes];
            for c in 0..planes {
                for y in 0..rows {
                    let packed = r.take(counts[c * rows + y], "the composite's compressed rows")?;
                    unpack_bits(packed, &mut row)
                        .map_err(|e| EngineError::corrupt(FORMAT, format!("row {y} of channel {c}: {e}")))?;
                    put_row(&mut samples, &row, c, y, w, planes, bytes_per_sample);
                }
            }
        }
        2 | 3 => {
            return Err(EngineError::Unsupported {
                what: "a Photoshop document whose composite is ZIP-compressed (Photoshop writes raw or PackBits)"
                    .into(),
            })
        }
        other => return Err(EngineError::corrupt(FORMAT, format!("compression {other}"))),
    }
    Ok(match h.mode {
        ColorMode::Gray => RawImage::new(h.width, h.height, Layout::Gray, samples),
        ColorMode::Rgb => RawImage::new(h.width, h.height, Layout::Rgb, samples),
        // Photoshop stores CMYK inverted, as Adobe's JPEGs do.
        ColorMode::Cmyk => RawImage::new(h.width, h.height, Layout::Rgb, crate::decode::cmyk_to_rgb(&samples)),
    })
}

/// Writes one channel's row into the interleaved buffer, keeping each sample's high byte.
fn put_row(samples: &mut [u8], row: &[u8], channel: usize, y: usize, w: usize, planes: usize, bytes: usize) {
    let base = y * w * planes + channel;
    for (x, sample) in row.chunks_exact(bytes).enumerate().take(w) {
        samples[base + x * planes] = sample[0];
    }
}

/// PackBits: a header byte n, then n + 1 literal bytes (0..=127) or one byte repeated 1 - n
/// times (-127..=-1); -128 is a no-op. The row must come out exactly `out.len()` long.
fn unpack_bits(packed: &[u8], out: &mut [u8]) -> Result<(), String> {
    let (mut i, mut o) = (0, 0);
    while o < out.len() {
        let n = *packed.get(i).ok_or("the row ends early")? as i8;
        i += 1;
        if n >= 0 {
            let len = n as usize + 1;
            let src = packed.get(i..i + len).ok_or("a literal run goes past the row's bytes")?;
            out.get_mut(o..o + len).ok_or("a literal run goes past the row's width")?.copy_from_slice(src);
            i += len;
            o += len;
        } else if n != -128 {
            let len = 1 - n as isize;
            let len = len as usize;
            let value = *packed.get(i).ok_or("a repeat run has no byte")?;
            out.get_mut(o..o + len).ok_or("a repeat run goes past the row's width")?.fill(value);
            i += 1;
            o += len;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packbits_round_trips_runs_and_literals() {
        // 3 literals, then 4 x 0x07, then a no-op, then 1 literal.
        let packed = [2, 1, 2, 3, (-3i8) as u8, 7, (-128i8) as u8, 0, 9];
        let mut out = [0u8; 8];
        unpack_bits(&packed, &mut out).expect("valid PackBits");
        assert_eq!(out, [1, 2, 3, 7, 7, 7, 7, 9]);
        let mut short = [0u8; 9];
        assert!(unpack_bits(&packed, &mut short).is_err(), "a row that ends early is an error");
        let mut narrow = [0u8; 5];
        assert!(unpack_bits(&packed, &mut narrow).is_err(), "a run past the width is an error");
    }

    #[test]
    fn other_colour_modes_and_bad_headers_are_refused_with_a_reason() {
        let mut h = b"8BPS\x00\x01\0\0\0\0\0\0\x00\x03\0\0\0\x02\0\0\0\x02\x00\x08\x00\x02".to_vec();
        let err = header(&h).expect_err("indexed colour").to_string();
        assert!(err.contains("indexed"), "{err}");
        h[5] = 3;
        assert!(header(&h).expect_err("version 3").to_string().contains("version 3"));
        assert!(header(b"8BPS\x00\x01").is_err(), "a truncated header is an error");
    }
}
