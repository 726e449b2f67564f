//! A TCP echo server on tokio's multi-thread runtime, living on pooled buffers: each
//! connection takes a `ReadBuf` and a `WriteBuf` from shared pools, holds them across
//! `.await` points (possibly moving between worker threads), and hands them back when
//! it ends: the read buffer drained, the write buffer only if it was flushed.
//!
//! `cargo run --release --features tokio --example tokio_echo` starts the server on a
//! loopback port, runs 200 concurrent clients against it, prints the pools' stats and
//! exits. With `-- --serve 127.0.0.1:7000` it serves until Ctrl-C, printing the stats
//! every ten seconds.
//!
//! `tests/tokio_io.rs` runs this same code (`serve`, `handle`, `client`) against many
//! concurrent clients.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use recycle_pool::Pool;
use recycle_pool::io::tokio::{AsyncPooledReader, AsyncPooledWriter};
use recycle_pool::io::{ReadBuf, WriteBuf};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The buffer pools every connection shares.
pub(crate) struct Pools {
    /// Read buffers (4 KiB).
    pub(crate) readers: Arc<Pool<ReadBuf>>,
    /// Write buffers (4 KiB).
    pub(crate) writers: Arc<Pool<WriteBuf>>,
}

impl Pools {
    /// Pools of 4 KiB buffers.
    pub(crate) fn new() -> Self {
        Self {
            readers: Arc::new(Pool::new(ReadBuf::new)),
            writers: Arc::new(Pool::new(WriteBuf::new)),
        }
    }

    /// Both pools' stats, one line.
    pub(crate) fn report(&self) -> String {
        let (r, w) = (self.readers.stats(), self.writers.stats());
        format!(
            "read buffers: {} made, {} reused, {} idle; write buffers: {} made, {} reused, {} refused dirty, {} idle",
            r.misses, r.hits, r.idle, w.misses, w.hits, w.discards, w.idle
        )
    }
}

/// Echoes everything the peer sends until it shuts its side down, then flushes and
/// shuts down ours. Returns the bytes echoed.
pub(crate) async fn handle(stream: TcpStream, pools: &Pools) -> io::Result<u64> {
    stream.set_nodelay(true)?;
    let (read_half, write_half) = stream.into_split();
    let mut reader = AsyncPooledReader::trusted(read_half, pools.readers.get_owned());
    let mut writer = AsyncPooledWriter::new(write_half, pools.writers.get_owned());
    let mut echoed = 0u64;
    loop {
        let chunk = reader.fill_buf().await?; // the buffers live across this .await
        if chunk.is_empty() {
            break;
        }
        let n = chunk.len();
        writer.write_all(chunk).await?;
        reader.consume(n);
        echoed += n as u64;
        if reader.buffer().is_empty() {
            writer.flush().await?; // nothing more in hand: send what we have
        }
    }
    writer.shutdown().await?; // flushes first
    Ok(echoed)
}

/// Accepts connections until `connections` were served (`None`: forever), each in its
/// own task.
pub(crate) async fn serve(listener: TcpListener, pools: Arc<Pools>, connections: Option<usize>) {
    let mut tasks = tokio::task::JoinSet::new();
    let mut accepted = 0;
    while connections.is_none_or(|n| accepted < n) {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        accepted += 1;
        let pools = Arc::clone(&pools);
        tasks.spawn(async move {
            if let Err(e) = handle(stream, &pools).await {
                eprintln!("connection: {e}");
            }
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
}

/// Sends `payload` in pieces while reading the echo concurrently; returns the echo.
pub(crate) async fn client(addr: std::net::SocketAddr, payload: Vec<u8>) -> io::Result<Vec<u8>> {
    let stream = TcpStream::connect(addr).await?;
    let (mut rx, mut tx) = stream.into_split();
    let sender = tokio::spawn(async move {
        for piece in payload.chunks(1000) {
            tx.write_all(piece).await?;
        }
        tx.shutdown().await
    });
    let mut echo = Vec::new();
    rx.read_to_end(&mut echo).await?;
    sender.await.map_err(io::Error::other)??;
    Ok(echo)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
#[allow(dead_code)]
async fn main() -> io::Result<()> {
    let pools = Arc::new(Pools::new());
    let args: Vec<String> = std::env::args().collect();
    if let Some(addr) = args
        .iter()
        .position(|a| a == "--serve")
        .map(|i| &args[i + 1])
    {
        let listener = TcpListener::bind(addr).await?;
        println!("echo on {}", listener.local_addr()?);
        let reporter = Arc::clone(&pools);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(10)).await;
                println!("{}", reporter.report());
            }
        });
        tokio::select! {
            () = serve(listener, Arc::clone(&pools), None) => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        println!("{}", pools.report());
        return Ok(());
    }

    const CLIENTS: usize = 200;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(serve(listener, Arc::clone(&pools), Some(CLIENTS)));
    let mut clients = tokio::task::JoinSet::new();
    for i in 0..CLIENTS {
        let payload: Vec<u8> = (0..20_000 + i).map(|b| (b * 7 + i) as u8).collect();
        clients.spawn(async move { (client(addr, payload.clone()).await, payload) });
    }
    while let Some(done) = clients.join_next().await {
        let (echo, payload) = done.map_err(io::Error::other)?;
        assert!(echo? == payload, "echo differs");
    }
    server.await.map_err(io::Error::other)?;
    println!("{CLIENTS} clients echoed; {}", pools.report());
    Ok(())
}
