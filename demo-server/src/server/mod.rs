//! The mio event loop: one `Poll` per worker thread, each with its own `SO_REUSEPORT`
//! listener, connections in a `Slab`.
//!
//! # Timeouts
//!
//! Deadlines live on the connections (header, idle, write and linger, whichever
//! applies to the connection's state). Each worker sweeps its slab once per
//! [`TICK`]: O(open connections) per tick, no allocation and no stale timer entries,
//! which is cheaper than a timer wheel below some 10^5 connections per worker.
//!
//! # Shutdown
//!
//! [`Handle::shutdown`] (wired to SIGINT and SIGTERM by the binary) makes every worker
//! stop accepting, close its idle connections, finish the responses in flight (each
//! then says `Connection: close`) and exit once none is left or the shutdown timeout
//! passed.
//!
//! # Busy addresses
//!
//! The workers of one server share its port through `SO_REUSEPORT`, but a second
//! server must not join them: [`Server::bind`] refuses an address in use
//! (`AddrInUse`), in two steps.
//!
//! 1. A lock per TCP port, shared by every demo-server on the machine: a Unix socket
//!    bound to the abstract name `recycle-demo-server/tcp/{port}` (Linux). Binding a
//!    name is atomic, so of several servers starting on one port at the same moment
//!    exactly one gets it; and the name dies with its socket, so with the process
//!    however it ends (no stale lock file). It is per port, not per address, because
//!    any two addresses on one port may conflict (a wildcard and a specific address,
//!    IPv4 and dual-stack IPv6): two demo-servers on one port of two specific
//!    addresses are refused too.
//! 2. A probe for any other program on the address: a bind without `SO_REUSEPORT`,
//!    let go at once, fails if any socket listens there.
//!
//! Limits: abstract names live per network namespace and carry no permissions, so a
//! local program holding the name keeps the server from starting (as if the port were
//! in use); and a program other than a demo-server that binds the port with
//! `SO_REUSEPORT`, under the same user, between the probe and the workers' binds still
//! shares it. Elsewhere than Linux there is no lock, only the probe.

mod event_loop;
mod service;
mod socket;
mod tick;
mod upstream_io;

use std::io;
use std::net::SocketAddr;
use std::os::unix::net::UnixDatagram;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use crate::proxy::handler::{Proxy, ProxyConfig};
use crate::state::{Limits, MAX_THREADS, Shared, check_timeout};

/// How often each worker checks deadlines and the shutdown flag.
pub const TICK: Duration = Duration::from_millis(100);

/// How the server runs.
#[derive(Clone, Debug)]
pub struct Config {
    /// Address to listen on.
    pub addr: SocketAddr,
    /// Worker threads, each with its own listener and event loop.
    pub threads: usize,
    /// Connection limits.
    pub limits: Limits,
    /// How long in-flight responses may take to finish after shutdown begins.
    pub shutdown_timeout: Duration,
    /// Log each request at `info` under the `access` target.
    pub access_log: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            threads: default_threads(),
            limits: Limits::default(),
            shutdown_timeout: Duration::from_secs(10),
            access_log: false,
        }
    }
}

/// One worker per core (at most [`MAX_THREADS`]).
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_THREADS))
}

/// A bound server, ready to [`run`](Server::run).
pub struct Server {
    listeners: Vec<mio::net::TcpListener>,
    /// Held while the server lives: see [`port_lock`].
    port_lock: Option<UnixDatagram>,
    shared: Arc<Shared>,
    config: Config,
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    /// `None` for `serve`.
    proxy: Option<Arc<Proxy>>,
    admin: Option<AdminListener>,
}

/// The proxy's admin listener, run by a worker of its own.
struct AdminListener {
    listener: mio::net::TcpListener,
    addr: SocketAddr,
    /// The admin connections' own state (they are not the proxy's clients).
    shared: Shared,
    config: Config,
}

/// Most connections the admin listener serves at once.
const ADMIN_CONNECTIONS: usize = 64;

/// Stops a running server.
#[derive(Clone, Debug)]
pub struct Handle {
    stop: Arc<AtomicBool>,
}

impl Handle {
    /// Begins a graceful shutdown (see the [module docs](self)).
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::Release);
    }

    /// The flag behind this handle, for `signal_hook::flag::register`.
    pub fn flag(&self) -> &Arc<AtomicBool> {
        &self.stop
    }
}

impl Server {
    /// Binds one `SO_REUSEPORT` listener per worker on `config.addr` (port 0 picks a
    /// free port, which all workers then share).
    ///
    /// The address must be free: `SO_REUSEPORT` lets this process's workers share it,
    /// but a second server on a busy address fails (`AddrInUse`) instead of silently
    /// splitting the traffic with the first, even when both start at the same moment
    /// (see [the module docs](self#busy-addresses) for how, and for what it cannot
    /// catch).
    ///
    /// # Errors
    ///
    /// A limit out of range (`InvalidInput`, see [`Limits::check`]), or the address
    /// cannot be bound (`AddrInUse` if another socket listens on it, or another server
    /// of this kind holds its port).
    pub fn bind(config: Config) -> io::Result<Server> {
        Self::bind_with(config, None)
    }

    /// Binds a reverse proxy to `proxy.upstreams` on `config.addr`, as
    /// [`bind`](Server::bind) binds the demo server.
    ///
    /// # Errors
    ///
    /// As [`bind`](Server::bind), and `InvalidInput` if there is no upstream or a
    /// proxy setting is out of range ([`ProxyConfig::check`]).
    pub fn proxy(config: Config, proxy: ProxyConfig) -> io::Result<Server> {
        proxy
            .check()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let workers = config.threads.clamp(1, MAX_THREADS);
        Self::bind_with(config, Some(Arc::new(Proxy::new(proxy, workers))))
    }

    fn bind_with(config: Config, proxy: Option<Arc<Proxy>>) -> io::Result<Server> {
        let invalid = |message: String| io::Error::new(io::ErrorKind::InvalidInput, message);
        config.limits.check().map_err(invalid)?;
        check_timeout(config.shutdown_timeout, Duration::ZERO)
            .map_err(|e| invalid(format!("shutdown_timeout {e}")))?;
        if !(1..=MAX_THREADS).contains(&config.threads) {
            return Err(invalid(format!("threads must be in 1..={MAX_THREADS}")));
        }
        // The lock first (of servers racing for the port, one gets it), then the probe
        // (for any other program on the address); a port 0 is known only after it.
        let mut port_lock = match config.addr.port() {
            0 => None,
            port => self::port_lock(port)?,
        };
        let addr = probe(config.addr)?;
        if port_lock.is_none() {
            port_lock = self::port_lock(addr.port())?;
        }
        let listeners = (0..config.threads)
            .map(|_| listener(addr))
            .collect::<io::Result<Vec<_>>>()?;
        let threads = config.threads;
        let shared = Arc::new(Shared::new(
            config.limits.clone(),
            threads,
            config.access_log,
        ));
        Ok(Server {
            listeners,
            port_lock,
            shared,
            config,
            addr,
            stop: Arc::new(AtomicBool::new(false)),
            proxy,
            admin: None,
        })
    }

    /// Adds the admin listener on `addr` (a proxy only): `GET /stats` and `GET
    /// /metrics` about the proxy, on a worker of its own.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a server that is not a proxy; the address cannot be bound
    /// (`AddrInUse` if another socket listens on it).
    pub fn with_admin(mut self, addr: SocketAddr) -> io::Result<Server> {
        if self.proxy.is_none() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "only a proxy has an admin listener",
            ));
        }
        let addr = probe(addr)?;
        let limits = Limits {
            max_connections: ADMIN_CONNECTIONS,
            ..Limits::default()
        };
        let config = Config {
            addr,
            threads: 1,
            limits: limits.clone(),
            shutdown_timeout: self.config.shutdown_timeout,
            access_log: false,
        };
        self.admin = Some(AdminListener {
            listener: listener(addr)?,
            addr,
            shared: Shared::new(limits, 1, false),
            config,
        });
        Ok(self)
    }

    /// The admin listener's address, if there is one.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(|a| a.addr)
    }

    /// The proxy's shared state (upstreams, copy buffers), if this is a proxy.
    pub fn proxy_state(&self) -> Option<&Arc<Proxy>> {
        self.proxy.as_ref()
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The state the workers share (pools, counters).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// A handle to stop the server from another thread.
    pub fn handle(&self) -> Handle {
        Handle {
            stop: Arc::clone(&self.stop),
        }
    }

    /// Runs the workers until shutdown.
    ///
    /// # Errors
    ///
    /// A worker's event loop failed (its `Poll` could not be created or polled).
    pub fn run(self) -> io::Result<()> {
        let Server {
            listeners,
            port_lock: _port_lock, // held until the workers are done
            shared,
            config,
            stop,
            proxy,
            admin,
            ..
        } = self;
        std::thread::scope(|scope| {
            let workers: Vec<_> = listeners
                .into_iter()
                .enumerate()
                .map(|(index, listener)| {
                    let (shared, config, stop) = (&*shared, &config, &*stop);
                    let proxy = proxy.as_ref();
                    std::thread::Builder::new()
                        .name(format!("worker-{index}"))
                        .spawn_scoped(scope, move || match proxy {
                            None => {
                                let service = service::Serve { shared };
                                event_loop::EventLoop::new(
                                    index, listener, service, shared, config, stop,
                                )?
                                .run()
                            }
                            Some(proxy) => {
                                let service = upstream_io::ProxyService { shared, proxy };
                                event_loop::EventLoop::new(
                                    index, listener, service, shared, config, stop,
                                )?
                                .run()
                            }
                        })
                })
                .collect::<io::Result<Vec<_>>>()?;
            let mut workers = workers;
            if let (Some(admin), Some(proxy)) = (admin, proxy.as_ref()) {
                let (shared, stop) = (&*shared, &*stop);
                let thread = std::thread::Builder::new()
                    .name("admin".into())
                    .spawn_scoped(scope, move || {
                        let AdminListener {
                            listener,
                            shared: own,
                            config,
                            ..
                        } = admin;
                        let service = service::AdminService {
                            reported: shared,
                            proxy,
                        };
                        event_loop::EventLoop::new(0, listener, service, &own, &config, stop)?.run()
                    })?;
                workers.push(thread);
            }
            let mut result = Ok(());
            for worker in workers {
                let outcome = worker
                    .join()
                    .unwrap_or_else(|_| Err(io::Error::other("worker panicked")));
                if result.is_ok() {
                    result = outcome;
                }
            }
            result
        })
    }
}

/// Takes the demo-servers' lock on TCP `port` (see the [module
/// docs](self#busy-addresses)), held while the returned socket lives; `AddrInUse` if
/// another server holds it. The [`probe`] alone cannot decide between servers starting
/// together: both probes can run before either server listens.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn port_lock(port: u16) -> io::Result<Option<UnixDatagram>> {
    #[cfg(target_os = "android")]
    use std::os::android::net::SocketAddrExt;
    #[cfg(target_os = "linux")]
    use std::os::linux::net::SocketAddrExt;

    let name = format!("recycle-demo-server/tcp/{port}");
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(&name)?;
    match UnixDatagram::bind_addr(&addr) {
        Ok(lock) => Ok(Some(lock)),
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("address already in use: another demo-server holds port {port} (@{name})"),
        )),
        Err(e) => Err(e),
    }
}

/// No abstract names here: the [`probe`] alone decides.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn port_lock(_port: u16) -> io::Result<Option<UnixDatagram>> {
    Ok(None)
}

/// Binds `addr` without `SO_REUSEPORT` and lets it go: fails with `AddrInUse` if any
/// socket listens there (with `SO_REUSEPORT` or not), and resolves port 0 to a free
/// port. Another process could take the address between this probe and the real binds;
/// it would then have to use `SO_REUSEPORT` itself, as only a deliberate sharer does
/// (another demo-server cannot: it would need the [`port_lock`] first).
fn probe(addr: SocketAddr) -> io::Result<SocketAddr> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?; // connections of an earlier run in TIME_WAIT are fine
    socket.bind(&addr.into())?;
    socket
        .local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::other("not an IP address"))
}

fn listener(addr: SocketAddr) -> io::Result<mio::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(mio::net::TcpListener::from_std(socket.into()))
}
