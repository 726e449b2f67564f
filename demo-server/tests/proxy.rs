//! The reverse proxy end to end over loopback: `demo-server serve` in-process as an
//! upstream, and small std-only upstreams written here that misbehave on purpose and
//! record every byte they receive.
//!
//! Every socket has timeouts and every wait a deadline, so a bug fails a test instead
//! of hanging it; nothing here asserts speed.

mod common;

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::net::{CLIENT_TIMEOUT, Client};
use common::parse_response;
use demo_server::proxy::handler::ProxyConfig;
use demo_server::proxy::upstream::HealthPolicy;
use demo_server::server::{Config, Handle, Server};
use demo_server::state::Limits;

const BIG: usize = 10 * 1024 * 1024;

fn limits() -> Limits {
    Limits {
        max_body_bytes: 2 * BIG as u64,
        ..Limits::default()
    }
}

/// A server (the demo routes or the proxy) running in-process until dropped.
struct Running {
    addr: SocketAddr,
    admin: Option<SocketAddr>,
    handle: Handle,
    thread: Option<thread::JoinHandle<io::Result<()>>>,
}

impl Running {
    fn start(server: Server) -> Running {
        let (addr, admin, handle) = (server.local_addr(), server.admin_addr(), server.handle());
        let thread = Some(thread::spawn(move || server.run()));
        Running {
            addr,
            admin,
            handle,
            thread,
        }
    }

    fn client(&self) -> Client {
        Client::connect(self.addr)
    }

    /// The admin listener's `/stats`.
    fn stats(&self) -> String {
        let mut admin = Client::connect(self.admin.expect("a proxy"));
        admin.send(b"GET /stats HTTP/1.1\r\nHost: admin\r\n\r\n");
        admin.response().text()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.handle.shutdown();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn config(threads: usize) -> Config {
    Config {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        threads,
        limits: limits(),
        shutdown_timeout: Duration::from_secs(1),
        access_log: false,
    }
}

/// `demo-server serve`, in-process.
fn serve() -> Running {
    Running::start(Server::bind(config(2)).unwrap())
}

/// `demo-server proxy` to `upstreams`, in-process, with its admin listener.
fn proxy(upstreams: &[SocketAddr], tweak: impl FnOnce(&mut ProxyConfig)) -> Running {
    let mut proxy = ProxyConfig {
        upstreams: upstreams.to_vec(),
        ..ProxyConfig::default()
    };
    tweak(&mut proxy);
    let server = Server::proxy(config(2), proxy)
        .and_then(|s| s.with_admin(SocketAddr::from(([127, 0, 0, 1], 0))))
        .unwrap();
    Running::start(server)
}

/// A number in the `/stats` JSON: the first `"key":N` after `after`.
fn stat(json: &str, after: &str, key: &str) -> u64 {
    let from = json
        .find(after)
        .unwrap_or_else(|| panic!("{after} in {json}"));
    let rest = &json[from..];
    let at = rest.find(&format!("\"{key}\":")).unwrap() + key.len() + 3;
    let digits: String = rest[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().unwrap()
}

/// Waits (bounded) for `condition`.
fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    while !condition() {
        assert!(Instant::now() < deadline, "never: {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

// === std-only upstreams ===

/// What a test upstream does with each connection.
type Behaviour = dyn Fn(&mut TcpStream, &Recorder) + Send + Sync;

/// A std-only upstream: one thread per connection, running `behaviour`.
struct TestUpstream {
    addr: SocketAddr,
    recorder: Arc<Recorder>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

/// What a test upstream saw.
#[derive(Default)]
struct Recorder {
    accepts: AtomicUsize,
    /// Every byte received, on every connection, in order of arrival.
    received: Mutex<Vec<u8>>,
}

impl Recorder {
    fn received(&self) -> Vec<u8> {
        self.received.lock().unwrap().clone()
    }
}

impl TestUpstream {
    fn start(behaviour: impl Fn(&mut TcpStream, &Recorder) + Send + Sync + 'static) -> Self {
        Self::on(
            TcpListener::bind("127.0.0.1:0").unwrap(),
            Arc::new(behaviour),
        )
    }

    fn on(listener: TcpListener, behaviour: Arc<Behaviour>) -> Self {
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        let recorder = Arc::new(Recorder::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (rec, halt) = (Arc::clone(&recorder), Arc::clone(&stop));
        let thread = thread::spawn(move || {
            let mut conns = Vec::new();
            while !halt.load(Ordering::Acquire) {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        rec.accepts.fetch_add(1, Ordering::SeqCst);
                        stream.set_nonblocking(false).unwrap();
                        stream
                            .set_read_timeout(Some(Duration::from_secs(10)))
                            .unwrap();
                        stream.set_write_timeout(Some(CLIENT_TIMEOUT)).unwrap();
                        let (rec, behaviour) = (Arc::clone(&rec), Arc::clone(&behaviour));
                        conns.push(thread::spawn(move || behaviour(&mut stream, &rec)));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
            for conn in conns {
                let _ = conn.join();
            }
        });
        TestUpstream {
            addr,
            recorder,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for TestUpstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Reads one request (head and body, Content-Length or chunked) from `stream`,
/// recording its bytes; `None` at end of stream.
fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>, rec: &Recorder) -> Option<Vec<u8>> {
    loop {
        if let Some(len) = request_len(buf) {
            return Some(buf.drain(..len).collect());
        }
        let mut chunk = [0u8; 16 * 1024];
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => {
                rec.received.lock().unwrap().extend_from_slice(&chunk[..n]);
                buf.extend_from_slice(&chunk[..n]);
            }
        }
    }
}

/// The length of the complete request at the front of `buf`, if it is complete.
fn request_len(buf: &[u8]) -> Option<usize> {
    let mut storage = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut storage);
    let httparse::Status::Complete(head) = req.parse(buf).ok()? else {
        return None;
    };
    let field = |name: &str| {
        req.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).into_owned())
    };
    if let Some(len) = field("content-length") {
        let end = head + len.parse::<usize>().unwrap();
        return (buf.len() >= end).then_some(end);
    }
    if field("transfer-encoding").is_some() {
        let end = buf[head..].windows(5).position(|w| w == b"0\r\n\r\n")?;
        return Some(head + end + 5);
    }
    Some(head)
}

/// An upstream that answers every request on a connection with `ok`.
fn answer_ok(stream: &mut TcpStream, rec: &Recorder) {
    let mut buf = Vec::new();
    while read_request(stream, &mut buf, rec).is_some() {
        if stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            .is_err()
        {
            return;
        }
    }
}

/// The requests an upstream received, as (request line, fields, body).
fn requests(mut bytes: &[u8]) -> Vec<(String, Vec<(String, String)>)> {
    let mut out = Vec::new();
    while let Some(len) = request_len(bytes) {
        let mut storage = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut storage);
        req.parse(bytes).unwrap();
        let line = format!("{} {}", req.method.unwrap(), req.path.unwrap());
        let fields = req
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_owned(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect();
        out.push((line, fields));
        bytes = &bytes[len..];
    }
    out
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    fields
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

/// Sends `request` from another thread while reading its response (an echo streams
/// back while the body goes up: a client that wrote it all first would deadlock).
fn send_while_reading(client: &mut Client, request: Vec<u8>) -> common::Response {
    let mut writer = client.stream.try_clone().unwrap();
    let sender = thread::spawn(move || writer.write_all(&request).unwrap());
    let response = client.response();
    sender.join().unwrap();
    response
}

// === the tests ===

#[test]
fn bodies_of_every_size_are_byte_exact_both_ways() {
    let upstream = serve();
    let proxy = proxy(&[upstream.addr], |_| {});
    let mut client = proxy.client();
    for size in [0, 1, 64 * 1024, BIG] {
        let body: Vec<u8> = (0..size).map(|i| (i * 31 % 253) as u8).collect();
        // Content-Length, up and back.
        let mut request =
            format!("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {size}\r\n\r\n")
                .into_bytes();
        request.extend_from_slice(&body);
        let r = send_while_reading(&mut client, request);
        assert_eq!((r.status, r.body.len()), (200, size));
        assert!(r.body == body, "Content-Length echo of {size} bytes");
        // Chunked, up and back.
        let mut request =
            b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for piece in body.chunks(100_000) {
            request.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
            request.extend_from_slice(piece);
            request.extend_from_slice(b"\r\n");
        }
        request.extend_from_slice(b"0\r\n\r\n");
        let r = send_while_reading(&mut client, request);
        assert!(r.chunked && r.body == body, "chunked echo of {size} bytes");
        // Generated by the upstream, Content-Length.
        let r = client.get(&format!("/bytes/{size}"));
        assert_eq!(r.body.len(), size);
        assert!(
            r.body
                .iter()
                .enumerate()
                .all(|(i, &b)| b == b'a' + (i % 26) as u8)
        );
    }
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let upstream = serve();
    let proxy = proxy(&[upstream.addr], |_| {});
    let mut client = proxy.client();
    let batch: String = (0..50)
        .map(|i| format!("GET /bytes/{i} HTTP/1.1\r\nHost: t\r\n\r\n"))
        .collect();
    client.send(batch.as_bytes());
    for i in 0..50 {
        assert_eq!(client.response().body.len(), i, "in order");
    }
}

#[test]
fn a_hundred_concurrent_clients_each_get_their_own_bytes() {
    let upstream = serve();
    let proxy = proxy(&[upstream.addr], |_| {});
    let threads: Vec<_> = (0..100)
        .map(|i| {
            let addr = proxy.addr;
            thread::spawn(move || {
                let mut client = Client::connect(addr);
                for round in 0..5 {
                    let body = format!("client {i} round {round}");
                    let head = format!(
                        "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
                        body.len()
                    );
                    client.send(head.as_bytes());
                    client.send(body.as_bytes());
                    assert_eq!(client.response().text(), body);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let stats = proxy.stats();
    assert_eq!(stat(&stats, "", "requests"), 500);
}

#[test]
fn upstream_connections_are_kept_alive_and_reused() {
    let upstream = TestUpstream::start(answer_ok);
    let proxy = proxy(&[upstream.addr], |_| {});
    for _ in 0..3 {
        let mut client = proxy.client();
        for _ in 0..20 {
            assert_eq!(client.get("/").text(), "ok");
        }
    }
    let accepts = upstream.recorder.accepts.load(Ordering::SeqCst);
    // Two workers: at most one connection each, whichever took the clients.
    assert!(
        (1..=2).contains(&accepts),
        "{accepts} upstream connections for 60 requests"
    );
    let stats = proxy.stats();
    assert_eq!(stat(&stats, "\"upstreams\"", "opened"), accepts as u64);
    assert_eq!(stat(&stats, "\"upstreams\"", "reused"), 60 - accepts as u64);
}

#[test]
fn an_upstream_that_closes_idle_connections_never_causes_a_502() {
    // It answers one request per connection (saying nothing of closing), then closes.
    let upstream = TestUpstream::start(|stream, rec| {
        let mut buf = Vec::new();
        if read_request(stream, &mut buf, rec).is_some() {
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        }
    });
    let proxy = proxy(&[upstream.addr], |_| {});
    let mut client = proxy.client();
    for i in 0..30 {
        if i % 2 == 0 {
            thread::sleep(Duration::from_millis(20)); // sometimes the close is seen first
        }
        let r = client.get("/");
        assert_eq!((r.status, r.text().as_str()), (200, "ok"), "request {i}");
    }
    let stats = proxy.stats();
    assert_eq!(stat(&stats, "\"upstreams\"", "failures"), 0, "{stats}");
    assert!(stats.contains("\"state\":\"up\""));
}

#[test]
fn an_upstream_that_dies_mid_response_cuts_the_response_off() {
    let upstream = TestUpstream::start(|stream, rec| {
        let mut buf = Vec::new();
        if read_request(stream, &mut buf, rec).is_some() {
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n");
            let _ = stream.write_all(&[b'x'; 1000]);
        }
    });
    let proxy = proxy(&[upstream.addr], |_| {});
    let mut client = proxy.client();
    client.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    let got = client.read_to_close();
    let mut view = got.as_slice();
    assert!(parse_response(&mut view, false).is_none(), "never complete");
    assert!(got.starts_with(b"HTTP/1.1 200 OK\r\n"));
    let body = &got[got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4..];
    assert_eq!(body, &[b'x'; 1000][..], "what came, and nothing else");
}

#[test]
fn a_slow_upstream_is_a_504() {
    let upstream = TestUpstream::start(|stream, rec| {
        let mut buf = Vec::new();
        let _ = read_request(stream, &mut buf, rec);
        let _ = read_request(stream, &mut buf, rec); // and never answer
    });
    let proxy = proxy(&[upstream.addr], |c| {
        c.upstream_timeout = Duration::from_millis(300)
    });
    let mut client = proxy.client();
    let r = client.get("/");
    assert_eq!(r.status, 504);
    assert!(!r.closes(), "the client's connection survives");
    assert_eq!(stat(&proxy.stats(), "\"upstreams\"", "failures"), 1);
}

#[test]
fn a_dead_upstream_is_marked_down_skipped_then_back() {
    let live = TestUpstream::start(answer_ok);
    // A port nobody listens on, for now.
    let dead = TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap();
    drop(dead);
    let proxy = proxy(&[dead_addr, live.addr], |c| {
        c.health = HealthPolicy {
            max_fails: 1,
            fail_timeout: Duration::from_millis(500),
        }
    });
    let mut client = proxy.client();
    for i in 0..10 {
        let r = client.get("/");
        assert_eq!(
            (r.status, r.text().as_str()),
            (200, "ok"),
            "request {i}: retried elsewhere"
        );
    }
    let stats = proxy.stats();
    let dead_entry = format!("\"upstream\":\"{dead_addr}\",\"state\":\"down\"");
    assert!(stats.contains(&dead_entry), "{stats}");
    assert_eq!(
        stat(&stats, &dead_addr.to_string(), "failures"),
        1,
        "skipped once down"
    );
    let dead_name = dead_addr.to_string();
    assert_eq!(
        (
            stat(&stats, &dead_name, "opened"),
            stat(&stats, &dead_name, "connect_failures"),
            stat(&stats, &dead_name, "retries"),
        ),
        (0, 1, 1),
        "never made; the retry counted where the attempt failed: {stats}"
    );
    assert_eq!(stat(&stats, &live.addr.to_string(), "retries"), 0);
    // It comes back: after fail_timeout a request probes it, and it stays up.
    let back = TestUpstream::on(TcpListener::bind(dead_addr).unwrap(), Arc::new(answer_ok));
    eventually("the upstream is probed and back", || {
        assert_eq!(client.get("/").status, 200);
        back.recorder.accepts.load(Ordering::SeqCst) > 0
            && proxy
                .stats()
                .contains(&format!("\"upstream\":\"{dead_addr}\",\"state\":\"up\""))
    });
}

#[test]
fn a_slow_reader_of_ten_megabytes_costs_the_proxy_bounded_memory() {
    let upstream = serve();
    let proxy = proxy(&[upstream.addr], |_| {});
    let mut client = proxy.client();
    client.send(format!("GET /bytes/{BIG} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
    // Read nothing for a while: the kernel's buffers fill, then the proxy's, then the
    // proxy stops reading the upstream.
    thread::sleep(Duration::from_millis(500));
    let stats = proxy.stats();
    let peak = stat(&stats, "", "peak_buffered_bytes");
    assert!(
        peak <= 256 * 1024,
        "peak {peak} bytes buffered by one connection: {stats}"
    );
    assert!(stat(&stats, "\"copy_buf\"", "misses") <= 4, "{stats}");
    let r = client.response();
    assert_eq!(r.body.len(), BIG);
    assert!(
        r.body
            .iter()
            .enumerate()
            .all(|(i, &b)| b == b'a' + (i % 26) as u8)
    );
    let peak = stat(&proxy.stats(), "", "peak_buffered_bytes");
    assert!(peak <= 256 * 1024, "peak {peak} after the whole body");
}

#[test]
fn hop_by_hop_fields_go_and_forwarding_fields_come() {
    let upstream = TestUpstream::start(answer_ok);
    let proxy = proxy(&[upstream.addr], |_| {});
    let mut client = proxy.client();
    client.send(
        b"GET /p?q=1 HTTP/1.1\r\nHost: site.example\r\nConnection: keep-alive, X-Private\r\n\
          X-Private: secret\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nUpgrade: h2c\r\n\
          Proxy-Authorization: Basic eA==\r\nX-Forwarded-For: 203.0.113.9\r\nX-Kept: yes\r\n\r\n",
    );
    assert_eq!(client.response().text(), "ok");
    let received = requests(&upstream.recorder.received());
    let (line, fields) = &received[0];
    assert_eq!(line, "GET /p?q=1");
    for gone in [
        "connection",
        "x-private",
        "keep-alive",
        "te",
        "upgrade",
        "proxy-authorization",
    ] {
        assert!(field(fields, gone).is_empty(), "{gone} forwarded");
    }
    assert_eq!(field(fields, "x-kept"), ["yes"]);
    // The client's X-Forwarded-For is not believed (the proxy is the trust boundary).
    assert_eq!(field(fields, "x-forwarded-for"), ["127.0.0.1"]);
    assert_eq!(
        field(fields, "forwarded"),
        ["for=127.0.0.1;host=site.example;proto=http"]
    );
    assert_eq!(field(fields, "x-forwarded-host"), ["site.example"]);
    assert_eq!(field(fields, "via"), ["1.1 demo-server"]);
}

#[test]
fn smuggling_shapes_get_400_and_the_upstream_sees_nothing() {
    let upstream = TestUpstream::start(answer_ok);
    let proxy = proxy(&[upstream.addr], |_| {});
    let cases: &[&[u8]] = &[
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde",
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 4, 5\r\n\r\nabcde",
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: -4\r\n\r\nabcd",
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: t\r\nX: a\r\n folded\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: t\r\nX: a\x00b\r\n\r\n",
        b"GET /a\rb HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET / HTTP/1.1\nHost: t\n\n",
        b"GET / HTTP/1.1\r\nHost: t\r\nBad Name: x\r\n\r\n",
        b"G\x01T / HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET / HTTP/1.7\r\nHost: t\r\n\r\n",
    ];
    for &request in cases {
        let mut client = proxy.client();
        client.send(request);
        let got = client.read_to_close();
        let text = String::from_utf8_lossy(request);
        assert!(
            got.starts_with(b"HTTP/1.1 400 "),
            "{text:?}: {:?}",
            String::from_utf8_lossy(&got)
        );
    }
    assert_eq!(
        upstream.recorder.accepts.load(Ordering::SeqCst),
        0,
        "not even a connection"
    );
    assert!(upstream.recorder.received().is_empty());
}

#[test]
fn valid_but_unusual_requests_reach_the_upstream_intact() {
    let upstream = TestUpstream::start(answer_ok);
    let proxy = proxy(&[upstream.addr], |_| {});
    let mut client = proxy.client();
    let cases: [(&[u8], &str, &str, &str); 4] = [
        (
            b"POST /z HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\n\x1f\x8b\r\n0\r\n\r\n",
            "POST /z",
            "transfer-encoding",
            "gzip, chunked",
        ),
        (b"GET /q HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc", "GET /q", "content-length", "3"),
        (b"GET /q HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n", "GET /q", "content-length", "0"),
        (b"GET /%41%00%ff?a=%2F%20 HTTP/1.1\r\nHost: t\r\n\r\n", "GET /%41%00%ff?a=%2F%20", "host", "t"),
    ];
    for (request, _, _, _) in &cases {
        client.send(request);
        assert_eq!(client.response().text(), "ok");
    }
    let received = upstream.recorder.received();
    let got = requests(&received);
    for ((_, line, name, value), (got_line, fields)) in cases.iter().zip(&got) {
        assert_eq!(got_line, line);
        assert_eq!(field(fields, name), [*value], "{line}");
    }
    assert!(
        received.windows(8).any(|w| w == b"2\r\n\x1f\x8b\r\n0"),
        "the coded body as it came"
    );
    assert!(
        received.windows(7).any(|w| w == b"\r\n\r\nabc"),
        "the GET's body"
    );
}

#[test]
fn a_client_that_goes_away_mid_stream_frees_its_upstream_connection() {
    let upstream = serve();
    let proxy = proxy(&[upstream.addr], |_| {});
    let mut client = proxy.client();
    client.send(format!("GET /bytes/{BIG} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
    let mut first = [0u8; 1000];
    client.stream.read_exact(&mut first).unwrap();
    client.stream.shutdown(Shutdown::Both).unwrap();
    drop(client);
    eventually("the upstream connection is discarded", || {
        let stats = proxy.stats();
        stat(&stats, "", "connections") == 0 && stat(&stats, "\"upstreams\"", "discarded") == 1
    });
    // The proxy works on.
    assert_eq!(proxy.client().get("/").text(), "Hello, World!");
}

#[test]
fn stats_and_metrics_are_on_the_admin_listener_and_every_path_goes_upstream() {
    let upstream = serve();
    let proxy = proxy(&[upstream.addr], |_| {});
    // On the proxy's own address, /stats is the upstream's.
    let r = proxy.client().get("/stats");
    assert_eq!(r.header("via"), Some("1.1 demo-server"));
    assert!(!r.text().contains("upstreams"), "{}", r.text());
    // On the admin listener: the proxy's.
    let mut admin = Client::connect(proxy.admin.unwrap());
    let r = admin.get("/metrics");
    assert_eq!(r.status, 200);
    let text = r.text();
    for family in [
        "demo_requests_total 1\n",
        "demo_open_connections ",
        "recycle_pool_hits_total{pool=\"copy_buf\"} ",
        "demo_upstream_connections_opened_total{upstream=",
        "demo_upstream_connections_reused_total{upstream=",
        "demo_upstream_connections_discarded_total{upstream=",
        "demo_upstream_retries_total{upstream=",
        "demo_upstream_failures_total{upstream=",
        "demo_upstream_up{upstream=",
    ] {
        assert!(text.contains(family), "{family} in {text}");
    }
    assert!(
        admin
            .get("/stats")
            .text()
            .contains("\"upstreams\":[{\"upstream\":")
    );
    assert_eq!(admin.get("/").status, 404);
    for path in ["/stats", "/metrics"] {
        admin.send(
            format!("POST {path} HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n").as_bytes(),
        );
        let r = admin.response();
        // RFC 9110 §15.5.6: a 405 MUST say what is allowed.
        assert_eq!(
            (r.status, r.header("allow")),
            (405, Some("GET, HEAD")),
            "{path}"
        );
    }
}

#[test]
fn a_response_head_that_trickles_in_is_still_a_504() {
    let upstream = TestUpstream::start(|stream, rec| {
        let mut buf = Vec::new();
        if read_request(stream, &mut buf, rec).is_some() {
            let head =
                b"HTTP/1.1 200 OK\r\nX-Pad: aaaaaaaaaaaaaaaaaaaa\r\nContent-Length: 2\r\n\r\nok";
            for &b in head {
                if stream.write_all(&[b]).is_err() {
                    return;
                }
                thread::sleep(Duration::from_millis(50));
            }
        }
    });
    let proxy = proxy(&[upstream.addr], |c| {
        c.upstream_timeout = Duration::from_millis(500);
    });
    let r = proxy.client().get("/");
    assert_eq!(r.status, 504, "{}", r.text());
}

#[test]
fn a_client_that_pauses_reading_is_not_cut_off_by_the_upstream_timeout() {
    let upstream = serve();
    let proxy = proxy(&[upstream.addr], |c| {
        c.upstream_timeout = Duration::from_millis(300);
    });
    let mut client = proxy.client();
    client.send(format!("GET /bytes/{BIG} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
    // Several upstream timeouts long: the proxy's buffers fill and it waits on the
    // client, which --write-timeout (30 s) bounds.
    thread::sleep(Duration::from_millis(1500));
    let r = client.response();
    assert_eq!(r.body.len(), BIG);
    assert_eq!(stat(&proxy.stats(), "\"upstreams\"", "failures"), 0);
}

#[test]
fn a_client_gone_before_the_response_head_frees_its_upstream_connection() {
    let closed = Arc::new(AtomicBool::new(false));
    let seen = Arc::clone(&closed);
    let upstream = TestUpstream::start(move |stream, rec| {
        let mut buf = Vec::new();
        if read_request(stream, &mut buf, rec).is_some() {
            // Never answer: wait (10 s at most) for the proxy to close the connection.
            let mut byte = [0u8; 1];
            if matches!(stream.read(&mut byte), Ok(0)) {
                seen.store(true, Ordering::SeqCst);
            }
        }
    });
    let proxy = proxy(&[upstream.addr], |c| {
        c.upstream_timeout = Duration::from_secs(60);
    });
    let mut client = proxy.client();
    client.send(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n");
    eventually("the request reaches the upstream", || {
        !upstream.recorder.received().is_empty()
    });
    // Gone for good: a reset (a plain FIN could be a half-close, see below).
    socket2::SockRef::from(&client.stream)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(client);
    eventually("the upstream connection is closed", || {
        closed.load(Ordering::SeqCst)
    });
    let stats = proxy.stats();
    let upstreams = "\"upstreams\"";
    assert_eq!(
        (
            stat(&stats, upstreams, "client_aborts"),
            stat(&stats, upstreams, "discarded"),
            stat(&stats, upstreams, "failures"),
        ),
        (1, 1, 0),
        "{stats}"
    );
}

/// A client may shut down its sending side once its requests are sent and still wait
/// for the answers (RFC 9112 §9.6): the proxy answers every request it received.
#[test]
fn a_client_that_half_closes_after_its_requests_gets_every_answer() {
    let upstream = TestUpstream::start(|stream, rec| {
        let mut buf = Vec::new();
        while read_request(stream, &mut buf, rec).is_some() {
            // Slow enough that the half-close is seen while the proxy waits.
            thread::sleep(Duration::from_millis(50));
            let reply = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nmine";
            if stream.write_all(reply).is_err() {
                return;
            }
        }
    });
    let proxy = proxy(&[upstream.addr], |_| {});
    for requests in [
        &b"GET /1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"[..],
        b"GET /1 HTTP/1.1\r\nHost: t\r\n\r\nGET /2 HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /1 HTTP/1.0\r\n\r\n",
    ] {
        let mut client = proxy.client();
        client.send(requests);
        client.stream.shutdown(Shutdown::Write).unwrap();
        let expected = requests.windows(4).filter(|w| w == b"GET ").count();
        for i in 0..expected {
            let r = client.response();
            assert_eq!((r.status, r.text().as_str()), (200, "mine"), "answer {i}");
        }
    }
    let stats = proxy.stats();
    assert_eq!(stat(&stats, "\"upstreams\"", "client_aborts"), 0, "{stats}");
}

/// An upstream that answers before reading the whole request body and then closes
/// resets the connection (its kernel had unread bytes); the kernel on the proxy's side
/// hands over the response first, so the client gets it and the upstream is not marked
/// down: a common early 413 or 401 to an upload. The same for an upstream that
/// resets on purpose (`SO_LINGER 0`) after a whole response.
#[test]
fn an_early_answer_followed_by_a_reset_reaches_the_client() {
    for unread_body in [true, false] {
        let upstream = TestUpstream::start(move |stream, rec| {
            let mut buf = Vec::new();
            if unread_body {
                // Only the head of the POST; its body arrives and stays unread.
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                rec.received.lock().unwrap().extend_from_slice(&buf);
                thread::sleep(Duration::from_millis(20));
            } else {
                if read_request(stream, &mut buf, rec).is_none() {
                    return;
                }
                socket2::SockRef::from(&*stream)
                    .set_linger(Some(Duration::ZERO))
                    .unwrap();
            }
            let _ = stream.write_all(b"HTTP/1.1 413 Too Big\r\nContent-Length: 4\r\n\r\nmine");
        });
        let proxy = proxy(&[upstream.addr], |_| {});
        for _ in 0..10 {
            let mut client = proxy.client();
            if unread_body {
                let mut req =
                    b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 4000\r\n\r\n".to_vec();
                req.resize(req.len() + 4000, b'x');
                client.send(&req);
            } else {
                client.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
            }
            let r = client.response();
            assert_eq!(
                (r.status, r.text().as_str()),
                (413, "mine"),
                "unread body: {unread_body}"
            );
        }
        let stats = proxy.stats();
        assert_eq!(stat(&stats, "\"upstreams\"", "failures"), 0, "{stats}");
    }
}

#[test]
fn bytes_an_upstream_sends_on_an_idle_connection_never_reach_a_client() {
    // It answers HEAD with a head and, a moment later, a "body" that looks like a
    // whole response; everything else properly.
    let upstream = TestUpstream::start(|stream, rec| {
        let mut buf = Vec::new();
        while let Some(request) = read_request(stream, &mut buf, rec) {
            let reply: &[u8] = if request.starts_with(b"HEAD") {
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n");
                thread::sleep(Duration::from_millis(100));
                b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nSECRET"
            } else {
                b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nmine"
            };
            if stream.write_all(reply).is_err() {
                return;
            }
        }
    });
    let proxy = proxy(&[upstream.addr], |_| {});
    let mut client = proxy.client();
    client.send(b"HEAD / HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(client.response_to(true).status, 200);
    thread::sleep(Duration::from_millis(400));
    for _ in 0..3 {
        assert_eq!(client.get("/").text(), "mine");
    }
    let stats = proxy.stats();
    assert_eq!(
        stat(&stats, "\"upstreams\"", "opened"),
        2,
        "the connection written to while idle was dropped: {stats}"
    );
}

/// The availability attack of an early answer: an upstream that reads only the head of
/// a 4 MB upload, answers `413` with `Connection: close` and closes, its kernel
/// resetting the connection over the unread body. The proxy's next write fails; the
/// answer is already in its socket and reaches the client, 20 times of 20, whether the
/// upstream closes at once (the proxy usually meets the failed write first) or after a
/// pause (it reads the answer first), and the single upstream is never marked failed or
/// taken out.
#[test]
fn an_early_answer_to_an_upload_then_a_reset_is_never_a_502() {
    for pause in [Duration::ZERO, Duration::from_millis(30)] {
        let upstream = TestUpstream::start(move |stream, rec| {
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                match stream.read(&mut byte) {
                    Ok(1) => head.push(byte[0]),
                    _ => return,
                }
            }
            rec.received.lock().unwrap().extend_from_slice(&head);
            let _ = stream.write_all(
                b"HTTP/1.1 413 Content Too Large\r\nConnection: close\r\nContent-Length: 4\r\n\r\nbig!",
            );
            thread::sleep(pause);
            // Dropped with the body unread: the kernel resets the connection.
        });
        let proxy = proxy(&[upstream.addr], |c| {
            c.health = HealthPolicy {
                max_fails: 1,
                fail_timeout: Duration::from_secs(60),
            }
        });
        for i in 0..20 {
            let mut client = proxy.client();
            let mut upload =
                b"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 4000000\r\n\r\n".to_vec();
            upload.resize(upload.len() + 4_000_000, b'u');
            let mut writer = client.stream.try_clone().unwrap();
            // The proxy may close the client's connection once it answered: a failed
            // write of the rest of the upload is no error here.
            let sender = thread::spawn(move || {
                let _ = writer.write_all(&upload);
            });
            let r = client.response();
            assert_eq!(
                (r.status, r.text().as_str()),
                (413, "big!"),
                "upload {i}, pause {pause:?}"
            );
            drop(client);
            sender.join().unwrap();
        }
        let stats = proxy.stats();
        assert_eq!(stat(&stats, "\"upstreams\"", "failures"), 0, "{stats}");
        assert!(stats.contains("\"state\":\"up\""), "{stats}");
    }
}

/// An upstream that answers every request with the number of body bytes it received
/// (without recording them: these tests send many megabytes).
fn answer_body_len(stream: &mut TcpStream, _: &Recorder) {
    let ignore = Recorder::default();
    let mut buf = Vec::new();
    while let Some(request) = read_request(stream, &mut buf, &ignore) {
        ignore.received.lock().unwrap().clear();
        let head = request.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let body = (request.len() - head).to_string();
        let answer = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if stream.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

/// A POST to `/up` with a `len`-byte body.
fn upload(len: usize) -> Vec<u8> {
    let mut request =
        format!("POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: {len}\r\n\r\n").into_bytes();
    request.extend((0..len).map(|i| b'0' + (i % 10) as u8));
    request
}

/// A client that gives up on a response after a few seconds (these exchanges take
/// milliseconds: a hang should fail fast).
fn impatient(proxy: &Running) -> Client {
    let client = proxy.client();
    client
        .stream
        .set_read_timeout(Some(Duration::from_secs(4)))
        .unwrap();
    client
}

/// Sends a `len`-byte upload on `client` and checks that `answer_body_len` answered
/// it: 200 with the body's length.
fn assert_upload_answered(client: &mut Client, len: usize) {
    client.send(&upload(len));
    let r = client.response();
    assert_eq!(
        (r.status, r.text()),
        (200, len.to_string()),
        "POST of {len} B"
    );
}

/// A body bigger than the proxy's copy buffer, arriving in one write, while the
/// upstream connection is already connected (reused): the round that drains the
/// client's socket leaves bytes in its read buffer that fit only once the pump has
/// written the copy buffer upstream. This is what the event loop's "the pump made room
/// and client input is waiting" rule is for: without it the connection waits for a
/// readiness event that never comes, and the upload hangs.
#[test]
fn uploads_of_every_size_in_one_write_complete_on_a_reused_upstream_connection() {
    let upstream = TestUpstream::start(answer_body_len);
    let proxy = proxy(&[upstream.addr], |_| {});
    let mut client = impatient(&proxy);
    client.send(&upload(1)); // connects the upstream connection, parked then reused
    assert_eq!(client.response().text(), "1");
    let mut sizes: Vec<usize> = (1..=160).map(|k| k * 2048 + 7).collect();
    sizes.extend([100_000, 250_000, 1 << 20]);
    for len in sizes {
        assert_upload_answered(&mut client, len);
    }
    assert_eq!(upstream.recorder.accepts.load(Ordering::SeqCst), 1);
}

/// The same with a fresh client, so a fresh upstream connection, per upload.
#[test]
fn uploads_in_one_write_complete_on_fresh_connections() {
    let upstream = TestUpstream::start(answer_body_len);
    let proxy = proxy(&[upstream.addr], |_| {});
    for k in 1..=80 {
        let len = k * 4096 + 13;
        let mut client = impatient(&proxy);
        assert_upload_answered(&mut client, len);
    }
}

/// Pipelined requests in one write with an upload in the middle, bigger than every
/// buffer or not: every answer comes, in order.
#[test]
fn pipelined_requests_around_an_upload_are_all_answered() {
    let upstream = TestUpstream::start(answer_body_len);
    let proxy = proxy(&[upstream.addr], |_| {});
    for middle in [10, 40_000, 70_000, 300_000] {
        let mut client = impatient(&proxy);
        let get = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n";
        let mut batch = get.to_vec();
        batch.extend_from_slice(&upload(middle));
        batch.extend_from_slice(get);
        batch.extend_from_slice(get);
        let mut writer = client.stream.try_clone().unwrap();
        let sender = thread::spawn(move || writer.write_all(&batch).unwrap());
        for (i, body) in [0, middle, 0, 0].into_iter().enumerate() {
            let r = client.response();
            assert_eq!(
                (r.status, r.text()),
                (200, body.to_string()),
                "#{i} around {middle} B"
            );
        }
        sender.join().unwrap();
    }
}
