//! The HTTP status-line cache ([`StatusLines`]), and the per-second `Date` cache
//! ([`DateCache`], re-exported from its own module, [`date`](crate::date)).
//!
//! Go's server cached `"HTTP/1.1 200 OK\r\n"` per (status code, protocol) in a map
//! under an `RWMutex`, bounded to the codes it knew; unknown codes were built each time
//! and never cached. `StatusLines` keeps those semantics with lock-free reads.
//!
//! # Why `arc_swap`
//!
//! The cache is read on every response and written a handful of times in the life of a
//! process (once per registered code and version, when first used). Under an `RwLock`,
//! every read still writes the lock's reader count, one cache line that all cores fight
//! over. Behind an `ArcSwap` a read is a wait-free load that writes only the reading
//! thread's own slot, and a write is read-copy-update: copy the table, add the line,
//! swap it in with a compare-and-swap (retrying, on the newer table, if another writer
//! won). A line is built from the reason in the very table it is added to, so a
//! [`StatusLines::register`] racing a first use is never undone by a line built from
//! the reason it replaced. Old tables are freed when their last reader lets go.
//!
//! # The bound
//!
//! Only lines with a known reason phrase are cached: the codes in the IANA registry
//! ([`reason`]) and those given one with [`StatusLines::register`]. So the cache never
//! holds more than two lines (HTTP/1.0 and HTTP/1.1) per such code, whatever codes the
//! application sends. Any other code in `100..=599` gets a generic reason by class and
//! is built each time; codes outside that range are refused, as RFC 9110 §15 makes
//! them invalid ("All valid status codes are within the range of 100 to 599,
//! inclusive").

use std::fmt;

use bytes::{BufMut, Bytes};

pub use crate::date::{Clock, DATE_LEN, DateCache, SystemClock};
use crate::sync::{ArcCell, CellCache};

/// The HTTP version a status line is written for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    /// `HTTP/1.0`
    Http10,
    /// `HTTP/1.1`
    Http11,
}

impl Version {
    /// The version as it appears on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}

/// Why a status line could not be produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StatusError {
    /// The code is not a valid status code: RFC 9110 §15 allows `100..=599` only.
    OutOfRange(u16),
    /// A reason phrase holds a byte that may not appear in one (a control character
    /// such as CR or LF).
    InvalidReason,
}

impl fmt::Display for StatusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StatusError::OutOfRange(code) => {
                write!(f, "status code {code} is not in 100..=599")
            }
            StatusError::InvalidReason => f.write_str("reason phrase holds a control character"),
        }
    }
}

impl std::error::Error for StatusError {}

/// The reason phrase the IANA HTTP Status Code Registry gives `code`, if any.
///
/// # Examples
///
/// ```
/// assert_eq!(recycle_pool::status::reason(404), Some("Not Found"));
/// assert_eq!(recycle_pool::status::reason(299), None);
/// ```
pub const fn reason(code: u16) -> Option<&'static str> {
    Some(match code {
        100 => "Continue",
        101 => "Switching Protocols",
        102 => "Processing",
        103 => "Early Hints",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        207 => "Multi-Status",
        208 => "Already Reported",
        226 => "IM Used",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        305 => "Use Proxy",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        418 => "I'm a teapot",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        423 => "Locked",
        424 => "Failed Dependency",
        425 => "Too Early",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        506 => "Variant Also Negotiates",
        507 => "Insufficient Storage",
        508 => "Loop Detected",
        510 => "Not Extended",
        511 => "Network Authentication Required",
        _ => return None,
    })
}

/// The reason written for a valid code with no registered phrase: its class (RFC 9110
/// §15).
fn generic_reason(code: u16) -> &'static str {
    match code / 100 {
        1 => "Informational",
        2 => "Success",
        3 => "Redirection",
        4 => "Client Error",
        _ => "Server Error",
    }
}

/// The valid status codes (RFC 9110 §15).
const VALID: std::ops::RangeInclusive<u16> = 100..=599;
const CODES: usize = 500; // 100..=599

/// The table slot of `(code, version)`, or `OutOfRange`.
#[inline]
fn key(code: u16, version: Version) -> Result<usize, StatusError> {
    if !VALID.contains(&code) {
        return Err(StatusError::OutOfRange(code));
    }
    Ok(usize::from(code - 100) * 2 + version as usize)
}

fn build_line(code: u16, version: Version, reason: &str) -> Vec<u8> {
    let mut line = Vec::with_capacity(15 + reason.len());
    put_line(&mut line, code, version, reason);
    line
}

/// Writes `"HTTP/1.1 {code} {reason}\r\n"` piece by piece: no allocation.
fn put_line<B: BufMut + ?Sized>(out: &mut B, code: u16, version: Version, reason: &str) {
    out.put_slice(version.as_str().as_bytes());
    out.put_u8(b' ');
    out.put_slice(itoa::Buffer::new().format(code).as_bytes());
    out.put_u8(b' ');
    out.put_slice(reason.as_bytes());
    out.put_slice(b"\r\n");
}

/// One immutable generation of the cache.
#[derive(Clone)]
struct Table {
    /// INVARIANT: `index[key] == 0`, or `lines[index[key] - 1]` is the line for `key`.
    index: Box<[u16]>,
    lines: Vec<Bytes>,
    /// Reasons registered at run time; they take precedence over the IANA registry.
    custom: Vec<(u16, Box<str>)>,
}

impl Table {
    fn new() -> Self {
        Self {
            index: vec![0; CODES * 2].into_boxed_slice(),
            lines: Vec::new(),
            custom: Vec::new(),
        }
    }

    #[inline]
    fn get(&self, key: usize) -> Option<&Bytes> {
        match self.index[key] {
            0 => None,
            i => Some(&self.lines[usize::from(i) - 1]),
        }
    }

    /// Appends the cached line for `key`, if there is one.
    #[inline]
    fn put_cached<B: BufMut + ?Sized>(&self, key: usize, out: &mut B) -> bool {
        match self.get(key) {
            Some(line) => {
                out.put_slice(line);
                true
            }
            None => false,
        }
    }

    fn reason(&self, code: u16) -> Option<&str> {
        match self.custom.iter().find(|(c, _)| *c == code) {
            Some((_, reason)) => Some(reason),
            None => reason(code),
        }
    }

    /// A copy with `line` cached at `key` (replacing what was there).
    fn with_line(&self, key: usize, line: Bytes) -> Self {
        let mut next = self.clone();
        match next.index[key] {
            0 => {
                next.lines.push(line);
                // At most 2 * 500 lines, so the index fits in a u16.
                next.index[key] = next.lines.len() as u16;
            }
            i => next.lines[usize::from(i) - 1] = line,
        }
        next
    }
}

/// Status lines (`"HTTP/1.1 200 OK\r\n"`) for HTTP/1.0 and 1.1, cached lock-free.
///
/// See the [module docs](self) for the design and the bound. One `StatusLines` is meant
/// to be shared by every thread of a server (put it in a `static` or an `Arc`).
///
/// # Examples
///
/// ```
/// use recycle_pool::status::{StatusLines, Version};
///
/// let lines = StatusLines::new();
/// let mut out = Vec::new();
/// lines.write_line(200, Version::Http11, &mut out)?;
/// lines.write_line(404, Version::Http10, &mut out)?;
/// assert_eq!(out, b"HTTP/1.1 200 OK\r\nHTTP/1.0 404 Not Found\r\n");
///
/// // Unregistered codes get a generic reason and are not cached.
/// assert_eq!(&lines.line(299, Version::Http11)?[..], b"HTTP/1.1 299 Success\r\n");
/// assert_eq!(lines.cached(), 2);
///
/// // Never an invalid status line (RFC 9110 §15: 100..=599 only).
/// assert!(lines.line(600, Version::Http11).is_err());
/// # Ok::<(), recycle_pool::status::StatusError>(())
/// ```
pub struct StatusLines {
    table: ArcCell<Table>,
}

impl StatusLines {
    /// An empty cache; lines are built and cached on first use.
    pub fn new() -> Self {
        Self {
            table: ArcCell::new(Table::new()),
        }
    }

    /// Appends the status line for `code` to `out`: no allocation and no shared write
    /// once the line is cached.
    ///
    /// # Errors
    ///
    /// [`StatusError::OutOfRange`] if `code` is not in `100..=599`; nothing is written.
    #[inline]
    pub fn write_line<B: BufMut + ?Sized>(
        &self,
        code: u16,
        version: Version,
        out: &mut B,
    ) -> Result<(), StatusError> {
        let key = key(code, version)?;
        if !self.table.with(|table| table.put_cached(key, out)) {
            self.write_miss(code, version, key, out);
        }
        Ok(())
    }

    /// The status line for `code`, as a cheaply clonable `Bytes`.
    ///
    /// # Errors
    ///
    /// [`StatusError::OutOfRange`] if `code` is not in `100..=599`.
    pub fn line(&self, code: u16, version: Version) -> Result<Bytes, StatusError> {
        let key = key(code, version)?;
        match self.table.with(|table| table.get(key).cloned()) {
            Some(line) => Ok(line),
            None => Ok(self.miss(code, version, key)),
        }
    }

    /// Gives `code` the reason phrase `reason` from now on (replacing the registry's
    /// or an earlier one), e.g. `register(599, "Network Connect Timeout")`. The code
    /// is cached from then on, so it counts towards the bound.
    ///
    /// # Errors
    ///
    /// [`StatusError::OutOfRange`] for a code outside `100..=599`;
    /// [`StatusError::InvalidReason`] if `reason` holds a control character other than
    /// tab (RFC 9112: `reason-phrase = 1*( HTAB / SP / VCHAR / obs-text )`).
    ///
    /// # Examples
    ///
    /// ```
    /// use recycle_pool::status::{StatusLines, Version};
    ///
    /// let lines = StatusLines::new();
    /// lines.register(599, "Network Connect Timeout")?;
    /// assert_eq!(&lines.line(599, Version::Http11)?[..], b"HTTP/1.1 599 Network Connect Timeout\r\n");
    /// assert!(lines.register(599, "evil\r\nSet-Cookie: x").is_err());
    /// # Ok::<(), recycle_pool::status::StatusError>(())
    /// ```
    pub fn register(&self, code: u16, reason: &str) -> Result<(), StatusError> {
        key(code, Version::Http11)?;
        if reason
            .bytes()
            .any(|b| (b < 0x20 && b != b'\t') || b == 0x7f)
        {
            return Err(StatusError::InvalidReason);
        }
        self.table.update(|table| {
            let mut next = table.clone();
            match next.custom.iter_mut().find(|(c, _)| *c == code) {
                Some(entry) => entry.1 = reason.into(),
                None => next.custom.push((code, reason.into())),
            }
            // Rebuild the lines already cached for this code.
            for version in [Version::Http10, Version::Http11] {
                let key = key(code, version).expect("checked above");
                if next.get(key).is_some() {
                    let line = Bytes::from(build_line(code, version, reason));
                    next = next.with_line(key, line);
                }
            }
            Some(next)
        });
        Ok(())
    }

    /// A handle for one thread (an event-loop worker, say) that reads the cache
    /// without touching any shared cache line: it keeps its own reference to the
    /// current table and revalidates it with one relaxed load per line. Lines cached
    /// through any handle are seen by all.
    ///
    /// This is the hot-path API: a line through a reader costs about what a `match` on
    /// static lines does, and less than [`write_line`](Self::write_line) (one
    /// `arc_swap` load per line); the measured numbers are in the crate's
    /// `BENCHMARKS.md` (`bench/lib/benches/status.rs`).
    ///
    /// # Examples
    ///
    /// ```
    /// use recycle_pool::status::{StatusLines, Version};
    ///
    /// let lines = StatusLines::new();
    /// let mut reader = lines.reader();
    /// let mut out = Vec::new();
    /// reader.write_line(204, Version::Http11, &mut out)?;
    /// assert_eq!(out, b"HTTP/1.1 204 No Content\r\n");
    /// # Ok::<(), recycle_pool::status::StatusError>(())
    /// ```
    pub fn reader(&self) -> LineReader<'_> {
        LineReader {
            lines: self,
            cache: self.table.cache(),
        }
    }

    /// How many lines are cached: at most two per registered code.
    pub fn cached(&self) -> usize {
        self.table.with(|table| table.lines.len())
    }

    /// `write_line` off the cache: a code without a reason (never cached) is written
    /// piece by piece, so answering it allocates nothing; any other is cached first.
    #[cold]
    fn write_miss<B: BufMut + ?Sized>(&self, code: u16, version: Version, key: usize, out: &mut B) {
        if self.table.with(|table| table.reason(code).is_none()) {
            put_line(out, code, version, generic_reason(code));
        } else {
            out.put_slice(&self.miss(code, version, key));
        }
    }

    /// Builds a line that is not cached, and caches it if its code has a known reason.
    #[cold]
    fn miss(&self, code: u16, version: Version, key: usize) -> Bytes {
        // Reasons are only ever added, so a code without one is built each time
        // without touching the shared table's reference count.
        if self.table.with(|table| table.reason(code).is_none()) {
            return Bytes::from(build_line(code, version, generic_reason(code)));
        }
        // The line is built inside the update, from the very table it is installed
        // into: if `register` replaced the reason meanwhile, the update runs again on
        // the newer table and builds the line from the new reason. (Built from a reason
        // read earlier, it could overwrite a registration for good.)
        let mut line = Bytes::new();
        self.table.update(|table| {
            if let Some(existing) = table.get(key) {
                // Another thread cached it meanwhile (or registered a new reason).
                line = existing.clone();
                return None;
            }
            match table.reason(code) {
                Some(reason) => {
                    line = Bytes::from(build_line(code, version, reason));
                    Some(table.with_line(key, line.clone()))
                }
                // Unreachable while reasons are only added; never cached if it were.
                None => {
                    line = Bytes::from(build_line(code, version, generic_reason(code)));
                    None
                }
            }
        });
        line
    }
}

/// A per-thread reader of a [`StatusLines`], made by [`StatusLines::reader`].
pub struct LineReader<'a> {
    lines: &'a StatusLines,
    cache: CellCache<'a, Table>,
}

impl LineReader<'_> {
    /// [`StatusLines::write_line`] through this handle's cached table.
    ///
    /// # Errors
    ///
    /// [`StatusError::OutOfRange`] if `code` is not in `100..=599`; nothing is written.
    #[inline]
    pub fn write_line<B: BufMut + ?Sized>(
        &mut self,
        code: u16,
        version: Version,
        out: &mut B,
    ) -> Result<(), StatusError> {
        let key = key(code, version)?;
        if !self.cache.with(|table| table.put_cached(key, out)) {
            self.lines.write_miss(code, version, key, out);
        }
        Ok(())
    }
}

impl fmt::Debug for LineReader<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad("LineReader { .. }")
    }
}

impl Default for StatusLines {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for StatusLines {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StatusLines")
            .field("cached", &self.cached())
            .finish_non_exhaustive()
    }
}
