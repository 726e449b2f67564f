//! Writing a status line allocates nothing once warm, for registered codes and for
//! codes without a registered reason (which are never cached, so they are written piece
//! by piece). Its own test binary: the counting allocator is process-wide.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use recycle_pool::status::{StatusLines, Version};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: delegates every call to `System` unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller upholds `GlobalAlloc::dealloc`'s contract.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        // SAFETY: the caller upholds `GlobalAlloc::realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn writing_status_lines_allocates_nothing_once_warm() {
    let lines = StatusLines::new();
    let mut reader = lines.reader();
    let mut out = Vec::with_capacity(64 * 1024);
    // 404 has a reason (cached on first use); 299 and 599 have none (never cached).
    let codes = [200, 404, 299, 599, 420];
    for &code in &codes {
        lines.write_line(code, Version::Http11, &mut out).unwrap();
        reader.write_line(code, Version::Http10, &mut out).unwrap();
    }
    out.clear();
    let before = ALLOCS.load(Relaxed);
    for _ in 0..100 {
        for &code in &codes {
            lines.write_line(code, Version::Http11, &mut out).unwrap();
            reader.write_line(code, Version::Http10, &mut out).unwrap();
        }
    }
    let allocations = ALLOCS.load(Relaxed) - before;
    assert_eq!(allocations, 0, "allocations across 1,000 status lines");
    assert!(out.starts_with(b"HTTP/1.1 200 OK\r\nHTTP/1.0 200 OK\r\nHTTP/1.1 404 Not Found\r\n"));
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("HTTP/1.1 299 Success\r\nHTTP/1.0 299 Success\r\n"));
    assert!(text.contains("HTTP/1.1 599 Server Error\r\n"));
}
