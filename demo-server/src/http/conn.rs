//! The per-connection HTTP/1.1 state machine: bytes in, bytes out.
//!
//! [`Conn::process`] reads what it can from a [`ReadBuf`], answers into a
//! [`WriteBuf`], and stops when it needs more input, when the output passed
//! [`WRITE_HIGH_WATER`] (backpressure: the driver flushes first), or when the
//! connection is done. It never does I/O and never allocates once the pools and
//! caches are warm.
//!
//! The driver's loop is: read into the `ReadBuf` while [`Conn::wants_input`], call
//! `process`, write the `WriteBuf` out, repeat; close once [`Conn::is_done`] and the
//! output is flushed.

use std::io::Write as _;

use recycle::io::{ReadBuf, WriteBuf};
use recycle::status::Version;

use super::Error;
use super::body::ChunkedDecoder;
use super::encode::{self, Length, TEXT};
use super::parse::{self, Framing, Method};
use crate::app::{self, Route};
use crate::state::Ctx;

/// Output size past which `process` stops producing and lets the driver flush.
pub const WRITE_HIGH_WATER: usize = 64 * 1024;

/// How a request body is being read.
#[derive(Clone, Debug)]
enum BodyReader {
    /// This many bytes are left.
    Length(u64),
    Chunked(ChunkedDecoder),
}

/// Where request body bytes go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sink {
    /// Back to the client, as they came (Content-Length echo).
    EchoRaw,
    /// Back to the client, re-chunked.
    EchoChunked,
    /// Nowhere: the response is already written, the body is read only to find the next
    /// request.
    Discard,
}

#[derive(Clone, Debug)]
enum Phase {
    /// Waiting for (the rest of) a request head.
    Head,
    /// Reading a request body.
    Body { reader: BodyReader, sink: Sink },
    /// Writing a generated body: `sent` of `len` bytes so far.
    Stream { sent: u64, len: u64 },
    /// No more requests on this connection: flush and close.
    Done,
}

/// The state of one HTTP/1.1 connection.
///
/// # Examples
///
/// ```
/// use demo_server::http::conn::Conn;
/// use demo_server::state::{Limits, Shared};
/// use recycle::io::{ReadBuf, WriteBuf};
///
/// let shared = Shared::new(Limits::default(), 1, false);
/// let mut ctx = shared.context(0);
/// let (mut input, mut output) = (ReadBuf::new(), WriteBuf::new());
/// let mut conn = Conn::new();
/// input.extend_from_slice(b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n");
/// conn.process(&mut input, &mut output, &mut ctx);
/// assert!(output.unflushed().starts_with(b"HTTP/1.1 200 OK\r\n"));
/// assert!(output.unflushed().ends_with(b"\r\n\r\nHello, World!"));
/// assert!(!conn.is_done(), "keep-alive: ready for the next request");
/// ```
#[derive(Clone, Debug)]
pub struct Conn {
    phase: Phase,
    /// Bytes of the buffered input already scanned for the end of a head.
    scanned: usize,
    /// The current request's version and method.
    version: Version,
    method: Method,
    /// Whether the connection stays open after the current response.
    keep_alive: bool,
    /// Whether a response head for the current request has been written (after which
    /// an error can no longer be reported with a status, only by closing).
    responding: bool,
    /// Whether the connection ended on an error.
    failed: Option<Error>,
    requests: u64,
}

impl Default for Conn {
    fn default() -> Self {
        Self::new()
    }
}

impl Conn {
    /// A fresh connection, waiting for its first request.
    pub const fn new() -> Self {
        Self {
            phase: Phase::Head,
            scanned: 0,
            version: Version::Http11,
            method: Method::Get,
            keep_alive: true,
            responding: false,
            failed: None,
            requests: 0,
        }
    }

    /// Whether the connection will take more input now (false once done, or while the
    /// output is over the high-water mark).
    pub fn wants_input(&self, output_len: usize) -> bool {
        !matches!(self.phase, Phase::Done | Phase::Stream { .. }) && output_len < WRITE_HIGH_WATER
    }

    /// Whether the connection takes no more requests: flush the output, then close.
    pub fn is_done(&self) -> bool {
        matches!(self.phase, Phase::Done)
    }

    /// Whether a generated response body is being written (output to produce without
    /// any input).
    pub fn is_streaming(&self) -> bool {
        matches!(self.phase, Phase::Stream { .. })
    }

    /// Whether the connection is between requests (waiting for a head). With an empty
    /// read buffer this means idle; with bytes buffered, a head is partly read.
    pub fn awaiting_head(&self) -> bool {
        matches!(self.phase, Phase::Head)
    }

    /// The error that ended the connection, if one did.
    pub fn error(&self) -> Option<Error> {
        self.failed
    }

    /// Requests fully answered on this connection.
    pub fn requests(&self) -> u64 {
        self.requests
    }

    /// Processes buffered input until it needs more, the output passes
    /// [`WRITE_HIGH_WATER`], or the connection is done.
    pub fn process(&mut self, input: &mut ReadBuf, output: &mut WriteBuf, ctx: &mut Ctx<'_>) {
        while output.len() < WRITE_HIGH_WATER {
            let progressed = match self.phase {
                Phase::Head => self.read_head(input, output, ctx),
                Phase::Body { .. } => self.read_body(input, output, ctx),
                Phase::Stream { .. } => self.stream(output, ctx),
                Phase::Done => false,
            };
            if !progressed {
                return;
            }
        }
    }

    /// The peer closed its side, with `partial` bytes of a request still unprocessed.
    /// A partly read request is refused (400) if no response has started; either way
    /// the connection is done.
    pub fn on_eof(&mut self, partial: bool, output: &mut WriteBuf, ctx: &mut Ctx<'_>) {
        match self.phase {
            Phase::Head if !partial => self.phase = Phase::Done,
            Phase::Head | Phase::Body { .. } => self.fail(Error::Malformed, output, ctx),
            Phase::Stream { .. } | Phase::Done => {}
        }
    }

    /// The header timeout passed with a head partly read: answer 408 and close.
    pub fn on_header_timeout(&mut self, output: &mut WriteBuf, ctx: &mut Ctx<'_>) {
        if matches!(self.phase, Phase::Head) {
            self.fail(Error::Timeout, output, ctx);
        }
    }

    /// Reports `error`: a response with its status if none has started, then done.
    pub fn fail(&mut self, error: Error, output: &mut WriteBuf, ctx: &mut Ctx<'_>) {
        self.failed = Some(error);
        self.keep_alive = false;
        if !self.responding {
            let status = error.status();
            let reason = recycle::status::reason(status).unwrap_or("Error");
            self.respond(
                output,
                ctx,
                status,
                Some(TEXT),
                Length::Known(reason.len() as u64 + 1),
                None,
            );
            output.extend_from_slice(reason.as_bytes());
            output.extend_from_slice(b"\n");
        }
        // A response cut short (an echo whose request body broke) ends by closing, so
        // the client sees it incomplete rather than wrongly complete.
        self.phase = Phase::Done;
    }

    fn read_head(&mut self, input: &mut ReadBuf, output: &mut WriteBuf, ctx: &mut Ctx<'_>) -> bool {
        let shared = ctx.shared;
        let limits = &shared.limits;
        let buf = input.filled();
        let Some(end) = parse::head_end(buf, self.scanned) else {
            self.scanned = buf.len();
            if buf.len() > limits.max_head_bytes {
                // A target alone longer than the URI limit is 414, anything else 431.
                let uri_too_long = buf.len() > parse::MAX_URI_LEN && !buf.contains(&b'\n');
                let error = if uri_too_long {
                    Error::UriTooLong
                } else {
                    Error::HeadTooLarge
                };
                self.fail(error, output, ctx);
                return true;
            }
            return false;
        };
        self.scanned = 0;
        if end > limits.max_head_bytes {
            self.fail(Error::HeadTooLarge, output, ctx);
            return true;
        }
        let parsed = match parse::parse(&buf[..end], limits.max_body_bytes) {
            Ok(parsed) => parsed,
            Err(error) => {
                self.fail(error, output, ctx);
                return true;
            }
        };
        let head = parsed.head;
        let route = app::route(head.method, parsed.path);
        if ctx.shared.access_log {
            log::info!(
                target: "access",
                "{:?} {} {}",
                head.method,
                String::from_utf8_lossy(parsed.path),
                head.version.as_str()
            );
        }
        let len = parsed.len;
        input.consume(len);

        self.version = head.version;
        self.method = head.method;
        self.keep_alive = head.keep_alive && !ctx.closing;
        self.responding = false;
        let reader = match head.framing {
            Framing::None => None,
            Framing::Length(n) => Some(BodyReader::Length(n)),
            Framing::Chunked => Some(BodyReader::Chunked(ChunkedDecoder::new(
                limits.max_body_bytes,
            ))),
        };

        if route == Route::Echo {
            let (length, sink) = match &reader {
                None => (Length::Known(0), Sink::Discard),
                Some(BodyReader::Length(n)) => (Length::Known(*n), Sink::EchoRaw),
                Some(BodyReader::Chunked(_)) => (Length::Chunked, Sink::EchoChunked),
            };
            if head.expect_continue && reader.is_some() {
                let _ = ctx.lines.write_line(100, Version::Http11, output);
                output.extend_from_slice(b"\r\n");
            }
            self.respond(
                output,
                ctx,
                200,
                Some("application/octet-stream"),
                length,
                None,
            );
            self.phase = match reader {
                Some(reader) => Phase::Body { reader, sink },
                None => return self.finish(ctx),
            };
            return true;
        }

        // Every other route answers without reading the body. With `Expect:
        // 100-continue` the client has not sent it: close instead of waiting for it.
        if head.expect_continue && reader.is_some() {
            self.keep_alive = false;
        }
        self.answer(route, output, ctx);
        match (reader, self.keep_alive) {
            (Some(reader), true) if matches!(self.phase, Phase::Head) => {
                self.phase = Phase::Body {
                    reader,
                    sink: Sink::Discard,
                };
            }
            _ => {
                if matches!(self.phase, Phase::Head) {
                    return self.finish(ctx);
                }
            }
        }
        true
    }

    /// Writes the response for a route that does not read the body.
    fn answer(&mut self, route: Route, output: &mut WriteBuf, ctx: &mut Ctx<'_>) {
        match route {
            Route::Hello => self.fixed(output, ctx, 200, None, b"Hello, World!"),
            Route::Status(code) => {
                let length = if matches!(code, 204 | 304) {
                    Length::None
                } else {
                    Length::Known(0)
                };
                self.respond(output, ctx, code, None, length, None);
            }
            Route::Bytes(len) => {
                self.respond(
                    output,
                    ctx,
                    200,
                    Some("application/octet-stream"),
                    Length::Known(len),
                    None,
                );
                if self.method != Method::Head && len > 0 {
                    self.phase = Phase::Stream { sent: 0, len };
                }
            }
            Route::Stats => {
                let mut json = [0u8; 1024];
                let len = write_stats(&mut json, ctx);
                self.respond(
                    output,
                    ctx,
                    200,
                    Some("application/json"),
                    Length::Known(len as u64),
                    None,
                );
                if self.method != Method::Head {
                    output.extend_from_slice(&json[..len]);
                }
            }
            Route::NotFound => self.fixed(output, ctx, 404, None, b"Not Found\n"),
            Route::MethodNotAllowed(allow) => {
                self.fixed(output, ctx, 405, Some(allow), b"Method Not Allowed\n")
            }
            Route::BadParameter(message) => self.fixed(output, ctx, 400, None, message.as_bytes()),
            Route::Echo => unreachable!("echo reads its body"),
        }
    }

    /// A response with a small fixed body (none for HEAD).
    fn fixed(
        &mut self,
        output: &mut WriteBuf,
        ctx: &mut Ctx<'_>,
        status: u16,
        allow: Option<&str>,
        body: &[u8],
    ) {
        self.respond(
            output,
            ctx,
            status,
            Some(TEXT),
            Length::Known(body.len() as u64),
            allow,
        );
        if self.method != Method::Head {
            output.extend_from_slice(body);
        }
    }

    fn respond(
        &mut self,
        output: &mut WriteBuf,
        ctx: &mut Ctx<'_>,
        status: u16,
        content_type: Option<&str>,
        length: Length,
        allow: Option<&str>,
    ) {
        self.responding = true;
        let head = encode::Head {
            status,
            version: self.version,
            content_type,
            length,
            allow,
            close: !self.keep_alive,
        };
        encode::write_head(output, &mut ctx.lines, &ctx.shared.dates, &head);
    }

    fn read_body(&mut self, input: &mut ReadBuf, output: &mut WriteBuf, ctx: &mut Ctx<'_>) -> bool {
        if input.is_empty() {
            return false;
        }
        let Phase::Body { reader, sink } = &mut self.phase else {
            unreachable!()
        };
        let sink = *sink;
        let (consumed, done) = match reader {
            BodyReader::Length(remaining) => {
                // Never more than the output has room for, so an echo holds at most a
                // high-water mark of the body at once.
                let room = if sink == Sink::Discard {
                    usize::MAX
                } else {
                    WRITE_HIGH_WATER
                };
                let n = input
                    .len()
                    .min(room)
                    .min(usize::try_from(*remaining).unwrap_or(usize::MAX));
                if sink == Sink::EchoRaw {
                    output.extend_from_slice(&input.filled()[..n]);
                }
                *remaining -= n as u64;
                (n, *remaining == 0)
            }
            BodyReader::Chunked(decoder) => match decoder.decode(input.filled()) {
                Ok((consumed, data)) => {
                    if sink == Sink::EchoChunked {
                        encode::write_chunk(output, data);
                    }
                    (consumed, decoder.is_done())
                }
                Err(error) => {
                    self.fail(error, output, ctx);
                    return true;
                }
            },
        };
        input.consume(consumed);
        if done {
            if sink == Sink::EchoChunked {
                output.extend_from_slice(encode::LAST_CHUNK);
            }
            return self.finish(ctx);
        }
        true
    }

    fn stream(&mut self, output: &mut WriteBuf, ctx: &mut Ctx<'_>) -> bool {
        let Phase::Stream { sent, len } = &mut self.phase else {
            unreachable!()
        };
        let want = usize::try_from(*len - *sent).unwrap_or(usize::MAX);
        let piece = app::pattern(*sent, want);
        output.extend_from_slice(piece);
        *sent += piece.len() as u64;
        if *sent == *len {
            return self.finish(ctx);
        }
        true
    }

    /// The current exchange is complete.
    fn finish(&mut self, ctx: &mut Ctx<'_>) -> bool {
        self.requests += 1;
        ctx.count_request();
        self.responding = false;
        self.phase = if self.keep_alive && !ctx.closing {
            Phase::Head
        } else {
            Phase::Done
        };
        true
    }
}

/// Writes the `/stats` JSON into `buf`, returning its length. No allocation.
fn write_stats(buf: &mut [u8], ctx: &Ctx<'_>) -> usize {
    fn pool(out: &mut &mut [u8], name: &str, s: recycle::Stats) -> std::io::Result<()> {
        write!(
            out,
            "\"{name}\":{{\"hits\":{},\"misses\":{},\"returns\":{},\"discards\":{},\"trimmed\":{},\"idle\":{}}}",
            s.hits, s.misses, s.returns, s.discards, s.trimmed, s.idle
        )
    }
    let shared = ctx.shared;
    let capacity = buf.len();
    let mut out = &mut buf[..];
    let result = (|| {
        write!(
            out,
            "{{\"connections\":{},\"requests\":{},\"pools\":{{",
            shared.open_connections(),
            shared.requests_served()
        )?;
        pool(&mut out, "read_buf", shared.readers.stats())?;
        out.write_all(b",")?;
        pool(&mut out, "write_buf", shared.writers.stats())?;
        out.write_all(b"}}\n")
    })();
    debug_assert!(result.is_ok(), "stats JSON fits its buffer");
    capacity - out.len()
}
