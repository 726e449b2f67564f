//! Go's `BenchmarkServerFakeConnNoKeepAlive` and `BenchmarkServerFakeConnWithKeepAliveLite`
//! (net/http, 2013), ported to an in-memory connection driven through the same
//! state machine and pooled buffers as the event loop.
//!
//! - `no_keep_alive`: per op, a new connection reads one HTTP/1.0 browser request,
//!   answers it, and closes (Go: 24,927 ns, 46 allocs, 5,286 B per op).
//! - `keep_alive_lite`: one connection answers a minimal HTTP/1.1 request per op
//!   (Go: 10,689 ns, 21 allocs, 1,626 B per op).
//!
//! And the reverse proxy, driven in memory (`proxy::mem`: the client's bytes in, the
//! rewritten request out to a fake upstream, its response in, the client's response
//! out, the upstream connection parked and reused), one keep-alive request per op:
//!
//! - `proxy_fake_conn/buffer_pool`: copy buffers from the library's pool;
//! - `proxy_fake_conn/no_buffer_pool`: a fresh 32 KiB copy buffer each time (Go's
//!   `ReverseProxy` without a `BufferPool`), so the pool's saving shows.
//!
//! Before timing, each runs 100,000 ops under a counting global allocator and prints
//! allocations and bytes per op.

use std::hint::black_box;
use std::io::Write;

use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use demo_server::app::App;
use demo_server::http::conn::Conn;
use demo_server::proxy::handler::{Proxy, ProxyConfig};
use demo_server::proxy::mem::MemProxy;
use demo_server::state::{Ctx, Limits, Shared};

#[path = "../../bench/lib/benches/support/counting_alloc.rs"]
mod counting_alloc;

mod support {
    pub(crate) mod requests;
}
use support::requests::{BROWSER_REQUEST, LITE_REQUEST, UPSTREAM_RESPONSE};

#[global_allocator]
static GLOBAL: counting_alloc::Counting = counting_alloc::Counting;

/// The fake connection's write side: a reusable in-memory sink.
struct Sink(Vec<u8>);
impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Reads `request` into a pooled buffer, answers it through `conn`, writes the
/// response to `sink`, gives the buffers back.
fn serve(
    conn: &mut Conn<App<'_>>,
    request: &[u8],
    shared: &Shared,
    ctx: &mut Ctx<'_>,
    sink: &mut Sink,
) {
    let mut rbuf = shared.readers.get();
    rbuf.extend_from_slice(request);
    let mut wbuf = shared.writers.get();
    conn.process(&mut rbuf, &mut wbuf, ctx, &mut ());
    wbuf.flush_to(sink).unwrap();
    black_box(&sink.0);
    sink.0.clear();
}

fn no_keep_alive(shared: &Shared, ctx: &mut Ctx<'_>, sink: &mut Sink) {
    let mut conn = Conn::new(App::new(shared));
    serve(&mut conn, BROWSER_REQUEST, shared, ctx, sink);
    assert!(conn.is_done());
}

fn fakeconn(c: &mut Criterion) {
    let shared = Shared::new(Limits::default(), 1, false);
    let mut ctx = shared.context(0);
    let mut sink = Sink(Vec::with_capacity(4096));
    let mut keep_alive = Conn::new(App::new(&shared));

    const OPS: u64 = 100_000;
    for name in ["no_keep_alive", "keep_alive_lite"] {
        let mut op = |ctx: &mut Ctx<'_>, sink: &mut Sink| match name {
            "no_keep_alive" => no_keep_alive(&shared, ctx, sink),
            _ => serve(&mut keep_alive, LITE_REQUEST, &shared, ctx, sink),
        };
        for _ in 0..100 {
            op(&mut ctx, &mut sink); // warm up
        }
        let (allocs, bytes) = counting_alloc::per_op(OPS, || op(&mut ctx, &mut sink));
        println!("server_fake_conn/{name}: {allocs:.2} allocs/op, {bytes:.0} B/op");
    }

    let mut group = c.benchmark_group("server_fake_conn");
    group.throughput(Throughput::Elements(1));
    group.bench_function("no_keep_alive", |b| {
        b.iter(|| no_keep_alive(&shared, &mut ctx, &mut sink))
    });
    group.bench_function("keep_alive_lite", |b| {
        b.iter(|| serve(&mut keep_alive, LITE_REQUEST, &shared, &mut ctx, &mut sink))
    });
    group.finish();
}

/// One proxied keep-alive request through `mem`.
fn proxied(mem: &mut MemProxy<'_>) {
    let key = mem.exchange(LITE_REQUEST, UPSTREAM_RESPONSE);
    black_box(mem.client_received());
    mem.clear_client_received();
    mem.clear_upstream_received(key);
}

fn proxy_fakeconn(c: &mut Criterion) {
    let shared = Shared::new(Limits::default(), 1, false);
    let mut group = c.benchmark_group("proxy_fake_conn");
    group.throughput(Throughput::Elements(1));
    for (name, buffer_pool) in [("buffer_pool", true), ("no_buffer_pool", false)] {
        let config = ProxyConfig {
            upstreams: vec!["127.0.0.1:8080".parse().unwrap()],
            buffer_pool,
            ..ProxyConfig::default()
        };
        let proxy = Arc::new(Proxy::new(config, 1));
        let mut mem = MemProxy::new(&shared, &proxy);
        for _ in 0..100 {
            proxied(&mut mem); // warm up
        }
        let (allocs, bytes) = counting_alloc::per_op(100_000, || proxied(&mut mem));
        println!("proxy_fake_conn/{name}: {allocs:.2} allocs/op, {bytes:.0} B/op");
        group.bench_function(name, |b| b.iter(|| proxied(&mut mem)));
    }
    group.finish();
}

criterion_group!(benches, fakeconn, proxy_fakeconn);
criterion_main!(benches);
