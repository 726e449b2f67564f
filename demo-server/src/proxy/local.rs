//! One event loop's proxy state ([`ProxyLocal`]), lent to its handlers, and the
//! upstream connections they let go ([`Released`]).

use std::sync::Arc;
use std::time::Instant;

use super::config::Proxy;
use super::handler::Forward;
use super::upstream::{Event, Exchange, IdleConns, RoundRobin};

/// An upstream connection a handler is done with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Released {
    /// The driver's key for the connection.
    pub key: usize,
    /// Its upstream.
    pub upstream: usize,
    /// How its exchange went: only a clean one is kept.
    pub exchange: Exchange,
}

/// One event loop's proxy state (local to its worker thread), lent to every handler
/// call: the clock, the round-robin cursor, the idle upstream connections, and the
/// connections handlers let go.
///
/// Connections are named by a key of the driver's choosing (the event loop's slab key
/// of the socket).
pub struct ProxyLocal {
    pub(super) proxy: Arc<Proxy>,
    pub(super) index: usize,
    /// The time, as the driver last read it (set it before each round of calls).
    pub now: Instant,
    pub(super) cursor: RoundRobin,
    pub(super) idle: IdleConns<usize>,
    pub(super) released: Vec<Released>,
    pub(super) closing: Vec<usize>,
    /// Exchange states handlers gave back, for the next requests to take. Boxed: a
    /// box moves between here and a handler as it is, never allocated again.
    #[allow(clippy::vec_box)]
    pub(super) spare: Vec<Box<Forward>>,
}

impl ProxyLocal {
    /// The shared proxy state.
    pub fn proxy(&self) -> &Proxy {
        &self.proxy
    }

    /// A connection a handler let go, for the driver to check (a socket that became
    /// readable is not clean, whatever the exchange says) and then [`park`](Self::park).
    pub fn next_released(&mut self) -> Option<Released> {
        self.released.pop()
    }

    /// Keeps a released connection idle for the next request to its upstream, if its
    /// exchange was clean and there is room; otherwise returns the key of a connection
    /// to close (it, or the least recently used idle one), counted as discarded.
    #[must_use = "a connection handed back must be closed"]
    pub fn park(&mut self, released: Released) -> Option<usize> {
        let closed = self
            .idle
            .put(released.upstream, released.key, released.exchange, self.now);
        if closed.is_some() {
            self.count(released.upstream, Event::Discarded);
        }
        closed
    }

    /// An idle connection to `upstream`, if one has not expired (expired ones go to
    /// [`next_closing`](Self::next_closing)).
    pub fn take_idle(&mut self, upstream: usize) -> Option<usize> {
        let (closing, now) = (&mut self.closing, self.now);
        let mut expired = 0;
        let key = self.idle.take(upstream, now, |key| {
            closing.push(key);
            expired += 1;
        });
        for _ in 0..expired {
            self.count(upstream, Event::Discarded);
        }
        key
    }

    /// Forgets the idle connection `key` to `upstream` (its socket said the upstream
    /// closed it or wrote to it while idle); returns whether it was idle. The caller
    /// closes it.
    pub fn remove_idle(&mut self, upstream: usize, key: usize) -> bool {
        let removed = self.idle.remove(upstream, |&k| k == key).is_some();
        if removed {
            self.count(upstream, Event::Discarded);
        }
        removed
    }

    /// A connection to close (given up by a handler, expired, evicted).
    pub fn next_closing(&mut self) -> Option<usize> {
        self.closing.pop()
    }

    /// Closes the idle connections that expired by `now` (through
    /// [`next_closing`](Self::next_closing)).
    pub fn expire(&mut self, now: Instant) {
        self.now = now;
        let mut expired = std::mem::take(&mut self.closing);
        self.idle.expire(now, |upstream, key| {
            expired.push(key);
            self.proxy
                .upstreams
                .count(self.index, upstream, Event::Discarded);
        });
        self.closing = expired;
    }

    /// Closes every idle connection (the worker is shutting down).
    pub fn drain_idle(&mut self) {
        let closing = &mut self.closing;
        self.idle.drain(|_, key| closing.push(key));
    }

    /// Counts `event` on `upstream`.
    pub(super) fn count(&self, upstream: usize, event: Event) {
        self.proxy.upstreams.count(self.index, upstream, event);
    }

    /// Closes `key`, an upstream connection a handler gives up.
    pub(super) fn discard(&mut self, upstream: usize, key: usize) {
        self.count(upstream, Event::Discarded);
        self.closing.push(key);
    }
}

impl std::fmt::Debug for ProxyLocal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyLocal")
            .field("index", &self.index)
            .field("idle", &self.idle)
            .finish_non_exhaustive()
    }
}
