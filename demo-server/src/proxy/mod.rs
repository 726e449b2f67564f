//! The reverse proxy's own pieces, beside the sans-I/O HTTP core in [`http`](crate::http)
//! that parses and frames both sides:
//!
//! - [`handler`]: [`ProxyHandler`](handler::ProxyHandler), the pairing of a client
//!   connection with an upstream one (the connection's handler), and the exchange's
//!   state; it re-exports the settings and shared state
//!   ([`ProxyConfig`](handler::ProxyConfig), [`Proxy`](handler::Proxy), from
//!   `config.rs`) and the event loop's state it is lent
//!   ([`ProxyLocal`](handler::ProxyLocal), from `local.rs`);
//! - [`headers`]: the request head sent upstream and the response fields sent to the
//!   client (hop-by-hop fields out, `Via` and `X-Forwarded-*` in, the framing written
//!   for the other side), without allocating;
//! - [`upstream`]: round-robin choice among the upstreams with nginx-style passive
//!   health (`max_fails` within `fail_timeout`), their counters for `/metrics`, and the
//!   per-worker set of idle keep-alive connections to each;
//! - [`mem`]: the proxy driven in memory, for tests, benchmarks and fuzzing.
//!
//! Like `http/`, nothing here does I/O, and the rules take the time as an [`Instant`]
//! passed in (the handlers read it from their worker state, which the driver sets), so
//! every rule is tested without sleeping, and the event loop, the tests and the fuzz
//! targets drive the same code.
//!
//! [`Instant`]: std::time::Instant

mod config;
pub mod handler;
pub mod headers;
mod local;
pub mod mem;
pub mod upstream;
