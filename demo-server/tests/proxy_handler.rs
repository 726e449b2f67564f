//! Sans-I/O tests of the reverse proxy: [`ProxyHandler`] behind a connection, driven
//! in memory ([`MemProxy`]), with the client's bytes and the upstream's bytes each fed
//! whole, in 7-byte pieces and byte by byte.
//!
//! [`ProxyHandler`]: demo_server::proxy::handler::ProxyHandler

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::{parse_all, parse_response};
use demo_server::proxy::handler::{Proxy, ProxyConfig};
use demo_server::proxy::headers::ALLOW;
use demo_server::proxy::mem::MemProxy;
use demo_server::proxy::upstream::{HealthPolicy, State};
use demo_server::state::{Limits, Shared};
use recycle_pool::status::Clock;

struct Frozen;
impl Clock for Frozen {
    fn now(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777)
    }
}

struct Setup {
    shared: Shared,
    proxy: Arc<Proxy>,
}

fn setup(upstreams: u16, tweak: impl FnOnce(&mut ProxyConfig)) -> Setup {
    let limits = Limits {
        max_body_bytes: 64 << 20,
        ..Limits::default()
    };
    let mut config = ProxyConfig {
        upstreams: (0..upstreams)
            .map(|i| ([127, 0, 0, 1], 8080 + i).into())
            .collect(),
        ..ProxyConfig::default()
    };
    tweak(&mut config);
    Setup {
        shared: Shared::with_clock(limits, 1, false, Box::new(Frozen)),
        proxy: Arc::new(Proxy::new(config, 1)),
    }
}

/// One request as the upstream received it: its head's lines, and its body decoded.
#[derive(Debug, Clone, PartialEq)]
struct Forwarded {
    line: String,
    fields: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Forwarded {
    fn get(&self, name: &str) -> Vec<&str> {
        self.fields
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// Parses the requests an upstream received (strictly: CRLF lines, one framing).
fn forwarded(mut bytes: &[u8]) -> Vec<Forwarded> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let mut storage = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut storage);
        let httparse::Status::Complete(n) = req.parse(bytes).expect("a valid request head") else {
            panic!("incomplete head: {:?}", String::from_utf8_lossy(bytes));
        };
        let head = &bytes[..n];
        assert!(
            !head.windows(2).any(|w| w[1] == b'\n' && w[0] != b'\r'),
            "CRLF line ends"
        );
        let fields: Vec<(String, String)> = req
            .headers
            .iter()
            .map(|h| (h.name.into(), String::from_utf8_lossy(h.value).into_owned()))
            .collect();
        let line = format!(
            "{} {} HTTP/1.{}",
            req.method.unwrap(),
            req.path.unwrap(),
            req.version.unwrap()
        );
        let mut forwarded = Forwarded {
            line,
            fields,
            body: Vec::new(),
        };
        bytes = &bytes[n..];
        let lengths = forwarded.get("content-length");
        let codings = forwarded.get("transfer-encoding");
        assert!(
            lengths.len() + codings.len() <= 1,
            "one framing: {forwarded:?}"
        );
        if let Some(len) = lengths.first() {
            let len: usize = len.parse().unwrap();
            forwarded.body = bytes[..len].to_vec();
            bytes = &bytes[len..];
        } else if let Some(te) = codings.first() {
            assert!(te.ends_with("chunked"), "{te}");
            loop {
                let eol = bytes.windows(2).position(|w| w == b"\r\n").unwrap();
                let size =
                    usize::from_str_radix(std::str::from_utf8(&bytes[..eol]).unwrap(), 16).unwrap();
                bytes = &bytes[eol + 2..];
                if size == 0 {
                    assert!(bytes.starts_with(b"\r\n"), "no trailers");
                    bytes = &bytes[2..];
                    break;
                }
                forwarded.body.extend_from_slice(&bytes[..size]);
                assert_eq!(&bytes[size..size + 2], b"\r\n");
                bytes = &bytes[size + 2..];
            }
        }
        out.push(forwarded);
    }
    out
}

/// What one run gave: what each upstream connection received (by key), what the
/// client received, and whether its connection is done.
#[derive(Debug, Clone, PartialEq)]
struct Run {
    upstream: Vec<Vec<u8>>,
    client: Vec<u8>,
    done: bool,
}

/// The client sends `request` in `step`-byte pieces; the upstream connection the
/// proxy opens answers `response` in `step`-byte pieces (then closes, if `close`).
fn run(s: &Setup, request: &[u8], response: &[u8], close: bool, step: usize) -> Run {
    let mut mem = MemProxy::new(&s.shared, &s.proxy);
    for piece in request.chunks(step) {
        mem.client_sends(piece);
        mem.run();
    }
    if let Some(key) = mem.current_connection() {
        for piece in response.chunks(step) {
            mem.upstream_sends(key, piece);
            mem.run();
        }
        if close {
            mem.upstream_closes(key);
            mem.run();
        }
    }
    Run {
        upstream: mem
            .connections()
            .map(|(_, up)| up.received.clone())
            .collect(),
        client: mem.client_received().to_vec(),
        done: mem.conn().is_done(),
    }
}

/// [`run`] whole, in 7-byte pieces and byte by byte: the requests forwarded and the
/// responses given must be the same (up to chunk boundaries); returns the whole run.
fn each_way(s: impl Fn() -> Setup, request: &[u8], response: &[u8], close: bool) -> Run {
    let whole = run(
        &s(),
        request,
        response,
        close,
        request.len().max(response.len()),
    );
    for step in [7, 1] {
        let pieces = run(&s(), request, response, close, step);
        let (a, b): (Vec<_>, Vec<_>) = (
            whole.upstream.iter().map(|u| forwarded(u)).collect(),
            pieces.upstream.iter().map(|u| forwarded(u)).collect(),
        );
        assert_eq!(a, b, "forwarded, fed in {step}-byte pieces");
        if whole.client.starts_with(b"HTTP/1.1") {
            let (a, b) = (decode(&whole.client), decode(&pieces.client));
            assert_eq!(a, b, "answered, fed in {step}-byte pieces");
        } else {
            assert_eq!(whole.client, pieces.client, "fed in {step}-byte pieces");
        }
        assert_eq!(whole.done, pieces.done, "fed in {step}-byte pieces");
    }
    whole
}

/// A response's status, fields and decoded body.
type Decoded = (u16, Vec<(String, String)>, Vec<u8>);

/// The complete HTTP/1.1 responses at the front of `bytes` (bodies decoded, so that
/// chunk boundaries do not count), and the length of what follows them.
fn decode(bytes: &[u8]) -> (Vec<Decoded>, usize) {
    let mut input = bytes;
    let mut out = Vec::new();
    while !input.is_empty() {
        let Some(r) = parse_response(&mut input, false) else {
            break;
        };
        out.push((r.status, r.headers, r.body));
    }
    (out, input.len().min(1))
}

fn one_upstream() -> Setup {
    setup(1, |_| {})
}

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

#[test]
fn the_request_head_is_rewritten_for_the_upstream() {
    let request = b"GET /a%20b?c=%2F HTTP/1.1\r\nHost: example.com\r\n\
        User-Agent: t\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\nKeep-Alive: 5\r\n\
        Proxy-Connection: keep-alive\r\nTE: trailers\r\nTrailer: X\r\nUpgrade: websocket\r\n\
        Proxy-Authorization: Basic eA==\r\nX-Forwarded-For: 10.0.0.1, 10.0.0.2\r\n\
        X-Forwarded-Host: evil\r\nX-Forwarded-Proto: https\r\nVia: 1.0 fred\r\nAccept: */*\r\n\r\n";
    let run = each_way(one_upstream, request, OK, false);
    let sent = forwarded(&run.upstream[0]);
    assert_eq!(sent.len(), 1);
    let up = &sent[0];
    assert_eq!(
        up.line, "GET /a%20b?c=%2F HTTP/1.1",
        "the target as it came"
    );
    let names: Vec<_> = up.fields.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "Host",
            "User-Agent",
            "Accept",
            "Via",
            "X-Forwarded-For",
            "Forwarded",
            "X-Forwarded-Host",
            "X-Forwarded-Proto"
        ],
        "hop-by-hop fields and those Connection names are gone (RFC 9110 §7.6.1)"
    );
    assert_eq!(up.get("host"), ["example.com"]);
    assert_eq!(
        up.get("via"),
        ["1.0 fred, 1.1 demo-server"],
        "RFC 9110 §7.6.3"
    );
    // The client's forwarding fields are not trusted: the proxy's own replace them.
    assert_eq!(up.get("x-forwarded-for"), ["192.0.2.1"]);
    assert_eq!(
        up.get("forwarded"),
        ["for=192.0.2.1;host=example.com;proto=http"]
    );
    assert_eq!(up.get("x-forwarded-host"), ["example.com"]);
    assert_eq!(up.get("x-forwarded-proto"), ["http"]);
    let response = &parse_all(&run.client)[0];
    assert_eq!((response.status, response.text().as_str()), (200, "ok"));
    assert!(!run.done, "the client's connection stays open");
}

#[test]
fn the_response_head_is_rewritten_for_the_client() {
    let response = b"HTTP/1.1 200 Fine\r\nServer: up\r\nConnection: keep-alive, X-Up\r\n\
        X-Up: secret\r\nKeep-Alive: timeout=4\r\nDate: Mon, 07 Nov 1994 08:49:37 GMT\r\n\
        Via: 1.1 cache\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 3\r\n\r\nabc";
    let run = each_way(
        one_upstream,
        b"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
        response,
        false,
    );
    let r = &parse_all(&run.client)[0];
    assert_eq!((r.status, r.text().as_str()), (200, "abc"));
    let names: Vec<_> = r.headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "Date",
            "Content-Length",
            "Server",
            "Via",
            "Set-Cookie",
            "Set-Cookie",
            "Via"
        ]
    );
    assert_eq!(
        r.header("date"),
        Some("Sun, 06 Nov 1994 08:49:37 GMT"),
        "the proxy's"
    );
    let via: Vec<_> = r
        .headers
        .iter()
        .filter(|(n, _)| n == "Via")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(via, ["1.1 cache", "1.1 demo-server"]);
}

#[test]
fn request_bodies_go_through_byte_exact_in_their_framing() {
    let body: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut with_length = format!(
        "POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    with_length.extend_from_slice(&body);
    let mut chunked =
        b"POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for piece in body.chunks(30_000) {
        chunked.extend_from_slice(format!("{:x};ext=1\r\n", piece.len()).as_bytes());
        chunked.extend_from_slice(piece);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\nTrailer-Field: x\r\n\r\n");
    for (request, framing) in [
        (&with_length, "content-length"),
        (&chunked, "transfer-encoding"),
    ] {
        let s = one_upstream();
        let run = run(&s, request, OK, false, 4096);
        let up = &forwarded(&run.upstream[0])[0];
        assert_eq!(up.body, body, "{framing}");
        assert_eq!(up.get(framing).len(), 1, "{framing}");
        assert_eq!(parse_all(&run.client)[0].status, 200);
    }
    // Small ones, fed every way; empty and one-byte bodies too.
    for (request, expected) in [
        (
            &b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nx"[..],
            &b"x"[..],
        ),
        (
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
            b"",
        ),
        (
            b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            b"",
        ),
        (
            b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n",
            b"x",
        ),
    ] {
        let run = each_way(one_upstream, request, OK, false);
        assert_eq!(forwarded(&run.upstream[0])[0].body, expected);
    }
}

#[test]
fn valid_but_unusual_requests_get_through_intact() {
    // RFC 9112 §6.1: codings before a final chunked are forwarded with the body.
    let request =
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\n\x1f\x8b\x08\r\n0\r\n\r\n";
    let run = each_way(one_upstream, request, OK, false);
    let up = &forwarded(&run.upstream[0])[0];
    assert_eq!(up.get("transfer-encoding"), ["gzip, chunked"]);
    assert_eq!(up.body, b"\x1f\x8b\x08");
    // A GET with a body, and a `Content-Length: 0` on a GET (RFC 9110 §9.3.1).
    let request = b"GET /q HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nbody";
    let run = each_way(one_upstream, request, OK, false);
    assert_eq!(forwarded(&run.upstream[0])[0].body, b"body");
    let request = b"GET /q HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n";
    let run = each_way(one_upstream, request, OK, false);
    assert_eq!(forwarded(&run.upstream[0])[0].get("content-length"), ["0"]);
    // Percent-encodings and obs-text, as they came; absolute-form to origin-form, its
    // authority the Host (RFC 9112 §3.2.2).
    let request =
        b"GET http://a.example:81/%7e%2F?x=%00 HTTP/1.1\r\nHost: b\r\nX: \xe9t\xe9\r\n\r\n";
    let run = each_way(one_upstream, request, OK, false);
    let up = &forwarded(&run.upstream[0])[0];
    assert_eq!(up.line, "GET /%7e%2F?x=%00 HTTP/1.1");
    assert_eq!(up.get("host"), ["a.example:81"]);
    assert!(run.upstream[0].windows(5).any(|w| w == b"X: \xe9t"));
    // A comma inside a quoted parameter value splits nothing (RFC 9110
    // §5.6.4): the codings go on as they came, the body re-chunked after them.
    let request = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: x;p=\"a,b\", chunked\r\n\r\n3;e=\"1,2\"\r\nabc\r\n0\r\n\r\n";
    let run = each_way(one_upstream, request, OK, false);
    let up = &forwarded(&run.upstream[0])[0];
    assert_eq!(up.get("transfer-encoding"), ["x;p=\"a,b\", chunked"]);
    assert_eq!(up.body, b"abc");
    assert_eq!(parse_all(&run.client)[0].status, 200);
    // A field name with `_` is a token (RFC 9110 §5.1, §5.6.2), and goes as it came
    // (nginx drops it by default; see the README), except one that CGI would read as a
    // forwarding field: the client may not set those.
    let request = b"GET / HTTP/1.1\r\nHost: h\r\nX_Forwarded_For: 6.6.6.6\r\nmy_field: v_1\r\n\r\n";
    let run = each_way(one_upstream, request, OK, false);
    let up = &forwarded(&run.upstream[0])[0];
    assert_eq!(up.get("my_field"), ["v_1"]);
    assert!(up.get("X_Forwarded_For").is_empty());
    assert_eq!(up.get("X-Forwarded-For"), ["192.0.2.1"]);
    let line = b"\r\nmy_field: v_1\r\n";
    assert!(
        run.upstream[0].windows(line.len()).any(|w| w == line),
        "name and value byte for byte"
    );
    // An HTTP/1.0 request without Host: the upstream gets one (RFC 9112 §3.2).
    let run = each_way(one_upstream, b"GET / HTTP/1.0\r\n\r\n", OK, false);
    assert_eq!(
        forwarded(&run.upstream[0])[0].get("host"),
        ["127.0.0.1:8080"]
    );
    assert!(run.done, "1.0 without keep-alive closes after the response");
}

#[test]
fn ambiguous_requests_get_400_and_nothing_is_forwarded() {
    // RFC 9112 §2.2, §3, §5, §6.1, §6.3; RFC 9110 §5.5, §8.6.
    let cases: &[&[u8]] = &[
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 4\r\n\r\nabcd",
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +3\r\n\r\nabc",
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x3\r\n\r\nabc",
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3 3\r\n\r\nabc",
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: \r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\nabc",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
        // A list that splits two ways (RFC 9110 §5.6.1, §5.6.4): read
        // at every comma these end in chunked; a quoted-string that does not end makes
        // them one invalid coding (RFC 9112 §7).
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: x;p=\"a, chunked\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: x;p=\"a\\\", chunked\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked;q=1, chunked\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length\t: 3\r\n\r\nabc",
        b"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n\tb\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\nX: a\x00b\r\n\r\n",
        b"GET /a\x00b HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET /a\rb HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET / HTTP/1.1\nHost: h\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\n\n",
        b"GET / HTTP/1.1\r\nHost: h\r\nX\x01Y: a\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\n(X): a\r\n\r\n",
        b"G(T / HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET / HTTP/1.2\r\nHost: h\r\n\r\n",
        b"GET http://u@evil/ HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET http:///x HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\nHost: i\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",
        // RFC 9110 §4.2.1: an empty host in an http URI; RFC 9112 §3.2: raw non-ASCII
        // bytes and a fragment in the target.
        b"GET / HTTP/1.1\r\nHost:\r\n\r\n",
        b"GET /caf\xC3\xA9 HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET /path#frag HTTP/1.1\r\nHost: h\r\n\r\n",
    ];
    cases.iter().for_each(|request| refused_with_400(request));
    // Another major version is refused as one (RFC 9110 §15.6.6), forwarded neither.
    let run = each_way(
        one_upstream,
        b"GET / HTTP/2.0\r\nHost: h\r\n\r\n",
        OK,
        false,
    );
    assert!(run.upstream.is_empty(), "nothing forwarded");
    assert!(run.client.starts_with(b"HTTP/1.1 505 "));
    assert!(run.done, "closed after the 505");
    // RFC 9112 §3: a method longer than any implemented is a 501, not a 414.
    let long = format!("{} / HTTP/1.1\r\nHost: h\r\n\r\n", "M".repeat(100_000));
    let run = each_way(one_upstream, long.as_bytes(), OK, false);
    assert!(run.upstream.is_empty(), "nothing forwarded");
    assert!(run.client.starts_with(b"HTTP/1.1 501 "));
    assert!(run.done, "closed after the 501");
}

#[test]
fn a_repeated_content_length_is_forwarded_once_then_both_sides_close() {
    let request = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nokGET /next HTTP/1.1\r\nHost: h\r\n\r\n";
    let run = each_way(one_upstream, request, OK, false);
    let sent = forwarded(&run.upstream[0]);
    assert_eq!(sent.len(), 1, "the pipelined request after it is not read");
    assert_eq!(
        sent[0].get("connection"),
        ["close"],
        "nor is the upstream connection kept"
    );
    assert_eq!(
        (sent[0].get("content-length"), &sent[0].body[..]),
        (vec!["2"], &b"ok"[..])
    );
    let responses = parse_all(&run.client);
    assert_eq!(responses.len(), 1);
    assert!(responses[0].closes() && run.done);
}

#[test]
fn response_bodies_are_reframed_for_the_client() {
    let get = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n";
    let get10 = b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    // Chunked and close-delimited upstream bodies reach an HTTP/1.1 client chunked.
    let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;e=v\r\nabc\r\n2\r\nde\r\n0\r\nT: v\r\n\r\n";
    for (response, close) in [
        (&chunked[..], false),
        (b"HTTP/1.1 200 OK\r\n\r\nabcde", true),
        (b"HTTP/1.0 200 OK\r\n\r\nabcde", true),
    ] {
        let run = each_way(one_upstream, get, response, close);
        let r = &parse_all(&run.client)[0];
        assert_eq!(
            (r.text().as_str(), r.chunked),
            ("abcde", true),
            "{response:?}"
        );
        assert!(!run.done);
    }
    // An HTTP/1.0 client gets them close-delimited (it has no chunking).
    let run = each_way(one_upstream, get10, chunked, false);
    assert!(
        run.client
            .ends_with(b"Connection: close\r\nVia: 1.1 demo-server\r\n\r\nabcde")
    );
    assert!(run.done);
    // Content-Length passes through; to 1.0 keep-alive it stays open.
    let run = each_way(one_upstream, get10, OK, false);
    let r = &parse_all(&run.client)[0];
    assert_eq!((r.version, r.header("connection")), (0, Some("keep-alive")));
    assert!(!run.done);
    // Transfer codings other than chunked are kept, the body re-chunked after them.
    let coded =
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\n\x1f\x8b\r\n0\r\n\r\n";
    let run = each_way(one_upstream, get, coded, false);
    let r = &parse_all(&run.client)[0];
    assert_eq!(r.header("transfer-encoding"), Some("gzip, chunked"));
    assert_eq!(r.body, b"\x1f\x8b");
    // Each coding as it came, a quoted comma and all (RFC 9110 §5.6.4).
    let coded =
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: x;p=\"a,b\", chunked\r\n\r\n2\r\nxy\r\n0\r\n\r\n";
    let run = each_way(one_upstream, get, coded, false);
    let r = &parse_all(&run.client)[0];
    assert_eq!(r.header("transfer-encoding"), Some("x;p=\"a,b\", chunked"));
    assert_eq!(r.body, b"xy");
    // ... but cannot be told to an HTTP/1.0 client (RFC 9112 §6.1): 502.
    let run = each_way(one_upstream, get10, coded, false);
    assert!(run.client.starts_with(b"HTTP/1.0 502 "));
}

#[test]
fn no_body_for_head_204_and_304() {
    let head = b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\nGET /next HTTP/1.1\r\nHost: h\r\n\r\n";
    let s = one_upstream();
    let mut mem = MemProxy::new(&s.shared, &s.proxy);
    let key = mem.exchange(head, b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n");
    let mut input = mem.client_received();
    let r = parse_response(&mut input, true).unwrap();
    assert_eq!(
        (r.status, r.header("content-length")),
        (200, Some("100")),
        "RFC 9110 §9.3.2"
    );
    assert!(input.is_empty(), "no body");
    // The pipelined GET went up the same (clean) connection.
    assert_eq!(mem.current_connection(), Some(key));
    assert_eq!(forwarded(&mem.upstream(key).received).len(), 2);
    for (response, status) in [
        (
            &b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n"[..],
            204,
        ),
        (
            b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\nETag: \"x\"\r\n\r\n",
            304,
        ),
    ] {
        let run = each_way(
            one_upstream,
            b"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
            response,
            false,
        );
        let r = &parse_all(&run.client)[0];
        assert_eq!((r.status, r.body.len()), (status, 0));
        assert_eq!(
            r.header("content-length").is_some(),
            status == 304,
            "RFC 9110 §8.6"
        );
    }
}

#[test]
fn interim_responses_are_forwarded_but_the_client_gets_one_100() {
    let response = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    let request =
        b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi";
    let run = each_way(one_upstream, request, response, false);
    let text = String::from_utf8_lossy(&run.client).into_owned();
    assert_eq!(text.matches("100 Continue").count(), 1, "{text}");
    assert!(text.starts_with("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\nVia: 1.1 demo-server\r\n\r\nHTTP/1.1 200 OK\r\n"), "{text}");
    let up = &forwarded(&run.upstream[0])[0];
    assert!(
        up.get("expect").is_empty(),
        "the proxy answered the expectation itself"
    );
    assert_eq!(up.body, b"hi");
    // Interim responses are not sent to HTTP/1.0 clients (RFC 9110 §15.2).
    let run = each_way(one_upstream, b"GET / HTTP/1.0\r\n\r\n", response, false);
    assert!(run.client.starts_with(b"HTTP/1.0 200 OK\r\n"));
}

#[test]
fn malformed_responses_are_502_and_the_connection_is_closed() {
    for response in [
        &b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\nok"[..],
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nContent-Length: -2\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\nok",
        // Split at every comma, this would end in chunked (RFC 9110 §5.6.4).
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: x;p=\"a, chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/2 200 OK\r\n\r\n",
        b"ICY 200 OK\r\n\r\n",
        b"\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok",
    ] {
        let run = each_way(
            one_upstream,
            b"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
            response,
            false,
        );
        let text = String::from_utf8_lossy(response);
        assert!(run.client.starts_with(b"HTTP/1.1 502 "), "{text:?}");
        assert!(
            !run.done,
            "the client's connection survives a 502: {text:?}"
        );
    }
    // An oversized head too.
    let huge = format!("HTTP/1.1 200 OK\r\nX: {}\r\n\r\n", "v".repeat(40_000));
    let s = one_upstream();
    let run = run(
        &s,
        b"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
        huge.as_bytes(),
        false,
        4096,
    );
    assert!(run.client.starts_with(b"HTTP/1.1 502 "));
    assert_eq!(s.proxy.upstreams.stats(0).discarded, 1, "closed, not kept");
}

/// RFC 9112 §3.2.4: an absolute-form OPTIONS target with neither path
/// nor query is for the server as a whole: `*` at the origin.
#[test]
fn options_for_the_whole_server_goes_up_in_asterisk_form() {
    for (target, line) in [
        ("http://a.example", "OPTIONS * HTTP/1.1"),
        ("http://a.example:81", "OPTIONS * HTTP/1.1"),
        ("http://a.example?q", "OPTIONS /?q HTTP/1.1"),
        ("http://a.example/", "OPTIONS / HTTP/1.1"),
        ("http://a.example/p?q", "OPTIONS /p?q HTTP/1.1"),
        ("*", "OPTIONS * HTTP/1.1"),
    ] {
        let request = format!("OPTIONS {target} HTTP/1.1\r\nHost: a.example\r\n\r\n");
        let run = each_way(one_upstream, request.as_bytes(), OK, false);
        let up = &forwarded(&run.upstream[0])[0];
        assert_eq!(up.line, line, "{target}");
        assert!(up.get("host")[0].starts_with("a.example"), "{target}");
        assert_eq!(parse_all(&run.client)[0].status, 200);
    }
}

/// RFC 9110 §7.6.2 (Max-Forwards), §9.3.6 (CONNECT), §9.3.8 (TRACE).
/// What the proxy answers itself reaches no upstream.
#[test]
fn max_forwards_is_honoured_and_connect_and_trace_are_never_forwarded() {
    let next = "GET /next HTTP/1.1\r\nHost: h\r\n\r\n";
    let requests_sent =
        |run: &Run| -> Vec<Forwarded> { run.upstream.iter().flat_map(|u| forwarded(u)).collect() };
    // OPTIONS at 0: answered as the final recipient; the connection stays, and the
    // request pipelined after it goes up.
    for target in ["*", "/p", "http://a.example"] {
        let request =
            format!("OPTIONS {target} HTTP/1.1\r\nHost: h\r\nMax-Forwards: 0\r\n\r\n{next}");
        let run = each_way(one_upstream, request.as_bytes(), OK, false);
        let responses = parse_all(&run.client);
        assert_eq!(responses.len(), 2, "{target}");
        let r = &responses[0];
        assert_eq!(r.status, 200, "{target}");
        assert_eq!(r.header("allow"), Some(ALLOW));
        assert_eq!(r.header("content-length"), Some("0"));
        assert!(!r.closes());
        let sent = requests_sent(&run);
        assert_eq!(sent.len(), 1, "{target}");
        assert_eq!(sent[0].line, "GET /next HTTP/1.1");
        assert_eq!(responses[1].text(), "ok");
    }
    // Over 0: forwarded with one less (and only that one field).
    let request =
        b"OPTIONS http://a.example HTTP/1.1\r\nHost: a.example\r\nMax-Forwards: 10\r\n\r\n";
    let run = each_way(one_upstream, request, OK, false);
    let up = &forwarded(&run.upstream[0])[0];
    assert_eq!(up.line, "OPTIONS * HTTP/1.1");
    assert_eq!(up.get("max-forwards"), ["9"]);
    // Other methods: as it came, 0 included (a recipient MAY ignore it).
    let request = b"GET / HTTP/1.1\r\nHost: h\r\nMax-Forwards: 0\r\n\r\n";
    let run = each_way(one_upstream, request, OK, false);
    assert_eq!(forwarded(&run.upstream[0])[0].get("max-forwards"), ["0"]);
    // Not `1*DIGIT`, or two values: 400, nothing forwarded, closed.
    for bad in ["-1", "1, 1", "x", "", "1\r\nMax-Forwards: 1"] {
        let request = format!("OPTIONS * HTTP/1.1\r\nHost: h\r\nMax-Forwards: {bad}\r\n\r\n{next}");
        let run = each_way(one_upstream, request.as_bytes(), OK, false);
        assert!(run.upstream.is_empty(), "{bad:?}");
        let responses = parse_all(&run.client);
        assert_eq!(responses.len(), 1, "{bad:?}");
        assert_eq!(responses[0].status, 400, "{bad:?}");
        assert!(responses[0].closes() && run.done, "{bad:?}");
    }
    // TRACE: 501, whatever Max-Forwards says; the connection stays.
    for max_forwards in ["", "Max-Forwards: 0\r\n", "Max-Forwards: 5\r\n"] {
        let request = format!("TRACE / HTTP/1.1\r\nHost: h\r\n{max_forwards}\r\n{next}");
        let run = each_way(one_upstream, request.as_bytes(), OK, false);
        let responses = parse_all(&run.client);
        assert_eq!(responses[0].status, 501, "{max_forwards:?}");
        let sent = requests_sent(&run);
        assert_eq!(sent.len(), 1, "only the next request went up");
        assert_eq!(sent[0].line, "GET /next HTTP/1.1");
        assert!(!run.done);
    }
    // CONNECT: 501 and closed; what follows its head (a tunnel's bytes, here shaped
    // as a request) is never read as a request, let alone forwarded.
    for target in ["a.example:443", "[::1]:80"] {
        let request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n{next}");
        let run = each_way(one_upstream, request.as_bytes(), OK, false);
        assert!(run.upstream.is_empty(), "{target}");
        let responses = parse_all(&run.client);
        assert_eq!(responses.len(), 1, "{target}");
        assert_eq!(responses[0].status, 501);
        assert!(responses[0].closes() && run.done, "{target}");
    }
}

/// A proxy pair with one request answered on `key`, left idle.
fn warmed(s: &Setup) -> (MemProxy<'_>, usize) {
    let mut mem = MemProxy::new(&s.shared, &s.proxy);
    let key = mem.exchange(b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\n", OK);
    assert!(mem.upstream(key).idle);
    mem.clear_client_received();
    (mem, key)
}

#[test]
fn upstream_connections_are_reused_only_clean() {
    let s = one_upstream();
    let (mut mem, key) = warmed(&s);
    // Reused for the next request.
    mem.client_sends(b"GET /2 HTTP/1.1\r\nHost: h\r\n\r\n");
    mem.run();
    assert_eq!(mem.current_connection(), Some(key));
    // A response with bytes after its end: answered, but the connection is dirty.
    mem.upstream_sends(
        key,
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n",
    );
    mem.run();
    assert_eq!(parse_all(mem.client_received())[0].text(), "ok");
    assert!(mem.upstream(key).closed, "never reused");
    mem.clear_client_received();

    for (request, response) in [
        // The upstream says close.
        (
            &b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"[..],
            &b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"[..],
        ),
        // It answered before the request body was all sent.
        (
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n12345",
            OK,
        ),
        // A body delimited by the close.
        (
            b"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
            b"HTTP/1.1 200 OK\r\n\r\nok",
        ),
        // A HEAD response carrying a body anyway.
        (
            b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        ),
    ] {
        let mut mem = MemProxy::new(&s.shared, &s.proxy);
        let key = mem.exchange(request, response);
        if response.ends_with(b"\r\n\r\nok") && !response.windows(6).any(|w| w == b"Length") {
            mem.upstream_closes(key);
            mem.run();
        }
        assert!(mem.client_received().starts_with(b"HTTP/1.1 200 OK"));
        assert!(
            mem.upstream(key).closed && !mem.upstream(key).idle,
            "{:?}",
            String::from_utf8_lossy(response)
        );
    }
}

/// `Connection` is a list of tokens (RFC 9110 §7.6.1), and a token holds no quote: a
/// stray `"` in one element must not hide the elements after it (as reading it as the
/// start of a quoted-string, §5.6.4, would).
#[test]
fn a_stray_quote_in_connection_hides_no_option() {
    let s = one_upstream();
    // The upstream's `close` is seen: the connection is not pooled.
    let mut mem = MemProxy::new(&s.shared, &s.proxy);
    let key = mem.exchange(
        b"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: a\"b, close\r\n\r\nok",
    );
    assert_eq!(parse_all(mem.client_received())[0].text(), "ok");
    assert!(mem.upstream(key).closed && !mem.upstream(key).idle);

    // The client's: the field it names is removed, and its connection closes.
    let request = b"GET / HTTP/1.1\r\nHost: h\r\nConnection: a\"b, X-Secret, close\r\n\
        X-Secret: 1\r\n\r\n";
    let run = each_way(one_upstream, request, OK, false);
    let up = &forwarded(&run.upstream[0])[0];
    assert!(up.get("x-secret").is_empty(), "named by Connection: {up:?}");
    assert!(run.done, "the client said close");
}

/// `Via` and (from a trusted client) `X-Forwarded-For` are appended to, never split:
/// what the client sent goes on as it came (a quote in a `Via` comment is ctext, RFC
/// 9110 §5.6.5), and the proxy's own element is the last one.
#[test]
fn via_and_x_forwarded_for_are_appended_to_as_they_came() {
    let request = b"GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.2.3.4,, 5.6.7.8\r\n\
        X-Forwarded-For:\r\nVia: 1.0 a (\"hi, there)\r\n\r\n";
    let trusting = || setup(1, |c| c.trust_forwarded = true);
    let run = each_way(trusting, request, OK, false);
    let up = &forwarded(&run.upstream[0])[0];
    assert_eq!(up.get("x-forwarded-for"), ["1.2.3.4,, 5.6.7.8, 192.0.2.1"]);
    assert_eq!(up.get("via"), ["1.0 a (\"hi, there), 1.1 demo-server"]);
}

#[test]
fn a_pooled_connection_the_upstream_closed_is_never_a_502() {
    let s = one_upstream();
    let (mut mem, key) = warmed(&s);
    // Closed while idle: the proxy hears of it and drops it.
    mem.upstream_closes(key);
    assert!(mem.upstream(key).closed && !mem.upstream(key).idle);
    mem.client_sends(b"GET /2 HTTP/1.1\r\nHost: h\r\n\r\n");
    mem.run();
    let fresh = mem.current_connection().unwrap();
    assert_ne!(fresh, key);
    mem.upstream_sends(fresh, OK);
    mem.run();
    assert!(mem.client_received().starts_with(b"HTTP/1.1 200 OK"));
    mem.clear_client_received();

    // Closed just as it is reused (the proxy had not heard yet): retried on a new one.
    for failure in ["closes", "resets"] {
        let (mut mem, key) = warmed(&s);
        mem.client_sends(b"GET /2 HTTP/1.1\r\nHost: h\r\n\r\n");
        mem.run();
        assert_eq!(mem.current_connection(), Some(key));
        if failure == "closes" {
            mem.upstream_closes(key);
        } else {
            mem.upstream_resets(key);
        }
        mem.run();
        let retry = mem.current_connection().unwrap();
        assert_ne!(retry, key, "{failure}: a new connection");
        assert_eq!(
            forwarded(&mem.upstream(retry).received)[0].line,
            "GET /2 HTTP/1.1"
        );
        mem.upstream_sends(retry, OK);
        mem.run();
        assert!(
            mem.client_received().starts_with(b"HTTP/1.1 200 OK"),
            "{failure}"
        );
    }
    let stats = s.proxy.upstreams.stats(0);
    assert_eq!(
        (stats.retries, stats.failures),
        (2, 0),
        "no mark against its health"
    );
}

#[test]
fn failures_before_the_response_are_retried_once_then_502() {
    // Refused: retried once (on another upstream if there is one), then 502.
    let s = setup(1, |_| {});
    let mut mem = MemProxy::new(&s.shared, &s.proxy);
    mem.refused[0] = true;
    mem.client_sends(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    mem.run();
    assert!(mem.client_received().starts_with(b"HTTP/1.1 502 "));
    let stats = s.proxy.upstreams.stats(0);
    assert_eq!((stats.retries, stats.failures), (1, 2));

    let s = setup(2, |_| {});
    let mut mem = MemProxy::new(&s.shared, &s.proxy);
    mem.refused[0] = true;
    mem.client_sends(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    mem.run();
    let key = mem.current_connection().unwrap();
    assert_eq!(mem.upstream(key).upstream, 1, "the other upstream");
    mem.upstream_sends(key, OK);
    mem.run();
    assert!(mem.client_received().starts_with(b"HTTP/1.1 200 "));

    // A POST whose bytes were written is not retried (RFC 9110 §9.2.2).
    let s = one_upstream();
    let (mut mem, key) = warmed(&s);
    mem.client_sends(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi");
    mem.run();
    assert_eq!(mem.current_connection(), Some(key));
    mem.upstream_closes(key);
    mem.run();
    assert!(mem.client_received().starts_with(b"HTTP/1.1 502 "));
    assert_eq!(s.proxy.upstreams.stats(0).retries, 0);
    // Nor anything after a response byte arrived.
    let s = one_upstream();
    let (mut mem, key) = warmed(&s);
    mem.client_sends(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    mem.run();
    mem.upstream_sends(key, b"HTTP/1.1 20");
    mem.upstream_closes(key);
    mem.run();
    assert!(mem.client_received().starts_with(b"HTTP/1.1 502 "));
    assert_eq!(s.proxy.upstreams.stats(0).retries, 0);
}

#[test]
fn no_response_head_in_time_is_504() {
    let s = one_upstream();
    let mut mem = MemProxy::new(&s.shared, &s.proxy);
    let key = mem.exchange(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", b"HTTP/1.1 200 OK\r\n");
    assert!(mem.conn().handler().deadline().is_some());
    mem.upstream_timeout();
    mem.run();
    assert!(mem.client_received().starts_with(b"HTTP/1.1 504 "));
    assert!(mem.upstream(key).closed);
    assert_eq!(s.proxy.upstreams.stats(0).failures, 1);
    // A body that stalls is cut off instead.
    let mut mem = MemProxy::new(&s.shared, &s.proxy);
    let key = mem.exchange(
        b"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
    );
    mem.upstream_timeout();
    mem.run();
    assert!(mem.client_received().ends_with(b"\r\n\r\nabc"));
    assert!(mem.upstream(key).closed, "never reused");
    assert!(
        mem.conn().is_done(),
        "cut off: the client's connection closes"
    );
}

#[test]
fn a_response_cut_short_is_cut_short_for_the_client() {
    let get = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n";
    for response in [
        &b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabcde"[..],
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\nzz\r\n",
    ] {
        let run = each_way(one_upstream, get, response, true);
        let text = String::from_utf8_lossy(&run.client).into_owned();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(!text.ends_with("0\r\n\r\n"), "never completed: {text}");
        assert!(run.done, "the client's connection closes: {text}");
    }
}

#[test]
fn a_client_that_goes_away_takes_its_upstream_connection_with_it() {
    let s = one_upstream();
    let mut mem = MemProxy::new(&s.shared, &s.proxy);
    let key = mem.exchange(
        b"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc",
    );
    mem.client_resets();
    assert!(
        mem.upstream(key).closed && !mem.upstream(key).idle,
        "not pooled"
    );
    assert_eq!(s.proxy.upstreams.stats(0).discarded, 1);
}

#[test]
fn every_upstream_down_is_503_at_once() {
    let s = setup(2, |c| {
        c.health = HealthPolicy {
            max_fails: 1,
            fail_timeout: Duration::from_secs(10),
        }
    });
    let mut mem = MemProxy::new(&s.shared, &s.proxy);
    mem.refused = vec![true, true];
    mem.client_sends(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    mem.run();
    assert!(mem.client_received().starts_with(b"HTTP/1.1 502 "));
    assert_eq!(
        (s.proxy.upstreams.state(0), s.proxy.upstreams.state(1)),
        (State::Down, State::Down)
    );
    mem.clear_client_received();
    let opened = mem.connections().count();
    mem.client_sends(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    mem.run();
    assert!(mem.client_received().starts_with(b"HTTP/1.1 503 "));
    assert_eq!(mem.connections().count(), opened, "no attempt made");
    // After fail_timeout, one request probes each; a success brings it back.
    mem.local.now += Duration::from_secs(11);
    mem.refused = vec![false, false];
    mem.clear_client_received();
    let key = mem.exchange(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", OK);
    assert!(mem.client_received().starts_with(b"HTTP/1.1 200 "));
    assert_eq!(
        s.proxy.upstreams.state(mem.upstream(key).upstream),
        State::Up
    );
}

#[test]
fn memory_stays_bounded_whatever_the_body_sizes() {
    const BODY: usize = 10 << 20;
    // A slow client and a 10 MB response: the upstream is read only as fast as the
    // client reads.
    let s = one_upstream();
    let mut mem = MemProxy::new(&s.shared, &s.proxy);
    mem.client_sends(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    mem.run();
    let key = mem.current_connection().unwrap();
    mem.upstream_sends(
        key,
        format!("HTTP/1.1 200 OK\r\nContent-Length: {BODY}\r\n\r\n").as_bytes(),
    );
    mem.upstream_sends(key, &vec![b'x'; BODY]);
    let mut received = 0;
    let mut head = None;
    while mem.current_connection().is_some() {
        mem.client_room = 100_000;
        mem.run();
        let unread = mem.upstream(key).unread();
        assert!(
            unread >= BODY.saturating_sub(received + 300_000),
            "the upstream waits for the client"
        );
        let output = mem.client_received();
        head = head.or_else(|| {
            output
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map(|i| i + 4)
        });
        received += output.len();
        mem.clear_client_received();
    }
    assert_eq!(received - head.unwrap(), BODY, "the whole body");
    assert!(mem.peak_buffered < 256 * 1024, "peak {}", mem.peak_buffered);

    // A slow upstream and a 10 MB request: the client is read only as fast as the
    // upstream takes it (the test sends as the event loop reads: 64 KiB ahead at most).
    let s = one_upstream();
    let mut mem = MemProxy::new(&s.shared, &s.proxy);
    mem.client_sends(
        format!("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: {BODY}\r\n\r\n").as_bytes(),
    );
    mem.run();
    let key = mem.current_connection().unwrap();
    let mut fed = 0;
    while mem.upstream(key).received.len() < BODY {
        while mem.client_unread() < 64 * 1024 && fed < BODY {
            mem.client_sends(&[b'y'; 16 * 1024]);
            fed += 16 * 1024;
        }
        mem.upstream_room = 100_000;
        mem.run();
        assert!(mem.conn().handler().buffered() <= 32 * 1024);
    }
    let up = &forwarded(&mem.upstream(key).received)[0];
    assert!(up.body.len() == BODY && up.body.iter().all(|&b| b == b'y'));
    assert!(mem.peak_buffered < 256 * 1024, "peak {}", mem.peak_buffered);
}

#[test]
fn idle_upstream_connections_expire() {
    let s = setup(1, |c| c.upstream_idle_timeout = Duration::from_secs(60));
    let (mut mem, key) = warmed(&s);
    let later = mem.local.now + Duration::from_secs(59);
    mem.local.expire(later);
    mem.run();
    assert!(mem.upstream(key).idle, "not yet");
    mem.local.expire(later + Duration::from_secs(1));
    mem.run();
    assert!(
        mem.upstream(key).closed && !mem.upstream(key).idle,
        "expired"
    );
    // The next request opens a new one.
    let fresh = mem.exchange(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", OK);
    assert_ne!(fresh, key);
}

#[test]
fn with_no_idle_connections_allowed_each_request_says_close() {
    let s = setup(1, |c| c.upstream_idle = 0);
    let mut mem = MemProxy::new(&s.shared, &s.proxy);
    let first = mem.exchange(b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\n", OK);
    let second = mem.exchange(b"GET /2 HTTP/1.1\r\nHost: h\r\n\r\n", OK);
    assert_ne!(first, second);
    for key in [first, second] {
        let sent = forwarded(&mem.upstream(key).received);
        assert_eq!(sent[0].get("connection"), ["close"]);
        assert!(mem.upstream(key).closed);
    }
    assert_eq!(parse_all(mem.client_received()).len(), 2);
}

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n";

#[test]
fn interim_responses_of_any_total_size_go_through_and_their_number_is_bounded() {
    // Three 103s of 12 KB each: more than the 32 KiB input buffer together.
    let link = format!("Link: <{}>; rel=preload\r\n", "a".repeat(12_000));
    let mut response = Vec::new();
    for _ in 0..3 {
        response.extend_from_slice(format!("HTTP/1.1 103 Early Hints\r\n{link}\r\n").as_bytes());
    }
    response.extend_from_slice(OK);
    let run = each_way(one_upstream, GET, &response, false);
    let all = parse_all(&run.client);
    let statuses: Vec<u16> = all.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [103, 103, 103, 200]);
    assert_eq!(all[3].text(), "ok");

    // An endless stream of them (here 1820, 32 KiB): 502 after the eighth.
    let mut response = b"HTTP/1.1 103 X\r\n\r\n".repeat(1820);
    response.extend_from_slice(OK);
    let run = each_way(one_upstream, GET, &response, false);
    let all = parse_all(&run.client);
    let statuses: Vec<u16> = all.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [[103; 8].as_slice(), &[502]].concat());
    assert!(!run.done, "the client's connection survives a 502");
}

#[test]
fn the_upstream_timeout_bounds_a_whole_response_head_however_it_trickles_in() {
    let s = setup(1, |c| c.upstream_timeout = Duration::from_secs(10));
    let mut mem = MemProxy::new(&s.shared, &s.proxy);
    mem.client_sends(GET);
    mem.run();
    let key = mem.current_connection().unwrap();
    // A byte every 3 s: the head keeps coming, but is not complete within 10 s.
    let mut fired_after = None;
    for (i, &b) in b"HTTP/1.1 200 OK\r\nX-Pad: aaaaaaaa\r\n".iter().enumerate() {
        mem.upstream_sends(key, &[b]);
        mem.advance(Duration::from_secs(3));
        if !mem.client_received().is_empty() {
            fired_after = Some(i + 1);
            break;
        }
    }
    assert!(
        mem.client_received().starts_with(b"HTTP/1.1 504 "),
        "{:?}",
        String::from_utf8_lossy(mem.client_received())
    );
    assert_eq!(fired_after, Some(4), "at 12 s, the first look past 10 s");
    assert!(mem.upstream(key).closed);

    // During the body it bounds idleness instead: every byte the upstream sends gives
    // it another 10 s, and silence past them cuts the response off.
    let mut mem = MemProxy::new(&s.shared, &s.proxy);
    let key = mem.exchange(GET, b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\na");
    for b in [b"b", b"c"] {
        mem.advance(Duration::from_secs(9));
        mem.upstream_sends(key, b);
        mem.run();
    }
    assert!(!mem.upstream(key).closed, "still going at 18 s");
    mem.advance(Duration::from_secs(10));
    assert!(mem.upstream(key).closed && mem.conn().is_done(), "cut off");
    assert!(mem.client_received().ends_with(b"\r\n\r\nabc"));
}

/// `200 OK` with a body of `n` bytes `fill`, framed by Content-Length.
fn ok_with_body(n: usize, fill: u8) -> Vec<u8> {
    let mut response = format!("HTTP/1.1 200 OK\r\nContent-Length: {n}\r\n\r\n").into_bytes();
    response.resize(response.len() + n, fill);
    response
}

/// The client reads nothing for a minute, then everything.
fn client_resumes_after_a_minute(mem: &mut MemProxy<'_>) {
    mem.advance(Duration::from_secs(60));
    mem.client_room = usize::MAX;
    mem.run();
}

#[test]
fn a_client_that_reads_slowly_is_never_cut_off_by_the_upstream_timeout() {
    let s = setup(1, |c| c.upstream_timeout = Duration::from_secs(2));
    let mut mem = MemProxy::new(&s.shared, &s.proxy);
    mem.client_room = 1000;
    mem.client_sends(GET);
    mem.run();
    let key = mem.current_connection().unwrap();
    mem.upstream_sends(key, &ok_with_body(200_000, b'x'));
    mem.run();
    // The client reads nothing for a minute: the proxy's buffers are full, it waits
    // on the client (whose own limit, the write timeout, is the event loop's).
    assert!(mem.upstream(key).unread() > 0);
    assert_eq!(
        mem.conn().handler().deadline(),
        None,
        "waiting on the client"
    );
    client_resumes_after_a_minute(&mut mem);
    let r = &parse_all(mem.client_received())[0];
    assert_eq!(r.body.len(), 200_000, "the whole body");
    assert!(mem.upstream(key).idle, "and the connection kept");
    assert_eq!(s.proxy.upstreams.stats(0).failures, 0);
}

/// The same when the rest of the response is already in the proxy's input buffer
/// (the upstream owes nothing more, the buffer is not full): the proxy waits on the
/// client, not the upstream, whatever the body size (found by review: bodies of
/// 71 to 96 kB were cut at 66,435 bytes).
#[test]
fn a_client_that_stops_reading_is_never_cut_off_when_the_upstream_has_sent_everything() {
    let s = setup(1, |c| c.upstream_timeout = Duration::from_secs(2));
    for n in (1_000..200_000).step_by(4_999) {
        let mut mem = MemProxy::new(&s.shared, &s.proxy);
        mem.client_room = 1000;
        mem.client_sends(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
        mem.run();
        let key = mem.current_connection().unwrap();
        mem.upstream_sends(key, &ok_with_body(n, b'x'));
        mem.run();
        client_resumes_after_a_minute(&mut mem);
        let r = &parse_all(mem.client_received())[0];
        assert_eq!(r.body.len(), n, "a {n}-byte body");
    }
}

/// The same when the client's output is past its high-water mark, so the connection
/// stops asking for the response at all: bytes that arrive then wait on the client
/// (found by review: an output filled to exactly 64 KiB, or a pipelined second head
/// taking it past, let the upstream timeout cut the body that followed).
#[test]
fn bytes_arriving_while_the_clients_output_is_full_wait_on_the_client() {
    let s = setup(1, |c| c.upstream_timeout = Duration::from_secs(2));
    // One response whose first part fills the output (head + body = 65,536 at 65,435).
    for first in [65_300, 65_435, 65_436, 65_600] {
        let mut mem = MemProxy::new(&s.shared, &s.proxy);
        mem.client_room = 0;
        mem.client_sends(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
        mem.run();
        let key = mem.current_connection().unwrap();
        let mut head_and_first = ok_with_body(first + 1000, b'a');
        head_and_first.truncate(head_and_first.len() - 1000);
        mem.upstream_sends(key, &head_and_first);
        mem.run();
        mem.upstream_sends(key, &[b'a'; 1000]);
        mem.run();
        client_resumes_after_a_minute(&mut mem);
        assert_eq!(
            parse_all(mem.client_received())[0].body.len(),
            first + 1000,
            "{first}"
        );
    }
    // Pipelined: the second head takes the output past the mark, its body follows.
    for n1 in [65_000, 65_400, 65_430] {
        let mut mem = MemProxy::new(&s.shared, &s.proxy);
        mem.client_room = 0;
        mem.client_sends(b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n");
        mem.run();
        let key = mem.current_connection().unwrap();
        mem.upstream_sends(key, &ok_with_body(n1, b'a'));
        mem.run();
        let key2 = mem.current_connection().expect("request 2 forwarded");
        mem.upstream_sends(key2, b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
        mem.run();
        mem.upstream_sends(key2, &[b'b'; 1000]);
        mem.run();
        client_resumes_after_a_minute(&mut mem);
        let responses = parse_all(mem.client_received());
        assert_eq!(responses.len(), 2, "{n1}");
        assert_eq!(responses[1].body, vec![b'b'; 1000], "{n1}");
    }
}

/// Head bytes too: interim responses take the client's output past its high-water
/// mark, then the final head arrives in time; the client pauses a minute. The head waits
/// on the client, not the upstream (found by review: a 504, and a mark against the
/// upstream).
#[test]
fn a_head_arriving_while_the_clients_output_is_full_waits_on_the_client() {
    let s = setup(1, |c| c.upstream_timeout = Duration::from_secs(2));
    let mut mem = MemProxy::new(&s.shared, &s.proxy);
    mem.client_room = 0;
    mem.client_sends(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    mem.run();
    let key = mem.current_connection().unwrap();
    let link = format!("Link: <{}>; rel=preload\r\n", "a".repeat(10_000));
    for _ in 0..7 {
        mem.upstream_sends(
            key,
            format!("HTTP/1.1 103 Early Hints\r\n{link}\r\n").as_bytes(),
        );
        mem.run();
    }
    mem.upstream_sends(key, OK);
    mem.run();
    client_resumes_after_a_minute(&mut mem);
    let statuses: Vec<u16> = parse_all(mem.client_received())
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [103, 103, 103, 103, 103, 103, 103, 200]);
    assert_eq!(s.proxy.upstreams.stats(0).failures, 0);
}

/// An upstream that resets the connection after sending a whole response (it closed
/// with request bytes unread, or with `SO_LINGER 0`): the kernel hands over every byte
/// before the reset, and the proxy delivers them all; a body the reset did cut short is
/// cut short for the client.
#[test]
fn a_reset_after_a_whole_response_loses_none_of_it() {
    for (sent, complete) in [(90_000, true), (80_000, false)] {
        let s = one_upstream();
        let mut mem = MemProxy::new(&s.shared, &s.proxy);
        mem.client_room = 0;
        mem.client_sends(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
        mem.run();
        let key = mem.current_connection().unwrap();
        let mut resp = b"HTTP/1.1 200 OK\r\nContent-Length: 90000\r\n\r\n".to_vec();
        resp.resize(resp.len() + sent, b'a');
        mem.upstream_sends(key, &resp);
        mem.run();
        mem.upstream_resets(key);
        mem.run();
        mem.client_room = usize::MAX;
        mem.run();
        let raw = mem.client_received();
        let body = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|p| raw.len() - p - 4);
        assert_eq!(
            body,
            Some(sent),
            "what the upstream sent reached the client"
        );
        assert_eq!(
            mem.conn().is_done(),
            !complete,
            "a cut response closes the client"
        );
        assert!(mem.upstream(key).closed && !mem.upstream(key).idle);
    }
}

#[test]
fn a_client_that_sends_its_body_slowly_is_not_the_upstreams_fault() {
    let s = setup(1, |c| c.upstream_timeout = Duration::from_secs(2));
    let head = b"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n";
    // Before the response head: the upstream waits for the rest of the body.
    let mut mem = MemProxy::new(&s.shared, &s.proxy);
    mem.client_sends(&[&head[..], b"12345"].concat());
    mem.run();
    let key = mem.current_connection().unwrap();
    mem.advance(Duration::from_secs(60));
    mem.client_sends(b"67890");
    mem.run();
    mem.upstream_sends(key, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    mem.run();
    assert_eq!(parse_all(mem.client_received())[0].text(), "ok");
    // After it: an echo, which streams back what it got and waits for more.
    let mut mem = MemProxy::new(&s.shared, &s.proxy);
    mem.client_sends(&[&head[..], b"12345"].concat());
    mem.run();
    let key = mem.current_connection().unwrap();
    mem.upstream_sends(key, b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345");
    mem.run();
    mem.advance(Duration::from_secs(60));
    assert!(!mem.upstream(key).closed, "not cut off");
    mem.client_sends(b"67890");
    mem.run();
    // The rest of the body went up at once: the upstream is waited for again.
    assert!(mem.conn().handler().deadline().is_some());
    mem.upstream_sends(key, b"67890");
    mem.run();
    assert_eq!(parse_all(mem.client_received())[0].text(), "1234567890");
    assert_eq!(s.proxy.upstreams.stats(0).failures, 0);
}

#[test]
fn a_local_error_on_connect_is_a_502_and_no_mark_against_the_upstream() {
    let s = setup(2, |c| {
        c.health = HealthPolicy {
            max_fails: 1,
            fail_timeout: Duration::from_secs(10),
        }
    });
    let mut mem = MemProxy::new(&s.shared, &s.proxy);
    mem.local_error = true; // out of file descriptors
    mem.client_sends(GET);
    mem.run();
    assert!(mem.client_received().starts_with(b"HTTP/1.1 502 "));
    let stats = s.proxy.upstreams.stats(0);
    assert_eq!(
        (stats.failures, stats.retries, stats.connect_failures),
        (0, 0, 1),
        "not retried: the next connect would fail alike"
    );
    assert_eq!(s.proxy.upstreams.stats(1), Default::default());
    assert_eq!(
        (s.proxy.upstreams.state(0), s.proxy.upstreams.state(1)),
        (State::Up, State::Up)
    );
    // Descriptors free up: requests go through at once.
    mem.local_error = false;
    mem.clear_client_received();
    mem.exchange(GET, OK);
    assert!(mem.client_received().starts_with(b"HTTP/1.1 200 "));
}

#[test]
fn retries_are_counted_on_the_upstream_that_failed_and_only_connections_made_as_opened() {
    let s = setup(2, |_| {});
    let mut mem = MemProxy::new(&s.shared, &s.proxy);
    mem.refused[0] = true;
    let key = mem.exchange(GET, OK);
    assert_eq!(mem.upstream(key).upstream, 1);
    assert!(mem.client_received().starts_with(b"HTTP/1.1 200 "));
    let (refused, other) = (s.proxy.upstreams.stats(0), s.proxy.upstreams.stats(1));
    assert_eq!(
        (
            refused.retries,
            refused.failures,
            refused.opened,
            refused.connect_failures
        ),
        (1, 1, 0, 1)
    );
    assert_eq!(
        (
            other.retries,
            other.failures,
            other.opened,
            other.connect_failures
        ),
        (0, 0, 1, 0)
    );
}

#[test]
fn a_request_without_host_retried_elsewhere_names_the_upstream_it_goes_to() {
    let s = setup(2, |_| {});
    let mut mem = MemProxy::new(&s.shared, &s.proxy);
    mem.refused[0] = true;
    let key = mem.exchange(b"GET /a HTTP/1.0\r\nX: y\r\n\r\n", OK);
    assert_eq!(mem.upstream(key).upstream, 1);
    let sent = forwarded(&mem.upstream(key).received);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].line, "GET /a HTTP/1.1");
    assert_eq!(sent[0].get("host"), ["127.0.0.1:8081"], "{sent:?}");
    assert_eq!(sent[0].get("x"), ["y"]);
    assert!(
        sent[0].get("x-forwarded-host").is_empty(),
        "the client sent no Host"
    );
    // A Host the client sent is kept as it was, whichever upstream takes it.
    let mut mem = MemProxy::new(&s.shared, &s.proxy);
    mem.refused[0] = true;
    let key = mem.exchange(b"GET /a HTTP/1.0\r\nHost: 127.0.0.1:8080\r\n\r\n", OK);
    assert_eq!(mem.upstream(key).upstream, 1);
    let sent = forwarded(&mem.upstream(key).received);
    assert_eq!(sent[0].get("host"), ["127.0.0.1:8080"]);
}

/// The copy buffers a request waiting on its upstream holds, and those taken after.
fn copy_buffers_in_use(s: &Setup) -> u64 {
    s.proxy.buffers.stats().in_use()
}

#[test]
fn exchanges_waiting_on_their_upstreams_hold_no_copy_buffer() {
    // A copy buffer is held only while it has bytes to move: once a request is written
    // whole, its exchange holds none while it waits for the response (an idle server
    // with many requests in progress would otherwise keep two per request, and its
    // pool as many once they end), and each exchange gives back what it took.
    let s = one_upstream();
    let requests: [&[u8]; 4] = [
        GET,
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello",
        // Idempotent: kept for a retry, but not in a copy buffer.
        b"PUT / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        b"GET /a HTTP/1.0\r\n\r\n",
    ];
    let mut waiting: Vec<MemProxy<'_>> = Vec::new();
    for (i, request) in requests.iter().cycle().take(12).enumerate() {
        let mut mem = MemProxy::new(&s.shared, &s.proxy);
        for piece in request.chunks([request.len(), 7, 1][i % 3]) {
            mem.client_sends(piece);
            mem.run();
        }
        let key = mem.current_connection().expect("forwarded");
        assert_eq!(
            forwarded(&mem.upstream(key).received).len(),
            1,
            "written whole"
        );
        waiting.push(mem);
        assert_eq!(copy_buffers_in_use(&s), 0, "{} exchanges waiting", i + 1);
    }
    for (i, mem) in waiting.iter_mut().enumerate() {
        let key = mem.current_connection().unwrap();
        for piece in OK.chunks([OK.len(), 7, 1][i % 3]) {
            mem.upstream_sends(key, piece);
            mem.run();
        }
        assert_eq!(&mem.client_received()[8..15], b" 200 OK", "{i}");
        assert_eq!(copy_buffers_in_use(&s), 0, "after exchange {i}");
        if i % 4 == 3 {
            assert!(mem.conn().is_done(), "HTTP/1.0: closed");
            continue;
        }
        // The next request on the same client connection, on the same upstream one.
        mem.clear_client_received();
        assert_eq!(mem.exchange(GET, OK), key, "reused");
        assert!(mem.client_received().starts_with(b"HTTP/1.1 200 OK"), "{i}");
        assert_eq!(copy_buffers_in_use(&s), 0, "after exchange {i} again");
    }

    // Nor while its connection is being made (or the upstream takes nothing yet): a
    // short request without a body waits in the exchange's own state.
    let mut waiting: Vec<MemProxy<'_>> = Vec::new();
    for (i, request) in [GET, b"GET /a HTTP/1.0\r\n\r\n"].iter().enumerate() {
        let mut mem = MemProxy::new(&s.shared, &s.proxy);
        mem.upstream_room = 0;
        mem.client_sends(request);
        mem.run();
        assert!(mem.current_connection().is_some());
        waiting.push(mem);
        assert_eq!(copy_buffers_in_use(&s), 0, "{} requests unwritten", i + 1);
    }
    for mem in &mut waiting {
        mem.upstream_room = usize::MAX;
        mem.run();
        let key = mem.current_connection().unwrap();
        assert_eq!(
            forwarded(&mem.upstream(key).received).len(),
            1,
            "written whole"
        );
        mem.upstream_sends(key, OK);
        mem.run();
        assert_eq!(&mem.client_received()[8..15], b" 200 OK");
        assert_eq!(copy_buffers_in_use(&s), 0);
    }
}

#[test]
fn a_written_request_held_for_a_retry_is_resent_whole() {
    // The bytes of a request sent whole are kept outside the copy buffers while a
    // retry may need them (RFC 9110 §9.2.2: an idempotent one, reset before any response
    // byte): the retry sends them again, to another upstream with its own `Host` if the
    // client sent none, a head too long to keep that way in its buffer.
    let long = format!(
        "GET /long HTTP/1.1\r\nHost: h\r\nX-Long: {}\r\n\r\n",
        "x".repeat(3000)
    );
    let requests: [&[u8]; 3] = [GET, b"GET /a HTTP/1.0\r\nX: y\r\n\r\n", long.as_bytes()];
    for request in requests {
        let s = setup(2, |_| {});
        let mut mem = MemProxy::new(&s.shared, &s.proxy);
        mem.client_sends(request);
        mem.run();
        let first = mem.current_connection().unwrap();
        let sent = forwarded(&mem.upstream(first).received);
        assert_eq!(sent.len(), 1, "written whole");
        mem.upstream_resets(first);
        mem.run();
        let retry = mem.current_connection().unwrap();
        assert_ne!(retry, first);
        assert_eq!(mem.upstream(retry).upstream, 1, "the other upstream");
        let resent = forwarded(&mem.upstream(retry).received);
        assert_eq!(resent.len(), 1);
        assert_eq!(resent[0].line, sent[0].line);
        if request.starts_with(b"GET /a HTTP/1.0") {
            assert_eq!(sent[0].get("host"), ["127.0.0.1:8080"]);
            assert_eq!(resent[0].get("host"), ["127.0.0.1:8081"]);
        } else {
            assert_eq!(resent[0], sent[0]);
        }
        mem.upstream_sends(retry, OK);
        mem.run();
        let answer = String::from_utf8_lossy(mem.client_received());
        assert!(
            answer.starts_with("HTTP/1.") && answer[8..].starts_with(" 200 OK"),
            "{answer}"
        );
        assert_eq!(s.proxy.upstreams.stats(0).retries, 1);
        assert_eq!(copy_buffers_in_use(&s), 0);
    }
}

/// An upload the upstream answers early (`413`, `Connection: close`) and then resets,
/// its body unread: the answer is in the proxy's socket before the reset, so the client
/// gets it, in whichever order the proxy meets the two (the failed write first, or the
/// answer first), and the upstream that answered gets no failure mark.
#[test]
fn an_early_answer_then_a_reset_is_delivered_in_either_order() {
    const EARLY: &[u8] =
        b"HTTP/1.1 413 Content Too Large\r\nConnection: close\r\nContent-Length: 4\r\n\r\nbig!";
    for write_fails_first in [true, false] {
        let s = setup(1, |c| {
            c.health = HealthPolicy {
                max_fails: 1,
                fail_timeout: Duration::from_secs(10),
            }
        });
        let mut mem = MemProxy::new(&s.shared, &s.proxy);
        mem.upstream_room = 1000; // the upstream reads the head, then stops reading
        let mut upload = b"POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 200000\r\n\r\n".to_vec();
        upload.resize(upload.len() + 200_000, b'u');
        mem.client_sends(&upload[..60_000]);
        mem.run();
        let key = mem.current_connection().unwrap();
        mem.upstream_sends(key, EARLY);
        if write_fails_first {
            mem.upstream_resets(key); // both arrive before the proxy runs again
            mem.upstream_room = usize::MAX;
            mem.run();
        } else {
            mem.run(); // the answer is read while the request is still being written
            mem.upstream_resets(key);
            mem.upstream_room = usize::MAX;
            mem.run();
        }
        mem.client_sends(&upload[60_000..]);
        mem.run();
        let (responses, rest) = decode(mem.client_received());
        assert_eq!(
            (responses.len(), rest),
            (1, 0),
            "write fails first: {write_fails_first}: {:?}",
            String::from_utf8_lossy(mem.client_received())
        );
        assert_eq!(
            (responses[0].0, responses[0].2.as_slice()),
            (413, &b"big!"[..]),
            "write fails first: {write_fails_first}"
        );
        let stats = s.proxy.upstreams.stats(0);
        assert_eq!(
            (stats.failures, stats.retries),
            (0, 0),
            "write fails first: {write_fails_first}"
        );
        assert_eq!(s.proxy.upstreams.state(0), State::Up);
        assert!(mem.upstream(key).closed && !mem.upstream(key).idle);
    }
}

/// A group of one upstream is never taken out, as nginx ignores `max_fails` for a
/// single server: taking it out answers every client 503 for `fail_timeout`, which a
/// few failed requests of one client could then cause at will. Its failures are still
/// counted, and each request still tries it.
#[test]
fn a_single_upstream_is_never_taken_out() {
    let s = setup(1, |c| {
        c.health = HealthPolicy {
            max_fails: 1,
            fail_timeout: Duration::from_secs(10),
        }
    });
    let mut mem = MemProxy::new(&s.shared, &s.proxy);
    mem.refused = vec![true];
    for attempt in 1..=3 {
        mem.clear_client_received();
        mem.client_sends(GET);
        mem.run();
        assert!(
            mem.client_received().starts_with(b"HTTP/1.1 502 "),
            "attempt {attempt}: tried, not 503"
        );
        assert_eq!(s.proxy.upstreams.state(0), State::Up);
    }
    assert_eq!(
        s.proxy.upstreams.stats(0).failures,
        6,
        "each try and its retry"
    );
    mem.refused = vec![false];
    mem.clear_client_received();
    mem.exchange(GET, OK);
    assert!(mem.client_received().starts_with(b"HTTP/1.1 200 "));
}

/// A chunk size is `1*HEXDIG` (RFC 9112 §7.1): leading zeros are valid however many,
/// and do not count against the 16 significant digits a size may have.
#[test]
fn a_chunk_size_with_many_leading_zeros_is_read_as_its_value() {
    let zeros = "0".repeat(40);
    let response = format!(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n00000000000000003\r\nabc\r\n{zeros}2\r\nde\r\n{zeros}\r\n\r\n"
    );
    let run = each_way(one_upstream, GET, response.as_bytes(), false);
    let (responses, rest) = decode(&run.client);
    assert_eq!(rest, 0, "{:?}", String::from_utf8_lossy(&run.client));
    assert_eq!(
        (responses[0].0, responses[0].2.as_slice()),
        (200, &b"abcde"[..])
    );
    assert!(!run.done, "the client's connection stays open");
}

/// `request`, fed each way, is answered 400 and closed, and nothing reaches the upstream.
fn refused_with_400(request: &[u8]) {
    let run = each_way(one_upstream, request, OK, false);
    let text = String::from_utf8_lossy(request);
    assert!(run.upstream.is_empty(), "nothing forwarded: {text:?}");
    assert!(run.client.starts_with(b"HTTP/1.1 400 "), "{text:?}");
    assert!(run.done, "closed after the 400: {text:?}");
}

/// A name that reads as a framing or hop-by-hop field once `_` is read as `-` (as CGI
/// folds names: RFC 3875 §4.1.18, `HTTP_CONTENT_LENGTH`) is a second framing a next hop
/// may believe: such a request is refused, never forwarded.
#[test]
fn names_that_fold_to_framing_or_hop_by_hop_fields_get_400() {
    let cases: &[&[u8]] = &[
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent_Length: 0\r\n\r\nabc",
        b"POST / HTTP/1.1\r\nHost: h\r\ncontent_length: 3\r\n\r\nabc",
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer_Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nTRANSFER_ENCODING: chunked\r\n\r\n0\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\nKeep_Alive: timeout=5\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\nProxy_Connection: close\r\n\r\n",
    ];
    cases.iter().for_each(|request| refused_with_400(request));
    // Names that merely contain `_` go as they came (RFC 9110 §5.1: tokens).
    let run = each_way(
        one_upstream,
        b"GET / HTTP/1.1\r\nHost: h\r\nX_Content_Length: 3\r\nContent_Type: a\r\n\r\n",
        OK,
        false,
    );
    let up = &forwarded(&run.upstream[0])[0];
    assert_eq!(up.get("x_content_length"), ["3"]);
    assert_eq!(up.get("content_type"), ["a"]);
}

/// By default the proxy is the trust boundary: a client's `Forwarded: for=9.9.9.9`,
/// `X-Real-IP` and `X_Forwarded_For` (which CGI reads as `X-Forwarded-For`) never reach
/// the upstream, and the proxy's own fields say who the client is. Behind trusted
/// proxies (`--trust-forwarded`) they go on, appended to.
#[test]
fn forwarding_fields_a_client_sends_are_not_believed_unless_trusted() {
    let request = b"GET / HTTP/1.1\r\nHost: h\r\nForwarded: for=9.9.9.9;proto=https\r\n\
        X-Real-IP: 8.8.8.8\r\nX_Forwarded_For: 7.7.7.7\r\nX-Forwarded-Proto: https\r\n\
        X-Forwarded-Ssl: on\r\n\r\n";
    let run = each_way(one_upstream, request, OK, false);
    let up = &forwarded(&run.upstream[0])[0];
    let names: Vec<_> = up.fields.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "Host",
            "Via",
            "X-Forwarded-For",
            "Forwarded",
            "X-Forwarded-Host",
            "X-Forwarded-Proto"
        ]
    );
    assert_eq!(up.get("forwarded"), ["for=192.0.2.1;host=h;proto=http"]);
    assert_eq!(up.get("x-forwarded-for"), ["192.0.2.1"]);
    assert_eq!(up.get("x-forwarded-proto"), ["http"]);

    let trusting = || setup(1, |c| c.trust_forwarded = true);
    let run = each_way(trusting, request, OK, false);
    let up = &forwarded(&run.upstream[0])[0];
    assert_eq!(
        up.get("forwarded"),
        ["for=9.9.9.9;proto=https, for=192.0.2.1;host=h;proto=http"]
    );
    assert_eq!(up.get("x-real-ip"), ["8.8.8.8"]);
    assert_eq!(up.get("x_forwarded_for"), ["7.7.7.7"]);
    assert_eq!(up.get("x-forwarded-for"), ["192.0.2.1"]);
    assert_eq!(up.get("x-forwarded-proto"), ["https"]);
    assert_eq!(up.get("x-forwarded-ssl"), ["on"]);
}

#[test]
fn forwarded_response_fields_are_written_out_the_same_however_they_were_spaced() {
    // Lines that came as the proxy writes them are copied as they are (runs of them at
    // once); the others are written out anew. Either way the client gets each field
    // as `name: value` with the value httparse read, in order, the connection's own
    // fields and the hop-by-hop ones left out.
    let response: &[u8] = b"HTTP/1.1 200 OK\r\nServer: up\r\nX-Tab:\tv\r\nX-Two:  v\r\n\
        X-None:v\r\nX-Trail: v \t\r\nX-Empty: \r\nX-Bare:\r\nDate: Mon, 07 Nov 1994 08:49:37 GMT\r\n\
        X-A: 1\r\nX-B: 2\r\nKeep-Alive: timeout=4\r\nX-C: 3\r\nContent-Length: 3\r\nX-D: 4\r\n\r\nabc";
    let mut storage = [httparse::EMPTY_HEADER; 32];
    let mut parsed = httparse::Response::new(&mut storage);
    let head_len = match parsed.parse(response).unwrap() {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => unreachable!(),
    };
    let mut expected =
        b"HTTP/1.1 200 OK\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nContent-Length: 3\r\n".to_vec();
    for f in parsed.headers.iter() {
        if !["date", "content-length", "keep-alive"]
            .iter()
            .any(|n| f.name.eq_ignore_ascii_case(n))
        {
            expected.extend_from_slice(format!("{}: ", f.name).as_bytes());
            expected.extend_from_slice(f.value);
            expected.extend_from_slice(b"\r\n");
        }
    }
    expected.extend_from_slice(b"Via: 1.1 demo-server\r\n\r\nabc");
    assert_eq!(&response[head_len..], b"abc");
    for step in [response.len(), 7, 1] {
        let run = run(
            &one_upstream(),
            b"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
            response,
            false,
            step,
        );
        assert_eq!(
            String::from_utf8_lossy(&run.client),
            String::from_utf8_lossy(&expected),
            "fed in {step}-byte pieces"
        );
    }
}

#[test]
fn a_request_without_a_body_goes_up_whole_and_is_retried_whatever_its_head_length() {
    // A short head is written into the exchange's replay copy, a long one (over 2 KiB
    // rewritten) into an output buffer: either way the upstream gets all of it, again
    // on a retry, and the next short request is whole too (nothing left behind).
    let s = one_upstream();
    for len in [10, 1900, 2100, 5000, 12_000] {
        let (mut mem, key) = warmed(&s);
        let request = format!(
            "GET /{len} HTTP/1.1\r\nHost: h\r\nX-Pad: {}\r\n\r\n",
            "p".repeat(len)
        );
        mem.client_sends(request.as_bytes());
        mem.run();
        assert_eq!(mem.current_connection(), Some(key));
        mem.upstream_resets(key);
        mem.run();
        let retry = mem.current_connection().unwrap();
        assert_ne!(retry, key, "{len}: a new connection");
        let sent = forwarded(&mem.upstream(retry).received);
        assert_eq!(sent.len(), 1, "{len}");
        assert_eq!(sent[0].line, format!("GET /{len} HTTP/1.1"));
        assert_eq!(sent[0].get("x-pad"), ["p".repeat(len)], "{len}");
        mem.upstream_sends(retry, OK);
        mem.run();
        assert!(
            mem.client_received().starts_with(b"HTTP/1.1 200 OK"),
            "{len}"
        );
        mem.clear_client_received();
        mem.clear_upstream_received(retry);
        mem.client_sends(b"GET /next HTTP/1.1\r\nHost: h\r\n\r\n");
        mem.run();
        let next = forwarded(&mem.upstream(retry).received);
        assert_eq!(next.len(), 1, "{len}");
        assert_eq!(next[0].line, "GET /next HTTP/1.1");
        assert_eq!(next[0].get("x-pad"), Vec::<&str>::new());
    }
}
