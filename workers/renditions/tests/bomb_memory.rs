//! A 50000x50000 PNG bomb is refused with bounded memory: this test binary counts every heap
//! allocation, and refusing the bomb may not allocate more than a few MiB at its peak.

mod common;

use std::sync::atomic::Ordering;

use offloader_renditions::{process, EngineError, Limits, RenditionSpec};

mod counting_alloc;
use counting_alloc::{CURRENT, PEAK};

#[test]
fn png_bomb_is_refused_with_bounded_memory() {
    let bomb = common::png_bomb(50_000);
    let specs = RenditionSpec::aem_defaults();
    let before = CURRENT.load(Ordering::SeqCst);
    PEAK.store(before, Ordering::SeqCst);
    let result = process(&bomb, &specs, &Limits::default());
    let extra = PEAK.load(Ordering::SeqCst) - before;
    assert!(matches!(result, Err(EngineError::TooLarge { .. })), "{result:?}");
    // 2.5 gigapixels would need 2.5 GB at 8 bits; refusing it takes a few KiB.
    assert!(extra < 4 << 20, "peak extra allocation {extra} bytes");
}
