//! Zero allocations on the proxy's sans-I/O path: once buffers and caches are warm, a
//! proxied keep-alive request (the client's head parsed, the rewritten head and body
//! written upstream, the upstream's response parsed and streamed back, the upstream
//! connection parked and reused) allocates nothing with the copy buffer pool, and
//! exactly its fresh copy buffers without it (two, or one for a request without a
//! body); a `/metrics` scrape allocates nothing
//! once its buffer has grown.

#[path = "common/counting.rs"]
mod counting;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use counting::allocations;
use demo_server::metrics::write_server;
use demo_server::proxy::handler::{Proxy, ProxyConfig};
use demo_server::proxy::mem::MemProxy;
use demo_server::state::{Limits, Shared};
use recycle_pool::status::Clock;

struct Frozen;
impl Clock for Frozen {
    fn now(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }
}

/// (client request, upstream response, what the client's response ends with).
const EXCHANGES: [(&[u8], &[u8], &[u8]); 5] = [
    (
        b"GET /index.html?x=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/8\r\n\
          Connection: keep-alive, X-Secret\r\nX-Secret: 1\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nServer: up\r\nContent-Length: 5\r\n\r\nhello",
        b"\r\n\r\nhello",
    ),
    (
        b"POST /form HTTP/1.1\r\nHost: example.com\r\nContent-Length: 11\r\n\r\nhello world",
        b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
        b"\r\n\r\nok",
    ),
    (
        b"POST /up HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        b"5\r\nhello\r\n0\r\n\r\n",
    ),
    (
        b"HEAD /big HTTP/1.1\r\nHost: example.com\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n",
        b"Content-Length: 100000\r\nVia: 1.1 demo-server\r\n\r\n",
    ),
    (
        b"GET /hints HTTP/1.1\r\nHost: example.com\r\n\r\n",
        b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 204 No Content\r\nVia: 1.0 cache\r\n\r\n",
        b"Via: 1.0 cache\r\nVia: 1.1 demo-server\r\n\r\n",
    ),
];

/// One proxied exchange through `mem`.
fn exchange(mem: &mut MemProxy<'_>, (request, response, ends_with): (&[u8], &[u8], &[u8])) {
    let key = mem.exchange(request, response);
    assert!(
        mem.client_received().ends_with(ends_with),
        "{}",
        String::from_utf8_lossy(mem.client_received())
    );
    assert_eq!(mem.current_connection(), None, "the exchange is over");
    mem.clear_client_received();
    mem.clear_upstream_received(key);
}

/// Allocations per proxied exchange at steady state, with or without the copy buffer
/// pool.
fn allocations_per_exchange(buffer_pool: bool) -> (u64, u64) {
    let shared = Shared::with_clock(Limits::default(), 1, false, Box::new(Frozen));
    let config = ProxyConfig {
        upstreams: vec!["127.0.0.1:8080".parse().unwrap()],
        buffer_pool,
        ..ProxyConfig::default()
    };
    let proxy = Arc::new(Proxy::new(config, 1));
    let mut mem = MemProxy::new(&shared, &proxy);
    for round in EXCHANGES.iter().cycle().take(50) {
        exchange(&mut mem, *round);
    }
    let before = allocations();
    let rounds = 1000;
    for round in EXCHANGES.iter().cycle().take(rounds) {
        exchange(&mut mem, *round);
    }
    let stats = proxy.upstreams.stats(0);
    assert_eq!(
        stats.opened, 1,
        "one upstream connection, reused throughout"
    );
    assert_eq!(stats.reused, rounds as u64 + 49);
    (allocations() - before, rounds as u64)
}

#[test]
fn proxied_keep_alive_requests_allocate_nothing_with_the_buffer_pool() {
    let (allocations, rounds) = allocations_per_exchange(true);
    assert_eq!(
        allocations, 0,
        "allocations across {rounds} proxied exchanges"
    );
}

#[test]
fn without_the_buffer_pool_each_request_allocates_its_copy_buffers() {
    // Two for a request with a body (out to the upstream, in from it); one for a
    // request without, whose short head goes out from the exchange's own replay copy.
    let (allocations, rounds) = allocations_per_exchange(false);
    let with_body = EXCHANGES
        .iter()
        .cycle()
        .take(rounds as usize)
        .filter(|(request, _, _)| request.starts_with(b"POST"))
        .count() as u64;
    assert_eq!(
        allocations,
        rounds + with_body,
        "what the pool saves, measured"
    );
}

#[test]
fn a_metrics_scrape_allocates_nothing_once_warm() {
    let shared = Shared::with_clock(Limits::default(), 1, false, Box::new(Frozen));
    let config = ProxyConfig {
        upstreams: vec![
            "127.0.0.1:8080".parse().unwrap(),
            "[::1]:8081".parse().unwrap(),
        ],
        ..ProxyConfig::default()
    };
    let proxy = Proxy::new(config, 1);
    let mut scrape = Vec::new();
    for _ in 0..3 {
        scrape.clear();
        write_server(&mut scrape, &shared, Some(&proxy));
    }
    let before = allocations();
    for _ in 0..100 {
        scrape.clear();
        write_server(&mut scrape, &shared, Some(&proxy));
    }
    assert_eq!(allocations() - before, 0);
    assert!(scrape.ends_with(b"demo_upstream_up{upstream=\"[::1]:8081\"} 1\n"));
}

#[test]
fn the_counter_sees_allocations() {
    let before = allocations();
    drop(std::hint::black_box(Vec::<u8>::with_capacity(100)));
    assert_eq!(allocations() - before, 1, "the counting allocator works");
}
