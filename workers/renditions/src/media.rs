//! What a file is, from its first bytes: the MIME type an ingestion records and the engine
//! dispatches on. Pure logic over a byte prefix (no I/O), so the leader (at ingestion) and the
//! worker (before decoding) agree on it.
//!
//! The magic bytes decide; the file name only breaks a tie the bytes leave open: an ISO-BMFF
//! file with a generic brand (`isom`) named `.mov` is QuickTime, an EBML file without a readable
//! DocType named `.webm` is WebM, a TIFF container named `.dng` whose bytes do not already say
//! which raw it is is a DNG. A name never makes a file something its bytes are not: a text file
//! named `a.jpg` is not sniffed as anything.

use crate::metadata::ImageFormat;
use crate::tiff_ifd::{find, tag, Tiff};

/// How many leading bytes [`sniff_mime`] needs to decide every case it knows.
pub const SNIFF_LEN: usize = 4096;

/// The kinds of file recognised from their magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaType {
    Jpeg,
    Png,
    Gif,
    WebP,
    Tiff,
    Bmp,
    /// Adobe Photoshop (`8BPS`).
    Psd,
    Pdf,
    /// ISO-BMFF video with an MP4 brand (`isom`, `mp41`, `mp42`, `avc1`, ...).
    Mp4,
    /// ISO-BMFF with the `qt  ` brand.
    QuickTime,
    /// EBML with DocType `matroska`.
    Matroska,
    /// EBML with DocType `webm`.
    WebM,
    /// HEIF image (`heic`, `heix`, `mif1`, ... brands).
    Heic,
    /// AV1 image (`avif`, `avis` brands).
    Avif,
    /// A TIFF-based camera raw (DNG, CR2, NEF, ARW), told from TIFF by its bytes (CR2's marker,
    /// DNG's version tag, a Nikon or Sony maker with SubIFDs) or else by its name.
    CameraRaw(&'static str),
}

impl MediaType {
    /// The MIME type recorded for this kind.
    pub fn mime_type(self) -> &'static str {
        match self {
            MediaType::Jpeg => "image/jpeg",
            MediaType::Png => "image/png",
            MediaType::Gif => "image/gif",
            MediaType::WebP => "image/webp",
            MediaType::Tiff => "image/tiff",
            MediaType::Bmp => "image/bmp",
            MediaType::Psd => "image/vnd.adobe.photoshop",
            MediaType::Pdf => "application/pdf",
            MediaType::Mp4 => "video/mp4",
            MediaType::QuickTime => "video/quicktime",
            MediaType::Matroska => "video/x-matroska",
            MediaType::WebM => "video/webm",
            MediaType::Heic => "image/heic",
            MediaType::Avif => "image/avif",
            MediaType::CameraRaw(mime) => mime,
        }
    }

    /// A short human name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            MediaType::Jpeg => "JPEG",
            MediaType::Png => "PNG",
            MediaType::Gif => "GIF",
            MediaType::WebP => "WebP",
            MediaType::Tiff => "TIFF",
            MediaType::Bmp => "BMP",
            MediaType::Psd => "Photoshop PSD",
            MediaType::Pdf => "PDF",
            MediaType::Mp4 => "MP4 video",
            MediaType::QuickTime => "QuickTime video",
            MediaType::Matroska => "Matroska video",
            MediaType::WebM => "WebM video",
            MediaType::Heic => "HEIC image",
            MediaType::Avif => "AVIF image",
            MediaType::CameraRaw(_) => "camera raw",
        }
    }

    /// Whether this is a video container.
    pub fn is_video(self) -> bool {
        matches!(self, MediaType::Mp4 | MediaType::QuickTime | MediaType::Matroska | MediaType::WebM)
    }

    /// Identify `head` (the file's first bytes, ideally [`SNIFF_LEN`] of them); `name` (a file
    /// name or path) only breaks ties. `None` when the bytes match nothing known.
    pub fn sniff(head: &[u8], name: Option<&str>) -> Option<MediaType> {
        let ext = name.and_then(extension);
        let ext = ext.as_deref();
        let starts = |m: &[u8]| head.starts_with(m);
        let kind = if starts(&[0xFF, 0xD8, 0xFF]) {
            MediaType::Jpeg
        } else if starts(b"\x89PNG\r\n\x1a\n") {
            MediaType::Png
        } else if starts(b"GIF87a") || starts(b"GIF89a") {
            MediaType::Gif
        } else if starts(b"RIFF") && head.get(8..12) == Some(b"WEBP") {
            MediaType::WebP
        } else if starts(b"II*\0") || starts(b"MM\0*") {
            if let Some(raw) = camera_raw(head) {
                return Some(MediaType::CameraRaw(raw.mime_type()));
            }
            match ext {
                Some("dng") => MediaType::CameraRaw("image/x-adobe-dng"),
                Some("cr2") => MediaType::CameraRaw("image/x-canon-cr2"),
                Some("nef") => MediaType::CameraRaw("image/x-nikon-nef"),
                Some("arw") => MediaType::CameraRaw("image/x-sony-arw"),
                _ => MediaType::Tiff,
            }
        } else if starts(b"BM") && head.len() >= 26 && head.get(14).is_some_and(|&b| b >= 12) {
            MediaType::Bmp
        } else if starts(b"8BPS") {
            MediaType::Psd
        } else if is_pdf(head) {
            MediaType::Pdf
        } else if head.get(4..8) == Some(b"ftyp") {
            ftyp(head, ext)?
        } else if starts(&[0x1A, 0x45, 0xDF, 0xA3]) {
            ebml(head, ext)
        } else {
            return None;
        };
        Some(kind)
    }
}

/// The MIME type of `head` (see [`MediaType::sniff`]), `None` when the bytes match nothing known.
pub fn sniff_mime(head: &[u8], name: Option<&str>) -> Option<&'static str> {
    MediaType::sniff(head, name).map(MediaType::mime_type)
}

/// The lowercase extension of a name or path, without the dot.
fn extension(name: &str) -> Option<String> {
    let file = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let (stem, ext) = file.rsplit_once('.')?;
    (!stem.is_empty() && !ext.is_empty()).then(|| ext.to_ascii_lowercase())
}

/// The raw kind a TIFF container is, from its bytes alone: CR2 by its `CR` marker at byte 8,
/// DNG by the DNGVersion tag in IFD0, NEF and ARW by their maker (`NIKON`, `SONY`) together
/// with SubIFDs in IFD0 (where their sensor data lives; a scanner's plain TIFF has none).
/// `None` for anything else, including a plain TIFF.
pub(crate) fn camera_raw(head: &[u8]) -> Option<ImageFormat> {
    let tiff = Tiff::new(head)?;
    if head.starts_with(b"II*\0") && head.get(8..10) == Some(b"CR") {
        return Some(ImageFormat::Cr2);
    }
    let (entries, _) = tiff.ifd(tiff.first_ifd()?)?;
    if find(&entries, tag::DNG_VERSION).is_some() {
        return Some(ImageFormat::Dng);
    }
    // Only a TIFF with SubIFDs can be a NEF or an ARW.
    find(&entries, tag::SUB_IFDS)?;
    let make = find(&entries, tag::MAKE).and_then(|e| tiff.text(e))?.to_ascii_uppercase();
    if make.starts_with("NIKON") {
        Some(ImageFormat::Nef)
    } else if make.starts_with("SONY") {
        Some(ImageFormat::Arw)
    } else {
        None
    }
}

/// `%PDF-` at the start, or within the first KiB as the PDF specification allows.
fn is_pdf(head: &[u8]) -> bool {
    let window = &head[..head.len().min(1024)];
    window.windows(5).any(|w| w == b"%PDF-")
}

/// ISO-BMFF: the major brand, then the compatible brands, decide.
fn ftyp(head: &[u8], ext: Option<&str>) -> Option<MediaType> {
    let size = head.get(0..4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)?;
    let end = size.clamp(16, head.len().max(16)).min(head.len());
    let major = head.get(8..12)?;
    let compatible: Vec<&[u8]> = head.get(16..end).unwrap_or(&[]).chunks_exact(4).collect();
    let brands = || std::iter::once(major).chain(compatible.iter().copied());
    let any = |set: &[&[u8; 4]]| brands().any(|b| set.iter().any(|s| s.as_slice() == b));
    const AVIF: [&[u8; 4]; 2] = [b"avif", b"avis"];
    const HEIC: [&[u8; 4]; 8] = [b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"];
    const MP4: [&[u8; 4]; 9] = [b"isom", b"iso2", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1", b"dash"];
    if AVIF.iter().any(|s| s.as_slice() == major) {
        return Some(MediaType::Avif);
    }
    if HEIC.iter().any(|s| s.as_slice() == major) {
        return Some(if any(&AVIF) { MediaType::Avif } else { MediaType::Heic });
    }
    if major == b"qt  " {
        return Some(MediaType::QuickTime);
    }
    if MP4.iter().any(|s| s.as_slice() == major) || major.starts_with(b"M4V") || major.starts_with(b"3gp") {
        // Generic brands: the name breaks the tie between MP4 and QuickTime.
        return Some(if ext == Some("mov") { MediaType::QuickTime } else { MediaType::Mp4 });
    }
    if any(&AVIF) {
        return Some(MediaType::Avif);
    }
    if any(&HEIC) {
        return Some(MediaType::Heic);
    }
    if any(&MP4) || any(&[b"qt  "]) {
        return Some(if ext == Some("mov") || any(&[b"qt  "]) { MediaType::QuickTime } else { MediaType::Mp4 });
    }
    None
}

/// EBML: the DocType element (`42 82`) names the flavour; without it, the name decides.
fn ebml(head: &[u8], ext: Option<&str>) -> MediaType {
    let window = &head[..head.len().min(256)];
    let doc_type = window.windows(2).position(|w| w == [0x42, 0x82]).map(|i| &window[i + 2..]);
    if let Some(rest) = doc_type {
        // One size byte (0x80 | len) then the string.
        if rest.len() > 1 && rest[0] & 0x80 != 0 {
            let len = usize::from(rest[0] & 0x7F);
            if let Some(name) = rest.get(1..1 + len) {
                if name == b"webm" {
                    return MediaType::WebM;
                }
                if name == b"matroska" {
                    return MediaType::Matroska;
                }
            }
        }
    }
    if ext == Some("webm") {
        MediaType::WebM
    } else {
        MediaType::Matroska
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ftyp_box(major: &[u8; 4], compatible: &[&[u8; 4]]) -> Vec<u8> {
        let size = 16 + 4 * compatible.len();
        let mut b = (size as u32).to_be_bytes().to_vec();
        b.extend_from_slice(b"ftyp");
        b.extend_from_slice(major);
        b.extend_from_slice(&[0, 0, 0, 0]);
        for c in compatible {
            b.extend_from_slice(*c);
        }
        b.extend_from_slice(b"\0\0\0\x08free");
        b
    }

    #[test]
    fn images_by_magic_whatever_the_name() {
        let cases: [(&[u8], &str); 7] = [
            (b"\xFF\xD8\xFF\xE0\0\x10JFIF", "image/jpeg"),
            (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "image/png"),
            (b"GIF89a\x01\0\x01\0", "image/gif"),
            (b"RIFF\x24\0\0\0WEBPVP8L", "image/webp"),
            (b"MM\0*\0\0\0\x08", "image/tiff"),
            (b"8BPS\0\x01\0\0\0\0\0\0\0\x03", "image/vnd.adobe.photoshop"),
            (b"%PDF-1.7\n%\xE2\xE3", "application/pdf"),
        ];
        for (bytes, mime) in cases {
            assert_eq!(sniff_mime(bytes, Some("misnamed.txt")), Some(mime), "{mime}");
            assert_eq!(sniff_mime(bytes, None), Some(mime), "{mime}");
        }
        let mut bmp = b"BM".to_vec();
        bmp.extend_from_slice(&[0; 12]);
        bmp.push(40);
        bmp.extend_from_slice(&[0; 20]);
        assert_eq!(sniff_mime(&bmp, Some("x.jpg")), Some("image/bmp"));
    }

    #[test]
    fn iso_bmff_brands_and_the_tie_breaking_name() {
        assert_eq!(sniff_mime(&ftyp_box(b"isom", &[b"isom", b"avc1"]), Some("a.mp4")), Some("video/mp4"));
        assert_eq!(sniff_mime(&ftyp_box(b"isom", &[b"isom"]), Some("clip.MOV")), Some("video/quicktime"));
        assert_eq!(sniff_mime(&ftyp_box(b"qt  ", &[b"qt  "]), Some("a.mp4")), Some("video/quicktime"));
        assert_eq!(sniff_mime(&ftyp_box(b"heic", &[b"mif1", b"heic"]), None), Some("image/heic"));
        assert_eq!(sniff_mime(&ftyp_box(b"mif1", &[b"mif1", b"avif"]), None), Some("image/avif"));
        assert_eq!(sniff_mime(&ftyp_box(b"avif", &[b"avif"]), Some("a.heic")), Some("image/avif"));
        assert_eq!(sniff_mime(&ftyp_box(b"zzzz", &[b"yyyy"]), Some("a.mp4")), None, "unknown brands");
    }

    #[test]
    fn ebml_doc_type_then_name() {
        let webm = b"\x1A\x45\xDF\xA3\x9F\x42\x86\x81\x01\x42\x82\x84webm\x42\x87\x81\x04";
        assert_eq!(sniff_mime(webm, Some("a.mkv")), Some("video/webm"));
        let mkv = b"\x1A\x45\xDF\xA3\xA3\x42\x86\x81\x01\x42\x82\x88matroska\x42\x87";
        assert_eq!(sniff_mime(mkv, Some("a.webm")), Some("video/x-matroska"));
        assert_eq!(sniff_mime(b"\x1A\x45\xDF\xA3\x80", Some("a.webm")), Some("video/webm"));
        assert_eq!(sniff_mime(b"\x1A\x45\xDF\xA3\x80", None), Some("video/x-matroska"));
    }

    #[test]
    fn camera_raws_from_their_bytes() {
        use crate::synth::TiffWriter;
        let tiff = |cr2: bool, entries: Vec<crate::synth::TiffEntry>| {
            let mut w = TiffWriter::new(cr2);
            w.ifd(entries);
            w.finish()
        };
        assert_eq!(sniff_mime(&tiff(true, vec![]), None), Some("image/x-canon-cr2"));
        let dng = tiff(false, vec![(0xC612, 1, 4, vec![1, 4, 0, 0])]);
        assert_eq!(sniff_mime(&dng, Some("a.tif")), Some("image/x-adobe-dng"));
        let nikon = |sub_ifds: bool| {
            let mut e = vec![TiffWriter::ascii(0x010F, "NIKON CORPORATION")];
            if sub_ifds {
                e.push(TiffWriter::long(0x014A, 8));
            }
            tiff(false, e)
        };
        assert_eq!(sniff_mime(&nikon(true), None), Some("image/x-nikon-nef"));
        assert_eq!(sniff_mime(&nikon(false), None), Some("image/tiff"), "a scanner's TIFF");
        let sony = tiff(false, vec![TiffWriter::ascii(0x010F, "SONY"), TiffWriter::long(0x014A, 8)]);
        assert_eq!(sniff_mime(&sony, None), Some("image/x-sony-arw"));
    }

    #[test]
    fn a_name_only_breaks_ties() {
        assert_eq!(sniff_mime(b"II*\0\x08\0\0\0", Some("IMG_1.DNG")), Some("image/x-adobe-dng"));
        assert_eq!(sniff_mime(b"II*\0\x08\0\0\0", Some("scan.tif")), Some("image/tiff"));
        assert_eq!(sniff_mime(b"just some text", Some("a.jpg")), None);
        assert_eq!(sniff_mime(b"", Some("a.png")), None);
        assert_eq!(sniff_mime(b"\0\0\0\x08ftyp", Some("a.mp4")), None, "truncated ftyp");
    }
}
