//! The tokio adapters: the echo example's code against many concurrent clients,
//! cancellation mid-write, and the blocking adapters' promises (drained reads, dirty
//! writers refused, shutdown flushing first).

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use recycle_pool::Pool;
use recycle_pool::io::tokio::{AsyncPooledReader, AsyncPooledWriter};
use recycle_pool::io::{ReadBuf, WriteBuf};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

#[path = "../examples/tokio_echo.rs"]
mod echo;

const LIMIT: Duration = Duration::from_secs(60);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn echo_serves_many_concurrent_clients_on_pooled_buffers() {
    const CLIENTS: usize = 100;
    runtime().block_on(async {
        let pools = Arc::new(echo::Pools::new());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(echo::serve(listener, Arc::clone(&pools), Some(CLIENTS)));
        let mut clients = tokio::task::JoinSet::new();
        for i in 0..CLIENTS {
            // Different sizes and contents per client: a mixed-up echo would show.
            let payload: Vec<u8> = (0..5_000 + 997 * i).map(|b| (b ^ i) as u8).collect();
            clients.spawn(async move { (echo::client(addr, payload.clone()).await, payload) });
        }
        let all = async {
            while let Some(done) = clients.join_next().await {
                let (echo, payload) = done.unwrap();
                assert!(
                    echo.unwrap() == payload,
                    "an echo differs from what was sent"
                );
            }
            server.await.unwrap();
        };
        tokio::time::timeout(LIMIT, all)
            .await
            .expect("echo timed out");
        let (r, w) = (pools.readers.stats(), pools.writers.stats());
        // Every connection took one of each and gave it back, clean.
        assert_eq!(
            (r.hits + r.misses, r.returns, r.discards),
            (100, 100, 0),
            "{r:?}"
        );
        assert_eq!(
            (w.hits + w.misses, w.returns, w.discards),
            (100, 100, 0),
            "{w:?}"
        );
        assert!(r.misses < CLIENTS as u64 || w.misses < CLIENTS as u64 || r.idle > 0);
        println!("{}", pools.report());
    });
}

/// A sink that takes at most `per_write` bytes per call and then blocks for good once
/// `budget` bytes were taken (a peer that stopped reading).
struct Stalling {
    taken: Arc<Mutex<Vec<u8>>>,
    budget: usize,
}

impl AsyncWrite for Stalling {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut taken = self.taken.lock().unwrap();
        let room = self.budget - taken.len();
        if room == 0 {
            return Poll::Pending; // never woken: the task hangs until cancelled
        }
        let n = data.len().min(room).min(512);
        taken.extend_from_slice(&data[..n]);
        Poll::Ready(Ok(n))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[test]
fn tasks_dropped_mid_write_never_hand_on_a_dirty_buffer() {
    runtime().block_on(async {
        let writers = Arc::new(Pool::builder(|| WriteBuf::with_capacity(1024)).build());
        let mut tasks = Vec::new();
        for i in 0..20usize {
            let writers = Arc::clone(&writers);
            tasks.push(tokio::spawn(async move {
                let sink = Stalling {
                    taken: Arc::default(),
                    budget: 700 + i * 10,
                };
                let mut writer = AsyncPooledWriter::new(sink, writers.get_owned());
                // Buffered in pieces; the sink stalls before it has taken them all.
                for _ in 0..10 {
                    writer.write_all(&[i as u8; 300]).await.unwrap();
                }
                writer.flush().await.unwrap();
                unreachable!("the sink stalls");
            }));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        for task in &tasks {
            task.abort(); // cancelled mid-write: the writer drops with unflushed bytes
        }
        for task in tasks {
            assert!(task.await.unwrap_err().is_cancelled());
        }
        let s = writers.stats();
        assert_eq!((s.returns, s.discards, s.idle), (20, 20, 0), "{s:?}");
        // A writer that did flush is kept, and the next writer starts empty.
        let mut out = AsyncPooledWriter::new(Vec::new(), writers.get_owned());
        assert!(out.buffer().is_empty());
        out.write_all(b"fresh").await.unwrap();
        out.shutdown().await.unwrap();
        assert_eq!(out.get_ref(), b"fresh");
        drop(out);
        assert_eq!(writers.stats().idle, 1);
    });
}

#[test]
fn connections_dropped_mid_echo_leave_no_dirty_buffer() {
    // One thread: every buffer kept goes to this thread's cache, where `try_get` below
    // finds it.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let pools = Arc::new(echo::Pools::new());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = {
            let pools = Arc::clone(&pools);
            tokio::spawn(async move {
                let mut handlers = Vec::new();
                for _ in 0..10 {
                    let (stream, _) = listener.accept().await.unwrap();
                    let pools = Arc::clone(&pools);
                    handlers.push(tokio::spawn(
                        async move { echo::handle(stream, &pools).await },
                    ));
                }
                handlers
            })
        };
        // Clients that send a lot and never read: the server's writes stall.
        let mut clients = Vec::new();
        for _ in 0..10 {
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            let _ = tokio::time::timeout(
                Duration::from_millis(200),
                stream.write_all(&vec![b'x'; 8 << 20]),
            )
            .await;
            clients.push(stream);
        }
        let handlers = server.await.unwrap();
        for handler in &handlers {
            handler.abort();
        }
        for handler in handlers {
            let _ = handler.await;
        }
        let w = pools.writers.stats();
        assert_eq!(w.returns, 10, "{w:?}");
        assert!(
            w.discards > 0,
            "the stalled writers held unflushed bytes: {w:?}"
        );
        assert_eq!(
            w.idle as u64,
            w.returns - w.discards - w.hits,
            "only clean writers kept: {w:?}"
        );
        // Whatever was kept is clean: a new connection's writer starts empty.
        for _ in 0..w.idle {
            let buf = pools.writers.try_get().unwrap();
            assert!(buf.is_clean());
            buf.detach();
        }
        let r = pools.readers.stats();
        assert_eq!(
            (r.returns, r.discards),
            (10, 0),
            "read buffers drained and kept"
        );
        drop(clients);
    });
}

#[test]
fn unread_bytes_are_drained_and_never_reach_the_next_reader() {
    runtime().block_on(async {
        let readers = Arc::new(Pool::new(|| ReadBuf::with_capacity(64)));
        let mut first = AsyncPooledReader::new(&b"line one\nsecret rest"[..], readers.get_owned());
        let mut line = String::new();
        first.read_line(&mut line).await.unwrap();
        assert_eq!(line, "line one\n");
        assert_eq!(first.buffer(), b"secret rest");
        drop(first);
        // The buffer as it comes back from the pool, before any constructor drains it:
        // the return hook emptied it.
        let back = readers.try_get().expect("the reader's buffer came home");
        assert!(
            back.filled().is_empty(),
            "kept undrained: {:?}",
            back.filled()
        );
        drop(back);
        let mut second = AsyncPooledReader::trusted(&b""[..], readers.get_owned());
        assert!(second.buffer().is_empty());
        let mut rest = Vec::new();
        second.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty(), "the last reader's bytes: {rest:?}");
        assert_eq!(readers.stats().misses, 1, "the same buffer");
    });
}

#[test]
fn reads_small_and_large_come_out_in_order() {
    runtime().block_on(async {
        let readers = Arc::new(Pool::new(|| ReadBuf::with_capacity(100)));
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let mut reader = AsyncPooledReader::trusted(&data[..], readers.get_owned());
        let mut out = Vec::new();
        let mut small = [0u8; 7];
        let mut large = vec![0u8; 500]; // bigger than the buffer: straight through
        loop {
            let n = reader.read(&mut small).await.unwrap();
            out.extend_from_slice(&small[..n]);
            let m = reader.read(&mut large).await.unwrap();
            out.extend_from_slice(&large[..m]);
            if n == 0 && m == 0 {
                break;
            }
        }
        assert!(out == data);
    });
}

/// A sink that records every call, and fails writes when told to.
#[derive(Default)]
struct Recorder {
    log: Vec<String>,
    fail: bool,
}

impl AsyncWrite for Recorder {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.fail {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::BrokenPipe, "gone")));
        }
        self.log
            .push(format!("write {}", String::from_utf8_lossy(data)));
        Poll::Ready(Ok(data.len()))
    }
    fn poll_flush(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.log.push("flush".into());
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.log.push("shutdown".into());
        Poll::Ready(Ok(()))
    }
}

#[test]
fn shutdown_flushes_first_and_a_write_error_makes_the_buffer_refused() {
    runtime().block_on(async {
        let writers = Arc::new(Pool::builder(|| WriteBuf::with_capacity(64)).build());
        let mut w = AsyncPooledWriter::new(Recorder::default(), writers.get_owned());
        w.write_all(b"ab").await.unwrap();
        w.write_all(b"cd").await.unwrap();
        assert!(w.get_ref().log.is_empty(), "buffered");
        w.shutdown().await.unwrap();
        assert_eq!(w.get_ref().log, ["write abcd", "shutdown"]);
        drop(w);
        assert_eq!((writers.stats().discards, writers.stats().idle), (0, 1));

        let mut w = AsyncPooledWriter::new(
            Recorder {
                fail: true,
                ..Recorder::default()
            },
            writers.get_owned(),
        );
        w.write_all(b"lost").await.unwrap(); // buffered
        assert!(w.flush().await.is_err());
        drop(w);
        // Refused: it held unflushed bytes and saw an error.
        assert_eq!((writers.stats().discards, writers.stats().idle), (1, 0));

        // A write error on the straight-through path (no bytes buffered) is refused too.
        let mut w = AsyncPooledWriter::new(
            Recorder {
                fail: true,
                ..Recorder::default()
            },
            writers.get_owned(),
        );
        assert!(w.write(&[0u8; 100]).await.is_err());
        assert!(w.buffer().is_empty());
        drop(w);
        assert_eq!(writers.stats().discards, 2);
    });
}

#[test]
fn a_writer_never_grows_its_buffer() {
    runtime().block_on(async {
        let writers = Arc::new(Pool::builder(|| WriteBuf::with_capacity(64)).build());
        let mut w = AsyncPooledWriter::new(Vec::new(), writers.get_owned());
        for i in 0..1000u32 {
            w.write_all(&i.to_le_bytes()[..(i % 4) as usize + 1])
                .await
                .unwrap();
        }
        w.write_all(&[1u8; 1000]).await.unwrap();
        w.flush().await.unwrap();
        let (sink, buf) = w.into_parts();
        assert_eq!(buf.capacity(), 64);
        assert_eq!(
            sink.len(),
            1000 + (0..1000u32).map(|i| (i % 4) as usize + 1).sum::<usize>()
        );
    });
}

/// `AsyncRead` that ignores its contract's spirit: it fills the whole unfilled space
/// with a marker but reports one byte. A reader made with `new` (not `trusted`) zeroes
/// all of it when the buffer goes home.
struct Scribbler;

impl AsyncRead for Scribbler {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let space = buf.initialize_unfilled();
        space.fill(b'S');
        buf.advance(1);
        Poll::Ready(Ok(()))
    }
}

#[test]
fn an_untrusted_source_s_scribbles_are_zeroed() {
    runtime().block_on(async {
        let readers = Arc::new(Pool::new(|| ReadBuf::with_capacity(32)));
        let mut r = AsyncPooledReader::new(Scribbler, readers.get_owned());
        let mut one = [0u8; 1];
        r.read_exact(&mut one).await.unwrap();
        drop(r);
        // The next user reads the buffer's raw spare space through a source that
        // reports all of it without writing: zeros, not 'S'.
        struct Peek;
        impl AsyncRead for Peek {
            fn poll_read(
                self: Pin<&mut Self>,
                _: &mut Context<'_>,
                buf: &mut tokio::io::ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                let n = buf.remaining();
                buf.advance(n); // the slice was initialised by ReadBuf: sound
                Poll::Ready(Ok(()))
            }
        }
        let mut next = AsyncPooledReader::new(Peek, readers.get_owned());
        let seen = next.fill_buf().await.unwrap();
        assert_eq!(seen.len(), 32);
        assert!(seen.iter().all(|&b| b == 0), "{seen:?}");
    });
}

/// `Interrupted`, counted; after 1,000 calls another error, so that an adapter
/// spinning on `Interrupted` fails the test instead of hanging it.
fn interrupted_until_1000(calls: &std::sync::atomic::AtomicUsize) -> io::Error {
    if calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < 1000 {
        io::ErrorKind::Interrupted.into()
    } else {
        io::Error::other("gave up: the adapter kept retrying")
    }
}

/// A sink that says `Interrupted` to every write, counting them.
struct AlwaysInterrupted(Arc<std::sync::atomic::AtomicUsize>);

impl AsyncWrite for AlwaysInterrupted {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, _: &[u8]) -> Poll<io::Result<usize>> {
        Poll::Ready(Err(interrupted_until_1000(&self.0)))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// A source that says `Interrupted` to every read, counting them.
struct AlwaysInterruptedSource(Arc<std::sync::atomic::AtomicUsize>);

impl AsyncRead for AlwaysInterruptedSource {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Poll::Ready(Err(interrupted_until_1000(&self.0)))
    }
}

/// `Interrupted` forever from the inner sink or source: one poll hands the error back
/// after one try (as tokio's `BufWriter` and `BufReader` do) instead of spinning inside
/// the poll, which would never yield to the runtime (or to a timeout around it). The
/// error is transient: the writer's buffer is not refused for it.
#[test]
fn interrupted_forever_is_returned_not_spun_on() {
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    runtime().block_on(async {
        let writers = Arc::new(Pool::new(WriteBuf::new));
        let calls = Arc::new(AtomicUsize::new(0));
        let mut w =
            AsyncPooledWriter::new(AlwaysInterrupted(Arc::clone(&calls)), writers.get_owned());
        w.write_all(b"x").await.unwrap();
        let flushed = tokio::time::timeout(Duration::from_secs(5), w.flush()).await;
        let e = flushed.expect("flush yielded").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::Interrupted);
        assert_eq!(calls.load(Relaxed), 1);

        let readers = Arc::new(Pool::new(|| ReadBuf::with_capacity(32)));
        let calls = Arc::new(AtomicUsize::new(0));
        let mut r = AsyncPooledReader::new(
            AlwaysInterruptedSource(Arc::clone(&calls)),
            readers.get_owned(),
        );
        let filled = tokio::time::timeout(Duration::from_secs(5), r.fill_buf()).await;
        let e = filled.expect("fill_buf yielded").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::Interrupted);
        assert_eq!(calls.load(Relaxed), 1);
    });
}
