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
