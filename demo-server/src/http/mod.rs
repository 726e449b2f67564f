//! The sans-I/O HTTP/1.1 core: bytes in, bytes out, no sockets.
//!
//! - [`fields`]: what both roles share: the head-end scan, the CRLF rule, the field
//!   storage, and the one reading of `Content-Length`, `Transfer-Encoding` and
//!   `Connection` that frames a message;
//! - [`connection`]: the `Connection` field's options, read once per head, for the
//!   connection and (for a proxy) the fields they name;
//! - [`parse`]: request heads (the server role: the request line, `Host`, `Expect`,
//!   the body limit), [`RequestHead`](parse::RequestHead);
//! - [`response`]: response heads and bodies (the proxy's client role: the status and
//!   the request method decide the framing), [`ResponseHead`](response::ResponseHead);
//! - [`body`]: the chunked decoder, for both roles;
//! - [`conn`]: the per-connection state machine that the event loop, the tests, the
//!   fuzz targets and the benchmarks all drive, the [`Handler`](conn::Handler)
//!   interface it hands requests to, and the [`Response`](conn::Response) it frames;
//! - [`encode`]: field lines and chunks.
//!
//! Nothing here knows an application: the demo routes and the proxy are handlers.

pub mod body;
pub mod conn;
pub mod connection;
pub mod encode;
pub mod fields;
pub mod parse;
pub mod response;

use std::fmt;

/// A set of bytes, as a lookup table: one load per byte instead of a chain of
/// comparisons.
pub(crate) struct ByteSet([bool; 256]);

impl ByteSet {
    /// The bytes listed in `extra`, plus ASCII letters and digits if `alphanumeric`.
    const fn new(alphanumeric: bool, extra: &[u8]) -> Self {
        let mut set = [false; 256];
        let mut b = 0;
        while b < 256 {
            set[b] = alphanumeric && (b as u8).is_ascii_alphanumeric();
            b += 1;
        }
        let mut i = 0;
        while i < extra.len() {
            set[extra[i] as usize] = true;
            i += 1;
        }
        Self(set)
    }

    /// Whether `b` is in the set.
    #[inline]
    pub(crate) const fn contains(&self, b: u8) -> bool {
        self.0[b as usize]
    }
}

/// `tchar` (RFC 9110 §5.6.2): the bytes of a token (a field name, a method, a chunk
/// extension name).
pub(crate) static TCHAR: ByteSet = ByteSet::new(true, b"!#$%&'*+-.^_`|~");

/// `unreserved / sub-delims` (RFC 3986 §2.3, §2.2): the bytes of a `reg-name` besides
/// percent-encodings, and of an IP-literal besides `:`.
pub(crate) static REG_NAME: ByteSet = ByteSet::new(true, b"-._~!$&'()*+,;=");

/// Why a request was refused. Each maps to one status ([`RequestError::status`]); every one
/// of them ends the connection after the response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestError {
    /// Syntax the parser refuses (an ill-formed version, a request target in a form
    /// its method may not use), a missing, repeated or invalid `Host`, or broken
    /// chunked framing (a chunk-size line or trailer outside the grammar, a bare LF):
    /// 400.
    Malformed,
    /// Framing that could be read two ways (both `Content-Length` and
    /// `Transfer-Encoding`, differing lengths, an invalid length) or not at all
    /// (`Transfer-Encoding` whose final coding is not chunked, RFC 9112 §6.3): 400.
    BadFraming,
    /// A transfer coding other than chunked, before the final chunked (the body is
    /// delimited, but this server cannot decode it; RFC 9112 §6.1): 501.
    UnsupportedCoding,
    /// A method longer than [`parse::MAX_METHOD_LEN`], so longer than any this server
    /// implements or forwards (RFC 9112 §3), whether or not the head fits the limit:
    /// 501.
    MethodTooLong,
    /// A request target over [`parse::MAX_URI_LEN`], or a request line that does not
    /// fit within the head limit: 414.
    UriTooLong,
    /// A head over the configured byte limit or [`fields::MAX_HEADERS`] fields, or chunk
    /// extensions or trailers over their caps: 431.
    HeadTooLarge,
    /// A body over the configured limit: 413.
    BodyTooLarge,
    /// An `Expect` other than `100-continue`: 417.
    ExpectationFailed,
    /// No complete head within the header timeout: 408.
    Timeout,
    /// A well-formed HTTP version of a major version other than 1 (`HTTP/2.0`, the
    /// HTTP/2 preface): 505.
    VersionNotSupported,
}

impl RequestError {
    /// The status code sent for this error.
    pub const fn status(self) -> u16 {
        match self {
            RequestError::Malformed | RequestError::BadFraming => 400,
            RequestError::Timeout => 408,
            RequestError::BodyTooLarge => 413,
            RequestError::UriTooLong => 414,
            RequestError::ExpectationFailed => 417,
            RequestError::HeadTooLarge => 431,
            RequestError::UnsupportedCoding | RequestError::MethodTooLong => 501,
            RequestError::VersionNotSupported => 505,
        }
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RequestError::Malformed => "malformed request",
            RequestError::BadFraming => "ambiguous or invalid message framing",
            RequestError::UnsupportedCoding => "unsupported transfer coding",
            RequestError::MethodTooLong => "method too long",
            RequestError::UriTooLong => "request target too long",
            RequestError::HeadTooLarge => "request head too large",
            RequestError::BodyTooLarge => "request body too large",
            RequestError::ExpectationFailed => "unsupported expectation",
            RequestError::Timeout => "request head timed out",
            RequestError::VersionNotSupported => "unsupported HTTP version",
        })
    }
}

impl std::error::Error for RequestError {}
