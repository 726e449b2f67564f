//! The hit path of a status-line cache: append `"HTTP/1.1 200 OK\r\n"` (cycling through
//! four common codes) to a response buffer, as a server does for every response.
//!
//! - `static_match`: a `match` on a static table, the practical lower bound.
//! - `static_table`: a static array indexed at run time (a run-time-length copy).
//! - `recycle`: `StatusLines::write_line` (lock-free reads through `arc_swap`).
//! - `recycle_reader`: a `LineReader` per thread (one relaxed load per line).
//! - `rwlock_map`: Go's design, an `RwLock<HashMap<(u16, Version), Vec<u8>>>`.
//! - `format`: `write!` each time, no cache.
//!
//! `2threads` runs the loop on two threads at once against one shared cache and reports
//! the time per line of each thread.

use std::collections::HashMap;
use std::hint::black_box;
use std::io::Write;
use std::sync::{Barrier, RwLock};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use recycle::status::{StatusLines, Version, reason};

const CODES: [u16; 4] = [200, 404, 304, 500];

trait Lines: Sync {
    fn write_line(&self, code: u16, out: &mut Vec<u8>);
}

struct StaticMatch;
impl Lines for StaticMatch {
    #[inline]
    fn write_line(&self, code: u16, out: &mut Vec<u8>) {
        let line: &[u8] = match code {
            200 => b"HTTP/1.1 200 OK\r\n",
            304 => b"HTTP/1.1 304 Not Modified\r\n",
            404 => b"HTTP/1.1 404 Not Found\r\n",
            500 => b"HTTP/1.1 500 Internal Server Error\r\n",
            _ => unreachable!(),
        };
        out.extend_from_slice(line);
    }
}

/// The same four lines in a static array indexed at run time: the copy has a run-time
/// length, as any cache's does, where `static_match`'s lengths are compile-time constants.
struct StaticTable;
static TABLE: [&[u8]; 4] = [
    b"HTTP/1.1 200 OK\r\n",
    b"HTTP/1.1 304 Not Modified\r\n",
    b"HTTP/1.1 404 Not Found\r\n",
    b"HTTP/1.1 500 Internal Server Error\r\n",
];
impl Lines for StaticTable {
    #[inline]
    fn write_line(&self, code: u16, out: &mut Vec<u8>) {
        let index = match code {
            200 => 0,
            304 => 1,
            404 => 2,
            _ => 3,
        };
        out.extend_from_slice(black_box(TABLE[index]));
    }
}

impl Lines for StatusLines {
    #[inline]
    fn write_line(&self, code: u16, out: &mut Vec<u8>) {
        StatusLines::write_line(self, code, Version::Http11, out).unwrap();
    }
}

/// A `LineReader` per thread, as an event-loop worker holds one.
struct Reader(&'static StatusLines);
thread_local! {
    static READER: std::cell::RefCell<Option<recycle::status::LineReader<'static>>> =
        const { std::cell::RefCell::new(None) };
}
impl Lines for Reader {
    #[inline]
    fn write_line(&self, code: u16, out: &mut Vec<u8>) {
        READER.with_borrow_mut(|reader| {
            let reader = reader.get_or_insert_with(|| self.0.reader());
            reader.write_line(code, Version::Http11, out).unwrap();
        });
    }
}

#[derive(Default)]
struct RwLockMap(RwLock<HashMap<(u16, Version), Vec<u8>>>);
impl Lines for RwLockMap {
    #[inline]
    fn write_line(&self, code: u16, out: &mut Vec<u8>) {
        let key = (code, Version::Http11);
        if let Some(line) = self.0.read().unwrap().get(&key) {
            out.extend_from_slice(line);
            return;
        }
        let line = format!("HTTP/1.1 {} {}\r\n", code, reason(code).unwrap()).into_bytes();
        out.extend_from_slice(&line);
        self.0.write().unwrap().insert(key, line);
    }
}

struct Format;
impl Lines for Format {
    #[inline]
    fn write_line(&self, code: u16, out: &mut Vec<u8>) {
        write!(out, "HTTP/1.1 {} {}\r\n", code, reason(code).unwrap()).unwrap();
    }
}

fn run(lines: &impl Lines, out: &mut Vec<u8>, iters: u64) {
    for i in 0..iters {
        out.clear();
        lines.write_line(CODES[(i % 4) as usize], out);
        black_box(&*out);
    }
}

fn on_threads(lines: &impl Lines, threads: usize, iters: u64) -> Duration {
    let barrier = Barrier::new(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut out = Vec::with_capacity(64);
                    barrier.wait();
                    let start = Instant::now();
                    run(lines, &mut out, iters);
                    start.elapsed()
                })
            })
            .collect();
        let total: Duration = handles.into_iter().map(|h| h.join().unwrap()).sum();
        total / threads as u32
    })
}

fn bench(c: &mut Criterion, name: &str, lines: impl Lines) {
    let mut out = Vec::with_capacity(64);
    run(&lines, &mut out, 8); // fill the caches: this measures hits
    c.benchmark_group("status/line/1thread")
        .throughput(Throughput::Elements(1))
        .bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                run(&lines, &mut out, iters);
                start.elapsed()
            })
        });
    c.benchmark_group("status/line/2threads")
        .throughput(Throughput::Elements(1))
        .bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter_custom(|iters| on_threads(&lines, 2, iters))
        });
}

fn status(c: &mut Criterion) {
    bench(c, "static_match", StaticMatch);
    bench(c, "static_table", StaticTable);
    bench(c, "recycle", StatusLines::new());
    bench(
        c,
        "recycle_reader",
        Reader(Box::leak(Box::new(StatusLines::new()))),
    );
    bench(c, "rwlock_map", RwLockMap::default());
    bench(c, "format", Format);
}

criterion_group!(benches, status);
criterion_main!(benches);
