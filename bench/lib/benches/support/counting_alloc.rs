//! A global allocator that counts allocations and bytes, for benchmarks that report
//! allocations per operation. Included with `#[path]` by the benches that need it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Counts every allocation and reallocation, then delegates to `System`.
pub(crate) struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);
static LIVE: AtomicU64 = AtomicU64::new(0);

/// Heap bytes allocated and not yet freed, process-wide.
#[allow(dead_code)] // not every bench reads it
pub(crate) fn live_bytes() -> u64 {
    LIVE.load(Relaxed)
}

/// Allocations and bytes allocated so far, process-wide.
fn snapshot() -> (u64, u64) {
    (ALLOCS.load(Relaxed), BYTES.load(Relaxed))
}

/// Runs `op` `n` times and returns the allocations and bytes per run.
pub(crate) fn per_op(n: u64, mut op: impl FnMut()) -> (f64, f64) {
    let (allocs, bytes) = snapshot();
    for _ in 0..n {
        op();
    }
    let (allocs_after, bytes_after) = snapshot();
    (
        (allocs_after - allocs) as f64 / n as f64,
        (bytes_after - bytes) as f64 / n as f64,
    )
}

// SAFETY: delegates to `System`, only counting on the way.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(layout.size() as u64, Relaxed);
        LIVE.fetch_add(layout.size() as u64, Relaxed);
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as u64, Relaxed);
        // SAFETY: the caller upholds `GlobalAlloc::dealloc`'s contract.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(new_size as u64, Relaxed);
        LIVE.fetch_add(new_size as u64, Relaxed);
        LIVE.fetch_sub(layout.size() as u64, Relaxed);
        // SAFETY: the caller upholds `GlobalAlloc::realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}
