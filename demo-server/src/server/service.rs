//! What a worker runs: a [`Service`] makes the [`Handler`] of each connection, and may
//! own sockets of its own (the proxy's upstream connections) in the worker's `Poll`.
//!
//! The worker's loop is the same for every service: accept, read, [`Conn::process`],
//! write, timers. A service that does its own I/O hooks into it at four points: after
//! each `process` ([`pump`](Service::pump), and once before the first round when the
//! event was on one of its sockets), on readiness events for its own tokens
//! ([`event`](Service::event)), on every sweep ([`tick`](Service::tick) and the
//! per-connection [`deadline`](Service::deadline)), and at shutdown. Every hook but
//! `handler` and `state` has a default that does nothing, so the demo routes pay for
//! none of it.
//!
//! [`Conn::process`]: crate::http::conn::Conn::process

use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use mio::Registry;
use mio::event::Event;

use crate::admin::Admin;
use crate::app::App;
use crate::http::conn::Handler;
use crate::proxy::handler::Proxy;
use crate::state::Shared;

/// The tokens a service registers its own sockets under have this bit set; the
/// worker's client connections use their slab key, below it.
pub(crate) const SERVICE_TOKEN: usize = 1 << (usize::BITS - 2);

/// What [`Service::pump`] moved, for the worker to decide whether to process the
/// connection again.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Pumped {
    /// The handler has something new to act on: bytes from the service's socket, its
    /// end or failure, a connection given or refused. Process the connection again.
    pub(crate) input: bool,
    /// Bytes went out to the service's socket: the handler has room again for its
    /// client's input, which matters if some is waiting.
    pub(crate) room: bool,
}

/// An application run by the workers: one [`Handler`] per connection and one
/// [`State`](Service::State) per worker.
pub(crate) trait Service<'a>: Copy + Send + Sync + 'a {
    /// The handler of one client connection.
    type Handler: Handler;
    /// One worker's state: the handler's [`Handler::Local`] and whatever I/O the
    /// service does itself.
    type State;

    /// Worker `index`'s state; `registry` is its `Poll`'s.
    fn state(self, index: usize, registry: &Registry) -> io::Result<Self::State>;

    /// The handler for a connection from `peer`.
    fn handler(self, peer: SocketAddr) -> Self::Handler;

    /// The part of `state` the handler is lent.
    fn local(state: &mut Self::State) -> &mut <Self::Handler as Handler>::Local;

    /// After `process` on client connection `key`: the service's own I/O for it.
    /// Returns what moved ([`Pumped`]); housekeeping that gives this handler nothing
    /// new to do (parking or closing connections others let go) is not progress.
    fn pump(
        state: &mut Self::State,
        key: usize,
        handler: &mut Self::Handler,
        now: Instant,
    ) -> Pumped {
        let _ = (state, key, handler, now);
        Pumped::default()
    }

    /// A readiness event for one of the service's own tokens (without
    /// [`SERVICE_TOKEN`]). Returns the client connection to drive, if any.
    fn event(state: &mut Self::State, token: usize, event: &Event) -> Option<usize> {
        let _ = (state, token, event);
        None
    }

    /// Bytes `handler` holds buffered itself (the proxy's copy buffers).
    fn buffered(handler: &Self::Handler) -> usize {
        let _ = handler;
        0
    }

    /// When the exchange of `handler` must have moved on, while it waits on the
    /// service's own source rather than on its client (the client's idle timeout does
    /// not apply meanwhile).
    fn deadline(handler: &Self::Handler) -> Option<Instant> {
        let _ = handler;
        None
    }

    /// The [`deadline`](Service::deadline) of `handler` passed.
    fn on_deadline(state: &mut Self::State, handler: &mut Self::Handler, now: Instant) {
        let _ = (state, handler, now);
    }

    /// Once per sweep: the service's own timers.
    fn tick(state: &mut Self::State, now: Instant) {
        let _ = (state, now);
    }

    /// The worker is shutting down: drop what is idle.
    fn shutdown(state: &mut Self::State) {
        let _ = state;
    }
}

/// `serve`: the demo routes.
#[derive(Clone, Copy)]
pub(crate) struct Serve<'a> {
    pub(crate) shared: &'a Shared,
}

impl<'a> Service<'a> for Serve<'a> {
    type Handler = App<'a>;
    type State = ();

    fn state(self, _: usize, _: &Registry) -> io::Result<()> {
        Ok(())
    }

    #[inline]
    fn handler(self, _: SocketAddr) -> App<'a> {
        App::new(self.shared)
    }

    #[inline]
    fn local(state: &mut ()) -> &mut () {
        state
    }
}

/// The proxy's admin listener: `/stats` and `/metrics`.
#[derive(Clone, Copy)]
pub(crate) struct AdminService<'a> {
    /// The proxy's client-side state (reported on).
    pub(crate) reported: &'a Shared,
    pub(crate) proxy: &'a Proxy,
}

impl<'a> Service<'a> for AdminService<'a> {
    type Handler = Admin<'a>;
    type State = ();

    fn state(self, _: usize, _: &Registry) -> io::Result<()> {
        Ok(())
    }

    fn handler(self, _: SocketAddr) -> Admin<'a> {
        Admin::new(self.reported, self.proxy)
    }

    fn local(state: &mut ()) -> &mut () {
        state
    }
}
