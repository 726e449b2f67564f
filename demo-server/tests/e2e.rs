//! End-to-end tests over real loopback sockets, with std `TcpStream` clients.
//!
//! Every client socket has read and write timeouts, so a server bug fails a test
//! instead of hanging it. Nothing here asserts speed.

mod common;

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::net::{CLIENT_TIMEOUT, Client};
use common::parse_response;
use demo_server::server::{Config, Handle, Server};
use demo_server::state::{Limits, Shared};

struct TestServer {
    addr: SocketAddr,
    handle: Handle,
    shared: Arc<Shared>,
    thread: Option<thread::JoinHandle<io::Result<()>>>,
}

impl TestServer {
    fn start(limits: Limits) -> TestServer {
        let config = Config {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            threads: 2,
            limits,
            shutdown_timeout: Duration::from_secs(5),
            access_log: false,
        };
        let server = Server::bind(config).unwrap();
        let (addr, handle, shared) = (
            server.local_addr(),
            server.handle(),
            Arc::clone(server.shared()),
        );
        let thread = Some(thread::spawn(move || server.run()));
        TestServer {
            addr,
            handle,
            shared,
            thread,
        }
    }

    fn connect(&self) -> Client {
        Client::connect(self.addr)
    }

    /// Waits (bounded) until no connection is open.
    fn wait_idle(&self) {
        let deadline = Instant::now() + CLIENT_TIMEOUT;
        while self.shared.open_connections() > 0 {
            assert!(Instant::now() < deadline, "connections never closed");
            thread::sleep(Duration::from_millis(10));
        }
    }

    fn stop(mut self) -> io::Result<()> {
        self.handle.shutdown();
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.handle.shutdown();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn limits() -> Limits {
    Limits {
        max_head_bytes: 16 * 1024,
        max_body_bytes: 16 * 1024 * 1024,
        header_timeout: Duration::from_millis(500),
        ..Limits::default()
    }
}

#[test]
fn thousand_sequential_requests_on_one_connection() {
    let server = TestServer::start(limits());
    let mut client = server.connect();
    for i in 0..1000 {
        let r = client.get(&format!("/bytes/{}", i % 100));
        assert_eq!((r.status, r.body.len()), (200, i % 100));
    }
    assert_eq!(server.shared.requests_served(), 1000);
}

#[test]
fn hundred_pipelined_requests_in_one_write() {
    let server = TestServer::start(limits());
    let mut client = server.connect();
    let batch: String = (0..100)
        .map(|i| format!("GET /bytes/{i} HTTP/1.1\r\nHost: t\r\n\r\n"))
        .collect();
    client.send(batch.as_bytes());
    for i in 0..100 {
        assert_eq!(client.response().body.len(), i, "answered in order");
    }
}

#[test]
fn two_hundred_concurrent_connections() {
    let server = TestServer::start(limits());
    let mut clients: Vec<Client> = (0..200).map(|_| server.connect()).collect();
    for (i, client) in clients.iter_mut().enumerate() {
        client.send(
            format!("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 9\r\n\r\nclient{i:03}")
                .as_bytes(),
        );
    }
    for (i, client) in clients.iter_mut().enumerate() {
        let r = client.response();
        assert_eq!(
            r.text(),
            format!("client{i:03}"),
            "each client gets its own bytes"
        );
    }
    // All still usable.
    for client in clients.iter_mut().step_by(20) {
        assert_eq!(client.get("/").text(), "Hello, World!");
    }
    drop(clients);
    server.wait_idle();
}

#[test]
fn ten_megabyte_chunked_echo_is_byte_exact() {
    let server = TestServer::start(limits());
    let mut client = server.connect();
    let body: Arc<Vec<u8>> = Arc::new(
        (0..10_000_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect(),
    );
    client.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
    let mut writer = client.stream.try_clone().unwrap();
    let sender = {
        let body = Arc::clone(&body);
        thread::spawn(move || {
            for piece in body.chunks(100_003) {
                write!(writer, "{:x};ext=1\r\n", piece.len()).unwrap();
                writer.write_all(piece).unwrap();
                writer.write_all(b"\r\n").unwrap();
            }
            writer.write_all(b"0\r\nTrailer: yes\r\n\r\n").unwrap();
        })
    };
    let r = client.response();
    sender.join().unwrap();
    assert!(r.chunked);
    assert_eq!(r.body.len(), body.len());
    assert!(r.body == *body, "byte-exact");
    assert_eq!(client.get("/").status, 200, "the connection is still good");
}

#[test]
fn slow_reader_gets_every_byte() {
    let server = TestServer::start(limits());
    let mut client = server.connect();
    const N: usize = 20_000_000;
    client.send(format!("GET /bytes/{N} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
    // Let the server fill the socket buffers and hit backpressure before reading.
    thread::sleep(Duration::from_millis(300));
    let mut received = Vec::with_capacity(N + 1024);
    let mut chunk = [0u8; 1500];
    let mut reads = 0;
    while received.len() < N + 60 {
        let n = client.stream.read(&mut chunk).unwrap();
        assert!(n > 0);
        received.extend_from_slice(&chunk[..n]);
        reads += 1;
        if reads % 2000 == 0 {
            thread::sleep(Duration::from_millis(1));
        }
        if let Some(r) = parse_response(&mut received.as_slice(), false) {
            assert_eq!(r.body.len(), N);
            assert!(
                r.body
                    .iter()
                    .enumerate()
                    .all(|(i, &b)| b == b'a' + (i % 26) as u8)
            );
            return;
        }
    }
    panic!("no complete response");
}

#[test]
fn disconnects_mid_request_and_mid_response_leave_the_server_consistent() {
    let server = TestServer::start(limits());
    for _ in 0..20 {
        // Mid-request: half a head, then gone.
        let mut c = server.connect();
        c.send(b"GET /bytes/10 HTTP/1.1\r\nHo");
        drop(c);
        // Mid-body.
        let mut c = server.connect();
        c.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\npartial");
        drop(c);
        // Mid-response: ask for a lot, read a little, leave.
        let mut c = server.connect();
        c.send(b"GET /bytes/50000000 HTTP/1.1\r\nHost: t\r\n\r\n");
        let mut some = [0u8; 1000];
        c.stream.read_exact(&mut some).unwrap();
        drop(c);
    }
    // Still serving.
    assert_eq!(server.connect().get("/").text(), "Hello, World!");
    server.wait_idle();
    let (readers, writers) = (server.shared.readers.stats(), server.shared.writers.stats());
    assert_eq!(
        readers.in_use(),
        0,
        "every read buffer came back: {readers:?}"
    );
    assert_eq!(
        writers.in_use(),
        0,
        "every write buffer came back: {writers:?}"
    );
    assert!(
        writers.discards > 0,
        "dirty writers (unflushed output) were refused: {writers:?}"
    );
}

/// Sends `request`, expects one response with `status`, then a close.
fn refused(server: &TestServer, request: &[u8], status: u16) {
    let mut client = server.connect();
    client.send(request);
    let r = client.response();
    assert_eq!(
        r.status,
        status,
        "{}",
        String::from_utf8_lossy(&request[..request.len().min(80)])
    );
    assert!(r.closes());
    assert!(
        client.read_to_close().is_empty(),
        "nothing after the error response"
    );
}

#[test]
fn every_error_arrives_with_its_status() {
    let server = TestServer::start(limits());
    refused(
        &server,
        b"GET / HTTP/1.1\r\nHost: t\r\nNo colon here\r\n\r\n",
        400,
    );
    refused(&server, b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400);
    refused(
        &server,
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        400,
    );
    refused(
        &server,
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: br\r\n\r\n",
        400, // RFC 9112 §6.3 item 4: chunked is not the final coding
    );
    refused(
        &server,
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: br, chunked\r\n\r\n",
        501,
    );
    refused(
        &server,
        format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "u".repeat(9000)).as_bytes(),
        414,
    );
    refused(
        &server,
        format!(
            "GET / HTTP/1.1\r\nHost: t\r\nX: {}\r\n\r\n",
            "h".repeat(17_000)
        )
        .as_bytes(),
        431,
    );
    let many: String = (0..101).map(|i| format!("X-{i}: v\r\n")).collect();
    refused(
        &server,
        format!("GET / HTTP/1.1\r\nHost: t\r\n{many}\r\n").as_bytes(),
        431,
    );
    refused(
        &server,
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999999\r\n\r\n",
        413,
    );
    // Unknown paths and methods are not errors: the connection stays.
    let mut client = server.connect();
    assert_eq!(client.get("/nope").status, 404);
    client.send(b"PUT / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc");
    let r = client.response();
    assert_eq!((r.status, r.header("allow")), (405, Some("GET, HEAD")));
    assert_eq!(
        client.get("/").status,
        200,
        "the PUT body was read and dropped"
    );
}

#[test]
fn header_timeout_sends_408() {
    let server = TestServer::start(limits()); // 500 ms
    let mut client = server.connect();
    let start = Instant::now();
    client.send(b"GET / HTTP/1.1\r\nHost: t\r\n"); // never finished
    let r = client.response();
    assert_eq!(r.status, 408);
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "within a generous bound"
    );
    assert!(client.read_to_close().is_empty());
    // A connection that sends nothing at all is closed without a response.
    let mut silent = server.connect();
    assert!(silent.read_to_close().is_empty());
}

#[test]
fn max_connections_turns_away_only_the_excess() {
    let server = TestServer::start(Limits {
        max_connections: 4,
        ..limits()
    });
    let mut kept: Vec<Client> = (0..4).map(|_| server.connect()).collect();
    for client in &mut kept {
        assert_eq!(client.get("/").status, 200);
    }
    let mut excess = server.connect();
    let _ = excess
        .stream
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    assert!(excess.read_to_close().is_empty(), "closed at once");
    for client in &mut kept {
        assert_eq!(client.get("/").status, 200, "the others keep being served");
    }
}

#[test]
fn graceful_shutdown_finishes_responses_in_flight() {
    let server = TestServer::start(limits());
    let mut idle = server.connect();
    assert_eq!(idle.get("/").status, 200);
    let mut busy = server.connect();
    const N: usize = 5_000_000;
    busy.send(format!("GET /bytes/{N} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
    let mut first = [0u8; 100];
    busy.stream.read_exact(&mut first).unwrap(); // the response has started
    busy.buf.extend_from_slice(&first);
    let addr = server.addr;
    let handle = server.handle.clone();
    handle.shutdown();
    let r = busy.response();
    assert_eq!(r.body.len(), N, "the response in flight was finished");
    assert!(
        idle.read_to_close().is_empty(),
        "idle connections are closed"
    );
    server.stop().unwrap();
    assert!(TcpStream::connect(addr).is_err(), "no longer accepting");
}

#[test]
fn half_closed_client_still_gets_its_response() {
    let server = TestServer::start(limits());
    let mut client = server.connect();
    client.send(b"GET /bytes/100000 HTTP/1.1\r\nHost: t\r\n\r\n");
    client.stream.shutdown(Shutdown::Write).unwrap();
    let r = client.response();
    assert_eq!(r.body.len(), 100_000);
}

/// Over a socket: a CRLF after a body (RFC 9112 §2.2: ignored before a
/// request line) leaves the connection idle, so it is neither timed out as a partial
/// head (408) while open nor refused (400) when the client half-closes.
#[test]
fn a_stray_crlf_after_a_body_is_idle_time() {
    let server = TestServer::start(limits()); // header timeout 500 ms
    let request = b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi\r\n";
    let mut client = server.connect();
    client.send(request);
    assert_eq!(client.response().text(), "hi");
    // Four header timeouts later (the idle timeout is a minute), still open and idle.
    thread::sleep(Duration::from_secs(2));
    let r = client.get("/");
    assert_eq!((r.status, r.text().as_str()), (200, "Hello, World!"));

    let mut client = server.connect();
    client.send(request);
    client.stream.shutdown(Shutdown::Write).unwrap();
    let rest = client.read_to_close();
    let mut view = rest.as_slice();
    assert_eq!(parse_response(&mut view, false).unwrap().text(), "hi");
    assert!(
        view.is_empty(),
        "no 400 after it: {:?}",
        String::from_utf8_lossy(view)
    );
}
