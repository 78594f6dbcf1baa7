//! Format identification from magic bytes, never from file names: a text file named `.jpg`
//! must be refused as text, and a PNG named `.jpg` must still be read.

use crate::metadata::ImageFormat;
use crate::EngineError;

/// Identify the container from its magic bytes.
pub(crate) fn sniff(input: &[u8]) -> Result<ImageFormat, EngineError> {
    let starts = |m: &[u8]| input.starts_with(m);
    let format = if starts(&[0xFF, 0xD8, 0xFF]) {
        ImageFormat::Jpeg
    } else if starts(b"\x89PNG\r\n\x1a\n") {
        ImageFormat::Png
    } else if starts(b"GIF87a") || starts(b"GIF89a") {
        ImageFormat::Gif
    } else if starts(b"RIFF") && input.get(8..12) == Some(b"WEBP") {
        ImageFormat::WebP
    } else if starts(b"II*\0") || starts(b"MM\0*") {
        ImageFormat::Tiff
    } else if starts(b"BM") && input.len() >= 26 {
        ImageFormat::Bmp
    } else if starts(b"8BPS") {
        ImageFormat::Psd
    } else {
        return Err(EngineError::Unsupported { what: describe(input) });
    };
    Ok(format)
}

/// A human description of what an unsupported input looks like, for the error message.
fn describe(input: &[u8]) -> String {
    if input.is_empty() {
        return "empty input".into();
    }
    let head = &input[..input.len().min(16)];
    if let Some(kind) = crate::media::MediaType::sniff(input, None) {
        return format!("{} ({}), which this engine does not render", kind.name(), kind.mime_type());
    }
    let known: [(&[u8], &str); 6] = [
        (b"%PDF", "PDF document"),
        (b"\0\0\0", "ISO-BMFF (HEIF/AVIF/MP4?) or other binary"),
        (b"8BPS", "Photoshop PSD"),
        (b"PK\x03\x04", "ZIP archive"),
        (b"<svg", "SVG"),
        (b"<?xml", "XML/SVG"),
    ];
    for (magic, name) in known {
        if input.starts_with(magic) {
            return format!("{name} (magic {})", hex(head));
        }
    }
    let texty = head.iter().all(|&b| matches!(b, b'\n' | b'\r' | b'\t' | 0x20..=0x7e) || b >= 0x80);
    if texty {
        let text: String =
            String::from_utf8_lossy(head).chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        format!("text, not an image (starts with {:?})", text.trim_end())
    } else {
        format!("unknown format (magic {})", hex(head))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_magic_and_describes_the_rest() {
        assert_eq!(sniff(b"\xFF\xD8\xFF\xE0rest").ok(), Some(ImageFormat::Jpeg));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 ").ok(), Some(ImageFormat::WebP));
        let err = sniff(b"RIFF").unwrap_err();
        assert!(matches!(err, EngineError::Unsupported { .. }));
        let err = sniff(b"hello, world\n").unwrap_err().to_string();
        assert!(err.contains("text, not an image"), "{err}");
        let err = sniff(b"%PDF-1.7").unwrap_err().to_string();
        assert!(err.contains("PDF"), "{err}");
        assert!(sniff(b"").unwrap_err().to_string().contains("empty"));
    }
}
