//! Pooled I/O buffers: read buffers that drain, write buffers that refuse to be reused
//! dirty, blocking `Read`/`Write` adapters over them, and the [`BufferPool`] hook.
//!
//! This is Go's "reuse `bufio.Reader` and `bufio.Writer` between connections" (saved
//! 8 KB and 6 allocations per connection) in a form that also fits an event loop:
//!
//! - [`ReadBuf`] holds bytes read from a source and not yet consumed. Its hook
//!   **drains** it, so bytes one connection sent can never be read by the next (see
//!   [`ReadBuf`'s scrubbing](ReadBuf#scrubbing)).
//! - [`WriteBuf`] holds bytes waiting for a sink that may take only part of them, and
//!   grows with the bytes pending, not with the bytes written. Its hook **rejects** it
//!   ([`Reuse::Discard`]) when it still holds unflushed bytes or saw a write error: a
//!   dirty writer is never reused.
//! - [`PooledReader`] and [`PooledWriter`] are the blocking `bufio` shape:
//!   `Read + BufRead` and `Write` over any stream, with their buffer borrowed from a
//!   pool and handed back on drop. A `PooledWriter` never grows its buffer, so its
//!   bound is the capacity the buffer came with, reuse after reuse.
//! - [`BufferPool`] is Go's `ReverseProxy.BufferPool` hook, and [`copy`] the
//!   `io.CopyBuffer` that uses it.
//!
//! # Examples
//!
//! ```
//! use std::io::{BufRead, Write};
//! use std::sync::Arc;
//! use recycle_pool::Pool;
//! use recycle_pool::io::{PooledReader, PooledWriter, ReadBuf, WriteBuf};
//!
//! let readers = Arc::new(Pool::new(ReadBuf::new));
//! let writers = Arc::new(Pool::new(WriteBuf::new));
//!
//! // One "connection": read a line, answer it.
//! let mut input = PooledReader::new(&b"ping\nextra bytes"[..], readers.get_owned());
//! let mut output = PooledWriter::new(Vec::new(), writers.get_owned());
//! let mut line = String::new();
//! input.read_line(&mut line)?;
//! output.write_all(b"pong\n")?;
//! assert_eq!(output.into_inner()?, b"pong\n");
//! drop(input); // "extra bytes" is drained, not handed to the next connection
//!
//! assert_eq!(readers.stats().idle + writers.stats().idle, 2);
//! # Ok::<(), std::io::Error>(())
//! ```

use std::io::{self, BufRead, ErrorKind, Read, Write};
use std::ops::DerefMut;

use crate::pool::Pool;
use crate::recycle::{Recycle, Reuse};

#[cfg(feature = "tokio")]
pub mod tokio;

/// Capacity of [`ReadBuf::new`] and [`WriteBuf::new`]: 4 KiB, the size Go's server
/// pooled.
pub const DEFAULT_BUF_SIZE: usize = 4 * 1024;

/// Size of the buffer [`copy`] asks for when a [`BufferPool`] hands it an empty one:
/// 32 KiB, as Go's `io.Copy` and `ReverseProxy`.
pub const COPY_BUF_SIZE: usize = 32 * 1024;

/// Whether an I/O error is a "try again" rather than a failure.
pub(crate) fn is_transient(kind: ErrorKind) -> bool {
    matches!(kind, ErrorKind::WouldBlock | ErrorKind::Interrupted)
}

/// One `sink.write(bytes)`, as every writer here does it: a sink that takes none of a
/// non-empty slice (`Ok(0)`) fails with `WriteZero`, and a count past the slice (a
/// buggy sink) is clamped to it.
fn write_once<W: Write + ?Sized>(sink: &mut W, bytes: &[u8]) -> io::Result<usize> {
    match sink.write(bytes) {
        Ok(0) if !bytes.is_empty() => Err(io::Error::new(
            ErrorKind::WriteZero,
            "sink accepted no bytes",
        )),
        Ok(n) => Ok(n.min(bytes.len())),
        Err(e) => Err(e),
    }
}

// === impl ReadBuf ===

/// Bytes read from a source and not yet consumed.
///
/// The storage is initialised once, when the buffer is made, and then used as a
/// window: reads never zero memory, consuming advances a cursor, and the unread bytes
/// are moved to the front only when the free space at the end runs out.
///
/// # Scrubbing
///
/// Its [`Recycle`] hook drains it: every unread byte is dropped, every byte that may
/// have been written into it since the last reuse is zeroed, EOF and error state are
/// cleared, and the capacity is kept ([`Reuse::Keep`]). The bytes that may have been
/// written are those appended, all of the spare space once [`read_from`] handed it to a
/// reader (a `Read` impl may write anywhere in the slice it is given, whatever it
/// reports), and, through [`read_from_trusted`], the bytes the source reported: its
/// [`TrustedRead`] promise is that it wrote no others. So not even a reader handed the
/// spare space can see an earlier user's bytes, unless a `TrustedRead` impl breaks its
/// promise.
///
/// [`read_from`]: Self::read_from
/// [`read_from_trusted`]: Self::read_from_trusted
///
/// # Examples
///
/// ```
/// use recycle_pool::io::ReadBuf;
///
/// let mut buf = ReadBuf::new();
/// buf.read_from(&mut &b"GET / HTTP/1.1\r\n\r\n"[..])?;
/// assert!(buf.filled().starts_with(b"GET"));
/// buf.consume(4);
/// assert_eq!(&buf.filled()[..2], b"/ ");
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct ReadBuf {
    /// INVARIANT: `start <= end <= dirty <= buf.len()`; `buf[dirty..]` is all zero.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// How much of `buf` may hold bytes written since the last reuse: what the hook
    /// must scrub. The high-water mark of `end`, and all of `buf` once `read_from`
    /// handed a `Read` impl its spare space (it may write anywhere in the slice it is
    /// given, whatever it reports); `read_from_trusted` trusts the count a
    /// `TrustedRead` source reports and marks only that.
    dirty: usize,
    eof: bool,
    error: Option<ErrorKind>,
}

impl ReadBuf {
    /// A read buffer of [`DEFAULT_BUF_SIZE`] bytes.
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_BUF_SIZE)
    }

    /// A read buffer of `capacity` bytes (at least 1), zeroed once here.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            buf: vec![0; capacity.max(1)],
            start: 0,
            end: 0,
            dirty: 0,
            eof: false,
            error: None,
        }
    }

    /// The bytes read and not yet consumed.
    #[inline]
    pub fn filled(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Number of unread bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// Whether there are no unread bytes.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Size of the storage (it grows only through [`reserve`](Self::reserve) or when a
    /// read finds the buffer full).
    #[inline]
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Free space after the unread bytes: what the next [`read_from`](Self::read_from)
    /// can fill without moving or growing anything. A read that leaves some of it
    /// free was short, which on a socket means its receive queue is empty for now.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut buf = recycle_pool::io::ReadBuf::with_capacity(16);
    /// buf.read_from(&mut &b"GET /"[..])?;
    /// assert_eq!(buf.spare_capacity(), 11); // a short read: the source ran dry
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[inline]
    pub fn spare_capacity(&self) -> usize {
        self.buf.len() - self.end
    }

    /// Marks `n` unread bytes as consumed (at most [`len`](Self::len); more is clamped).
    #[inline]
    pub fn consume(&mut self, n: usize) {
        self.start += n.min(self.len());
        if self.start == self.end {
            // Nothing unread: reuse the whole buffer from the front, for free.
            self.start = 0;
            self.end = 0;
        }
    }

    /// Drops every unread byte (without scrubbing; the hook does that on return).
    pub fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }

    /// Makes room for at least `additional` more bytes after the unread ones: moves the
    /// unread bytes to the front if that is enough, grows the storage otherwise.
    ///
    /// # Panics
    ///
    /// With "capacity overflow" if the unread bytes plus `additional` exceed
    /// `usize::MAX`, or the new size `isize::MAX` bytes, as `Vec::reserve` does. If the
    /// allocator cannot provide the storage, the process aborts (as for any `Vec`:
    /// [`std::alloc::handle_alloc_error`]); it does not panic.
    pub fn reserve(&mut self, additional: usize) {
        if self.buf.len() - self.end >= additional {
            return;
        }
        self.compact();
        let needed = self.end.checked_add(additional).expect("capacity overflow");
        if needed > self.buf.len() {
            let new_len = needed.max(self.buf.len() * 2);
            self.buf.resize(new_len, 0);
        }
    }

    /// Appends bytes as if they had been read (for tests and sans-I/O callers).
    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        self.reserve(bytes.len());
        self.buf[self.end..self.end + bytes.len()].copy_from_slice(bytes);
        self.end += bytes.len();
        self.dirty = self.dirty.max(self.end);
    }

    /// Reads once from `source` into the free space, growing the buffer if it is full.
    ///
    /// The whole free space is handed to `source`, so all of it counts as dirty
    /// ([scrubbing](Self#scrubbing): one `memset` of the capacity per reuse); for a
    /// source that writes only what it reports (a socket), use [`read_from_trusted`].
    ///
    /// Returns what `source.read` returned. `Ok(0)` marks end of stream
    /// ([`is_eof`](Self::is_eof)); an error other than `WouldBlock` or `Interrupted` is
    /// remembered ([`error`](Self::error)) until the buffer is recycled.
    ///
    /// # Errors
    ///
    /// Whatever `source.read` returns.
    ///
    /// [`read_from_trusted`]: Self::read_from_trusted
    pub fn read_from<R: Read + ?Sized>(&mut self, source: &mut R) -> io::Result<usize> {
        self.read_with(source, false)
    }

    /// [`read_from`](Self::read_from) for a [`TrustedRead`] source: only the bytes the
    /// source reports count as dirty ([scrubbing](Self#scrubbing)).
    ///
    /// # Errors
    ///
    /// Whatever `source.read` returns.
    ///
    /// # Examples
    ///
    /// ```
    /// use recycle_pool::io::ReadBuf;
    ///
    /// let mut buf = ReadBuf::new();
    /// buf.read_from_trusted(&mut &b"GET / HTTP/1.1\r\n\r\n"[..])?;
    /// assert!(buf.filled().starts_with(b"GET"));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn read_from_trusted<R: TrustedRead + ?Sized>(
        &mut self,
        source: &mut R,
    ) -> io::Result<usize> {
        self.read_with(source, true)
    }

    fn read_with<R: Read + ?Sized>(&mut self, source: &mut R, trusted: bool) -> io::Result<usize> {
        let result = source.read(self.spare_for_read(trusted));
        self.after_read(result)
    }

    /// The free space a read may fill (made if there is none), marked as written
    /// unless `trusted` (a source that writes only the bytes it reports). Marked before
    /// the read: a reader may also fail or panic after writing. Follow with
    /// [`after_read`](Self::after_read).
    pub(crate) fn spare_for_read(&mut self, trusted: bool) -> &mut [u8] {
        if self.end == self.buf.len() {
            self.reserve(1);
        }
        if !trusted {
            self.dirty = self.buf.len();
        }
        &mut self.buf[self.end..]
    }

    /// Records what a read into [`spare_for_read`](Self::spare_for_read) did: `Ok(0)`
    /// is EOF, `Ok(n)` appends `n` bytes (clamped to the space: a reader claiming more
    /// than it was given is buggy, never trusted past the slice), a lasting error is
    /// kept.
    pub(crate) fn after_read(&mut self, result: io::Result<usize>) -> io::Result<usize> {
        match result {
            Ok(0) => {
                self.eof = true;
                Ok(0)
            }
            Ok(n) => {
                let n = n.min(self.buf.len() - self.end);
                self.end += n;
                self.dirty = self.dirty.max(self.end);
                Ok(n)
            }
            Err(e) => {
                if !is_transient(e.kind()) {
                    self.error = Some(e.kind());
                }
                Err(e)
            }
        }
    }

    /// Whether a read returned end of stream since the buffer was last recycled.
    pub fn is_eof(&self) -> bool {
        self.eof
    }

    /// The kind of the last read error (not `WouldBlock`/`Interrupted`) since the
    /// buffer was last recycled.
    pub fn error(&self) -> Option<ErrorKind> {
        self.error
    }

    /// The hook's work: back to the state of a new buffer, capacity kept.
    pub(crate) fn drain(&mut self) {
        self.buf[..self.dirty].fill(0);
        self.start = 0;
        self.end = 0;
        self.dirty = 0;
        self.eof = false;
        self.error = None;
    }

    fn compact(&mut self) {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
    }
}

/// A [`Read`] whose `read(buf)` writes only `buf[..n]`, the `n` bytes it reports, and
/// nothing when it fails: the contract [`ReadBuf::read_from_trusted`] relies on to
/// scrub only the bytes received.
///
/// `std::io::Read` lets an implementation write anywhere in the slice it is handed, so
/// this is a promise the type makes beyond `Read`. Breaking it is not undefined
/// behaviour, but it breaks [`ReadBuf`'s scrubbing](ReadBuf#scrubbing): implement it
/// only for sources that copy exactly what they report, such as a socket's `recv(2)`.
/// Implemented here for std's sockets and byte slices.
pub trait TrustedRead: Read {}

impl TrustedRead for &[u8] {}
impl TrustedRead for std::net::TcpStream {}
impl TrustedRead for &std::net::TcpStream {}
#[cfg(unix)]
impl TrustedRead for std::os::unix::net::UnixStream {}
#[cfg(unix)]
impl TrustedRead for &std::os::unix::net::UnixStream {}
impl<R: TrustedRead + ?Sized> TrustedRead for &mut R {}
impl<R: TrustedRead + ?Sized> TrustedRead for Box<R> {}

impl Default for ReadBuf {
    fn default() -> Self {
        Self::new()
    }
}

impl Recycle for ReadBuf {
    /// Drains the buffer ([scrubbing](ReadBuf#scrubbing)). Always [`Reuse::Keep`].
    fn recycle(&mut self) -> Reuse {
        self.drain();
        Reuse::Keep
    }

    fn capacity(&self) -> usize {
        self.buf.len()
    }
}

impl std::fmt::Debug for ReadBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Contents stay out of logs.
        f.debug_struct("ReadBuf")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .field("eof", &self.eof)
            .field("error", &self.error)
            .finish()
    }
}

// === impl WriteBuf ===

/// Bytes waiting to be written to a sink that may accept only part of them.
///
/// Append with [`extend_from_slice`](Self::extend_from_slice) (or through
/// [`bytes::BufMut`]); drain with [`write_to`](Self::write_to) or
/// [`flush_to`](Self::flush_to), which track how much the sink took and treat
/// `WouldBlock` as "later". A write error other than `WouldBlock`/`Interrupted` is
/// remembered.
///
/// The storage grows with the bytes *pending*, not with the bytes ever written: a
/// write that empties the buffer rewinds it for free, and when an append would not fit
/// behind bytes a partial write left, those bytes are first moved to the front if the
/// written prefix is at least as large as they are (so each byte is moved at most
/// about once per time it is written, and a sink that always takes all but a few bytes
/// never makes the buffer grow).
///
/// Its [`Recycle`] hook **rejects** the buffer ([`Reuse::Discard`]) when it still holds
/// unflushed bytes or saw an error; a clean one is cleared and kept.
///
/// # Examples
///
/// ```
/// use recycle_pool::io::WriteBuf;
///
/// let mut buf = WriteBuf::new();
/// buf.extend_from_slice(b"HTTP/1.1 200 OK\r\n\r\n");
/// let mut sink = Vec::new();
/// buf.flush_to(&mut sink)?;
/// assert!(buf.is_empty());
/// assert_eq!(sink, b"HTTP/1.1 200 OK\r\n\r\n");
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct WriteBuf {
    /// INVARIANT: `pos <= buf.len()`; `buf[pos..]` is what has not been written yet.
    buf: Vec<u8>,
    pos: usize,
    error: Option<ErrorKind>,
}

impl WriteBuf {
    /// A write buffer with room for [`DEFAULT_BUF_SIZE`] bytes.
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_BUF_SIZE)
    }

    /// A write buffer with room for `capacity` bytes before it grows.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            buf: Vec::with_capacity(capacity),
            pos: 0,
            error: None,
        }
    }

    /// Appends bytes to be written.
    #[inline]
    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        if bytes.len() > self.buf.capacity() - self.buf.len() {
            self.make_room();
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Appends one byte to be written.
    #[inline]
    pub fn push(&mut self, byte: u8) {
        if self.buf.len() == self.buf.capacity() {
            self.make_room();
        }
        self.buf.push(byte);
    }

    /// Called when an append would not fit: moves the unflushed bytes to the front if
    /// the written prefix is at least as large as they are (the move costs no more than
    /// the space it frees); otherwise the append grows the storage as a `Vec` does.
    #[cold]
    #[inline(never)]
    fn make_room(&mut self) {
        if self.pos > 0 && self.pos >= self.len() {
            self.compact();
        }
    }

    /// Moves the unflushed bytes to the front.
    fn compact(&mut self) {
        self.buf.copy_within(self.pos.., 0);
        self.buf.truncate(self.buf.len() - self.pos);
        self.pos = 0;
    }

    /// Appends `bytes` without ever growing the storage: if they do not fit behind the
    /// unflushed bytes, those are moved to the front first. The caller makes sure they
    /// fit beside them (`len() + bytes.len() <= capacity()`).
    pub(crate) fn extend_within_capacity(&mut self, bytes: &[u8]) {
        debug_assert!(self.len() + bytes.len() <= self.capacity());
        if bytes.len() > self.buf.capacity() - self.buf.len() {
            self.compact();
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The bytes not yet written.
    #[inline]
    pub fn unflushed(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// Number of bytes not yet written.
    #[inline]
    pub fn len(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Whether every byte has been written.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.pos == self.buf.len()
    }

    /// Room before the storage must grow.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Whether the buffer can be reused: nothing unflushed and no write error.
    pub fn is_clean(&self) -> bool {
        self.is_empty() && self.error.is_none()
    }

    /// The kind of the write error this buffer saw, if any.
    pub fn error(&self) -> Option<ErrorKind> {
        self.error
    }

    /// Writes once to `sink`: as much of the unflushed bytes as it takes.
    ///
    /// Returns how many bytes were written (0 only if there was nothing to write; never
    /// more than were unflushed, whatever count the sink returned).
    ///
    /// # Errors
    ///
    /// The sink's error. `WouldBlock` and `Interrupted` mean "try again" and leave the
    /// buffer as it was; anything else (and a sink that accepts 0 bytes, reported as
    /// `WriteZero`) is remembered and makes the buffer dirty for good.
    pub fn write_to<W: Write + ?Sized>(&mut self, sink: &mut W) -> io::Result<usize> {
        if self.is_empty() {
            return Ok(0);
        }
        let n = write_once(sink, &self.buf[self.pos..]).inspect_err(|e| self.record(e))?;
        self.advance_flushed(n);
        Ok(n)
    }

    /// Marks the first `n` unflushed bytes as written (clamped to `len()`).
    pub(crate) fn advance_flushed(&mut self, n: usize) {
        self.pos += n.min(self.len());
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
    }

    /// Remembers a write error on this buffer's stream, unless it means "try again".
    pub(crate) fn record(&mut self, error: &io::Error) {
        if !is_transient(error.kind()) {
            self.error = Some(error.kind());
        }
    }

    /// Writes until the buffer is empty, retrying `Interrupted`.
    ///
    /// # Errors
    ///
    /// `WouldBlock` when a non-blocking sink is full (call again when it is writable:
    /// what was written is remembered), or the first real error (remembered; the
    /// buffer is dirty).
    pub fn flush_to<W: Write + ?Sized>(&mut self, sink: &mut W) -> io::Result<()> {
        while !self.is_empty() {
            match self.write_to(sink) {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl Default for WriteBuf {
    fn default() -> Self {
        Self::new()
    }
}

impl Recycle for WriteBuf {
    /// Refuses a dirty writer (unflushed bytes or a write error); clears a clean one.
    fn recycle(&mut self) -> Reuse {
        if !self.is_clean() {
            return Reuse::Discard;
        }
        self.buf.clear();
        self.pos = 0;
        Reuse::Keep
    }

    fn capacity(&self) -> usize {
        self.buf.capacity()
    }
}

// SAFETY: every method delegates to `Vec<u8>`'s `BufMut` impl, which upholds the
// trait's contract; `pos` only indexes bytes already initialised in `buf`, and
// `advance_mut` only grows `buf.len()`, which keeps `pos <= buf.len()`. `chunk_mut`
// may first move the unflushed bytes to the front (`make_room`, safe code that keeps
// `pos <= buf.len()`); it hands out the spare capacity after that, as `Vec` does.
unsafe impl bytes::BufMut for WriteBuf {
    fn remaining_mut(&self) -> usize {
        self.buf.remaining_mut()
    }

    unsafe fn advance_mut(&mut self, cnt: usize) {
        // SAFETY: the caller guarantees `cnt` bytes of `chunk_mut` were initialised,
        // which is `Vec::advance_mut`'s own precondition.
        unsafe { self.buf.advance_mut(cnt) }
    }

    fn chunk_mut(&mut self) -> &mut bytes::buf::UninitSlice {
        if self.buf.len() == self.buf.capacity() {
            self.make_room();
        }
        self.buf.chunk_mut()
    }

    fn put_slice(&mut self, src: &[u8]) {
        self.extend_from_slice(src);
    }
}

impl std::fmt::Debug for WriteBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteBuf")
            .field("unflushed", &self.len())
            .field("capacity", &self.capacity())
            .field("error", &self.error)
            .finish()
    }
}

// === impl PooledReader ===

/// A buffered reader (`Read + BufRead`) over any `R: Read`, whose [`ReadBuf`] comes
/// from a pool: Go's pooled `bufio.Reader`.
///
/// `B` is any handle to a `ReadBuf`: a [`Pooled`](crate::Pooled), an
/// [`OwnedPooled`](crate::OwnedPooled), or a plain `Box<ReadBuf>`. Dropping the reader
/// drops the handle, so a pooled buffer goes back to its pool, drained.
///
/// # Examples
///
/// ```
/// use std::io::BufRead;
/// use recycle_pool::{Pool, io::{PooledReader, ReadBuf}};
///
/// let pool = Pool::new(ReadBuf::new);
/// let mut reader = PooledReader::new(&b"one\ntwo\n"[..], pool.get());
/// let lines: Vec<String> = reader.lines().collect::<Result<_, _>>()?;
/// assert_eq!(lines, ["one", "two"]);
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// A reader made with [`new`](Self::new) reads through [`ReadBuf::read_from`]; over a
/// [`TrustedRead`] source (a socket, a byte slice), one made with
/// [`trusted`](Self::trusted) reads through [`ReadBuf::read_from_trusted`], and
/// recycling its buffer zeroes only the bytes received, not the whole capacity (4 KiB
/// for a default buffer; [scrubbing](ReadBuf#scrubbing)).
pub struct PooledReader<R, B> {
    inner: R,
    buf: B,
    /// Made by `trusted`, for a `TrustedRead` `R`: reads go through
    /// `read_from_trusted`'s path, else through `read_from`'s. (A flag, not a function
    /// pointer taking `&mut R`, which would make the type invariant over `R`.)
    trusted: bool,
}

impl<R: TrustedRead, B: DerefMut<Target = ReadBuf>> PooledReader<R, B> {
    /// As [`new`](Self::new), for a source that writes only the bytes it reports (see
    /// the type's docs).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Read;
    /// use recycle_pool::{Pool, io::{PooledReader, ReadBuf}};
    ///
    /// let pool = Pool::new(ReadBuf::new);
    /// let mut reader = PooledReader::trusted(&b"hello"[..], pool.get());
    /// let mut text = String::new();
    /// reader.read_to_string(&mut text)?;
    /// assert_eq!(text, "hello");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn trusted(inner: R, buf: B) -> Self {
        Self::with(inner, buf, true)
    }
}

impl<R: Read, B: DerefMut<Target = ReadBuf>> PooledReader<R, B> {
    /// Wraps `inner`, buffering through `buf`, which is first drained as its pool's
    /// hook drains it ([scrubbing](ReadBuf#scrubbing)). So a buffer the caller manages
    /// (a `&mut ReadBuf` or a `Box` reused by hand) starts as a pooled one does; a
    /// pooled one, drained already, costs nothing more.
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

    /// The wrapped reader.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// The wrapped reader. Reading from it directly skips buffered bytes.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// The bytes buffered and not yet read.
    pub fn buffer(&self) -> &[u8] {
        self.buf.filled()
    }

    /// Unwraps the reader. Buffered bytes are dropped with the buffer handle (and
    /// drained by the pool's hook).
    pub fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: Read, B: DerefMut<Target = ReadBuf>> Read for PooledReader<R, B> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        // A large read into an empty buffer goes straight through, as `BufReader` does.
        if self.buf.is_empty() && out.len() >= self.buf.capacity() {
            return self.inner.read(out);
        }
        let available = self.fill_buf()?;
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: Read, B: DerefMut<Target = ReadBuf>> BufRead for PooledReader<R, B> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.buf.is_empty() {
            match self.buf.read_with(&mut self.inner, self.trusted) {
                Ok(_) => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(self.buf.filled())
    }

    fn consume(&mut self, amt: usize) {
        self.buf.consume(amt);
    }
}

impl<R, B> std::fmt::Debug for PooledReader<R, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad("PooledReader { .. }")
    }
}

// === impl PooledWriter ===

/// A buffered writer over any `W: Write`, whose [`WriteBuf`] comes from a pool: Go's
/// pooled `bufio.Writer`.
///
/// It buffers at most as many bytes as the buffer's capacity when the writer was made,
/// a bound fixed then and never re-read: a write that would go past it flushes first,
/// and a write at least that large goes straight to the stream, as
/// `std::io::BufWriter` does. The buffer never grows, so a pool hands the next writer
/// the same capacity: when the bytes a partial flush left (a `WouldBlock` midway) leave
/// no room behind them, they are moved to the front of the buffer instead.
///
/// Every write error other than `WouldBlock`/`Interrupted` is recorded in the buffer
/// (see [`WriteBuf::error`]), whether it came from flushing the buffer, from a write
/// passed straight through, or from the stream's own `flush`. A stream that takes none
/// of a non-empty write (`Ok(0)`) fails it with `WriteZero`, recorded the same way,
/// and a count past the bytes handed over is clamped to them. A recorded error, like a
/// byte left unflushed, makes the buffer dirty, and its pool's hook refuses it: a
/// dirty writer is never reused.
///
/// Dropping it flushes what it can (as `BufWriter` does) and then drops the buffer
/// handle, except after a failure: if the last attempt to write the buffer out failed
/// (a `WouldBlock` from a send timeout included) or the stream saw a write error, drop
/// writes nothing, so a blocking sink is never made to wait out its timeout a second
/// time. Nor does it write while the thread is panicking (the writer dropped by an
/// unwind): what was buffered is dropped with the buffer, which its pool refuses.
/// [`into_inner`](Self::into_inner) reports the final flush's error and hands the
/// stream back.
///
/// # Examples
///
/// ```
/// use std::io::Write;
/// use recycle_pool::{Pool, io::{PooledWriter, WriteBuf}};
///
/// let pool = Pool::new(WriteBuf::new);
/// let mut out = PooledWriter::new(Vec::new(), pool.get());
/// write!(out, "{} + {} = {}", 1, 1, 2)?;
/// assert_eq!(out.into_inner()?, b"1 + 1 = 2");
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct PooledWriter<W: Write, B: DerefMut<Target = WriteBuf>> {
    /// INVARIANT: `Some` until `into_inner` takes it.
    inner: Option<W>,
    buf: B,
    /// Most bytes buffered at once: the buffer's capacity when the writer was made.
    limit: usize,
    /// Whether the last attempt to write the buffer out failed.
    flush_failed: bool,
}

impl<W: Write, B: DerefMut<Target = WriteBuf>> PooledWriter<W, B> {
    /// Wraps `inner`, buffering through `buf`, at most `buf.capacity()` bytes at once.
    ///
    /// # Panics
    ///
    /// If `buf` is dirty (a pool never hands out such a buffer; a caller-managed one
    /// may be): if it still holds unflushed bytes, which belong to another stream, or
    /// if it saw a write error, which would make this writer take its stream for
    /// broken and drop what it buffered without a word.
    pub fn new(inner: W, buf: B) -> Self {
        assert!(
            buf.is_empty(),
            "PooledWriter::new: buffer holds another stream's bytes"
        );
        assert!(
            buf.error().is_none(),
            "PooledWriter::new: buffer saw another stream's write error"
        );
        Self {
            inner: Some(inner),
            limit: buf.capacity(),
            buf,
            flush_failed: false,
        }
    }

    /// The wrapped writer.
    pub fn get_ref(&self) -> &W {
        self.inner.as_ref().expect("inner is Some until into_inner")
    }

    /// The wrapped writer, mutably (to set a socket option, say). Writing to it
    /// directly puts those bytes *before* the ones still [buffered](Self::buffer).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Write;
    /// use recycle_pool::{Pool, io::{PooledWriter, WriteBuf}};
    ///
    /// let pool = Pool::new(WriteBuf::new);
    /// let mut out = PooledWriter::new(Vec::new(), pool.get());
    /// out.write_all(b" world")?;
    /// out.get_mut().extend_from_slice(b"hello"); // not buffered: goes first
    /// assert_eq!(out.into_inner()?, b"hello world");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn get_mut(&mut self) -> &mut W {
        self.inner.as_mut().expect("inner is Some until into_inner")
    }

    /// The bytes buffered and not yet written.
    pub fn buffer(&self) -> &[u8] {
        self.buf.unflushed()
    }

    /// Flushes the buffer and unwraps the writer.
    ///
    /// # Errors
    ///
    /// If the flush fails, an [`IntoInnerError`] that holds the error and hands the
    /// wrapped writer back, as `std::io::BufWriter::into_inner` does. The bytes that
    /// could not be written are not tried again: they are dropped with the buffer,
    /// which its pool refuses.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::{ErrorKind, Write};
    /// use recycle_pool::io::{PooledWriter, WriteBuf};
    ///
    /// let mut disk = [0u8; 4]; // a stream with room for 4 bytes
    /// let mut out = PooledWriter::new(&mut disk[..], Box::new(WriteBuf::new()));
    /// out.write_all(b"more than four bytes")?; // buffered
    /// let err = out.into_inner().unwrap_err();
    /// assert_eq!(err.error().kind(), ErrorKind::WriteZero);
    /// let rest: &mut [u8] = err.into_inner(); // the stream, handed back
    /// assert!(rest.is_empty());
    /// assert_eq!(&disk, b"more");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn into_inner(mut self) -> Result<W, IntoInnerError<W>> {
        let result = self.flush_buf();
        // Taken whatever happened, so that drop writes nothing more.
        let inner = self.inner.take().expect("inner is Some until into_inner");
        match result {
            Ok(()) => Ok(inner),
            Err(error) => Err(IntoInnerError { inner, error }),
        }
    }

    fn flush_buf(&mut self) -> io::Result<()> {
        let inner = self.inner.as_mut().expect("inner is Some until into_inner");
        let result = self.buf.flush_to(inner);
        self.flush_failed = result.is_err();
        result
    }
}

impl<W: Write, B: DerefMut<Target = WriteBuf>> Write for PooledWriter<W, B> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len() + data.len() > self.limit {
            self.flush_buf()?;
        }
        if data.len() >= self.limit {
            // As large as the bound: straight through, as `BufWriter` does.
            let inner = self.inner.as_mut().expect("inner is Some until into_inner");
            return write_once(inner, data).inspect_err(|e| self.buf.record(e));
        }
        // `len() + data.len() <= limit <= capacity()`: the capacity the buffer had when
        // the writer was made, which it never outgrows. Behind bytes a partial flush
        // left, the data may not fit without moving them to the front: it is never
        // allowed to grow the buffer instead (a pool would keep the bigger buffer and
        // the next writer would take a bigger bound).
        self.buf.extend_within_capacity(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_buf()?;
        let inner = self.inner.as_mut().expect("inner is Some until into_inner");
        inner.flush().inspect_err(|e| self.buf.record(e))
    }
}

impl<W: Write, B: DerefMut<Target = WriteBuf>> Drop for PooledWriter<W, B> {
    fn drop(&mut self) {
        let failed = self.flush_failed || self.buf.error().is_some();
        if self.inner.is_some() && !failed && !std::thread::panicking() {
            // Errors are dropped, as `BufWriter` drops them; a failed flush leaves the
            // buffer dirty and its pool refuses it.
            let _ = self.flush_buf();
        }
    }
}

impl<W: Write, B: DerefMut<Target = WriteBuf>> std::fmt::Debug for PooledWriter<W, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad("PooledWriter { .. }")
    }
}

/// The error of [`PooledWriter::into_inner`]: the final flush failed. Holds the error
/// and the wrapped writer, handed back.
///
/// The counterpart of `std::io::IntoInnerError`, with one difference: it hands back
/// the wrapped stream itself, not the buffered writer, because the buffer belongs to a
/// pool. The bytes the flush could not write are dropped with the buffer (whose pool
/// refuses it) and never tried again.
///
/// It converts into the [`io::Error`] it holds, so `?` works in a function returning
/// `io::Result`.
pub struct IntoInnerError<W> {
    inner: W,
    error: io::Error,
}

impl<W> IntoInnerError<W> {
    /// The error of the final flush.
    pub fn error(&self) -> &io::Error {
        &self.error
    }

    /// The wrapped writer, dropping the error.
    pub fn into_inner(self) -> W {
        self.inner
    }

    /// The error, dropping the wrapped writer.
    pub fn into_error(self) -> io::Error {
        self.error
    }

    /// The error and the wrapped writer.
    pub fn into_parts(self) -> (io::Error, W) {
        (self.error, self.inner)
    }
}

impl<W> From<IntoInnerError<W>> for io::Error {
    fn from(err: IntoInnerError<W>) -> io::Error {
        err.error
    }
}

impl<W> std::fmt::Debug for IntoInnerError<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The writer need not be `Debug`; the error is what matters.
        f.debug_struct("IntoInnerError")
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl<W> std::fmt::Display for IntoInnerError<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.error, f)
    }
}

impl<W> std::error::Error for IntoInnerError<W> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

// === BufferPool and copy ===

/// A source of byte buffers for copying: Go's `httputil.BufferPool`.
///
/// [`get`](BufferPool::get) hands out a buffer (its length does not matter; [`copy`]
/// uses its capacity), [`put`](BufferPool::put) takes it back. `Pool<Vec<u8>>`
/// implements it, so a pool built with a capacity bound is a ready-made copy buffer
/// pool. There, `get` is [`Pool::get`] then `detach`, and `put` is [`Pool::put`], so
/// the two interfaces mix freely and [`Stats`](crate::Stats) stays exact: a lent
/// buffer counts as detached (not in [`in_use`](crate::Stats::in_use), which counts
/// live guards), a buffer put back as a put.
///
/// # Examples
///
/// ```
/// use recycle_pool::{Pool, io::BufferPool};
///
/// let pool = Pool::builder(|| Vec::with_capacity(32 * 1024)).max_capacity(64 * 1024).build();
/// let buffers: &dyn BufferPool = &pool;
/// let buf = buffers.get();
/// assert!(buf.capacity() >= 32 * 1024);
/// buffers.put(buf);
/// ```
pub trait BufferPool: Send + Sync {
    /// Takes a buffer.
    fn get(&self) -> Vec<u8>;
    /// Gives a buffer back.
    fn put(&self, buf: Vec<u8>);
}

impl BufferPool for Pool<Vec<u8>> {
    /// [`Pool::get`] and `detach`: counts a hit or a miss, and a detach.
    fn get(&self) -> Vec<u8> {
        Pool::get(self).detach()
    }

    /// [`Pool::put`]: runs the hook and counts a put.
    fn put(&self, buf: Vec<u8>) {
        Pool::put(self, buf);
    }
}

/// Copies `reader` to `writer` until end of stream through a buffer borrowed from
/// `pool`, and returns the number of bytes copied: Go's `io.CopyBuffer` with a
/// `BufferPool`.
///
/// The buffer goes back to the pool on every exit, errors and panics included. An
/// empty buffer is sized to [`COPY_BUF_SIZE`]; otherwise its capacity is used (zeroed
/// once per copy, so no bytes of an earlier copy can travel).
///
/// # Errors
///
/// The first read or write error other than `Interrupted` (which is retried).
///
/// # Examples
///
/// ```
/// use recycle_pool::{Pool, io::copy};
///
/// let pool = Pool::new(|| Vec::with_capacity(8192));
/// let mut out = Vec::new();
/// let n = copy(&mut &b"hello, world"[..], &mut out, &pool)?;
/// assert_eq!((n, out.as_slice()), (12, &b"hello, world"[..]));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn copy<R, W, P>(reader: &mut R, writer: &mut W, pool: &P) -> io::Result<u64>
where
    R: Read + ?Sized,
    W: Write + ?Sized,
    P: BufferPool + ?Sized,
{
    /// Returns the buffer to the pool however `copy` exits.
    struct Lease<'a, P: BufferPool + ?Sized> {
        pool: &'a P,
        buf: Vec<u8>,
    }
    impl<P: BufferPool + ?Sized> Drop for Lease<'_, P> {
        fn drop(&mut self) {
            self.pool.put(std::mem::take(&mut self.buf));
        }
    }

    let mut lease = Lease {
        pool,
        buf: pool.get(),
    };
    let size = match lease.buf.capacity() {
        0 => COPY_BUF_SIZE,
        n => n,
    };
    lease.buf.clear();
    lease.buf.resize(size, 0);

    let mut copied = 0u64;
    loop {
        let n = match reader.read(&mut lease.buf) {
            Ok(0) => return Ok(copied),
            Ok(n) => n.min(lease.buf.len()),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        writer.write_all(&lease.buf[..n])?;
        copied += n as u64;
    }
}
