//! Test inputs made in code: photo-like images (smooth fractal noise, which has the 1/f spectrum
//! of real photographs), hand-built EXIF blocks and a hand-built PNG bomb.
#![allow(dead_code)]

use image::{ImageEncoder, RgbImage};
use offloader_renditions::synth::png_chunk;
use offloader_renditions::{encode_pixels, Format, Layout, RawImage, RenditionSpec};

/// Deterministic xorshift, so every run sees the same "random" images.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// A photo-like RGB image: a colour gradient plus octaves of smoothly interpolated value noise
/// (amplitude falling with frequency, like the spectrum of real photographs).
pub fn photo_like(width: u32, height: u32, seed: u64) -> RgbImage {
    let mut rng = Rng::new(seed);
    let (w, h) = (width as usize, height as usize);
    let side = w.max(h) as f32;
    let mut acc = vec![0f32; w * h * 3];
    for (y, row) in acc.chunks_exact_mut(w * 3).enumerate() {
        for (x, px) in row.chunks_exact_mut(3).enumerate() {
            px[0] = 60.0 + 120.0 * x as f32 / w as f32;
            px[1] = 90.0 + 60.0 * y as f32 / h as f32;
            px[2] = 160.0 - 80.0 * x as f32 / w as f32;
        }
    }
    for k in 2..=8 {
        let cells = 1usize << k;
        let stride = cells + 2;
        let amp = 60.0 / 1.6f32.powi(k - 2);
        let grid: Vec<f32> =
            (0..stride * stride * 3).map(|_| amp * ((rng.below(2001) as f32 / 1000.0) - 1.0)).collect();
        // Per column: grid cell and smoothstep weight (shared by every row).
        let cols: Vec<(usize, f32)> = (0..w)
            .map(|x| {
                let f = x as f32 / side * cells as f32;
                let t = f.fract();
                (f as usize, t * t * (3.0 - 2.0 * t))
            })
            .collect();
        for (y, row) in acc.chunks_exact_mut(w * 3).enumerate() {
            let f = y as f32 / side * cells as f32;
            let (iy, t) = (f as usize, f.fract());
            let sy = t * t * (3.0 - 2.0 * t);
            let top = &grid[iy * stride * 3..];
            let bottom = &grid[(iy + 1) * stride * 3..];
            for (px, &(ix, sx)) in row.chunks_exact_mut(3).zip(&cols) {
                for c in 0..3 {
                    let a = top[ix * 3 + c] * (1.0 - sx) + top[ix * 3 + 3 + c] * sx;
                    let b = bottom[ix * 3 + c] * (1.0 - sx) + bottom[ix * 3 + 3 + c] * sx;
                    px[c] += a * (1.0 - sy) + b * sy;
                }
            }
        }
    }
    let raw = acc.into_iter().map(|v| v.clamp(0.0, 255.0) as u8).collect();
    RgbImage::from_raw(width, height, raw).expect("buffer of the right size")
}

/// Encode with the engine's own libjpeg-turbo (4:2:0): fast even in debug builds.
pub fn jpeg(img: &RgbImage, quality: u8) -> Vec<u8> {
    let raw = RawImage::new(img.width(), img.height(), Layout::Rgb, img.as_raw().clone());
    let spec = RenditionSpec::new("test.jpeg", 1, 1, Format::Jpeg { quality });
    encode_pixels(&raw, &spec).expect("encode test JPEG")
}

pub fn png(raw: &[u8], width: u32, height: u32, color: image::ExtendedColorType) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out).write_image(raw, width, height, color).expect("encode test PNG");
    out
}

/// The EXIF fields a test may set.
#[derive(Default, Clone)]
pub struct Exif {
    pub orientation: Option<u16>,
    pub make: Option<&'static str>,
    pub model: Option<&'static str>,
    pub date_taken: Option<&'static str>,
    /// Exposure time as a rational (numerator, denominator).
    pub exposure: Option<(u32, u32)>,
    /// (latitude, "N"/"S", longitude, "E"/"W"), each as degrees, minutes, seconds.
    pub gps: Option<([u32; 3], &'static str, [u32; 3], &'static str)>,
}

/// Build a little-endian TIFF/EXIF block ("Exif\0\0" + TIFF) with IFD0, an Exif IFD and a GPS IFD.
pub fn exif_block(e: &Exif) -> Vec<u8> {
    // Each entry: (tag, type, count, value bytes). Types: 2 ASCII, 3 SHORT, 4 LONG, 5 RATIONAL.
    type Entry = (u16, u16, u32, Vec<u8>);
    let ascii = |s: &str| {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        v
    };
    let rationals = |r: &[(u32, u32)]| {
        r.iter().flat_map(|(n, d)| n.to_le_bytes().into_iter().chain(d.to_le_bytes())).collect::<Vec<u8>>()
    };
    let mut ifd0: Vec<Entry> = Vec::new();
    if let Some(m) = e.make {
        ifd0.push((0x010F, 2, m.len() as u32 + 1, ascii(m)));
    }
    if let Some(m) = e.model {
        ifd0.push((0x0110, 2, m.len() as u32 + 1, ascii(m)));
    }
    if let Some(o) = e.orientation {
        ifd0.push((0x0112, 3, 1, o.to_le_bytes().to_vec()));
    }
    let mut exif_ifd: Vec<Entry> = Vec::new();
    if let Some((n, d)) = e.exposure {
        exif_ifd.push((0x829A, 5, 1, rationals(&[(n, d)])));
    }
    if let Some(d) = e.date_taken {
        exif_ifd.push((0x9003, 2, d.len() as u32 + 1, ascii(d)));
    }
    let mut gps_ifd: Vec<Entry> = Vec::new();
    if let Some((lat, lat_ref, lon, lon_ref)) = e.gps {
        let dms = |v: [u32; 3]| rationals(&[(v[0], 1), (v[1], 1), (v[2], 1)]);
        gps_ifd.push((0x0001, 2, 2, ascii(lat_ref)));
        gps_ifd.push((0x0002, 5, 3, dms(lat)));
        gps_ifd.push((0x0003, 2, 2, ascii(lon_ref)));
        gps_ifd.push((0x0004, 5, 3, dms(lon)));
    }
    // Pointers to the sub-IFDs are LONG entries of IFD0, patched once offsets are known.
    let has_exif = !exif_ifd.is_empty();
    let has_gps = !gps_ifd.is_empty();
    if has_exif {
        ifd0.push((0x8769, 4, 1, vec![0; 4]));
    }
    if has_gps {
        ifd0.push((0x8825, 4, 1, vec![0; 4]));
    }
    ifd0.sort_by_key(|e| e.0);
    let ifd_size = |n: usize, entries: &[Entry]| {
        2 + 12 * n + 4 + entries.iter().map(|e| if e.3.len() > 4 { e.3.len() } else { 0 }).sum::<usize>()
    };
    let off0 = 8usize;
    let off_exif = off0 + ifd_size(ifd0.len(), &ifd0);
    let off_gps = off_exif + if has_exif { ifd_size(exif_ifd.len(), &exif_ifd) } else { 0 };
    for entry in &mut ifd0 {
        if entry.0 == 0x8769 {
            entry.3 = (off_exif as u32).to_le_bytes().to_vec();
        }
        if entry.0 == 0x8825 {
            entry.3 = (off_gps as u32).to_le_bytes().to_vec();
        }
    }
    let mut tiff = b"II*\0".to_vec();
    tiff.extend_from_slice(&(off0 as u32).to_le_bytes());
    let write_ifd = |tiff: &mut Vec<u8>, entries: &[Entry]| {
        let start = tiff.len();
        let mut data_off = start + 2 + 12 * entries.len() + 4;
        let mut data = Vec::new();
        tiff.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        for (tag, ty, count, value) in entries {
            tiff.extend_from_slice(&tag.to_le_bytes());
            tiff.extend_from_slice(&ty.to_le_bytes());
            tiff.extend_from_slice(&count.to_le_bytes());
            if value.len() <= 4 {
                let mut v = value.clone();
                v.resize(4, 0);
                tiff.extend_from_slice(&v);
            } else {
                tiff.extend_from_slice(&(data_off as u32).to_le_bytes());
                data.extend_from_slice(value);
                data_off += value.len();
            }
        }
        tiff.extend_from_slice(&0u32.to_le_bytes());
        tiff.extend_from_slice(&data);
    };
    write_ifd(&mut tiff, &ifd0);
    if has_exif {
        write_ifd(&mut tiff, &exif_ifd);
    }
    if has_gps {
        write_ifd(&mut tiff, &gps_ifd);
    }
    let mut block = b"Exif\0\0".to_vec();
    block.extend_from_slice(&tiff);
    block
}

/// Insert an APP1 EXIF segment right after a JPEG's SOI marker.
pub fn with_exif(jpeg: &[u8], e: &Exif) -> Vec<u8> {
    let block = exif_block(e);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((block.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&block);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// LSB-first bit writer for a hand-made deflate stream.
struct Bits {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl Bits {
    fn put(&mut self, value: u32, bits: u32) {
        self.acc |= u64::from(value) << self.n;
        self.n += bits;
        while self.n >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.n -= 8;
        }
    }
    /// Huffman codes are sent most significant bit first.
    fn code(&mut self, code: u32, bits: u32) {
        let reversed = code.reverse_bits() >> (32 - bits);
        self.put(reversed, bits);
    }
}

/// A complete, valid `side` x `side` 1-bit grayscale PNG of zeros: `side * (side/8 + 1)` bytes
/// of pixels deflated into one fixed-Huffman block of 258-byte back-references (about 2 MB
/// for 50000 x 50000, which would decode to 2.5 gigapixels).
pub fn png_bomb(side: u32) -> Vec<u8> {
    let raw_len = u64::from(side) * (u64::from(side).div_ceil(8) + 1);
    let mut bits = Bits { out: vec![0x78, 0x01], acc: 0, n: 0 };
    bits.put(1, 1); // BFINAL
    bits.put(1, 2); // fixed Huffman
    bits.code(0x30, 8); // literal 0
    let mut left = raw_len - 1;
    while left >= 258 {
        bits.code(0b1100_0101, 8); // length 258 (code 285)
        bits.code(0, 5); // distance 1
        left -= 258;
    }
    for _ in 0..left {
        bits.code(0x30, 8);
    }
    bits.code(0, 7); // end of block
    if bits.n > 0 {
        bits.out.push(bits.acc as u8);
    }
    // Adler-32 of zeros: a stays 1, b grows by 1 per byte.
    let adler = (((raw_len % 65521) as u32) << 16) | 1;
    bits.out.extend_from_slice(&adler.to_be_bytes());

    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&side.to_be_bytes());
    ihdr.extend_from_slice(&side.to_be_bytes());
    ihdr.extend_from_slice(&[1, 0, 0, 0, 0]); // 1 bit, grayscale, deflate, no filter, no interlace
    png_chunk(&mut png, b"IHDR", &ihdr);
    png_chunk(&mut png, b"IDAT", &bits.out);
    png_chunk(&mut png, b"IEND", &[]);
    png
}
