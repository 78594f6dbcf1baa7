//! A minimal reader of TIFF structure: byte order, image file directories (IFDs), their entries
//! and the bytes an entry points at. No pixels. Camera raws (CR2, NEF, ARW, DNG) are TIFF
//! containers whose useful parts (the embedded JPEG previews, in IFD0, the IFD chain and the
//! SubIFDs) the `tiff` and `kamadak-exif` crates do not reach; TIFFs carry their XMP packet
//! (tag 700), IPTC block (33723) and ICC profile (34675) as plain entries. Everything is bounds
//! checked: a bad offset only makes an entry or a directory absent.

/// A TIFF file's bytes and its byte order.
#[derive(Clone, Copy)]
pub(crate) struct Tiff<'a> {
    data: &'a [u8],
    little: bool,
}

/// One IFD entry: its tag, field type, count, and the 4 bytes of its value-or-offset field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    pub tag: u16,
    pub kind: u16,
    pub count: u32,
    field: [u8; 4],
}

/// Tags the engine reads.
pub(crate) mod tag {
    pub const COMPRESSION: u16 = 0x0103;
    pub const PHOTOMETRIC: u16 = 0x0106;
    pub const MAKE: u16 = 0x010F;
    pub const STRIP_OFFSETS: u16 = 0x0111;
    pub const STRIP_BYTE_COUNTS: u16 = 0x0117;
    pub const SUB_IFDS: u16 = 0x014A;
    pub const JPEG_OFFSET: u16 = 0x0201;
    pub const JPEG_LENGTH: u16 = 0x0202;
    pub const XMP: u16 = 700;
    pub const IPTC: u16 = 33723;
    pub const PHOTOSHOP: u16 = 34377;
    pub const ICC_PROFILE: u16 = 34675;
    pub const DNG_VERSION: u16 = 0xC612;
}

/// Most IFDs followed in one file (the chain and every SubIFD): a loop of offsets ends here.
pub(crate) const MAX_IFDS: usize = 64;

impl<'a> Tiff<'a> {
    /// `None` unless `data` starts with a TIFF header (`II*\0` or `MM\0*`).
    pub fn new(data: &'a [u8]) -> Option<Self> {
        let little = match data.get(0..4)? {
            b"II*\0" => true,
            b"MM\0*" => false,
            _ => return None,
        };
        Some(Tiff { data, little })
    }

    pub fn bytes(&self) -> &'a [u8] {
        self.data
    }

    fn u16_at(&self, at: usize) -> Option<u16> {
        let b: [u8; 2] = self.data.get(at..at.checked_add(2)?)?.try_into().ok()?;
        Some(if self.little { u16::from_le_bytes(b) } else { u16::from_be_bytes(b) })
    }

    fn u32_at(&self, at: usize) -> Option<u32> {
        let b: [u8; 4] = self.data.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(if self.little { u32::from_le_bytes(b) } else { u32::from_be_bytes(b) })
    }

    /// The offset of IFD0.
    pub fn first_ifd(&self) -> Option<usize> {
        self.u32_at(4).map(|o| o as usize)
    }

    /// The entries of the IFD at `offset` and the offset of the next one (0: none).
    pub fn ifd(&self, offset: usize) -> Option<(Vec<Entry>, usize)> {
        let n = usize::from(self.u16_at(offset)?);
        let mut entries = Vec::with_capacity(n);
        for i in 0..n {
            let at = offset + 2 + 12 * i;
            let field: [u8; 4] = self.data.get(at + 8..at + 12)?.try_into().ok()?;
            entries.push(Entry {
                tag: self.u16_at(at)?,
                kind: self.u16_at(at + 2)?,
                count: self.u32_at(at + 4)?,
                field,
            });
        }
        let next = self.u32_at(offset + 2 + 12 * n).unwrap_or(0) as usize;
        Some((entries, next))
    }

    /// The offsets of IFD0 and the IFDs chained after it, at most [`MAX_IFDS`].
    pub fn chain(&self) -> Vec<usize> {
        let mut out = Vec::new();
        let mut next = self.first_ifd().unwrap_or(0);
        while next != 0 && out.len() < MAX_IFDS && !out.contains(&next) {
            out.push(next);
            next = self.ifd(next).map(|(_, n)| n).unwrap_or(0);
        }
        out
    }

    /// The bytes of an entry's value when stored out of line (more than 4 bytes), `None` when
    /// inline or out of bounds.
    fn out_of_line(&self, e: &Entry) -> Option<&'a [u8]> {
        let len = usize::try_from(e.count).ok()?.checked_mul(type_size(e.kind)?)?;
        if len <= 4 {
            return None;
        }
        let at = if self.little { u32::from_le_bytes(e.field) } else { u32::from_be_bytes(e.field) } as usize;
        self.data.get(at..at.checked_add(len)?)
    }

    /// An entry's value as unsigned numbers (BYTE, SHORT, LONG or IFD types), inline or not.
    pub fn numbers(&self, e: &Entry) -> Vec<u32> {
        let size = match e.kind {
            1 | 7 => 1,
            3 => 2,
            4 | 13 => 4,
            _ => return Vec::new(),
        };
        // At most 4096 numbers: strip tables of previews are short; a huge count is garbage.
        let count = (e.count as usize).min(4096);
        let len = count * size;
        let bytes: &[u8] = if len <= 4 {
            &e.field[..len]
        } else {
            match self.out_of_line(e) {
                Some(b) => b,
                None => return Vec::new(),
            }
        };
        let little = self.little;
        bytes
            .chunks_exact(size)
            .take(count)
            .map(|c| match *c {
                [b] => u32::from(b),
                [a, b] => u32::from(if little { u16::from_le_bytes([a, b]) } else { u16::from_be_bytes([a, b]) }),
                [a, b, c, d] => {
                    if little {
                        u32::from_le_bytes([a, b, c, d])
                    } else {
                        u32::from_be_bytes([a, b, c, d])
                    }
                }
                _ => 0,
            })
            .collect()
    }

    /// An entry's raw bytes whatever its type (for UNDEFINED/BYTE/LONG-typed blobs such as XMP
    /// or IPTC), inline or not.
    pub fn blob(&self, e: &Entry) -> Option<Vec<u8>> {
        let len = usize::try_from(e.count).ok()?.checked_mul(type_size(e.kind)?)?;
        if len <= 4 {
            return Some(e.field[..len].to_vec());
        }
        self.out_of_line(e).map(<[u8]>::to_vec)
    }

    /// An ASCII entry as text, trimmed of NULs and spaces.
    pub fn text(&self, e: &Entry) -> Option<String> {
        let bytes = self.blob(e)?;
        let s = String::from_utf8_lossy(&bytes).trim_matches(|c: char| c == '\0' || c.is_whitespace()).to_string();
        (!s.is_empty()).then_some(s)
    }
}

/// The size in bytes of one value of a TIFF field type.
fn type_size(kind: u16) -> Option<usize> {
    match kind {
        1 | 2 | 6 | 7 => Some(1),
        3 | 8 => Some(2),
        4 | 9 | 11 | 13 => Some(4),
        5 | 10 | 12 => Some(8),
        _ => None,
    }
}

/// The entry with `tag` in `entries`.
pub(crate) fn find(entries: &[Entry], tag: u16) -> Option<&Entry> {
    entries.iter().find(|e| e.tag == tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A big-endian TIFF whose IFD0 has a SHORT, an inline ASCII and an out-of-line ASCII entry.
    fn sample() -> Vec<u8> {
        let mut b = b"MM\0*".to_vec();
        b.extend(8u32.to_be_bytes());
        b.extend(3u16.to_be_bytes());
        b.extend([0x01, 0x03, 0, 3, 0, 0, 0, 1, 0, 7, 0, 0]); // Compression = 7
        b.extend([0x01, 0x0F, 0, 2, 0, 0, 0, 4, b'A', b'B', b'C', 0]); // Make = "ABC"
        b.extend([0x01, 0x10, 0, 2, 0, 0, 0, 6]);
        b.extend(50u32.to_be_bytes()); // Model at 50
        b.extend(0u32.to_be_bytes());
        b.extend(b"Model\0");
        b
    }

    #[test]
    fn entries_values_and_bounds() {
        let data = sample();
        let t = Tiff::new(&data).unwrap();
        assert_eq!(t.chain(), [8]);
        let (entries, next) = t.ifd(8).unwrap();
        assert_eq!(next, 0);
        assert_eq!(t.numbers(find(&entries, tag::COMPRESSION).unwrap()), [7]);
        assert_eq!(t.text(find(&entries, tag::MAKE).unwrap()).as_deref(), Some("ABC"));
        assert_eq!(t.text(find(&entries, 0x0110).unwrap()).as_deref(), Some("Model"));
        // Cut before the out-of-line value: the entry has no value, nothing panics.
        let cut = &data[..52];
        let t = Tiff::new(cut).unwrap();
        let (entries, _) = t.ifd(8).unwrap();
        assert_eq!(t.text(find(&entries, 0x0110).unwrap()), None);
        assert!(t.ifd(1 << 30).is_none());
        assert!(Tiff::new(b"GIF89a").is_none());
    }

    #[test]
    fn a_loop_of_ifds_ends() {
        let mut b = b"II*\0".to_vec();
        b.extend(8u32.to_le_bytes());
        b.extend(0u16.to_le_bytes());
        b.extend(8u32.to_le_bytes()); // next IFD: itself
        let t = Tiff::new(&b).unwrap();
        assert_eq!(t.chain(), [8]);
    }
}
