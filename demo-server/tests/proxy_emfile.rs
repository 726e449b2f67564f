//! The proxy out of file descriptors: opening an upstream connection fails with
//! EMFILE, which is the proxy's own trouble, not the upstream's: 502, no retry, and no
//! mark against the upstream's health.
//!
//! Its own test binary (one process, one test): it lowers this process's descriptor
//! limit, which would disturb any other test running beside it.

mod common;

use std::net::SocketAddr;
use std::thread;
use std::time::Duration;

use common::fds::set_fd_limit;
use common::net::Client;
use demo_server::proxy::handler::ProxyConfig;
use demo_server::proxy::upstream::HealthPolicy;
use demo_server::server::{Config, Server};
use demo_server::state::Limits;

fn config() -> Config {
    Config {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        threads: 1,
        limits: Limits::default(),
        shutdown_timeout: Duration::from_secs(1),
        access_log: false,
    }
}

#[test]
fn out_of_descriptors_the_proxy_answers_502_and_blames_no_upstream() {
    let upstream = Server::bind(config()).unwrap();
    let (upstream_addr, upstream_handle) = (upstream.local_addr(), upstream.handle());
    let upstream_thread = thread::spawn(move || upstream.run());
    let proxy = ProxyConfig {
        upstreams: vec![upstream_addr],
        upstream_idle: 0, // a new connection for every request
        health: HealthPolicy {
            max_fails: 1,
            fail_timeout: Duration::from_secs(60),
        },
        ..ProxyConfig::default()
    };
    let proxy = Server::proxy(config(), proxy)
        .and_then(|s| s.with_admin(SocketAddr::from(([127, 0, 0, 1], 0))))
        .unwrap();
    let (addr, admin, handle) = (
        proxy.local_addr(),
        proxy.admin_addr().unwrap(),
        proxy.handle(),
    );
    let proxy_thread = thread::spawn(move || proxy.run());

    let mut client = Client::connect(addr);
    assert_eq!(client.get("/").status, 200);
    // No descriptor can be made now: the proxy cannot open its upstream connection.
    let old = set_fd_limit(0);
    let status = client.get("/").status;
    set_fd_limit(old);
    assert_eq!(status, 502);
    let mut stats = Client::connect(admin);
    stats.send(b"GET /stats HTTP/1.1\r\nHost: admin\r\n\r\n");
    let stats = stats.response().text();
    assert!(stats.contains("\"state\":\"up\""), "{stats}");
    assert!(stats.contains("\"connect_failures\":1,"), "{stats}");
    assert!(stats.contains("\"retries\":0,\"failures\":0,"), "{stats}");
    // Descriptors are back: so is the service, at once.
    assert_eq!(client.get("/").status, 200);

    handle.shutdown();
    upstream_handle.shutdown();
    proxy_thread.join().unwrap().unwrap();
    upstream_thread.join().unwrap().unwrap();
}
