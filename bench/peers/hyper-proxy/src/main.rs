//! A hyper 1.x reverse proxy on one current-thread tokio runtime: the Rust peer of
//! `demo-server proxy` in the load benchmark of `bench/`.
//!
//! Usage: `hyper-proxy ADDR UPSTREAM` (for example `127.0.0.1:18082 127.0.0.1:18081`).
//! Each request is sent to `http://UPSTREAM` over a keep-alive client pool (at most
//! 64 idle connections, as nginx's `keepalive 64`); request and response bodies are
//! streamed, never buffered whole. Hop-by-hop header fields (RFC 9110 section 7.6.1)
//! are dropped in both directions; hyper re-frames bodies itself. An upstream error
//! becomes `502 Bad Gateway`. Responses to pipelined requests are flushed together
//! (`pipeline_flush`) unless the environment has `HYPER_PIPELINE_FLUSH=0`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{Either, Empty};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderMap};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

type Upstream = Client<HttpConnector, Incoming>;
type Body = Either<Incoming, Empty<Bytes>>;

/// Hop-by-hop fields (RFC 9110 section 7.6.1) that a proxy must not forward. hyper
/// frames each message itself, so Transfer-Encoding and Content-Length are left to it.
const HOP_BY_HOP: [&str; 7] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
    "proxy-authorization",
];

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    headers.remove(header::PROXY_AUTHENTICATE);
}

fn bad_gateway() -> Response<Body> {
    let mut response = Response::new(Either::Right(Empty::new()));
    *response.status_mut() = StatusCode::BAD_GATEWAY;
    response
}

async fn proxy(
    client: Upstream,
    upstream: Arc<str>,
    mut request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let uri = Uri::builder()
        .scheme("http")
        .authority(&*upstream)
        .path_and_query(path)
        .build();
    let Ok(uri) = uri else {
        return Ok(bad_gateway());
    };
    *request.uri_mut() = uri;
    strip_hop_by_hop(request.headers_mut());
    match client.request(request).await {
        Ok(mut response) => {
            strip_hop_by_hop(response.headers_mut());
            Ok(response.map(Either::Left))
        }
        Err(e) => {
            eprintln!("hyper-proxy: upstream: {e}");
            Ok(bad_gateway())
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(addr), Some(upstream)) = (args.next(), args.next()) else {
        eprintln!("usage: hyper-proxy ADDR UPSTREAM");
        std::process::exit(2);
    };
    let addr: SocketAddr = addr.parse().expect("ADDR: host:port");
    let upstream: Arc<str> = upstream.into();

    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: Upstream = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(64)
        .build(connector);

    let pipeline_flush = std::env::var_os("HYPER_PIPELINE_FLUSH").is_none_or(|v| v != "0");
    let listener = TcpListener::bind(addr).await?;
    eprintln!(
        "hyper-proxy: listening on http://{addr}, upstream http://{upstream} (pipeline_flush {pipeline_flush})"
    );
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                eprintln!("hyper-proxy: accept: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let client = client.clone();
        let upstream = Arc::clone(&upstream);
        tokio::spawn(async move {
            let service =
                service_fn(move |request| proxy(client.clone(), Arc::clone(&upstream), request));
            let _ = http1::Builder::new()
                .pipeline_flush(pipeline_flush)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
