//! `demo-server`: an HTTP/1.1 server on `recycle-pool`'s pools.
//!
//! `cargo run --release -p demo-server` serves on 127.0.0.1:8080; `--help` lists the
//! options.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::builder::RangedU64ValueParser;
use clap::{Args, Parser, Subcommand};
use demo_server::proxy::handler::{MAX_UPSTREAM_IDLE, ProxyConfig};
use demo_server::proxy::upstream::HealthPolicy;
use demo_server::server::{Config, Server, default_threads};
use demo_server::state::{
    Limits, MAX_CONNECTIONS, MAX_HEAD_BYTES, MAX_THREADS, MIN_HEAD_BYTES, MIN_TIMEOUT,
    check_timeout,
};

#[derive(Parser, Debug)]
#[command(version, about = "An HTTP/1.1 server and reverse proxy, a demo of the recycle-pool object pool", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve HTTP/1.1 (the default when no command is given).
    ///
    /// Routes: GET / ("Hello, World!"), POST /echo (streams the body back),
    /// GET /status/CODE, GET /bytes/N, GET /stats (pool and server counters, JSON),
    /// GET /metrics (the same and more, Prometheus text format).
    Serve(ServeArgs),
    /// Reverse-proxy HTTP/1.1 to one or more upstreams, round robin.
    ///
    /// Streams bodies both ways through pooled 32 KiB buffers, reuses upstream
    /// connections, takes failing upstreams out for a while (passive health checks),
    /// refuses ambiguous requests with 400 before forwarding a byte of them, and serves
    /// /stats and /metrics on a separate admin listener.
    Proxy(ProxyArgs),
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// Address to listen on. It must be free: a second server on a busy address exits
    /// with "address already in use".
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Args, Debug)]
struct ProxyArgs {
    /// Address to listen on for clients. It must be free.
    #[arg(long, default_value = "127.0.0.1:8081")]
    addr: SocketAddr,
    /// An upstream server, HOST:PORT (a name is resolved once, at startup). Repeat it
    /// for several: requests go round robin.
    #[arg(long = "upstream", value_name = "HOST:PORT", required = true, value_parser = upstream)]
    upstreams: Vec<SocketAddr>,
    /// Time allowed to connect to an upstream and get a complete response head, 1ms to
    /// 1day; past it, 504 (bytes of the head arriving slowly do not extend it; while a
    /// request body is sent, each write the upstream takes does). During a response
    /// body: the longest the upstream may send nothing while the proxy has room for it
    /// (then the response is cut off). It never applies while the proxy waits on the
    /// client: a client that reads slowly is bounded by --write-timeout, one that sends
    /// its body slowly by --idle-timeout.
    #[arg(long, default_value = "30s", value_parser = timeout)]
    upstream_timeout: Duration,
    /// Most idle keep-alive connections each worker keeps per upstream (0 to 65536; 0
    /// sends every request with Connection: close).
    #[arg(
        long,
        default_value_t = 64,
        value_parser = RangedU64ValueParser::<usize>::new().range(0..=MAX_UPSTREAM_IDLE as u64)
    )]
    upstream_idle: usize,
    /// How long an idle upstream connection is kept, 1ms to 1day.
    #[arg(long, default_value = "60s", value_parser = timeout)]
    upstream_idle_timeout: Duration,
    /// Failed attempts (refused, reset, timed out, malformed response) within
    /// --fail-timeout that take an upstream out for --fail-timeout, as nginx's
    /// max_fails (0 to 1000000; 0 never takes one out; nor is a single upstream ever
    /// taken out). With every upstream out, 503 at once.
    #[arg(
        long,
        default_value_t = 3,
        value_parser = RangedU64ValueParser::<u32>::new().range(0..=1_000_000)
    )]
    max_fails: u32,
    /// The window in which failures count, and how long a failed upstream is skipped
    /// (then one request probes it), 1ms to 1day.
    #[arg(long, default_value = "10s", value_parser = timeout)]
    fail_timeout: Duration,
    /// How long a tunnel (a WebSocket, or another protocol an upstream's 101 switched
    /// to) may stay idle, no byte moving either way, before both connections close,
    /// 1ms to 1day.
    #[arg(long, default_value = "10m", value_parser = timeout)]
    tunnel_idle_timeout: Duration,
    /// Take a fresh 32 KiB copy buffer each time an exchange needs one (for the request
    /// head and body, for each read of the response: at least two per request) instead
    /// of a pooled one (to measure what the pool saves).
    #[arg(long)]
    no_buffer_pool: bool,
    /// Keep the clients' Forwarded, X-Forwarded-* and X-Real-IP fields and append to
    /// Forwarded and X-Forwarded-For, for a proxy behind proxies it trusts. Without it
    /// the proxy removes them (also spelt with _ for -) and sends only its own.
    #[arg(long)]
    trust_forwarded: bool,
    /// Address of the admin listener, which serves GET /stats (JSON) and GET /metrics
    /// (Prometheus text format); every path on --addr goes to the upstreams.
    #[arg(long, default_value = "127.0.0.1:9090")]
    admin: SocketAddr,
    #[command(flatten)]
    client: ClientArgs,
}

/// The client-side limits and timeouts, the same for `serve` and `proxy`.
#[derive(Args, Debug)]
struct ClientArgs {
    /// Worker threads (1 to 1024), each with its own event loop and SO_REUSEPORT
    /// listener [default: the number of cores].
    #[arg(long, value_parser = RangedU64ValueParser::<usize>::new().range(1..=MAX_THREADS as u64))]
    threads: Option<usize>,
    /// Most open connections (1 to 1000000); more are closed as soon as they are
    /// accepted.
    #[arg(
        long,
        default_value_t = 10_000,
        value_parser = RangedU64ValueParser::<usize>::new().range(1..=MAX_CONNECTIONS as u64)
    )]
    max_connections: usize,
    /// Most bytes a request head may take (256 to 1048576); larger heads get 431 (414
    /// for a request line that does not fit).
    #[arg(
        long,
        default_value_t = 16_384,
        value_parser = RangedU64ValueParser::<usize>::new()
            .range(MIN_HEAD_BYTES as u64..=MAX_HEAD_BYTES as u64)
    )]
    max_head_bytes: usize,
    /// Most bytes a request body may take; larger bodies get 413.
    #[arg(long, default_value_t = 8_388_608)]
    max_body_bytes: u64,
    /// Time allowed for a complete request head from its first byte (and for the first
    /// request of a new connection), 1ms to 1day; after it, 408 and close.
    #[arg(long, default_value = "10s", value_parser = timeout)]
    header_timeout: Duration,
    /// Time a keep-alive connection may sit idle between requests (or a request body
    /// may stall) before it is closed, 1ms to 1day.
    #[arg(long, default_value = "60s", value_parser = timeout)]
    idle_timeout: Duration,
    /// Time pending output may make no progress before the connection is dropped, 1ms
    /// to 1day.
    #[arg(long, default_value = "30s", value_parser = timeout)]
    write_timeout: Duration,
    /// On SIGINT/SIGTERM, time allowed for responses in flight before exiting, 0s to
    /// 1day.
    #[arg(long, default_value = "10s", value_parser = shutdown_timeout)]
    shutdown_timeout: Duration,
    /// Log every request (target `access`, level info; set RUST_LOG=info to see it).
    #[arg(long)]
    access_log: bool,
}

/// A timeout flag: a humantime duration ("10s", "1m 30s") of 1ms to 1day.
fn timeout(value: &str) -> Result<Duration, String> {
    duration(value, MIN_TIMEOUT)
}

/// The shutdown timeout: 0s (stop at once) to 1day.
fn shutdown_timeout(value: &str) -> Result<Duration, String> {
    duration(value, Duration::ZERO)
}

/// An upstream: `HOST:PORT`, a name resolved now (the first address it has).
fn upstream(value: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    let addr = match value.parse::<SocketAddr>() {
        Ok(addr) => addr,
        Err(_) => value
            .to_socket_addrs()
            .map_err(|e| format!("expected HOST:PORT ({e})"))?
            .next()
            .ok_or_else(|| format!("{value} has no address"))?,
    };
    if addr.port() == 0 {
        return Err("the port must not be 0".into());
    }
    Ok(addr)
}

fn duration(value: &str, min: Duration) -> Result<Duration, String> {
    let duration = humantime::parse_duration(value).map_err(|e| e.to_string())?;
    check_timeout(duration, min)?;
    Ok(duration)
}

impl Default for ServeArgs {
    fn default() -> Self {
        ServeArgs::parse_from_defaults()
    }
}

impl ServeArgs {
    fn parse_from_defaults() -> Self {
        #[derive(Parser)]
        struct Wrapper {
            #[command(flatten)]
            args: ServeArgs,
        }
        Wrapper::parse_from(["demo-server"]).args
    }

    fn into_config(self) -> Config {
        self.client.into_config(self.addr)
    }
}

impl ProxyArgs {
    fn into_config(self) -> (Config, ProxyConfig, SocketAddr) {
        let proxy = ProxyConfig {
            upstreams: self.upstreams,
            upstream_timeout: self.upstream_timeout,
            upstream_idle: self.upstream_idle,
            upstream_idle_timeout: self.upstream_idle_timeout,
            health: HealthPolicy {
                max_fails: self.max_fails,
                fail_timeout: self.fail_timeout,
            },
            buffer_pool: !self.no_buffer_pool,
            tunnel_idle_timeout: self.tunnel_idle_timeout,
            trust_forwarded: self.trust_forwarded,
        };
        (self.client.into_config(self.addr), proxy, self.admin)
    }
}

impl ClientArgs {
    fn into_config(self, addr: SocketAddr) -> Config {
        Config {
            addr,
            threads: self.threads.unwrap_or_else(default_threads),
            limits: Limits {
                max_head_bytes: self.max_head_bytes,
                max_body_bytes: self.max_body_bytes,
                header_timeout: self.header_timeout,
                idle_timeout: self.idle_timeout,
                write_timeout: self.write_timeout,
                max_connections: self.max_connections,
            },
            shutdown_timeout: self.shutdown_timeout,
            access_log: self.access_log,
        }
    }
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = Cli::parse();
    let command = cli
        .command
        .unwrap_or_else(|| Command::Serve(ServeArgs::default()));
    let (config, proxy) = match command {
        Command::Serve(args) => (args.into_config(), None),
        Command::Proxy(args) => {
            let (config, proxy, admin) = args.into_config();
            // What one flag cannot check alone (the upstreams together), as a usage
            // error like the others.
            if let Err(e) = proxy.check() {
                eprintln!("demo-server: error: --upstream: {e}");
                return ExitCode::from(2);
            }
            (config, Some((proxy, admin)))
        }
    };
    let (threads, addr) = (config.threads, config.addr);
    // Each listener's error names its own flag and address.
    let bound = match proxy {
        None => Server::bind(config).map_err(|e| ("--addr", addr, e)),
        Some((proxy, admin)) => Server::proxy(config, proxy)
            .map_err(|e| ("--addr", addr, e))
            .and_then(|s| s.with_admin(admin).map_err(|e| ("--admin", admin, e))),
    };
    let server = match bound {
        Ok(server) => server,
        Err((flag, addr, e)) => {
            let reason = if e.kind() == ErrorKind::AddrInUse {
                "address already in use".to_owned()
            } else {
                e.to_string()
            };
            eprintln!("demo-server: cannot listen on {addr} ({flag}): {reason}");
            return ExitCode::FAILURE;
        }
    };
    let handle = server.handle();
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(signal, std::sync::Arc::clone(handle.flag())) {
            eprintln!("demo-server: cannot handle signal {signal}: {e}");
            return ExitCode::FAILURE;
        }
    }
    eprintln!(
        "demo-server: listening on http://{} with {threads} worker(s)",
        server.local_addr()
    );
    if let (Some(proxy), Some(admin)) = (server.proxy_state(), server.admin_addr()) {
        let upstreams = &proxy.upstreams;
        let names: Vec<&str> = (0..upstreams.len()).map(|i| upstreams.name(i)).collect();
        eprintln!(
            "demo-server: proxying to {}; admin (/stats, /metrics) on http://{admin}",
            names.join(", ")
        );
    }
    match server.run() {
        Ok(()) => {
            eprintln!("demo-server: stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("demo-server: {e}");
            ExitCode::FAILURE
        }
    }
}
