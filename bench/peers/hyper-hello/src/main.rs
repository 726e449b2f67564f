//! A hyper 1.x "Hello, World!" server on one current-thread tokio runtime: the Rust
//! peer of `demo-server serve` in the load and idle-connection benchmarks of `bench/`.
//!
//! Usage: `hyper-hello [ADDR]` (default `127.0.0.1:18080`). Every request gets
//! `200 OK` with the body `Hello, World!`. HTTP/1.1 keep-alive; the responses to
//! pipelined requests are flushed together (`pipeline_flush`, hyper's opt-in for
//! pipelining benchmarks) unless the environment has `HYPER_PIPELINE_FLUSH=0`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

async fn hello(_: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut response = Response::new(Full::new(Bytes::from_static(b"Hello, World!")));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    Ok(response)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .as_deref()
        .unwrap_or("127.0.0.1:18080")
        .parse()
        .expect("usage: hyper-hello [ADDR]");
    let pipeline_flush = std::env::var_os("HYPER_PIPELINE_FLUSH").is_none_or(|v| v != "0");
    let listener = TcpListener::bind(addr).await?;
    eprintln!("hyper-hello: listening on http://{addr} (pipeline_flush {pipeline_flush})");
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                eprintln!("hyper-hello: accept: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let _ = http1::Builder::new()
                .pipeline_flush(pipeline_flush)
                .serve_connection(TokioIo::new(stream), service_fn(hello))
                .await;
        });
    }
}
