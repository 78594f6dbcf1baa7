//! A thin, safe wrapper over the TurboJPEG 3 C API (libjpeg-turbo, built and linked statically by
//! `turbojpeg-sys`). Only what the engine needs: header, scaled decode, encode.
//!
//! The raw API is used instead of the `turbojpeg` crate because the engine needs to tell a
//! warning (e.g. a truncated file that libjpeg padded with grey) from a fatal error, and to set
//! the memory and pixel caps (`TJPARAM_MAXMEMORY`, `TJPARAM_MAXPIXELS`, `TJPARAM_SCANLIMIT`).

use std::ffi::CStr;
use std::os::raw::{c_int, c_void};

use turbojpeg_sys as tj;

/// What went wrong inside libjpeg-turbo.
#[derive(Debug, Clone)]
pub(crate) struct TjError {
    pub message: String,
    /// `true` when libjpeg only warned (the output buffer was filled anyway).
    pub warning: bool,
}

/// The colour model of a JPEG as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JpegColorspace {
    Gray,
    YCbCr,
    Rgb,
    Cmyk,
    Ycck,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct JpegHeader {
    pub width: u32,
    pub height: u32,
    pub colorspace: JpegColorspace,
    pub precision: u8,
    pub lossless: bool,
}

impl JpegHeader {
    /// Size of the image decoded at `num/8` (TurboJPEG rounds up).
    pub fn scaled_size(&self, num: u32) -> (u32, u32) {
        let s = |d: u32| (u64::from(d) * u64::from(num)).div_ceil(8) as u32;
        (s(self.width), s(self.height))
    }
}

/// Pixel formats the engine asks libjpeg-turbo for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TjPixel {
    Rgb,
    Gray,
    Cmyk,
}

impl TjPixel {
    fn code(self) -> c_int {
        (match self {
            TjPixel::Rgb => tj::TJPF_TJPF_RGB,
            TjPixel::Gray => tj::TJPF_TJPF_GRAY,
            TjPixel::Cmyk => tj::TJPF_TJPF_CMYK,
        }) as c_int
    }

    pub fn channels(self) -> usize {
        match self {
            TjPixel::Rgb => 3,
            TjPixel::Gray => 1,
            TjPixel::Cmyk => 4,
        }
    }
}

struct Handle(tj::tjhandle);

impl Handle {
    fn new(kind: tj::TJINIT) -> Result<Self, TjError> {
        // SAFETY: tj3Init has no preconditions; a null return is handled.
        let ptr = unsafe { tj::tj3Init(kind as c_int) };
        if ptr.is_null() {
            return Err(TjError { message: "could not initialise libjpeg-turbo".into(), warning: false });
        }
        Ok(Handle(ptr))
    }

    fn error(&self) -> TjError {
        // SAFETY: the handle is valid; the returned string is owned by the handle and copied here.
        let (message, code) = unsafe {
            let msg = CStr::from_ptr(tj::tj3GetErrorStr(self.0)).to_string_lossy().into_owned();
            (msg, tj::tj3GetErrorCode(self.0))
        };
        TjError { message, warning: code == tj::TJERR_TJERR_WARNING as c_int }
    }

    fn set(&self, param: tj::TJPARAM, value: c_int) -> Result<(), TjError> {
        // SAFETY: valid handle; tj3Set validates the parameter and value.
        if unsafe { tj::tj3Set(self.0, param as c_int, value) } != 0 {
            return Err(self.error());
        }
        Ok(())
    }

    fn get(&self, param: tj::TJPARAM) -> c_int {
        // SAFETY: valid handle.
        unsafe { tj::tj3Get(self.0, param as c_int) }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: the handle came from tj3Init and is destroyed once.
        unsafe { tj::tj3Destroy(self.0) }
    }
}

/// A decoded image: width, height and packed pixels.
pub(crate) type Decoded = (u32, u32, Vec<u8>);

/// A decompressor with the header of one JPEG already read.
pub(crate) struct Decoder<'a> {
    handle: Handle,
    data: &'a [u8],
    pub header: JpegHeader,
}

impl<'a> Decoder<'a> {
    /// Parse the JPEG's header (markers up to the first SOF/SOS); no pixel is decoded.
    pub fn new(data: &'a [u8]) -> Result<Self, TjError> {
        let handle = Handle::new(tj::TJINIT_TJINIT_DECOMPRESS)?;
        // SAFETY: valid handle, pointer/len from a live slice.
        let rc = unsafe { tj::tj3DecompressHeader(handle.0, data.as_ptr(), data.len() as tj::size_t) };
        if rc != 0 {
            return Err(handle.error());
        }
        let colorspace = match handle.get(tj::TJPARAM_TJPARAM_COLORSPACE) as u32 {
            x if x == tj::TJCS_TJCS_GRAY => JpegColorspace::Gray,
            x if x == tj::TJCS_TJCS_RGB => JpegColorspace::Rgb,
            x if x == tj::TJCS_TJCS_CMYK => JpegColorspace::Cmyk,
            x if x == tj::TJCS_TJCS_YCCK => JpegColorspace::Ycck,
            _ => JpegColorspace::YCbCr,
        };
        let header = JpegHeader {
            width: handle.get(tj::TJPARAM_TJPARAM_JPEGWIDTH).max(0) as u32,
            height: handle.get(tj::TJPARAM_TJPARAM_JPEGHEIGHT).max(0) as u32,
            colorspace,
            precision: handle.get(tj::TJPARAM_TJPARAM_PRECISION).clamp(0, 16) as u8,
            lossless: handle.get(tj::TJPARAM_TJPARAM_LOSSLESS) != 0,
        };
        Ok(Decoder { handle, data, header })
    }

    /// Cap libjpeg's working memory (MiB), image size (pixels) and progressive scans.
    pub fn set_limits(&self, max_memory_mib: u64, max_pixels: u64) -> Result<(), TjError> {
        self.handle.set(tj::TJPARAM_TJPARAM_MAXMEMORY, max_memory_mib.clamp(1, i32::MAX as u64) as c_int)?;
        self.handle.set(tj::TJPARAM_TJPARAM_MAXPIXELS, max_pixels.clamp(1, i32::MAX as u64) as c_int)?;
        // Progressive files with thousands of scans are a known CPU-exhaustion trick.
        self.handle.set(tj::TJPARAM_TJPARAM_SCANLIMIT, 500)
    }

    /// Decode at scale `num/8` (1..=8) into a packed buffer of `fmt`. A libjpeg warning is
    /// returned as an error with `warning: true` together with the (filled) buffer.
    pub fn decode(&mut self, num: u32, fmt: TjPixel) -> Result<Decoded, (TjError, Option<Decoded>)> {
        let num = num.clamp(1, 8);
        if num != 8 {
            // TurboJPEG only accepts the factors in their lowest terms (1/4, not 2/8).
            let mut g = 8;
            let mut n = num;
            while n != 0 {
                (g, n) = (n, g % n);
            }
            let factor = tj::tjscalingfactor { num: (num / g) as c_int, denom: (8 / g) as c_int };
            // SAFETY: valid handle.
            let rc = unsafe { tj::tj3SetScalingFactor(self.handle.0, factor) };
            if rc != 0 {
                return Err((self.handle.error(), None));
            }
        }
        let (w, h) = self.header.scaled_size(num);
        let pitch = w as usize * fmt.channels();
        let mut buf = vec![0u8; pitch * h as usize];
        // SAFETY: `buf` holds exactly pitch*h bytes, the size TurboJPEG writes for this scale.
        let rc = unsafe {
            tj::tj3Decompress8(
                self.handle.0,
                self.data.as_ptr(),
                self.data.len() as tj::size_t,
                buf.as_mut_ptr(),
                pitch as c_int,
                fmt.code(),
            )
        };
        if rc != 0 {
            let err = self.handle.error();
            return Err(if err.warning { (err, Some((w, h, buf))) } else { (err, None) });
        }
        Ok((w, h, buf))
    }
}

/// Encode packed RGB or grayscale pixels as a baseline JPEG (4:2:0 for colour).
pub(crate) fn encode(pixels: &[u8], width: u32, height: u32, fmt: TjPixel, quality: u8) -> Result<Vec<u8>, TjError> {
    encode_with(pixels, width, height, fmt, quality, false)
}

/// [`encode`], or with libjpeg's standard progressive script (the tests' progressive inputs).
pub(crate) fn encode_with(
    pixels: &[u8],
    width: u32,
    height: u32,
    fmt: TjPixel,
    quality: u8,
    progressive: bool,
) -> Result<Vec<u8>, TjError> {
    let handle = Handle::new(tj::TJINIT_TJINIT_COMPRESS)?;
    handle.set(tj::TJPARAM_TJPARAM_QUALITY, quality.clamp(1, 100) as c_int)?;
    handle.set(tj::TJPARAM_TJPARAM_PROGRESSIVE, c_int::from(progressive))?;
    let subsamp = if fmt == TjPixel::Gray { tj::TJSAMP_TJSAMP_GRAY } else { tj::TJSAMP_TJSAMP_420 };
    handle.set(tj::TJPARAM_TJPARAM_SUBSAMP, subsamp as c_int)?;
    let pitch = width as usize * fmt.channels();
    if pixels.len() < pitch * height as usize {
        return Err(TjError {
            message: format!("{} bytes cannot hold a {width}x{height} image", pixels.len()),
            warning: false,
        });
    }
    let mut out: *mut u8 = std::ptr::null_mut();
    let mut size: tj::size_t = 0;
    // SAFETY: `pixels` holds height rows of `pitch` bytes; TurboJPEG allocates `out`, which is
    // copied into a Vec and released with tj3Free.
    let rc = unsafe {
        tj::tj3Compress8(
            handle.0,
            pixels.as_ptr(),
            width as c_int,
            pitch as c_int,
            height as c_int,
            fmt.code(),
            &mut out,
            &mut size,
        )
    };
    let result = if rc != 0 {
        Err(handle.error())
    } else {
        // SAFETY: on success `out` points to `size` initialised bytes.
        Ok(unsafe { std::slice::from_raw_parts(out, size as usize) }.to_vec())
    };
    if !out.is_null() {
        // SAFETY: `out` was allocated by TurboJPEG.
        unsafe { tj::tj3Free(out as *mut c_void) };
    }
    result
}
