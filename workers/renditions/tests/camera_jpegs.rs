//! Camera-size JPEGs (100.8 and 151 megapixels) get every rendition within a memory budget: the
//! budget counts what is decoded (shrunk on load), not the file's pixel count. This test binary
//! counts every Rust heap allocation (libjpeg-turbo's own working memory is capped separately,
//! by `TJPARAM_MAXMEMORY` from the same budget).

use std::sync::atomic::Ordering;

use offloader_renditions::synth::grey_jpeg;
use offloader_renditions::{process, Limits, RenditionSpec};

mod counting_alloc;
use counting_alloc::{CURRENT, PEAK};

/// One test, so no other test's allocations land in the peak.
#[test]
fn camera_size_jpegs_get_all_renditions_within_a_small_budget() {
    // A 64 MiB budget: far below the 302 MB and 454 MB these photos take at full size.
    let limits = Limits { max_alloc: 64 << 20, ..Limits::default() };
    let specs = RenditionSpec::aem_defaults();
    for (w, h, web) in [(12000u16, 8400u16, (1280, 896)), (14204, 10652, (1280, 960))] {
        let input = grey_jpeg(w, h);
        let before = CURRENT.load(Ordering::SeqCst);
        PEAK.store(before, Ordering::SeqCst);
        let out = process(&input, &specs, &limits).unwrap_or_else(|e| panic!("{w}x{h}: {e}"));
        let extra = PEAK.load(Ordering::SeqCst) - before;
        assert_eq!((out.metadata.width, out.metadata.height), (u32::from(w), u32::from(h)));
        let sizes: Vec<(u32, u32)> = out.renditions.iter().map(|r| (r.width, r.height)).collect();
        assert_eq!(sizes.len(), 4, "{sizes:?}");
        assert_eq!(sizes[3], web, "the web rendition of {w}x{h}");
        assert_eq!(sizes[0].0, 48, "{sizes:?}");
        // 1/4 scale: 3000x2100 (or 3551x2663) RGB, about 19 or 28 MB, plus the renditions.
        assert!(extra < 48 << 20, "{w}x{h}: peak extra allocation {extra} bytes");
        assert!(extra < usize::from(w) * usize::from(h), "less than one byte per stored pixel");
    }
}
