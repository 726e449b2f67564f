//! Response heads and bodies, for the proxy's upstream side: `httparse::Response` plus
//! the framing rules of RFC 9112 §6.3 and the limits requests are held to.
//!
//! The same conventions as [`parse`](super::parse), and the same shared core
//! ([`fields`]): pure functions over a byte slice, no I/O, no allocation. The caller
//! owns the buffer and the field storage ([`FieldStorage`]); [`fields::find_head`]
//! scans only new bytes for the blank line that ends a head, [`parse`] then reads the
//! head once, and [`ResponseBodyReader`] delimits the body that follows it.
//!
//! Strict where leniency would let one upstream message be read two ways (RFC 9112
//! §6.3, §11.2): every line ends in CRLF, no obs-fold, no whitespace before a field's
//! colon, no leading blank lines, a `Content-Length` that is all digits and agrees
//! with itself, never both `Content-Length` and `Transfer-Encoding`. Every error is a
//! reason for the proxy to answer 502 and close the upstream connection.
//!
//! # Examples
//!
//! ```
//! use demo_server::http::fields;
//! use demo_server::http::response::{self, ResponseBodyReader, ResponseFraming};
//!
//! let input = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
//! let mut buf = &input[..];
//! let mut scanned = 0;
//! let mut fields = fields::field_storage();
//! let head = loop {
//!     let end = fields::find_head(buf, &mut scanned, 16 * 1024)?.expect("a whole head");
//!     let parsed = response::parse(&buf[..end], b"GET", &mut fields)?;
//!     buf = &buf[parsed.len..];
//!     if !parsed.head.is_interim() {
//!         break parsed.head; // a 1xx is forwarded, then the next head is read
//!     }
//! };
//! assert_eq!((head.status, head.framing), (200, ResponseFraming::Length(5)));
//! let mut body = ResponseBodyReader::new(head.framing);
//! let (used, data) = body.decode(buf)?;
//! assert_eq!((used, data), (5, &b"hello"[..]));
//! assert!(body.is_done());
//! # Ok::<(), response::ResponseError>(())
//! ```

use std::fmt;

use super::RequestError;
use super::body::ChunkedDecoder;
use recycle_pool::status::Version;

use super::fields::{self, Delimiter, FieldStorage, FramingError, FramingFields, HeadOverLimit};

/// Why an upstream response was refused. Before any of the response went to the
/// client the proxy answers each with 502; after, it cuts the client's response off.
/// The upstream connection is closed either way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResponseError {
    /// Syntax `httparse` refuses (an invalid status line, bad field-name or field-value
    /// bytes, obs-fold, whitespace before a colon), a bare LF line ending, a blank line
    /// before the status line, a status outside `100..=599`.
    Malformed,
    /// ResponseFraming that could be read two ways or not at all (RFC 9112 §6.3): both
    /// `Content-Length` and `Transfer-Encoding`, lengths that differ or are not all
    /// digits, `chunked` applied twice or before another coding, `Transfer-Encoding` in
    /// an HTTP/1.0 response, broken chunked framing.
    BadFraming,
    /// A head over the byte limit or with more than [`MAX_HEADERS`](fields::MAX_HEADERS) fields, or chunk
    /// extensions or trailers over their caps.
    HeadTooLarge,
    /// The upstream closed the connection before the body's end.
    Truncated,
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ResponseError::Malformed => "malformed response",
            ResponseError::BadFraming => "ambiguous or invalid response framing",
            ResponseError::HeadTooLarge => "response head too large",
            ResponseError::Truncated => "response body cut short",
        })
    }
}

impl std::error::Error for ResponseError {}

/// How a response body is delimited (RFC 9112 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseFraming {
    /// No body, whatever the fields say: the response to a HEAD request, a 1xx
    /// (other than 101), 204 or 304 (§6.3 rule 1).
    None,
    /// `Content-Length: n`, including 0 (§6.3 rule 6).
    Length(u64),
    /// A `Transfer-Encoding` whose final coding is `chunked` (§6.3 rule 4).
    Chunked,
    /// Everything until the upstream closes the connection: neither length field, or a
    /// `Transfer-Encoding` whose final coding is not `chunked` (§6.3 rules 4 and 8).
    Close,
    /// No body, and the connection stops being HTTP after the head: a 101, or a 2xx to
    /// CONNECT (§6.3 rule 2). The proxy sends neither `Upgrade` nor CONNECT upstream, so
    /// for it this is an upstream that broke the protocol.
    Tunnel,
}

/// What a response head says about the message, minus its fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    /// The status code, `100..=599`.
    pub status: u16,
    /// `HTTP/1.0` or `HTTP/1.1`.
    pub version: Version,
    /// Whether the connection may carry another request after this response (RFC 9112
    /// §9.3): no `close` option, and HTTP/1.1 or an HTTP/1.0 `keep-alive` option, and a
    /// body not delimited by the close itself.
    pub keep_alive: bool,
    /// How the body is delimited.
    pub framing: ResponseFraming,
    /// The `Content-Length` value, if one was sent, even where it delimits nothing (a
    /// HEAD response or a 304 states the length a GET would get).
    pub content_length: Option<u64>,
    /// Whether `Transfer-Encoding` lists a coding other than `chunked`: the body bytes
    /// carry that coding, so whoever forwards them must say so again.
    pub transfer_coded: bool,
}

impl ResponseHead {
    /// Whether this is an interim response (1xx other than 101): forward it, then parse
    /// the final response that follows on the same connection.
    pub fn is_interim(&self) -> bool {
        (100..200).contains(&self.status) && self.status != 101
    }
}

/// One parsed response head.
#[derive(Debug)]
pub struct Parsed<'h, 'b> {
    /// What the head says.
    pub head: ResponseHead,
    /// The reason phrase as sent (possibly empty; obs-text kept as is).
    pub reason: &'b [u8],
    /// The header fields, in order, borrowed from the buffer.
    pub fields: &'h [httparse::Header<'b>],
    /// The fields that the `Connection` options name (RFC 9110 §7.6.1: a proxy drops
    /// them), as bits by index into `fields`, found as the options were read.
    pub named_by_connection: u128,
    /// Bytes of the buffer the head took.
    pub len: usize,
}

/// Parses a complete response head (`buf[..end]`, with `end` from
/// [`fields::find_head`]) to a
/// request made with `method` (case-sensitive, as on the wire: `b"HEAD"`).
///
/// # Errors
///
/// [`ResponseError::Malformed`], [`ResponseError::BadFraming`] or [`ResponseError::HeadTooLarge`] (more than
/// [`MAX_HEADERS`](fields::MAX_HEADERS) fields); see [`ResponseError`] for each case.
pub fn parse<'h, 'b>(
    buf: &'b [u8],
    method: &[u8],
    fields: &'h mut FieldStorage<'b>,
) -> Result<Parsed<'h, 'b>, ResponseError> {
    let (res, len) = read_head(buf, fields)?;
    let (Some(minor), Some(status)) = (res.version, res.code) else {
        return Err(ResponseError::Malformed);
    };
    // RFC 9110 §15: codes outside 100..=599 are invalid.
    if !(100..=599).contains(&status) {
        return Err(ResponseError::Malformed);
    }
    let version = fields::version(minor);
    let mut framing_fields = FramingFields::default();
    let mut connection = 0;
    for (i, field) in res.headers.iter().enumerate() {
        framing_fields.add_deferring(i, field.name, field.value, &mut connection)?;
    }
    let named_by_connection = framing_fields.read_connection(res.headers, connection);
    let framing = framing(status, method, framing_fields.delimiter(version)?);
    let keep_alive = framing_fields.persistent(version)
        && !matches!(framing, ResponseFraming::Close | ResponseFraming::Tunnel);
    Ok(Parsed {
        head: ResponseHead {
            status,
            version,
            keep_alive,
            framing,
            content_length: framing_fields.content_length(),
            transfer_coded: framing_fields.transfer_coded(),
        },
        reason: reason(res.reason, buf),
        fields: res.headers,
        named_by_connection,
        len,
    })
}

/// The head's syntax: httparse's reading of `buf` into `fields`, and the bytes it
/// took, if it is one whole head with CRLF line ends that starts at once.
#[inline(always)]
fn read_head<'h, 'b>(
    buf: &'b [u8],
    fields: &'h mut FieldStorage<'b>,
) -> Result<(httparse::Response<'h, 'b>, usize), ResponseError> {
    // httparse skips blank lines before the status line; RFC 9112 §2.2 allows that only
    // before a request line, and after a response they mean the previous body was
    // longer than its framing said.
    if !buf.starts_with(b"HTTP/") {
        return Err(ResponseError::Malformed);
    }
    let mut res = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default()
        .parse_response_with_uninit_headers(&mut res, buf, fields)
    {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Err(ResponseError::Malformed),
        Err(httparse::Error::TooManyHeaders) => return Err(ResponseError::HeadTooLarge),
        Err(_) => return Err(ResponseError::Malformed),
    };
    // Every line ends in CRLF, as in a request: see [`fields::crlf_only`].
    if !fields::crlf_only(&buf[..len]) {
        return Err(ResponseError::Malformed);
    }
    Ok((res, len))
}

/// The reason phrase of the status line at the front of `buf`, as sent, given what
/// httparse read of it.
#[inline(always)]
fn reason<'b>(parsed: Option<&'b str>, buf: &'b [u8]) -> &'b [u8] {
    // "HTTP/1.1 200 OK\r\n": the reason starts after the code's space. httparse
    // replaces a reason holding obs-text with "": then the raw bytes are taken from
    // the line (a reason httparse kept is those bytes already).
    match parsed {
        Some(reason) if !reason.is_empty() => reason.as_bytes(),
        _ => {
            let line_end = memchr::memchr(b'\r', buf).unwrap_or(0);
            buf.get(13..line_end).unwrap_or(b"")
        }
    }
}

/// How a `status` response to a `method` request is delimited, given what its
/// fields say (RFC 9112 §6.3 rules 1, 2 and 4 to 8).
#[inline(always)]
fn framing(status: u16, method: &[u8], delimiter: Delimiter) -> ResponseFraming {
    let connect = method == b"CONNECT";
    if status == 101 || (connect && (200..300).contains(&status)) {
        ResponseFraming::Tunnel
    } else if method == b"HEAD" || status < 200 || status == 204 || status == 304 {
        ResponseFraming::None
    } else {
        match delimiter {
            Delimiter::Chunked { .. } => ResponseFraming::Chunked,
            Delimiter::Length(n) => ResponseFraming::Length(n),
            Delimiter::Unchunked | Delimiter::Absent => ResponseFraming::Close,
        }
    }
}

// === impl ResponseBodyReader ===

/// Delimits a response body from the bytes after its head, whatever its
/// [`ResponseFraming`]: pass it what the upstream sent, it hands back the body data and says
/// when the body ended.
///
/// Whether [`is_done`](Self::is_done) holds when the exchange ends is what decides if
/// an upstream connection may be reused: one whose response was not read to its end
/// never is.
#[derive(Clone, Debug)]
pub struct ResponseBodyReader {
    state: BodyState,
}

#[derive(Clone, Debug)]
enum BodyState {
    /// This many bytes are still to come.
    Length(u64),
    Chunked(ChunkedDecoder),
    /// Until end of stream.
    Close,
    Done,
}

impl ResponseBodyReader {
    /// A reader for a body framed as `framing` ([`ResponseFraming::None`] and
    /// [`ResponseFraming::Tunnel`] have none: the reader is done at once).
    pub fn new(framing: ResponseFraming) -> Self {
        let state = match framing {
            ResponseFraming::None | ResponseFraming::Tunnel | ResponseFraming::Length(0) => {
                BodyState::Done
            }
            ResponseFraming::Length(n) => BodyState::Length(n),
            // An upstream's body is not held to the client-side body limit; it streams.
            ResponseFraming::Chunked => BodyState::Chunked(ChunkedDecoder::new(u64::MAX)),
            ResponseFraming::Close => BodyState::Close,
        };
        Self { state }
    }

    /// Whether the whole body has been read. Bytes after it belong to the next response.
    pub fn is_done(&self) -> bool {
        match &self.state {
            BodyState::Done => true,
            BodyState::Chunked(decoder) => decoder.is_done(),
            _ => false,
        }
    }

    /// Reads from `input`: returns how many bytes it consumed and the body data among
    /// them (one contiguous run; call again with the rest). Consumes nothing past the
    /// body's end.
    ///
    /// # Errors
    ///
    /// [`ResponseError::BadFraming`] for broken chunked framing, [`ResponseError::HeadTooLarge`] for
    /// chunk extensions or trailers over their caps.
    pub fn decode<'a>(&mut self, input: &'a [u8]) -> Result<(usize, &'a [u8]), ResponseError> {
        match &mut self.state {
            BodyState::Done => Ok((0, &[])),
            BodyState::Length(remaining) => {
                let n = input
                    .len()
                    .min(usize::try_from(*remaining).unwrap_or(usize::MAX));
                *remaining -= n as u64;
                if *remaining == 0 {
                    self.state = BodyState::Done;
                }
                Ok((n, &input[..n]))
            }
            BodyState::Chunked(decoder) => decoder.decode(input).map_err(|error| match error {
                RequestError::HeadTooLarge => ResponseError::HeadTooLarge,
                _ => ResponseError::BadFraming,
            }),
            BodyState::Close => Ok((input.len(), input)),
        }
    }

    /// The upstream closed its side: ends a close-delimited body.
    ///
    /// # Errors
    ///
    /// [`ResponseError::Truncated`] if the body was delimited otherwise and had not ended.
    pub fn on_eof(&mut self) -> Result<(), ResponseError> {
        if matches!(self.state, BodyState::Close) {
            self.state = BodyState::Done;
        }
        if self.is_done() {
            Ok(())
        } else {
            Err(ResponseError::Truncated)
        }
    }
}

impl From<FramingError> for ResponseError {
    fn from(FramingError: FramingError) -> Self {
        ResponseError::BadFraming
    }
}

impl From<HeadOverLimit> for ResponseError {
    fn from(HeadOverLimit: HeadOverLimit) -> Self {
        ResponseError::HeadTooLarge
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::fields::{MAX_HEADERS, field_storage};

    /// [`fields::find_head`] with its error as the proxy reads it.
    fn find_head(
        buf: &[u8],
        scanned: &mut usize,
        max_head_bytes: usize,
    ) -> Result<Option<usize>, ResponseError> {
        Ok(fields::find_head(buf, scanned, max_head_bytes)?)
    }

    const MAX_HEAD: usize = 4096;

    /// A parsed head with its fields copied out, so that runs can be compared.
    #[derive(Debug, PartialEq)]
    struct Owned {
        head: ResponseHead,
        reason: Vec<u8>,
        fields: Vec<(String, Vec<u8>)>,
    }

    /// Reads the heads at the front of `input` fed in pieces of `step` bytes, as an
    /// event loop would: 1xx heads and then the final one. Returns them and the bytes
    /// left after the final head.
    fn read_heads(
        input: &[u8],
        step: usize,
        method: &[u8],
    ) -> Result<(Vec<Owned>, Vec<u8>), ResponseError> {
        let mut buf = Vec::new();
        let mut scanned = 0;
        let mut heads = Vec::new();
        let mut pieces = input.chunks(step.max(1));
        loop {
            let Some(end) = find_head(&buf, &mut scanned, MAX_HEAD)? else {
                match pieces.next() {
                    Some(piece) => buf.extend_from_slice(piece),
                    None => return Err(ResponseError::Truncated), // input ended inside a head
                }
                continue;
            };
            let mut storage = field_storage();
            let parsed = parse(&buf[..end], method, &mut storage)?;
            let owned = Owned {
                head: parsed.head,
                reason: parsed.reason.to_vec(),
                fields: parsed
                    .fields
                    .iter()
                    .map(|f| (f.name.to_owned(), f.value.to_vec()))
                    .collect(),
            };
            let (len, interim) = (parsed.len, parsed.head.is_interim());
            heads.push(owned);
            buf.drain(..len);
            if !interim {
                buf.extend(pieces.flatten());
                return Ok((heads, buf));
            }
        }
    }

    /// Runs `input` whole, in 7-byte pieces and byte by byte; checks the three agree and
    /// returns the whole-input result.
    fn heads(input: &str, method: &str) -> Result<(Vec<Owned>, Vec<u8>), ResponseError> {
        let whole = read_heads(input.as_bytes(), input.len(), method.as_bytes());
        for step in [7, 1] {
            let run = read_heads(input.as_bytes(), step, method.as_bytes());
            assert_eq!(run, whole, "step {step} differs for {input:?}");
        }
        whole
    }

    /// The final head of a response to GET.
    fn head(input: &str) -> Result<ResponseHead, ResponseError> {
        head_to(input, "GET")
    }

    fn head_to(input: &str, method: &str) -> Result<ResponseHead, ResponseError> {
        let input = format!("{input}\r\n");
        heads(&input, method).map(|(heads, _)| heads.last().unwrap().head)
    }

    #[test]
    fn status_line_reason_and_fields_without_copies() {
        let input = b"HTTP/1.1 404 Not \xe9 Found\r\nServer: up\r\nX-A:  b c \r\n\r\nbody";
        let mut storage = field_storage();
        let end = find_head(input, &mut 0, MAX_HEAD).unwrap().unwrap();
        let parsed = parse(&input[..end], b"GET", &mut storage).unwrap();
        assert_eq!(parsed.head.status, 404);
        assert_eq!(parsed.head.version, Version::Http11);
        assert_eq!(parsed.reason, b"Not \xe9 Found", "obs-text kept as sent");
        assert_eq!(parsed.len, input.len() - 4);
        let names: Vec<_> = parsed.fields.iter().map(|f| (f.name, f.value)).collect();
        assert_eq!(names, [("Server", &b"up"[..]), ("X-A", b"b c")]);
        // The fields point into the caller's buffer.
        assert!(
            input
                .as_ptr_range()
                .contains(&parsed.fields[1].value.as_ptr())
        );

        let h = heads("HTTP/1.0 200\r\n\r\n", "GET").unwrap().0;
        assert_eq!((h[0].head.status, h[0].reason.len()), (200, 0), "no reason");
        assert_eq!(h[0].head.version, Version::Http10);
    }

    #[test]
    fn framing_per_rfc9112_6_3() {
        #[rustfmt::skip]
        let cases: &[(&str, &str, ResponseFraming)] = &[
            ("GET", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n", ResponseFraming::Length(5)),
            ("GET", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n", ResponseFraming::Length(0)),
            ("GET", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n", ResponseFraming::Length(5)),
            ("GET", "HTTP/1.1 200 OK\r\nContent-Length: 5 , 5\r\n", ResponseFraming::Length(5)),
            ("GET", "HTTP/1.1 200 OK\r\nContent-Length: 007\r\n", ResponseFraming::Length(7)),
            ("GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n", ResponseFraming::Chunked),
            ("GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: CHUNKED\r\n", ResponseFraming::Chunked),
            ("GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n", ResponseFraming::Chunked),
            ("GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n", ResponseFraming::Chunked),
            // A comma inside a quoted parameter value splits nothing (RFC 9110 §5.6.4).
            ("GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: x;p=\"a,b\", chunked\r\n", ResponseFraming::Chunked),
            ("GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: x;p=\"a\\\",chunked\"\r\n", ResponseFraming::Close),
            // §6.3 rule 4: final coding not chunked → read until close.
            ("GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n", ResponseFraming::Close),
            // Rule 8: neither field.
            ("GET", "HTTP/1.1 200 OK\r\n", ResponseFraming::Close),
            ("GET", "HTTP/1.0 200 OK\r\n", ResponseFraming::Close),
            ("POST", "HTTP/1.1 500 Oops\r\n", ResponseFraming::Close),
            // Rule 1: no body whatever the fields say.
            ("HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n", ResponseFraming::None),
            ("HEAD", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n", ResponseFraming::None),
            ("HEAD", "HTTP/1.1 404 Not Found\r\n", ResponseFraming::None),
            ("GET", "HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n", ResponseFraming::None),
            ("GET", "HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n", ResponseFraming::None),
            ("GET", "HTTP/1.1 205 Reset Content\r\nContent-Length: 0\r\n", ResponseFraming::Length(0)),
            // Rule 2: tunnels.
            ("CONNECT", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n", ResponseFraming::Tunnel),
            ("CONNECT", "HTTP/1.1 407 Auth\r\nContent-Length: 5\r\n", ResponseFraming::Length(5)),
            ("GET", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n", ResponseFraming::Tunnel),
            // Methods are case-sensitive (RFC 9110 §9.1): "head" is not HEAD.
            ("head", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n", ResponseFraming::Length(1)),
        ];
        for &(method, response, framing) in cases {
            assert_eq!(
                head_to(response, method).map(|h| h.framing),
                Ok(framing),
                "{method} {response:?}"
            );
        }
        let h = head_to("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n", "HEAD").unwrap();
        assert_eq!(
            h.content_length,
            Some(100),
            "a HEAD response's length is kept"
        );
        assert!(!h.transfer_coded);
        assert!(
            head("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n")
                .unwrap()
                .transfer_coded
        );
        assert!(
            head("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n")
                .unwrap()
                .transfer_coded
        );
        assert!(
            !head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n")
                .unwrap()
                .transfer_coded
        );
    }

    #[test]
    fn keep_alive_per_rfc9112_9_3() {
        let cases = [
            ("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n", true),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n",
                false,
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: x, Close\r\n",
                false,
            ),
            ("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n", false),
            (
                "HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: Keep-Alive\r\n",
                true,
            ),
            (
                "HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive, close\r\n",
                false,
            ),
            // A body delimited by the close ends the connection.
            ("HTTP/1.1 200 OK\r\n", false),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n", false),
            ("HTTP/1.1 101 Switching Protocols\r\n", false),
            ("HTTP/1.1 204 No Content\r\n", true),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n", true),
        ];
        for (response, keep_alive) in cases {
            assert_eq!(
                head(response).map(|h| h.keep_alive),
                Ok(keep_alive),
                "{response:?}"
            );
        }
    }

    #[test]
    fn interim_responses_are_flagged_and_the_final_one_follows() {
        let input = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n\
                     HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1";
        let (heads, rest) = heads(input, "POST").unwrap();
        let statuses: Vec<_> = heads
            .iter()
            .map(|h| (h.head.status, h.head.is_interim()))
            .collect();
        assert_eq!(statuses, [(100, true), (103, true), (200, false)]);
        assert_eq!(heads[1].fields, [("Link".to_owned(), b"</s.css>".to_vec())]);
        assert_eq!(heads[0].head.framing, ResponseFraming::None);
        assert_eq!(
            rest, b"okHTTP/1.1",
            "the body and what follows are left alone"
        );
        assert!(
            !head("HTTP/1.1 101 Switching Protocols\r\n")
                .unwrap()
                .is_interim()
        );
    }

    #[test]
    fn rejects_bad_framing() {
        for bad in [
            "Content-Length: 5\r\nContent-Length: 6",
            "Content-Length: 5, 6",
            "Content-Length: 5,",
            "Content-Length: +5",
            "Content-Length: -5",
            "Content-Length: 0x5",
            "Content-Length: 5 5",
            "Content-Length: ",
            "Content-Length: 99999999999999999999",
            "Content-Length: 5\r\nTransfer-Encoding: chunked",
            "Transfer-Encoding: chunked\r\nContent-Length: 5",
            "Transfer-Encoding: chunked, chunked",
            "Transfer-Encoding: chunked, gzip",
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip",
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked",
            // A list read two ways (RFC 9110 §5.6.1, §5.6.4): an
            // unterminated quoted-string, where a reader that splits at every comma
            // sees a final chunked; codings outside the grammar (RFC 9112 §7).
            "Transfer-Encoding: x;p=\"a, chunked",
            "Transfer-Encoding: x;p=\"a\\\", chunked",
            "Transfer-Encoding: \"chunked\"",
            "Transfer-Encoding: x y, chunked",
            "Transfer-Encoding: chunked;q=1",
            "Transfer-Encoding: x;p, chunked",
        ] {
            let response = format!("HTTP/1.1 200 OK\r\n{bad}\r\n");
            assert_eq!(head(&response), Err(ResponseError::BadFraming), "{bad:?}");
        }
        // Checked whatever the status or method: a conflict means the upstream is
        // confused about framing, body or not.
        assert_eq!(
            head_to(
                "HTTP/1.1 304 Not Modified\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n",
                "HEAD"
            ),
            Err(ResponseError::BadFraming)
        );
        // RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 is faulty framing.
        assert_eq!(
            head("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n"),
            Err(ResponseError::BadFraming)
        );
    }

    #[test]
    fn rejects_malformed_heads() {
        for bad in [
            "HTTP/2.0 200 OK\r\n\r\n",
            "HTTP/1.2 200 OK\r\n\r\n",
            "http/1.1 200 OK\r\n\r\n",
            "ICY 200 OK\r\n\r\n",
            "HTTP/1.1 20 OK\r\n\r\n",
            "HTTP/1.1 2000 OK\r\n\r\n",
            "HTTP/1.1 099 Low\r\n\r\n",
            "HTTP/1.1 600 High\r\n\r\n",
            "HTTP/1.1 2x0 OK\r\n\r\n",
            "HTTP/1.1  200 OK\r\n\r\n",
            "HTTP/1.1 200 O\x01K\r\n\r\n",
            "\r\nHTTP/1.1 200 OK\r\n\r\n", // blank line first
            "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", // bare LF, status line
            "HTTP/1.1 200 OK\r\nContent-Length: 0\n\r\n", // bare LF, field line
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\n", // bare LF, blank line
            "HTTP/1.1 200 OK\n\n",
            "HTTP/1.1 200 OK\r\nX-A: b\r\n c\r\nContent-Length: 0\r\n\r\n", // obs-fold
            "HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n",                // space before colon
            "HTTP/1.1 200 OK\r\nX-A\t: b\r\n\r\n",
            "HTTP/1.1 200 OK\r\nX A: b\r\n\r\n", // bad name bytes
            "HTTP/1.1 200 OK\r\nX\"A: b\r\n\r\n",
            "HTTP/1.1 200 OK\r\n: b\r\n\r\n",
            "HTTP/1.1 200 OK\r\nNoColon\r\n\r\n",
            "HTTP/1.1 200 OK\r\nX-A: b\x00c\r\n\r\n", // bad value bytes
            "HTTP/1.1 200 OK\r\nX-A: b\rc\r\n\r\n",
            "HTTP/1.1 200 OK\r\nX-A: b\x7fc\r\n\r\n",
            "HTTP/1.1 200 OK\r\nX-A: b\x0bc\r\n\r\n",
        ] {
            assert_eq!(
                heads(bad, "GET").map(|_| ()),
                Err(ResponseError::Malformed),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn more_than_max_headers_fields_is_too_large() {
        let fields_line =
            |n: usize| -> String { (0..n).map(|i| format!("X-{i}: v\r\n")).collect() };
        let at_limit = format!("HTTP/1.1 200 OK\r\n{}\r\n", fields_line(MAX_HEADERS));
        assert_eq!(
            parse(at_limit.as_bytes(), b"GET", &mut field_storage())
                .unwrap()
                .fields
                .len(),
            MAX_HEADERS
        );
        let over = format!("HTTP/1.1 200 OK\r\n{}", fields_line(MAX_HEADERS + 1));
        assert_eq!(head(&over), Err(ResponseError::HeadTooLarge));
    }

    #[test]
    fn a_head_past_the_byte_limit_is_too_large_even_unfinished() {
        // The byte limit: a head of exactly the limit passes, one byte more does not,
        // and an unfinished head is refused as soon as it passes the limit.
        let base = "HTTP/1.1 200 OK\r\nX: \r\n\r\n";
        let exact = base.replace("X: ", &format!("X: {}", "v".repeat(MAX_HEAD - base.len())));
        assert_eq!(exact.len(), MAX_HEAD);
        assert!(
            find_head(exact.as_bytes(), &mut 0, MAX_HEAD)
                .unwrap()
                .is_some()
        );
        let over = exact.replace("X: ", "X: v");
        assert_eq!(
            find_head(over.as_bytes(), &mut 0, MAX_HEAD),
            Err(ResponseError::HeadTooLarge)
        );
        let unfinished = format!("HTTP/1.1 200 OK\r\nX: {}", "v".repeat(MAX_HEAD));
        let unfinished = unfinished.as_bytes();
        assert_eq!(
            find_head(&unfinished[..MAX_HEAD], &mut 0, MAX_HEAD),
            Ok(None)
        );
        assert_eq!(
            find_head(&unfinished[..=MAX_HEAD], &mut 0, MAX_HEAD),
            Err(ResponseError::HeadTooLarge)
        );
    }

    /// Decodes the body after `response`'s head, fed in pieces of `step` bytes, then
    /// (if `eof`) ends the input. Returns the body and the bytes left after it.
    fn body(response: &[u8], step: usize, eof: bool) -> Result<(Vec<u8>, Vec<u8>), ResponseError> {
        let end = find_head(response, &mut 0, MAX_HEAD)?.unwrap();
        let framing = parse(&response[..end], b"GET", &mut field_storage())?
            .head
            .framing;
        let mut reader = ResponseBodyReader::new(framing);
        let (mut body, mut pending) = (Vec::new(), Vec::new());
        for piece in response[end..].chunks(step) {
            pending.extend_from_slice(piece);
            while !reader.is_done() {
                let (used, data) = reader.decode(&pending)?;
                body.extend_from_slice(data);
                pending.drain(..used);
                if used == 0 {
                    break;
                }
            }
        }
        if eof {
            reader.on_eof()?;
        }
        if !reader.is_done() {
            return Err(ResponseError::Truncated);
        }
        Ok((body, pending))
    }

    fn body_in_steps(response: &[u8], eof: bool) -> Result<(Vec<u8>, Vec<u8>), ResponseError> {
        let whole = body(response, response.len(), eof);
        for step in [7, 1] {
            assert_eq!(body(response, step, eof), whole, "step {step}");
        }
        whole
    }

    #[test]
    fn close_delimited_body_runs_to_end_of_stream() {
        let response = b"HTTP/1.1 200 OK\r\nServer: x\r\n\r\nall of this, \r\n0\r\n\r\nHTTP/1.1 200 OK\r\n\r\n too";
        let (data, rest) = body_in_steps(response, true).unwrap();
        assert_eq!(data, &response[30..], "everything up to the close is body");
        assert!(rest.is_empty());
        // Not done until the close.
        let mut reader = ResponseBodyReader::new(ResponseFraming::Close);
        assert_eq!(reader.decode(b"abc"), Ok((3, &b"abc"[..])));
        assert!(!reader.is_done());
        assert_eq!(reader.on_eof(), Ok(()));
        assert!(reader.is_done());
    }

    #[test]
    fn length_and_chunked_bodies_stop_at_their_end() {
        let response = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 204";
        assert_eq!(
            body_in_steps(response, false).unwrap(),
            (b"hello".to_vec(), b"HTTP/1.1 204".to_vec())
        );
        let response = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;e=1\r\nhello\r\n1\r\n!\r\n0\r\nT: v\r\n\r\nNEXT";
        assert_eq!(
            body_in_steps(response, false).unwrap(),
            (b"hello!".to_vec(), b"NEXT".to_vec())
        );
        let response = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nNEXT";
        assert_eq!(
            body_in_steps(response, false).unwrap(),
            (Vec::new(), b"NEXT".to_vec())
        );
        let response = b"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\nNEXT";
        assert_eq!(
            body_in_steps(response, false).unwrap(),
            (Vec::new(), b"NEXT".to_vec())
        );
    }

    #[test]
    fn body_errors() {
        let truncated = [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nhello"[..],
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n",
        ];
        for response in truncated {
            let end = find_head(response, &mut 0, MAX_HEAD).unwrap().unwrap();
            let framing = parse(&response[..end], b"GET", &mut field_storage())
                .unwrap()
                .head
                .framing;
            let mut reader = ResponseBodyReader::new(framing);
            let mut rest = &response[end..];
            while !rest.is_empty() {
                rest = &rest[reader.decode(rest).unwrap().0..];
            }
            assert!(!reader.is_done());
            assert_eq!(
                reader.on_eof(),
                Err(ResponseError::Truncated),
                "{:?}",
                String::from_utf8_lossy(response)
            );
        }
        for (bad, error) in [
            (&b"5\nhello\r\n0\r\n\r\n"[..], ResponseError::BadFraming),
            (b"5\r\nhelloX\r\n0\r\n\r\n", ResponseError::BadFraming),
            (b"x\r\n", ResponseError::BadFraming),
            (b"11111111111111111\r\n", ResponseError::BadFraming),
        ] {
            let mut response = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            response.extend_from_slice(bad);
            assert_eq!(
                body_in_steps(&response, false),
                Err(error),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let mut trailer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: ".to_vec();
        trailer.extend(std::iter::repeat_n(
            b't',
            crate::http::body::TRAILER_LIMIT as usize,
        ));
        assert_eq!(
            body(&trailer, trailer.len(), false),
            Err(ResponseError::HeadTooLarge)
        );
    }
}
