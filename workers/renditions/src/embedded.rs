//! Descriptive metadata embedded in an image: the XMP packet (Dublin Core title, creator,
//! subject, rights), IPTC-IIM (object name, by-line, keywords, copyright, caption) and the ICC
//! profile's description. Each container keeps them in its own places (a JPEG in APP1, APP13 and
//! APP2 segments; a PNG in `iTXt` and `iCCP` chunks; a TIFF, and so a camera raw, in IFD0 tags
//! 700, 33723/34377 and 34675) and all of them go through the same parsers here, with no XML or
//! pixel decoding: a malformed block only leaves its fields out.

use serde::{Deserialize, Serialize};

/// Dublin Core fields of the XMP packet.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Xmp {
    /// `dc:title` (the `x-default` or first alternative).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// `dc:creator`, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub creator: Vec<String>,
    /// `dc:subject`: the keywords.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subject: Vec<String>,
    /// `dc:rights` (the `x-default` or first alternative).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rights: Option<String>,
}

/// The basic IPTC-IIM datasets (record 2).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Iptc {
    /// 2:05 Object Name (the title).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_name: Option<String>,
    /// 2:80 By-line (the creators).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub by_line: Vec<String>,
    /// 2:25 Keywords.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keywords: Vec<String>,
    /// 2:116 Copyright Notice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copyright: Option<String>,
    /// 2:120 Caption/Abstract.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
}

/// What an image's embedded blocks describe.
#[derive(Debug, Default)]
pub(crate) struct Embedded {
    pub xmp: Option<Xmp>,
    pub iptc: Option<Iptc>,
    pub icc_profile: Option<String>,
}

const XMP_ID: &[u8] = b"http://ns.adobe.com/xap/1.0/\0";
const PHOTOSHOP_ID: &[u8] = b"Photoshop 3.0\0";
const ICC_ID: &[u8] = b"ICC_PROFILE\0";

/// Reads the JPEG's APP segments up to the first scan.
pub(crate) fn read_jpeg(input: &[u8]) -> Embedded {
    let mut out = Embedded::default();
    let mut icc_chunks: Vec<(u8, &[u8])> = Vec::new();
    for (marker, payload) in segments(input) {
        match marker {
            0xE1 if payload.starts_with(XMP_ID) && out.xmp.is_none() => {
                out.xmp = parse_xmp(&String::from_utf8_lossy(&payload[XMP_ID.len()..]));
            }
            0xED if payload.starts_with(PHOTOSHOP_ID) && out.iptc.is_none() => {
                out.iptc = photoshop_iptc(&payload[PHOTOSHOP_ID.len()..]).and_then(parse_iim);
            }
            0xE2 if payload.starts_with(ICC_ID) && payload.len() > ICC_ID.len() + 2 => {
                icc_chunks.push((payload[ICC_ID.len()], &payload[ICC_ID.len() + 2..]));
            }
            _ => {}
        }
    }
    if !icc_chunks.is_empty() {
        icc_chunks.sort_by_key(|(seq, _)| *seq);
        let profile: Vec<u8> = icc_chunks.iter().flat_map(|(_, d)| d.iter().copied()).collect();
        out.icc_profile = icc_description(&profile);
    }
    out
}

/// The PNG's `iTXt` chunk with keyword `XML:com.adobe.xmp` and its `iCCP` profile, as the `png`
/// crate read them before the image data.
pub(crate) fn read_png(info: &png::Info<'_>) -> Embedded {
    let xmp = info.utf8_text.iter().find(|t| t.keyword == "XML:com.adobe.xmp").and_then(|chunk| {
        let mut chunk = chunk.clone();
        // A compressed packet inflates to at most 1 MiB: a text bomb costs nothing.
        chunk.decompress_text_with_limit(1 << 20).ok()?;
        parse_xmp(&chunk.get_text().ok()?)
    });
    let icc_profile = info.icc_profile.as_deref().and_then(icc_description);
    Embedded { xmp, iptc: None, icc_profile }
}

/// IFD0 of a TIFF (or a TIFF-based camera raw): the XMP packet (tag 700), IPTC-IIM (tag 33723,
/// else inside the Photoshop resources of tag 34377) and the ICC profile (tag 34675).
pub(crate) fn read_tiff(input: &[u8]) -> Embedded {
    use crate::tiff_ifd::{find, tag, Tiff};
    let Some(tiff) = Tiff::new(input) else { return Embedded::default() };
    let Some((entries, _)) = tiff.first_ifd().and_then(|o| tiff.ifd(o)) else { return Embedded::default() };
    let blob = |t: u16| find(&entries, t).and_then(|e| tiff.blob(e));
    let xmp = blob(tag::XMP).and_then(|b| parse_xmp(&String::from_utf8_lossy(&b)));
    let iptc = blob(tag::IPTC)
        .and_then(|b| parse_iim(&b))
        .or_else(|| blob(tag::PHOTOSHOP).and_then(|b| photoshop_iptc(&b).and_then(parse_iim)));
    let icc_profile = blob(tag::ICC_PROFILE).and_then(|b| icc_description(&b));
    Embedded { xmp, iptc, icc_profile }
}

/// The (marker, payload) of each segment after SOI and before SOS.
fn segments(input: &[u8]) -> Vec<(u8, &[u8])> {
    let mut out = Vec::new();
    if !input.starts_with(&[0xFF, 0xD8]) {
        return out;
    }
    let mut i = 2;
    while i + 4 <= input.len() {
        if input[i] != 0xFF {
            break;
        }
        let marker = input[i + 1];
        if marker == 0xFF {
            i += 1; // fill byte
            continue;
        }
        if marker == 0xDA || marker == 0xD9 {
            break;
        }
        let len = usize::from(u16::from_be_bytes([input[i + 2], input[i + 3]]));
        if len < 2 || i + 2 + len > input.len() {
            break;
        }
        out.push((marker, &input[i + 4..i + 2 + len]));
        i += 2 + len;
    }
    out
}

/// The Dublin Core fields of an XMP packet; `None` when it has none of them.
pub(crate) fn parse_xmp(xml: &str) -> Option<Xmp> {
    let xmp = Xmp {
        title: items(xml, "dc:title").into_iter().next(),
        creator: items(xml, "dc:creator"),
        subject: items(xml, "dc:subject"),
        rights: items(xml, "dc:rights").into_iter().next(),
    };
    (xmp != Xmp::default()).then_some(xmp)
}

/// The `rdf:li` texts inside element `name` (an Alt's `x-default` first), or its plain text.
fn items(xml: &str, name: &str) -> Vec<String> {
    let open = format!("<{name}");
    let close = format!("</{name}>");
    let Some(start) = xml.find(&open) else { return Vec::new() };
    let after = &xml[start + open.len()..];
    // `<dc:titleX` is another element.
    if !after.starts_with(['>', ' ', '\t', '\r', '\n']) {
        return Vec::new();
    }
    let Some(gt) = after.find('>') else { return Vec::new() };
    let Some(end) = after.find(&close) else { return Vec::new() };
    if gt > end {
        return Vec::new();
    }
    let body = &after[gt + 1..end];
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(li) = rest.find("<rdf:li") {
        let tag = &rest[li..];
        let Some(gt) = tag.find('>') else { break };
        let is_default = tag[..gt].contains("x-default");
        if tag[..gt].ends_with('/') {
            rest = &tag[gt + 1..];
            continue;
        }
        let Some(end) = tag.find("</rdf:li>") else { break };
        let text = unescape(tag[gt + 1..end].trim());
        if !text.is_empty() {
            if is_default {
                out.insert(0, text);
            } else {
                out.push(text);
            }
        }
        rest = &tag[end + "</rdf:li>".len()..];
    }
    if out.is_empty() && !body.contains('<') {
        let text = unescape(body.trim());
        if !text.is_empty() {
            out.push(text);
        }
    }
    out
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let tail = &rest[amp..];
        let Some(semi) = tail.find(';').filter(|&n| n <= 10) else {
            out.push('&');
            rest = &tail[1..];
            continue;
        };
        let entity = &tail[1..semi];
        let ch = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            e if e.starts_with("#x") => u32::from_str_radix(&e[2..], 16).ok().and_then(char::from_u32),
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match ch {
            Some(c) => {
                out.push(c);
                rest = &tail[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The IPTC-IIM block inside Photoshop image resources (`8BIM`, id 0x0404).
fn photoshop_iptc(mut data: &[u8]) -> Option<&[u8]> {
    while data.len() >= 12 && data.starts_with(b"8BIM") {
        let id = u16::from_be_bytes([data[4], data[5]]);
        // A Pascal name, padded to an even length (counting its length byte).
        let name_len = usize::from(data[6]);
        let mut i = 6 + (name_len + 1).next_multiple_of(2);
        let size = u32::from_be_bytes(data.get(i..i + 4)?.try_into().ok()?) as usize;
        i += 4;
        let block = data.get(i..i + size)?;
        if id == 0x0404 {
            return Some(block);
        }
        data = data.get(i + size.next_multiple_of(2)..)?;
    }
    None
}

/// The record-2 datasets of an IIM block.
pub(crate) fn parse_iim(mut data: &[u8]) -> Option<Iptc> {
    let mut iptc = Iptc::default();
    let mut utf8 = false;
    while data.len() >= 5 && data[0] == 0x1C {
        let (record, dataset) = (data[1], data[2]);
        let size = usize::from(u16::from_be_bytes([data[3], data[4]]));
        if size & 0x8000 != 0 {
            break; // extended sizes are not used for these text fields
        }
        let Some(value) = data.get(5..5 + size) else { break };
        // 1:90 Coded Character Set: ESC % G is UTF-8; otherwise Latin-1 is the usual guess.
        if record == 1 && dataset == 90 && value == b"\x1B%G" {
            utf8 = true;
        }
        let text = || {
            let s = if utf8 {
                String::from_utf8_lossy(value).into_owned()
            } else {
                value.iter().map(|&b| b as char).collect()
            };
            s.trim_matches(|c: char| c == '\0' || c.is_whitespace()).to_string()
        };
        if record == 2 {
            match dataset {
                5 => iptc.object_name = Some(text()),
                80 => iptc.by_line.push(text()),
                25 => iptc.keywords.push(text()),
                116 => iptc.copyright = Some(text()),
                120 => iptc.caption = Some(text()),
                _ => {}
            }
        }
        data = &data[5 + size..];
    }
    (iptc != Iptc::default()).then_some(iptc)
}

/// The ICC profile's description tag (`desc`: v2 `desc` ASCII or v4 `mluc` UTF-16).
pub(crate) fn icc_description(profile: &[u8]) -> Option<String> {
    let be32 = |at: usize| profile.get(at..at + 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize);
    let count = be32(128)?.min(1000);
    for t in 0..count {
        let entry = 132 + 12 * t;
        if profile.get(entry..entry + 4)? != b"desc" {
            continue;
        }
        let (offset, size) = (be32(entry + 4)?, be32(entry + 8)?);
        let tag = profile.get(offset..offset.checked_add(size)?)?;
        let text = match tag.get(0..4)? {
            b"desc" => {
                let n = u32::from_be_bytes(tag.get(8..12)?.try_into().ok()?) as usize;
                let ascii = tag.get(12..12 + n)?;
                String::from_utf8_lossy(ascii).trim_end_matches('\0').trim().to_string()
            }
            b"mluc" => {
                let len = u32::from_be_bytes(tag.get(20..24)?.try_into().ok()?) as usize;
                let at = u32::from_be_bytes(tag.get(24..28)?.try_into().ok()?) as usize;
                let units: Vec<u16> =
                    tag.get(at..at + len)?.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
                String::from_utf16_lossy(&units).trim_end_matches('\0').trim().to_string()
            }
            _ => return None,
        };
        return (!text.is_empty()).then_some(text);
    }
    None
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const XMP: &str = r#"<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
      <rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/">
        <dc:title><rdf:Alt><rdf:li xml:lang="de">Strand</rdf:li><rdf:li xml:lang="x-default">Beach &amp; sea</rdf:li></rdf:Alt></dc:title>
        <dc:creator><rdf:Seq><rdf:li>Ada Lovelace</rdf:li><rdf:li>Charles Babbage</rdf:li></rdf:Seq></dc:creator>
        <dc:subject><rdf:Bag><rdf:li>beach</rdf:li><rdf:li>summer</rdf:li></rdf:Bag></dc:subject>
        <dc:rights><rdf:Alt><rdf:li xml:lang="x-default">&#169; 2024 Ada</rdf:li></rdf:Alt></dc:rights>
      </rdf:Description></rdf:RDF></x:xmpmeta>"#;

    #[test]
    fn xmp_dublin_core() {
        let xmp = parse_xmp(XMP).unwrap();
        assert_eq!(xmp.title.as_deref(), Some("Beach & sea"), "x-default first");
        assert_eq!(xmp.creator, ["Ada Lovelace", "Charles Babbage"]);
        assert_eq!(xmp.subject, ["beach", "summer"]);
        assert_eq!(xmp.rights.as_deref(), Some("© 2024 Ada"));
        assert_eq!(parse_xmp("<x:xmpmeta><dc:format>image/jpeg</dc:format></x:xmpmeta>"), None);
        assert_eq!(parse_xmp("<dc:title><rdf:Alt><rdf:li>unterminated"), None);
    }

    pub(crate) fn iim() -> Vec<u8> {
        let mut b = Vec::new();
        for (rec, ds, v) in [
            (1u8, 90u8, &b"\x1B%G"[..]),
            (2, 5, "Beach".as_bytes()),
            (2, 80, "Ada Lovelace".as_bytes()),
            (2, 25, "beach".as_bytes()),
            (2, 25, "été".as_bytes()),
            (2, 116, "(c) Ada".as_bytes()),
            (2, 120, "A beach in summer".as_bytes()),
        ] {
            b.extend([0x1C, rec, ds]);
            b.extend((v.len() as u16).to_be_bytes());
            b.extend(v);
        }
        b
    }

    #[test]
    fn iptc_datasets() {
        let iptc = parse_iim(&iim()).unwrap();
        assert_eq!(iptc.object_name.as_deref(), Some("Beach"));
        assert_eq!(iptc.by_line, ["Ada Lovelace"]);
        assert_eq!(iptc.keywords, ["beach", "été"]);
        assert_eq!(iptc.copyright.as_deref(), Some("(c) Ada"));
        assert_eq!(iptc.caption.as_deref(), Some("A beach in summer"));
        assert_eq!(parse_iim(&[0x1C, 2, 5, 0xFF, 0xFF]), None, "a size past the end");
    }

    /// A minimal ICC profile with only a v2 `desc` tag.
    pub(crate) fn icc(name: &str) -> Vec<u8> {
        let mut p = vec![0u8; 128];
        p.extend(1u32.to_be_bytes());
        let offset = 128 + 4 + 12;
        let mut tag = b"desc\0\0\0\0".to_vec();
        tag.extend((name.len() as u32 + 1).to_be_bytes());
        tag.extend(name.as_bytes());
        tag.push(0);
        p.extend(b"desc");
        p.extend((offset as u32).to_be_bytes());
        p.extend((tag.len() as u32).to_be_bytes());
        p.extend(tag);
        p
    }

    #[test]
    fn icc_profile_description() {
        assert_eq!(icc_description(&icc("sRGB IEC61966-2.1")).as_deref(), Some("sRGB IEC61966-2.1"));
        assert_eq!(icc_description(&[0; 100]), None);
        let mut cut = icc("Display P3");
        cut.truncate(150);
        assert_eq!(icc_description(&cut), None);
    }

    #[test]
    fn a_tiffs_tags_and_photoshop_resources() {
        use crate::synth::TiffWriter;
        let block = iim();
        let mut resources = b"8BIM\x04\x04\0\0".to_vec();
        resources.extend((block.len() as u32).to_be_bytes());
        resources.extend(&block);
        let mut w = TiffWriter::new(false);
        w.ifd(vec![
            (700, 1, XMP.len() as u32, XMP.as_bytes().to_vec()),
            TiffWriter::undefined(34377, &resources),
            TiffWriter::undefined(34675, &icc("Generic Gray")),
        ]);
        let e = read_tiff(&w.finish());
        assert_eq!(e.xmp.and_then(|x| x.title).as_deref(), Some("Beach & sea"));
        assert_eq!(e.iptc.map(|i| i.keywords), Some(vec!["beach".to_string(), "été".to_string()]), "from 34377");
        assert_eq!(e.icc_profile.as_deref(), Some("Generic Gray"));
        assert!(read_tiff(b"II*\0\xFF\xFF\xFF\x7F").xmp.is_none(), "IFD0 out of bounds: nothing, no panic");
    }

    #[test]
    fn segments_of_a_jpeg() {
        let mut jpeg = vec![0xFF, 0xD8];
        let mut app = |marker: u8, payload: &[u8]| {
            jpeg.extend([0xFF, marker]);
            jpeg.extend(((payload.len() + 2) as u16).to_be_bytes());
            jpeg.extend(payload);
        };
        let mut xmp = XMP_ID.to_vec();
        xmp.extend(XMP.as_bytes());
        app(0xE1, &xmp);
        let mut ps = PHOTOSHOP_ID.to_vec();
        let block = iim();
        ps.extend(b"8BIM\x04\x04\0\0");
        ps.extend((block.len() as u32).to_be_bytes());
        ps.extend(&block);
        app(0xED, &ps);
        let mut icc_seg = ICC_ID.to_vec();
        icc_seg.extend([1, 1]);
        icc_seg.extend(icc("sRGB IEC61966-2.1"));
        app(0xE2, &icc_seg);
        jpeg.extend([0xFF, 0xDA, 0, 2]);
        let e = read_jpeg(&jpeg);
        assert_eq!(e.xmp.and_then(|x| x.title).as_deref(), Some("Beach & sea"));
        assert_eq!(e.iptc.and_then(|i| i.object_name).as_deref(), Some("Beach"));
        assert_eq!(e.icc_profile.as_deref(), Some("sRGB IEC61966-2.1"));
        // Garbage after SOI: nothing, no panic.
        assert!(read_jpeg(&[0xFF, 0xD8, 0xFF, 0xE1, 0xFF, 0xFF, 1]).xmp.is_none());
    }
}
