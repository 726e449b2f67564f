//! One request/response round per connection through buffered I/O, Go's
//! `BenchmarkServerFakeConnNoKeepAlive` in miniature: read a request head through a
//! read buffer, write a response through a write buffer, flush, close.
//!
//! - `std_fresh`: a `BufReader` and a `BufWriter` (4 KiB each, the size Go pooled)
//!   allocated per connection, as a server without pooling does.
//! - `pooled_adapters`: `recycle_pool::io::PooledReader`/`PooledWriter` over buffers from
//!   `recycle_pool::Pool`s, the reader made with `PooledReader::trusted` (the source, a byte
//!   slice as a socket would be, is a `TrustedRead`).
//! - `pooled_adapters_any_read`: the same with `PooledReader::new`, for a source that
//!   is only `Read`.
//! - `pooled_bufs`: `ReadBuf`/`WriteBuf` from pools, driven directly
//!   (`read_from_trusted`, `flush_to`), as the demo server's event loop does.
//!
//! A reader over a plain `Read` may write past what it reports, so a read buffer it
//! used is zeroed whole when recycled (4 KiB per round); over a `TrustedRead` source
//! (`PooledReader::trusted`, `read_from_trusted`) only the bytes received are.
//!
//! Before timing, each variant runs 10,000 connections under a counting global allocator
//! and prints allocations and bytes allocated per connection.

use std::hint::black_box;
use std::io::{BufRead, BufReader, BufWriter, Write};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use recycle_pool::Pool;
use recycle_pool::io::{PooledReader, PooledWriter, ReadBuf, WriteBuf};

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

#[global_allocator]
static GLOBAL: counting_alloc::Counting = counting_alloc::Counting;

const REQUEST: &[u8] =
    b"GET / HTTP/1.1\r\nHost: example.com\r\nUser-Agent: bench/1.0\r\nAccept: */*\r\n\r\n";
const RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";
const BUF: usize = 4096;

struct Pools {
    readers: Pool<ReadBuf>,
    writers: Pool<WriteBuf>,
}

/// Reads header lines until the blank one, then answers.
fn serve_lines(reader: &mut impl BufRead, writer: &mut impl Write) {
    loop {
        let buf = reader.fill_buf().unwrap();
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            let n = buf.len();
            reader.consume(n);
            continue;
        };
        black_box(&buf[..end]);
        reader.consume(end + 4);
        break;
    }
    writer.write_all(RESPONSE).unwrap();
    writer.flush().unwrap();
}

fn std_fresh(_: &Pools, out: &mut Vec<u8>) {
    let mut reader = BufReader::with_capacity(BUF, REQUEST);
    let mut writer = BufWriter::with_capacity(BUF, out);
    serve_lines(&mut reader, &mut writer);
}

fn pooled_adapters(pools: &Pools, out: &mut Vec<u8>) {
    let mut reader = PooledReader::trusted(REQUEST, pools.readers.get());
    let mut writer = PooledWriter::new(out, pools.writers.get());
    serve_lines(&mut reader, &mut writer);
}

fn pooled_adapters_any_read(pools: &Pools, out: &mut Vec<u8>) {
    let mut reader = PooledReader::new(REQUEST, pools.readers.get());
    let mut writer = PooledWriter::new(out, pools.writers.get());
    serve_lines(&mut reader, &mut writer);
}

fn pooled_bufs(pools: &Pools, out: &mut Vec<u8>) {
    let mut source = REQUEST;
    let mut rbuf = pools.readers.get();
    let end = loop {
        rbuf.read_from_trusted(&mut source).unwrap();
        if let Some(end) = rbuf.filled().windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
    };
    black_box(&rbuf.filled()[..end]);
    rbuf.consume(end + 4);
    let mut wbuf = pools.writers.get();
    wbuf.extend_from_slice(RESPONSE);
    wbuf.flush_to(out).unwrap();
}

type Variant = fn(&Pools, &mut Vec<u8>);
const VARIANTS: [(&str, Variant); 4] = [
    ("std_fresh", std_fresh),
    ("pooled_adapters", pooled_adapters),
    ("pooled_adapters_any_read", pooled_adapters_any_read),
    ("pooled_bufs", pooled_bufs),
];

fn io(c: &mut Criterion) {
    let pools = Pools {
        readers: Pool::new(ReadBuf::new),
        writers: Pool::new(WriteBuf::new),
    };
    let mut out = Vec::with_capacity(RESPONSE.len());

    const CONNS: u64 = 10_000;
    for (name, run) in VARIANTS {
        run(&pools, &mut out); // warm the pools
        out.clear();
        let (allocs, bytes) = counting_alloc::per_op(CONNS, || {
            run(&pools, &mut out);
            out.clear();
        });
        println!("io/conn_round/{name}: {allocs:.2} allocs/conn, {bytes:.0} B/conn");
    }

    let mut group = c.benchmark_group("io/conn_round");
    group.throughput(Throughput::Elements(1));
    for (name, run) in VARIANTS {
        group.bench_function(name, |b| {
            b.iter(|| {
                run(&pools, &mut out);
                out.clear();
            })
        });
    }
    group.finish();
}

criterion_group!(benches, io);
criterion_main!(benches);
