//! The proxy driven in memory: one client connection and its upstream connections as
//! byte vectors, moved as the event loop moves them between sockets (the protocol on
//! [`ProxyHandler`]). The sans-I/O tests, the allocation test, the fake-connection
//! benchmark and the `proxy_headers` fuzz target all drive [`ProxyHandler`] through it.
//!
//! # Examples
//!
//! ```
//! use std::sync::Arc;
//! use demo_server::proxy::handler::{Proxy, ProxyConfig};
//! use demo_server::proxy::mem::MemProxy;
//! use demo_server::state::{Limits, Shared};
//!
//! let shared = Shared::new(Limits::default(), 1, false);
//! let config = ProxyConfig { upstreams: vec!["127.0.0.1:8080".parse()?], ..ProxyConfig::default() };
//! let proxy = Arc::new(Proxy::new(config, 1));
//! let mut mem = MemProxy::new(&shared, &proxy);
//!
//! mem.client_sends(b"GET /a HTTP/1.1\r\nHost: example.com\r\n\r\n");
//! mem.run(); // what `exchange` does in one call
//! let upstream = mem.last_connection().expect("a connection upstream");
//! assert!(mem.upstream(upstream).received.starts_with(b"GET /a HTTP/1.1\r\nHost: example.com\r\n"));
//!
//! mem.upstream_sends(upstream, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi");
//! mem.run();
//! assert!(mem.client_received().ends_with(b"\r\n\r\nhi"));
//! # Ok::<(), std::net::AddrParseError>(())
//! ```

use std::io::{self, Write};
use std::sync::Arc;

use recycle_pool::io::{ReadBuf, WriteBuf};
use slab::Slab;

use super::handler::{Proxy, ProxyHandler, ProxyLocal};
use crate::http::conn::Conn;
use crate::state::{Ctx, Shared};

/// One upstream connection, in memory.
#[derive(Debug, Default)]
pub struct MemUpstream {
    /// Which upstream it goes to.
    pub upstream: usize,
    /// Every byte the proxy wrote to it.
    pub received: Vec<u8>,
    /// What it sends the proxy, from `delivered` on.
    sending: Vec<u8>,
    delivered: usize,
    /// It closes its side once `sending` is delivered.
    eof: bool,
    eof_told: bool,
    /// Its next read or write fails (after the bytes sent before it, for a read).
    reset: bool,
    /// The reset was reported, to a read or a write: as a kernel does, it is reported
    /// once, and a read after it finds the end of stream.
    reset_told: bool,
    /// The proxy closed it.
    pub closed: bool,
    /// It sits in the proxy's idle set.
    pub idle: bool,
    /// The proxy shut down its write side (a tunnel's client ended its side).
    pub shut: bool,
}

impl MemUpstream {
    /// Bytes it has sent that the proxy has not read.
    pub fn unread(&self) -> usize {
        self.sending.len() - self.delivered
    }
}

/// A client connection of the proxy, with its upstream connections, in memory.
pub struct MemProxy<'s> {
    conn: Conn<ProxyHandler>,
    ctx: Ctx<'s>,
    /// The worker state the handler is lent (its clock is `local.now`).
    pub local: ProxyLocal,
    rbuf: ReadBuf,
    wbuf: WriteBuf,
    output: Vec<u8>,
    client_eof: bool,
    /// The proxy shut down its write side to the client (a tunnel's upstream ended its
    /// side).
    client_shut: bool,
    /// Bytes the client reads before it stops reading (a socket buffer's room); used
    /// up as it reads. `usize::MAX`: no limit.
    pub client_room: usize,
    /// Bytes the upstream connections read before they stop, as `client_room`.
    pub upstream_room: usize,
    /// Connections to these upstreams are refused.
    pub refused: Vec<bool>,
    /// No connection can be opened, for a local reason (the proxy is out of file
    /// descriptors).
    pub local_error: bool,
    upstreams: Slab<MemUpstream>,
    last: Option<usize>,
    /// Most bytes the pair held at once: the client's buffers and the copy buffers.
    pub peak_buffered: usize,
    /// Most bytes the copy buffers held at once.
    pub peak_copied: usize,
    /// Most bytes of output pending for the client at once.
    pub peak_output: usize,
}

/// A sink that takes at most `room` bytes, then says `WouldBlock`.
struct Window<'o> {
    out: &'o mut Vec<u8>,
    room: usize,
}

impl Write for Window<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.room == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(self.room);
        self.out.extend_from_slice(&buf[..n]);
        self.room -= n;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'s> MemProxy<'s> {
    /// A client connection of worker 0 of `proxy`, with the limits of `shared`.
    pub fn new(shared: &'s Shared, proxy: &Arc<Proxy>) -> Self {
        let upstreams = proxy.upstreams.len();
        Self {
            conn: Conn::new(ProxyHandler::new(
                std::net::Ipv4Addr::new(192, 0, 2, 1).into(),
            )),
            ctx: shared.context(0),
            local: proxy.local(0),
            rbuf: ReadBuf::with_capacity(16 * 1024),
            wbuf: WriteBuf::with_capacity(16 * 1024),
            output: Vec::with_capacity(64 * 1024),
            client_eof: false,
            client_shut: false,
            client_room: usize::MAX,
            upstream_room: usize::MAX,
            refused: vec![false; upstreams],
            local_error: false,
            upstreams: Slab::with_capacity(4),
            last: None,
            peak_buffered: 0,
            peak_copied: 0,
            peak_output: 0,
        }
    }

    /// The client connection.
    pub fn conn(&self) -> &Conn<ProxyHandler> {
        &self.conn
    }

    /// The client sends `bytes`.
    pub fn client_sends(&mut self, bytes: &[u8]) {
        self.rbuf.extend_from_slice(bytes);
    }

    /// The client closes its side.
    pub fn client_closes(&mut self) {
        self.client_eof = true;
    }

    /// The client goes away: the connection is dropped, as the event loop drops one
    /// whose socket failed.
    pub fn client_resets(&mut self) {
        self.conn.abort(&mut self.local);
        self.pump();
    }

    /// Whether the proxy shut down its write side to the client, after what the client
    /// received (a tunnel's upstream ended its side).
    pub fn client_shut(&self) -> bool {
        self.client_shut
    }

    /// What the client received so far.
    pub fn client_received(&self) -> &[u8] {
        &self.output
    }

    /// Forgets what the client received so far.
    pub fn clear_client_received(&mut self) {
        self.output.clear();
    }

    /// Bytes the client sent that the connection has not processed.
    pub fn client_unread(&self) -> usize {
        self.rbuf.len()
    }

    /// The most recently opened upstream connection.
    pub fn last_connection(&self) -> Option<usize> {
        self.last
    }

    /// The upstream connection the exchange in progress uses, if any.
    pub fn current_connection(&self) -> Option<usize> {
        self.conn.handler().connection()
    }

    /// Upstream connection `key`.
    ///
    /// # Panics
    ///
    /// If there is no such connection.
    pub fn upstream(&self, key: usize) -> &MemUpstream {
        &self.upstreams[key]
    }

    /// Every upstream connection opened, by key.
    pub fn connections(&self) -> impl Iterator<Item = (usize, &MemUpstream)> {
        self.upstreams.iter()
    }

    /// Forgets what upstream connection `key` received so far.
    pub fn clear_upstream_received(&mut self, key: usize) {
        self.upstreams[key].received.clear();
    }

    /// Upstream connection `key` sends `bytes`.
    pub fn upstream_sends(&mut self, key: usize, bytes: &[u8]) {
        let up = &mut self.upstreams[key];
        if up.delivered == up.sending.len() {
            up.sending.clear();
            up.delivered = 0;
        }
        up.sending.extend_from_slice(bytes);
        self.wake_idle(key);
    }

    /// One exchange: the client sends `request`, then the upstream connection the proxy
    /// uses for it answers `response`; returns that connection's key.
    ///
    /// # Panics
    ///
    /// If the proxy asked for no upstream connection (it answered the request itself).
    pub fn exchange(&mut self, request: &[u8], response: &[u8]) -> usize {
        self.client_sends(request);
        self.run();
        let key = self
            .current_connection()
            .expect("an upstream connection for the request");
        self.upstream_sends(key, response);
        self.run();
        key
    }

    /// Upstream connection `key` closes its side (after what it sent).
    pub fn upstream_closes(&mut self, key: usize) {
        self.upstreams[key].eof = true;
        self.wake_idle(key);
    }

    /// Upstream connection `key` is reset: its next write fails, or its next read once
    /// the proxy read what it sent before (as a kernel delivers it), whichever comes
    /// first; a read after that finds the end of stream (Linux reports a reset once).
    pub fn upstream_resets(&mut self, key: usize) {
        self.upstreams[key].reset = true;
        self.wake_idle(key);
    }

    /// The upstream deadline of the exchange passed (if it has one).
    pub fn upstream_timeout(&mut self) {
        if self.conn.handler().deadline().is_some() {
            self.conn.handler_mut().timed_out(&mut self.local);
        }
    }

    /// Time passes: the worker's clock moves on by `by`, and the upstream deadline of
    /// the exchange fires if that passed it, as the event loop's sweep fires it; then
    /// [`run`](Self::run).
    pub fn advance(&mut self, by: std::time::Duration) {
        self.local.now += by;
        let now = self.local.now;
        if self.conn.handler().deadline().is_some_and(|d| now >= d) {
            self.conn.handler_mut().timed_out(&mut self.local);
        }
        self.run();
    }

    /// An idle connection that the upstream wrote to or closed is closed, as the event
    /// loop closes one whose socket says so.
    fn wake_idle(&mut self, key: usize) {
        let up = &mut self.upstreams[key];
        if up.idle && self.local.remove_idle(up.upstream, key) {
            up.idle = false;
            up.closed = true;
        }
    }

    /// Runs the connection until nothing moves: the client's bytes are processed, the
    /// upstream connections written and read, the client's output taken (as far as
    /// `client_room` and `upstream_room` allow).
    pub fn run(&mut self) {
        loop {
            let before = (self.rbuf.len(), self.wbuf.len());
            self.conn.process(
                &mut self.rbuf,
                &mut self.wbuf,
                &mut self.ctx,
                &mut self.local,
            );
            let mut progress = (self.rbuf.len(), self.wbuf.len()) != before;
            if self.client_eof && self.conn.wants_input(self.wbuf.len()) && !self.conn.is_done() {
                let partial = !self.rbuf.is_empty();
                self.conn
                    .on_eof(partial, &mut self.wbuf, &mut self.ctx, &mut self.local);
                progress = true;
            }
            progress |= self.pump();
            let copied = self.conn.handler().buffered();
            self.peak_copied = self.peak_copied.max(copied);
            self.peak_output = self.peak_output.max(self.wbuf.len());
            let buffered = self.rbuf.len() + self.wbuf.len() + copied;
            self.peak_buffered = self.peak_buffered.max(buffered);
            let mut window = Window {
                out: &mut self.output,
                room: self.client_room,
            };
            if let Ok(n) = self.wbuf.write_to(&mut window) {
                progress |= n > 0;
                use_up(&mut self.client_room, n);
            }
            if !progress {
                // Once nothing else moves (a shutdown waits for the flush anyway).
                if self.wbuf.is_empty() && self.conn.take_shutdown() {
                    self.client_shut = true;
                    continue;
                }
                return;
            }
        }
    }

    /// The upstream side, as the event loop's, in its steps: releases, connections,
    /// writes, reads, closes. Returns whether anything moved.
    fn pump(&mut self) -> bool {
        let mut progress = self.release();
        progress |= self.connect();
        progress |= self.write_upstream();
        progress |= self.read_upstream();
        while let Some(key) = self.local.next_closing() {
            self.upstreams[key].closed = true;
            self.upstreams[key].idle = false;
            progress = true;
        }
        progress
    }

    /// Parks the connections the handler released (or closes them).
    fn release(&mut self) -> bool {
        let (w, ups) = (&mut self.local, &mut self.upstreams);
        let mut progress = false;
        while let Some(mut released) = w.next_released() {
            let up = &mut ups[released.key];
            // A connection with bytes the proxy has not read, or that closed, is not
            // clean whatever the exchange says (the event loop checks its socket).
            if up.unread() > 0 || up.eof || up.reset {
                released.exchange.response_read = false;
            }
            match w.park(released) {
                Some(closed) => ups[closed].closed = true,
                None => ups[released.key].idle = true,
            }
            progress = true;
        }
        progress
    }

    /// Gives the handler the connection it wants: an idle one, a new one, or a failure.
    fn connect(&mut self) -> bool {
        let (w, ups) = (&mut self.local, &mut self.upstreams);
        let handler = self.conn.handler_mut();
        let Some((upstream, reuse)) = handler.wants_connection() else {
            return false;
        };
        match reuse.then(|| w.take_idle(upstream)).flatten() {
            Some(key) => {
                ups[key].idle = false;
                handler.attach(key, true, w);
            }
            None if self.local_error => handler.connect_failed_locally(w),
            None if self.refused[upstream] => handler.connect_failed(w),
            None => {
                let key = ups.insert(MemUpstream {
                    upstream,
                    ..MemUpstream::default()
                });
                self.last = Some(key);
                handler.attach(key, false, w);
                handler.connected(w);
            }
        }
        true
    }

    /// Writes what the handler has for its connection, as far as `upstream_room` allows.
    fn write_upstream(&mut self) -> bool {
        let (w, ups) = (&mut self.local, &mut self.upstreams);
        let handler = self.conn.handler_mut();
        let Some(key) = handler.connection() else {
            return false;
        };
        let up = &mut ups[key];
        let data = handler.to_send();
        let n = data.len().min(self.upstream_room);
        if up.reset && n > 0 {
            up.reset_told = true; // a write after it fails too (EPIPE)
            handler.write_failed(w);
        } else if n > 0 {
            up.received.extend_from_slice(&data[..n]);
            use_up(&mut self.upstream_room, n);
            handler.sent(n, w);
        } else if handler.wants_write_shutdown() {
            up.shut = true;
            handler.write_shut(w);
            return true;
        }
        n > 0
    }

    /// Reads what the connection sent, as far as the handler has room; then its reset
    /// or its end, as a kernel delivers them (after the bytes sent before).
    fn read_upstream(&mut self) -> bool {
        let (w, ups) = (&mut self.local, &mut self.upstreams);
        let handler = self.conn.handler_mut();
        let Some(key) = handler.connection() else {
            return false;
        };
        let up = &mut ups[key];
        let room = handler.input_room();
        let n = up.unread().min(room);
        if n > 0 {
            if let Some(input) = handler.input(w) {
                input.extend_from_slice(&up.sending[up.delivered..up.delivered + n]);
            }
            up.delivered += n;
            handler.received(n, w);
        } else if up.reset && !up.reset_told && room > 0 {
            up.reset_told = true;
            handler.read_failed(w);
        } else if (up.eof || up.reset) && up.unread() == 0 && !up.eof_told && room > 0 {
            up.eof_told = true;
            handler.upstream_closed(w);
        } else {
            return false;
        }
        true
    }
}

/// Takes `n` bytes of `room` (unless it is unlimited).
fn use_up(room: &mut usize, n: usize) {
    if *room != usize::MAX {
        *room -= n;
    }
}

impl std::fmt::Debug for MemProxy<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemProxy")
            .field("conn", &self.conn)
            .field("upstreams", &self.upstreams)
            .finish_non_exhaustive()
    }
}
