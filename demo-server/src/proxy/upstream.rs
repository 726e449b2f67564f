//! Upstreams: which one gets the next request, whether each is healthy, what happened
//! to their connections, and the idle keep-alive connections each worker keeps to them.
//!
//! - [`Upstreams`] is shared by all workers: round-robin choice ([`Upstreams::select`],
//!   with a [`RoundRobin`] cursor per worker), passive health checks as nginx does them
//!   ([`HealthPolicy`]: `max_fails` failed attempts within `fail_timeout` take an
//!   upstream out for `fail_timeout`; then one request probes it; when every upstream
//!   is out, `select` says `None` at once and the proxy answers 503; as in nginx, a
//!   single upstream is never taken out), and the counters
//!   that `/metrics` reports ([`UpstreamStats`]).
//! - [`IdleConns`] is one worker's idle keep-alive connections, per upstream: LIFO
//!   reuse (the most recently used connection is the likeliest still open and warm),
//!   at most `upstream_idle` per upstream (the least recently used is closed to make
//!   room, as nginx's `keepalive` does), expiry after `upstream_idle_timeout`, and the
//!   dirty-writer rule: a connection whose request was not fully sent or whose
//!   response was not read to its end is never kept ([`Exchange`]).
//!
//! Time is always an [`Instant`] passed in, so no test sleeps.
//!
//! # Why not `recycle_pool::Pool` for the idle connections
//!
//! [`Pool`](recycle_pool::Pool) has the right reuse hook ([`Recycle`](recycle_pool::Recycle)
//! returning `Discard` is the dirty rule) but the wrong shape for sockets in an event
//! loop:
//!
//! - **It moves objects between threads.** Its shared tier hands what one thread
//!   returned to another. A connection is registered in one worker's `Poll` under one
//!   of that worker's tokens; in another worker it would get no events, or another
//!   connection's. (`max_idle(0)` turns the shared tier off, but then the pool is a
//!   per-thread stack behind a `ThreadLocal` lookup and atomics that buy nothing here.)
//! - **A miss creates synchronously.** [`Pool::get`](recycle_pool::Pool::get) calls the
//!   create function on a miss and always returns an object. Connecting is
//!   non-blocking, can fail, and its failure counts against the upstream's health; the
//!   event loop needs "an idle connection or nothing".
//! - **It drops what it discards.** A discarded or expired connection must be handed
//!   back so the worker can deregister it from its `Poll` and free its token; the pool
//!   drops objects inside the hook or `trim`.
//! - **It has no clock and no lookup.** Idle connections expire after a timeout (`trim`
//!   frees after two calls, whatever their age), and one that the upstream closes while
//!   idle must be found and removed by its token when its socket reports it.
//! - **It is not keyed.** One pool per upstream would do, but together with the above
//!   nothing of `Pool` would be left in use.
//!
//! So [`IdleConns`] is a small per-worker structure that allocates only when it is
//! made, and the dirty rule is stated by the caller in an [`Exchange`] instead of a hook.
//!
//! # Examples
//!
//! ```
//! use std::time::{Duration, Instant};
//! use demo_server::proxy::upstream::{Event, Exchange, HealthPolicy, IdleConns, Upstreams};
//!
//! let start = Instant::now();
//! let addrs = ["127.0.0.1:8080".parse()?, "127.0.0.1:8081".parse()?];
//! let upstreams = Upstreams::new(&addrs, HealthPolicy::default(), 1, start);
//! let mut cursor = upstreams.cursor(0);
//! let mut idle: IdleConns<&str> = IdleConns::new(addrs.len(), 64, Duration::from_secs(60));
//!
//! let first = upstreams.select(&mut cursor, start).unwrap();
//! assert_eq!(upstreams.name(first), "127.0.0.1:8080");
//! let conn = idle.take(first, start, |_stale| {}).unwrap_or_else(|| {
//!     upstreams.count(0, first, Event::Opened); // connect...
//!     "connection"
//! });
//! // ...one request and its response later:
//! upstreams.record_success(first);
//! let done = Exchange { request_sent: true, response_read: true, keep_alive: true };
//! assert!(idle.put(first, conn, done, start).is_none(), "kept for the next request");
//! assert_eq!(upstreams.select(&mut cursor, start), Some(1), "round robin");
//! # Ok::<(), std::net::AddrParseError>(())
//! ```

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;

/// Passive health checking, as nginx's `max_fails` and `fail_timeout`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HealthPolicy {
    /// Failed attempts within `fail_timeout` that take an upstream out; 0 never does,
    /// nor does any number when there is only one upstream (as in nginx).
    pub max_fails: u32,
    /// The window in which failures count, and how long an upstream stays out.
    pub fail_timeout: Duration,
}

impl Default for HealthPolicy {
    /// `--max-fails 3 --fail-timeout 10s`.
    fn default() -> Self {
        Self {
            max_fails: 3,
            fail_timeout: Duration::from_secs(10),
        }
    }
}

/// Something that happened to an upstream's connections, for its counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A new connection was made (counted once established).
    Opened,
    /// A new connection could not be made: refused, unreachable, timed out while
    /// connecting, or a local error (out of file descriptors...).
    ConnectFailed,
    /// An idle connection was reused for a request.
    Reused,
    /// A connection was closed instead of kept idle: dirty, not keep-alive, no room,
    /// expired, or closed by the upstream while idle.
    Discarded,
    /// An attempt on this upstream failed and the request was retried (on another
    /// connection, to this upstream or another).
    Retried,
    /// The client went away (or its request body broke off) before the response head
    /// (nginx's 499): the connection was closed, with no mark against the upstream.
    ClientAborted,
    /// The upstream switched protocols (a `101` to a request that asked for it): the
    /// connections became a tunnel.
    Upgraded,
    /// A tunnel ended (both sides done, a reset, the idle timeout, or the client gone).
    TunnelClosed,
}

/// An upstream's health, as `/metrics` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Taking requests.
    Up,
    /// Taken out by failures; after `fail_timeout` one request probes it, and a
    /// success brings it back up.
    Down,
}

impl State {
    /// The state as a label value: `"up"` or `"down"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            State::Up => "up",
            State::Down => "down",
        }
    }
}

/// A snapshot of one upstream's counters, summed over workers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct UpstreamStats {
    /// Connections made (established, not merely attempted).
    pub opened: u64,
    /// Connections that could not be made (refused, unreachable, timed out while
    /// connecting, local errors).
    pub connect_failures: u64,
    /// Requests sent on a reused idle connection.
    pub reused: u64,
    /// Connections closed instead of kept idle.
    pub discarded: u64,
    /// Requests retried after an attempt on this upstream failed.
    pub retries: u64,
    /// Failed attempts (refused, reset, timed out, malformed response), as counted
    /// against its health: neither local errors nor a pooled connection found closed.
    pub failures: u64,
    /// Requests whose client went away before the response head (nginx's 499).
    pub client_aborts: u64,
    /// Upgrades: `101` answers passed on, each starting a tunnel.
    pub upgrades: u64,
    /// Tunnels ended ([`tunnels_open`](Self::tunnels_open) are the rest).
    pub tunnels_closed: u64,
}

impl UpstreamStats {
    /// Tunnels open now: upgrades less tunnels closed. Saturating, since the counters
    /// are read one after the other while workers update them: a snapshot may see a
    /// tunnel's close before its upgrade.
    pub fn tunnels_open(&self) -> u64 {
        self.upgrades.saturating_sub(self.tunnels_closed)
    }
}

/// One worker's round-robin position; make it with [`Upstreams::cursor`].
#[derive(Clone, Debug)]
pub struct RoundRobin {
    next: usize,
}

// === impl Upstreams ===

/// The upstreams, their health and counters, shared by all workers.
///
/// Upstreams are named by their index (`0..len()`), as [`select`](Self::select) hands
/// them out, and workers by theirs (`0..workers`); the methods that take either panic
/// on one out of range, which only a bug in the caller can cause.
pub struct Upstreams {
    list: Box<[Upstream]>,
    policy: HealthPolicy,
    /// Times are kept as nanoseconds since this instant, so they fit an atomic.
    base: Instant,
}

struct Upstream {
    addr: SocketAddr,
    /// `addr` as text, made once: the metrics label and the fallback `Host`.
    name: Box<str>,
    /// 0 while up; otherwise down, and skipped until `skip_until - 1` (nanoseconds
    /// since `base`). Read lock-free by every selection; written under `window` by
    /// failures and successes, and by one compare-exchange when a probe is let through.
    skip_until: AtomicU64,
    /// `window.fails`, readable without the lock: a success after no failure (the
    /// common case) only reads shared memory, it writes nothing.
    fails: AtomicU32,
    window: Mutex<Window>,
    /// One slot per worker, each on its own cache line: no worker ever waits on
    /// another's counter.
    counters: Box<[CachePadded<Counters>]>,
}

/// The failures being counted against `max_fails`.
#[derive(Default)]
struct Window {
    /// Failures since `start`.
    fails: u32,
    /// When the first of them happened (nanoseconds since `base`).
    start: u64,
}

#[derive(Default)]
struct Counters {
    opened: AtomicU64,
    connect_failures: AtomicU64,
    reused: AtomicU64,
    discarded: AtomicU64,
    retries: AtomicU64,
    failures: AtomicU64,
    client_aborts: AtomicU64,
    upgrades: AtomicU64,
    tunnels_closed: AtomicU64,
}

impl Upstreams {
    /// The upstreams at `addrs`, all up, with counters for `workers` workers; `now` is
    /// the clock's origin (any instant before the first call will do).
    ///
    /// # Panics
    ///
    /// If `addrs` is empty or `workers` is 0.
    pub fn new(addrs: &[SocketAddr], policy: HealthPolicy, workers: usize, now: Instant) -> Self {
        assert!(!addrs.is_empty(), "at least one upstream is needed");
        assert!(workers > 0, "at least one worker is needed");
        let list = addrs
            .iter()
            .map(|&addr| Upstream {
                addr,
                name: addr.to_string().into_boxed_str(),
                skip_until: AtomicU64::new(0),
                fails: AtomicU32::new(0),
                window: Mutex::new(Window::default()),
                counters: (0..workers).map(|_| CachePadded::default()).collect(),
            })
            .collect();
        Self {
            list,
            policy,
            base: now,
        }
    }

    /// Number of upstreams (at least 1).
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Always `false`: there is at least one upstream.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The address of upstream `i`.
    pub fn addr(&self, i: usize) -> SocketAddr {
        self.list[i].addr
    }

    /// The address of upstream `i` as text (`127.0.0.1:8080`, `[::1]:8080`).
    pub fn name(&self, i: usize) -> &str {
        &self.list[i].name
    }

    /// The health policy.
    pub fn policy(&self) -> HealthPolicy {
        self.policy
    }

    /// A round-robin cursor for `worker`, starting at a different upstream for each
    /// worker so that their first requests spread out.
    pub fn cursor(&self, worker: usize) -> RoundRobin {
        RoundRobin {
            next: worker % self.list.len(),
        }
    }

    /// The upstream for the next request: the next one in round-robin order that is
    /// up, or down but past its `fail_timeout` (then this request is its probe, and no
    /// other request goes to it for another `fail_timeout` unless the probe succeeds).
    /// `None` if every upstream is out: answer 503 without waiting.
    pub fn select(&self, cursor: &mut RoundRobin, now: Instant) -> Option<usize> {
        let n = self.list.len();
        for k in 0..n {
            let i = (cursor.next + k) % n;
            if self.admit(&self.list[i], now) {
                cursor.next = (i + 1) % n;
                return Some(i);
            }
        }
        None
    }

    /// Whether `upstream` may take a request at `now` (read as nanoseconds only for
    /// an upstream that was taken out: an `Instant` subtraction cost every request
    /// some 60 instructions).
    #[inline]
    fn admit(&self, upstream: &Upstream, now: Instant) -> bool {
        let skip_until = upstream.skip_until.load(Relaxed);
        if skip_until == 0 {
            return true;
        }
        let now = self.nanos(now);
        if now < skip_until - 1 {
            return false;
        }
        // Past the window: let exactly one request through to probe it, and skip it for
        // another window meanwhile (nginx moves `checked` the same way). Of workers
        // racing here, the one whose exchange succeeds is the prober.
        let next = self.skip_until(now);
        upstream
            .skip_until
            .compare_exchange(skip_until, next, Relaxed, Relaxed)
            .is_ok()
    }

    /// Records a failed attempt on upstream `i` (refused, reset, timed out before a
    /// response head, malformed response). Returns whether this failure took it out:
    /// the `max_fails`-th within `fail_timeout`, or a failed probe; never when it is the
    /// only upstream.
    pub fn record_failure(&self, worker: usize, i: usize, now: Instant) -> bool {
        let upstream = &self.list[i];
        upstream.counters[worker].failures.fetch_add(1, Relaxed);
        if self.policy.max_fails == 0 || self.list.len() == 1 {
            // The only upstream is never taken out (nginx ignores `max_fails` for a
            // single server): out, it would turn every request into a 503 for
            // `fail_timeout`, however healthy it was meanwhile.
            return false;
        }
        let now = self.nanos(now);
        let mut window = upstream
            .window
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let window_len = duration_nanos(self.policy.fail_timeout);
        if window.fails == 0 || now.saturating_sub(window.start) > window_len {
            *window = Window {
                fails: 0,
                start: now,
            };
        }
        window.fails = window.fails.saturating_add(1);
        upstream.fails.store(window.fails, Relaxed);
        let probing = upstream.skip_until.load(Relaxed) != 0;
        if probing || window.fails >= self.policy.max_fails {
            upstream.skip_until.store(self.skip_until(now), Relaxed);
            return true;
        }
        false
    }

    /// Records a successful exchange with upstream `i` (a complete response head):
    /// its failures are forgotten and, if it was down, it is up again.
    pub fn record_success(&self, i: usize) {
        let upstream = &self.list[i];
        if upstream.skip_until.load(Relaxed) == 0 && upstream.fails.load(Relaxed) == 0 {
            return; // the common case: nothing to forget, nothing written
        }
        let mut window = upstream
            .window
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        window.fails = 0;
        upstream.fails.store(0, Relaxed);
        upstream.skip_until.store(0, Relaxed);
    }

    /// Counts `event` on upstream `i` in `worker`'s slot.
    pub fn count(&self, worker: usize, i: usize, event: Event) {
        let counters = &self.list[i].counters[worker];
        let counter = match event {
            Event::Opened => &counters.opened,
            Event::ConnectFailed => &counters.connect_failures,
            Event::Reused => &counters.reused,
            Event::Discarded => &counters.discarded,
            Event::Retried => &counters.retries,
            Event::ClientAborted => &counters.client_aborts,
            Event::Upgraded => &counters.upgrades,
            Event::TunnelClosed => &counters.tunnels_closed,
        };
        counter.fetch_add(1, Relaxed);
    }

    /// Upstream `i`'s counters, summed over workers.
    pub fn stats(&self, i: usize) -> UpstreamStats {
        self.list[i]
            .counters
            .iter()
            .fold(UpstreamStats::default(), |sum, c| UpstreamStats {
                opened: sum.opened + c.opened.load(Relaxed),
                connect_failures: sum.connect_failures + c.connect_failures.load(Relaxed),
                reused: sum.reused + c.reused.load(Relaxed),
                discarded: sum.discarded + c.discarded.load(Relaxed),
                retries: sum.retries + c.retries.load(Relaxed),
                failures: sum.failures + c.failures.load(Relaxed),
                client_aborts: sum.client_aborts + c.client_aborts.load(Relaxed),
                upgrades: sum.upgrades + c.upgrades.load(Relaxed),
                tunnels_closed: sum.tunnels_closed + c.tunnels_closed.load(Relaxed),
            })
    }

    /// Upstream `i`'s health: down from the failure that took it out until a success.
    pub fn state(&self, i: usize) -> State {
        if self.list[i].skip_until.load(Relaxed) == 0 {
            State::Up
        } else {
            State::Down
        }
    }

    fn nanos(&self, now: Instant) -> u64 {
        duration_nanos(now.saturating_duration_since(self.base))
    }

    /// `skip_until` for an upstream taken out at `now`.
    fn skip_until(&self, now: u64) -> u64 {
        now.saturating_add(duration_nanos(self.policy.fail_timeout))
            .saturating_add(1)
            .min(u64::MAX - 1)
    }
}

impl std::fmt::Debug for Upstreams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.list.iter().map(|u| &u.name))
            .finish()
    }
}

fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

// === impl IdleConns ===

/// What the caller knows about the exchange that just ended on an upstream connection:
/// all three must hold for the connection to be kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exchange {
    /// Every byte of the request, head and body, was written to the socket.
    pub request_sent: bool,
    /// The response was read to its end
    /// ([`ResponseBodyReader::is_done`](crate::http::response::ResponseBodyReader::is_done)) and
    /// nothing arrived after it.
    pub response_read: bool,
    /// Both sides allow another request: the response's `keep_alive`, and the proxy
    /// did not send `Connection: close`.
    pub keep_alive: bool,
}

impl Exchange {
    /// Whether a connection that carried this exchange may carry another.
    pub fn is_clean(&self) -> bool {
        self.request_sent && self.response_read && self.keep_alive
    }
}

/// One worker's idle keep-alive connections, per upstream, generic over what a
/// connection is (the event loop stores its socket and token).
///
/// Every connection it lets go (dirty, evicted, expired) is handed back to the caller
/// to close, never dropped here: the caller must deregister it from its `Poll`.
pub struct IdleConns<C> {
    /// Per upstream, oldest first. INVARIANT: each holds at most `max_idle` entries, in
    /// the order they were put (so their `since` never decreases).
    idle: Box<[VecDeque<Idle<C>>]>,
    max_idle: usize,
    timeout: Duration,
}

struct Idle<C> {
    conn: C,
    since: Instant,
}

impl<C> IdleConns<C> {
    /// Room for `max_idle` idle connections to each of `upstreams` upstreams, made now
    /// so that keeping and reusing connections never allocates; each expires after
    /// `timeout` idle.
    pub fn new(upstreams: usize, max_idle: usize, timeout: Duration) -> Self {
        Self {
            idle: (0..upstreams)
                .map(|_| VecDeque::with_capacity(max_idle))
                .collect(),
            max_idle,
            timeout,
        }
    }

    /// The most recently idled connection to `upstream` that has not expired at `now`,
    /// if any. Expired ones met on the way are passed to `close`.
    pub fn take(&mut self, upstream: usize, now: Instant, mut close: impl FnMut(C)) -> Option<C> {
        let idle = self.idle.get_mut(upstream)?;
        let entry = idle.pop_back()?;
        if now.saturating_duration_since(entry.since) < self.timeout {
            return Some(entry.conn);
        }
        // The newest expired, so all of them have.
        close(entry.conn);
        idle.drain(..).for_each(|e| close(e.conn));
        None
    }

    /// Offers `conn` to `upstream`'s idle set after `exchange`. Returns a connection for
    /// the caller to close: `conn` itself if the exchange was not clean (or no idle
    /// connection may be kept), or the least recently used one if the set was full.
    #[must_use = "a connection handed back must be closed"]
    pub fn put(&mut self, upstream: usize, conn: C, exchange: Exchange, now: Instant) -> Option<C> {
        let Some(idle) = self.idle.get_mut(upstream) else {
            return Some(conn);
        };
        if !exchange.is_clean() || self.max_idle == 0 {
            return Some(conn);
        }
        let evicted = if idle.len() == self.max_idle {
            idle.pop_front().map(|e| e.conn)
        } else {
            None
        };
        idle.push_back(Idle { conn, since: now });
        evicted
    }

    /// Removes and returns the idle connection to `upstream` that `is_it` picks (one
    /// the upstream closed or wrote to while idle: its socket said so).
    pub fn remove(&mut self, upstream: usize, mut is_it: impl FnMut(&C) -> bool) -> Option<C> {
        let idle = self.idle.get_mut(upstream)?;
        let at = idle.iter().position(|e| is_it(&e.conn))?;
        idle.remove(at).map(|e| e.conn)
    }

    /// Passes every connection idle for `timeout` or longer at `now` to `close`, each
    /// with its upstream.
    pub fn expire(&mut self, now: Instant, mut close: impl FnMut(usize, C)) {
        for (upstream, idle) in self.idle.iter_mut().enumerate() {
            while idle
                .front()
                .is_some_and(|e| now.saturating_duration_since(e.since) >= self.timeout)
            {
                let entry = idle.pop_front().expect("checked above");
                close(upstream, entry.conn);
            }
        }
    }

    /// When the next connection expires, for the event loop's timer.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.idle
            .iter()
            .filter_map(|idle| idle.front())
            .map(|e| e.since + self.timeout)
            .min()
    }

    /// Idle connections to `upstream` right now.
    pub fn len(&self, upstream: usize) -> usize {
        self.idle.get(upstream).map_or(0, VecDeque::len)
    }

    /// Whether no connection to any upstream is idle.
    pub fn is_empty(&self) -> bool {
        self.idle.iter().all(VecDeque::is_empty)
    }

    /// Passes every idle connection to `close` (the worker is shutting down).
    pub fn drain(&mut self, mut close: impl FnMut(usize, C)) {
        for (upstream, idle) in self.idle.iter_mut().enumerate() {
            idle.drain(..).for_each(|e| close(upstream, e.conn));
        }
    }
}

impl<C> std::fmt::Debug for IdleConns<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdleConns")
            .field(
                "idle",
                &self.idle.iter().map(VecDeque::len).collect::<Vec<_>>(),
            )
            .field("max_idle", &self.max_idle)
            .field("timeout", &self.timeout)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    fn upstreams(n: u16, max_fails: u32) -> (Upstreams, Instant) {
        let start = Instant::now();
        let addrs: Vec<SocketAddr> = (0..n)
            .map(|i| SocketAddr::from(([127, 0, 0, 1], 8080 + i)))
            .collect();
        let policy = HealthPolicy {
            max_fails,
            fail_timeout: 10 * SEC,
        };
        (Upstreams::new(&addrs, policy, 2, start), start)
    }

    fn picks(u: &Upstreams, cursor: &mut RoundRobin, now: Instant, n: usize) -> Vec<Option<usize>> {
        (0..n).map(|_| u.select(cursor, now)).collect()
    }

    #[test]
    fn round_robin_per_worker() {
        let (u, t) = upstreams(3, 3);
        assert_eq!(u.name(2), "127.0.0.1:8082");
        let mut a = u.cursor(0);
        let mut b = u.cursor(1);
        assert_eq!(
            picks(&u, &mut a, t, 4),
            [Some(0), Some(1), Some(2), Some(0)]
        );
        assert_eq!(
            picks(&u, &mut b, t, 4),
            [Some(1), Some(2), Some(0), Some(1)]
        );
    }

    #[test]
    fn max_fails_within_fail_timeout_takes_an_upstream_out_for_fail_timeout() {
        let (u, t) = upstreams(2, 3);
        let mut c = u.cursor(0);
        assert!(!u.record_failure(0, 0, t));
        assert!(
            !u.record_failure(1, 0, t + 9 * SEC),
            "another worker's failure counts too"
        );
        assert_eq!(u.state(0), State::Up);
        assert!(
            u.record_failure(0, 0, t + 10 * SEC),
            "third within the window"
        );
        assert_eq!(u.state(0), State::Down);
        let down_at = t + 10 * SEC;
        assert_eq!(picks(&u, &mut c, down_at, 3), [Some(1); 3], "skipped");
        assert_eq!(
            picks(&u, &mut c, down_at + 10 * SEC - Duration::from_nanos(1), 1),
            [Some(1)]
        );
        // Past fail_timeout: one request probes it, the others keep going elsewhere.
        let later = down_at + 10 * SEC;
        assert_eq!(picks(&u, &mut c, later, 3), [Some(0), Some(1), Some(1)]);
        assert_eq!(u.stats(0).failures, 3);
    }

    #[test]
    fn failures_spread_wider_than_fail_timeout_do_not_add_up() {
        let (u, t) = upstreams(2, 2);
        assert!(!u.record_failure(0, 0, t));
        assert!(!u.record_failure(0, 0, t + 11 * SEC), "a new window starts");
        assert!(u.record_failure(0, 0, t + 12 * SEC));
        // And a success in between forgets them.
        let (u, t) = upstreams(2, 2);
        assert!(!u.record_failure(0, 0, t));
        u.record_success(0);
        assert!(!u.record_failure(0, 0, t + SEC));
        assert_eq!(u.state(0), State::Up);
    }

    #[test]
    fn a_probe_that_fails_takes_it_out_again_and_one_that_succeeds_brings_it_back() {
        let (u, t) = upstreams(2, 2);
        let mut c = u.cursor(0);
        u.record_failure(0, 0, t);
        assert!(u.record_failure(0, 0, t));
        let probe_at = t + 10 * SEC;
        assert_eq!(u.select(&mut c, probe_at), Some(0));
        assert!(
            u.record_failure(0, 0, probe_at + SEC),
            "one failed probe is enough"
        );
        assert_eq!(
            picks(&u, &mut c, probe_at + 10 * SEC, 2),
            [Some(1), Some(1)]
        );
        // The next window: the probe succeeds.
        let probe_at = probe_at + 11 * SEC;
        assert_eq!(u.select(&mut c, probe_at), Some(0));
        u.record_success(0);
        assert_eq!(u.state(0), State::Up);
        assert_eq!(
            picks(&u, &mut c, probe_at, 4),
            [Some(1), Some(0), Some(1), Some(0)]
        );
        assert!(
            !u.record_failure(0, 0, probe_at),
            "its failures were forgotten"
        );
    }

    #[test]
    fn all_down_is_none_at_once() {
        let (u, t) = upstreams(2, 1);
        let mut c = u.cursor(0);
        assert!(u.record_failure(0, 0, t));
        assert!(u.record_failure(0, 1, t));
        assert_eq!(picks(&u, &mut c, t + 5 * SEC, 2), [None, None]);
        assert_eq!(u.select(&mut c, t + 10 * SEC), Some(0), "back to probing");
        assert_eq!(u.select(&mut c, t + 10 * SEC), Some(1));
        assert_eq!(u.select(&mut c, t + 10 * SEC), None, "one probe each");
    }

    #[test]
    fn max_fails_zero_never_takes_an_upstream_out() {
        let (u, t) = upstreams(1, 0);
        for _ in 0..10 {
            assert!(!u.record_failure(0, 0, t));
        }
        assert_eq!(u.select(&mut u.cursor(0), t), Some(0));
        assert_eq!(u.stats(0).failures, 10, "still counted");
    }

    #[test]
    fn a_single_upstream_is_never_taken_out() {
        let (u, t) = upstreams(1, 1);
        for _ in 0..10 {
            assert!(!u.record_failure(0, 0, t));
        }
        assert_eq!(u.state(0), State::Up);
        assert_eq!(u.select(&mut u.cursor(0), t), Some(0));
        assert_eq!(u.stats(0).failures, 10, "still counted");
    }

    #[test]
    fn exactly_one_probe_among_racing_workers() {
        for _ in 0..200 {
            let (u, t) = upstreams(2, 1);
            u.record_failure(0, 0, t);
            let at = t + 10 * SEC;
            let admitted: usize = std::thread::scope(|s| {
                let threads: Vec<_> = (0..2)
                    .map(|w| {
                        let u = &u;
                        s.spawn(move || {
                            let picked = picks(u, &mut u.cursor(w), at, 3);
                            picked.iter().filter(|&&p| p == Some(0)).count()
                        })
                    })
                    .collect();
                threads.into_iter().map(|h| h.join().unwrap()).sum()
            });
            assert_eq!(admitted, 1);
        }
    }

    #[test]
    fn counters_sum_over_workers() {
        let (u, t) = upstreams(2, 3);
        u.count(0, 1, Event::Opened);
        u.count(1, 1, Event::Opened);
        u.count(1, 1, Event::Reused);
        u.count(0, 1, Event::Discarded);
        u.count(1, 1, Event::Retried);
        u.record_failure(1, 1, t);
        let stats = u.stats(1);
        assert_eq!(
            (
                stats.opened,
                stats.reused,
                stats.discarded,
                stats.retries,
                stats.failures
            ),
            (2, 1, 1, 1, 1)
        );
        assert_eq!(u.stats(0), UpstreamStats::default());
    }

    const CLEAN: Exchange = Exchange {
        request_sent: true,
        response_read: true,
        keep_alive: true,
    };

    #[test]
    fn idle_connections_are_reused_lifo_per_upstream() {
        let t = Instant::now();
        let mut idle = IdleConns::new(2, 4, 60 * SEC);
        for conn in ["a", "b", "c"] {
            assert_eq!(idle.put(0, conn, CLEAN, t), None);
        }
        assert_eq!(idle.put(1, "other", CLEAN, t), None);
        let mut closed = Vec::new();
        assert_eq!(idle.take(0, t + SEC, |c| closed.push(c)), Some("c"));
        assert_eq!(idle.take(0, t + SEC, |c| closed.push(c)), Some("b"));
        assert_eq!(idle.take(1, t + SEC, |c| closed.push(c)), Some("other"));
        assert_eq!(idle.take(1, t + SEC, |c| closed.push(c)), None);
        assert_eq!((idle.len(0), idle.len(1)), (1, 0));
        assert!(closed.is_empty());
        assert_eq!(idle.take(7, t, |_| {}), None, "no such upstream");
    }

    #[test]
    fn dirty_connections_are_never_kept() {
        let t = Instant::now();
        let mut idle = IdleConns::new(1, 4, 60 * SEC);
        for dirty in [
            Exchange {
                request_sent: false,
                ..CLEAN
            },
            Exchange {
                response_read: false,
                ..CLEAN
            },
            Exchange {
                keep_alive: false,
                ..CLEAN
            },
        ] {
            assert_eq!(idle.put(0, "dirty", dirty, t), Some("dirty"), "{dirty:?}");
        }
        assert!(idle.is_empty());
        let mut none = IdleConns::new(1, 0, 60 * SEC);
        assert_eq!(
            none.put(0, "clean", CLEAN, t),
            Some("clean"),
            "upstream_idle 0 keeps none"
        );
    }

    #[test]
    fn a_full_set_closes_the_least_recently_used() {
        let t = Instant::now();
        let mut idle = IdleConns::new(1, 2, 60 * SEC);
        assert_eq!(idle.put(0, "a", CLEAN, t), None);
        assert_eq!(idle.put(0, "b", CLEAN, t), None);
        assert_eq!(idle.put(0, "c", CLEAN, t), Some("a"));
        assert_eq!(idle.len(0), 2);
    }

    #[test]
    fn idle_connections_expire() {
        let t = Instant::now();
        let mut idle = IdleConns::new(2, 4, 10 * SEC);
        assert_eq!(idle.put(0, "old", CLEAN, t), None);
        assert_eq!(idle.put(1, "other", CLEAN, t + 3 * SEC), None);
        assert_eq!(idle.put(0, "new", CLEAN, t + 5 * SEC), None);
        assert_eq!(idle.next_expiry(), Some(t + 10 * SEC));
        let mut closed = Vec::new();
        idle.expire(t + 10 * SEC - Duration::from_nanos(1), |u, c| {
            closed.push((u, c))
        });
        assert!(closed.is_empty());
        idle.expire(t + 13 * SEC, |u, c| closed.push((u, c)));
        assert_eq!(closed, [(0, "old"), (1, "other")]);
        assert_eq!(idle.next_expiry(), Some(t + 15 * SEC));
        // take() finds the newest expired: it and everything older go.
        assert_eq!(idle.put(0, "newer", CLEAN, t + 6 * SEC), None);
        let mut closed = Vec::new();
        assert_eq!(idle.take(0, t + 16 * SEC, |c| closed.push(c)), None);
        assert_eq!(closed, ["newer", "new"]);
        assert!(idle.is_empty());
        assert_eq!(idle.next_expiry(), None);
    }

    #[test]
    fn remove_and_drain_hand_connections_back() {
        let t = Instant::now();
        let mut idle = IdleConns::new(2, 4, 10 * SEC);
        for (u, c) in [(0, 1), (0, 2), (1, 3), (0, 4)] {
            assert_eq!(idle.put(u, c, CLEAN, t), None);
        }
        assert_eq!(idle.remove(0, |&c| c == 2), Some(2));
        assert_eq!(idle.remove(0, |&c| c == 3), None, "3 is idle to upstream 1");
        let mut closed = Vec::new();
        idle.drain(|u, c| closed.push((u, c)));
        assert_eq!(closed, [(0, 1), (0, 4), (1, 3)]);
        assert!(idle.is_empty());
    }
}
