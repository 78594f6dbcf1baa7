//! A 50000x50000 PNG bomb is refused with bounded memory: this test binary counts every heap
//! allocation, and refusing the bomb may not allocate more than a few MiB at its peak.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use offloader_renditions::{process, EngineError, Limits, RenditionSpec};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged to the system allocator.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = CURRENT.fetch_add(layout.size(), Ordering::SeqCst) + layout.size();
            PEAK.fetch_max(now, Ordering::SeqCst);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::SeqCst);
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

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
