//! Synthetic inputs for tests and benchmarks, made in microseconds whatever their pixel count.
//! Not part of the engine's API.

/// A valid baseline JPEG of `width` x `height` (YCbCr 4:2:0, like a camera's), uniformly mid
/// grey, written directly in the JPEG format: every block has a zero DC difference and an
/// immediate end-of-block, each coded with a one-symbol Huffman table, so the entropy-coded data
/// is all zero bits. A 151-megapixel photo is under a megabyte and needs no pixel buffer to make.
pub fn grey_jpeg(width: u16, height: u16) -> Vec<u8> {
    let mut out = vec![0xFF, 0xD8];
    let segment = |out: &mut Vec<u8>, marker: u8, body: &[u8]| {
        out.extend([0xFF, marker]);
        out.extend(((body.len() + 2) as u16).to_be_bytes());
        out.extend(body);
    };
    // DQT: table 0, 8-bit, all ones.
    let mut dqt = vec![0u8];
    dqt.extend([1u8; 64]);
    segment(&mut out, 0xDB, &dqt);
    // SOF0: 8-bit, three components, Y sampled 2x2, Cb and Cr 1x1, all on table 0.
    let mut sof = vec![8];
    sof.extend(height.to_be_bytes());
    sof.extend(width.to_be_bytes());
    sof.extend([3, 1, 0x22, 0, 2, 0x11, 0, 3, 0x11, 0]);
    segment(&mut out, 0xC0, &sof);
    // DHT: DC table 0 and AC table 0, each one code of length 1 ("0") for symbol 0 (a zero DC
    // difference; end of block).
    for class in [0x00u8, 0x10] {
        let mut dht = vec![class, 1];
        dht.extend([0u8; 15]);
        dht.push(0);
        segment(&mut out, 0xC4, &dht);
    }
    // SOS: the three components on tables 0/0, full spectral range.
    segment(&mut out, 0xDA, &[3, 1, 0x00, 2, 0x00, 3, 0x00, 0, 63, 0]);
    let mcus = u64::from(width).div_ceil(16) * u64::from(height).div_ceil(16);
    let bits = mcus * 6 * 2; // six blocks per MCU, two bits per block
    out.resize(out.len() + (bits / 8) as usize, 0);
    let rest = bits % 8;
    if rest != 0 {
        out.push((1u8 << (8 - rest)) - 1); // pad the last byte with one bits
    }
    out.extend([0xFF, 0xD9]);
    out
}

/// A valid PDF of `pages` US-letter pages (the first with a filled rectangle), with a title and
/// an author in its document information, written by hand with a correct cross-reference table.
pub fn pdf(title: &str, author: &str, pages: usize) -> Vec<u8> {
    pdf_with(title, author, pages, None)
}

/// A PDF that claims to be encrypted with the standard security handler and a user password:
/// readers refuse it without the password.
pub fn encrypted_pdf() -> Vec<u8> {
    pdf_with("secret", "nobody", 1, Some("<< /Filter /Standard /V 1 /R 2 /O <0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef> /U <fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210> /P -4 >>"))
}

fn pdf_with(title: &str, author: &str, pages: usize, encrypt: Option<&str>) -> Vec<u8> {
    let pages = pages.max(1);
    let mut objects: Vec<String> = Vec::new();
    // 1: catalog, 2: page tree, 3: info, 4: content of page 1, then one object per page.
    let kids: Vec<String> = (0..pages).map(|i| format!("{} 0 R", 5 + i)).collect();
    objects.push("<< /Type /Catalog /Pages 2 0 R >>".into());
    objects.push(format!("<< /Type /Pages /Kids [{}] /Count {pages} >>", kids.join(" ")));
    let esc = |s: &str| s.replace('\\', "\\\\").replace('(', "\\(").replace(')', "\\)");
    objects.push(format!("<< /Title ({}) /Author ({}) >>", esc(title), esc(author)));
    let content = "0.2 0.4 0.8 rg 72 72 468 648 re f";
    objects.push(format!("<< /Length {} >>\nstream\n{content}\nendstream", content.len()));
    for i in 0..pages {
        let contents = if i == 0 { " /Contents 4 0 R" } else { "" };
        objects.push(format!("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792]{contents} >>"));
    }
    if let Some(e) = encrypt {
        objects.push(e.to_string());
    }
    let mut out = b"%PDF-1.4\n%\xE2\xE3\xCF\xD3\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend(format!("{} 0 obj\n{body}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes());
    for o in offsets {
        out.extend(format!("{o:010} 00000 n \n").as_bytes());
    }
    let encrypt_ref = if encrypt.is_some() {
        format!(
            " /Encrypt {} 0 R /ID [<00112233445566778899aabbccddeeff> <00112233445566778899aabbccddeeff>]",
            objects.len()
        )
    } else {
        String::new()
    };
    out.extend(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R /Info 3 0 R{encrypt_ref} >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

/// What the `described_*` makers embed: the XMP and IPTC title, creator, keywords and rights,
/// and the name of an ICC profile.
#[derive(Debug, Clone, Copy)]
pub struct Description<'a> {
    pub title: &'a str,
    pub creator: &'a str,
    pub keywords: &'a [&'a str],
    pub rights: &'a str,
    pub icc_name: &'a str,
}

/// `jpeg` with an XMP packet (dc:title, dc:creator, dc:subject, dc:rights), an IPTC block
/// (object name, by-line, keywords, copyright) and an ICC profile named `icc_name` inserted
/// after its SOI marker, as Photoshop and Lightroom write them.
pub fn described_jpeg(
    jpeg: &[u8],
    title: &str,
    creator: &str,
    keywords: &[&str],
    rights: &str,
    icc_name: &str,
) -> Vec<u8> {
    let d = Description { title, creator, keywords, rights, icc_name };
    let iim = iim_block(&d);
    let mut out = jpeg.get(..2).unwrap_or_default().to_vec();
    let mut app = |marker: u8, id: &[u8], payload: &[u8]| {
        out.extend([0xFF, marker]);
        out.extend(((id.len() + payload.len() + 2) as u16).to_be_bytes());
        out.extend(id);
        out.extend(payload);
    };
    app(0xE1, b"http://ns.adobe.com/xap/1.0/\0", xmp_packet(&d).as_bytes());
    let mut ps = b"8BIM\x04\x04\0\0".to_vec();
    ps.extend((iim.len() as u32).to_be_bytes());
    ps.extend(&iim);
    if iim.len() % 2 == 1 {
        ps.push(0);
    }
    app(0xED, b"Photoshop 3.0\0", &ps);
    let mut icc_payload = vec![1, 1];
    icc_payload.extend(icc_profile(icc_name));
    app(0xE2, b"ICC_PROFILE\0", &icc_payload);
    out.extend(jpeg.get(2..).unwrap_or_default());
    out
}

/// An XMP packet with the Dublin Core fields of `d`.
pub fn xmp_packet(d: &Description<'_>) -> String {
    let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let lis = |items: &[&str]| items.iter().map(|k| format!("<rdf:li>{}</rdf:li>", esc(k))).collect::<String>();
    format!(
        "<?xpacket begin=\"\u{feff}\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?><x:xmpmeta xmlns:x=\"adobe:ns:meta/\">\
         <rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\">\
         <rdf:Description rdf:about=\"\" xmlns:dc=\"http://purl.org/dc/elements/1.1/\">\
         <dc:title><rdf:Alt><rdf:li xml:lang=\"x-default\">{}</rdf:li></rdf:Alt></dc:title>\
         <dc:creator><rdf:Seq>{}</rdf:Seq></dc:creator>\
         <dc:subject><rdf:Bag>{}</rdf:Bag></dc:subject>\
         <dc:rights><rdf:Alt><rdf:li xml:lang=\"x-default\">{}</rdf:li></rdf:Alt></dc:rights>\
         </rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end=\"w\"?>",
        esc(d.title),
        lis(&[d.creator]),
        lis(d.keywords),
        esc(d.rights)
    )
}

/// An IPTC-IIM block (UTF-8) with the object name, by-line, keywords and copyright of `d`.
pub fn iim_block(d: &Description<'_>) -> Vec<u8> {
    let mut iim = Vec::new();
    let mut dataset = |rec: u8, ds: u8, v: &[u8]| {
        iim.extend([0x1C, rec, ds]);
        iim.extend((v.len() as u16).to_be_bytes());
        iim.extend(v);
    };
    dataset(1, 90, b"\x1B%G");
    dataset(2, 5, d.title.as_bytes());
    dataset(2, 80, d.creator.as_bytes());
    for k in d.keywords {
        dataset(2, 25, k.as_bytes());
    }
    dataset(2, 116, d.rights.as_bytes());
    iim
}

/// An ICC v2 display profile header with only a `desc` tag naming it: enough for the engine,
/// and for libpng, which checks the header (size, signature, the D50 illuminant) before it
/// writes or reads a profile.
pub fn icc_profile(name: &str) -> Vec<u8> {
    let mut desc = b"desc\0\0\0\0".to_vec();
    desc.extend((name.len() as u32 + 1).to_be_bytes());
    desc.extend(name.as_bytes());
    desc.push(0);
    while !desc.len().is_multiple_of(4) {
        desc.push(0);
    }
    let mut icc = vec![0u8; 128];
    icc.extend(1u32.to_be_bytes());
    icc.extend(b"desc");
    icc.extend(144u32.to_be_bytes());
    icc.extend((desc.len() as u32).to_be_bytes());
    icc.extend(desc);
    let size = icc.len() as u32;
    icc[0..4].copy_from_slice(&size.to_be_bytes());
    icc[8..12].copy_from_slice(&[2, 0x10, 0, 0]);
    icc[12..16].copy_from_slice(b"mntr");
    icc[16..20].copy_from_slice(b"RGB ");
    icc[20..24].copy_from_slice(b"XYZ ");
    icc[36..40].copy_from_slice(b"acsp");
    for (i, v) in [0xF6D6u32, 0x1_0000, 0xD32D].into_iter().enumerate() {
        icc[68 + 4 * i..72 + 4 * i].copy_from_slice(&v.to_be_bytes());
    }
    icc
}

/// `png` with an `iTXt` XMP packet (keyword `XML:com.adobe.xmp`) and an `iCCP` profile
/// inserted after its IHDR chunk.
pub fn described_png(png: &[u8], d: &Description<'_>) -> Vec<u8> {
    // Signature (8) and IHDR (4 + 4 + 13 + 4).
    let split = 33.min(png.len());
    let mut out = png[..split].to_vec();
    let mut itxt = b"XML:com.adobe.xmp\0\0\0\0\0".to_vec();
    itxt.extend(xmp_packet(d).as_bytes());
    png_chunk(&mut out, b"iTXt", &itxt);
    let mut iccp = b"profile\0\0".to_vec();
    iccp.extend(zlib_stored(&icc_profile(d.icc_name)));
    png_chunk(&mut out, b"iCCP", &iccp);
    out.extend(&png[split..]);
    out
}

/// Appends one PNG chunk (length, type, data, CRC-32) to `out`; tests that hand-make PNGs use it too.
pub fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend((data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend(kind);
    out.extend(data);
    let crc = crc32(&out[start..]);
    out.extend(crc.to_be_bytes());
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// A zlib stream of stored (uncompressed) deflate blocks.
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = if data.is_empty() { vec![&[]] } else { data.chunks(65_535).collect() };
    for (i, block) in blocks.iter().enumerate() {
        out.push(u8::from(i + 1 == blocks.len()));
        let len = block.len() as u16;
        out.extend(len.to_le_bytes());
        out.extend((!len).to_le_bytes());
        out.extend(*block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in data {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    out.extend(((b << 16) | a).to_be_bytes());
    out
}

/// A JPEG of `width` x `height` whose left half is red and right half blue (so a rotation
/// shows), at quality 90.
pub fn two_colour_jpeg(width: u32, height: u32) -> Vec<u8> {
    let pixels: Vec<u8> =
        (0..width * height).flat_map(|i| if i % width < width / 2 { [220, 30, 30] } else { [30, 30, 220] }).collect();
    crate::jpeg::encode(&pixels, width, height, crate::jpeg::TjPixel::Rgb, 90).unwrap_or_default()
}

/// A little-endian TIFF writer for test containers: IFDs are written where they are asked for
/// (IFD0 first, near the start of the file, as cameras do), values over 4 bytes right after
/// their IFD, and offsets to data written later are patched in with [`TiffWriter::set`].
pub struct TiffWriter {
    buf: Vec<u8>,
}

/// A written IFD: where it is, and where each entry's value bytes are.
pub struct IfdAt {
    pub offset: u32,
    values: Vec<(u16, usize)>,
    next: usize,
}

/// One entry to write: tag, TIFF type (1 BYTE, 2 ASCII, 3 SHORT, 4 LONG, 7 UNDEFINED), count,
/// and the value bytes (little-endian).
pub type TiffEntry = (u16, u16, u32, Vec<u8>);

impl TiffWriter {
    /// A TIFF header; `cr2` adds Canon's `CR` marker after it, as CR2 files have.
    pub fn new(cr2: bool) -> Self {
        let mut buf = b"II*\0\0\0\0\0".to_vec();
        if cr2 {
            buf.extend(b"CR\x02\0\0\0\0\0");
        }
        TiffWriter { buf }
    }

    pub fn short(tag: u16, v: u16) -> TiffEntry {
        (tag, 3, 1, v.to_le_bytes().to_vec())
    }

    pub fn long(tag: u16, v: u32) -> TiffEntry {
        (tag, 4, 1, v.to_le_bytes().to_vec())
    }

    pub fn longs(tag: u16, v: &[u32]) -> TiffEntry {
        (tag, 4, v.len() as u32, v.iter().flat_map(|x| x.to_le_bytes()).collect())
    }

    pub fn shorts(tag: u16, v: &[u16]) -> TiffEntry {
        (tag, 3, v.len() as u32, v.iter().flat_map(|x| x.to_le_bytes()).collect())
    }

    pub fn ascii(tag: u16, s: &str) -> TiffEntry {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        (tag, 2, v.len() as u32, v)
    }

    pub fn undefined(tag: u16, bytes: &[u8]) -> TiffEntry {
        (tag, 7, bytes.len() as u32, bytes.to_vec())
    }

    /// Write an IFD (entries sorted by tag); the first one written is IFD0.
    pub fn ifd(&mut self, mut entries: Vec<TiffEntry>) -> IfdAt {
        entries.sort_by_key(|e| e.0);
        if self.buf.len() % 2 == 1 {
            self.buf.push(0);
        }
        let offset = self.buf.len() as u32;
        if self.buf[4..8] == [0, 0, 0, 0] {
            self.buf[4..8].copy_from_slice(&offset.to_le_bytes());
        }
        let mut data_at = offset as usize + 2 + 12 * entries.len() + 4;
        let mut data = Vec::new();
        let mut values = Vec::new();
        self.buf.extend((entries.len() as u16).to_le_bytes());
        for (tag, kind, count, value) in &entries {
            self.buf.extend(tag.to_le_bytes());
            self.buf.extend(kind.to_le_bytes());
            self.buf.extend(count.to_le_bytes());
            if value.len() <= 4 {
                values.push((*tag, self.buf.len()));
                let mut v = value.clone();
                v.resize(4, 0);
                self.buf.extend(v);
            } else {
                values.push((*tag, data_at));
                self.buf.extend((data_at as u32).to_le_bytes());
                data.extend(value);
                if value.len() % 2 == 1 {
                    data.push(0);
                }
                data_at = offset as usize + 2 + 12 * entries.len() + 4 + data.len();
            }
        }
        let next = self.buf.len();
        self.buf.extend(0u32.to_le_bytes());
        self.buf.extend(data);
        IfdAt { offset, values, next }
    }

    /// Append `bytes` (at an even offset) and return where they start.
    pub fn blob(&mut self, bytes: &[u8]) -> u32 {
        if self.buf.len() % 2 == 1 {
            self.buf.push(0);
        }
        let at = self.buf.len() as u32;
        self.buf.extend(bytes);
        at
    }

    /// Set the `index`th LONG of entry `tag` of `ifd` to `value`.
    pub fn set(&mut self, ifd: &IfdAt, tag: u16, index: usize, value: u32) {
        if let Some(&(_, at)) = ifd.values.iter().find(|(t, _)| *t == tag) {
            self.buf[at + 4 * index..at + 4 * index + 4].copy_from_slice(&value.to_le_bytes());
        }
    }

    /// Chain `to` after `from`.
    pub fn link(&mut self, from: &IfdAt, to: &IfdAt) {
        self.buf[from.next..from.next + 4].copy_from_slice(&to.offset.to_le_bytes());
    }

    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// An 8-bit RGB, uncompressed TIFF of `width` x `height` (a gradient) whose IFD0 carries an
/// XMP packet (tag 700), an IPTC-IIM block (33723) and an ICC profile (34675).
pub fn described_tiff(width: u32, height: u32, d: &Description<'_>) -> Vec<u8> {
    let mut w = TiffWriter::new(false);
    let pixels: Vec<u8> = (0..width * height).flat_map(|i| [(i % width) as u8, (i / width) as u8, 128]).collect();
    let ifd0 = w.ifd(vec![
        TiffWriter::long(0x0100, width),
        TiffWriter::long(0x0101, height),
        TiffWriter::shorts(0x0102, &[8, 8, 8]),
        TiffWriter::short(0x0103, 1),
        TiffWriter::short(0x0106, 2),
        TiffWriter::long(0x0111, 0),
        TiffWriter::short(0x0115, 3),
        TiffWriter::long(0x0116, height),
        TiffWriter::long(0x0117, pixels.len() as u32),
        TiffWriter::short(0x011C, 1),
        (700, 1, xmp_packet(d).len() as u32, xmp_packet(d).into_bytes()),
        (33723, 7, iim_block(d).len() as u32, iim_block(d)),
        TiffWriter::undefined(34675, &icc_profile(d.icc_name)),
    ]);
    let strip = w.blob(&pixels);
    w.set(&ifd0, 0x0111, 0, strip);
    w.finish()
}

/// The camera raw containers [`camera_raw`] makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawKind {
    Dng,
    Cr2,
    Nef,
    Arw,
}

/// A *synthesized* camera raw container of `kind` (not a camera's file: the structure each
/// format uses to carry its previews, with placeholder sensor data) holding `preview` as its
/// largest JPEG preview, a smaller 160x120 JPEG thumbnail, sensor data the engine must not take
/// for a preview, and IFD0 tags Make, Model and Orientation:
/// - DNG: IFD0 is an uncompressed 16x12 RGB thumbnail with DNGVersion and SubIFDs: the raw
///   (a JPEG-compressed colour filter array) and the preview (a JPEG strip, Compression 7);
/// - CR2: `CR` marker; IFD0's strip is the preview (Compression 6), IFD1 holds the thumbnail as
///   JPEGInterchangeFormat, IFD2 the raw;
/// - NEF: IFD0 is the uncompressed thumbnail with SubIFDs: the preview (JPEGInterchangeFormat)
///   and the raw (CFA, Nikon compression);
/// - ARW: IFD0 holds the preview as JPEGInterchangeFormat, SubIFDs the raw.
pub fn camera_raw(kind: RawKind, preview: &[u8], orientation: u16) -> Vec<u8> {
    let (make, model) = match kind {
        RawKind::Dng => ("Leica Camera AG", "LEICA Q2"),
        RawKind::Cr2 => ("Canon", "Canon EOS 5D Mark IV"),
        RawKind::Nef => ("NIKON CORPORATION", "NIKON D850"),
        RawKind::Arw => ("SONY", "ILCE-7RM4"),
    };
    let thumb = two_colour_jpeg(160, 120);
    // Sensor data: a larger, valid JPEG, so only its tags can tell it is not a preview.
    let sensor = grey_jpeg(2048, 1536);
    let tiny_rgb: Vec<u8> = vec![128; 16 * 12 * 3];
    let camera = |extra: Vec<TiffEntry>| {
        let mut e = vec![
            TiffWriter::ascii(0x010F, make),
            TiffWriter::ascii(0x0110, model),
            TiffWriter::short(0x0112, orientation),
        ];
        e.extend(extra);
        e
    };
    let uncompressed_thumb = || {
        vec![
            TiffWriter::long(0x00FE, 1),
            TiffWriter::long(0x0100, 16),
            TiffWriter::long(0x0101, 12),
            TiffWriter::shorts(0x0102, &[8, 8, 8]),
            TiffWriter::short(0x0103, 1),
            TiffWriter::short(0x0106, 2),
            TiffWriter::long(0x0111, 0),
            TiffWriter::short(0x0115, 3),
            TiffWriter::long(0x0116, 12),
            TiffWriter::long(0x0117, tiny_rgb.len() as u32),
        ]
    };
    let jpeg_strip = |compression: u16, photometric: u16, len: usize| {
        vec![
            TiffWriter::long(0x00FE, if photometric == 32803 { 0 } else { 1 }),
            TiffWriter::short(0x0103, compression),
            TiffWriter::short(0x0106, photometric),
            TiffWriter::long(0x0111, 0),
            TiffWriter::long(0x0117, len as u32),
        ]
    };
    let jpeg_ifd = |len: usize| vec![TiffWriter::long(0x0201, 0), TiffWriter::long(0x0202, len as u32)];
    let mut w = TiffWriter::new(kind == RawKind::Cr2);
    match kind {
        RawKind::Dng => {
            let mut e = camera(uncompressed_thumb());
            e.push((0xC612, 1, 4, vec![1, 4, 0, 0]));
            e.push(TiffWriter::longs(0x014A, &[0, 0]));
            let ifd0 = w.ifd(e);
            let raw = w.ifd(jpeg_strip(7, 32803, sensor.len()));
            let prev = w.ifd(jpeg_strip(7, 6, preview.len()));
            w.set(&ifd0, 0x014A, 0, raw.offset);
            w.set(&ifd0, 0x014A, 1, prev.offset);
            let at = w.blob(&tiny_rgb);
            w.set(&ifd0, 0x0111, 0, at);
            let at = w.blob(&sensor);
            w.set(&raw, 0x0111, 0, at);
            let at = w.blob(preview);
            w.set(&prev, 0x0111, 0, at);
        }
        RawKind::Cr2 => {
            let ifd0 = w.ifd(camera(jpeg_strip(6, 6, preview.len())));
            let ifd1 = w.ifd(jpeg_ifd(thumb.len()));
            let ifd2 = w.ifd(jpeg_strip(6, 32803, sensor.len()));
            w.link(&ifd0, &ifd1);
            w.link(&ifd1, &ifd2);
            let at = w.blob(preview);
            w.set(&ifd0, 0x0111, 0, at);
            let at = w.blob(&thumb);
            w.set(&ifd1, 0x0201, 0, at);
            let at = w.blob(&sensor);
            w.set(&ifd2, 0x0111, 0, at);
        }
        RawKind::Nef => {
            let mut e = camera(uncompressed_thumb());
            e.push(TiffWriter::longs(0x014A, &[0, 0]));
            let ifd0 = w.ifd(e);
            let prev = w.ifd(jpeg_ifd(preview.len()));
            let raw = w.ifd(jpeg_strip(34713, 32803, sensor.len()));
            w.set(&ifd0, 0x014A, 0, prev.offset);
            w.set(&ifd0, 0x014A, 1, raw.offset);
            let at = w.blob(&tiny_rgb);
            w.set(&ifd0, 0x0111, 0, at);
            let at = w.blob(preview);
            w.set(&prev, 0x0201, 0, at);
            let at = w.blob(&sensor);
            w.set(&raw, 0x0111, 0, at);
        }
        RawKind::Arw => {
            let mut e = camera(jpeg_ifd(preview.len()));
            e.push(TiffWriter::long(0x014A, 0));
            let ifd0 = w.ifd(e);
            let raw = w.ifd(jpeg_strip(32767, 32803, sensor.len()));
            w.set(&ifd0, 0x014A, 0, raw.offset);
            let at = w.blob(preview);
            w.set(&ifd0, 0x0201, 0, at);
            let at = w.blob(&sensor);
            w.set(&raw, 0x0111, 0, at);
        }
    }
    w.finish()
}

/// `jpeg` encoded as HEIC (or AVIF with `avif`) by libheif's `heif-enc` (Debian
/// `libheif-examples`, installed by scripts/services), which carries the JPEG's EXIF, XMP and
/// ICC profile over. The error says why it could not run.
pub fn heif_enc(jpeg: &[u8], avif: bool) -> Result<Vec<u8>, String> {
    let dir = tempfile::tempdir().map_err(|e| format!("a temporary directory: {e}"))?;
    let src = dir.path().join("photo.jpg");
    std::fs::write(&src, jpeg).map_err(|e| format!("writing the source JPEG: {e}"))?;
    let out = dir.path().join(if avif { "photo.avif" } else { "photo.heic" });
    let ran = std::process::Command::new("heif-enc")
        .args(["-q", "60", "-o"])
        .arg(&out)
        .arg(&src)
        .output()
        .map_err(|e| format!("cannot run heif-enc ({e}): install libheif-examples with scripts/services"))?;
    if !ran.status.success() {
        return Err(format!("heif-enc failed: {}", String::from_utf8_lossy(&ran.stderr)));
    }
    std::fs::read(&out).map_err(|e| format!("reading what heif-enc wrote: {e}"))
}
