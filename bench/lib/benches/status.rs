//! The hit path of a status-line cache: append `"HTTP/1.1 200 OK\r\n"` (cycling through
//! four common codes) to a response buffer, as a server does for every response.
//!
//! - `static_match`: a `match` on a static table, the practical lower bound.
//! - `static_table`: a static array indexed at run time (a run-time-length copy).
//! - `recycle-pool`: `StatusLines::write_line` (lock-free reads through `arc_swap`).
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
use recycle_pool::status::{LineReader, StatusLines, Version, reason};

const CODES: [u16; 4] = [200, 404, 304, 500];

/// A status-line cache under test; each thread gets its own writer from it (a
/// `LineReader` for `recycle_reader`, a plain reference for the others).
trait Lines: Sync {
    type Writer<'a>: LineWriter
    where
        Self: 'a;
    fn writer(&self) -> Self::Writer<'_>;
}

trait LineWriter {
    fn write_line(&mut self, code: u16, out: &mut Vec<u8>);
}

/// Implements `Lines` for a type whose writer is a plain shared reference.
macro_rules! by_reference {
    ($($ty:ty),*) => {$(
        impl Lines for $ty {
            type Writer<'a> = &'a $ty;
            fn writer(&self) -> &$ty {
                self
            }
        }
    )*};
}
by_reference!(StaticMatch, StaticTable, Shared, RwLockMap, Format);

struct StaticMatch;
impl LineWriter for &StaticMatch {
    #[inline]
    fn write_line(&mut self, code: u16, out: &mut Vec<u8>) {
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
impl LineWriter for &StaticTable {
    #[inline]
    fn write_line(&mut self, code: u16, out: &mut Vec<u8>) {
        let index = match code {
            200 => 0,
            304 => 1,
            404 => 2,
            _ => 3,
        };
        out.extend_from_slice(black_box(TABLE[index]));
    }
}

/// `StatusLines::write_line` on the shared cache.
struct Shared(StatusLines);
impl LineWriter for &Shared {
    #[inline]
    fn write_line(&mut self, code: u16, out: &mut Vec<u8>) {
        self.0.write_line(code, Version::Http11, out).unwrap();
    }
}

/// A `LineReader` per thread, as an event-loop worker holds one.
struct Reader(StatusLines);
impl Lines for Reader {
    type Writer<'a> = LineReader<'a>;
    fn writer(&self) -> LineReader<'_> {
        self.0.reader()
    }
}
impl LineWriter for LineReader<'_> {
    #[inline]
    fn write_line(&mut self, code: u16, out: &mut Vec<u8>) {
        LineReader::write_line(self, code, Version::Http11, out).unwrap();
    }
}

#[derive(Default)]
struct RwLockMap(RwLock<HashMap<(u16, Version), Vec<u8>>>);
impl LineWriter for &RwLockMap {
    #[inline]
    fn write_line(&mut self, code: u16, out: &mut Vec<u8>) {
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
impl LineWriter for &Format {
    #[inline]
    fn write_line(&mut self, code: u16, out: &mut Vec<u8>) {
        write!(out, "HTTP/1.1 {} {}\r\n", code, reason(code).unwrap()).unwrap();
    }
}

fn run(writer: &mut impl LineWriter, out: &mut Vec<u8>, iters: u64) {
    for i in 0..iters {
        out.clear();
        writer.write_line(CODES[(i % 4) as usize], out);
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
                    let mut writer = lines.writer();
                    run(&mut writer, &mut out, 8); // warm: this measures hits
                    barrier.wait();
                    let start = Instant::now();
                    run(&mut writer, &mut out, iters);
                    start.elapsed()
                })
            })
            .collect();
        let total: Duration = handles.into_iter().map(|h| h.join().unwrap()).sum();
        total / threads as u32
    })
}

fn bench(c: &mut Criterion, name: &str, lines: impl Lines) {
    for threads in [1, 2] {
        c.benchmark_group(format!(
            "status/line/{threads}thread{}",
            if threads > 1 { "s" } else { "" }
        ))
        .throughput(Throughput::Elements(1))
        .bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter_custom(|iters| on_threads(&lines, threads, iters))
        });
    }
}

fn status(c: &mut Criterion) {
    bench(c, "static_match", StaticMatch);
    bench(c, "static_table", StaticTable);
    bench(c, "recycle", Shared(StatusLines::new()));
    bench(c, "recycle_reader", Reader(StatusLines::new()));
    bench(c, "rwlock_map", RwLockMap::default());
    bench(c, "format", Format);
}

criterion_group!(benches, status);
criterion_main!(benches);
