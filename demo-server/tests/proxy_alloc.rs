//! Zero allocations on the proxy's sans-I/O path: once buffers and caches are warm,
//! parsing an upstream response, reading its body, writing both forwarded heads,
//! choosing an upstream, pooling its connection and writing `/metrics` allocate nothing.

#[path = "common/counting.rs"]
mod counting;

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant, SystemTime};

use counting::allocations;
use demo_server::http::parse;
use demo_server::http::response::{self, BodyReader};
use demo_server::metrics::{Exposition, write_pools, write_upstreams};
use demo_server::proxy::headers::{self, Request, Response};
use demo_server::proxy::upstream::{Event, Exchange, HealthPolicy, IdleConns, Upstreams};
use recycle::Version;
use recycle::io::WriteBuf;
use recycle::status::{Clock, DateCache};

struct Frozen;
impl Clock for Frozen {
    fn now(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }
}

const RESPONSE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n\
    HTTP/1.1 200 OK\r\nServer: up\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\n\
    Transfer-Encoding: chunked\r\nVia: 1.0 cache\r\n\r\n5\r\nhello\r\n0\r\n\r\n";

const CLIENT_FIELDS: [httparse::Header<'static>; 5] = [
    httparse::Header {
        name: "Host",
        value: b"example.com",
    },
    httparse::Header {
        name: "User-Agent",
        value: b"curl/8",
    },
    httparse::Header {
        name: "Connection",
        value: b"keep-alive, X-Secret",
    },
    httparse::Header {
        name: "X-Secret",
        value: b"1",
    },
    httparse::Header {
        name: "X-Forwarded-For",
        value: b"10.0.0.1, 10.0.0.2",
    },
];

/// One proxied exchange, sans I/O; returns the body length it read.
fn exchange(
    upstreams: &Upstreams,
    cursor: &mut demo_server::proxy::upstream::RoundRobin,
    idle: &mut IdleConns<u32>,
    dates: &DateCache<Frozen>,
    to_upstream: &mut WriteBuf,
    to_client: &mut WriteBuf,
    now: Instant,
) -> usize {
    let upstream = upstreams.select(cursor, now).expect("an upstream is up");
    let conn = match idle.take(upstream, now, |_| {}) {
        Some(conn) => {
            upstreams.count(0, upstream, Event::Reused);
            conn
        }
        None => {
            upstreams.count(0, upstream, Event::Opened);
            7
        }
    };
    let request = Request {
        method: b"GET",
        target: b"/index.html?x=1",
        version: Version::Http11,
        fields: &CLIENT_FIELDS,
        client: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x42)),
        fallback_host: upstreams.name(upstream).as_bytes(),
    };
    headers::write_request_head(to_upstream, &request, parse::Framing::None, false);

    let mut input = RESPONSE;
    let mut scanned = 0;
    let mut body_len = 0;
    loop {
        let end = response::find_head(input, &mut scanned, 16 * 1024)
            .unwrap()
            .unwrap();
        let mut fields = response::fields();
        let parsed = response::parse(&input[..end], b"GET", &mut fields).unwrap();
        let head = parsed.head;
        let framing = headers::response_framing(&head, Version::Http11).unwrap();
        headers::write_response_head(
            to_client,
            &Response::from_parsed(&parsed),
            framing,
            Version::Http11,
            false,
            dates,
        );
        input = &input[parsed.len..];
        if head.is_interim() {
            continue;
        }
        upstreams.record_success(upstream);
        let mut body = BodyReader::new(head.framing);
        while !body.is_done() {
            let (used, data) = body.decode(input).unwrap();
            body_len += data.len();
            input = &input[used..];
        }
        let done = Exchange {
            request_sent: true,
            response_read: input.is_empty(),
            keep_alive: head.keep_alive,
        };
        assert_eq!(idle.put(upstream, conn, done, now), None);
        return body_len;
    }
}

#[test]
fn proxied_exchanges_allocate_nothing() {
    let start = Instant::now();
    let addrs: [SocketAddr; 2] = [
        "127.0.0.1:8080".parse().unwrap(),
        "127.0.0.1:8081".parse().unwrap(),
    ];
    let upstreams = Upstreams::new(&addrs, HealthPolicy::default(), 1, start);
    let mut cursor = upstreams.cursor(0);
    let mut idle = IdleConns::new(addrs.len(), 64, Duration::from_secs(60));
    let dates = DateCache::with_clock(Frozen);
    let mut to_upstream = WriteBuf::with_capacity(16 * 1024);
    let mut to_client = WriteBuf::with_capacity(16 * 1024);
    let mut scrape = Vec::with_capacity(64 * 1024);
    let mut round = |now| {
        let len = exchange(
            &upstreams,
            &mut cursor,
            &mut idle,
            &dates,
            &mut to_upstream,
            &mut to_client,
            now,
        );
        assert_eq!(len, 5);
        assert!(
            to_upstream
                .unflushed()
                .starts_with(b"GET /index.html?x=1 HTTP/1.1\r\nHost: example.com\r\n")
        );
        assert!(
            to_client
                .unflushed()
                .starts_with(b"HTTP/1.1 100 Continue\r\n")
        );
        to_upstream.flush_to(&mut std::io::sink()).unwrap();
        to_client.flush_to(&mut std::io::sink()).unwrap();
        scrape.clear();
        let mut metrics = Exposition::new(&mut scrape);
        write_pools(&mut metrics, &[("read_buf", recycle::Stats::default())]);
        write_upstreams(&mut metrics, &upstreams);
    };
    for _ in 0..10 {
        round(start);
    }
    let before = allocations();
    for i in 0..1000 {
        round(start + Duration::from_millis(i));
    }
    assert_eq!(
        allocations() - before,
        0,
        "allocations across 1,000 proxied exchanges"
    );
    assert_eq!(upstreams.stats(0).opened + upstreams.stats(1).opened, 2);
    assert_eq!(upstreams.stats(0).reused + upstreams.stats(1).reused, 1008);
}

#[test]
fn the_counter_sees_allocations() {
    let before = allocations();
    drop(std::hint::black_box(Vec::<u8>::with_capacity(100)));
    assert_eq!(allocations() - before, 1, "the counting allocator works");
}
