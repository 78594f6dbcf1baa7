//! The engine's typed errors, and the mapping of each decoder's own errors onto them.

use thiserror::Error;

use crate::jpeg::TjError;
use crate::metadata::ImageFormat;

/// Why the engine refused or failed an input. Every variant is a clear, recordable reason; none
/// is raised by a panic or after a large allocation.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum EngineError {
    /// The input is not an image format the engine reads (`what` names the format or the first
    /// bytes seen).
    #[error("unsupported input: {what}")]
    Unsupported { what: String },

    /// The image's header claims more pixels than allowed: refused before decoding.
    #[error("image too large: {width}x{height} exceeds the limit of {max_pixels} pixels")]
    TooLarge { width: u32, height: u32, max_pixels: u64 },

    /// The input has more bytes than allowed.
    #[error("input too large: {size} bytes exceeds the limit of {max_input_bytes} bytes")]
    InputTooLarge { size: u64, max_input_bytes: u64 },

    /// Decoding would need more memory than allowed.
    #[error("over the memory budget of {max_alloc} bytes (the worker's --max-memory): {detail}")]
    AllocLimit { max_alloc: u64, detail: String },

    /// The data ends before the image does.
    #[error("truncated {format} image: {detail}")]
    Truncated { format: String, detail: String },

    /// The data is not a valid image of its format.
    #[error("corrupt {format} image: {detail}")]
    Corrupt { format: String, detail: String },

    /// A rendition spec cannot be honoured (zero-sized box, bad quality, ...).
    #[error("invalid rendition spec {name:?}: {detail}")]
    InvalidSpec { name: String, detail: String },

    /// Encoding a rendition failed.
    #[error("encoding rendition {name:?} failed: {detail}")]
    Encode { name: String, detail: String },

    /// Resampling failed (an engine bug rather than a bad input; reported, never a panic).
    #[error("resizing failed: {detail}")]
    Resize { detail: String },

    /// An external program (PDF, video) ran past its time limit and was killed.
    #[error("{tool} did not finish within {secs} s and was stopped")]
    Timeout { tool: String, secs: u64 },

    /// The engine's own file or process handling failed (a full disk, no temporary directory).
    #[error("engine I/O failed: {detail}")]
    Io { detail: String },

    /// An external program the format needs is not installed on this machine.
    #[error("{tool} is not installed on this worker (Debian package {package}; scripts/services installs it)")]
    ToolMissing { tool: String, package: String },
}

impl EngineError {
    pub(crate) fn corrupt(format: &str, detail: impl Into<String>) -> Self {
        EngineError::Corrupt { format: format.to_string(), detail: detail.into() }
    }

    pub(crate) fn truncated(format: &str, detail: impl Into<String>) -> Self {
        EngineError::Truncated { format: format.to_string(), detail: detail.into() }
    }

    /// A short stable code for logs, metrics and job results.
    pub fn code(&self) -> &'static str {
        match self {
            EngineError::Unsupported { .. } => "unsupported",
            EngineError::TooLarge { .. } => "too_large",
            EngineError::InputTooLarge { .. } => "input_too_large",
            EngineError::AllocLimit { .. } => "alloc_limit",
            EngineError::Truncated { .. } => "truncated",
            EngineError::Corrupt { .. } => "corrupt",
            EngineError::InvalidSpec { .. } => "invalid_spec",
            EngineError::Encode { .. } => "encode",
            EngineError::Resize { .. } => "resize",
            EngineError::Timeout { .. } => "timeout",
            EngineError::Io { .. } => "io",
            EngineError::ToolMissing { .. } => "tool_missing",
        }
    }
}

/// Map a libjpeg-turbo message onto the engine's errors (libjpeg reports by message only).
pub(crate) fn from_jpeg(err: &TjError, max_alloc: u64) -> EngineError {
    let m = err.message.to_ascii_lowercase();
    if m.contains("premature end") || m.contains("insufficient data") {
        EngineError::truncated("jpeg", err.message.clone())
    } else if m.contains("12-bit") || m.contains("data precision") || m.contains("unsupported") {
        EngineError::Unsupported { what: format!("jpeg: {}", err.message) }
    } else if m.contains("too large") || m.contains("memory") || m.contains("backing store") {
        EngineError::AllocLimit { max_alloc, detail: err.message.clone() }
    } else {
        EngineError::corrupt("jpeg", err.message.clone())
    }
}

/// Map an `image` crate error (GIF, WebP, TIFF, BMP, PNG pixels) onto the engine's errors.
pub(crate) fn from_image(format: ImageFormat, max_alloc: u64, err: image::ImageError) -> EngineError {
    use image::ImageError as E;
    let name = format.name();
    match err {
        E::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => EngineError::truncated(name, e.to_string()),
        E::Limits(e) => EngineError::AllocLimit { max_alloc, detail: e.to_string() },
        E::Unsupported(e) => EngineError::Unsupported { what: format!("{name}: {e}") },
        other => {
            let msg = other.to_string();
            let lower = msg.to_ascii_lowercase();
            if lower.contains("eof") || lower.contains("end of") || lower.contains("truncated") {
                EngineError::truncated(name, msg)
            } else {
                EngineError::corrupt(name, msg)
            }
        }
    }
}

/// Map a `png` error (header or pixels) onto the engine's errors.
pub(crate) fn from_png(e: png::DecodingError, max_alloc: u64) -> EngineError {
    match e {
        png::DecodingError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            EngineError::truncated("png", io.to_string())
        }
        png::DecodingError::LimitsExceeded => {
            EngineError::AllocLimit { max_alloc, detail: "png decoder limits".into() }
        }
        other => {
            let msg = other.to_string();
            let lower = msg.to_ascii_lowercase();
            if lower.contains("eof") || lower.contains("end of") || lower.contains("no more data") {
                EngineError::truncated("png", msg)
            } else {
                EngineError::corrupt("png", msg)
            }
        }
    }
}
