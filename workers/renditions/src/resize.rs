//! SIMD resampling with `fast_image_resize` (AVX2/SSE4.1/NEON chosen at run time; alpha is
//! premultiplied while filtering so transparent pixels do not bleed their colour).

use fast_image_resize as fir;
use serde::{Deserialize, Serialize};

use crate::pixels::{Layout, RawImage};
use crate::EngineError;

/// Resampling filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Filter {
    /// Lanczos, 3 lobes: the sharpest, the reference.
    Lanczos3,
    /// Catmull-Rom cubic: a little softer, a little faster.
    CatmullRom,
    /// Mitchell-Netravali cubic.
    Mitchell,
    /// Triangle (bilinear).
    Bilinear,
}

impl Filter {
    fn fir(self) -> fir::FilterType {
        match self {
            Filter::Lanczos3 => fir::FilterType::Lanczos3,
            Filter::CatmullRom => fir::FilterType::CatmullRom,
            Filter::Mitchell => fir::FilterType::Mitchell,
            Filter::Bilinear => fir::FilterType::Bilinear,
        }
    }
}

pub(crate) struct Resizer {
    inner: fir::Resizer,
    options: fir::ResizeOptions,
}

fn pixel_type(layout: Layout) -> fir::PixelType {
    match layout {
        Layout::Gray => fir::PixelType::U8,
        Layout::GrayAlpha => fir::PixelType::U8x2,
        Layout::Rgb => fir::PixelType::U8x3,
        Layout::Rgba => fir::PixelType::U8x4,
    }
}

impl Resizer {
    pub fn new(filter: Filter) -> Self {
        Resizer {
            inner: fir::Resizer::new(),
            options: fir::ResizeOptions::new().resize_alg(fir::ResizeAlg::Convolution(filter.fir())).use_alpha(true),
        }
    }

    /// Resize `src` to exactly `width` x `height` (a copy when the size is unchanged).
    pub fn resize(&mut self, src: &RawImage, width: u32, height: u32) -> Result<RawImage, EngineError> {
        if (src.width, src.height) == (width, height) {
            return Ok(src.clone());
        }
        let pt = pixel_type(src.layout);
        let src_view =
            fir::images::ImageRef::new(src.width, src.height, &src.data, pt).map_err(|e| internal(e.to_string()))?;
        let mut dst = fir::images::Image::new(width, height, pt);
        self.inner.resize(&src_view, &mut dst, &self.options).map_err(|e| internal(e.to_string()))?;
        Ok(RawImage::new(width, height, src.layout, dst.into_vec()))
    }
}

fn internal(detail: String) -> EngineError {
    EngineError::Resize { detail }
}
