//! Rendition encoders: PNG (fast deflate, adaptive filters), JPEG (libjpeg-turbo), WebP
//! (lossless) and GIF (one frame, NeuQuant palette), the last two with the `image` crate.

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
        Format::Gif => encode_gif(img).map_err(|e| err(e.to_string())),
    }
}

/// GIF speed of NeuQuant's palette search (1 best .. 30 fastest): 10 is the `gif` crate's own
/// advice, nearly indistinguishable from 1 at a fraction of its time.
const GIF_QUANTIZER_SPEED: i32 = 10;

/// The GIF encoder takes RGB or RGBA only: gray is widened first.
fn encode_gif(img: &RawImage) -> image::ImageResult<Vec<u8>> {
    let widened;
    let (data, color) = match img.layout {
        Layout::Rgb => (&img.data, image::ExtendedColorType::Rgb8),
        Layout::Rgba => (&img.data, image::ExtendedColorType::Rgba8),
        Layout::Gray => {
            widened = img.data.iter().flat_map(|&g| [g, g, g]).collect::<Vec<u8>>();
            (&widened, image::ExtendedColorType::Rgb8)
        }
        Layout::GrayAlpha => {
            widened = img.data.chunks_exact(2).flat_map(|p| [p[0], p[0], p[0], p[1]]).collect::<Vec<u8>>();
            (&widened, image::ExtendedColorType::Rgba8)
        }
    };
    let mut out = Vec::new();
    image::codecs::gif::GifEncoder::new_with_speed(&mut out, GIF_QUANTIZER_SPEED)
        .encode(data, img.width, img.height, color)?;
    Ok(out)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(layout: Layout) -> RawImage {
        let (w, h) = (37, 21);
        let data = (0..w * h * layout.channels() as u32).map(|i| (i * 7 % 251) as u8).collect();
        RawImage::new(w, h, layout, data)
    }

    #[test]
    fn gif_and_webp_come_out_of_every_layout_at_the_size_given() {
        for layout in [Layout::Gray, Layout::GrayAlpha, Layout::Rgb, Layout::Rgba] {
            for (format, wanted) in [(Format::Gif, image::ImageFormat::Gif), (Format::WebP, image::ImageFormat::WebP)] {
                let bytes = encode(&sample(layout), &RenditionSpec::new("r", 100, 100, format)).unwrap();
                assert_eq!(image::guess_format(&bytes).unwrap(), wanted, "{layout:?} {format:?}");
                let back = image::load_from_memory_with_format(&bytes, wanted).unwrap();
                assert_eq!((back.width(), back.height()), (37, 21), "{layout:?} {format:?}");
            }
        }
    }
}
