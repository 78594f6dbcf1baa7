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
    let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let lis = |items: &[&str]| items.iter().map(|k| format!("<rdf:li>{}</rdf:li>", esc(k))).collect::<String>();
    let xmp = format!(
        "<?xpacket begin=\"\u{feff}\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?><x:xmpmeta xmlns:x=\"adobe:ns:meta/\">\
         <rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\">\
         <rdf:Description rdf:about=\"\" xmlns:dc=\"http://purl.org/dc/elements/1.1/\">\
         <dc:title><rdf:Alt><rdf:li xml:lang=\"x-default\">{}</rdf:li></rdf:Alt></dc:title>\
         <dc:creator><rdf:Seq>{}</rdf:Seq></dc:creator>\
         <dc:subject><rdf:Bag>{}</rdf:Bag></dc:subject>\
         <dc:rights><rdf:Alt><rdf:li xml:lang=\"x-default\">{}</rdf:li></rdf:Alt></dc:rights>\
         </rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end=\"w\"?>",
        esc(title),
        lis(&[creator]),
        lis(keywords),
        esc(rights)
    );
    let mut iim = Vec::new();
    let mut dataset = |rec: u8, ds: u8, v: &[u8]| {
        iim.extend([0x1C, rec, ds]);
        iim.extend((v.len() as u16).to_be_bytes());
        iim.extend(v);
    };
    dataset(1, 90, b"\x1B%G");
    dataset(2, 5, title.as_bytes());
    dataset(2, 80, creator.as_bytes());
    for k in keywords {
        dataset(2, 25, k.as_bytes());
    }
    dataset(2, 116, rights.as_bytes());
    let mut icc = vec![0u8; 128];
    icc.extend(1u32.to_be_bytes());
    let mut desc = b"desc\0\0\0\0".to_vec();
    desc.extend((icc_name.len() as u32 + 1).to_be_bytes());
    desc.extend(icc_name.as_bytes());
    desc.push(0);
    icc.extend(b"desc");
    icc.extend(144u32.to_be_bytes());
    icc.extend((desc.len() as u32).to_be_bytes());
    icc.extend(desc);

    let mut out = jpeg.get(..2).unwrap_or_default().to_vec();
    let mut app = |marker: u8, id: &[u8], payload: &[u8]| {
        out.extend([0xFF, marker]);
        out.extend(((id.len() + payload.len() + 2) as u16).to_be_bytes());
        out.extend(id);
        out.extend(payload);
    };
    app(0xE1, b"http://ns.adobe.com/xap/1.0/\0", xmp.as_bytes());
    let mut ps = b"8BIM\x04\x04\0\0".to_vec();
    ps.extend((iim.len() as u32).to_be_bytes());
    ps.extend(&iim);
    if iim.len() % 2 == 1 {
        ps.push(0);
    }
    app(0xED, b"Photoshop 3.0\0", &ps);
    let mut icc_payload = vec![1, 1];
    icc_payload.extend(&icc);
    app(0xE2, b"ICC_PROFILE\0", &icc_payload);
    out.extend(jpeg.get(2..).unwrap_or_default());
    out
}
