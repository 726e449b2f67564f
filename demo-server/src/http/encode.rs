//! Response heads, written straight into the connection's `WriteBuf`.

use recycle::io::WriteBuf;
use recycle::status::{Clock, DateCache, LineReader, Version};

/// How the response body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Length {
    /// `Content-Length: n`.
    Known(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// No body and no length header (1xx, 204, 304).
    None,
}

/// A response head to write.
#[derive(Clone, Copy, Debug)]
pub struct Head<'a> {
    /// Status code (100..=999).
    pub status: u16,
    /// The request's version, echoed in the status line (as Go's server does).
    pub version: Version,
    /// `Content-Type`, if any.
    pub content_type: Option<&'a str>,
    /// Body framing.
    pub length: Length,
    /// `Allow`, for 405.
    pub allow: Option<&'a str>,
    /// Whether the connection closes after this response.
    pub close: bool,
}

/// Plain-text content type of the demo's bodies.
pub const TEXT: &str = "text/plain; charset=utf-8";

/// Appends a response head. Allocates nothing once the status line is cached.
pub fn write_head<C: Clock>(
    out: &mut WriteBuf,
    lines: &mut LineReader<'_>,
    dates: &DateCache<C>,
    head: &Head<'_>,
) {
    if lines.write_line(head.status, head.version, out).is_err() {
        // Callers pass valid codes; never emit an invalid status line regardless.
        debug_assert!(false, "invalid status {}", head.status);
        let _ = lines.write_line(500, head.version, out);
    }
    out.extend_from_slice(b"Date: ");
    dates.write_cached(out);
    out.extend_from_slice(b"\r\n");
    if let Some(content_type) = head.content_type {
        header(out, b"Content-Type: ", content_type.as_bytes());
    }
    match head.length {
        Length::Known(n) => header(
            out,
            b"Content-Length: ",
            itoa::Buffer::new().format(n).as_bytes(),
        ),
        Length::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        Length::None => {}
    }
    if let Some(allow) = head.allow {
        header(out, b"Allow: ", allow.as_bytes());
    }
    if head.close {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if head.version == Version::Http10 {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

fn header(out: &mut WriteBuf, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Appends one chunk of a chunked body (`len` in hex, CRLF, data, CRLF).
pub fn write_chunk(out: &mut WriteBuf, data: &[u8]) {
    if data.is_empty() {
        return; // an empty chunk would end the body
    }
    let mut digits = [0u8; 16];
    let mut n = data.len();
    let mut i = digits.len();
    while n > 0 || i == digits.len() {
        i -= 1;
        digits[i] = b"0123456789abcdef"[n & 0xf];
        n >>= 4;
    }
    out.extend_from_slice(&digits[i..]);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// The last chunk, with no trailers.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";
