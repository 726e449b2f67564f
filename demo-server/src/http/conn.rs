//! The per-connection HTTP/1.1 state machine, and the [`Handler`] interface through
//! which it hands each request to an application.
//!
//! [`Conn`] owns everything HTTP/1.1 decides, for any application:
//!
//! - reading request heads, with their limits (414, 431, 408);
//! - **consuming every request body per its framing** (Content-Length or chunked, RFC
//!   9112 §6.3), whatever the handler does with it: bytes after a body are the next
//!   request, never part of this one;
//! - keep-alive, `Expect: 100-continue`, and pipelining: one exchange at a time, so
//!   responses go out in request order;
//! - errors: one [`RequestError`] per refusal, mapped to its status by [`RequestError::status`],
//!   answered (without a body to HEAD) and followed by a close;
//! - response framing ([`Response`]): `Content-Length`, chunked or close-delimited,
//!   and no body for HEAD, 204 and 304, whatever the handler writes.
//!
//! The handler ([`Handler`]) sees each request head (borrowed from the read buffer),
//! its body in pieces, and writes the response through [`Response`]. It may answer at
//! once, or later: a request can stay pending while the driver does other I/O (the
//! proxy waits for an upstream), and the driver resumes it by calling
//! [`Conn::process`] again.
//!
//! # Driving a connection
//!
//! [`Conn::process`] reads what it can from a [`ReadBuf`], answers into a
//! [`WriteBuf`], and stops when it needs more input, when the output passed
//! [`WRITE_HIGH_WATER`] (backpressure: the driver flushes first), when the handler has
//! nothing to give yet, or when the connection is done. It never does I/O and never
//! allocates once the pools and caches are warm. The driver's loop is: read into the
//! `ReadBuf` while [`Conn::wants_input`], call `process`, write the `WriteBuf` out,
//! repeat; close once [`Conn::is_done`] and the output is flushed. Call `process` again
//! whenever something it may wait for changed: input arrived, output drained, or the
//! handler's own source (an upstream socket) became ready.

use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;

use recycle_pool::io::{ReadBuf, WriteBuf};
use recycle_pool::status::{Clock, DateCache, LineReader, StatusLines, Version};

use super::body::ChunkedDecoder;
use super::encode::{self, TEXT};
use super::fields::{self, HeadOverLimit};
use super::parse::{self, Codings, Method, Request, RequestFraming, RequestHead};
use super::{RequestError, TCHAR};

/// Output size past which `process` stops producing and lets the driver flush.
pub const WRITE_HIGH_WATER: usize = 64 * 1024;

/// Default [`Settings::max_head_bytes`].
pub const DEFAULT_MAX_HEAD_BYTES: usize = 16 * 1024;
/// Default [`Settings::max_body_bytes`].
pub const DEFAULT_MAX_BODY_BYTES: u64 = 8 * 1024 * 1024;

/// The `Date` values a connection writes: a [`DateCache`] on any clock (tests freeze
/// time with their own).
pub type Dates = DateCache<Box<dyn Clock>>;

/// What a connection needs from its driver on every call, and nothing of the server
/// behind it (no pools, no counters, no log): the limits a request is held to, whether
/// responses must close their connection, the writers of the status line and the
/// `Date` field, and a hook the driver may set to see each request head (an access
/// log) and a counter it may lend. As hyper's `Conn` takes its settings through
/// setters.
///
/// The driver owns one per worker thread and lends it to every call.
pub struct Settings<'a> {
    /// Most bytes a request head may take (431 or 414 past it).
    pub max_head_bytes: usize,
    /// Most bytes a request body may take (413 past it).
    pub max_body_bytes: u64,
    /// Set when the server shuts down: responses close their connection.
    pub closing: bool,
    /// The status-line writer (this thread's reader of the shared cache).
    pub lines: LineReader<'a>,
    /// The `Date` field's value.
    pub dates: &'a Dates,
    /// Called with every request head that parsed, before its handler sees it.
    pub on_request: Option<fn(&Request<'_>)>,
    /// Counts every request answered, as soon as its exchange completes (so a
    /// response to the next request on the connection, in the same call, already sees
    /// it). This thread's counter: the only writer, so a load and a store.
    pub answered: Option<&'a AtomicU64>,
}

impl<'a> Settings<'a> {
    /// Settings with the default limits, not closing, with no hook.
    pub fn new(lines: &'a StatusLines, dates: &'a Dates) -> Self {
        Self {
            max_head_bytes: DEFAULT_MAX_HEAD_BYTES,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            closing: false,
            lines: lines.reader(),
            dates,
            on_request: None,
            answered: None,
        }
    }
}

impl std::fmt::Debug for Settings<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("max_head_bytes", &self.max_head_bytes)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("closing", &self.closing)
            .field("on_request", &self.on_request.is_some())
            .field("answered", &self.answered)
            .finish_non_exhaustive()
    }
}

/// An application behind a [`Conn`]: the demo routes, the proxy.
///
/// One value per connection, owned by the [`Conn`] (so per-connection state costs no
/// allocation); per-worker state it needs on every call (the proxy's upstream pool and
/// registry) comes in as [`Local`](Handler::Local), lent by the driver.
///
/// # The exchange
///
/// For each request the connection calls, in this order:
///
/// 1. [`on_request`](Handler::on_request) once, with the parsed head;
/// 2. then, until the exchange is complete, whenever [`Conn::process`] runs:
///    [`poll_response`](Handler::poll_response) while the response is not complete and
///    the output has room, and [`on_body`](Handler::on_body) with each piece of the
///    request body that arrived, then [`on_body_end`](Handler::on_body_end) once after
///    its last piece. Body calls are made only while the response is not complete:
///    once it is, the connection reads the rest of the body itself and drops it.
///
/// The exchange is complete when the response is complete and the request body was
/// read to its end (or the connection closes after the response, when the rest of the
/// body need not be read); then the next request's `on_request` may come. If the
/// exchange ends before its response is complete, [`on_abort`](Handler::on_abort) is
/// called instead, once (after that, the rest of the body is the connection's alone:
/// a broken one ends the connection without telling the handler).
///
/// A handler that switches protocols ([`Response::switch_protocols`]) turns the
/// exchange into a tunnel: from then on `on_body` gets the client's raw bytes,
/// `on_body_end` its end of stream, and `poll_response` is called on every
/// [`Conn::process`] until the handler ends the tunnel.
///
/// In every call the handler may write the response through the [`Response`] it is
/// given. A call that writes nothing and changes nothing means "not yet": the
/// connection stops, and the driver calls [`Conn::process`] again when the handler's
/// source is ready (the connection cannot know; the driver does).
///
/// # Examples
///
/// A handler that answers later, when the driver hands it what it waited for:
///
/// ```
/// use demo_server::http::conn::{BodyLen, Conn, Dates, Handler, Response, Settings};
/// use demo_server::http::parse::Request;
/// use recycle_pool::io::{ReadBuf, WriteBuf};
/// use recycle_pool::status::{DateCache, StatusLines, SystemClock};
///
/// #[derive(Default)]
/// struct Later {
///     /// What the "upstream" sent, once it did.
///     upstream: Option<&'static [u8]>,
/// }
///
/// impl Handler for Later {
///     type Local = ();
///
///     fn on_request(&mut self, _: &Request<'_>, _: &mut Response<'_, '_>, _: &mut ()) {}
///
///     fn poll_response(&mut self, res: &mut Response<'_, '_>, _: &mut ()) {
///         if let Some(body) = self.upstream.take() {
///             res.start(200, BodyLen::Known(body.len() as u64));
///             res.write_all(body);
///         }
///     }
/// }
///
/// let (lines, dates): (StatusLines, Dates) = (StatusLines::new(), DateCache::with_clock(Box::new(SystemClock)));
/// let mut settings = Settings::new(&lines, &dates);
/// let (mut input, mut output) = (ReadBuf::new(), WriteBuf::new());
/// let mut conn = Conn::new(Later::default());
/// input.extend_from_slice(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
/// conn.process(&mut input, &mut output, &mut settings, &mut ());
/// assert!(output.is_empty() && conn.is_responding()); // pending
///
/// conn.handler_mut().upstream = Some(b"later"); // the driver's I/O, elsewhere
/// conn.process(&mut input, &mut output, &mut settings, &mut ());
/// assert!(output.unflushed().ends_with(b"\r\n\r\nlater"));
/// assert_eq!(conn.requests(), 1);
/// ```
pub trait Handler {
    /// State shared by the connections of one local, lent to every call (`()` if
    /// none).
    type Local: ?Sized;

    /// What the connection does with a request whose `Transfer-Encoding` lists codings
    /// before its final `chunked` (`gzip, chunked`): refuse it with 501 (the default:
    /// the handler sees decoded bytes it could not decode further), or take it (a proxy
    /// forwards the still-coded body and the codings with it).
    const CODINGS: Codings = Codings::Refuse;

    /// Whether the request parser finds the fields that the request's `Connection`
    /// options name ([`Request::named_by_connection`]), as it reads the options: a
    /// proxy drops them (RFC 9110 §7.6.1). Off by default: a server that forwards
    /// nothing pays nothing for them.
    const CONNECTION_NAMES: bool = false;

    /// A request head arrived. The handler may start (or write all of) the response
    /// now, or leave it for a later call.
    ///
    /// With `Expect: 100-continue`, a response started here declines the body: the
    /// connection answers the client without asking for the body and closes after the
    /// response (so a handler that needs the body must not start its response in this
    /// call). Otherwise the connection sends `100 Continue` itself.
    fn on_request(
        &mut self,
        req: &Request<'_>,
        res: &mut Response<'_, '_>,
        local: &mut Self::Local,
    );

    /// A piece of the request body (decoded: no chunk framing). Returns how many of
    /// its bytes the handler took, from the front; the connection offers the rest
    /// again, first, on the next [`Conn::process`], and reads nothing more from the
    /// client meanwhile ([`Conn::wants_input`] is false). The default drops the body.
    fn on_body(
        &mut self,
        data: &[u8],
        res: &mut Response<'_, '_>,
        local: &mut Self::Local,
    ) -> usize {
        let _ = (res, local);
        data.len()
    }

    /// The request body ended: its last piece was taken (called only for requests
    /// with a body, and only while the response is not complete).
    fn on_body_end(&mut self, res: &mut Response<'_, '_>, local: &mut Self::Local) {
        let _ = (res, local);
    }

    /// The response may progress: write what is ready, as far as
    /// [`Response::room`] allows. Called on every [`Conn::process`] while the
    /// response is not complete, until a call writes nothing.
    fn poll_response(&mut self, res: &mut Response<'_, '_>, local: &mut Self::Local) {
        let _ = (res, local);
    }

    /// The exchange ended before its response was complete (a broken or truncated
    /// request body, or the driver dropping the connection through [`Conn::abort`]):
    /// drop what is held for it (the proxy closes its upstream connection rather than
    /// pooling it). Not called for a response the handler cut off itself
    /// ([`Response::abort`]), nor once the response is complete.
    fn on_abort(&mut self, local: &mut Self::Local) {
        let _ = local;
    }
}

/// How long a response body is, as the handler knows it when it starts the response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyLen {
    /// Exactly this many bytes: `Content-Length`.
    Known(u64),
    /// Not known in advance: chunked for HTTP/1.1, close-delimited for HTTP/1.0.
    Unknown,
}

/// Where the response body of the current exchange is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OutBody {
    /// No response head yet.
    NotStarted,
    /// This many bytes still to write.
    Length(u64),
    /// Chunks, until the handler finishes.
    Chunked,
    /// Raw bytes until the connection closes (an HTTP/1.0 body of unknown length).
    Close,
    /// A tunnel after a `101 Switching Protocols`: raw bytes, until the handler
    /// finishes its direction.
    Tunnel,
    /// The handler finished the tunnel's direction toward the client: once the output
    /// is flushed, the driver shuts down the socket's write side
    /// ([`Conn::take_shutdown`]), and then it is `Complete`.
    Shutdown,
    /// Nothing more: the response is complete (or never had a body).
    Complete,
}

/// The current exchange: what the response depends on from the request, and where the
/// response is.
#[derive(Clone, Debug)]
struct Exchange {
    version: Version,
    /// The request is HEAD: its response has no body (RFC 9110 §9.3.2).
    head_request: bool,
    /// Whether the connection stays open after this exchange.
    keep_alive: bool,
    /// The client waits for `100 Continue` before it sends the body.
    expect_continue: bool,
    body: OutBody,
    /// The response head is written up to its fields; its blank line is not.
    head_open: bool,
    /// The handler gave up on the response: close after what was written. Also set by
    /// [`Response::switch_protocols`], with `body` at `Tunnel`: either way the exchange
    /// leaves `Phase::Exchange`.
    aborted: bool,
}

impl Exchange {
    /// Before any request head: errors are answered in HTTP/1.1, with a body.
    const NONE: Exchange = Exchange {
        version: Version::Http11,
        head_request: false,
        keep_alive: true,
        expect_continue: false,
        body: OutBody::NotStarted,
        head_open: false,
        aborted: false,
    };
}

/// The response to the current request, as the handler writes it. The connection
/// frames it: the handler says how long the body is ([`BodyLen`]) and writes its
/// bytes; chunk framing, `Content-Length`, `Connection` and `Date` are the
/// connection's, and so is dropping the body of a response to HEAD and of a 204 or 304.
///
/// Header fields go between [`start`](Self::start) and the end of the same handler
/// call (or the first body write), after which the head is closed.
pub struct Response<'a, 'c> {
    out: &'a mut WriteBuf,
    ex: &'a mut Exchange,
    settings: &'a mut Settings<'c>,
}

/// Whether `name` is one of the fields the connection writes itself (see
/// [`Response::header`]): `Date`, `Connection`, `Content-Length`, `Transfer-Encoding`.
#[inline(always)]
fn own_field(name: &str) -> bool {
    match name.len() {
        4 => name.eq_ignore_ascii_case("date"),
        10 => name.eq_ignore_ascii_case("connection"),
        14 => name.eq_ignore_ascii_case("content-length"),
        17 => name.eq_ignore_ascii_case("transfer-encoding"),
        _ => false,
    }
}

impl Response<'_, '_> {
    /// Starts the final response: status line, `Date`, the framing field for `len`
    /// (`Content-Length`, or `Transfer-Encoding: chunked`), and `Connection` when the
    /// connection closes after it (or is HTTP/1.0 keep-alive).
    ///
    /// `status` is a final status, 200..=599 (RFC 9110 §15; anything else is a bug,
    /// answered as 500). For a response without a body (to HEAD; 204; 304) no body
    /// bytes are written whatever the handler writes: `Content-Length` is still sent
    /// for `Known` lengths (what the GET would have had), except on 204 (RFC 9110
    /// §8.6). Starting twice is a bug and does nothing.
    #[inline]
    pub fn start(&mut self, status: u16, len: BodyLen) {
        self.start_with(status, len, None);
    }

    /// Starts a final response whose body still carries transfer codings other than
    /// chunked (`codings`, as a list: `gzip`), as a proxy forwards one: the connection
    /// chunks the body after them (`Transfer-Encoding: gzip, chunked`, RFC 9112 §6.1).
    ///
    /// HTTP/1.1 clients only: an HTTP/1.0 client cannot be told about a transfer
    /// coding, so the caller answers it otherwise (asking is a bug, and the response is
    /// cut off).
    pub fn start_coded(&mut self, status: u16, codings: &[u8]) {
        if self.ex.version != Version::Http11 {
            debug_assert!(false, "transfer codings to an HTTP/1.0 client");
            self.abort();
            return;
        }
        self.start_with(status, BodyLen::Unknown, Some(codings));
    }

    /// Closes the connection after this response (a request the handler answers
    /// whose following bytes it will not read as requests). Call it before
    /// [`start`](Self::start), so that the head says `Connection: close`.
    #[inline]
    pub fn close(&mut self) {
        self.ex.keep_alive = false;
    }

    /// Starts and completes a short `text/plain` response: the reason phrase of
    /// `status` and a newline (none to HEAD). The connection's own errors are these.
    pub fn status_page(&mut self, status: u16) {
        let reason = recycle_pool::status::reason(status).unwrap_or("Error");
        self.start(status, BodyLen::Known(reason.len() as u64 + 1));
        self.header("Content-Type", TEXT.as_bytes());
        self.write_all(reason.as_bytes());
        self.write_all(b"\n");
    }

    /// Starts the head: decides the framing, then writes the status line and the
    /// connection's own fields; the handler's fields follow ([`header`](Self::header)).
    #[inline(always)]
    fn start_with(&mut self, status: u16, len: BodyLen, codings: Option<&[u8]>) {
        if self.ex.body != OutBody::NotStarted {
            debug_assert!(false, "response started twice");
            return;
        }
        let status = if (200..=599).contains(&status) {
            status
        } else {
            debug_assert!(false, "not a final status: {status}");
            500
        };
        self.frame(status, len);
        self.write_head(status, len, codings);
        self.ex.head_open = true;
    }

    /// Decides how the body of a `status` response of `len` is delimited, and whether
    /// the connection persists after it.
    #[inline(always)]
    fn frame(&mut self, status: u16, len: BodyLen) {
        if self.ex.expect_continue {
            // A final response before the client was asked for the body declines it
            // (RFC 9110 §10.1.1): say so, and close instead of waiting for a body the
            // client may never send.
            self.ex.expect_continue = false;
            self.ex.keep_alive = false;
        }
        let no_body = self.ex.head_request || status == 204 || status == 304;
        self.ex.body = match len {
            _ if no_body => OutBody::Complete,
            BodyLen::Known(0) => OutBody::Complete,
            BodyLen::Known(n) => OutBody::Length(n),
            BodyLen::Unknown if self.ex.version == Version::Http11 => OutBody::Chunked,
            BodyLen::Unknown => {
                self.ex.keep_alive = false; // RFC 9112 §6.3: the close delimits it
                OutBody::Close
            }
        };
        self.ex.keep_alive &= !self.settings.closing;
    }

    /// Writes the status line, `Date`, the framing field that [`frame`](Self::frame)
    /// chose (`Transfer-Encoding` listing `codings` before `chunked`, if any) and
    /// `Connection` where the default does not hold.
    #[inline(always)]
    fn write_head(&mut self, status: u16, len: BodyLen, codings: Option<&[u8]>) {
        let out = &mut *self.out;
        if self
            .settings
            .lines
            .write_line(status, self.ex.version, out)
            .is_err()
        {
            unreachable!("200..=599 are valid status codes");
        }
        out.extend_from_slice(b"Date: ");
        self.settings.dates.write_cached(out);
        out.extend_from_slice(b"\r\n");
        match len {
            BodyLen::Known(_) if status == 204 => {}
            BodyLen::Known(n) => encode::field(
                out,
                b"Content-Length: ",
                itoa::Buffer::new().format(n).as_bytes(),
            ),
            BodyLen::Unknown if self.ex.body == OutBody::Chunked => match codings {
                None => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
                Some(codings) => {
                    out.extend_from_slice(b"Transfer-Encoding: ");
                    out.extend_from_slice(codings);
                    out.extend_from_slice(b", chunked\r\n");
                }
            },
            BodyLen::Unknown => {}
        }
        if !self.ex.keep_alive {
            out.extend_from_slice(b"Connection: close\r\n");
        } else if self.ex.version == Version::Http10 {
            out.extend_from_slice(b"Connection: keep-alive\r\n");
        }
    }

    /// Adds a header field to the head [`start`](Self::start) began (ignored once the
    /// head is closed). The connection's own fields are refused: `Content-Length`,
    /// `Transfer-Encoding` and `Connection` (the framing is the connection's), and
    /// `Date` (the connection writes it, RFC 9110 §6.6.1: a copy, say an upstream's,
    /// would make two). The name
    /// must be a token and the value a valid field value (RFC 9110 §5.1, §5.5: no CR,
    /// LF or other control character but HTAB), as httparse gives them: debug builds
    /// assert it.
    #[inline]
    pub fn header(&mut self, name: &str, value: &[u8]) {
        if !self.ex.head_open {
            debug_assert!(false, "header {name} outside an open head");
            return;
        }
        // RFC 9110 §5.1, §5.5: a token, and field-vchar / SP / HTAB. Handlers are the
        // application's code, and the proxy passes fields httparse validated: checked
        // in debug builds only (a scan cost a small header some 70 instructions).
        debug_assert!(
            !name.is_empty() && name.bytes().all(|b| TCHAR.contains(b)),
            "header name {name:?} is not a token"
        );
        debug_assert!(
            value
                .iter()
                .all(|&b| b == b'\t' || (b >= b' ' && b != 0x7f)),
            "header {name}: invalid value {:?}",
            String::from_utf8_lossy(value)
        );
        if !own_field(name) {
            let out = &mut *self.out;
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
    }

    /// Adds header field lines already written out: `lines` is one or more whole
    /// `name: value\r\n` lines, each as [`header`](Self::header) would write it (one
    /// space after the colon), as a proxy passes on a run of fields it received, in one
    /// copy. The same rules hold (ignored once the head is closed; names and values
    /// valid, none of the connection's own fields): the caller vouches for them, and
    /// debug builds assert it.
    #[inline]
    pub fn header_lines(&mut self, lines: &[u8]) {
        if !self.ex.head_open {
            debug_assert!(false, "header lines outside an open head");
            return;
        }
        debug_assert!(
            lines.ends_with(b"\r\n")
                && lines[..lines.len() - 2].split(|&b| b == b'\n').all(|line| {
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    let Some(colon) = line.windows(2).position(|w| w == b": ") else {
                        return false;
                    };
                    let (name, value) = (&line[..colon], &line[colon + 2..]);
                    let name = std::str::from_utf8(name).unwrap_or("");
                    !name.is_empty()
                        && name.bytes().all(|b| TCHAR.contains(b))
                        && !own_field(name)
                        && value
                            .iter()
                            .all(|&b| b == b'\t' || (b >= b' ' && b != 0x7f))
                }),
            "not whole field lines, or the connection's own: {:?}",
            String::from_utf8_lossy(lines)
        );
        self.out.extend_from_slice(lines);
    }

    /// Sends an interim response (1xx other than 101) before the final one: to an
    /// HTTP/1.1 client only (RFC 9110 §15.2), and only before [`start`](Self::start).
    #[inline]
    pub fn interim(&mut self, status: u16) {
        self.interim_with(status, []);
    }

    /// [`interim`](Self::interim) with header fields (a proxy forwarding `103 Early
    /// Hints` and its `Link` fields). Names and values as for [`header`](Self::header).
    pub fn interim_with<'f>(
        &mut self,
        status: u16,
        fields: impl IntoIterator<Item = (&'f str, &'f [u8])>,
    ) {
        if self.ex.body != OutBody::NotStarted || !(100..=199).contains(&status) || status == 101 {
            debug_assert!(
                false,
                "interim {status} after the final response or not 1xx"
            );
            return;
        }
        if self.ex.version != Version::Http11 {
            return;
        }
        if status == 100 {
            self.ex.expect_continue = false;
        }
        let _ = self
            .settings
            .lines
            .write_line(status, Version::Http11, self.out);
        self.ex.head_open = true;
        for (name, value) in fields {
            self.header(name, value);
        }
        self.close_head();
    }

    /// Body bytes [`write`](Self::write) takes now before the output passes
    /// [`WRITE_HIGH_WATER`] (0: wait for the next [`Handler::poll_response`]).
    #[inline]
    pub fn room(&self) -> usize {
        WRITE_HIGH_WATER.saturating_sub(self.out.len())
    }

    /// Writes body bytes, as many as [`room`](Self::room) allows (and, for a
    /// `Known` length, no more than remain); returns how many it took. Once the
    /// response is complete (or if it has no body: HEAD, 204, 304) it takes, and
    /// drops, them all.
    #[inline]
    pub fn write(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.room());
        let taken = self.write_body(&data[..n]);
        if self.ex.body == OutBody::Complete {
            data.len()
        } else {
            taken
        }
    }

    /// Writes all of `data` as body bytes, past the high-water mark if need be: for
    /// small bodies already in memory (a fixed page, an error message).
    #[inline]
    pub fn write_all(&mut self, data: &[u8]) {
        let taken = self.write_body(data);
        debug_assert_eq!(taken, data.len(), "more body than its Content-Length");
    }

    /// Appends body bytes, framed; returns how many it took (all, but for the rest of a
    /// `Known` length).
    #[inline(always)]
    fn write_body(&mut self, data: &[u8]) -> usize {
        self.close_head();
        let out = &mut *self.out;
        match &mut self.ex.body {
            OutBody::NotStarted => {
                debug_assert!(false, "body before the response started");
                0
            }
            OutBody::Complete => data.len(),
            OutBody::Length(remaining) => {
                let n = data
                    .len()
                    .min(usize::try_from(*remaining).unwrap_or(usize::MAX));
                out.extend_from_slice(&data[..n]);
                *remaining -= n as u64;
                if *remaining == 0 {
                    self.ex.body = OutBody::Complete;
                }
                n
            }
            OutBody::Chunked => {
                encode::write_chunk(out, data);
                data.len()
            }
            OutBody::Close | OutBody::Tunnel => {
                out.extend_from_slice(data);
                data.len()
            }
            OutBody::Shutdown => data.len(),
        }
    }

    /// Ends the body: the last chunk of a chunked one. A `Known` length must have
    /// been written in full: ending it short is a bug, and cuts the response off
    /// ([`abort`](Self::abort)). In a tunnel, ends the direction toward the client: its
    /// end of stream follows what was written (the driver shuts down the socket's write
    /// side), while the client's bytes still come.
    #[inline]
    pub fn finish(&mut self) {
        self.close_head();
        match self.ex.body {
            OutBody::NotStarted => debug_assert!(false, "finish before the response started"),
            OutBody::Complete | OutBody::Shutdown => {}
            OutBody::Tunnel => self.ex.body = OutBody::Shutdown,
            OutBody::Chunked => {
                self.out.extend_from_slice(encode::LAST_CHUNK);
                self.ex.body = OutBody::Complete;
            }
            OutBody::Close => self.ex.body = OutBody::Complete,
            OutBody::Length(_) => {
                debug_assert!(false, "body shorter than its Content-Length");
                self.abort();
            }
        }
    }

    /// Gives up on the response (the proxy's upstream died mid-body): the connection
    /// closes once what was written is flushed, so the client sees a cut-off response,
    /// never a wrong one. With nothing started, the client sees only the close: start
    /// an error response instead to give it a status. A request waiting for
    /// `100 Continue` is not sent one: its body is declined (RFC 9110 §10.1.1).
    #[inline]
    pub fn abort(&mut self) {
        self.close_head();
        self.ex.aborted = true;
        self.ex.keep_alive = false;
        self.ex.expect_continue = false;
    }

    /// Switches the connection to another protocol (RFC 9110 §15.2.2, §7.8): writes a
    /// `101 Switching Protocols` head with `Connection: upgrade` and `Upgrade:
    /// protocols`, to which [`header`](Self::header) may add fields. From then on the
    /// connection is a tunnel of raw bytes both ways:
    ///
    /// - [`write`](Self::write) passes bytes to the client unframed, as far as
    ///   [`room`](Self::room) allows, and [`finish`](Self::finish) ends that direction
    ///   (its end of stream goes to the client once what was written is flushed);
    /// - [`Handler::on_body`] gets every byte the client sends after the request head
    ///   (bytes it pipelined behind the request included), taking what it can as for
    ///   a body (backpressure), and [`Handler::on_body_end`] the client's end of stream;
    /// - [`Handler::poll_response`] is called on every [`Conn::process`], even when
    ///   the output has no room (so that a tunnel that failed ends then);
    /// - [`end_tunnel`](Self::end_tunnel) (or [`abort`](Self::abort)) ends the tunnel:
    ///   the connection closes once what was written is flushed, and the handler is
    ///   told nothing more ([`Handler::on_abort`] only if the driver drops the
    ///   connection first).
    ///
    /// Only from [`Handler::poll_response`], before any final response, in an
    /// exchange of an HTTP/1.1 request without a body; anything else is a bug, and
    /// the response is cut off.
    pub fn switch_protocols(&mut self, protocols: &[u8]) {
        if self.ex.body != OutBody::NotStarted || self.ex.version != Version::Http11 {
            debug_assert!(false, "switching protocols after a response or on HTTP/1.0");
            self.abort();
            return;
        }
        let _ = self
            .settings
            .lines
            .write_line(101, Version::Http11, self.out);
        self.out.extend_from_slice(b"Connection: upgrade\r\n");
        encode::field(self.out, b"Upgrade: ", protocols);
        self.ex.body = OutBody::Tunnel;
        self.ex.keep_alive = false;
        self.ex.expect_continue = false;
        self.ex.head_open = true;
        // The exchange leaves `Phase::Exchange` through the check it makes for an
        // aborted response, so that an ordinary exchange pays nothing for this
        // (`Conn::enter_tunnel` clears it).
        self.ex.aborted = true;
    }

    /// Ends a tunnel ([`switch_protocols`](Self::switch_protocols)): the connection
    /// closes once what was written is flushed.
    pub fn end_tunnel(&mut self) {
        self.abort();
    }

    /// Whether the final response has started.
    #[inline]
    pub fn is_started(&self) -> bool {
        self.ex.body != OutBody::NotStarted
    }

    /// Whether the response is complete: started, and no more body bytes to write (all
    /// of a `Known` length, a finished one, or one without a body).
    #[inline]
    pub fn is_complete(&self) -> bool {
        self.ex.body == OutBody::Complete
    }

    /// Ends the head with its blank line, if it is open.
    #[inline]
    fn close_head(&mut self) {
        if self.ex.head_open {
            self.ex.head_open = false;
            self.out.extend_from_slice(b"\r\n");
        }
    }
}

/// How a request body is being read.
#[derive(Clone, Debug)]
enum RequestBodyReader {
    /// This many bytes are left.
    Length(u64),
    Chunked(ChunkedDecoder),
    /// A tunnel's bytes from the client, until its end of stream.
    Tunnel,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Waiting for (the rest of) a request head.
    Head,
    /// A request is being answered (and its body read).
    Exchange,
    /// The handler switched protocols: raw bytes both ways, until it ends the tunnel.
    Tunnel,
    /// No more requests on this connection: flush and close.
    Done,
}

/// The state of one HTTP/1.1 connection, with its handler `H`.
///
/// # Examples
///
/// ```
/// use demo_server::http::conn::{BodyLen, Conn, Dates, Handler, Response, Settings};
/// use demo_server::http::parse::Request;
/// use recycle_pool::io::{ReadBuf, WriteBuf};
/// use recycle_pool::status::{DateCache, StatusLines, SystemClock};
///
/// struct Hello;
///
/// impl Handler for Hello {
///     type Local = ();
///
///     fn on_request(&mut self, _: &Request<'_>, res: &mut Response<'_, '_>, _: &mut ()) {
///         res.start(200, BodyLen::Known(13));
///         res.write_all(b"Hello, World!");
///     }
/// }
///
/// let (lines, dates): (StatusLines, Dates) = (StatusLines::new(), DateCache::with_clock(Box::new(SystemClock)));
/// let mut settings = Settings::new(&lines, &dates);
/// let (mut input, mut output) = (ReadBuf::new(), WriteBuf::new());
/// let mut conn = Conn::new(Hello);
/// input.extend_from_slice(b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n");
/// conn.process(&mut input, &mut output, &mut settings, &mut ());
/// assert!(output.unflushed().starts_with(b"HTTP/1.1 200 OK\r\n"));
/// assert!(output.unflushed().ends_with(b"\r\n\r\nHello, World!"));
/// assert!(!conn.is_done(), "keep-alive: ready for the next request");
/// ```
#[derive(Clone, Debug)]
pub struct Conn<H> {
    handler: H,
    phase: Phase,
    /// Bytes of the buffered input already scanned for the end of a head.
    scanned: usize,
    ex: Exchange,
    /// The request body still to read; `None` once read (or if there is none).
    body: Option<RequestBodyReader>,
    /// The handler took only part of the body offered: read no more until it takes it.
    stalled: bool,
    /// Whether the connection ended on an error.
    failed: Option<RequestError>,
    requests: u64,
}

impl<H: Handler> Conn<H> {
    /// A fresh connection, waiting for its first request.
    pub const fn new(handler: H) -> Self {
        Self {
            handler,
            phase: Phase::Head,
            scanned: 0,
            ex: Exchange::NONE,
            body: None,
            stalled: false,
            failed: None,
            requests: 0,
        }
    }

    /// The handler.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// The handler, to hand it what the driver read for it (an upstream response).
    pub fn handler_mut(&mut self) -> &mut H {
        &mut self.handler
    }

    /// Whether the connection will take more input now: while waiting for a head, or
    /// for request body the handler is taking, and the output is under the high-water
    /// mark.
    pub fn wants_input(&self, output_len: usize) -> bool {
        let reading = match self.phase {
            Phase::Head => true,
            Phase::Exchange | Phase::Tunnel => self.body.is_some() && !self.stalled,
            Phase::Done => false,
        };
        reading && output_len < WRITE_HIGH_WATER
    }

    /// Whether the connection takes no more requests: flush the output, then close.
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// Whether a response is in progress (or awaited): `process` may produce output
    /// without new input.
    pub fn is_responding(&self) -> bool {
        (self.phase == Phase::Exchange && self.ex.body != OutBody::Complete)
            || self.phase == Phase::Tunnel
    }

    /// Whether the connection is a tunnel ([`Response::switch_protocols`]).
    pub fn is_tunnel(&self) -> bool {
        self.phase == Phase::Tunnel
    }

    /// Whether the driver is to shut down the socket's write side now: the handler
    /// ended the tunnel's direction toward the client ([`Response::finish`]). Call it
    /// once the output is flushed; it says so once.
    pub fn take_shutdown(&mut self) -> bool {
        if self.ex.body == OutBody::Shutdown {
            self.ex.body = OutBody::Complete;
            return true;
        }
        false
    }

    /// Whether a request waits for its response to start: the handler has not
    /// answered it yet (the proxy waits for an upstream's response head).
    pub fn awaiting_response(&self) -> bool {
        self.phase == Phase::Exchange && self.ex.body == OutBody::NotStarted
    }

    /// Whether the connection is between requests (waiting for a head). With an empty
    /// read buffer this means idle; with bytes buffered, a head is partly read.
    pub fn awaiting_head(&self) -> bool {
        self.phase == Phase::Head
    }

    /// The error that ended the connection, if one did.
    pub fn error(&self) -> Option<RequestError> {
        self.failed
    }

    /// Requests fully answered on this connection.
    pub fn requests(&self) -> u64 {
        self.requests
    }

    /// Processes buffered input and lets the handler write, until the connection needs
    /// more input, the output passes [`WRITE_HIGH_WATER`], the handler has nothing to
    /// give, or the connection is done.
    pub fn process(
        &mut self,
        input: &mut ReadBuf,
        output: &mut WriteBuf,
        settings: &mut Settings<'_>,
        local: &mut H::Local,
    ) {
        loop {
            let progressed = match self.phase {
                Phase::Head => {
                    output.len() < WRITE_HIGH_WATER
                        && self.read_head(input, output, settings, local)
                }
                Phase::Exchange => self.exchange(input, output, settings, local),
                Phase::Tunnel => self.tunnel(input, output, settings, local),
                Phase::Done => false,
            };
            if !progressed {
                return;
            }
        }
    }

    /// The peer closed its side, with `partial` bytes of a request still unprocessed.
    /// A partly read request is refused (400) if no response has started; either way
    /// the connection is done. A request whose body was read whole still gets its
    /// response.
    pub fn on_eof(
        &mut self,
        partial: bool,
        output: &mut WriteBuf,
        settings: &mut Settings<'_>,
        local: &mut H::Local,
    ) {
        match self.phase {
            Phase::Head if !partial => self.phase = Phase::Done,
            Phase::Head => self.fail(RequestError::Malformed, output, settings, local),
            Phase::Exchange if self.body.is_some() => {
                self.fail(RequestError::Malformed, output, settings, local)
            }
            Phase::Tunnel => {
                // The client ended its direction of the tunnel: the other goes on.
                if self.body.take().is_some() {
                    let mut res = Response {
                        out: output,
                        ex: &mut self.ex,
                        settings,
                    };
                    self.handler.on_body_end(&mut res, local);
                    res.close_head();
                }
            }
            Phase::Exchange | Phase::Done => {}
        }
    }

    /// The header timeout passed with a head partly read: answer 408 and close.
    pub fn on_header_timeout(
        &mut self,
        output: &mut WriteBuf,
        settings: &mut Settings<'_>,
        local: &mut H::Local,
    ) {
        if self.phase == Phase::Head {
            self.fail(RequestError::Timeout, output, settings, local);
        }
    }

    /// The driver drops the connection (an I/O error, a timeout): the handler drops
    /// what it holds for an exchange in progress ([`Handler::on_abort`]).
    pub fn abort(&mut self, local: &mut H::Local) {
        self.abort_handler(local);
        self.phase = Phase::Done;
    }

    /// Tells the handler its exchange ended early, if it is still part of it: its
    /// response is not complete. Once it is, the rest of the request body is the
    /// connection's alone to read and drop.
    fn abort_handler(&mut self, local: &mut H::Local) {
        if (self.phase == Phase::Exchange && self.ex.body != OutBody::Complete)
            || self.phase == Phase::Tunnel
        {
            self.handler.on_abort(local);
        }
    }

    /// Reports `error`: a response with its status if none has started (no body to
    /// HEAD), then done. A response already started can only be cut off by the close,
    /// so the client sees it incomplete rather than wrongly complete.
    fn fail(
        &mut self,
        error: RequestError,
        output: &mut WriteBuf,
        settings: &mut Settings<'_>,
        local: &mut H::Local,
    ) {
        self.failed = Some(error);
        self.ex.keep_alive = false;
        self.ex.expect_continue = false;
        self.abort_handler(local);
        if self.ex.body == OutBody::NotStarted {
            let mut res = Response {
                out: output,
                ex: &mut self.ex,
                settings,
            };
            res.status_page(error.status());
        }
        self.phase = Phase::Done;
    }

    /// A head was read: the exchange starts, with the body its framing says.
    // One call site, on every request: inlined, as when it was written there.
    #[inline(always)]
    fn begin_exchange(&mut self, head: &RequestHead, settings: &Settings<'_>) {
        self.ex = Exchange {
            version: head.version,
            head_request: head.method == Method::Head,
            keep_alive: head.keep_alive && !settings.closing,
            expect_continue: head.expect_continue,
            ..Exchange::NONE
        };
        self.body = match head.framing {
            RequestFraming::None | RequestFraming::Length(0) => None,
            RequestFraming::Length(n) => Some(RequestBodyReader::Length(n)),
            RequestFraming::Chunked => Some(RequestBodyReader::Chunked(ChunkedDecoder::new(
                settings.max_body_bytes,
            ))),
        };
        self.stalled = false;
        self.phase = Phase::Exchange;
    }

    fn read_head(
        &mut self,
        input: &mut ReadBuf,
        output: &mut WriteBuf,
        settings: &mut Settings<'_>,
        local: &mut H::Local,
    ) -> bool {
        self.skip_empty_lines(input);
        let buf = input.filled();
        // Errors before the head is parsed are answered as to a HEAD once its method
        // is complete (RFC 9110 §9.3.2: no content), else as to a GET: until then the
        // method is unknown, and as the connection closes after the error a HEAD
        // client at worst reads a few bytes it did not expect before the close, where
        // a GET client denied the body its Content-Length announced would wait for it.
        self.ex.head_request = buf.starts_with(b"HEAD ");
        // Two storages: the quick parse's borrow lasts as long as the request.
        let (mut headers, mut scanned_headers) = (fields::field_storage(), fields::field_storage());
        // A head that arrived whole (the common case) is parsed at once: the parse
        // finds its end. Any other outcome (unfinished, over the limit, an error) takes
        // the scan for its end first, as every head did before, so nothing changes but
        // the work: the scan cost a `memchr` call a line.
        let quick = match self.scanned {
            0 if !buf.is_empty() => parse::parse(
                buf,
                &mut headers,
                settings.max_body_bytes,
                H::CODINGS,
                H::CONNECTION_NAMES,
            )
            .ok()
            .filter(|(_, len)| *len <= settings.max_head_bytes),
            _ => None,
        };
        let parsed = match quick {
            Some(parsed) => Ok(parsed),
            None => {
                let end = match fields::find_head(buf, &mut self.scanned, settings.max_head_bytes) {
                    Ok(Some(end)) => end,
                    Ok(None) => return false,
                    Err(HeadOverLimit) => {
                        let error = parse::oversized(buf, settings.max_head_bytes);
                        self.fail(error, output, settings, local);
                        return true;
                    }
                };
                parse::parse(
                    &buf[..end],
                    &mut scanned_headers,
                    settings.max_body_bytes,
                    H::CODINGS,
                    H::CONNECTION_NAMES,
                )
            }
        };
        let (req, len) = match parsed {
            Ok(parsed) => parsed,
            Err(error) => {
                self.fail(error, output, settings, local);
                return true;
            }
        };
        self.dispatch(&req, output, settings, local);
        input.consume(len);
        // Answered at once (the common case): done without another round.
        self.complete(settings);
        true
    }

    /// RFC 9112 §2.2: empty lines before a request line are ignored (some clients
    /// send a CRLF after a body). Consumed, they leave the connection idle rather than
    /// partly read: no 400 at EOF, no 408.
    #[inline(always)]
    fn skip_empty_lines(&mut self, input: &mut ReadBuf) {
        let blank = parse::empty_lines(input.filled());
        if blank > 0 {
            input.consume(blank);
            self.scanned = self.scanned.saturating_sub(blank);
        }
    }

    /// Starts the exchange of `req` and hands it to the handler, then closes the head
    /// it began and asks for the body with a `100 Continue` if the client waits for one
    /// and the handler has not answered.
    #[inline(always)]
    fn dispatch(
        &mut self,
        req: &Request<'_>,
        output: &mut WriteBuf,
        settings: &mut Settings<'_>,
        local: &mut H::Local,
    ) {
        if let Some(on_request) = settings.on_request {
            on_request(req);
        }
        self.begin_exchange(&req.head, settings);
        let mut res = Response {
            out: output,
            ex: &mut self.ex,
            settings,
        };
        self.handler.on_request(req, &mut res, local);
        res.close_head();
        if res.ex.expect_continue {
            // The handler wants the body (or has not decided): ask for it.
            res.interim(100);
        }
    }

    /// One round of the current exchange: the response, then the request body.
    fn exchange(
        &mut self,
        input: &mut ReadBuf,
        output: &mut WriteBuf,
        settings: &mut Settings<'_>,
        local: &mut H::Local,
    ) -> bool {
        let mut progress = false;
        if self.ex.body != OutBody::Complete && output.len() < WRITE_HIGH_WATER && !self.ex.aborted
        {
            let before = (output.len(), self.ex.body);
            let mut res = Response {
                out: output,
                ex: &mut self.ex,
                settings,
            };
            self.handler.poll_response(&mut res, local);
            res.close_head();
            progress |= (output.len(), self.ex.body) != before;
        }
        if self.body.is_some() && !input.is_empty() && !self.ex.aborted {
            progress |= self.read_body(input, output, settings, local);
            if self.phase == Phase::Done {
                return true; // the body was broken
            }
        }
        if self.ex.aborted {
            if self.ex.body == OutBody::Tunnel {
                return self.enter_tunnel(settings, local); // not aborted: switched
            }
            self.phase = Phase::Done;
            return true;
        }
        self.complete(settings) || progress
    }

    /// Ends the exchange if it is complete: the response is, and the body was read; or
    /// the response is, and the connection closes anyway (nothing after the body is
    /// read, so the rest of it need not be). Returns whether it ended.
    #[inline]
    fn complete(&mut self, settings: &Settings<'_>) -> bool {
        if self.ex.body != OutBody::Complete || (self.body.is_some() && self.ex.keep_alive) {
            return false;
        }
        self.requests += 1;
        if let Some(answered) = settings.answered {
            answered.store(answered.load(Relaxed) + 1, Relaxed);
        }
        self.phase = if self.ex.keep_alive && !settings.closing {
            Phase::Head
        } else {
            Phase::Done
        };
        self.ex = Exchange::NONE;
        self.body = None;
        true
    }

    /// The handler switched protocols: the request was answered, and the connection
    /// is a tunnel from now on.
    fn enter_tunnel(&mut self, settings: &Settings<'_>, local: &mut H::Local) -> bool {
        self.requests += 1;
        if let Some(answered) = settings.answered {
            answered.store(answered.load(Relaxed) + 1, Relaxed);
        }
        if self.body.is_some() {
            // A request body would be read as the tunnel's bytes: a handler's bug.
            debug_assert!(false, "switching protocols on a request with a body");
            self.handler.on_abort(local);
            self.phase = Phase::Done;
            return true;
        }
        self.body = Some(RequestBodyReader::Tunnel);
        self.stalled = false;
        self.ex.aborted = false;
        self.phase = Phase::Tunnel;
        true
    }

    /// One round of a tunnel: the handler's bytes for the client, then the client's
    /// bytes for the handler (as many as it takes).
    fn tunnel(
        &mut self,
        input: &mut ReadBuf,
        output: &mut WriteBuf,
        settings: &mut Settings<'_>,
        local: &mut H::Local,
    ) -> bool {
        let before = (input.len(), output.len(), self.ex.body);
        let mut res = Response {
            out: output,
            ex: &mut self.ex,
            settings,
        };
        // Even with no room: a tunnel that failed (its idle timeout, a reset) ends now,
        // not when the client's write timeout gives up on its output.
        self.handler.poll_response(&mut res, local);
        if self.body.is_some() && !input.is_empty() && !res.ex.aborted {
            let data = input.filled();
            let taken = self.handler.on_body(data, &mut res, local).min(data.len());
            self.stalled = taken < data.len();
            input.consume(taken);
        }
        res.close_head();
        if self.ex.aborted {
            self.phase = Phase::Done;
            return true;
        }
        (input.len(), output.len(), self.ex.body) != before
    }

    /// Reads one run of request body from `input`: offered to the handler while the
    /// response is not complete, dropped after. Returns whether anything moved.
    fn read_body(
        &mut self,
        input: &mut ReadBuf,
        output: &mut WriteBuf,
        settings: &mut Settings<'_>,
        local: &mut H::Local,
    ) -> bool {
        let buf = input.filled();
        // The framing: how many bytes this run takes, how many of them (at its end)
        // are data, and whether the body ends with it.
        let framed = match &mut self.body {
            None => return false,
            Some(RequestBodyReader::Length(remaining)) => {
                let n = buf
                    .len()
                    .min(usize::try_from(*remaining).unwrap_or(usize::MAX));
                Ok((n, n, n as u64 == *remaining))
            }
            Some(RequestBodyReader::Chunked(decoder)) => decoder
                .decode(buf)
                .map(|(consumed, data)| (consumed, data.len(), decoder.is_done())),
            Some(RequestBodyReader::Tunnel) => Ok((buf.len(), buf.len(), false)),
        };
        let (consumed, data_len, ended) = match framed {
            Ok(framed) => framed,
            Err(error) => {
                self.fail(error, output, settings, local);
                return true;
            }
        };
        let data = &buf[consumed - data_len..consumed];
        let mut res = Response {
            out: output,
            ex: &mut self.ex,
            settings,
        };
        let wanted = !res.is_complete();
        let taken = if wanted && !data.is_empty() {
            self.handler.on_body(data, &mut res, local).min(data.len())
        } else {
            data.len()
        };
        res.close_head();
        let left = data.len() - taken;
        self.stalled = left > 0;
        match &mut self.body {
            Some(RequestBodyReader::Length(remaining)) => *remaining -= taken as u64,
            Some(RequestBodyReader::Chunked(decoder)) => decoder.unread(left),
            Some(RequestBodyReader::Tunnel) => {}
            None => unreachable!(),
        }
        input.consume(consumed - left);
        if ended && left == 0 {
            self.body = None;
            if wanted && !res.is_complete() {
                self.handler.on_body_end(&mut res, local);
                res.close_head();
            }
            return true;
        }
        consumed > left
    }
}
