use thiserror::Error;

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
    TooLarge {
        width: u32,
        height: u32,
        max_pixels: u64,
    },

    /// The input has more bytes than allowed.
    #[error("input too large: {size} bytes exceeds the limit of {max_input_bytes} bytes")]
    InputTooLarge { size: u64, max_input_bytes: u64 },

    /// Decoding would need more memory than allowed.
    #[error("decoding would exceed the memory limit of {max_alloc} bytes: {detail}")]
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
}

impl EngineError {
    pub(crate) fn corrupt(format: &str, detail: impl Into<String>) -> Self {
        EngineError::Corrupt {
            format: format.to_string(),
            detail: detail.into(),
        }
    }

    pub(crate) fn truncated(format: &str, detail: impl Into<String>) -> Self {
        EngineError::Truncated {
            format: format.to_string(),
            detail: detail.into(),
        }
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
        }
    }
}
