//! The renditions engine of offloader: image bytes in, metadata and rendition bytes out.
//!
//! It knows nothing of queues or object stores. [`process`] reads the headers (refusing
//! decompression bombs before any pixel is decoded), decodes once — JPEGs with libjpeg-turbo's
//! DCT-domain downscaling when the renditions are much smaller than the photo, and high-quality
//! progressive ones without the last-bit refinement scans that such a shrink cannot show
//! ([`Tuning::skip_lsb_refinement`]) — applies the EXIF
//! orientation, and makes each rendition from the previous, larger one with a SIMD Lanczos3
//! resampler, then encodes them. PDFs (first page) and videos (a frame from the middle) are
//! rendered by poppler's and ffmpeg's programs, run with a time limit, and then go the same way
//! (`external.rs`); so do HEIC and AVIF photos, decoded by libheif's `heif-convert`
//! (`heif.rs`). Camera raws are rendered from the JPEG preview they embed (`raw.rs`). Every
//! failure is a typed [`EngineError`]; no input makes it panic.
//!
//! ```no_run
//! use offloader_renditions::{process, Limits, RenditionSpec};
//! let bytes = std::fs::read("photo.jpg").unwrap();
//! let out = process(&bytes, &RenditionSpec::aem_defaults(), &Limits::default()).unwrap();
//! for r in &out.renditions {
//!     println!("{} {}x{} {} bytes", r.name, r.width, r.height, r.bytes.len());
//! }
//! ```

mod decode;
mod embedded;
mod encode;
mod error;
mod exif_fields;
mod external;
mod heif;
mod jpeg;
mod limits;
pub mod media;
mod metadata;
mod pipeline;
mod pixels;
mod probe;
mod psd;
pub mod quality;
mod raw;
mod resize;
mod scans;
mod sniff;
mod spec;
#[doc(hidden)]
pub mod synth;
mod tiff_ifd;

pub use embedded::{Iptc, Xmp};
pub use error::EngineError;
pub use limits::Limits;
pub use media::{sniff_mime, MediaType, SNIFF_LEN};
pub use metadata::{ColorType, DocumentInfo, ExifData, ImageFormat, Metadata, VideoInfo};
pub use pipeline::{render_with, Tuning};
pub use pixels::{Layout, RawImage};
pub use resize::Filter;
pub use spec::{fit_inside, Format, RenditionSpec, DEFAULT_JPEG_QUALITY};

/// One produced rendition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendition {
    /// The spec's name, e.g. `cq5dam.web.1280.1280.jpeg`.
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub mime_type: &'static str,
    /// The encoded file.
    pub bytes: Vec<u8>,
}

/// The result of [`process`]: the metadata and one rendition per spec, in the specs' order.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    pub metadata: Metadata,
    pub renditions: Vec<Rendition>,
}

/// Encode already decoded pixels as `spec` says (its box is ignored: no resize). For callers
/// that make pixels themselves, and for tests that need large inputs fast.
pub fn encode_pixels(img: &RawImage, spec: &RenditionSpec) -> Result<Vec<u8>, EngineError> {
    encode::encode(img, spec)
}

/// Read an image's metadata from its headers, without decoding pixels. Refuses inputs over the
/// limits like [`process`] does.
pub fn extract_metadata(input: &[u8], limits: &Limits) -> Result<Metadata, EngineError> {
    match MediaType::sniff(input, None) {
        // Their metadata comes with the rendered page, frame or preview, at the size of a
        // thumbnail.
        Some(kind) if kind == MediaType::Pdf || kind.is_video() || rendered_for_metadata(kind) => {
            let thumb = [RenditionSpec::new("metadata", 48, 48, Format::Png)];
            process(input, &thumb, limits).map(|out| out.metadata)
        }
        _ => probe::probe(input, limits),
    }
}

/// HEIF (decoded by a program, at full size) and camera raws (from their preview): their
/// metadata is read on the way to a rendered image.
fn rendered_for_metadata(kind: MediaType) -> bool {
    matches!(kind, MediaType::Heic | MediaType::Avif | MediaType::CameraRaw(_))
}

/// Produce the metadata and every rendition of `specs` from an encoded image.
pub fn process(input: &[u8], specs: &[RenditionSpec], limits: &Limits) -> Result<Output, EngineError> {
    process_with(input, specs, limits, &Tuning::default())
}

/// [`process`] with explicit [`Tuning`].
pub fn process_with(
    input: &[u8],
    specs: &[RenditionSpec],
    limits: &Limits,
    tuning: &Tuning,
) -> Result<Output, EngineError> {
    limits.check_input_size(input)?;
    let (metadata, images) = match MediaType::sniff(input, None) {
        Some(MediaType::Pdf) => return external::pdf(input, specs, limits, tuning),
        Some(kind) if kind.is_video() => return external::video(input, kind, specs, limits, tuning),
        Some(MediaType::Heic) => heif::render(input, ImageFormat::Heic, specs, limits, tuning)?,
        Some(MediaType::Avif) => heif::render(input, ImageFormat::Avif, specs, limits, tuning)?,
        _ => match media::camera_raw(input) {
            Some(format) => raw::render(input, format, specs, limits, tuning)?,
            None => render_with(input, specs, limits, tuning)?,
        },
    };
    let renditions = specs
        .iter()
        .zip(images)
        .map(|(spec, img)| {
            Ok(Rendition {
                bytes: encode::encode(&img, spec)?,
                name: spec.name.clone(),
                width: img.width,
                height: img.height,
                mime_type: spec.format.mime_type(),
            })
        })
        .collect::<Result<Vec<_>, EngineError>>()?;
    Ok(Output { metadata, renditions })
}
