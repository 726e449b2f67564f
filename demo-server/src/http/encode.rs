//! Byte-level encoders for what [`conn::Response`](super::conn::Response) writes:
//! header field lines and chunks.

use bytes::BufMut;
use recycle_pool::io::WriteBuf;

/// Plain-text content type of the demo's bodies and of error responses.
pub const TEXT: &str = "text/plain; charset=utf-8";

/// Appends a field line whose name already ends in `": "`.
#[inline]
pub fn field(out: &mut WriteBuf, name_colon: &[u8], value: &[u8]) {
    out.extend_from_slice(name_colon);
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Appends one chunk of a chunked body (`len` in hex, CRLF, data, CRLF) to any
/// [`BufMut`]: the connection's [`WriteBuf`], or the proxy's upstream output buffer
/// (a `Vec<u8>`).
pub fn write_chunk(out: &mut impl BufMut, data: &[u8]) {
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
    out.put_slice(&digits[i..]);
    out.put_slice(b"\r\n");
    out.put_slice(data);
    out.put_slice(b"\r\n");
}

/// The last chunk, with no trailers.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";
