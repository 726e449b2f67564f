//! Allocations per freeze/drop cycle once the pool is warm, under a counting allocator
//! (one test in this binary, so nothing else allocates meanwhile).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use bytes::BytesMut;
use recycle_pool::Pool;
use recycle_pool::sized::SizedPool;

struct Counting;
static ALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

// SAFETY: delegates to `System`, only counting on the way.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(layout.size() as u64, Relaxed);
        // SAFETY: the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller upholds `dealloc`'s contract.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(new_size as u64, Relaxed);
        // SAFETY: the caller upholds `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations and bytes per run of `op`, after `op` ran once to warm up.
fn per_cycle(mut op: impl FnMut()) -> (u64, u64) {
    op();
    let (a, b) = (ALLOCS.load(Relaxed), BYTES.load(Relaxed));
    for _ in 0..1000 {
        op();
    }
    (
        (ALLOCS.load(Relaxed) - a) / 1000,
        (BYTES.load(Relaxed) - b) / 1000,
    )
}

#[test]
fn allocations_per_cycle_once_warm() {
    let payload = [7u8; 3000];

    // A pooled Vec frozen into Bytes: the buffer is reused; Bytes::from_owner boxes its
    // shared header, one small allocation per freeze (the floor `bytes` allows).
    let pool = Arc::new(Pool::new(|| Vec::<u8>::with_capacity(4096)));
    let (allocs, bytes) = per_cycle(|| {
        let mut buf = pool.get_owned();
        buf.extend_from_slice(&payload);
        let frozen = buf.freeze();
        let clone = frozen.slice(100..);
        drop(frozen);
        assert_eq!(clone.len(), 2900);
    });
    assert_eq!(allocs, 1, "one header per freeze");
    assert!(bytes < 128, "the header only, never the buffer: {bytes} B");

    // The same through a SizedPool.
    let sized = Arc::new(SizedPool::new());
    let (allocs, bytes) = per_cycle(|| {
        let mut buf = sized.get_owned(3000);
        buf.extend_from_slice(&payload);
        drop(buf.freeze().clone());
    });
    assert_eq!(allocs, 1, "one header per freeze");
    assert!(bytes < 128, "{bytes} B");

    // A plain get and return from a SizedPool: nothing at all.
    let (allocs, _) = per_cycle(|| {
        let mut buf = sized.get(3000);
        buf.extend_from_slice(&payload);
    });
    assert_eq!(allocs, 0);

    // A pooled BytesMut, split and frozen (no owner: the storage is shared), then the
    // handle's reserve reclaims it once the frozen part dropped: nothing either.
    let mutable = Pool::new(|| BytesMut::with_capacity(4096));
    let (allocs, _) = per_cycle(|| {
        let mut buf = mutable.get();
        buf.reserve(4096);
        buf.extend_from_slice(&payload);
        let frozen = buf.split().freeze();
        assert_eq!(frozen.len(), 3000);
    });
    assert_eq!(allocs, 0);
}
