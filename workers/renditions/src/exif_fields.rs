//! EXIF reading (JPEG APP1, PNG eXIf, WebP EXIF, TIFF IFD) with `kamadak-exif`, reduced to the
//! fields DAM users search and display.

use crate::metadata::{ExifData, ImageFormat};

/// Parse EXIF from an image container (JPEG APP1, PNG eXIf, WebP EXIF, TIFF IFD). Anything
/// unreadable is treated as absent: broken EXIF must not fail the asset.
pub(crate) fn read_exif(input: &[u8], format: ImageFormat) -> Option<ExifData> {
    use exif::{In, Tag};
    let reader = exif::Reader::new();
    let parsed = match format {
        ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::WebP | ImageFormat::Tiff => {
            reader.read_from_container(&mut std::io::Cursor::new(input)).ok()?
        }
        _ => return None,
    };
    let field = |tag: Tag| parsed.get_field(tag, In::PRIMARY);
    let text = |tag: Tag| -> Option<String> {
        let f = field(tag)?;
        match &f.value {
            exif::Value::Ascii(parts) => {
                let s: String =
                    parts.iter().map(|p| String::from_utf8_lossy(p).into_owned()).collect::<Vec<_>>().join(" ");
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
    let orientation =
        field(Tag::Orientation).and_then(|f| f.value.get_uint(0)).filter(|o| (1..=8).contains(o)).map(|o| o as u8);
    let iso = field(Tag::PhotographicSensitivity).or_else(|| field(Tag::ISOSpeed)).and_then(|f| f.value.get_uint(0));
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
