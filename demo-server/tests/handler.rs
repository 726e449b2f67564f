//! The connection's [`Handler`] interface, as the reverse proxy will use it: a handler
//! that answers later, takes the request body under backpressure, and copies a
//! response body from elsewhere under the high-water mark. Sans-I/O, fed whole, in
//! 7-byte pieces and byte by byte.

mod common;

use std::time::{Duration, SystemTime};

use common::parse_response;
use demo_server::http::conn::{BodyLen, Conn, Handler, Response, WRITE_HIGH_WATER};
use demo_server::http::parse::Request;
use demo_server::state::{Limits, Shared};
use recycle_pool::io::{ReadBuf, WriteBuf};
use recycle_pool::status::Clock;

struct Frozen;
impl Clock for Frozen {
    fn now(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777)
    }
}

fn shared() -> Shared {
    let limits = Limits {
        max_body_bytes: 1 << 24,
        ..Limits::default()
    };
    Shared::with_clock(limits, 1, false, Box::new(Frozen))
}

/// A stand-in for the proxy's per-connection state: the "upstream" is two buffers the
/// test fills and drains.
#[derive(Default)]
struct Relay {
    /// Targets of the requests seen, in order.
    requests: Vec<String>,
    /// The request body as the "upstream" received it.
    received: Vec<u8>,
    /// Body bytes the "upstream" takes now (its socket buffer's free space).
    room: usize,
    body_ended: u32,
    /// The response head, once the "upstream" sent it.
    head: Option<(u16, BodyLen)>,
    /// Extra fields for the response head.
    fields: Vec<(&'static str, &'static [u8])>,
    /// Response body bytes the "upstream" sent that the client has not been given.
    upstream: Vec<u8>,
    /// The "upstream" response ended.
    upstream_done: bool,
    /// Cut the response off (the "upstream" died) once `upstream` is drained.
    die: bool,
    /// Send this interim status before anything else.
    interim: Option<u16>,
    /// Cut the response off in `on_request`, before starting it.
    abort_at_once: bool,
    aborts: u32,
}

impl Handler for Relay {
    /// Per-worker state lent to every call: here, a count of the calls.
    type Local = u64;

    fn on_request(&mut self, req: &Request<'_>, res: &mut Response<'_, '_>, calls: &mut u64) {
        *calls += 1;
        self.requests.push(req.target.to_string());
        assert_eq!(
            req.header("host"),
            Some(&b"t"[..]),
            "fields borrowed from the head"
        );
        if let Some(status) = self.interim {
            res.interim(status);
        }
        if self.abort_at_once {
            res.abort();
        }
    }

    fn on_body(&mut self, data: &[u8], _: &mut Response<'_, '_>, calls: &mut u64) -> usize {
        *calls += 1;
        let n = data.len().min(self.room);
        self.received.extend_from_slice(&data[..n]);
        self.room -= n;
        n
    }

    fn on_body_end(&mut self, _: &mut Response<'_, '_>, calls: &mut u64) {
        *calls += 1;
        self.body_ended += 1;
    }

    fn poll_response(&mut self, res: &mut Response<'_, '_>, calls: &mut u64) {
        *calls += 1;
        let Some((status, len)) = self.head else {
            return; // the upstream has not answered: not yet
        };
        if !res.is_started() {
            res.start(status, len);
            for (name, value) in &self.fields {
                res.header(name, value);
            }
        }
        let n = res.write(&self.upstream);
        self.upstream.drain(..n);
        if self.upstream.is_empty() && self.die {
            res.abort();
            self.head = None;
        } else if self.upstream.is_empty() && self.upstream_done {
            res.finish();
            self.head = None;
            self.upstream_done = false;
        }
    }

    fn on_abort(&mut self, calls: &mut u64) {
        *calls += 1;
        self.aborts += 1;
    }
}

/// A sans-I/O driver: the connection, its buffers, the client's bytes still to send
/// (in pieces of `step`), and everything written to the client.
struct Driver<'s> {
    ctx: demo_server::state::Ctx<'s>,
    conn: Conn<Relay>,
    calls: u64,
    rbuf: ReadBuf,
    wbuf: WriteBuf,
    pending: Vec<u8>,
    step: usize,
    client: Vec<u8>,
    /// Largest output pending at once.
    peak: usize,
}

impl<'s> Driver<'s> {
    fn new(shared: &'s Shared, input: &[u8], step: usize) -> Self {
        Driver {
            ctx: shared.context(0),
            conn: Conn::new(Relay::default()),
            calls: 0,
            rbuf: ReadBuf::new(),
            wbuf: WriteBuf::new(),
            pending: input.to_vec(),
            step,
            client: Vec::new(),
            peak: 0,
        }
    }

    fn relay(&mut self) -> &mut Relay {
        self.conn.handler_mut()
    }

    /// What a driver does on any event: read while the connection wants input,
    /// process, flush; until nothing moves.
    fn run(&mut self) {
        loop {
            let before = (self.pending.len(), self.client.len(), self.rbuf.len());
            if self.conn.wants_input(self.wbuf.len()) && !self.pending.is_empty() {
                let n = self.step.min(self.pending.len());
                self.rbuf.extend_from_slice(&self.pending[..n]);
                self.pending.drain(..n);
            }
            self.conn.process(
                &mut self.rbuf,
                &mut self.wbuf,
                &mut self.ctx,
                &mut self.calls,
            );
            self.peak = self.peak.max(self.wbuf.len());
            self.wbuf.flush_to(&mut self.client).unwrap();
            if (self.pending.len(), self.client.len(), self.rbuf.len()) == before {
                return;
            }
        }
    }
}

const STEPS: [usize; 3] = [usize::MAX, 7, 1];

/// A socket that takes at most `room` bytes per write.
struct Socket<'a> {
    client: &'a mut Vec<u8>,
    room: usize,
}

impl std::io::Write for Socket<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.room);
        self.client.extend_from_slice(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn get(target: &str) -> String {
    format!("GET {target} HTTP/1.1\r\nHost: t\r\n\r\n")
}

/// (a) A request can stay pending while the driver does other I/O; the pipeline waits
/// behind it, and the driver resumes the connection when the handler has something.
#[test]
fn a_deferred_response_holds_the_pipeline_in_order() {
    let input = get("/first") + &get("/second");
    for step in STEPS {
        let shared = shared();
        let mut d = Driver::new(&shared, input.as_bytes(), step);
        d.run();
        assert!(d.client.is_empty(), "nothing before the upstream answers");
        assert_eq!(d.relay().requests, ["/first"], "the second request waits");
        assert!(d.conn.is_responding() && !d.conn.wants_input(0));
        // Nothing changes however often the driver calls.
        d.run();
        assert!(d.client.is_empty());

        // The upstream answers the first.
        let relay = d.relay();
        relay.head = Some((200, BodyLen::Known(5)));
        relay.upstream.extend_from_slice(b"first");
        relay.upstream_done = true;
        d.run();
        assert_eq!(d.relay().requests, ["/first", "/second"]);
        let relay = d.relay();
        relay.head = Some((201, BodyLen::Unknown));
        relay.upstream.extend_from_slice(b"second");
        relay.upstream_done = true;
        d.run();

        let mut bytes = d.client.as_slice();
        let first = parse_response(&mut bytes, false).unwrap();
        let second = parse_response(&mut bytes, false).unwrap();
        assert!(bytes.is_empty());
        assert_eq!((first.status, first.text().as_str()), (200, "first"));
        assert_eq!((second.status, second.text().as_str()), (201, "second"));
        assert!(second.chunked, "unknown length on HTTP/1.1: chunked");
        assert_eq!(d.conn.requests(), 2);
        assert!(d.calls > 4, "the worker state was lent to every call");
    }
}

/// (b) Request body bytes flow to the handler in pieces; when it takes fewer than
/// offered, the connection keeps the rest, offers it again first, and reads nothing
/// more from the client meanwhile. The next request is read only after the body.
#[test]
fn the_request_body_flows_under_the_handlers_backpressure() {
    let body: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut chunked = Vec::new();
    for piece in body.chunks(999) {
        chunked.extend_from_slice(format!("{:x};e=1\r\n", piece.len()).as_bytes());
        chunked.extend_from_slice(piece);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\nT: v\r\n\r\n");
    let framings = [
        (format!("Content-Length: {}", body.len()), body.clone()),
        ("Transfer-Encoding: chunked".to_string(), chunked),
    ];
    for (framing, encoded) in &framings {
        let mut input = format!("POST /up HTTP/1.1\r\nHost: t\r\n{framing}\r\n\r\n").into_bytes();
        input.extend_from_slice(encoded);
        input.extend_from_slice(get("/next").as_bytes());
        for step in STEPS {
            let shared = shared();
            let mut d = Driver::new(&shared, &input, step);
            let mut stalls = 0;
            loop {
                d.run();
                if d.relay().body_ended == 1 {
                    break;
                }
                // Stalled: the upstream is full, and the client is not read.
                assert_eq!(d.relay().room, 0, "{framing}, step {step}");
                assert!(!d.conn.wants_input(0), "{framing}, step {step}");
                assert_eq!(d.relay().requests, ["/up"]);
                stalls += 1;
                d.relay().room = 333; // the upstream drained some
            }
            assert!(stalls > 10, "{framing}, step {step}: {stalls} stalls");
            assert!(
                d.relay().received == body,
                "{framing}, step {step}: byte-exact"
            );
            let relay = d.relay();
            relay.head = Some((204, BodyLen::Unknown));
            relay.upstream_done = true;
            d.run();
            assert_eq!(d.relay().requests, ["/up", "/next"]);
            assert_eq!(d.relay().aborts, 0);
        }
    }
}

/// (c) A response body copied from elsewhere goes out in pieces under the high-water
/// mark, framed by the connection: chunked for HTTP/1.1, close-delimited for 1.0.
#[test]
fn a_response_body_from_elsewhere_is_framed_and_bounded() {
    let body: Vec<u8> = (0..1_000_000u32).map(|i| (i % 253) as u8).collect();
    for (version, chunked) in [("1.1", true), ("1.0", false)] {
        let shared = shared();
        let input = format!("GET /big HTTP/{version}\r\nHost: t\r\n\r\n");
        let mut d = Driver::new(&shared, input.as_bytes(), usize::MAX);
        d.run();
        d.relay().head = Some((200, BodyLen::Unknown));
        for piece in body.chunks(30_000) {
            d.relay().upstream.extend_from_slice(piece);
            // The driver flushes only part of the output per round, as a socket would.
            loop {
                d.conn
                    .process(&mut d.rbuf, &mut d.wbuf, &mut d.ctx, &mut d.calls);
                d.peak = d.peak.max(d.wbuf.len());
                let mut socket = Socket {
                    client: &mut d.client,
                    room: 20_000,
                };
                let _ = d.wbuf.write_to(&mut socket);
                if d.relay().upstream.is_empty() && d.wbuf.is_empty() {
                    break;
                }
            }
        }
        d.relay().upstream_done = true;
        d.run();
        assert!(d.peak <= WRITE_HIGH_WATER + 64, "peak output {}", d.peak);
        if chunked {
            let mut bytes = d.client.as_slice();
            let r = parse_response(&mut bytes, false).unwrap();
            assert!(r.chunked && r.body == body && bytes.is_empty());
            assert!(!d.conn.is_done());
        } else {
            // RFC 9112 §6.3: an HTTP/1.0 body of unknown length ends with the connection.
            let text = &d.client;
            let end = text.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
            let head = String::from_utf8_lossy(&text[..end]).to_ascii_lowercase();
            assert!(head.starts_with("http/1.0 200 ok\r\n"), "{head}");
            assert!(head.contains("connection: close\r\n"), "{head}");
            assert!(!head.contains("content-length") && !head.contains("transfer-encoding"));
            assert!(text[end..] == body[..]);
            assert!(d.conn.is_done(), "closed to end the body");
        }
    }
}

/// No body for HEAD, 204 and 304 (RFC 9112 §6.3, RFC 9110 §9.3.2, §15.3.5, §15.4.5),
/// whatever the handler writes; the framing stays intact for the next request.
#[test]
fn no_response_body_for_head_204_and_304() {
    let cases = [
        ("HEAD", 200, true, Some("5")),
        ("GET", 204, false, None),
        ("GET", 304, false, Some("5")),
    ];
    for (method, status, head, length) in cases {
        for step in STEPS {
            let shared = shared();
            let input = format!("{method} /x HTTP/1.1\r\nHost: t\r\n\r\n") + &get("/after");
            let mut d = Driver::new(&shared, input.as_bytes(), step);
            d.run();
            let relay = d.relay();
            relay.head = Some((status, BodyLen::Known(5)));
            relay.upstream.extend_from_slice(b"hello");
            relay.upstream_done = true;
            d.run();
            let relay = d.relay();
            relay.head = Some((200, BodyLen::Known(5)));
            relay.upstream.extend_from_slice(b"after");
            relay.upstream_done = true;
            d.run();
            let mut bytes = d.client.as_slice();
            let r = parse_response(&mut bytes, head || status != 200).unwrap();
            assert_eq!((r.status, r.header("content-length")), (status, length));
            let after = parse_response(&mut bytes, false).unwrap();
            assert_eq!(
                after.text(),
                "after",
                "{method} {status}: no body bytes between"
            );
            assert!(bytes.is_empty());
        }
    }
}

/// The framing fields are the connection's: a handler cannot add its own.
#[test]
fn the_connection_owns_the_framing_fields() {
    let shared = shared();
    let mut d = Driver::new(&shared, get("/").as_bytes(), usize::MAX);
    d.run();
    let relay = d.relay();
    relay.head = Some((200, BodyLen::Known(2)));
    relay.fields = vec![
        ("Content-Length", b"999"),
        ("transfer-encoding", b"chunked"),
        ("Connection", b"close"),
        ("date", b"Thu, 01 Jan 1970 00:00:00 GMT"),
        ("X-Kept", b"yes"),
    ];
    relay.upstream.extend_from_slice(b"ok");
    relay.upstream_done = true;
    d.run();
    let mut bytes = d.client.as_slice();
    let r = parse_response(&mut bytes, false).unwrap();
    assert_eq!(r.header("x-kept"), Some("yes"));
    assert_eq!(r.header("content-length"), Some("2"));
    assert_eq!(r.header("transfer-encoding"), None);
    // The connection writes Date (RFC 9110 §6.6.1) from its clock; a handler's copy
    // (an upstream's) would make it twice.
    let dates: Vec<_> = r
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("date"))
        .collect();
    assert_eq!(dates.len(), 1, "{dates:?}");
    assert_eq!(r.header("date"), Some("Sun, 06 Nov 1994 08:49:37 GMT"));
    assert!(!r.closes() && !d.conn.is_done());
    assert_eq!(r.text(), "ok");
}

/// A response the handler gives up on is cut off: the client sees a short body and a
/// close, never a complete-looking wrong one.
#[test]
fn a_response_cut_off_by_the_handler_ends_the_connection() {
    let shared = shared();
    let input = get("/") + &get("/never");
    let mut d = Driver::new(&shared, input.as_bytes(), usize::MAX);
    d.run();
    let relay = d.relay();
    relay.head = Some((200, BodyLen::Known(10)));
    relay.upstream.extend_from_slice(b"12345");
    relay.die = true;
    d.run();
    assert!(d.conn.is_done());
    assert!(d.client.ends_with(b"\r\n\r\n12345"));
    assert_eq!(d.relay().requests, ["/"], "nothing after is read");
    assert_eq!(d.relay().aborts, 0, "the handler knows: no on_abort");
}

/// An exchange that ends early tells the handler once (it drops its upstream); one
/// that never started a response is answered with the error's status.
#[test]
fn exchanges_that_end_early_are_aborted_once() {
    // A truncated Content-Length body, then EOF.
    let shared = shared();
    let input = b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n12345";
    let mut d = Driver::new(&shared, input, usize::MAX);
    d.relay().room = usize::MAX;
    d.run();
    d.conn.on_eof(false, &mut d.wbuf, &mut d.ctx, &mut d.calls);
    d.wbuf.flush_to(&mut d.client).unwrap();
    assert_eq!((d.relay().aborts, d.conn.is_done()), (1, true));
    assert!(d.client.starts_with(b"HTTP/1.1 400 Bad Request\r\n"));

    // A broken chunked body, after the response started.
    let shared = self::shared();
    let input =
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nxyz\r\n";
    let mut d = Driver::new(&shared, input, 1);
    d.relay().room = usize::MAX;
    d.relay().head = Some((200, BodyLen::Unknown));
    d.run();
    assert_eq!((d.relay().aborts, d.conn.is_done()), (1, true));
    let text = String::from_utf8_lossy(&d.client);
    assert!(
        text.starts_with("HTTP/1.1 200 OK\r\n") && !text.contains(" 400 "),
        "{text}"
    );

    // The driver drops the connection mid-exchange; and between exchanges.
    let shared = self::shared();
    let mut d = Driver::new(&shared, get("/").as_bytes(), usize::MAX);
    d.run();
    d.conn.abort(&mut d.calls);
    assert_eq!(d.relay().aborts, 1);
    let mut idle = Conn::new(Relay::default());
    idle.abort(&mut 0);
    assert_eq!(idle.handler().aborts, 0);
}

/// `Expect: 100-continue` to a handler that answers later: the connection asks for
/// the body at once, the body flows, the response comes when it comes.
#[test]
fn expect_continue_with_a_deferred_handler() {
    let shared = shared();
    let head = b"POST /up HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n";
    let mut d = Driver::new(&shared, head, usize::MAX);
    d.relay().room = usize::MAX;
    d.run();
    assert_eq!(d.client, b"HTTP/1.1 100 Continue\r\n\r\n");
    d.pending.extend_from_slice(b"data");
    d.run();
    let relay = d.relay();
    assert_eq!(
        (relay.received.as_slice(), relay.body_ended),
        (&b"data"[..], 1)
    );
    let relay = d.relay();
    relay.head = Some((200, BodyLen::Known(0)));
    d.run();
    let mut bytes = &d.client[25..];
    assert_eq!(parse_response(&mut bytes, false).unwrap().status, 200);
    assert!(!d.conn.is_done());
}

/// Interim responses go to HTTP/1.1 clients only (RFC 9110 §15.2).
#[test]
fn interim_responses_only_to_http11() {
    for (version, expected) in [("1.1", true), ("1.0", false)] {
        let shared = shared();
        let input = format!("GET / HTTP/{version}\r\nHost: t\r\n\r\n");
        let mut d = Driver::new(&shared, input.as_bytes(), usize::MAX);
        d.relay().interim = Some(103);
        d.relay().head = Some((200, BodyLen::Known(0)));
        d.run();
        let text = String::from_utf8_lossy(&d.client);
        assert_eq!(
            text.starts_with("HTTP/1.1 103 Early Hints\r\n\r\nHTTP/1.1 200"),
            expected,
            "{text}"
        );
        assert_eq!(text.contains("103"), expected, "{text}");
    }
}

/// The handler is told of an exchange that ends early only while it is part of it:
/// once its response is complete, the rest of the request body is the connection's to
/// read and drop, and a broken or truncated rest ends the connection without an
/// `on_abort` (nothing of the handler's is left to drop).
#[test]
fn a_body_broken_after_a_complete_response_is_no_abort() {
    let broken =
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nxyz\r\n";
    let truncated = b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n12345";
    for (input, eof) in [(&broken[..], false), (truncated, true)] {
        for step in STEPS {
            let shared = shared();
            let mut d = Driver::new(&shared, input, step);
            d.relay().head = Some((200, BodyLen::Known(2)));
            d.relay().upstream.extend_from_slice(b"ok");
            d.run();
            if eof {
                d.conn
                    .on_eof(!d.rbuf.is_empty(), &mut d.wbuf, &mut d.ctx, &mut d.calls);
                d.wbuf.flush_to(&mut d.client).unwrap();
            }
            assert!(d.conn.is_done(), "step {step}");
            assert_eq!(d.relay().aborts, 0, "step {step}");
            let mut bytes = d.client.as_slice();
            let r = parse_response(&mut bytes, false).unwrap();
            assert_eq!((r.status, r.text().as_str()), (200, "ok"));
            assert!(bytes.is_empty(), "step {step}: nothing after the response");
        }
    }
}

/// A handler that cuts its response off in `on_request` declines the body: no
/// `100 Continue` is sent for it (RFC 9110 §10.1.1), and the connection closes.
#[test]
fn a_response_cut_off_at_once_sends_no_100_continue() {
    let head = b"POST /up HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n";
    for step in STEPS {
        let shared = shared();
        let mut d = Driver::new(&shared, head, step);
        d.relay().abort_at_once = true;
        d.run();
        assert!(
            d.client.is_empty(),
            "{:?}",
            String::from_utf8_lossy(&d.client)
        );
        assert!(d.conn.is_done());
        assert_eq!(d.relay().aborts, 0);
    }
}
