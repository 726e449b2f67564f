//! The proxy's CPU per request, in a form that `valgrind --tool=callgrind` can count
//! exactly: `cargo bench --bench proxy_cost --no-run`, then run the binary it built as
//! `proxy_cost CASE N` under callgrind for two values of `N`; the difference of the
//! instruction counts over the difference of `N` is the user-space instructions of one
//! request, free of start-up (`scripts`-free: the numbers go to BENCHMARKS.md).
//!
//! Cases (each a keep-alive request proxied in memory through [`MemProxy`], answered by
//! a small response, as `proxy_fake_conn` in `benches/fakeconn.rs`):
//!
//! - `lite`: `GET / HTTP/1.1` with only `Host` (Go's keep-alive-lite request);
//! - `plain16k`, `conn16k`: a 16 KiB head of 97 fields, the last of them a plain value
//!   filling the head, or a `Connection` field of 7,700 one-byte options (`a,a,a,…`):
//!   the cost of collecting the options (it must stay within 2x the plain head's);
//! - `same16k`: `conn16k` with the 96 short fields all named `a`, the name its options
//!   repeat (each option names 96 fields: the table must hold the name once);
//! - `plain1m`, `conn1m`, `same1m`: the same at 1 MiB (`--max-head-bytes 1048576`;
//!   about 520,000 options).
//!
//! Without arguments it runs every case 1,000 times (16 KiB) or 20 times (1 MiB) and
//! prints the mean wall time of each, for a quick look (callgrind's count is the
//! measure).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use demo_server::proxy::handler::{Proxy, ProxyConfig};
use demo_server::proxy::mem::MemProxy;
use demo_server::state::{Limits, Shared};

const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nServer: upstream\r\n\
Content-Type: text/plain; charset=utf-8\r\nDate: Tue, 15 Nov 1994 08:12:31 GMT\r\n\
Content-Length: 13\r\n\r\nHello, World!";

/// A head of `size` bytes with 97 fields: 96 short ones, then one that fills the rest,
/// a plain value or (with `connection`) a `Connection` listing `a` as many times as
/// fits (at 16 KiB, 7,700 options: the worst head). With `same`, the short
/// fields are all named `a`.
fn head(size: usize, connection: bool, same: bool) -> Vec<u8> {
    let mut head = b"GET / HTTP/1.1\r\nHost: example.com\r\n".to_vec();
    for i in 0..95 {
        if same {
            head.extend_from_slice(b"a: v\r\n");
        } else {
            head.extend_from_slice(format!("X-{i:02}: v\r\n").as_bytes());
        }
    }
    let end = size - 4; // the last CRLF, and the blank line
    if connection {
        head.extend_from_slice(b"Connection: a");
        while head.len() + 2 <= end {
            head.extend_from_slice(b",a");
        }
    } else {
        head.extend_from_slice(b"X-Plain: ");
    }
    head.resize(end, b'v');
    head.extend_from_slice(b"\r\n\r\n");
    head
}

fn request(case: &str) -> (Vec<u8>, usize) {
    match case {
        "lite" => (
            b"GET / HTTP/1.1\r\nHost: golang.org\r\n\r\n".to_vec(),
            64 << 10,
        ),
        "plain16k" => (head(16 << 10, false, false), 64 << 10),
        "conn16k" => (head(16 << 10, true, false), 64 << 10),
        "same16k" => (head(16 << 10, true, true), 64 << 10),
        "plain1m" => (head(1 << 20, false, false), 2 << 20),
        "conn1m" => (head(1 << 20, true, false), 2 << 20),
        "same1m" => (head(1 << 20, true, true), 2 << 20),
        _ => panic!("unknown case {case}: lite, (plain|conn|same)(16k|1m)"),
    }
}

fn run(case: &str, n: usize) -> f64 {
    let (request, max_head) = request(case);
    let shared = Shared::new(
        Limits {
            max_head_bytes: max_head,
            ..Limits::default()
        },
        1,
        false,
    );
    let config = ProxyConfig {
        upstreams: vec!["127.0.0.1:8080".parse().unwrap()],
        ..ProxyConfig::default()
    };
    let proxy = Arc::new(Proxy::new(config, 1));
    let mut mem = MemProxy::new(&shared, &proxy);
    let mut once = || {
        let key = mem.exchange(&request, RESPONSE);
        assert!(
            mem.client_received().starts_with(b"HTTP/1.1 200 "),
            "{case}: {:?}",
            String::from_utf8_lossy(&mem.client_received()[..40.min(mem.client_received().len())])
        );
        black_box(mem.client_received());
        mem.clear_client_received();
        mem.clear_upstream_received(key);
    };
    once(); // warm: buffers and exchange states exist
    let start = Instant::now();
    for _ in 0..n {
        once();
    }
    start.elapsed().as_secs_f64() / n as f64
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if let [case, n] = args.as_slice() {
        run(case, n.parse().expect("a count"));
        return;
    }
    for (case, n) in [
        ("lite", 100_000),
        ("plain16k", 1000),
        ("conn16k", 1000),
        ("same16k", 1000),
        ("plain1m", 20),
        ("conn1m", 20),
        ("same1m", 20),
    ] {
        println!("{case}: {:.2} us/request", run(case, n) * 1e6);
    }
}
