//! Rendition encoders: PNG (fast deflate, adaptive filters), JPEG (libjpeg-turbo), WebP
//! (lossless).

use crate::jpeg::{self, TjPixel};
use crate::pixels::{Layout, RawImage};
use crate::{EngineError, Format, RenditionSpec};

pub(crate) fn encode(img: &RawImage, spec: &RenditionSpec) -> Result<Vec<u8>, EngineError> {
    let err = |detail: String| EngineError::Encode { name: spec.name.clone(), detail };
    match spec.format {
        Format::Png => encode_png(img).map_err(|e| err(e.to_string())),
        Format::Jpeg { quality } => {
            let flat = img.flatten_on_white();
            let fmt = if flat.layout == Layout::Gray { TjPixel::Gray } else { TjPixel::Rgb };
            jpeg::encode(&flat.data, flat.width, flat.height, fmt, quality).map_err(|e| err(e.message))
        }
        Format::WebP => {
            let mut out = Vec::new();
            let color = match img.layout {
                Layout::Gray => image::ExtendedColorType::L8,
                Layout::GrayAlpha => image::ExtendedColorType::La8,
                Layout::Rgb => image::ExtendedColorType::Rgb8,
                Layout::Rgba => image::ExtendedColorType::Rgba8,
            };
            image::codecs::webp::WebPEncoder::new_lossless(&mut out)
                .encode(&img.data, img.width, img.height, color)
                .map_err(|e| err(e.to_string()))?;
            Ok(out)
        }
    }
}

fn encode_png(img: &RawImage) -> Result<Vec<u8>, png::EncodingError> {
    let mut out = Vec::with_capacity(img.data.len() / 2 + 1024);
    {
        let mut enc = png::Encoder::new(&mut out, img.width, img.height);
        enc.set_color(match img.layout {
            Layout::Gray => png::ColorType::Grayscale,
            Layout::GrayAlpha => png::ColorType::GrayscaleAlpha,
            Layout::Rgb => png::ColorType::Rgb,
            Layout::Rgba => png::ColorType::Rgba,
        });
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(png::Compression::Fast);
        enc.set_filter(png::Filter::Adaptive);
        let mut writer = enc.write_header()?;
        writer.write_image_data(&img.data)?;
        writer.finish()?;
    }
    Ok(out)
}
