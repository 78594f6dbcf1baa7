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
    fn is_empty(&self) -> bool {
        self == &ExifData::default()
    }
}

/// Parse EXIF from an image container (JPEG APP1, PNG eXIf, WebP EXIF, TIFF IFD). Anything
/// unreadable is treated as absent: broken EXIF must not fail the asset.
pub(crate) fn read_exif(input: &[u8], format: ImageFormat) -> Option<ExifData> {
    use exif::{In, Tag};
    let reader = exif::Reader::new();
    let parsed = match format {
        ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::WebP | ImageFormat::Tiff => reader
            .read_from_container(&mut std::io::Cursor::new(input))
            .ok()?,
        _ => return None,
    };
    let field = |tag: Tag| parsed.get_field(tag, In::PRIMARY);
    let text = |tag: Tag| -> Option<String> {
        let f = field(tag)?;
        match &f.value {
            exif::Value::Ascii(parts) => {
                let s: String = parts
                    .iter()
                    .map(|p| String::from_utf8_lossy(p).into_owned())
                    .collect::<Vec<_>>()
                    .join(" ");
                let s = s.trim_matches(|c: char| c.is_whitespace() || c == '\0');
                (!s.is_empty()).then(|| s.to_string())
            }
            _ => None,
        }
    };
    let rational = |tag: Tag| -> Option<f64> {
        let f = field(tag)?;
        match &f.value {
            exif::Value::Rational(v) if !v.is_empty() && v[0].denom != 0 => Some(v[0].to_f64()),
            exif::Value::SRational(v) if !v.is_empty() && v[0].denom != 0 => Some(v[0].to_f64()),
            _ => None,
        }
    };
    let gps = |coord: Tag, reference: Tag, negative: &str| -> Option<f64> {
        let f = field(coord)?;
        let v = match &f.value {
            exif::Value::Rational(v) if v.len() >= 3 && v.iter().all(|r| r.denom != 0) => v,
            _ => return None,
        };
        let deg = v[0].to_f64() + v[1].to_f64() / 60.0 + v[2].to_f64() / 3600.0;
        let sign = match text(reference) {
            Some(r) if r.eq_ignore_ascii_case(negative) => -1.0,
            _ => 1.0,
        };
        deg.is_finite().then_some(sign * deg)
    };
    let orientation = field(Tag::Orientation)
        .and_then(|f| f.value.get_uint(0))
        .filter(|o| (1..=8).contains(o))
        .map(|o| o as u8);
    let iso = field(Tag::PhotographicSensitivity)
        .or_else(|| field(Tag::ISOSpeed))
        .and_then(|f| f.value.get_uint(0));
    let data = ExifData {
        make: text(Tag::Make),
        model: text(Tag::Model),
        date_taken: text(Tag::DateTimeOriginal).or_else(|| text(Tag::DateTime)),
        orientation,
        exposure_time: rational(Tag::ExposureTime),
        f_number: rational(Tag::FNumber),
        iso,
        focal_length: rational(Tag::FocalLength),
        software: text(Tag::Software),
        gps_latitude: gps(Tag::GPSLatitude, Tag::GPSLatitudeRef, "S"),
        gps_longitude: gps(Tag::GPSLongitude, Tag::GPSLongitudeRef, "W"),
    };
    (!data.is_empty()).then_some(data)
}
