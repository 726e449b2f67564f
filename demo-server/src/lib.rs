//! A mio HTTP/1.1 server that lives on `recycle-pool`'s pools.
//!
//! - [`http`]: the sans-I/O protocol core (parse, chunked bodies, the connection state
//!   machine and its [`Handler`](http::conn::Handler) interface, response framing); it
//!   knows no application;
//! - [`app`]: the demo routes, the first [`Handler`](http::conn::Handler);
//! - [`proxy`]: the reverse proxy, the second: upstream choice and health, upstream
//!   connection reuse, header rewriting, and the pairing of a client connection with an
//!   upstream one ([`ProxyHandler`](proxy::handler::ProxyHandler));
//! - [`admin`]: the proxy's admin listener (`/stats`, `/metrics`);
//! - [`metrics`]: `/stats` and `/metrics` (Prometheus text format);
//! - [`state`]: what all workers share (limits, pools, caches, counters);
//! - [`server`]: the mio event loop, one `Poll` per worker thread, for either.

pub mod admin;
pub mod app;
pub mod http;
pub mod metrics;
pub mod proxy;
pub mod server;
pub mod state;
