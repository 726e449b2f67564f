//! `demo-server`: an HTTP/1.1 server on `recycle`'s pools.
//!
//! `cargo run --release -p demo-server` serves on 127.0.0.1:8080; `--help` lists the
//! options.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::builder::RangedU64ValueParser;
use clap::{Args, Parser, Subcommand};
use demo_server::server::{Config, Server, default_threads};
use demo_server::state::{
    Limits, MAX_CONNECTIONS, MAX_HEAD_BYTES, MAX_THREADS, MIN_HEAD_BYTES, MIN_TIMEOUT,
    check_timeout,
};

#[derive(Parser, Debug)]
#[command(version, about = "An HTTP/1.1 server and demo of the recycle object pool", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve HTTP/1.1 (the default when no command is given).
    ///
    /// Routes: GET / ("Hello, World!"), POST /echo (streams the body back),
    /// GET /status/{code}, GET /bytes/{n}, GET /stats (pool and server counters).
    Serve(ServeArgs),
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// Address to listen on. It must be free: a second server on a busy address exits
    /// with "address already in use".
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
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
        Config {
            addr: self.addr,
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
    let Command::Serve(args) = cli
        .command
        .unwrap_or_else(|| Command::Serve(ServeArgs::default()));
    let config = args.into_config();
    let (threads, addr) = (config.threads, config.addr);
    let server = match Server::bind(config) {
        Ok(server) => server,
        Err(e) if e.kind() == ErrorKind::AddrInUse => {
            eprintln!("demo-server: cannot listen on {addr}: address already in use");
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("demo-server: cannot listen on {addr}: {e}");
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
