//! Decoded 8-bit pixel buffers and the EXIF orientation transforms.

use std::borrow::Cow;

/// Channel layout of a [`RawImage`], 8 bits per sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Gray,
    GrayAlpha,
    Rgb,
    Rgba,
}

impl Layout {
    /// Samples per pixel.
    pub fn channels(self) -> usize {
        match self {
            Layout::Gray => 1,
            Layout::GrayAlpha => 2,
            Layout::Rgb => 3,
            Layout::Rgba => 4,
        }
    }

    pub fn has_alpha(self) -> bool {
        matches!(self, Layout::GrayAlpha | Layout::Rgba)
    }
}

/// A packed, top-down, 8-bit image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawImage {
    pub width: u32,
    pub height: u32,
    pub layout: Layout,
    pub data: Vec<u8>,
}

impl RawImage {
    pub fn new(width: u32, height: u32, layout: Layout, data: Vec<u8>) -> Self {
        debug_assert_eq!(data.len(), width as usize * height as usize * layout.channels());
        RawImage { width, height, layout, data }
    }

    /// Drop the alpha channel by compositing onto white (for JPEG output). Borrowed when there
    /// is no alpha to drop: the web rendition of a photo is not copied for nothing.
    pub fn flatten_on_white(&self) -> Cow<'_, RawImage> {
        // (c * a + 255 * (255 - a)) / 255, rounded to nearest: the shift form is exact for every
        // numerator up to 255 * 255, and costs no division.
        fn blend(c: u8, a: u8) -> u8 {
            let x = u32::from(c) * u32::from(a) + 255 * (255 - u32::from(a)) + 128;
            ((x + (x >> 8)) >> 8) as u8
        }
        let pixels = self.width as usize * self.height as usize;
        match self.layout {
            Layout::Gray | Layout::Rgb => Cow::Borrowed(self),
            Layout::GrayAlpha => {
                let data = self.data.chunks_exact(2).map(|p| blend(p[0], p[1])).collect();
                Cow::Owned(RawImage::new(self.width, self.height, Layout::Gray, data))
            }
            Layout::Rgba => {
                let mut data = vec![0u8; pixels * 3];
                // Fixed-size chunks let the compiler drop the bounds checks and vectorize.
                let (out, _) = data.as_chunks_mut::<3>();
                let (src, _) = self.data.as_chunks::<4>();
                for (o, &[r, g, b, a]) in out.iter_mut().zip(src) {
                    *o = [blend(r, a), blend(g, a), blend(b, a)];
                }
                Cow::Owned(RawImage::new(self.width, self.height, Layout::Rgb, data))
            }
        }
    }

    /// Convert to RGB (gray is replicated, alpha flattened onto white).
    pub fn to_rgb(&self) -> RawImage {
        let flat = self.flatten_on_white();
        match flat.layout {
            Layout::Rgb => flat.into_owned(),
            _ => {
                let data = flat.data.iter().flat_map(|&g| [g, g, g]).collect();
                RawImage::new(self.width, self.height, Layout::Rgb, data)
            }
        }
    }

    /// Apply an EXIF orientation (1..=8) so the image is as it should be displayed.
    pub fn oriented(self, orientation: u8) -> RawImage {
        if !(2..=8).contains(&orientation) {
            return self;
        }
        let (w, h) = (self.width as usize, self.height as usize);
        let c = self.layout.channels();
        let transposed = orientation >= 5;
        let (ow, oh) = if transposed { (h, w) } else { (w, h) };
        let mut out = vec![0u8; self.data.len()];
        // For each output pixel (x, y), the source pixel it comes from.
        let src = |x: usize, y: usize| -> (usize, usize) {
            match orientation {
                2 => (w - 1 - x, y),
                3 => (w - 1 - x, h - 1 - y),
                4 => (x, h - 1 - y),
                5 => (y, x),
                6 => (y, h - 1 - x),
                7 => (w - 1 - y, h - 1 - x),
                _ => (w - 1 - y, x),
            }
        };
        for y in 0..oh {
            let row = &mut out[y * ow * c..(y + 1) * ow * c];
            for x in 0..ow {
                let (sx, sy) = src(x, y);
                let s = (sy * w + sx) * c;
                row[x * c..x * c + c].copy_from_slice(&self.data[s..s + c]);
            }
        }
        RawImage::new(ow as u32, oh as u32, self.layout, out)
    }
}

/// Whether an EXIF orientation swaps width and height.
pub fn transposes(orientation: u8) -> bool {
    (5..=8).contains(&orientation)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flattening_matches_the_division() {
        for c in 0..=255u8 {
            for a in 0..=255u8 {
                let exact = (u32::from(c) * u32::from(a) + 255 * (255 - u32::from(a)) + 127) / 255;
                let img = RawImage::new(1, 1, Layout::GrayAlpha, vec![c, a]);
                let flat = img.flatten_on_white();
                assert_eq!(u32::from(flat.data[0]), exact, "c={c} a={a}");
            }
        }
        let rgb = RawImage::new(1, 1, Layout::Rgb, vec![1, 2, 3]);
        assert!(matches!(rgb.flatten_on_white(), Cow::Borrowed(_)));
    }
}
