//! The reverse proxy's own pieces, beside the sans-I/O HTTP core in [`http`](crate::http)
//! that parses and frames both sides:
//!
//! - [`headers`]: the request head sent upstream and the response head sent to the
//!   client (hop-by-hop fields out, `Via` and `X-Forwarded-*` in, the framing written
//!   for the other side), written into a `WriteBuf` without allocating;
//! - [`upstream`]: round-robin choice among the upstreams with nginx-style passive
//!   health (`max_fails` within `fail_timeout`), their counters for `/metrics`, and the
//!   per-worker set of idle keep-alive connections to each.
//!
//! Like `http/`, nothing here does I/O or reads the clock: time is an [`Instant`]
//! passed in, so every rule is tested without sleeping, and the event loop, the tests
//! and the fuzz targets drive the same code.
//!
//! [`Instant`]: std::time::Instant

pub mod handler;
pub mod headers;
pub mod mem;
pub mod upstream;
