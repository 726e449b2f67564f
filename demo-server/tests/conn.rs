//! Sans-I/O tests of the connection state machine: every rule, fed in one piece, in
//! odd-sized pieces and byte by byte.

mod common;

use std::time::{Duration, SystemTime};

use common::{Response, parse_all, parse_response};
use demo_server::app::App;
use demo_server::http::RequestError;
use demo_server::http::conn::{Conn, WRITE_HIGH_WATER};
use demo_server::state::{Limits, Shared};
use recycle_pool::io::{ReadBuf, WriteBuf};
use recycle_pool::status::Clock;

struct Frozen;
impl Clock for Frozen {
    fn now(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777)
    }
}

fn shared(limits: Limits) -> Shared {
    Shared::with_clock(limits, 1, false, Box::new(Frozen))
}

fn limits() -> Limits {
    Limits {
        max_head_bytes: 4096,
        max_body_bytes: 1000,
        ..Limits::default()
    }
}

/// What a connection did with some input.
struct Outcome {
    output: Vec<u8>,
    done: bool,
    error: Option<RequestError>,
    /// Largest amount of output pending at once.
    peak_output: usize,
    /// Input left unprocessed at the end (the event loop times a head out, or answers
    /// an EOF with a 400, only while some is left).
    unread: usize,
}

/// Feeds `input` in pieces of `step` bytes, flushing output after every call, then
/// (if `eof`) closes the input side.
fn drive(shared: &Shared, input: &[u8], step: usize, eof: bool) -> Outcome {
    let mut ctx = shared.context(0);
    let mut conn = Conn::new(App::new(shared));
    let mut rbuf = ReadBuf::new();
    let mut wbuf = WriteBuf::new();
    let mut output = Vec::new();
    let mut peak_output = 0;
    let mut pump = |conn: &mut Conn<App<'_>>,
                    rbuf: &mut ReadBuf,
                    wbuf: &mut WriteBuf,
                    output: &mut Vec<u8>| loop {
        conn.process(rbuf, wbuf, &mut ctx, &mut ());
        peak_output = peak_output.max(wbuf.len());
        if wbuf.is_empty() {
            break;
        }
        wbuf.flush_to(output).unwrap();
    };
    for piece in input.chunks(step.max(1)) {
        rbuf.extend_from_slice(piece);
        pump(&mut conn, &mut rbuf, &mut wbuf, &mut output);
    }
    if eof && !conn.is_done() {
        let mut ctx = shared.context(0);
        conn.on_eof(!rbuf.is_empty(), &mut wbuf, &mut ctx, &mut ());
        wbuf.flush_to(&mut output).unwrap();
    }
    Outcome {
        output,
        done: conn.is_done(),
        error: conn.error(),
        peak_output,
        unread: rbuf.len(),
    }
}

/// Runs `input` whole, in 7-byte pieces and byte by byte (each on fresh state),
/// checks that the three give the same responses (chunk boundaries of a re-chunked
/// echo may differ, the decoded bodies may not), and returns the whole-input run.
fn each_way(limits: Limits, input: &[u8]) -> (Vec<Response>, Outcome) {
    let whole = drive(&shared(limits.clone()), input, input.len(), false);
    let expected = parse_all(&whole.output);
    for step in [7, 1] {
        let pieces = drive(&shared(limits.clone()), input, step, false);
        let got = parse_all(&pieces.output);
        assert_eq!(got.len(), expected.len(), "fed in {step}-byte pieces");
        for (a, b) in got.iter().zip(&expected) {
            assert_eq!(
                (a.status, &a.headers, &a.body),
                (b.status, &b.headers, &b.body),
                "fed in {step}-byte pieces"
            );
        }
        assert_eq!((pieces.done, pieces.error), (whole.done, whole.error));
    }
    (expected, whole)
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n")
}

#[test]
fn hello_keeps_the_connection_open() {
    let (responses, outcome) = each_way(limits(), get("/").as_bytes());
    assert_eq!(responses.len(), 1);
    let r = &responses[0];
    assert_eq!(
        (r.status, r.version, r.text().as_str()),
        (200, 1, "Hello, World!")
    );
    assert_eq!(r.header("date"), Some("Sun, 06 Nov 1994 08:49:37 GMT"));
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert!(!r.closes() && !outcome.done);
}

#[test]
fn http10_closes_unless_keep_alive() {
    let (responses, outcome) = each_way(limits(), b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(responses[0].version, 0);
    assert!(responses[0].closes() && outcome.done);

    let req = b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\n\r\n";
    let (responses, outcome) = each_way(limits(), req);
    assert_eq!(responses.len(), 2);
    assert_eq!(responses[0].header("connection"), Some("keep-alive"));
    assert!(responses[1].closes() && outcome.done);
}

#[test]
fn connection_close_is_honoured() {
    let req =
        "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n";
    let (responses, outcome) = each_way(limits(), req.as_bytes());
    assert_eq!(responses.len(), 1, "nothing after a close is answered");
    assert!(responses[0].closes() && outcome.done);
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let mut req = String::new();
    for i in 0..50 {
        req += &get(&format!("/bytes/{i}"));
    }
    let (responses, outcome) = each_way(limits(), req.as_bytes());
    assert_eq!(responses.len(), 50);
    for (i, r) in responses.iter().enumerate() {
        assert_eq!(r.body.len(), i);
    }
    assert!(!outcome.done);
}

#[test]
fn content_length_zero_is_a_body_of_nothing() {
    // RFC 9112 §6.2: `Content-Length: 0` frames an empty body; nothing is waited for,
    // and the next request follows at once (on GET, and on the echo route).
    let req = "GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n\
               POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n\
               POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n\
               GET /bytes/1 HTTP/1.1\r\nHost: t\r\n\r\n";
    let (responses, outcome) = each_way(limits(), req.as_bytes());
    let got: Vec<_> = responses.iter().map(|r| (r.status, r.body.len())).collect();
    assert_eq!(
        got,
        [(200, 13), (200, 0), (200, 0), (200, 1)],
        "no 100 for no body"
    );
    assert!(!outcome.done);
}

#[test]
fn a_repeated_content_length_is_answered_then_closed() {
    // RFC 9110 §8.6 and RFC 9112 §6.3 rule 5: identical values are one length, but a
    // sender that repeats it is suspect: the request is answered, then the connection
    // closes (the next request is not read).
    for lengths in [
        "Content-Length: 2\r\nContent-Length: 2",
        "Content-Length: 2, 2",
    ] {
        let req = format!(
            "POST /echo HTTP/1.1\r\nHost: t\r\n{lengths}\r\n\r\nokGET / HTTP/1.1\r\nHost: t\r\n\r\n"
        );
        let (responses, outcome) = each_way(limits(), req.as_bytes());
        assert_eq!(responses.len(), 1, "{lengths}");
        assert_eq!(
            (responses[0].status, responses[0].text().as_str()),
            (200, "ok")
        );
        assert!(responses[0].closes() && outcome.done, "{lengths}");
    }
}

#[test]
fn echo_content_length() {
    let req = b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\nhello worldGET / HTTP/1.1\r\nHost: t\r\n\r\n";
    let (responses, _) = each_way(limits(), req);
    assert_eq!(responses.len(), 2);
    assert_eq!(responses[0].body, b"hello world");
    assert_eq!(responses[0].header("content-length"), Some("11"));
    assert_eq!(responses[1].text(), "Hello, World!");
}

#[test]
fn echo_chunked_with_extensions_and_trailers() {
    let req = b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n\
        5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: dropped\r\n\r\n\
        GET / HTTP/1.1\r\nHost: t\r\n\r\n";
    let (responses, _) = each_way(limits(), req);
    assert_eq!(responses.len(), 2);
    assert!(responses[0].chunked);
    assert_eq!(responses[0].body, b"hello world");
    assert_eq!(responses[1].status, 200);
}

#[test]
fn expect_100_continue() {
    let req =
        b"POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi";
    let (responses, _) = each_way(limits(), req);
    assert_eq!(responses[0].status, 100);
    assert_eq!(
        (responses[1].status, responses[1].body.as_slice()),
        (200, &b"hi"[..])
    );

    // A route that will not read the body answers at once and closes.
    let req = b"POST / HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n";
    let (responses, outcome) = each_way(limits(), req);
    assert_eq!(responses.len(), 1);
    assert_eq!(responses[0].status, 405);
    assert!(responses[0].closes() && outcome.done);
}

#[test]
fn head_sends_no_body() {
    let shared = shared(limits());
    let out = drive(
        &shared,
        b"HEAD /bytes/100 HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n",
        1,
        false,
    );
    let mut bytes = out.output.as_slice();
    let head = parse_response(&mut bytes, true).unwrap();
    assert_eq!(head.header("content-length"), Some("100"));
    let next = parse_response(&mut bytes, false).unwrap();
    assert_eq!(
        next.text(),
        "Hello, World!",
        "no body bytes between the two"
    );
    assert!(bytes.is_empty());
}

#[test]
fn absolute_form_targets() {
    let req = b"GET http://example.com/bytes/3?x=y HTTP/1.1\r\nHost: example.com\r\n\r\n";
    let (responses, _) = each_way(limits(), req);
    assert_eq!(responses[0].body, b"abc");
}

#[test]
fn not_found_and_method_not_allowed() {
    let (responses, _) = each_way(limits(), get("/missing").as_bytes());
    assert_eq!(responses[0].status, 404);
    let (responses, outcome) = each_way(limits(), b"DELETE /echo HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(responses[0].status, 405);
    assert_eq!(responses[0].header("allow"), Some("POST"));
    assert!(!outcome.done, "a 405 keeps the connection");
}

#[test]
fn status_and_bytes_and_stats_routes() {
    let (responses, _) = each_way(limits(), get("/status/204").as_bytes());
    assert_eq!(responses[0].status, 204);
    assert_eq!(responses[0].header("content-length"), None);
    let (responses, _) = each_way(limits(), get("/status/599").as_bytes());
    assert_eq!(responses[0].status, 599);
    let (responses, _) = each_way(limits(), get("/status/100").as_bytes());
    assert_eq!(responses[0].status, 400);
    let (responses, _) = each_way(limits(), get("/bytes/70").as_bytes());
    assert!(
        responses[0]
            .body
            .iter()
            .enumerate()
            .all(|(i, &b)| b == b'a' + (i % 26) as u8)
    );
    let (responses, _) = each_way(limits(), get("/stats").as_bytes());
    let json = responses[0].text();
    assert!(
        json.starts_with("{\"connections\":") && json.ends_with("}}}\n"),
        "{json}"
    );
    assert!(json.contains("\"read_buf\":{\"hits\":") && json.contains("\"write_buf\":{"));
}

#[test]
fn metrics_route_speaks_the_prometheus_text_format() {
    let req = "GET / HTTP/1.1\r\nHost: t\r\n\r\nGET /metrics HTTP/1.1\r\nHost: t\r\n\r\n";
    let (responses, _) = each_way(limits(), req.as_bytes());
    let metrics = &responses[1];
    assert_eq!(metrics.status, 200);
    assert_eq!(
        metrics.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = metrics.text();
    assert!(
        text.contains("# TYPE demo_requests_total counter\ndemo_requests_total 1\n"),
        "{text}"
    );
    assert!(
        text.contains("recycle_pool_hits_total{pool=\"read_buf\"} "),
        "{text}"
    );
    assert!(
        !text.contains("copy_buf") && !text.contains("upstream"),
        "no proxy here"
    );
    let (responses, _) = each_way(limits(), b"POST /metrics HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(responses[0].status, 405);
}

/// Requests refused with a status, after which the connection is done.
fn assert_refused(req: &[u8], status: u16, expected: RequestError) {
    let (responses, outcome) = each_way(limits(), req);
    assert_eq!(responses.len(), 1, "{}", String::from_utf8_lossy(req));
    assert_eq!(
        responses[0].status,
        status,
        "{}",
        String::from_utf8_lossy(req)
    );
    assert!(responses[0].closes());
    assert!(outcome.done);
    assert_eq!(outcome.error, Some(expected));
}

#[test]
fn errors_answer_with_their_status_and_close() {
    assert_refused(
        b"GET / HTTP/1.1\r\nHost: t\r\nBad Header\r\n\r\n",
        400,
        RequestError::Malformed,
    );
    assert_refused(b"GET / HTTP/1.1\r\n\r\n", 400, RequestError::Malformed);
    assert_refused(b"GARBAGE\r\n\r\n", 400, RequestError::Malformed);
    assert_refused(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        400,
        RequestError::BadFraming,
    );
    assert_refused(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
        400,
        RequestError::BadFraming,
    );
    // RFC 9112 §6.3 item 4: chunked not final is a 400 and close; a coding before
    // the final chunked that this server cannot decode, a 501 (§6.1). No split inside
    // a quoted-string (RFC 9110 §5.6.4), so an unterminated one leaves no final
    // chunked.
    for coding in [
        "gzip",
        "identity",
        "chunked, gzip",
        "x;p=\"a, chunked",
        "chunked;q=1, chunked",
    ] {
        let req = format!("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: {coding}\r\n\r\n");
        assert_refused(req.as_bytes(), 400, RequestError::BadFraming);
    }
    for coding in ["gzip, chunked", "x;p=\"a,b\", chunked"] {
        let req = format!("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: {coding}\r\n\r\n");
        assert_refused(req.as_bytes(), 501, RequestError::UnsupportedCoding);
    }
    // RFC 9112 §2.2: a bare LF line end, anywhere in the head.
    assert_refused(
        b"GET / HTTP/1.1\r\nHost: t\nX: y\r\n\r\n",
        400,
        RequestError::Malformed,
    );
    let long_target = format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "x".repeat(9000));
    let shared_limits = Limits {
        max_head_bytes: 16_384,
        ..limits()
    };
    let (responses, outcome) = each_way(shared_limits, long_target.as_bytes());
    assert_eq!(
        (responses[0].status, outcome.error),
        (414, Some(RequestError::UriTooLong))
    );
    // A target longer than the whole head limit: 414 before the line even ends.
    let endless = format!("GET /{}", "x".repeat(9000));
    let (responses, _) = each_way(
        Limits {
            max_head_bytes: 8192,
            ..limits()
        },
        endless.as_bytes(),
    );
    assert_eq!(responses[0].status, 414);
    let big_head = format!(
        "GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "v".repeat(5000)
    );
    assert_refused(big_head.as_bytes(), 431, RequestError::HeadTooLarge);
    let many: String = (0..101).map(|i| format!("X-{i}: v\r\n")).collect();
    assert_refused(
        format!("GET / HTTP/1.1\r\nHost: t\r\n{many}\r\n").as_bytes(),
        431,
        RequestError::HeadTooLarge,
    );
    assert_refused(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1001\r\n\r\n",
        413,
        RequestError::BodyTooLarge,
    );
    assert_refused(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nExpect: the-impossible\r\n\r\n",
        417,
        RequestError::ExpectationFailed,
    );
}

#[test]
fn broken_chunked_body_ends_the_response_unterminated() {
    // The echo response has started, so the error can only close the connection: the
    // client sees a chunked body without its last chunk, never a complete lie.
    let req =
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nZZ\r\n";
    let shared = shared(limits());
    let out = drive(&shared, req, req.len(), false);
    let text = String::from_utf8_lossy(&out.output);
    assert!(
        text.starts_with("HTTP/1.1 200 OK\r\n") && text.ends_with("3\r\nabc\r\n"),
        "{text}"
    );
    assert!(out.done);
    assert_eq!(out.error, Some(RequestError::Malformed));

    let over = b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3e9\r\n";
    let out = drive(&shared, over, 1, false);
    assert_eq!(out.error, Some(RequestError::BodyTooLarge));
    assert!(out.done);
}

#[test]
fn eof_mid_request_is_a_400_and_eof_when_idle_is_silent() {
    let shared = shared(limits());
    let out = drive(&shared, b"GET / HTTP/1.1\r\nHo", 1, true);
    assert_eq!(parse_all(&out.output)[0].status, 400);
    assert!(out.done);
    let out = drive(&shared, get("/").as_bytes(), 3, true);
    assert_eq!(
        parse_all(&out.output).len(),
        1,
        "only the hello, nothing for the EOF"
    );
    assert!(out.done);
    assert_eq!(out.error, None);
}

#[test]
fn header_timeout_answers_408() {
    let shared = shared(limits());
    let mut ctx = shared.context(0);
    let mut conn = Conn::new(App::new(&shared));
    let mut rbuf = ReadBuf::new();
    let mut wbuf = WriteBuf::new();
    rbuf.extend_from_slice(b"GET / HTTP/1.1\r\n");
    conn.process(&mut rbuf, &mut wbuf, &mut ctx, &mut ());
    assert!(wbuf.is_empty(), "no output before a complete head");
    conn.on_header_timeout(&mut wbuf, &mut ctx, &mut ());
    let responses = parse_all(wbuf.unflushed());
    assert_eq!(responses[0].status, 408);
    assert!(conn.is_done());
}

#[test]
fn large_responses_respect_backpressure() {
    let shared = shared(limits());
    let mut ctx = shared.context(0);
    let mut conn = Conn::new(App::new(&shared));
    let mut rbuf = ReadBuf::new();
    let mut wbuf = WriteBuf::new();
    rbuf.extend_from_slice(get("/bytes/1000000").as_bytes());
    let mut received = Vec::new();
    let mut rounds = 0;
    loop {
        conn.process(&mut rbuf, &mut wbuf, &mut ctx, &mut ());
        assert!(
            wbuf.len() < WRITE_HIGH_WATER + 32 * 1024,
            "output bounded: {}",
            wbuf.len()
        );
        if wbuf.is_empty() {
            break;
        }
        wbuf.flush_to(&mut received).unwrap();
        rounds += 1;
    }
    assert!(rounds > 10, "produced in steps, not at once");
    let response = &parse_all(&received)[0];
    assert_eq!(response.body.len(), 1_000_000);
    assert!(
        response
            .body
            .iter()
            .enumerate()
            .all(|(i, &b)| b == b'a' + (i % 26) as u8)
    );
}

#[test]
fn echo_never_holds_the_whole_body() {
    let limits = Limits {
        max_body_bytes: 10_000_000,
        ..limits()
    };
    let shared = shared(limits);
    let body: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let mut req = format!(
        "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(&body);
    let out = drive(&shared, &req, 64 * 1024, false);
    assert!(
        out.peak_output <= WRITE_HIGH_WATER + 1024,
        "peak {}",
        out.peak_output
    );
    assert_eq!(parse_all(&out.output)[0].body, body);
}

// === bodies, chunk framing, Host, oversized heads and HEAD, byte by byte ===

/// Parses `bytes` as the responses to requests whose methods were `heads` (true for
/// HEAD: no body follows, whatever the head says); panics on anything left over.
fn parse_for(mut bytes: &[u8], heads: &[bool]) -> Vec<Response> {
    let mut out = Vec::new();
    for &head in heads {
        if bytes.is_empty() {
            break;
        }
        let response = parse_response(&mut bytes, head)
            .unwrap_or_else(|| panic!("incomplete: {:?}", String::from_utf8_lossy(bytes)));
        out.push(response);
    }
    assert!(
        bytes.is_empty(),
        "bytes after the expected responses: {:?}",
        String::from_utf8_lossy(bytes)
    );
    out
}

/// RFC 9112 §6.3: every request's body is consumed per its framing, whatever the route
/// does with it, so the bytes after it are the next request. For every route and every
/// method, a request with a body (Content-Length and chunked; each smuggling a request
/// of its own) followed by a `GET /` gets exactly two responses, the second the hello,
/// fed whole, in 7-byte pieces and byte by byte.
#[test]
fn a_body_is_never_read_as_a_request_whatever_the_route_and_method() {
    const SMUGGLED: &str = "GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n";
    let routes = [
        "/",
        "/echo",
        "/stats",
        "/status/200",
        "/status/204",
        "/status/304",
        "/status/999",
        "/bytes/0",
        "/bytes/3",
        "/bytes/100000",
        "/bytes/x",
        "/nope",
    ];
    let methods = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"];
    let chunked_body = format!("{:x}\r\n{SMUGGLED}\r\n0\r\n\r\n", SMUGGLED.len());
    let bodies = [
        (
            format!("Content-Length: {}", SMUGGLED.len()),
            SMUGGLED.to_string(),
        ),
        ("Transfer-Encoding: chunked".to_string(), chunked_body),
    ];
    let limits = Limits {
        max_body_bytes: 1 << 20,
        ..limits()
    };
    for route in routes {
        for method in methods {
            for (framing, body) in &bodies {
                let req = format!(
                    "{method} {route} HTTP/1.1\r\nHost: t\r\n{framing}\r\n\r\n{body}{}",
                    get("/")
                );
                for step in [req.len(), 7, 1] {
                    let out = drive(&shared(limits.clone()), req.as_bytes(), step, false);
                    let context = format!("{method} {route} {framing}, {step}-byte pieces");
                    let responses = parse_for(&out.output, &[method == "HEAD", false]);
                    assert_eq!(responses.len(), 2, "{context}");
                    assert_eq!(responses[1].text(), "Hello, World!", "{context}");
                    assert!(!out.done && out.error.is_none(), "{context}");
                    if route == "/echo" && method == "POST" {
                        assert_eq!(responses[0].body, SMUGGLED.as_bytes(), "{context}");
                    }
                }
            }
        }
    }
}

/// Byte for byte: the body of a streamed GET is read and dropped, never answered as
/// the next request.
#[test]
fn the_body_of_a_streamed_get_is_dropped() {
    let req = b"GET /bytes/3 HTTP/1.1\r\nHost: a\r\nContent-Length: 36\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n";
    let (responses, outcome) = each_way(limits(), req);
    assert_eq!(responses.len(), 1, "no response for /smuggled");
    assert_eq!(responses[0].text(), "abc");
    assert!(!outcome.done);
    let req = b"GET /bytes/3 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\
        23\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n\r\n0\r\n\r\n";
    let (responses, outcome) = each_way(limits(), req);
    assert_eq!(
        responses.len(),
        1,
        "no 400 for a chunk-size line read as a request"
    );
    assert!(!outcome.done);
}

/// Through the connection: a chunk-size line with anything
/// but `[ chunk-ext ]` after its digits, or a trailer that is not a field line, is a 400
/// (or, once the response started, the end of it) and the end of the connection;
/// nothing after it is answered.
#[test]
fn chunk_lines_that_a_front_end_could_read_differently_end_the_connection() {
    let bodies = [
        "0x5\r\nhello\r\n0\r\n\r\n",
        "5zzz\r\nhello\r\n0\r\n\r\n",
        "1 0\r\nhello\r\n0\r\n\r\n",
        "5 \r\nhello\r\n0\r\n\r\n",
        "5\r\nhello\r\n0\r\nno colon here\r\n\r\n",
        "5\r\nhello\r\n0\r\nName : value\r\n\r\n",
    ];
    for body in bodies {
        let req = format!(
            "POST /status/200 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n{body}{}",
            get("/")
        );
        let (responses, outcome) = each_way(limits(), req.as_bytes());
        assert_eq!(responses.len(), 1, "{body:?}: only the 200, then close");
        assert_eq!(
            (outcome.done, outcome.error),
            (true, Some(RequestError::Malformed))
        );
    }
    // Before any response started, the error has its status.
    let req = b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n";
    assert_refused(req, 400, RequestError::Malformed);
}

/// RFC 9112 §3.2 (and RFC 9110 §7.2's `uri-host [ ":" port ]`).
#[test]
fn an_invalid_host_is_a_400() {
    for host in [
        "a b/c@@",
        "a/b",
        "user@a",
        "a?b",
        "a#b",
        "[::1",
        "a:b",
        "a:1:2",
        "a%zz",
        // IP-literals are IPv6 addresses or IPvFuture (RFC 3986 §3.2.2).
        "[zzz]",
        "[::1%eth0]",
        "[:::::]:",
        "[1.2.3.4]",
        "[v1]",
    ] {
        let req = format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
        assert_refused(req.as_bytes(), 400, RequestError::Malformed);
    }
    for host in [
        "a",
        "a.example:8080",
        "a:",
        "127.0.0.1",
        "[::1]:80",
        "[::ffff:192.0.2.1]:8080",
        "[fe80::1%25eth0]",
        "[v1.x]",
        "a_b~c-d!$&'()*+,;=",
        "%41",
    ] {
        let req = format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
        let (responses, _) = each_way(limits(), req.as_bytes());
        assert_eq!(responses[0].status, 200, "Host: {host}");
    }
}

/// 414 or 431 is decided from the request line, not from how much of
/// the head one read happened to bring.
#[test]
fn a_long_target_is_414_however_the_bytes_arrive() {
    let limits = Limits {
        max_head_bytes: 8192,
        ..limits()
    };
    // A request line longer than the head limit: its CRLF is past the limit.
    let req = format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "x".repeat(8200));
    let (responses, outcome) = each_way(limits.clone(), req.as_bytes());
    assert_eq!(
        (responses[0].status, outcome.error),
        (414, Some(RequestError::UriTooLong))
    );
    // A request line that fits, in a head that does not: 431 however it arrives.
    let req = format!(
        "GET /{} HTTP/1.1\r\nHost: t\r\nX: {}\r\n\r\n",
        "x".repeat(4000),
        "v".repeat(5000)
    );
    let (responses, outcome) = each_way(limits, req.as_bytes());
    assert_eq!(
        (responses[0].status, outcome.error),
        (431, Some(RequestError::HeadTooLarge))
    );
}

/// RFC 9110 §9.3.2: a response to HEAD has no content, errors
/// included (the head is that of the GET's response).
#[test]
fn errors_to_head_requests_have_no_body() {
    for req in [
        &b"HEAD / HTTP/1.1\r\n\r\n"[..],
        b"HEAD / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"HEAD / HTTP/1.1\r\nHost: a\r\nExpect: magic\r\n\r\n",
        // After empty lines (RFC 9112 §2.2), still a HEAD.
        b"\r\nHEAD / HTTP/1.1\r\n\r\n",
        b"\r\n\r\nHEAD / HTTP/1.1\r\nHost: a\r\nExpect: magic\r\n\r\n",
        b"\nHEAD / HTTP/2.0\r\nHost: a\r\n\r\n",
    ] {
        for step in [req.len(), 7, 1] {
            let out = drive(&shared(limits()), req, step, false);
            let responses = parse_for(&out.output, &[true]);
            assert!(
                responses[0].status >= 400,
                "{:?}",
                String::from_utf8_lossy(req)
            );
            assert!(responses[0].header("content-length").is_some());
            assert!(out.done);
        }
    }
}

/// RFC 9110 §15: status codes are 100..=599; the route offers the final ones.
#[test]
fn status_route_is_limited_to_200_through_599() {
    for (code, status) in [
        ("200", 200),
        ("599", 599),
        ("600", 400),
        ("999", 400),
        ("199", 400),
    ] {
        let (responses, _) = each_way(limits(), get(&format!("/status/{code}")).as_bytes());
        assert_eq!(responses[0].status, status, "/status/{code}");
    }
}

/// Through the connection: RFC 9112 §7.1, `chunk-size = 1*HEXDIG` starts
/// the line. An empty size line read as the last chunk would end the body at once and
/// answer the bytes after it as a request; a sign or whitespace skipped before the
/// digits would frame the body as a front end reading `-5` as an error would not.
#[test]
fn a_chunk_size_line_must_start_with_a_digit() {
    for body in [
        "\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
        " 5\r\nhello\r\n0\r\n\r\n",
        "-5\r\nhello\r\n0\r\n\r\n",
        "+5\r\nhello\r\n0\r\n\r\n",
        "\t5\r\nhello\r\n0\r\n\r\n",
    ] {
        let req = format!(
            "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n{body}{}",
            get("/")
        );
        assert_refused(req.as_bytes(), 400, RequestError::Malformed);
    }
}

/// RFC 9112 §2.2: a server SHOULD ignore at least one empty line (CRLF)
/// received before the request-line (some clients send one after a body). Ignored
/// whatever their number, bare LF included (§2.2 allows it as a line terminator), and
/// consumed: a stray CRLF leaves the connection idle, not partly read, so the event
/// loop neither answers an EOF after it with a 400 nor times it out with a 408.
#[test]
fn empty_lines_before_a_request_are_ignored() {
    let echo = "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi";
    for blank in ["\r\n", "\n", "\r\n\r\n", "\n\n", "\r\n\n\r\n\r\n"] {
        // Before the first request, and between two.
        let req = format!("{blank}{echo}{blank}{}", get("/"));
        let (responses, outcome) = each_way(limits(), req.as_bytes());
        assert_eq!(responses.len(), 2, "{blank:?}");
        assert_eq!(responses[0].body, b"hi", "{blank:?}");
        assert_eq!(responses[1].text(), "Hello, World!", "{blank:?}");
        assert!(!outcome.done && outcome.error.is_none(), "{blank:?}");
        // After the last one: idle, nothing unread; then a silent EOF.
        let req = format!("{echo}{blank}");
        for step in [req.len(), 7, 1] {
            let out = drive(&shared(limits()), req.as_bytes(), step, false);
            assert_eq!(parse_all(&out.output).len(), 1, "{blank:?}, step {step}");
            assert_eq!(
                out.unread, 0,
                "{blank:?}, step {step}: idle, not partly read"
            );
            let out = drive(&shared(limits()), req.as_bytes(), step, true);
            assert_eq!(
                parse_all(&out.output).len(),
                1,
                "{blank:?}, step {step}: no 400"
            );
            assert!(out.done && out.error.is_none(), "{blank:?}, step {step}");
        }
    }
    // A CR alone is no empty line: a head that starts with one is malformed.
    assert_refused(
        b"\rGET / HTTP/1.1\r\nHost: a\r\n\r\n",
        400,
        RequestError::Malformed,
    );
}

/// A HEAD pipelined after a body and a stray CRLF gets its error
/// without content (RFC 9110 §9.3.2), fed whole, in 7-byte pieces and byte by byte.
/// Until the method is complete the request is not known to be a HEAD: a head timed
/// out at `HEA` is answered as to a GET, with its body, then the close.
#[test]
fn an_error_to_a_pipelined_head_has_no_body() {
    let req = b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi\r\n\
        HEAD / HTTP/1.1\r\nHost: a\r\nExpect: x\r\n\r\n";
    for step in [req.len(), 7, 1] {
        let out = drive(&shared(limits()), req, step, false);
        let responses = parse_for(&out.output, &[false, true]);
        assert_eq!(responses.len(), 2, "step {step}");
        assert_eq!(
            (responses[0].status, responses[0].text().as_str()),
            (200, "hi")
        );
        assert_eq!(responses[1].status, 417, "step {step}");
        assert!(out.done, "step {step}");
    }
    for (partial, head) in [(&b"HEA"[..], false), (b"HEAD", false), (b"HEAD /x", true)] {
        let shared = shared(limits());
        let mut ctx = shared.context(0);
        let mut conn = Conn::new(App::new(&shared));
        let (mut rbuf, mut wbuf) = (ReadBuf::new(), WriteBuf::new());
        rbuf.extend_from_slice(partial);
        conn.process(&mut rbuf, &mut wbuf, &mut ctx, &mut ());
        conn.on_header_timeout(&mut wbuf, &mut ctx, &mut ());
        let responses = parse_for(wbuf.unflushed(), &[head]);
        assert_eq!(responses[0].status, 408);
        assert_eq!(responses[0].body.is_empty(), head, "{partial:?}");
    }
}

/// RFC 9112 §3.2: origin-form starts with `/`, authority-form is for CONNECT only (and
/// CONNECT takes nothing else, RFC 9110 §9.3.6), asterisk-form for OPTIONS only; an
/// absolute-form target is an http(s) URI with a host and no userinfo (RFC 9110
/// §4.2.1, §4.2.4). Anything else is an invalid request-line: 400 and close (§3).
#[test]
fn a_target_in_a_form_its_method_may_not_use_is_a_400() {
    for line in [
        "GET bytes/3 HTTP/1.1",
        "GET a:80 HTTP/1.1",
        "GET * HTTP/1.1",
        "CONNECT / HTTP/1.1",
        "CONNECT a HTTP/1.1",
        "GET http://user@a/ HTTP/1.1",
        "GET http:///bytes/3 HTTP/1.1",
        "GET ftp://a/ HTTP/1.1",
    ] {
        let req = format!("{line}\r\nHost: a\r\n\r\n");
        assert_refused(req.as_bytes(), 400, RequestError::Malformed);
    }
    // Valid but unusual. `OPTIONS *` asks about the server (RFC 9110 §9.3.7): 200,
    // with what it allows, kept open. CONNECT asks for a tunnel, which an origin
    // server that makes none refuses with 501 (§9.3.6, §15.6.2), then closes (the
    // client may already be sending what it meant for the tunnel).
    let (responses, outcome) = each_way(limits(), b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(
        (responses[0].status, responses[0].header("allow")),
        (200, Some("GET, HEAD, POST, OPTIONS"))
    );
    assert_eq!(responses[0].header("content-length"), Some("0"));
    assert!(!outcome.done);
    for line in ["CONNECT a:443 HTTP/1.1", "CONNECT [::1]:443 HTTP/1.1"] {
        let req = format!("{line}\r\nHost: a\r\n\r\n");
        let (responses, outcome) = each_way(limits(), req.as_bytes());
        assert_eq!(responses[0].status, 501, "{line}");
        assert!(responses[0].closes() && outcome.done, "{line}");
    }
    let req = b"GET HTTPS://A.example:8443/bytes/3?x=1 HTTP/1.1\r\nHost: a\r\n\r\n";
    let (responses, _) = each_way(limits(), req);
    assert_eq!(responses[0].text(), "abc");
}

/// RFC 9110 §15.6.6: a request in another major version of HTTP (well-formed per RFC
/// 9112 §2.3) is a 505; the HTTP/2 connection preface is one. An ill-formed version is
/// a 400 (and so is `HTTP/1.2`, which RFC 9110 §2.5 would have read as 1.1: httparse
/// refuses it).
#[test]
fn another_major_version_is_a_505() {
    for req in [
        &b"GET / HTTP/2.0\r\nHost: a\r\n\r\n"[..],
        b"GET / HTTP/3.0\r\n\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    ] {
        assert_refused(req, 505, RequestError::VersionNotSupported);
    }
    for req in [
        &b"GET / HTTP/2\r\nHost: a\r\n\r\n"[..],
        b"GET / HTTP/1.2\r\nHost: a\r\n\r\n",
    ] {
        assert_refused(req, 400, RequestError::Malformed);
    }
}

/// The request-line and `Host` rules the parser shares with the proxy, with the exact
/// bytes of each request.
#[test]
fn request_line_and_host_rules() {
    // RFC 9110 §4.2.1: an `http` URI with an empty host is invalid, and a recipient
    // MUST reject it; in origin-form the host is the `Host` field's.
    for req in [
        &b"GET / HTTP/1.1\r\nHost:\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: \r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: :80\r\n\r\n",
        b"GET / HTTP/1.0\r\nHost:\r\n\r\n",
        b"OPTIONS * HTTP/1.1\r\nHost:\r\n\r\n",
    ] {
        assert_refused(req, 400, RequestError::Malformed);
    }
    // RFC 9112 §3.2: the target is URI characters only (no raw non-ASCII byte), and
    // origin-form (RFC 9112 §3.2.1) and absolute-form (RFC 9110 §4.1) carry no fragment.
    for req in [
        &b"GET /caf\xC3\xA9 HTTP/1.1\r\nHost: a\r\n\r\n"[..],
        b"GET /\x80 HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET /path#frag HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET /# HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET http://a/p#f HTTP/1.1\r\nHost: a\r\n\r\n",
    ] {
        assert_refused(req, 400, RequestError::Malformed);
    }
    // RFC 9112 §3: a method longer than any the server implements is a 501, not a 414
    // (which is about the target), whether the head fits the limit or not.
    let long = format!("{} / HTTP/1.1\r\nHost: a\r\n\r\n", "M".repeat(65));
    assert_refused(long.as_bytes(), 501, RequestError::MethodTooLong);
    let huge = format!("{} / HTTP/1.1\r\nHost: a\r\n\r\n", "M".repeat(100_000));
    assert_refused(huge.as_bytes(), 501, RequestError::MethodTooLong);
    // Still valid: an absolute-form target names its host (RFC 9112 §3.2.2: its `Host`
    // is not used), a method of 64 bytes, an HTTP/1.0 request without `Host`, and
    // percent-encoded UTF-8.
    for req in [
        "GET http://a/ HTTP/1.1\r\nHost:\r\n\r\n".to_owned(),
        format!("{} / HTTP/1.1\r\nHost: a\r\n\r\n", "M".repeat(64)),
        "GET / HTTP/1.0\r\n\r\n".to_owned(),
        "GET /caf%C3%A9 HTTP/1.1\r\nHost: a\r\n\r\n".to_owned(),
    ] {
        let (responses, _) = each_way(limits(), req.as_bytes());
        assert_ne!(responses[0].status, 400, "{req}");
        assert_ne!(responses[0].status, 501, "{req}");
    }
}

/// The connection core knows no server: what it needs comes in `Settings`, and what
/// the driver wants to see (each head, for an access log; each answered request, for
/// its counters) goes out through the hook and the counter the driver lends it.
#[test]
fn settings_lend_the_core_its_limits_hook_and_counter() {
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

    use demo_server::http::conn::{Dates, Settings};
    use demo_server::http::parse::Request;
    use recycle_pool::status::{DateCache, StatusLines};

    static HEADS: AtomicUsize = AtomicUsize::new(0);
    fn seen(req: &Request<'_>) {
        assert_eq!(req.method_name, "GET");
        HEADS.fetch_add(1, Relaxed);
    }

    let shared = shared(limits());
    let (lines, dates): (StatusLines, Dates) =
        (StatusLines::new(), DateCache::with_clock(Box::new(Frozen)));
    let answered = AtomicU64::new(0);
    let mut settings = Settings::new(&lines, &dates);
    settings.max_head_bytes = 256;
    settings.on_request = Some(seen);
    settings.answered = Some(&answered);
    let mut conn = Conn::new(App::new(&shared));
    let (mut rbuf, mut wbuf) = (ReadBuf::new(), WriteBuf::new());
    rbuf.extend_from_slice(format!("{}{}", get("/"), get("/")).as_bytes());
    conn.process(&mut rbuf, &mut wbuf, &mut settings, &mut ());
    assert_eq!((HEADS.load(Relaxed), answered.load(Relaxed)), (2, 2));
    let mut output = Vec::new();
    wbuf.flush_to(&mut output).unwrap();
    let responses = parse_all(&output);
    assert_eq!(responses.len(), 2);
    assert_eq!(
        responses[0].header("date"),
        Some("Sun, 06 Nov 1994 08:49:37 GMT")
    );

    // Its own limit, not the server's: a head over 256 bytes is refused.
    let long = format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(300));
    rbuf.extend_from_slice(long.as_bytes());
    conn.process(&mut rbuf, &mut wbuf, &mut settings, &mut ());
    assert_eq!(conn.error(), Some(RequestError::UriTooLong));
    assert_eq!(answered.load(Relaxed), 2, "a refusal is not an answer");
}
