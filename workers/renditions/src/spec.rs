use serde::{Deserialize, Serialize};

/// Output encoding of a rendition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Format {
    /// Lossless PNG (keeps alpha).
    Png,
    /// Baseline JPEG, 4:2:0 chroma, at `quality` (1..=100). Alpha is flattened onto white.
    Jpeg {
        #[serde(default = "default_quality")]
        quality: u8,
    },
    /// Lossless WebP (keeps alpha).
    #[serde(rename = "webp")]
    WebP,
    /// GIF: one frame, quantized to a palette of at most 256 colours (NeuQuant); alpha becomes
    /// one transparent palette entry.
    Gif,
}

/// JPEG quality of AEM's web rendition.
pub const DEFAULT_JPEG_QUALITY: u8 = 90;

fn default_quality() -> u8 {
    DEFAULT_JPEG_QUALITY
}

impl Format {
    /// The MIME type of this encoding.
    pub fn mime_type(&self) -> &'static str {
        match self {
            Format::Png => "image/png",
            Format::Jpeg { .. } => "image/jpeg",
            Format::WebP => "image/webp",
            Format::Gif => "image/gif",
        }
    }

    /// The usual file extension, without the dot.
    pub fn extension(&self) -> &'static str {
        match self {
            Format::Png => "png",
            Format::Jpeg { .. } => "jpeg",
            Format::WebP => "webp",
            Format::Gif => "gif",
        }
    }
}

/// One rendition to produce: the image is fitted inside `width` x `height`, keeping its aspect
/// ratio, and never upscaled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenditionSpec {
    /// Rendition name, e.g. `cq5dam.thumbnail.140.100.png`.
    pub name: String,
    /// Width of the bounding box.
    pub width: u32,
    /// Height of the bounding box.
    pub height: u32,
    /// Output encoding.
    pub format: Format,
}

impl RenditionSpec {
    /// A spec fitting inside `width` x `height`.
    pub fn new(name: impl Into<String>, width: u32, height: u32, format: Format) -> Self {
        RenditionSpec { name: name.into(), width, height, format }
    }

    /// AEM's "DAM Update Asset" renditions: three PNG thumbnails and a 1280 px JPEG web rendition
    /// at quality 90.
    pub fn aem_defaults() -> Vec<RenditionSpec> {
        Self::aem_defaults_with_quality(DEFAULT_JPEG_QUALITY)
    }

    /// [`aem_defaults`](Self::aem_defaults) with another JPEG quality for the web rendition.
    pub fn aem_defaults_with_quality(quality: u8) -> Vec<RenditionSpec> {
        vec![
            Self::new("cq5dam.thumbnail.48.48.png", 48, 48, Format::Png),
            Self::new("cq5dam.thumbnail.140.100.png", 140, 100, Format::Png),
            Self::new("cq5dam.thumbnail.319.319.png", 319, 319, Format::Png),
            Self::new("cq5dam.web.1280.1280.jpeg", 1280, 1280, Format::Jpeg { quality }),
        ]
    }

    /// The size of this rendition for a (displayed) source of `src_w` x `src_h`: the largest size
    /// with the source's aspect ratio that fits inside the box, capped at the source size.
    pub fn fit(&self, src_w: u32, src_h: u32) -> (u32, u32) {
        fit_inside(src_w, src_h, self.width, self.height)
    }
}

/// Fit `w` x `h` inside `bw` x `bh`, keeping the aspect ratio, never upscaling; each side >= 1.
pub fn fit_inside(w: u32, h: u32, bw: u32, bh: u32) -> (u32, u32) {
    if w == 0 || h == 0 {
        return (0, 0);
    }
    if w <= bw && h <= bh {
        return (w, h);
    }
    let (w64, h64, bw64, bh64) = (w as u64, h as u64, bw as u64, bh as u64);
    // Width-limited when w/h >= bw/bh.
    let (ow, oh) = if w64 * bh64 >= h64 * bw64 {
        (bw64, (h64 * bw64 * 2 + w64) / (2 * w64))
    } else {
        ((w64 * bh64 * 2 + h64) / (2 * h64), bh64)
    };
    (ow.max(1) as u32, oh.max(1) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_keeps_aspect_and_never_upscales() {
        assert_eq!(fit_inside(3000, 2000, 140, 100), (140, 93));
        assert_eq!(fit_inside(2000, 3000, 140, 100), (67, 100));
        assert_eq!(fit_inside(100, 80, 1280, 1280), (100, 80));
        assert_eq!(fit_inside(10000, 10, 48, 48), (48, 1));
        assert_eq!(fit_inside(0, 10, 48, 48), (0, 0));
    }
}
