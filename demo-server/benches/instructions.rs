//! Runs one fake-connection scenario of `benches/fakeconn.rs` a given number of times,
//! without timing, for an instruction count under callgrind: run it twice with two
//! op counts and divide the difference of the totals by the difference of the counts
//! (setup cancels out), as `scripts/instructions.sh` does.
//!
//! `cargo bench -p demo-server --bench instructions -- <scenario> <ops>`, with
//! `<scenario>` one of `no_keep_alive`, `keep_alive_lite`, `proxy`.

use std::hint::black_box;
use std::sync::Arc;

use demo_server::app::App;
use demo_server::http::conn::Conn;
use demo_server::proxy::handler::{Proxy, ProxyConfig};
use demo_server::proxy::mem::MemProxy;
use demo_server::state::{Limits, Shared};

mod support {
    pub(crate) mod requests;
}
use support::requests::{BROWSER_REQUEST, LITE_REQUEST, UPSTREAM_RESPONSE};

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let (Some(scenario), Some(ops)) = (args.first(), args.get(1)) else {
        eprintln!("usage: instructions <no_keep_alive|keep_alive_lite|proxy> <ops>");
        return;
    };
    let ops: u64 = ops.parse().expect("a number of ops");
    let shared = Shared::new(Limits::default(), 1, false);
    let mut ctx = shared.context(0);
    let mut sink: Vec<u8> = Vec::with_capacity(4096);
    let mut serve = |conn: &mut Conn<App<'_>>, request: &[u8], ctx: &mut _| {
        let mut rbuf = shared.readers.get();
        rbuf.extend_from_slice(request);
        let mut wbuf = shared.writers.get();
        conn.process(&mut rbuf, &mut wbuf, ctx, &mut ());
        wbuf.flush_to(&mut sink).unwrap();
        black_box(&sink);
        sink.clear();
    };
    match scenario.as_str() {
        "no_keep_alive" => {
            for _ in 0..ops {
                let mut conn = Conn::new(App::new(&shared));
                serve(&mut conn, BROWSER_REQUEST, &mut ctx);
                assert!(conn.is_done());
            }
        }
        "keep_alive_lite" => {
            let mut conn = Conn::new(App::new(&shared));
            for _ in 0..ops {
                serve(&mut conn, LITE_REQUEST, &mut ctx);
            }
        }
        "proxy" => {
            let config = ProxyConfig {
                upstreams: vec!["127.0.0.1:8080".parse().unwrap()],
                ..ProxyConfig::default()
            };
            let proxy = Arc::new(Proxy::new(config, 1));
            let mut mem = MemProxy::new(&shared, &proxy);
            for _ in 0..ops {
                let key = mem.exchange(LITE_REQUEST, UPSTREAM_RESPONSE);
                black_box(mem.client_received());
                mem.clear_client_received();
                mem.clear_upstream_received(key);
            }
        }
        other => panic!("unknown scenario {other}"),
    }
}
