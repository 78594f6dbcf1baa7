//! Hard limits against decompression bombs and oversized inputs.
//!
//! Every limit is checked from what the headers claim, *before* the allocation it protects, so
//! a 50000x50000 PNG costs a few hundred bytes of parsing, not gigabytes.

use serde::{Deserialize, Serialize};

use crate::EngineError;

/// Hard limits applied to every input, checked before any large allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// Largest image accepted, in pixels (width x height as stored), read from the header. A
    /// cap on the *work* (every pixel is entropy-decoded, even when shrunk on load), not on
    /// memory: memory is bounded by `max_alloc`.
    pub max_pixels: u64,
    /// Largest input accepted, in bytes.
    pub max_input_bytes: u64,
    /// The memory budget of a decode, in bytes (the worker's `--max-memory`): the pixels
    /// actually decoded (a JPEG shrunk on load counts at its shrunk size) plus the decoder's
    /// own working memory. An image that cannot be decoded within it is refused before the
    /// allocation.
    pub max_alloc: u64,
    /// Longest an external program (`pdftoppm`, `pdfinfo`, `ffmpeg`, `ffprobe`, `heif-convert`)
    /// may run for one call, in seconds; past it the program is killed and the input refused.
    pub tool_timeout_secs: u64,
}

impl Default for Limits {
    /// 1 gigapixel, 256 MiB of input, a 1 GiB memory budget, 60 s per external program. A 151-megapixel camera JPEG fits
    /// (shrunk on load to the renditions' scale); a 20000x20000 PNG (1.2 GB decoded) does not.
    fn default() -> Self {
        Limits { max_pixels: 1_000_000_000, max_input_bytes: 256 << 20, max_alloc: 1 << 30, tool_timeout_secs: 60 }
    }
}

impl Limits {
    pub(crate) fn check_input_size(&self, input: &[u8]) -> Result<(), EngineError> {
        if input.len() as u64 > self.max_input_bytes {
            return Err(EngineError::InputTooLarge { size: input.len() as u64, max_input_bytes: self.max_input_bytes });
        }
        Ok(())
    }

    pub(crate) fn check_pixels(&self, width: u32, height: u32) -> Result<(), EngineError> {
        if width as u64 * height as u64 > self.max_pixels {
            return Err(EngineError::TooLarge { width, height, max_pixels: self.max_pixels });
        }
        Ok(())
    }

    /// Refuse a buffer of `bytes` (described by `what`) larger than `max_alloc`.
    pub(crate) fn check_alloc(&self, bytes: u64, what: impl FnOnce() -> String) -> Result<(), EngineError> {
        if bytes > self.max_alloc {
            return Err(EngineError::AllocLimit { max_alloc: self.max_alloc, detail: what() });
        }
        Ok(())
    }
}
