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

mod service;
mod worker;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

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
    shared: Arc<Shared>,
    config: Config,
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

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
    /// splitting the traffic with the first.
    ///
    /// # Errors
    ///
    /// A limit out of range (`InvalidInput`, see [`Limits::check`]), or the address
    /// cannot be bound (`AddrInUse` if another socket listens on it).
    pub fn bind(config: Config) -> io::Result<Server> {
        let invalid = |message: String| io::Error::new(io::ErrorKind::InvalidInput, message);
        config.limits.check().map_err(invalid)?;
        check_timeout(config.shutdown_timeout, Duration::ZERO)
            .map_err(|e| invalid(format!("shutdown_timeout {e}")))?;
        if !(1..=MAX_THREADS).contains(&config.threads) {
            return Err(invalid(format!("threads must be in 1..={MAX_THREADS}")));
        }
        let addr = probe(config.addr)?;
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
            shared,
            config,
            addr,
            stop: Arc::new(AtomicBool::new(false)),
        })
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
            shared,
            config,
            stop,
            ..
        } = self;
        std::thread::scope(|scope| {
            let workers: Vec<_> = listeners
                .into_iter()
                .enumerate()
                .map(|(index, listener)| {
                    let (shared, config, stop) = (&*shared, &config, &*stop);
                    let service = service::Serve { shared };
                    std::thread::Builder::new()
                        .name(format!("worker-{index}"))
                        .spawn_scoped(scope, move || {
                            worker::Worker::new(index, listener, service, shared, config, stop)?
                                .run()
                        })
                })
                .collect::<io::Result<_>>()?;
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

/// Binds `addr` without `SO_REUSEPORT` and lets it go: fails with `AddrInUse` if any
/// socket listens there (with `SO_REUSEPORT` or not), and resolves port 0 to a free
/// port. Another process could take the address between this probe and the real binds;
/// it would then have to use `SO_REUSEPORT` itself, as only a deliberate sharer does.
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
