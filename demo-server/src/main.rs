//! `demo-server`: an HTTP/1.1 server on `recycle`'s pools.
//!
//! `cargo run --release -p demo-server` serves on 127.0.0.1:8080; `--help` lists the
//! options.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use demo_server::server::{Config, Server};
use demo_server::state::Limits;

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
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Worker threads, each with its own event loop and SO_REUSEPORT listener
    /// [default: the number of cores].
    #[arg(long)]
    threads: Option<usize>,
    /// Most open connections; more are closed as soon as they are accepted.
    #[arg(long, default_value_t = 10_000)]
    max_connections: usize,
    /// Most bytes a request head may take; larger heads get 431.
    #[arg(long, default_value_t = 16_384)]
    max_head_bytes: usize,
    /// Most bytes a request body may take; larger bodies get 413.
    #[arg(long, default_value_t = 8_388_608)]
    max_body_bytes: u64,
    /// Time allowed for a complete request head from its first byte (and for the first
    /// request of a new connection); after it, 408 and close.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    header_timeout: Duration,
    /// Time a keep-alive connection may sit idle between requests (or a request body
    /// may stall) before it is closed.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    idle_timeout: Duration,
    /// Time pending output may make no progress before the connection is dropped.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    write_timeout: Duration,
    /// On SIGINT/SIGTERM, time allowed for responses in flight before exiting.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    shutdown_timeout: Duration,
    /// Log every request (target `access`, level info; set RUST_LOG=info to see it).
    #[arg(long)]
    access_log: bool,
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
            threads: self
                .threads
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
                .max(1),
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
    let threads = config.threads;
    let server = match Server::bind(config) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("demo-server: cannot listen: {e}");
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
