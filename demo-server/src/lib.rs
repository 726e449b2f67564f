//! A mio HTTP/1.1 server that lives on `recycle`'s pools.
//!
//! - [`http`]: the sans-I/O protocol core (parse, chunked bodies, the connection state
//!   machine and its [`Handler`](http::conn::Handler) interface, response framing); it
//!   knows no application;
//! - [`app`]: the demo routes, the first [`Handler`](http::conn::Handler);
//! - [`state`]: what all workers share (limits, pools, caches, counters);
//! - [`server`]: the mio event loop, one `Poll` per worker thread.

pub mod app;
pub mod http;
pub mod metrics;
pub mod proxy;
pub mod server;
pub mod state;
