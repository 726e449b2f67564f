//! The upstream socket I/O of `proxy`: the [`Service`] whose handlers forward to
//! upstreams, with the upstream sockets in the worker's own `Poll`.
//!
//! Each worker keeps its upstream connections in a `Slab`, registered under
//! [`SERVICE_TOKEN`](super::service::SERVICE_TOKEN) plus their key, readable and
//! writable (edge-triggered: a flag per direction remembers readiness not yet used
//! up). A connection belongs to the client connection whose handler uses it, or to
//! the idle set ([`ProxyLocal::take_idle`]); a readiness event on an idle one means
//! the upstream closed it or wrote to it unasked, and it is closed at once, so a
//! request never meets a connection already known dead. The worker applies the events
//! of its upstream sockets before those of its clients in each poll, so a byte or a
//! close that arrived on an idle connection before the poll discards it before any
//! request can take it; bytes found right after a response make the connection dirty
//! ([`ProxyState::park_released`]). Unsolicited bytes can meet a request only if they
//! arrive after the worker's last poll: a peek as each connection is taken would
//! narrow that to the moment before the request is written, at a system call per
//! reused request, and not close it either (bytes that arrive after the request are
//! indistinguishable from its response, to any proxy).
//!
//! The handler ([`ProxyHandler`]) is sans-I/O; [`Service::pump`] here is its driver,
//! following the protocol documented on [`ProxyHandler`] with real sockets (reading
//! with `recv` into the input buffer's spare capacity, so it is never zeroed).

use std::io::{self, ErrorKind, Write};
use std::mem::MaybeUninit;
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use mio::event::Event;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use slab::Slab;
use socket2::SockRef;

use super::service::{Pumped, SERVICE_TOKEN, Service};
use super::socket::{interrupted, would_block};
use crate::http::conn::Handler;
use crate::proxy::handler::{Proxy, ProxyHandler, ProxyLocal};
use crate::state::Shared;

/// `proxy`: a [`ProxyHandler`] per client connection.
#[derive(Clone, Copy)]
pub(crate) struct ProxyService<'a> {
    pub(crate) shared: &'a Shared,
    pub(crate) proxy: &'a Arc<Proxy>,
}

/// One worker's proxy state: the handlers' [`ProxyLocal`] and the upstream sockets.
pub(crate) struct ProxyState {
    local: ProxyLocal,
    sockets: Slab<Upstream>,
    registry: Registry,
}

/// One upstream connection.
struct Upstream {
    stream: TcpStream,
    /// Which upstream it goes to.
    upstream: usize,
    /// The client connection whose handler uses it; `None` while idle.
    owner: Option<usize>,
    /// Connecting: no write until the connection is made.
    connecting: bool,
    /// Readiness not yet used up.
    readable: bool,
    writable: bool,
    /// The upstream hung up or the socket has an error.
    hup: bool,
}

impl<'a> Service<'a> for ProxyService<'a> {
    type Handler = ProxyHandler;
    type State = ProxyState;

    fn state(self, index: usize, registry: &Registry) -> io::Result<ProxyState> {
        let per_worker = self.shared.limits.max_connections / self.proxy.upstreams.len().max(1);
        Ok(ProxyState {
            local: self.proxy.local(index),
            sockets: Slab::with_capacity(per_worker.clamp(16, 4096)),
            registry: registry.try_clone()?,
        })
    }

    #[inline]
    fn handler(self, peer: SocketAddr) -> ProxyHandler {
        ProxyHandler::new(peer.ip())
    }

    #[inline]
    fn local(state: &mut ProxyState) -> &mut <ProxyHandler as Handler>::Local {
        &mut state.local
    }

    fn pump(
        state: &mut ProxyState,
        key: usize,
        handler: &mut ProxyHandler,
        now: Instant,
    ) -> Pumped {
        state.local.now = now;
        // Parking and closing connections the handlers let go is housekeeping: it
        // gives this handler nothing to do, so it is not progress.
        state.park_released();
        let mut pumped = Pumped::default();
        if let Some((upstream, reuse)) = handler.wants_connection() {
            state.connect(key, upstream, reuse, handler);
            // A connection given is written to below (or, while it connects, when its
            // socket says so); one refused changed the handler's state (a retry, or
            // an error to answer).
            pumped.input = handler.connection().is_none();
        }
        if let Some(conn) = handler.connection() {
            let moved = state.transfer(conn, handler);
            pumped.input |= moved.input;
            pumped.room |= moved.room;
        }
        state.close_given_up();
        pumped
    }

    fn event(state: &mut ProxyState, token: usize, event: &Event) -> Option<usize> {
        let socket = state.sockets.get_mut(token)?;
        let hup = event.is_read_closed() || event.is_error();
        socket.readable |= event.is_readable() || hup;
        socket.writable |= event.is_writable() || event.is_error();
        socket.hup |= hup;
        match socket.owner {
            Some(client) => Some(client),
            None => {
                // Idle: the upstream closed it, or wrote to it unasked. Either way it
                // cannot carry another request.
                if socket.readable && state.local.remove_idle(socket.upstream, token) {
                    state.close(token);
                }
                None
            }
        }
    }

    fn buffered(handler: &ProxyHandler) -> usize {
        handler.buffered()
    }

    fn deadline(handler: &ProxyHandler) -> Option<Instant> {
        handler.deadline()
    }

    fn on_deadline(state: &mut ProxyState, handler: &mut ProxyHandler, now: Instant) {
        state.local.now = now;
        handler.timed_out(&mut state.local);
    }

    fn tick(state: &mut ProxyState, now: Instant) {
        state.local.expire(now);
        state.close_given_up();
    }

    fn shutdown(state: &mut ProxyState) {
        state.local.drain_idle();
        state.close_given_up();
    }
}

impl ProxyState {
    /// Parks the connections handlers released: idle if clean (and nothing came after
    /// the response), closed otherwise.
    fn park_released(&mut self) -> bool {
        let mut progress = false;
        while let Some(mut released) = self.local.next_released() {
            progress = true;
            let socket = &mut self.sockets[released.key];
            socket.owner = None;
            if !socket.is_quiet() {
                released.exchange.response_read = false;
            }
            if let Some(closed) = self.local.park(released) {
                self.close(closed);
            }
        }
        progress
    }

    /// Gives client `key`'s handler a connection to `upstream`: an idle one if `reuse`
    /// and there is one, else a new one.
    fn connect(&mut self, key: usize, upstream: usize, reuse: bool, handler: &mut ProxyHandler) {
        let (w, sockets) = (&mut self.local, &mut self.sockets);
        if let Some(conn) = reuse.then(|| w.take_idle(upstream)).flatten() {
            sockets[conn].owner = Some(key);
            handler.attach(conn, true, w);
            return;
        }
        let addr = w.proxy().upstreams.addr(upstream);
        let stream = match TcpStream::connect(addr) {
            Ok(stream) => stream,
            Err(e) => return connect_failed(handler, w, upstream, &e),
        };
        // Failing past the socket call is the proxy's own trouble (epoll out of memory).
        let registered = stream.set_nodelay(true).and_then(|()| {
            let entry = sockets.vacant_entry();
            let conn = entry.key();
            let mut stream = stream;
            self.registry.register(
                &mut stream,
                Token(SERVICE_TOKEN | conn),
                Interest::READABLE | Interest::WRITABLE,
            )?;
            entry.insert(Upstream {
                stream,
                upstream,
                owner: Some(key),
                connecting: true,
                readable: false,
                writable: false,
                hup: false,
            });
            Ok(conn)
        });
        match registered {
            Ok(conn) => handler.attach(conn, false, w),
            Err(e) => {
                log::warn!("cannot register a connection to upstream {upstream}: {e}");
                handler.connect_failed_locally(w);
            }
        }
    }

    /// Writes and reads connection `conn` for `handler`, in steps: finish connecting,
    /// write, read. Returns what moved.
    fn transfer(&mut self, conn: usize, handler: &mut ProxyHandler) -> Pumped {
        let (local, socket) = (&mut self.local, &mut self.sockets[conn]);
        let mut pumped = Pumped::default();
        match socket.finish_connect(handler, local) {
            Step::Done(progress) => {
                pumped.input = progress;
                return pumped;
            }
            Step::Next(progress) => pumped.input = progress,
        }
        let written = socket.write_out(handler, local);
        pumped.input |= written.input;
        pumped.room |= written.room;
        if handler.connection() != Some(conn) {
            pumped.input = true; // the write failed and the handler let it go
            return pumped;
        }
        match socket.read_in(handler, local) {
            Step::Done(_) => pumped.input = true,
            Step::Next(read) => pumped.input |= read,
        }
        pumped
    }

    /// Closes the connections the worker gave up. Returns whether there were any.
    #[inline]
    fn close_given_up(&mut self) -> bool {
        let mut any = false;
        while let Some(conn) = self.local.next_closing() {
            self.close(conn);
            any = true;
        }
        any
    }

    fn close(&mut self, conn: usize) {
        if let Some(mut socket) = self.sockets.try_remove(conn) {
            let _ = self.registry.deregister(&mut socket.stream);
        }
    }
}

/// Whether a failed `connect` is the proxy's own trouble rather than the upstream's: out
/// of file descriptors (`EMFILE`, `ENFILE`), socket buffers or memory (`ENOBUFS`,
/// `ENOMEM`), or local ports (`EADDRNOTAVAIL`). Anything else (refused, unreachable,
/// reset, timed out) is a failed attempt on the upstream.
fn is_local(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM | libc::EADDRNOTAVAIL)
    )
}

/// Tells `handler` that its connection to `upstream` could not be made, and whose fault
/// that was.
fn connect_failed(handler: &mut ProxyHandler, w: &mut ProxyLocal, upstream: usize, e: &io::Error) {
    if is_local(e) {
        log::warn!("cannot connect to upstream {upstream}: {e} (the proxy's own limit)");
        handler.connect_failed_locally(w);
    } else {
        log::debug!("cannot connect to upstream {upstream}: {e}");
        handler.connect_failed(w);
    }
}

/// What a step of [`ProxyState::transfer`] leaves to the next: `Next(progress)`, go on;
/// `Done(progress)`, stop here.
enum Step {
    Next(bool),
    Done(bool),
}

/// The steps of [`ProxyState::transfer`], in order.
impl Upstream {
    /// A new connection: whether it is made yet (then `handler` is told, once).
    fn finish_connect(&mut self, handler: &mut ProxyHandler, local: &mut ProxyLocal) -> Step {
        if !self.connecting {
            return Step::Next(false);
        }
        if !(self.writable || self.readable) {
            return Step::Done(false); // not yet
        }
        match self.connected() {
            Ok(true) => {
                self.connecting = false;
                handler.connected(local);
                Step::Next(false)
            }
            Ok(false) => {
                self.writable = false;
                self.readable = false;
                Step::Done(false)
            }
            Err(e) => {
                connect_failed(handler, local, self.upstream, &e);
                Step::Done(true)
            }
        }
    }

    /// Writes what the handler has for the upstream, while the socket takes it; then
    /// passes a tunnel client's end of stream on, when the handler asks. Bytes written
    /// are `room`; a failure or a shutdown passed on is `input` (the handler's state
    /// changed).
    fn write_out(&mut self, handler: &mut ProxyHandler, local: &mut ProxyLocal) -> Pumped {
        let mut pumped = Pumped::default();
        while self.writable {
            let data = handler.to_send();
            if data.is_empty() {
                break;
            }
            match self.stream.write(data) {
                Ok(n) if n > 0 => {
                    handler.sent(n, local);
                    pumped.room = true;
                }
                Err(e) if would_block(&e) => self.writable = false,
                Err(e) if interrupted(&e) => {}
                Ok(_) | Err(_) => {
                    // An upstream that answered early and closed resets the connection
                    // over the unread request, but its answer is in the socket ahead of
                    // the reset: read before deciding (`write_failed`).
                    handler.write_failed(local);
                    self.writable = false;
                    self.readable = true;
                    pumped.input = true;
                    return pumped;
                }
            }
        }
        if handler.wants_write_shutdown() {
            // The client ended its side of a tunnel, and its bytes were written.
            let _ = self.stream.shutdown(Shutdown::Write);
            handler.write_shut(local);
            pumped.input = true;
        }
        pumped
    }

    /// Reads what the handler has room for, into the spare capacity of its input
    /// buffer. `Done` once the connection ended (closed or failed).
    fn read_in(&mut self, handler: &mut ProxyHandler, local: &mut ProxyLocal) -> Step {
        let mut progress = false;
        while self.readable {
            let room = handler.input_room();
            if room == 0 {
                break; // backpressure: `readable` stays set for when it has room
            }
            let Some(input) = handler.input(local) else {
                break; // no exchange (then `input_room` is 0, so not reached)
            };
            let len = input.len();
            let spare = &mut input.spare_capacity_mut()[..room];
            match SockRef::from(&self.stream).recv(spare) {
                Ok(0) => {
                    self.readable = false;
                    handler.upstream_closed(local);
                    return Step::Done(true);
                }
                Ok(n) => {
                    // SAFETY: `recv` initialised the first `n` bytes of the spare
                    // capacity (it reports only what it wrote), and `n <= room`, which
                    // is within the capacity.
                    unsafe { input.set_len(len + n) };
                    handler.received(n, local);
                    progress = true;
                    if n < room && !self.hup {
                        // A short read: drained for now (a new edge says when not).
                        self.readable = false;
                    }
                }
                Err(e) if would_block(&e) => {
                    self.readable = false;
                    handler.read_blocked(local); // a buffer taken for nothing goes back
                }
                Err(e) if interrupted(&e) => {}
                Err(_) => {
                    self.readable = false;
                    handler.read_failed(local);
                    return Step::Done(true);
                }
            }
        }
        Step::Next(progress)
    }
}

impl Upstream {
    /// Whether the connection is made: `Ok(false)` while still connecting.
    fn connected(&mut self) -> io::Result<bool> {
        if let Some(e) = self.stream.take_error()? {
            return Err(e);
        }
        match self.stream.peer_addr() {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotConnected => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Whether nothing arrived since the last read: no byte, no end of stream. A
    /// readiness flag not yet used up is checked with a peek.
    fn is_quiet(&mut self) -> bool {
        if self.hup {
            return false;
        }
        if !self.readable {
            return true;
        }
        let mut byte = [MaybeUninit::uninit()];
        match SockRef::from(&self.stream).peek(&mut byte) {
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                self.readable = false;
                true
            }
            _ => false, // a byte, the end, or an error
        }
    }
}
