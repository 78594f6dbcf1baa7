//! What the engine reports about an input: format, size, colour model and EXIF fields.

use serde::{Deserialize, Serialize};

/// The container format of an input image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    Jpeg,
    Png,
    Gif,
    #[serde(rename = "webp")]
    WebP,
    Tiff,
    Bmp,
}

impl ImageFormat {
    /// The format's MIME type.
    pub fn mime_type(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "image/jpeg",
            ImageFormat::Png => "image/png",
            ImageFormat::Gif => "image/gif",
            ImageFormat::WebP => "image/webp",
            ImageFormat::Tiff => "image/tiff",
            ImageFormat::Bmp => "image/bmp",
        }
    }

    /// A short lowercase name (`jpeg`, `png`, ...).
    pub fn name(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "jpeg",
            ImageFormat::Png => "png",
            ImageFormat::Gif => "gif",
            ImageFormat::WebP => "webp",
            ImageFormat::Tiff => "tiff",
            ImageFormat::Bmp => "bmp",
        }
    }
}

/// The colour model of the stored image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColorType {
    /// Grayscale.
    Gray,
    /// Grayscale with alpha.
    GrayAlpha,
    /// RGB (JPEG's YCbCr counts as RGB).
    Rgb,
    Rgba,
    /// Palette-indexed colour.
    Indexed,
    /// CMYK (JPEG as CMYK or YCCK, TIFF).
    Cmyk,
}

/// What the engine reads from an image without decoding its pixels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    pub format: ImageFormat,
    pub mime_type: String,
    /// Width as displayed, after the EXIF orientation is applied.
    pub width: u32,
    /// Height as displayed, after the EXIF orientation is applied.
    pub height: u32,
    /// Width as stored in the file.
    pub stored_width: u32,
    /// Height as stored in the file.
    pub stored_height: u32,
    pub color_type: ColorType,
    /// Bits per sample as stored (8 for most photos, 16 for some PNG/TIFF, 1..8 for palettes).
    pub bit_depth: u8,
    pub has_alpha: bool,
    /// EXIF orientation (1..=8); 1 when absent.
    pub orientation: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exif: Option<ExifData>,
}

/// The commonly used EXIF fields, decoded. Every field is optional: cameras write what they want.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExifData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub make: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// DateTimeOriginal (else DateTime) as written, `YYYY:MM:DD HH:MM:SS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_taken: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orientation: Option<u8>,
    /// Exposure time in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposure_time: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub f_number: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iso: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub focal_length: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software: Option<String>,
    /// Latitude in decimal degrees, north positive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gps_latitude: Option<f64>,
    /// Longitude in decimal degrees, east positive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gps_longitude: Option<f64>,
}

impl ExifData {
    pub(crate) fn is_empty(&self) -> bool {
        self == &ExifData::default()
    }
}
