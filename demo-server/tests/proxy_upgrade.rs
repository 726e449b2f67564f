//! Upgrades through the reverse proxy over loopback (RFC 9110 §7.8, §15.2.2): a real
//! WebSocket client and server ([`tungstenite`]) with the proxy between them, and
//! raw sockets with exact bytes for the edges (what is forwarded, a 101 nobody asked
//! for, a refused upgrade, half-closes, the idle timeout, a reset, bytes pipelined on
//! both sides of the switch).
//!
//! Every socket has timeouts and every wait a deadline, so a bug fails a test instead
//! of hanging it; nothing here asserts speed.

mod common;

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::net::CLIENT_TIMEOUT;
use demo_server::proxy::handler::ProxyConfig;
use demo_server::server::{Config, Handle, Server};
use demo_server::state::Limits;
use tungstenite::{Message, WebSocket};

/// The proxy in-process, with its admin listener, until dropped.
struct Running {
    addr: SocketAddr,
    admin: SocketAddr,
    handle: Handle,
    thread: Option<thread::JoinHandle<io::Result<()>>>,
}

impl Running {
    fn proxy(upstream: SocketAddr, tweak: impl FnOnce(&mut ProxyConfig)) -> Running {
        Running::proxy_with(upstream, Limits::default(), tweak)
    }

    fn proxy_with(
        upstream: SocketAddr,
        limits: Limits,
        tweak: impl FnOnce(&mut ProxyConfig),
    ) -> Running {
        let mut proxy = ProxyConfig {
            upstreams: vec![upstream],
            ..ProxyConfig::default()
        };
        tweak(&mut proxy);
        let config = Config {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            threads: 2,
            limits,
            shutdown_timeout: Duration::from_secs(1),
            access_log: false,
        };
        let server = Server::proxy(config, proxy)
            .and_then(|s| s.with_admin(SocketAddr::from(([127, 0, 0, 1], 0))))
            .unwrap();
        let (addr, admin, handle) = (server.local_addr(), server.admin_addr(), server.handle());
        let thread = Some(thread::spawn(move || server.run()));
        Running {
            addr,
            admin: admin.unwrap(),
            handle,
            thread,
        }
    }

    /// `GET path` on the admin listener: its body.
    fn admin(&self, path: &str) -> String {
        let mut admin = connect(self.admin);
        write!(
            admin,
            "GET {path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut text = String::new();
        admin.read_to_string(&mut text).unwrap();
        text.split_once("\r\n\r\n").unwrap().1.to_owned()
    }

    /// A number of the upstream in `/stats`.
    fn stat(&self, key: &str) -> u64 {
        let json = self.admin("/stats");
        let at = json.find(&format!("\"{key}\":")).unwrap() + key.len() + 3;
        json[at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .unwrap()
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

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(CLIENT_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(CLIENT_TIMEOUT)).unwrap();
    stream
}

/// Waits (bounded) for `condition`.
fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    while !condition() {
        assert!(Instant::now() < deadline, "never: {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

/// Reads one head (through its blank line) from `stream`, byte by byte so that
/// nothing after it is consumed.
fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).expect("a head within the timeout");
        assert!(n == 1, "closed after {:?}", String::from_utf8_lossy(&head));
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

/// Reads exactly `n` bytes.
fn read_n(stream: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    stream
        .read_exact(&mut buf)
        .expect("bytes within the timeout");
    buf
}

/// Whether the peer closed: the next read gives the end of stream (or a reset).
fn closed(stream: &mut TcpStream) -> bool {
    let mut byte = [0u8];
    match stream.read(&mut byte) {
        Ok(0) => true,
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => true,
        Ok(_) => false,
        Err(e) => panic!("expected an end of stream: {e}"),
    }
}

/// A raw upstream: each connection goes to `serve` on its own thread.
fn raw_upstream(serve: impl Fn(TcpStream) + Send + Sync + 'static) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let serve = std::sync::Arc::new(serve);
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            stream.set_read_timeout(Some(CLIENT_TIMEOUT)).unwrap();
            stream.set_write_timeout(Some(CLIENT_TIMEOUT)).unwrap();
            let serve = std::sync::Arc::clone(&serve);
            thread::spawn(move || serve(stream));
        }
    });
    addr
}

/// A WebSocket echo server: each message comes back as it came; each connection
/// reports on `closed` once its close handshake completed.
fn echo_server(closed: mpsc::Sender<()>) -> SocketAddr {
    raw_upstream(move |stream| {
        let mut ws = tungstenite::accept(stream).expect("a WebSocket handshake");
        loop {
            match ws.read() {
                Ok(msg @ (Message::Text(_) | Message::Binary(_))) => ws.send(msg).unwrap(),
                Ok(_) => {} // pings are answered by tungstenite, on the next flush
                Err(tungstenite::Error::ConnectionClosed) => {
                    let _ = closed.send(());
                    return;
                }
                Err(e) => panic!("echo server: {e}"),
            }
        }
    })
}

/// A WebSocket client through the proxy at `proxy`.
fn ws_client(proxy: SocketAddr) -> WebSocket<TcpStream> {
    let url = format!("ws://{proxy}/echo");
    let (ws, response) = tungstenite::client(url, connect(proxy)).expect("an upgrade");
    assert_eq!(response.status(), 101);
    ws
}

/// The next data message (pongs and pings skipped).
fn next_data(ws: &mut WebSocket<TcpStream>) -> Message {
    loop {
        if let msg @ (Message::Text(_) | Message::Binary(_)) = ws.read().expect("a message") {
            return msg;
        }
    }
}

#[test]
fn websocket_messages_go_both_ways_through_the_proxy() {
    let (closed_tx, closed_rx) = mpsc::channel();
    let proxy = Running::proxy(echo_server(closed_tx), |_| {});
    let mut ws = ws_client(proxy.addr);

    ws.send(Message::text("hello, upstream")).unwrap();
    assert_eq!(next_data(&mut ws), Message::text("hello, upstream"));
    let binary: Vec<u8> = (0..=255).collect();
    ws.send(Message::binary(binary.clone())).unwrap();
    assert_eq!(next_data(&mut ws), Message::binary(binary));

    // 10 MB each way, through 32 KiB copy buffers under backpressure.
    let big: Vec<u8> = (0..10_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    ws.send(Message::binary(big.clone())).unwrap();
    assert_eq!(next_data(&mut ws), Message::binary(big));

    ws.send(Message::Ping(b"are you there".to_vec().into()))
        .unwrap();
    match ws.read().expect("a pong") {
        Message::Pong(payload) => assert_eq!(&payload[..], b"are you there"),
        other => panic!("expected a pong, got {other:?}"),
    }

    // The close handshake completes both ways: the client's Close reaches the
    // server, whose Close comes back, and then each side sees the other go.
    ws.close(None).unwrap();
    loop {
        match ws.read() {
            Ok(Message::Close(_)) | Ok(_) => {}
            Err(tungstenite::Error::ConnectionClosed) => break,
            Err(e) => panic!("close handshake: {e}"),
        }
    }
    closed_rx
        .recv_timeout(CLIENT_TIMEOUT)
        .expect("the server saw the close handshake complete");
    assert_eq!(proxy.stat("tunnels_open"), 1, "until the client closes too");
    drop(ws);
    eventually("the tunnel counted closed", || {
        proxy.stat("tunnels_closed") == 1
    });
    assert_eq!(proxy.stat("upgrades"), 1);
}

#[test]
fn two_hundred_websockets_at_once_and_the_counters() {
    const SOCKETS: usize = 200;
    const THREADS: usize = 4;
    let (closed_tx, closed_rx) = mpsc::channel();
    let proxy = Running::proxy(echo_server(closed_tx), |_| {});
    let addr = proxy.addr;
    // Each thread holds its share open at once, then talks on each.
    let (open_tx, open_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let go_rx = std::sync::Arc::new(std::sync::Mutex::new(go_rx));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (open_tx, go_rx) = (open_tx.clone(), std::sync::Arc::clone(&go_rx));
            thread::spawn(move || {
                let mut sockets: Vec<_> = (0..SOCKETS / THREADS).map(|_| ws_client(addr)).collect();
                open_tx.send(()).unwrap();
                go_rx.lock().unwrap().recv_timeout(CLIENT_TIMEOUT).unwrap();
                for (i, ws) in sockets.iter_mut().enumerate() {
                    let text = format!("thread {t} socket {i}");
                    ws.send(Message::text(text.clone())).unwrap();
                    assert_eq!(next_data(ws), Message::text(text));
                }
                for mut ws in sockets {
                    ws.close(None).unwrap();
                    while ws.read().is_ok() {}
                }
            })
        })
        .collect();
    for _ in 0..THREADS {
        open_rx.recv_timeout(CLIENT_TIMEOUT).unwrap();
    }
    // All 200 tunnels are open at once.
    assert_eq!(proxy.stat("upgrades"), SOCKETS as u64);
    assert_eq!(proxy.stat("tunnels_open"), SOCKETS as u64);
    let metrics = proxy.admin("/metrics");
    let open = metrics
        .lines()
        .find(|l| l.starts_with("demo_upstream_tunnels_open{"))
        .unwrap();
    assert!(open.ends_with(&format!(" {SOCKETS}")), "{open}");
    for _ in 0..THREADS {
        go_tx.send(()).unwrap();
    }
    for t in threads {
        t.join().unwrap();
    }
    for _ in 0..SOCKETS {
        closed_rx.recv_timeout(CLIENT_TIMEOUT).unwrap();
    }
    eventually("every tunnel counted closed", || {
        proxy.stat("tunnels_closed") == SOCKETS as u64
    });
    let metrics = proxy.admin("/metrics");
    for (family, value) in [
        ("demo_upstream_upgrades_total{", SOCKETS),
        ("demo_upstream_tunnels_closed_total{", SOCKETS),
        ("demo_upstream_tunnels_open{", 0),
    ] {
        let line = metrics.lines().find(|l| l.starts_with(family)).unwrap();
        assert!(line.ends_with(&format!(" {value}")), "{line}");
    }
}

// === raw sockets, exact bytes ===

const ASK: &[u8] = b"GET /chat HTTP/1.1\r\nHost: example.com\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
const SWITCH: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

/// The fields of a head, lowercase names.
fn fields(head: &str) -> Vec<(String, String)> {
    head.lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.to_ascii_lowercase(), v.trim().to_owned()))
        .collect()
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    fields
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

/// An upstream that records each request head it gets (on `heads`) and answers it
/// with `answer`.
fn answering(answer: &'static [u8]) -> (SocketAddr, mpsc::Receiver<String>) {
    let (tx, rx) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let addr = raw_upstream(move |mut stream| {
        loop {
            let mut byte = [0u8];
            if stream.peek(&mut byte).map_or(true, |n| n == 0) {
                return;
            }
            let head = read_head(&mut stream);
            tx.lock().unwrap().send(head).unwrap();
            stream.write_all(answer).unwrap();
        }
    });
    (addr, rx)
}

#[test]
fn upgrade_is_forwarded_only_with_connection_upgrade_on_http11_without_a_body() {
    let (addr, heads) = answering(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    let proxy = Running::proxy(addr, |_| {});
    let cases: [(&[u8], bool); 5] = [
        (ASK, true),
        // Upgrade without the connection option: a hop-by-hop field nobody asked
        // to keep (RFC 9110 §7.8: a sender of Upgrade sends the option too).
        (b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n", false),
        // The option without an Upgrade field.
        (b"GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\n\r\n", false),
        // HTTP/1.0: the field is ignored (RFC 9110 §7.8).
        (b"GET / HTTP/1.0\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n", false),
        // A body: the upgrade is ignored (its bytes and the new protocol's would mix).
        (b"POST / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: h2c\r\nContent-Length: 3\r\n\r\nabc", false),
    ];
    for (request, forwarded) in cases {
        let mut client = connect(proxy.addr);
        client.write_all(request).unwrap();
        let head = heads.recv_timeout(CLIENT_TIMEOUT).unwrap();
        let f = fields(&head);
        let what = String::from_utf8_lossy(request);
        if forwarded {
            assert_eq!(field(&f, "upgrade"), ["websocket"], "{what}");
            assert_eq!(field(&f, "connection"), ["upgrade"], "{what}");
            assert_eq!(field(&f, "sec-websocket-key"), ["dGhlIHNhbXBsZSBub25jZQ=="]);
        } else {
            assert!(field(&f, "upgrade").is_empty(), "{what}: {head}");
            assert!(
                !head.to_ascii_lowercase().contains("upgrade"),
                "{what}: {head}"
            );
        }
        let response = read_head(&mut client);
        assert!(response.contains(" 200 OK\r\n"), "{what}: {response}");
    }
}

#[test]
fn a_101_nobody_asked_for_is_a_502() {
    // To a request without an upgrade ask; and to one that asked for another protocol
    // (RFC 9110 §7.8: a server must not switch to a protocol it was not asked for).
    let (addr, _heads) = answering(SWITCH);
    let proxy = Running::proxy(addr, |_| {});
    for request in [
        &b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\n",
    ] {
        let mut client = connect(proxy.addr);
        client.write_all(request).unwrap();
        let head = read_head(&mut client);
        assert!(head.starts_with("HTTP/1.1 502 "), "{head}");
    }
    assert_eq!(proxy.stat("upgrades"), 0);
}

#[test]
fn a_refused_upgrade_is_an_ordinary_response_and_the_connection_goes_on() {
    let (addr, heads) = answering(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nplain");
    let proxy = Running::proxy(addr, |_| {});
    let mut client = connect(proxy.addr);
    // The next request is pipelined behind the upgrade ask: not a tunnel's bytes,
    // since the upstream did not switch.
    let mut two = ASK.to_vec();
    two.extend_from_slice(b"GET /next HTTP/1.1\r\nHost: example.com\r\n\r\n");
    client.write_all(&two).unwrap();
    for path in ["/chat", "/next"] {
        let head = heads.recv_timeout(CLIENT_TIMEOUT).unwrap();
        assert!(
            head.starts_with(&format!("GET {path} HTTP/1.1\r\n")),
            "{head}"
        );
        let response = read_head(&mut client);
        assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
        assert!(
            !response.to_ascii_lowercase().contains("upgrade"),
            "{response}"
        );
        assert_eq!(read_n(&mut client, 5), b"plain");
    }
    assert_eq!(proxy.stat("upgrades"), 0);
}

/// An upstream that switches, then hands the raw socket to the test through `tx`.
fn switching() -> (SocketAddr, mpsc::Receiver<TcpStream>) {
    let (tx, rx) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let addr = raw_upstream(move |mut stream| {
        let head = read_head(&mut stream);
        assert!(head.contains("Upgrade: websocket\r\n"), "{head}");
        stream.write_all(SWITCH).unwrap();
        tx.lock().unwrap().send(stream).unwrap();
    });
    (addr, rx)
}

/// A client whose tunnel to the upstream (`.1`) is open.
fn tunnel(proxy: &Running, upstreams: &mpsc::Receiver<TcpStream>) -> (TcpStream, TcpStream) {
    let mut client = connect(proxy.addr);
    client.write_all(ASK).unwrap();
    let head = read_head(&mut client);
    assert!(
        head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{head}"
    );
    let f = fields(&head);
    assert_eq!(field(&f, "upgrade"), ["websocket"]);
    assert_eq!(field(&f, "connection"), ["upgrade"]);
    assert_eq!(
        field(&f, "sec-websocket-accept"),
        ["s3pPLMBiTxaQ9kYGzzhZRbK+xOo="]
    );
    let upstream = upstreams.recv_timeout(CLIENT_TIMEOUT).unwrap();
    (client, upstream)
}

#[test]
fn bytes_pipelined_behind_the_ask_and_behind_the_101_go_through_the_tunnel() {
    let (tx, rx) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let addr = raw_upstream(move |mut stream| {
        let head = read_head(&mut stream);
        assert!(head.contains("Upgrade: websocket\r\n"), "{head}");
        // The 101 and the new protocol's first bytes in one write.
        let mut switch = SWITCH.to_vec();
        switch.extend_from_slice(b"from upstream");
        stream.write_all(&switch).unwrap();
        tx.lock().unwrap().send(read_n(&mut stream, 11)).unwrap();
    });
    let proxy = Running::proxy(addr, |_| {});
    let mut client = connect(proxy.addr);
    let mut ask = ASK.to_vec();
    ask.extend_from_slice(b"from client"); // before any answer: not a request
    client.write_all(&ask).unwrap();
    let head = read_head(&mut client);
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert_eq!(read_n(&mut client, 13), b"from upstream");
    assert_eq!(
        rx.recv_timeout(CLIENT_TIMEOUT).unwrap(),
        b"from client",
        "the upstream got the client's pipelined bytes, raw"
    );
}

#[test]
fn a_half_close_from_the_client_reaches_the_upstream_and_the_other_way_goes_on() {
    let (addr, upstreams) = switching();
    let proxy = Running::proxy(addr, |_| {});
    let (mut client, mut upstream) = tunnel(&proxy, &upstreams);
    client.write_all(b"last words").unwrap();
    client.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_n(&mut upstream, 10), b"last words");
    assert!(closed(&mut upstream), "the client's FIN went on");
    // The upstream still talks, and the client still hears it.
    upstream.write_all(b"still here").unwrap();
    assert_eq!(read_n(&mut client, 10), b"still here");
    upstream.shutdown(Shutdown::Write).unwrap();
    assert!(closed(&mut client));
    eventually("the tunnel counted closed", || {
        proxy.stat("tunnels_closed") == 1
    });
}

#[test]
fn a_half_close_from_the_upstream_reaches_the_client_and_the_other_way_goes_on() {
    let (addr, upstreams) = switching();
    let proxy = Running::proxy(addr, |_| {});
    let (mut client, mut upstream) = tunnel(&proxy, &upstreams);
    upstream.write_all(b"bye").unwrap();
    upstream.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_n(&mut client, 3), b"bye");
    assert!(closed(&mut client), "the upstream's FIN went on");
    client.write_all(b"one more thing").unwrap();
    assert_eq!(read_n(&mut upstream, 14), b"one more thing");
    client.shutdown(Shutdown::Write).unwrap();
    assert!(closed(&mut upstream));
    eventually("the tunnel counted closed", || {
        proxy.stat("tunnels_closed") == 1
    });
    assert_eq!(proxy.stat("tunnels_open"), 0);
}

#[test]
fn an_idle_tunnel_is_closed_at_its_idle_timeout() {
    let (addr, upstreams) = switching();
    let proxy = Running::proxy(addr, |c| {
        c.tunnel_idle_timeout = Duration::from_millis(300);
    });
    let (mut client, mut upstream) = tunnel(&proxy, &upstreams);
    // Traffic keeps it open past the timeout...
    for _ in 0..4 {
        thread::sleep(Duration::from_millis(150));
        client.write_all(b"tick").unwrap();
        assert_eq!(read_n(&mut upstream, 4), b"tick");
    }
    // ...and silence closes both sides.
    let start = Instant::now();
    assert!(closed(&mut client));
    assert!(closed(&mut upstream));
    assert!(start.elapsed() < CLIENT_TIMEOUT);
    assert_eq!(proxy.stat("tunnels_closed"), 1);
}

#[test]
fn an_upstream_reset_mid_tunnel_ends_it() {
    let (addr, upstreams) = switching();
    let proxy = Running::proxy(addr, |_| {});
    let (mut client, mut upstream) = tunnel(&proxy, &upstreams);
    client.write_all(b"ping").unwrap();
    assert_eq!(read_n(&mut upstream, 4), b"ping");
    upstream.write_all(b"pong").unwrap();
    assert_eq!(read_n(&mut client, 4), b"pong");
    // SO_LINGER 0: the close is a reset.
    socket2::SockRef::from(&upstream)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(upstream);
    assert!(closed(&mut client), "the client's side ends too");
    eventually("the tunnel counted closed", || {
        proxy.stat("tunnels_closed") == 1
    });
}

#[test]
fn an_upstream_reset_while_the_client_sends_ends_the_tunnel() {
    let (addr, upstreams) = switching();
    let proxy = Running::proxy(addr, |_| {}); // the idle timeout: 10 minutes
    let (mut client, upstream) = tunnel(&proxy, &upstreams);
    // The client sends on, as fast as the tunnel takes it, until its connection fails
    // (or, should the proxy take its bytes on regardless, for as long as the test waits).
    let mut writer = client.try_clone().unwrap();
    let flood = thread::spawn(move || {
        let chunk = [b'x'; 16 * 1024];
        let deadline = Instant::now() + CLIENT_TIMEOUT;
        while Instant::now() < deadline && writer.write(&chunk).is_ok() {}
    });
    thread::sleep(Duration::from_millis(50));
    // SO_LINGER 0, with bytes unread: the close is a reset, which the proxy learns
    // from a write (Linux reports it once; the next read finds the end of stream).
    socket2::SockRef::from(&upstream)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(upstream);
    assert!(closed(&mut client), "the client's side ends too");
    flood.join().unwrap();
    eventually("the tunnel counted closed", || {
        proxy.stat("tunnels_closed") == 1
    });
    assert_eq!(proxy.stat("tunnels_open"), 0);
}

#[test]
fn an_upstream_that_closed_and_then_resets_the_client_s_bytes_ends_the_tunnel() {
    let (addr, upstreams) = switching();
    let proxy = Running::proxy(addr, |_| {});
    let (mut client, upstream) = tunnel(&proxy, &upstreams);
    drop(upstream); // a full close: the proxy's next write meets a reset
    assert!(closed(&mut client), "the upstream's end went on");
    // The client's direction is still open as far as it knows: it sends, each write
    // alone, and the proxy's writes fail.
    for _ in 0..5 {
        let _ = client.write(b"more frames");
        thread::sleep(Duration::from_millis(20));
    }
    eventually("the tunnel counted closed", || {
        proxy.stat("tunnels_closed") == 1
    });
    assert_eq!(proxy.stat("tunnels_open"), 0);
}

#[test]
fn a_tunnel_whose_client_does_not_read_ends_at_its_idle_timeout_counted_once() {
    let (addr, upstreams) = switching();
    let proxy = Running::proxy(addr, |c| {
        c.tunnel_idle_timeout = Duration::from_millis(300);
    });
    let (client, mut upstream) = tunnel(&proxy, &upstreams);
    socket2::SockRef::from(&client)
        .set_recv_buffer_size(4096)
        .unwrap();
    // The upstream sends until every buffer on the way to the client is full.
    upstream
        .set_write_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let chunk = [b'y'; 64 * 1024];
    while upstream.write(&chunk).is_ok() {}
    eventually("the tunnel counted closed", || {
        proxy.stat("tunnels_closed") == 1
    });
    assert!(
        closed(&mut upstream),
        "the upstream connection closed at the timeout"
    );
    // The client connection closes once its output is flushed, or at its write
    // timeout; here the client goes first (a reset: it has unread bytes).
    drop(client);
    thread::sleep(Duration::from_millis(100)); // anything late would be counted by now
    assert_eq!(proxy.stat("upgrades"), 1);
    assert_eq!(proxy.stat("tunnels_closed"), 1, "one tunnel, closed once");
    assert_eq!(proxy.stat("tunnels_open"), 0);
}

#[test]
fn a_head_that_asks_for_an_upgrade_gets_a_head_answer_and_the_connection_goes_on() {
    // A 200 to a HEAD has no content, whatever its Content-Length says (RFC 9110
    // §9.3.2, RFC 9112 §6.3), asked for an upgrade or not.
    let (addr, heads) = answering(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n");
    let proxy = Running::proxy(addr, |_| {});
    let mut client = connect(proxy.addr);
    client
        .write_all(
            b"HEAD / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
        )
        .unwrap();
    let head = read_head(&mut client);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    let forwarded = heads.recv_timeout(CLIENT_TIMEOUT).unwrap();
    assert!(forwarded.starts_with("HEAD / HTTP/1.1\r\n"), "{forwarded}");
    assert_eq!(field(&fields(&forwarded), "upgrade"), ["websocket"]);
    client
        .write_all(b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    let head = read_head(&mut client);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    heads.recv_timeout(CLIENT_TIMEOUT).unwrap();
    assert_eq!(
        proxy.stat("discarded"),
        0,
        "the upstream connection was reused"
    );
    assert_eq!(proxy.stat("reused"), 1);
}

#[test]
fn bytes_from_the_upstream_alone_keep_a_tunnel_open_past_its_idle_timeout() {
    let (addr, upstreams) = switching();
    let proxy = Running::proxy(addr, |c| {
        c.tunnel_idle_timeout = Duration::from_millis(300);
    });
    let (mut client, mut upstream) = tunnel(&proxy, &upstreams);
    // A one-way stream (server-sent events over a WebSocket, say): twice the
    // timeout, the client silent.
    for _ in 0..8 {
        thread::sleep(Duration::from_millis(80));
        upstream.write_all(b"tock").unwrap();
        assert_eq!(read_n(&mut client, 4), b"tock");
    }
    assert_eq!(proxy.stat("tunnels_closed"), 0);
    client.write_all(b"still").unwrap();
    assert_eq!(read_n(&mut upstream, 5), b"still");
}

// === in memory: the tunnel's backpressure, byte-exact ===

mod in_memory {
    use std::sync::Arc;

    use demo_server::proxy::handler::{COPY_BUF_SIZE, Proxy, ProxyConfig};
    use demo_server::proxy::mem::MemProxy;
    use demo_server::state::{Limits, Shared};

    use super::{ASK, SWITCH};

    /// A client connection whose exchange switched to a tunnel, and its upstream
    /// connection.
    fn tunnel<'s>(shared: &'s Shared, proxy: &Arc<Proxy>) -> (MemProxy<'s>, usize) {
        let mut mem = MemProxy::new(shared, proxy);
        let key = mem.exchange(ASK, SWITCH);
        assert!(
            mem.client_received()
                .starts_with(b"HTTP/1.1 101 Switching Protocols\r\n")
        );
        assert!(mem.conn().is_tunnel());
        mem.clear_client_received();
        (mem, key)
    }

    fn setup() -> (Shared, Arc<Proxy>) {
        let config = ProxyConfig {
            upstreams: vec!["127.0.0.1:8080".parse().unwrap()],
            ..ProxyConfig::default()
        };
        (
            Shared::new(Limits::default(), 1, false),
            Arc::new(Proxy::new(config, 1)),
        )
    }

    #[test]
    fn a_client_that_does_not_read_stops_the_proxy_reading_the_upstream() {
        let (shared, proxy) = setup();
        let (mut mem, key) = tunnel(&shared, &proxy);
        mem.client_room = 0;
        let flood: Vec<u8> = (0..10_000_000u32).map(|i| i as u8).collect();
        mem.upstream_sends(key, &flood);
        mem.run();
        // Bounded: the copy buffer and the client's output, not 10 MB.
        assert!(mem.upstream(key).unread() > 9_000_000);
        assert!(mem.peak_copied <= 2 * COPY_BUF_SIZE, "{}", mem.peak_copied);
        assert!(mem.peak_buffered < 200_000, "{}", mem.peak_buffered);
        // Once the client reads, every byte arrives, in order.
        mem.client_room = usize::MAX;
        mem.run();
        assert_eq!(mem.upstream(key).unread(), 0);
        assert_eq!(mem.client_received(), &flood[..]);
    }

    #[test]
    fn an_upstream_that_does_not_read_stops_the_proxy_reading_the_client() {
        let (shared, proxy) = setup();
        let (mut mem, key) = tunnel(&shared, &proxy);
        mem.clear_upstream_received(key);
        mem.upstream_room = 0;
        let flood: Vec<u8> = (0..10_000_000u32).map(|i| (i % 253) as u8).collect();
        mem.client_sends(&flood);
        mem.run();
        assert!(
            mem.client_unread() > 9_000_000,
            "the client's bytes wait in its socket"
        );
        assert!(mem.peak_copied <= 2 * COPY_BUF_SIZE, "{}", mem.peak_copied);
        mem.upstream_room = usize::MAX;
        mem.run();
        assert_eq!(mem.client_unread(), 0);
        assert_eq!(mem.upstream(key).received, flood);
    }

    #[test]
    fn each_side_s_end_is_passed_on_and_both_end_the_tunnel() {
        let (shared, proxy) = setup();
        let (mut mem, key) = tunnel(&shared, &proxy);
        mem.upstream_sends(key, b"last");
        mem.upstream_closes(key);
        mem.run();
        assert_eq!(mem.client_received(), b"last");
        assert!(
            mem.client_shut(),
            "the upstream's end went on to the client"
        );
        assert!(!mem.conn().is_done(), "the client's direction goes on");
        mem.clear_upstream_received(key);
        mem.client_sends(b"reply");
        mem.client_closes();
        mem.run();
        assert_eq!(mem.upstream(key).received, b"reply");
        assert!(
            mem.upstream(key).shut,
            "the client's end went on to the upstream"
        );
        assert!(mem.conn().is_done());
        assert!(
            mem.upstream(key).closed,
            "a tunnel's connection is never pooled"
        );
        let stats = proxy.upstreams.stats(0);
        assert_eq!((stats.upgrades, stats.tunnels_closed), (1, 1));
    }

    #[test]
    fn a_write_that_meets_a_reset_ends_the_tunnel_after_the_bytes_before_it() {
        let (shared, proxy) = setup();
        let (mut mem, key) = tunnel(&shared, &proxy);
        mem.clear_upstream_received(key);
        // The upstream's last bytes, then its reset, which the proxy's write meets
        // first or its read: either way the reset is reported once.
        mem.upstream_sends(key, b"last");
        mem.upstream_resets(key);
        mem.client_sends(b"frame");
        mem.run();
        assert_eq!(mem.client_received(), b"last");
        assert!(mem.conn().is_done(), "the client connection closed");
        assert!(mem.upstream(key).closed);
        let stats = proxy.upstreams.stats(0);
        assert_eq!((stats.upgrades, stats.tunnels_closed), (1, 1));
    }

    #[test]
    fn a_write_that_meets_a_reset_after_the_upstream_s_end_ends_the_tunnel() {
        let (shared, proxy) = setup();
        let (mut mem, key) = tunnel(&shared, &proxy);
        mem.upstream_closes(key);
        mem.run();
        assert!(mem.client_shut(), "the upstream's end went on");
        mem.upstream_resets(key); // it closed for good: the client's bytes meet a reset
        mem.client_sends(b"more frames");
        mem.run();
        assert!(mem.conn().is_done(), "the client connection closed");
        assert!(mem.upstream(key).closed);
        let stats = proxy.upstreams.stats(0);
        assert_eq!((stats.upgrades, stats.tunnels_closed), (1, 1));
    }
}
