//! The MIME type an asset is recorded with: what its bytes are (the engine's sniffer, so the
//! worker later agrees), else what the client declared, else a guess from the name.

use offloader_renditions::sniff_mime;

/// How many leading bytes the sniffer looks at.
pub use offloader_renditions::SNIFF_LEN;

/// The MIME type of an upload whose first bytes are `head` (up to [`SNIFF_LEN`]), named
/// `name`, declared by the client as `declared` (a `Content-Type`, if any). The bytes win over
/// the declaration, which wins over the name; the name also breaks ties the bytes leave open
/// (an MP4 brand in a `.mov`).
pub fn content_mime(head: &[u8], name: &str, declared: Option<&str>) -> String {
    if let Some(sniffed) = sniff_mime(head, Some(name)) {
        return sniffed.to_owned();
    }
    declared_or_guessed(declared, name)
}

/// The MIME type a client declared, unless it is the meaningless default; else a guess by name.
pub fn declared_or_guessed(declared: Option<&str>, name: &str) -> String {
    declared
        .map(|m| m.split(';').next().unwrap_or(m).trim().to_ascii_lowercase())
        .filter(|m| !m.is_empty() && m != "application/octet-stream" && m.contains('/'))
        .unwrap_or_else(|| mime_guess::from_path(name).first_or_octet_stream().essence_str().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_beat_the_declaration_which_beats_the_name() {
        assert_eq!(content_mime(b"8BPS\0\x01", "a.psd", None), "image/vnd.adobe.photoshop");
        assert_eq!(content_mime(b"\x89PNG\r\n\x1a\n", "a.jpg", Some("image/jpeg")), "image/png");
        assert_eq!(content_mime(b"hello", "a.txt", Some("text/markdown; charset=utf-8")), "text/markdown");
        assert_eq!(content_mime(b"hello", "a.jpg", Some("application/octet-stream")), "image/jpeg");
        assert_eq!(content_mime(b"", "noext", None), "application/octet-stream");
    }
}
