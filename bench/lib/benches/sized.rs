//! Byte buffers of mixed sizes: `SizedPool` (with and without calibration) against one
//! `Pool<Vec<u8>>` for every size and a fresh allocation per use.
//!
//! The workload: sizes from a heavy-tailed distribution, 64 B to 1 MiB: the class
//! (64 B × 2^k, k = 0..=14) is geometric with ratio 0.6 (k = 0 with probability 0.4,
//! each next class 0.6 times as likely), the size uniform within the class. Measured
//! over the 65,536 sizes: 40.1% are at most 128 B, 92.1% at most 2 KiB, 2.7% above
//! 8 KiB, and one in 683 is 512 KiB or more; 3,160 B on average. One op is a get of `n` bytes, filling them (`extend_from_slice`), and the
//! return.
//!
//! Printed before the timings, per variant (counting allocator):
//! - allocations per op over 100,000 ops once warm;
//! - the heap held after "a burst, then normal traffic": 64 requests of 1 MiB held at
//!   once, then 200,000 ops of the mixed workload, no `trim` (the live heap bytes the
//!   variant keeps, against the same before the burst; and the process's RSS after
//!   `malloc_trim`, each variant's pool dropped before the next one is made).
//!
//! Then `sized/counting`: what calibration's counting costs on two threads at once —
//! one shared `AtomicU64` bumped per call (what bytebufferpool does), per-thread
//! counters, and the real thing: a 512 B get+return on two threads, `SizedPool`
//! calibrated (a read of the class's per-thread get counter) against uncalibrated
//! (none).

use std::hint::black_box;
use std::sync::Barrier;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use recycle_pool::Pool;
use recycle_pool::sized::SizedPool;

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

#[global_allocator]
static GLOBAL: counting_alloc::Counting = counting_alloc::Counting;

const OPS: usize = 1 << 16;
const MAX: usize = 1 << 20;

/// The sizes, from a fixed-seed xorshift so every variant and run sees the same.
fn workload() -> Vec<usize> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..OPS)
        .map(|_| {
            let mut k = 0;
            while k < 14 && next() % 10 < 6 {
                k += 1;
            }
            let low = 64usize << k;
            (low + (next() as usize % low)).min(MAX)
        })
        .collect()
}

enum Variant {
    Fresh,
    OnePool(Box<Pool<Vec<u8>>>),
    Sized(Box<SizedPool>),
}

impl Variant {
    fn all() -> Vec<(&'static str, Variant)> {
        vec![
            ("fresh", Variant::Fresh),
            ("one_pool", Variant::OnePool(Box::new(Pool::new(Vec::new)))),
            (
                "sized_uncalibrated",
                Variant::Sized(Box::new(SizedPool::builder().calibrate(false).build())),
            ),
            (
                "sized_calibrated",
                Variant::Sized(Box::new(SizedPool::new())),
            ),
        ]
    }

    #[inline]
    fn op(&self, n: usize, src: &[u8]) {
        match self {
            Variant::Fresh => {
                let mut buf = Vec::with_capacity(n);
                buf.extend_from_slice(&src[..n]);
                black_box(&buf);
            }
            Variant::OnePool(pool) => {
                let mut buf = pool.get();
                buf.reserve(n);
                buf.extend_from_slice(&src[..n]);
                black_box(&*buf);
            }
            Variant::Sized(pool) => {
                let mut buf = pool.get(n);
                buf.extend_from_slice(&src[..n]);
                black_box(&*buf);
            }
        }
    }

    /// The burst: 64 requests of 1 MiB held at once.
    fn burst(&self, src: &[u8]) {
        match self {
            Variant::Fresh => {
                let held: Vec<Vec<u8>> = (0..64).map(|_| src.to_vec()).collect();
                black_box(&held);
            }
            Variant::OnePool(pool) => {
                let held: Vec<_> = (0..64)
                    .map(|_| {
                        let mut b = pool.get();
                        b.extend_from_slice(src);
                        b
                    })
                    .collect();
                black_box(&held);
            }
            Variant::Sized(pool) => {
                let held: Vec<_> = (0..64)
                    .map(|_| {
                        let mut b = pool.get(MAX);
                        b.extend_from_slice(src);
                        b
                    })
                    .collect();
                black_box(&held);
            }
        }
    }
}

/// Resident set size, after giving glibc's free memory back to the kernel.
fn rss_after_trim() -> u64 {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        unsafe extern "C" {
            fn malloc_trim(pad: usize) -> i32;
        }
        // SAFETY: glibc's malloc_trim takes a size and touches only the allocator's own
        // free lists.
        unsafe { malloc_trim(0) };
    }
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

fn sized(c: &mut Criterion) {
    let sizes = workload();
    let src = vec![0xA5u8; MAX];
    let mut group = c.benchmark_group("sized/mixed");
    let variants = Variant::all();
    // What the process holds besides the variants' buffers (each variant is dropped
    // before the next runs).
    let baseline = counting_alloc::live_bytes() as f64;
    for (name, variant) in variants {
        // Allocations per op once warm.
        for &n in &sizes {
            variant.op(n, &src);
        }
        let mut i = 0;
        let (allocs, bytes) = counting_alloc::per_op(100_000, || {
            variant.op(sizes[i % OPS], &src);
            i += 1;
        });
        // Normal traffic, then the burst, then normal traffic.
        let before = counting_alloc::live_bytes();
        let rss_before = rss_after_trim();
        variant.burst(&src);
        for k in 0..200_000 {
            variant.op(sizes[k % OPS], &src);
        }
        let after = counting_alloc::live_bytes() as f64;
        let rss = rss_after_trim() as f64 - rss_before as f64;
        let mib = (1 << 20) as f64;
        println!(
            "sized/mixed/{name}: {allocs:.3} allocs/op, {bytes:.0} B/op allocated; \
             held {:.2} MiB warm, {:.2} MiB after a 64 MiB burst and 200,000 ops \
             (RSS {:+.1} MiB)",
            (before as f64 - baseline) / mib,
            (after - baseline) / mib,
            rss / mib
        );
        if let Variant::Sized(pool) = &variant {
            let s = pool.stats();
            println!(
                "sized/mixed/{name}: default {} B, ceiling {} B, {} calibrations, idle {} B",
                s.default_size,
                s.ceiling,
                s.calibrations,
                s.idle_bytes()
            );
        }
        let mut k = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                variant.op(sizes[k % OPS], &src);
                k += 1;
            })
        });
        drop(variant);
    }
    group.finish();

    let mut group = c.benchmark_group("sized/counting");
    let shared = AtomicU64::new(0);
    group.bench_function("shared_atomic_2_threads", |b| {
        b.iter_custom(|iters| on_two_threads(iters, |_| shared.fetch_add(1, Relaxed)))
    });
    let per_thread = [
        crossbeam_utils::CachePadded::new(AtomicU64::new(0)),
        crossbeam_utils::CachePadded::new(AtomicU64::new(0)),
    ];
    group.bench_function("per_thread_2_threads", |b| {
        b.iter_custom(|iters| {
            on_two_threads(iters, |t| {
                // Single writer: a load and a store, as the pool's counters.
                let c = &per_thread[t];
                c.store(c.load(Relaxed) + 1, Relaxed);
                0
            })
        })
    });
    for (name, pool) in [
        (
            "get_return_512_uncalibrated_2_threads",
            SizedPool::builder().calibrate(false).build(),
        ),
        ("get_return_512_calibrated_2_threads", SizedPool::new()),
    ] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                on_two_threads(iters, |_| {
                    let mut buf = pool.get(512);
                    buf.push(1);
                    black_box(&*buf);
                    0
                })
            })
        });
    }
    group.finish();
}

/// Runs `op` `iters` times on each of two threads released together; the time is the
/// slower thread's per-op time times `iters` (so ns/op is per op per thread).
fn on_two_threads(iters: u64, op: impl Fn(usize) -> u64 + Sync) -> Duration {
    let barrier = Barrier::new(2);
    let times: Vec<Duration> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|t| {
                let (barrier, op) = (&barrier, &op);
                s.spawn(move || {
                    barrier.wait();
                    let start = Instant::now();
                    for _ in 0..iters {
                        black_box(op(t));
                    }
                    start.elapsed()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    times.into_iter().max().unwrap()
}

criterion_group!(benches, sized);
criterion_main!(benches);
