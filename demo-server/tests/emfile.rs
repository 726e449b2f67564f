//! Running out of file descriptors: `accept` fails with EMFILE, and the server must
//! back off (not spin on a listener that stays readable), keep serving the connections
//! it has, and accept again once descriptors free up.
//!
//! Its own test binary (one process, one test): it lowers this process's descriptor
//! limit, which would disturb any other test running beside it.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use common::fds::set_fd_limit;
use demo_server::server::{Config, Server};
use demo_server::state::Limits;

fn open_fds() -> u64 {
    std::fs::read_dir("/proc/self/fd").map_or(0, |dir| dir.count() as u64)
}

fn cpu_time() -> Duration {
    // SAFETY: `getrusage` writes a `rusage` into the zeroed struct we pass.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(libc::RUSAGE_SELF, &mut usage), 0);
        usage
    };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn hello(stream: &mut TcpStream) -> bool {
    if stream
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 1024];
    let mut got = Vec::new();
    while !got.ends_with(b"Hello, World!") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return false,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    true
}

fn connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    Ok(stream)
}

#[test]
fn accept_backs_off_on_emfile_and_recovers() {
    let config = Config {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        threads: 1,
        limits: Limits::default(),
        shutdown_timeout: Duration::from_secs(2),
        access_log: false,
    };
    let server = Server::bind(config).unwrap();
    let (addr, handle) = (server.local_addr(), server.handle());
    let runner = thread::spawn(move || server.run());

    // Warm up (the worker's epoll and the first connection).
    let mut first = connect(addr).unwrap();
    assert!(hello(&mut first));
    // Client sockets are made before the limit drops, so that only the server's
    // accepts need new descriptors; then leave room for two accepts.
    let spare: Vec<socket2::Socket> = (0..6)
        .map(|_| socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap())
        .collect();
    let old_limit = set_fd_limit(open_fds() + 2);

    // Soon the server's accept fails with EMFILE while clients still get queued in the
    // kernel's backlog.
    let mut clients = Vec::new();
    let mut queued = None;
    for socket in spare {
        socket.connect(&addr.into()).unwrap();
        let mut stream: TcpStream = socket.into();
        stream
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        if hello(&mut stream) {
            clients.push(stream);
        } else {
            queued = Some(stream); // accepted by the kernel, not by the server
            break;
        }
    }
    let mut queued = queued.expect("the server ran out of descriptors");
    assert!(
        !clients.is_empty(),
        "some connections were served before the limit"
    );

    // Backing off, not spinning: the process burns little CPU while accept keeps failing.
    let before = cpu_time();
    thread::sleep(Duration::from_millis(600));
    let burnt = cpu_time() - before;
    assert!(
        burnt < Duration::from_millis(300),
        "spinning on EMFILE: {burnt:?} of CPU in 600 ms"
    );

    // The connections it has are still served.
    assert!(hello(&mut first));

    // Free descriptors: the queued client is accepted and served.
    drop(clients);
    set_fd_limit(old_limit);
    let deadline = Instant::now() + Duration::from_secs(10);
    queued
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 1024];
    let mut got = Vec::new();
    while !got.ends_with(b"Hello, World!") {
        assert!(
            Instant::now() < deadline,
            "the queued client was never served"
        );
        let n = queued
            .read(&mut buf)
            .expect("a response once descriptors are free");
        assert!(n > 0, "closed instead of served");
        got.extend_from_slice(&buf[..n]);
    }

    handle.shutdown();
    runner.join().unwrap().unwrap();
}
