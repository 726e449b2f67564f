//! A thread-per-connection line server on std `TcpStream`s, living on pooled buffers:
//! each connection borrows a `ReadBuf` and a `WriteBuf` and hands them back, drained,
//! when it ends. The program starts the server on a loopback port, runs a few clients
//! against it, prints the pools' stats and exits.
//!
//! Run with `cargo run --release --example blocking_echo`.

use std::io::{self, BufRead, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;

use recycle_pool::Pool;
use recycle_pool::io::{PooledReader, PooledWriter, ReadBuf, WriteBuf};

/// Answers each line with its upper-case version until the client sends `quit`.
fn serve(
    stream: TcpStream,
    readers: &Arc<Pool<ReadBuf>>,
    writers: &Arc<Pool<WriteBuf>>,
) -> io::Result<()> {
    let mut reader = PooledReader::trusted(stream.try_clone()?, readers.get_owned());
    let mut writer = PooledWriter::new(stream, writers.get_owned());
    let mut line = String::new();
    while reader.read_line(&mut line)? > 0 {
        if line.trim_end() == "quit" {
            break;
        }
        writer.write_all(line.to_uppercase().as_bytes())?;
        writer.flush()?;
        line.clear();
    }
    Ok(())
}

fn main() -> io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let readers = Arc::new(Pool::new(ReadBuf::new));
    let writers = Arc::new(Pool::new(WriteBuf::new));

    const CLIENTS: usize = 20;
    let server = {
        let (readers, writers) = (Arc::clone(&readers), Arc::clone(&writers));
        thread::spawn(move || {
            let mut workers = Vec::new();
            for stream in listener.incoming().take(CLIENTS) {
                let (readers, writers) = (Arc::clone(&readers), Arc::clone(&writers));
                let stream = stream.expect("accept");
                workers.push(thread::spawn(move || serve(stream, &readers, &writers)));
            }
            for worker in workers {
                worker.join().expect("worker").expect("serve");
            }
        })
    };

    // Clients connect one after another, so each connection can reuse the last one's
    // buffers.
    for client in 0..CLIENTS {
        let mut stream = TcpStream::connect(addr)?;
        let mut replies = io::BufReader::new(stream.try_clone()?);
        let mut reply = String::new();
        for line in 0..3 {
            writeln!(stream, "client {client} line {line}")?;
            reply.clear();
            replies.read_line(&mut reply)?;
            assert_eq!(reply, format!("CLIENT {client} LINE {line}\n"));
        }
        writeln!(stream, "quit")?;
        // Wait for the server to close its side, which returns its buffers.
        reply.clear();
        assert_eq!(replies.read_line(&mut reply)?, 0);
    }
    server.join().expect("server");

    println!("{CLIENTS} connections served");
    println!("read buffers:  {:?}", readers.stats());
    println!("write buffers: {:?}", writers.stats());
    Ok(())
}
