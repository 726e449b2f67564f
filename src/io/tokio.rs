//! tokio adapters (feature `tokio`): [`AsyncPooledReader`] (`AsyncRead +
//! AsyncBufRead`) and [`AsyncPooledWriter`] (`AsyncWrite`) over pooled [`ReadBuf`] and
//! [`WriteBuf`] buffers, with the promises of their blocking twins
//! [`PooledReader`](super::PooledReader) and [`PooledWriter`](super::PooledWriter):
//!
//! - the read buffer is drained when the reader is made and when it goes home (the
//!   [`ReadBuf`] hook): the next connection never reads this one's bytes;
//! - a writer's buffer that still holds unflushed bytes or saw a write error is refused
//!   by its pool (the [`WriteBuf`] hook). Dropping a writer cannot flush (there is no
//!   async drop), so a task cancelled mid-write leaves a dirty buffer that its pool
//!   discards: flush, or `shutdown`, before
//!   dropping to keep the buffer;
//! - [`poll_shutdown`](tokio::io::AsyncWrite::poll_shutdown) flushes the buffer first.
//!
//! One difference: where the blocking adapters retry `Interrupted`, these hand it back
//! to the caller, as tokio's `BufReader` and `BufWriter` do (a retry loop would spin
//! inside one `poll` against a source or sink that keeps saying it). It is transient:
//! the buffer is not refused for it, and polling again carries on.
//!
//! The guards ([`OwnedPooled`](crate::OwnedPooled)) are `Send`, so a reader and a writer
//! can be held across `.await` points in a task on the multi-thread runtime.
//!
//! # `ReadBuf` and `tokio::io::ReadBuf`
//!
//! Both crates name a type `ReadBuf`. Import this crate's under its own path and
//! tokio's under another name when a file needs both:
//!
//! ```
//! use recycle_pool::io::ReadBuf;             // the pooled read buffer
//! use tokio::io::ReadBuf as TokioReadBuf;    // the one `poll_read` takes
//! # let _ = (ReadBuf::new(), TokioReadBuf::new(&mut [0u8; 1]));
//! ```
//!
//! # Examples
//!
//! ```
//! use std::sync::Arc;
//! use recycle_pool::Pool;
//! use recycle_pool::io::{ReadBuf, WriteBuf};
//! use recycle_pool::io::tokio::{AsyncPooledReader, AsyncPooledWriter};
//! use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let readers = Arc::new(Pool::new(ReadBuf::new));
//! let writers = Arc::new(Pool::new(WriteBuf::new));
//!
//! let mut input = AsyncPooledReader::trusted(&b"ping\nextra bytes"[..], readers.get_owned());
//! let mut output = AsyncPooledWriter::new(Vec::new(), writers.get_owned());
//! let mut line = String::new();
//! input.read_line(&mut line).await?;
//! output.write_all(b"pong\n").await?;
//! output.shutdown().await?; // flushes first
//! assert_eq!(output.get_ref(), b"pong\n");
//! drop((input, output)); // "extra bytes" drained; the flushed writer kept
//!
//! assert_eq!(readers.stats().idle + writers.stats().idle, 2);
//! # Ok::<(), std::io::Error>(())
//! # }).unwrap();
//! ```

use std::io::{self, ErrorKind};
use std::ops::DerefMut;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use ::tokio::io::{AsyncBufRead, AsyncRead, AsyncWrite};

use super::{ReadBuf, WriteBuf, is_transient};

/// An [`AsyncRead`] whose `poll_read` writes only into the unfilled part of the
/// `tokio::io::ReadBuf` it is given, and only the bytes it reports as filled: the
/// async twin of [`TrustedRead`](super::TrustedRead), which lets
/// [`AsyncPooledReader::trusted`] zero only the bytes received when its buffer goes
/// home.
///
/// tokio's contract lets a reader initialise unfilled bytes it does not report, so
/// this is a promise beyond `AsyncRead`: breaking it is not undefined behaviour, but a
/// later user of the buffer could see such bytes. Implemented for tokio's TCP and Unix
/// streams and their read halves (they `recv` into the unfilled part and report what
/// they got) and for byte slices.
pub trait TrustedAsyncRead: AsyncRead {}

impl TrustedAsyncRead for &[u8] {}
impl TrustedAsyncRead for ::tokio::net::TcpStream {}
impl TrustedAsyncRead for ::tokio::net::tcp::OwnedReadHalf {}
impl TrustedAsyncRead for ::tokio::net::tcp::ReadHalf<'_> {}
#[cfg(unix)]
impl TrustedAsyncRead for ::tokio::net::UnixStream {}
#[cfg(unix)]
impl TrustedAsyncRead for ::tokio::net::unix::OwnedReadHalf {}
impl<R: TrustedAsyncRead + Unpin + ?Sized> TrustedAsyncRead for &mut R {}
impl<R: TrustedAsyncRead + Unpin + ?Sized> TrustedAsyncRead for Box<R> {}

/// `AsyncRead + AsyncBufRead` over any `AsyncRead`, buffered in a pooled [`ReadBuf`]
/// (any `DerefMut<Target = ReadBuf>`: a pool guard, or a plain `Box`).
///
/// The buffer is drained when the reader is made and, through its hook, when it goes
/// back to its pool: unread bytes are gone and every byte written into it is zeroed
/// (only the bytes received, for a reader made with [`trusted`](Self::trusted)).
/// `R` must be `Unpin` (sockets and their halves are).
pub struct AsyncPooledReader<R, B> {
    inner: R,
    buf: B,
    trusted: bool,
}

impl<R: TrustedAsyncRead + Unpin, B: DerefMut<Target = ReadBuf> + Unpin> AsyncPooledReader<R, B> {
    /// A reader over a [`TrustedAsyncRead`] source: recycling its buffer zeroes only
    /// the bytes received, not the whole capacity.
    pub fn trusted(inner: R, buf: B) -> Self {
        Self::with(inner, buf, true)
    }
}

impl<R: AsyncRead + Unpin, B: DerefMut<Target = ReadBuf> + Unpin> AsyncPooledReader<R, B> {
    /// A reader over any `AsyncRead`. Its buffer is drained first, in case it was not
    /// fresh from a pool.
    pub fn new(inner: R, buf: B) -> Self {
        Self::with(inner, buf, false)
    }

    fn with(inner: R, mut buf: B, trusted: bool) -> Self {
        buf.drain();
        Self {
            inner,
            buf,
            trusted,
        }
    }

    /// The source.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// The source, mutably (reading from it directly skips the buffered bytes).
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// The bytes buffered and not yet consumed.
    pub fn buffer(&self) -> &[u8] {
        self.buf.filled()
    }

    /// The source and the buffer, buffered bytes included (the buffer's hook drains
    /// them when it goes home).
    pub fn into_parts(self) -> (R, B) {
        (self.inner, self.buf)
    }

    /// One read from the source into the buffer's free space.
    fn poll_read_more(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let spare = self.buf.spare_for_read(self.trusted);
        let mut window = ::tokio::io::ReadBuf::new(spare);
        let result = match Pin::new(&mut self.inner).poll_read(cx, &mut window) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(result) => result.map(|()| window.filled().len()),
        };
        Poll::Ready(self.buf.after_read(result))
    }
}

impl<R: AsyncRead + Unpin, B: DerefMut<Target = ReadBuf> + Unpin> AsyncRead
    for AsyncPooledReader<R, B>
{
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ::tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // A large read into an empty buffer goes straight through, as `BufReader` does.
        if this.buf.is_empty() && out.remaining() >= this.buf.capacity() {
            return Pin::new(&mut this.inner).poll_read(cx, out);
        }
        let available = ready!(Pin::new(&mut *this).poll_fill_buf(cx))?;
        let n = available.len().min(out.remaining());
        out.put_slice(&available[..n]);
        this.buf.consume(n);
        Poll::Ready(Ok(()))
    }
}

impl<R: AsyncRead + Unpin, B: DerefMut<Target = ReadBuf> + Unpin> AsyncBufRead
    for AsyncPooledReader<R, B>
{
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        let this = self.get_mut();
        if this.buf.is_empty() {
            // One read: data, or EOF (an empty slice). An error, `Interrupted`
            // included, goes back to the caller as tokio's `BufReader` does: retrying
            // it here would spin inside one poll against a source that keeps saying it.
            ready!(this.poll_read_more(cx))?;
        }
        Poll::Ready(Ok(this.buf.filled()))
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        self.get_mut().buf.consume(amt);
    }
}

impl<R, B> std::fmt::Debug for AsyncPooledReader<R, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad("AsyncPooledReader { .. }")
    }
}

/// `AsyncWrite` over any `AsyncWrite`, buffered in a pooled [`WriteBuf`] (any
/// `DerefMut<Target = WriteBuf>`) that it never grows: its bound is the capacity the
/// buffer came with.
///
/// Dropped with unflushed bytes (a task cancelled mid-write, say) or after a write
/// error, its buffer is refused by its pool's hook: never handed to another writer.
/// `W` must be `Unpin` (sockets and their halves are).
pub struct AsyncPooledWriter<W, B> {
    inner: W,
    buf: B,
    limit: usize,
}

impl<W: AsyncWrite + Unpin, B: DerefMut<Target = WriteBuf> + Unpin> AsyncPooledWriter<W, B> {
    /// A writer into `inner` through `buf`.
    ///
    /// # Panics
    ///
    /// If `buf` holds unflushed bytes or a write error (a buffer from a pool never
    /// does: its hook refuses such buffers).
    pub fn new(inner: W, buf: B) -> Self {
        assert!(
            buf.is_clean(),
            "AsyncPooledWriter::new: buffer holds another stream's bytes or error"
        );
        Self {
            inner,
            limit: buf.capacity(),
            buf,
        }
    }

    /// The sink.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// The sink, mutably (writing to it directly skips the buffered bytes).
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// The bytes buffered and not yet written.
    pub fn buffer(&self) -> &[u8] {
        self.buf.unflushed()
    }

    /// The sink and the buffer, as they are (a buffer with unflushed bytes is refused
    /// by its pool).
    pub fn into_parts(self) -> (W, B) {
        (self.inner, self.buf)
    }

    /// Writes the buffered bytes until none are left.
    fn poll_flush_buf(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.buf.is_empty() {
            match ready!(Pin::new(&mut self.inner).poll_write(cx, self.buf.unflushed())) {
                Ok(0) => {
                    let e = io::Error::new(ErrorKind::WriteZero, "sink accepted no bytes");
                    self.buf.record(&e);
                    return Poll::Ready(Err(e));
                }
                Ok(n) => self.buf.advance_flushed(n),
                // Back to the caller, as tokio's `BufWriter` does (retrying here would
                // spin inside one poll against a sink that keeps saying it); transient,
                // so not recorded: the buffer is not refused for it.
                Err(e) if e.kind() == ErrorKind::Interrupted => return Poll::Ready(Err(e)),
                Err(e) => {
                    self.buf.record(&e);
                    return Poll::Ready(Err(e));
                }
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Records a lasting error from the sink in the buffer, so its pool refuses it.
    fn record<T>(&mut self, result: io::Result<T>) -> io::Result<T> {
        if let Err(e) = &result {
            if !is_transient(e.kind()) {
                self.buf.record(e);
            }
        }
        result
    }
}

impl<W: AsyncWrite + Unpin, B: DerefMut<Target = WriteBuf> + Unpin> AsyncWrite
    for AsyncPooledWriter<W, B>
{
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.buf.len() + data.len() > this.limit {
            ready!(this.poll_flush_buf(cx))?;
        }
        if data.len() >= this.limit {
            // As large as the bound: straight through, as `BufWriter` does.
            let result = ready!(Pin::new(&mut this.inner).poll_write(cx, data));
            return Poll::Ready(this.record(result));
        }
        // Fits beside what is buffered: never grows the buffer (see `PooledWriter`).
        this.buf.extend_within_capacity(data);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_flush_buf(cx))?;
        let result = ready!(Pin::new(&mut this.inner).poll_flush(cx));
        Poll::Ready(this.record(result))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_flush_buf(cx))?;
        let result = ready!(Pin::new(&mut this.inner).poll_shutdown(cx));
        Poll::Ready(this.record(result))
    }
}

impl<W, B> std::fmt::Debug for AsyncPooledWriter<W, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad("AsyncPooledWriter { .. }")
    }
}
