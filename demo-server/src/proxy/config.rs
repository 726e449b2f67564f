//! The proxy's settings ([`ProxyConfig`]) and what the event loops of a proxy share
//! ([`Proxy`]: the upstreams, the copy buffers).

use std::sync::Arc;
use std::time::{Duration, Instant};

use recycle_pool::Pool;
use recycle_pool::io::BufferPool;

use super::handler::COPY_BUF_SIZE;
use super::local::ProxyLocal;
use super::upstream::{HealthPolicy, IdleConns, Upstreams};

/// The proxy's settings, as the command line gives them.
#[derive(Clone, Debug)]
pub struct ProxyConfig {
    /// Where requests go, round robin.
    pub upstreams: Vec<std::net::SocketAddr>,
    /// Connect plus time to a complete response head (504 past it); during a response
    /// body, the longest the upstream may send nothing while the proxy has room for it
    /// (then the response is cut off). Never applied while the proxy waits on the
    /// client (see "Timeouts" in `docs/design.md`).
    pub upstream_timeout: Duration,
    /// Most idle keep-alive connections kept per upstream per worker (0: none; each
    /// request then says `Connection: close` upstream).
    pub upstream_idle: usize,
    /// How long an idle upstream connection is kept.
    pub upstream_idle_timeout: Duration,
    /// Passive health checks.
    pub health: HealthPolicy,
    /// Copy bodies through the library's pool of 32 KiB buffers (`false`: a fresh
    /// buffer each time an exchange takes one, at least one per request, to measure what
    /// the pool saves).
    pub buffer_pool: bool,
    /// How long a tunnel (a WebSocket, or another protocol a `101` switched to) may
    /// stay idle, nothing moving either way, before both connections are closed.
    pub tunnel_idle_timeout: Duration,
    /// Keep the clients' `Forwarded`, `X-Forwarded-*` and `X-Real-IP` fields and append
    /// to them, for a proxy whose clients are proxies it trusts (`false`: remove them
    /// and send only the proxy's own; see
    /// [`headers`](super::headers#forwarding-fields)).
    pub trust_forwarded: bool,
}

/// Default [`ProxyConfig::tunnel_idle_timeout`]: 10 minutes. Long enough for an
/// application that pings every minute or few (browsers do not ping on their own; a
/// WebSocket server usually does, every 30 to 60 s), short enough that a peer gone
/// without a FIN does not hold two sockets for long. nginx closes at its
/// `proxy_read_timeout` (60 s by default), which a WebSocket without pings outlives.
pub const DEFAULT_TUNNEL_IDLE_TIMEOUT: Duration = Duration::from_secs(600);

/// Most idle connections a worker keeps per upstream ([`ProxyConfig::upstream_idle`]).
pub const MAX_UPSTREAM_IDLE: usize = 65_536;

impl ProxyConfig {
    /// Checks the settings, as [`Limits::check`](crate::state::Limits::check) checks
    /// the server's: at least one upstream, none on port 0 and none twice, timeouts in
    /// [`MIN_TIMEOUT`](crate::state::MIN_TIMEOUT)..=[`MAX_TIMEOUT`](crate::state::MAX_TIMEOUT),
    /// at most [`MAX_UPSTREAM_IDLE`] idle connections per upstream.
    ///
    /// # Errors
    ///
    /// A message naming the first setting out of range.
    pub fn check(&self) -> Result<(), String> {
        use crate::state::{MIN_TIMEOUT, check_timeout};
        if self.upstreams.is_empty() {
            return Err("at least one upstream is needed".into());
        }
        if let Some(addr) = self.upstreams.iter().find(|a| a.port() == 0) {
            return Err(format!("upstream {addr} has no port"));
        }
        // Each upstream is one series in `/metrics`, labelled by its address.
        for (i, addr) in self.upstreams.iter().enumerate() {
            if self.upstreams[..i].contains(addr) {
                return Err(format!("upstream {addr} is given twice"));
            }
        }
        for (name, timeout) in [
            ("upstream_timeout", self.upstream_timeout),
            ("upstream_idle_timeout", self.upstream_idle_timeout),
            ("fail_timeout", self.health.fail_timeout),
            ("tunnel_idle_timeout", self.tunnel_idle_timeout),
        ] {
            check_timeout(timeout, MIN_TIMEOUT).map_err(|e| format!("{name} {e}"))?;
        }
        if self.upstream_idle > MAX_UPSTREAM_IDLE {
            return Err(format!("upstream_idle must be in 0..={MAX_UPSTREAM_IDLE}"));
        }
        Ok(())
    }
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            upstreams: Vec::new(),
            upstream_timeout: Duration::from_secs(30),
            upstream_idle: 64,
            upstream_idle_timeout: Duration::from_secs(60),
            health: HealthPolicy::default(),
            buffer_pool: true,
            tunnel_idle_timeout: DEFAULT_TUNNEL_IDLE_TIMEOUT,
            trust_forwarded: false,
        }
    }
}

/// What the workers of a proxy share: the upstreams (health, counters), the copy
/// buffer pool, the settings.
pub struct Proxy {
    /// The upstreams, their health and counters.
    pub upstreams: Upstreams,
    /// The 32 KiB copy buffers (Go's `ReverseProxy.BufferPool`).
    pub buffers: Pool<Vec<u8>>,
    pub(super) config: ProxyConfig,
}

/// `--no-buffer-pool`: a fresh buffer each time an exchange takes one (for the request
/// head, a piece of body, a read of the response), dropped when it is given back (Go's
/// `ReverseProxy` without a `BufferPool`).
struct Fresh;

impl BufferPool for Fresh {
    fn get(&self) -> Vec<u8> {
        Vec::with_capacity(COPY_BUF_SIZE)
    }

    fn put(&self, buf: Vec<u8>) {
        drop(buf);
    }
}

impl Proxy {
    /// The shared state for `workers` workers.
    ///
    /// # Panics
    ///
    /// If `config.upstreams` is empty or `workers` is 0.
    pub fn new(config: ProxyConfig, workers: usize) -> Self {
        let upstreams = Upstreams::new(&config.upstreams, config.health, workers, Instant::now());
        let buffers = Pool::builder(|| Vec::with_capacity(COPY_BUF_SIZE))
            .max_capacity(COPY_BUF_SIZE)
            .max_idle(1024)
            .build();
        Self {
            upstreams,
            buffers,
            config,
        }
    }

    /// The settings.
    pub fn config(&self) -> &ProxyConfig {
        &self.config
    }

    /// The state of event loop `index` (its worker thread), lent to its handlers.
    pub fn local(self: &Arc<Self>, index: usize) -> ProxyLocal {
        ProxyLocal {
            proxy: Arc::clone(self),
            index,
            now: Instant::now(),
            cursor: self.upstreams.cursor(index),
            idle: IdleConns::new(
                self.upstreams.len(),
                self.config.upstream_idle,
                self.config.upstream_idle_timeout,
            ),
            released: Vec::with_capacity(8),
            closing: Vec::with_capacity(8),
            spare: Vec::new(),
        }
    }

    /// Where copy buffers come from: the pool, or fresh ones.
    pub(super) fn buffers(&self) -> &dyn BufferPool {
        if self.config.buffer_pool {
            &self.buffers
        } else {
            &Fresh
        }
    }
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("upstreams", &self.upstreams)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}
