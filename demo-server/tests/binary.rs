//! The `demo-server` binary as an operator meets it: flags checked at startup and a
//! busy address refused, with the flag that names it. Every child process is waited for
//! with a deadline and killed by its handle if it outlives it, so a server that starts
//! when it should not fails the test instead of hanging it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use demo_server::server::{Config, Server};

fn demo_server(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_demo-server"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts")
}

/// Waits up to `limit` for `child` to exit; kills it (and says so) if it does not.
fn wait(child: &mut Child, limit: Duration) -> Result<ExitStatus, String> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Ok(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("still running after {limit:?}"));
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn stderr_of(child: &mut Child) -> String {
    let mut text = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    text
}

/// Runs the binary with `flags` (on a free port) and expects a usage error: exit code
/// 2, a message naming the flag, no server.
fn refused(flags: &[&str], flag: &str) {
    refused_as(&["serve", "--addr", "127.0.0.1:0"], flags, flag);
}

/// As [`refused`], for `command` (the subcommand and its flags).
fn refused_as(command: &[&str], flags: &[&str], flag: &str) {
    let mut args = command.to_vec();
    args.extend_from_slice(flags);
    let mut child = demo_server(&args);
    let status = wait(&mut child, Duration::from_secs(10));
    let stderr = stderr_of(&mut child);
    let status = status.unwrap_or_else(|e| panic!("{flags:?}: {e}; stderr: {stderr}"));
    assert_eq!(status.code(), Some(2), "{flags:?}: {stderr}");
    assert!(stderr.contains(flag), "{flags:?}: {stderr}");
    assert!(!stderr.contains("listening"), "{flags:?}: {stderr}");
}

#[test]
fn out_of_range_flags_exit_2_with_a_clear_message() {
    // Each would start a server that then failed (a worker panicked on
    // `Instant + Duration` overflow, or a head limit wrapped to 0).
    refused(
        &["--header-timeout", "400000000000years"],
        "--header-timeout",
    );
    refused(&["--idle-timeout", "0s"], "--idle-timeout");
    refused(&["--write-timeout", "1000years"], "--write-timeout");
    refused(&["--shutdown-timeout", "1000years"], "--shutdown-timeout");
    refused(
        &["--max-head-bytes", "18446744073709551615"],
        "--max-head-bytes",
    );
    refused(&["--max-head-bytes", "0"], "--max-head-bytes");
    refused(&["--max-connections", "0"], "--max-connections");
    refused(&["--threads", "0"], "--threads");
    refused(&["--threads", "100000"], "--threads");
    refused(&["--addr", "localhost:http"], "--addr");
    refused(&["--no-such-flag"], "--no-such-flag");
}

#[test]
fn proxy_flags_out_of_range_exit_2_with_a_clear_message() {
    let proxy = [
        "proxy",
        "--addr",
        "127.0.0.1:0",
        "--admin",
        "127.0.0.1:0",
        "--upstream",
        "127.0.0.1:1",
    ];
    refused_as(&proxy, &["--upstream-timeout", "0s"], "--upstream-timeout");
    refused_as(
        &proxy,
        &["--upstream-timeout", "1000years"],
        "--upstream-timeout",
    );
    refused_as(
        &proxy,
        &["--upstream-idle-timeout", "soon"],
        "--upstream-idle-timeout",
    );
    refused_as(&proxy, &["--upstream-idle", "70000"], "--upstream-idle");
    refused_as(&proxy, &["--max-fails", "2000000"], "--max-fails");
    refused_as(&proxy, &["--max-fails=-1"], "--max-fails");
    refused_as(&proxy, &["--fail-timeout", "0ms"], "--fail-timeout");
    refused_as(&proxy, &["--upstream", "127.0.0.1:0"], "--upstream");
    refused_as(&proxy, &["--upstream", "no port"], "--upstream");
    refused_as(&proxy, &["--upstream", "127.0.0.1:1"], "given twice");
    refused_as(&proxy, &["--admin", "localhost"], "--admin");
    refused_as(&proxy, &["--threads", "0"], "--threads");
    refused_as(&proxy, &["--max-head-bytes", "1"], "--max-head-bytes");
    refused_as(&proxy, &["--no-such-flag"], "--no-such-flag");
    refused_as(&["proxy", "--addr", "127.0.0.1:0"], &[], "--upstream");
}

#[test]
fn the_proxy_binary_forwards_to_a_server() {
    let server = Server::bind(Config {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        threads: 1,
        ..Config::default()
    })
    .unwrap();
    let (upstream, handle) = (server.local_addr(), server.handle());
    let serving = thread::spawn(move || server.run());
    let upstream = upstream.to_string();
    let mut child = demo_server(&[
        "proxy",
        "--addr",
        "127.0.0.1:0",
        "--admin",
        "127.0.0.1:0",
        "--upstream",
        &upstream,
        "--threads",
        "1",
    ]);
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut lines = [String::new(), String::new()];
    for line in &mut lines {
        stderr.read_line(line).unwrap();
    }
    let address = |line: &str| -> SocketAddr {
        let at = line
            .rfind("http://")
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        line[at + 7..]
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let (proxy, admin) = (address(&lines[0]), address(&lines[1]));
    assert!(lines[1].contains(&upstream), "{}", lines[1]);
    let served = hello(proxy);
    let mut stats = String::new();
    if let Ok(mut stream) = TcpStream::connect(admin) {
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let _ = stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
        let _ = stream.read_to_string(&mut stats);
    }
    let _ = child.kill();
    let _ = child.wait();
    handle.shutdown();
    serving.join().unwrap().unwrap();
    assert!(served, "a request went through the proxy");
    assert!(
        stats.contains("demo_upstream_connections_opened_total{upstream=\""),
        "{stats}"
    );
}

/// Starts a server process on a free port; returns it and its address.
fn start_server(threads: &str) -> (Child, SocketAddr) {
    let mut child = demo_server(&["serve", "--addr", "127.0.0.1:0", "--threads", threads]);
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .parse()
        .unwrap();
    (child, addr)
}

fn hello(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return false;
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let request = b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    let mut response = Vec::new();
    stream.write_all(request).is_ok()
        && stream.read_to_end(&mut response).is_ok()
        && response.ends_with(b"Hello, World!")
}

#[test]
fn a_second_server_on_a_busy_address_fails_like_any_server() {
    let (mut first, addr) = start_server("2");
    let port = addr.port().to_string();
    let busy = format!("127.0.0.1:{port}");
    let mut second = demo_server(&["serve", "--addr", &busy, "--threads", "2"]);
    let status = wait(&mut second, Duration::from_secs(10));
    let stderr = stderr_of(&mut second);
    // The first one still serves, on both of its workers (connections land on either).
    let served = (0..20).all(|_| hello(addr));
    let _ = first.kill();
    let _ = first.wait();
    let status = status.unwrap_or_else(|e| panic!("the second server {e}; stderr: {stderr}"));
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr
            .to_ascii_lowercase()
            .contains("address already in use"),
        "{stderr}"
    );
    assert!(served, "the first server kept serving");
}

/// A busy `--admin` address is reported as `--admin`, a busy `--addr` as
/// `--addr`: the operator is told which flag to change.
#[test]
fn a_busy_proxy_address_names_its_flag() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = taken.local_addr().unwrap().to_string();
    for (flag, other) in [("--admin", "--addr"), ("--addr", "--admin")] {
        let mut child = demo_server(&[
            "proxy",
            flag,
            &busy,
            other,
            "127.0.0.1:0",
            "--upstream",
            "127.0.0.1:9",
            "--threads",
            "1",
        ]);
        let status = wait(&mut child, Duration::from_secs(10));
        let stderr = stderr_of(&mut child);
        let status = status.unwrap_or_else(|e| panic!("{flag}: {e}; stderr: {stderr}"));
        assert_eq!(status.code(), Some(1), "{flag}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "cannot listen on {busy} ({flag}): address already in use"
            )),
            "{flag}: {stderr}"
        );
        assert!(!stderr.contains(other), "{flag}: {stderr}");
    }
    drop(taken);
}

#[test]
fn binding_a_busy_address_fails_in_process_too() {
    let config = |addr| Config {
        addr,
        threads: 2,
        ..Config::default()
    };
    let first = Server::bind(config(SocketAddr::from(([127, 0, 0, 1], 0)))).unwrap();
    let second = Server::bind(config(first.local_addr()));
    let error = second.err().expect("a second server on the same address");
    assert_eq!(error.kind(), std::io::ErrorKind::AddrInUse);
    // Once the first is gone, the address is free again.
    let addr = first.local_addr();
    drop(first);
    Server::bind(config(addr)).expect("the address is free again");
}

#[test]
fn limits_out_of_range_are_refused_in_process_too() {
    use demo_server::state::Limits;
    let bind = |limits: Limits, threads: usize| {
        let config = Config {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            threads,
            limits,
            ..Config::default()
        };
        Server::bind(config)
            .err()
            .map(|e| (e.kind(), e.to_string()))
    };
    let huge = Duration::from_secs(400_000_000_000 * 31_557_600 / 1_000_000);
    for (limits, threads, field) in [
        (
            Limits {
                max_head_bytes: usize::MAX,
                ..Limits::default()
            },
            1,
            "max_head_bytes",
        ),
        (
            Limits {
                header_timeout: huge,
                ..Limits::default()
            },
            1,
            "header_timeout",
        ),
        (
            Limits {
                idle_timeout: Duration::ZERO,
                ..Limits::default()
            },
            1,
            "idle_timeout",
        ),
        (
            Limits {
                max_connections: 0,
                ..Limits::default()
            },
            1,
            "max_connections",
        ),
        (Limits::default(), 0, "threads"),
    ] {
        let (kind, message) = bind(limits, threads).expect(field);
        assert_eq!(kind, std::io::ErrorKind::InvalidInput, "{field}");
        assert!(message.contains(field), "{message}");
    }
}

/// A port no socket holds now (the kernel's pick, let go).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Servers binding one address at the same moment. A probe that binds
/// and lets go cannot decide it alone (two probes can both run before either server
/// listens); one server, and only one, must come out bound.
#[test]
fn simultaneous_binds_of_one_address_leave_one_server() {
    const THREADS: usize = 6;
    for round in 0..20 {
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let barrier = std::sync::Barrier::new(THREADS);
        let results: Vec<_> = thread::scope(|scope| {
            let binds: Vec<_> = (0..THREADS)
                .map(|_| {
                    scope.spawn(|| {
                        barrier.wait();
                        Server::bind(Config {
                            addr,
                            threads: 2,
                            ..Config::default()
                        })
                    })
                })
                .collect();
            binds.into_iter().map(|b| b.join().unwrap()).collect()
        });
        let bound = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(bound, 1, "round {round}: {bound} servers bound {addr}");
        for result in &results {
            if let Err(e) = result {
                assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse, "{e}");
            }
        }
    }
}

/// As an operator starts them: several `demo-server` processes on one
/// port at once. One serves; every other exits 1 with "address already in use". Only
/// the children started here are killed, through their handles.
#[test]
fn simultaneous_starts_leave_one_server() {
    const STARTS: usize = 4;
    for round in 0..8 {
        let addr = format!("127.0.0.1:{}", free_port());
        let mut children: Vec<Child> = (0..STARTS)
            .map(|_| demo_server(&["serve", "--addr", &addr, "--threads", "1"]))
            .collect();
        // Losers exit at once; wait (generously) until all but one have.
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut exited: Vec<(usize, ExitStatus)> = Vec::new();
        while exited.len() < STARTS - 1 && Instant::now() < deadline {
            for (i, child) in children.iter_mut().enumerate() {
                if exited.iter().all(|&(j, _)| j != i) {
                    if let Some(status) = child.try_wait().unwrap() {
                        exited.push((i, status));
                    }
                }
            }
            thread::sleep(Duration::from_millis(20));
        }
        let served = hello(addr.parse().unwrap());
        let mut running = 0;
        for child in &mut children {
            if child.try_wait().unwrap().is_none() {
                running += 1;
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        assert_eq!(running, 1, "round {round}: {running} servers on {addr}");
        assert!(served, "round {round}: the one left serves");
        for (i, status) in exited {
            let stderr = stderr_of(&mut children[i]);
            assert_eq!(status.code(), Some(1), "round {round}: {stderr}");
            assert!(
                stderr.contains("address already in use"),
                "round {round}: {stderr}"
            );
        }
    }
}

/// Every help text reads as written: clap takes `{n}` in a doc comment for a line
/// break, which once cut `GET /bytes/{n}` in two.
#[test]
fn help_texts_are_not_garbled() {
    for command in [&["--help"][..], &["serve", "--help"], &["proxy", "--help"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_demo-server"))
            .args(command)
            .stdin(Stdio::null())
            .output()
            .expect("the binary runs");
        assert!(out.status.success(), "{command:?}: {:?}", out.status);
        let text = String::from_utf8(out.stdout).unwrap();
        for line in text.lines() {
            let line = line.trim_start();
            assert!(
                !line.starts_with(',') && !line.starts_with('.'),
                "{command:?}: a line starts mid-sentence: {line:?}"
            );
        }
        if command[0] == "serve" {
            assert!(
                text.contains("GET /status/CODE, GET /bytes/N, GET /stats"),
                "{text}"
            );
        }
    }
}
