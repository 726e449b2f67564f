//! One fast client must not starve the other connections of its worker: each readiness event gets a budget, then the connection waits behind the
//! others.
//!
//! The busy client asks for 32 GiB and reads it as fast as it comes. Whenever it keeps
//! pace with the server, the server's socket never fills: without a budget the worker
//! then stayed with that connection for a whole 1 GiB response (some 0.5 s here, no
//! accepts, no other reads, no timeouts; measured: 4 runs in 6 waited over 500 ms
//! within the sampling window below), and with it the slowest small request took
//! 4 to 14 ms.
//!
//! Its own test binary (one process, one test), so that other tests do not compete
//! for the two cores. The bound is generous, and it is the point of the test, not a
//! speed claim.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use demo_server::server::{Config, Server};
use demo_server::state::Limits;

/// A small request answered later than this was starved.
const BOUND: Duration = Duration::from_millis(250);

/// How long small requests are sent, one after the other, while the busy client runs.
const SAMPLING: Duration = Duration::from_secs(3);

#[test]
fn a_busy_client_does_not_starve_the_others_on_its_worker() {
    let config = Config {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        threads: 1,
        limits: Limits::default(),
        shutdown_timeout: Duration::from_secs(1),
        access_log: false,
    };
    let server = Server::bind(config).unwrap();
    let (addr, handle) = (server.local_addr(), server.handle());
    let server_thread = thread::spawn(move || server.run());

    // The busy client asks for 32 GiB in one write and reads it as fast as it comes.
    let mut busy = TcpStream::connect(addr).unwrap();
    busy.write_all(
        "GET /bytes/1073741824 HTTP/1.1\r\nHost: t\r\n\r\n"
            .repeat(32)
            .as_bytes(),
    )
    .unwrap();
    let received = Arc::new(AtomicU64::new(0));
    let reader = {
        let mut busy = busy.try_clone().unwrap();
        let received = Arc::clone(&received);
        thread::spawn(move || {
            let mut buf = vec![0u8; 4 << 20]; // large reads: a fast reader
            while let Ok(n @ 1..) = busy.read(&mut buf) {
                received.fetch_add(n as u64, Ordering::Relaxed);
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while received.load(Ordering::Relaxed) < 64 << 20 {
        assert!(
            Instant::now() < deadline,
            "the busy client is not being served"
        );
        thread::sleep(Duration::from_millis(1));
    }

    // Small requests on the same worker, while the bulk transfer runs.
    let mut small = TcpStream::connect(addr).unwrap();
    small.set_read_timeout(Some(BOUND * 5)).unwrap();
    let mut slowest = Duration::ZERO;
    let sampling = Instant::now();
    let mut answered = 0;
    while sampling.elapsed() < SAMPLING {
        answered += 1;
        let start = Instant::now();
        small
            .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let mut response = Vec::new();
        let mut buf = [0u8; 1024];
        while !response.ends_with(b"Hello, World!") {
            match small.read(&mut buf) {
                Ok(0) => panic!("closed"),
                Ok(n) => response.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    panic!("no answer within {:?}: starved", BOUND * 5)
                }
                Err(e) => panic!("{e}"),
            }
        }
        slowest = slowest.max(start.elapsed());
    }
    let busy_bytes = received.load(Ordering::Relaxed);
    eprintln!("slowest of {answered} small requests: {slowest:?}; busy client: {busy_bytes} B");
    busy.shutdown(Shutdown::Both).unwrap();
    reader.join().unwrap();
    handle.shutdown();
    server_thread.join().unwrap().unwrap();

    assert!(
        slowest < BOUND,
        "a small request waited {slowest:?} behind the busy client"
    );
}
