//! Issue 19, item 2: what the sweep after a trim costs beside dropping the same objects.
//!
//! - `drop`: drop a `Vec` of N idle objects (each a `Vec<u8>` of 64 bytes' capacity):
//!   what freeing them costs at the least.
//! - `sweep`: a thread's cache holds the same N objects, idle through one trim; the
//!   timed call is the second `Pool::trim`, which sweeps the calling thread's cache and
//!   frees all N. (Another thread's cache is swept by that thread's next `get` or
//!   return, with the same code.)
//!
//! Each is timed per object at N = 1,024, 16,384 and 65,536 (`thread_cache(N)`); the
//! goal is a sweep within 2x of the drop at every N (a sweep that moved the rest of the
//! stack down once per freed object was quadratic: 12 µs per object at 65,536).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use recycle_pool::Pool;

fn object() -> Vec<u8> {
    Vec::with_capacity(64)
}

/// Times `iters` drops of N objects made fresh (untimed) each time.
fn drop_n(n: usize, iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let objects: Vec<Vec<u8>> = (0..n).map(|_| black_box(object())).collect();
        let start = Instant::now();
        drop(black_box(objects));
        total += start.elapsed();
    }
    total
}

/// Times `iters` sweeps of N stale objects out of this thread's cache.
fn sweep_n(n: usize, iters: u64) -> Duration {
    let pool = Pool::builder(object).thread_cache(n).max_idle(0).build();
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let held: Vec<_> = (0..n).map(|_| pool.get()).collect();
        drop(held); // N idle in this thread's cache (made fresh the first time)
        pool.trim(); // idle through one trim: kept
        assert_eq!(pool.stats().idle, n);
        let start = Instant::now();
        pool.trim(); // idle through two: this call sweeps all N
        total += start.elapsed();
        assert_eq!(pool.stats().idle, 0);
    }
    total
}

fn main() {
    let mut c = Criterion::default().sample_size(10).configure_from_args();
    for n in [1 << 10, 1 << 14, 1 << 16] {
        let mut group = c.benchmark_group(format!("sweep/{n}"));
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::from_parameter("drop"), |b| {
            b.iter_custom(|iters| drop_n(n, iters))
        });
        group.bench_function(BenchmarkId::from_parameter("sweep"), |b| {
            b.iter_custom(|iters| sweep_n(n, iters))
        });
        group.finish();
    }
    c.final_summary();
}
