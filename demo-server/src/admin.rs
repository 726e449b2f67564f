//! The proxy's admin listener: [`Admin`], the [`Handler`] that serves `GET /stats`
//! (JSON) and `GET /metrics` (Prometheus text format) about the proxy on its own
//! address, so that every path of the proxied site still reaches the upstreams.

use crate::app::report;
use crate::http::conn::{Handler, Response};
use crate::http::parse::{Method, Request};
use crate::metrics;
use crate::proxy::handler::Proxy;
use crate::state::Shared;

/// One admin connection's handler.
pub struct Admin<'a> {
    /// The proxy's client-side state (its connections, requests, pools).
    shared: &'a Shared,
    proxy: &'a Proxy,
    /// Where the reports are written (grown once per connection).
    scratch: Vec<u8>,
}

impl<'a> Admin<'a> {
    /// The handler of one admin connection, reporting on `shared` and `proxy`.
    pub fn new(shared: &'a Shared, proxy: &'a Proxy) -> Self {
        Self {
            shared,
            proxy,
            scratch: Vec::new(),
        }
    }
}

impl std::fmt::Debug for Admin<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin").finish_non_exhaustive()
    }
}

impl Handler for Admin<'_> {
    type Local = ();

    fn on_request(&mut self, req: &Request<'_>, res: &mut Response<'_, '_>, _: &mut ()) {
        let read = matches!(req.head.method, Method::Get | Method::Head);
        self.scratch.clear();
        match req.path {
            b"/stats" | b"/metrics" if !read => {
                // RFC 9110 §15.5.6: a 405 lists the methods the target allows.
                crate::app::fixed(res, 405, Some("GET, HEAD"), b"Method Not Allowed\n");
            }
            b"/stats" => {
                metrics::write_json(&mut self.scratch, self.shared, Some(self.proxy));
                report(res, b"application/json", &self.scratch);
            }
            b"/metrics" => {
                metrics::write_server(&mut self.scratch, self.shared, Some(self.proxy));
                report(res, metrics::CONTENT_TYPE.as_bytes(), &self.scratch);
            }
            _ => res.status_page(404),
        }
    }
}
