//! Zero allocations: once the pools and caches are warm, requests through the
//! connection state machine on pooled buffers allocate nothing, and neither does a
//! whole connection (open, one request, close).
//!
//! A counting global allocator counts per thread, so tests running in parallel do not
//! disturb each other.

#[path = "common/counting.rs"]
mod counting;

use std::io::Write;
use std::time::{Duration, SystemTime};

use counting::allocations;
use demo_server::app::App;
use demo_server::http::conn::Conn;
use demo_server::state::{Ctx, Limits, Shared};
use recycle_pool::status::Clock;

struct Frozen;
impl Clock for Frozen {
    fn now(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }
}

/// A socket stand-in: a write sink with room reserved up front.
struct Sink {
    bytes: Vec<u8>,
}
impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        assert!(
            self.bytes.len() + buf.len() <= self.bytes.capacity(),
            "sink would grow"
        );
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const REQUESTS: [&[u8]; 8] = [
    b"GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\nAccept: */*\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 12\r\n\r\nhello, world",
    b"POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nT: v\r\n\r\n",
    b"GET /bytes/5000 HTTP/1.1\r\nHost: localhost\r\n\r\n",
    b"GET /status/404 HTTP/1.1\r\nHost: localhost\r\n\r\n",
    b"GET /stats HTTP/1.1\r\nHost: localhost\r\n\r\n",
    // Empty lines first, an absolute-form target, an IP-literal Host.
    b"\r\n\r\nGET http://[::1]:8080/bytes/3 HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: [fe80::1%25eth0]\r\n\r\n",
];

/// One request through `conn` the way the event loop does it: borrow a read buffer
/// when bytes arrive, a write buffer for the output, give both back when empty.
fn serve_one(
    conn: &mut Conn<App<'_>>,
    request: &[u8],
    shared: &Shared,
    ctx: &mut Ctx<'_>,
    sink: &mut Sink,
) {
    let mut rbuf = shared.readers.get();
    rbuf.extend_from_slice(request);
    loop {
        let mut wbuf = shared.writers.get();
        conn.process(&mut rbuf, &mut wbuf, ctx, &mut ());
        let wrote = !wbuf.is_empty();
        wbuf.flush_to(sink).unwrap();
        if !wrote {
            break;
        }
    }
    assert!(rbuf.is_empty(), "the request was consumed whole");
}

/// Serves `requests` in turn on one keep-alive connection, `warm` of them to warm
/// the pools, status lines and thread caches, then `n` more; returns how many
/// allocations those `n` made.
fn allocations_serving(requests: &[&[u8]], warm: usize, n: usize) -> u64 {
    let shared = Shared::with_clock(Limits::default(), 1, false, Box::new(Frozen));
    let mut ctx = shared.context(0);
    let mut sink = Sink {
        bytes: Vec::with_capacity(1 << 20),
    };
    let mut conn = Conn::new(App::new(&shared));
    for request in requests.iter().cycle().take(warm) {
        serve_one(&mut conn, request, &shared, &mut ctx, &mut sink);
        sink.bytes.clear();
    }
    let before = allocations();
    for request in requests.iter().cycle().take(n) {
        serve_one(&mut conn, request, &shared, &mut ctx, &mut sink);
        assert!(sink.bytes.starts_with(b"HTTP/1.1 "));
        sink.bytes.clear();
    }
    let allocated = allocations() - before;
    assert_eq!(conn.requests(), (warm + n) as u64);
    allocated
}

#[test]
fn keep_alive_requests_allocate_nothing() {
    assert_eq!(
        allocations_serving(&REQUESTS, 50, 3000),
        0,
        "allocations across 3,000 keep-alive requests"
    );
}

#[test]
fn a_whole_connection_allocates_nothing() {
    let shared = Shared::with_clock(Limits::default(), 1, false, Box::new(Frozen));
    let mut ctx = shared.context(0);
    let mut sink = Sink {
        bytes: Vec::with_capacity(1 << 16),
    };
    let request = b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    let mut connection = |sink: &mut Sink| {
        let mut conn = Conn::new(App::new(&shared)); // open
        serve_one(&mut conn, request, &shared, &mut ctx, sink); // one request
        assert!(conn.is_done()); // close
        assert!(sink.bytes.ends_with(b"Hello, World!"));
        sink.bytes.clear();
    };
    for _ in 0..10 {
        connection(&mut sink);
    }
    let before = allocations();
    for _ in 0..1000 {
        connection(&mut sink);
    }
    assert_eq!(
        allocations() - before,
        0,
        "allocations across 1,000 connections"
    );
}

#[test]
fn the_counter_sees_allocations() {
    let before = allocations();
    let v: Vec<u8> = std::hint::black_box(Vec::with_capacity(100));
    drop(v);
    assert_eq!(allocations() - before, 1, "the counting allocator works");
}

/// A status without a registered reason phrase (`/status/299`, 420,
/// 599) is as free as one with (404 above): its status line is not built anew per
/// request.
#[test]
fn unregistered_status_codes_allocate_nothing() {
    let requests: [&[u8]; 3] = [
        b"GET /status/299 HTTP/1.1\r\nHost: localhost\r\n\r\n",
        b"GET /status/420 HTTP/1.1\r\nHost: localhost\r\n\r\n",
        b"HEAD /status/599 HTTP/1.1\r\nHost: localhost\r\n\r\n",
    ];
    assert_eq!(
        allocations_serving(&requests, 30, 1000),
        0,
        "allocations across 1,000 requests for unregistered codes"
    );
}
