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
    /// A Photoshop document, PSD or PSB (its composite image).
    Psd,
    /// A PDF document (its first page is rendered by poppler's `pdftoppm`).
    Pdf,
    /// An MP4 video (a frame from the middle is rendered by `ffmpeg`).
    Mp4,
    /// A QuickTime video.
    #[serde(rename = "quicktime")]
    QuickTime,
    /// A Matroska video.
    Matroska,
    /// A WebM video.
    #[serde(rename = "webm")]
    WebM,
    /// A HEIF image with HEVC inside (iPhone photos), decoded by libheif's `heif-convert`.
    Heic,
    /// A HEIF image with AV1 inside, decoded by libheif's `heif-convert`.
    Avif,
    /// Adobe's Digital Negative (rendered from its embedded JPEG preview).
    Dng,
    /// A Canon raw (rendered from its embedded JPEG preview).
    Cr2,
    /// A Nikon raw (rendered from its embedded JPEG preview).
    Nef,
    /// A Sony raw (rendered from its embedded JPEG preview).
    Arw,
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
            ImageFormat::Psd => "image/vnd.adobe.photoshop",
            ImageFormat::Pdf => "application/pdf",
            ImageFormat::Mp4 => "video/mp4",
            ImageFormat::QuickTime => "video/quicktime",
            ImageFormat::Matroska => "video/x-matroska",
            ImageFormat::WebM => "video/webm",
            ImageFormat::Heic => "image/heic",
            ImageFormat::Avif => "image/avif",
            ImageFormat::Dng => "image/x-adobe-dng",
            ImageFormat::Cr2 => "image/x-canon-cr2",
            ImageFormat::Nef => "image/x-nikon-nef",
            ImageFormat::Arw => "image/x-sony-arw",
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
            ImageFormat::Psd => "psd",
            ImageFormat::Pdf => "pdf",
            ImageFormat::Mp4 => "mp4",
            ImageFormat::QuickTime => "quicktime",
            ImageFormat::Matroska => "matroska",
            ImageFormat::WebM => "webm",
            ImageFormat::Heic => "heic",
            ImageFormat::Avif => "avif",
            ImageFormat::Dng => "dng",
            ImageFormat::Cr2 => "cr2",
            ImageFormat::Nef => "nef",
            ImageFormat::Arw => "arw",
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
    /// Dublin Core fields of the XMP packet (JPEG APP1, PNG iTXt, TIFF tag 700).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xmp: Option<crate::embedded::Xmp>,
    /// Basic IPTC-IIM fields (JPEG APP13, TIFF tag 33723 or 34377).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iptc: Option<crate::embedded::Iptc>,
    /// The embedded ICC profile's description, e.g. `sRGB IEC61966-2.1` (JPEG APP2, PNG iCCP,
    /// TIFF tag 34675).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icc_profile: Option<String>,
    /// A PDF's document information (from `pdfinfo`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<DocumentInfo>,
    /// A video's stream information (from `ffprobe`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video: Option<VideoInfo>,
    /// Where the rendered pixels came from when not from the image itself: `embedded` for a
    /// camera raw rendered from the JPEG preview it carries (`width`/`height` and `stored_*`
    /// are then the preview's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview: Option<String>,
}

/// What `pdfinfo` says of a PDF. `width`/`height` of the [`Metadata`] are then the rendered
/// first page's, in pixels.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DocumentInfo {
    pub pages: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// The first page's size in PostScript points (1/72 inch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_width_pt: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_height_pt: Option<f64>,
}

/// What `ffprobe` says of a video's first video stream. `width`/`height` of the [`Metadata`]
/// are the poster frame's.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VideoInfo {
    /// Seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
    /// The codec's short name (`h264`, `hevc`, `vp9`, `av1`...).
    pub codec: String,
    pub width: u32,
    pub height: u32,
    /// Frames per second (the stream's average frame rate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fps: Option<f64>,
    /// Where the poster frame was taken, in seconds from the start.
    pub poster_at: f64,
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
