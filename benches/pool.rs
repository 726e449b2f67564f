//! get + put of a 4 KiB `Vec<u8>`: `recycle::Pool` beside the ways people do it today.
//!
//! Simulates the buffer churn of a server: take a buffer, write into it, give it back.
//! - `fresh`: allocate a new buffer every time (no pool).
//! - `mutex`: a `Mutex<Vec<Vec<u8>>>` pool.
//! - `thread_local`: a `thread_local!` stack of buffers, the practical lower bound for a
//!   per-thread cache (it cannot balance objects across threads).
//! - `recycle`: this crate.
//!
//! `2threads` runs the same loop on two threads at once against one shared pool and
//! reports the time per iteration of each thread.

use std::cell::RefCell;
use std::hint::black_box;
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

const BUF: usize = 4096;

trait BufPool: Sync {
    fn with_buf(&self, f: impl FnOnce(&mut Vec<u8>));
}

struct Fresh;
impl BufPool for Fresh {
    #[inline]
    fn with_buf(&self, f: impl FnOnce(&mut Vec<u8>)) {
        let mut buf = Vec::with_capacity(BUF);
        f(&mut buf);
    }
}

struct MutexPool(Mutex<Vec<Vec<u8>>>);
impl BufPool for MutexPool {
    #[inline]
    fn with_buf(&self, f: impl FnOnce(&mut Vec<u8>)) {
        let popped = self.0.lock().unwrap().pop();
        let mut buf = popped.unwrap_or_else(|| Vec::with_capacity(BUF));
        f(&mut buf);
        buf.clear();
        self.0.lock().unwrap().push(buf);
    }
}

thread_local! {
    static STACK: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}
struct ThreadLocalStack;
impl BufPool for ThreadLocalStack {
    #[inline]
    fn with_buf(&self, f: impl FnOnce(&mut Vec<u8>)) {
        let popped = STACK.with(|s| s.borrow_mut().pop());
        let mut buf = popped.unwrap_or_else(|| Vec::with_capacity(BUF));
        f(&mut buf);
        buf.clear();
        STACK.with(|s| s.borrow_mut().push(buf));
    }
}

impl BufPool for recycle::Pool<Vec<u8>> {
    #[inline]
    fn with_buf(&self, f: impl FnOnce(&mut Vec<u8>)) {
        f(&mut self.get());
    }
}

#[inline]
fn work(buf: &mut Vec<u8>) {
    buf.push(1);
    black_box(buf);
}

fn run(pool: &impl BufPool, iters: u64) {
    for _ in 0..iters {
        pool.with_buf(work);
    }
}

fn on_threads(pool: &impl BufPool, threads: usize, iters: u64) -> Duration {
    let barrier = Barrier::new(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    let start = Instant::now();
                    run(pool, iters);
                    start.elapsed()
                })
            })
            .collect();
        let total: Duration = handles.into_iter().map(|h| h.join().unwrap()).sum();
        total / threads as u32
    })
}

fn bench<P: BufPool>(c: &mut Criterion, name: &str, pool: P) {
    c.benchmark_group("pool/get_put/1thread")
        .throughput(Throughput::Elements(1))
        .bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| pool.with_buf(work))
        });
    c.benchmark_group("pool/get_put/2threads")
        .throughput(Throughput::Elements(1))
        .bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter_custom(|iters| on_threads(&pool, 2, iters))
        });
}

fn pool(c: &mut Criterion) {
    bench(c, "fresh", Fresh);
    bench(c, "mutex", MutexPool(Mutex::new(Vec::new())));
    bench(c, "thread_local", ThreadLocalStack);
    bench(c, "recycle", recycle::Pool::new(|| Vec::with_capacity(BUF)));
}

criterion_group!(benches, pool);
criterion_main!(benches);
