//! Request bodies: the chunked decoder (RFC 9112 §7.1) and the body-length budget.
//!
//! Strict where leniency has been a request-smuggling vector: every framing line ends
//! in CRLF (a bare LF is an error), chunk sizes are at most 16 hex digits, extensions
//! and trailers are accepted and dropped but capped.

use super::Error;

/// Most bytes of chunk extensions accepted over a whole body.
pub const CHUNKED_EXTENSIONS_LIMIT: u64 = 16 * 1024;

/// Most bytes of trailer fields accepted.
pub const TRAILER_LIMIT: u64 = 16 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Reading hex digits of a chunk size; `digits` so far.
    Size { digits: u8 },
    /// After the size: optional whitespace, then `;ext` or CR.
    Ext,
    /// CR seen at the end of a size line; LF must follow.
    SizeLf,
    /// Inside chunk data.
    Data,
    /// Chunk data ended; CR must follow.
    DataCr,
    /// CR after data; LF must follow.
    DataLf,
    /// At the start of a trailer line (or the final blank line).
    TrailerStart,
    /// Inside a trailer line.
    Trailer,
    /// CR seen in the trailer section; `blank` if the line was empty.
    TrailerLf { blank: bool },
    /// The body is complete.
    Done,
}

/// A push decoder for `Transfer-Encoding: chunked`.
///
/// # Examples
///
/// ```
/// use demo_server::http::body::ChunkedDecoder;
///
/// let mut decoder = ChunkedDecoder::new(1024);
/// let mut input: &[u8] = b"5;ext=1\r\nhello\r\n0\r\nTrailer: x\r\n\r\n";
/// let mut body = Vec::new();
/// while !decoder.is_done() {
///     let (consumed, data) = decoder.decode(input).unwrap();
///     body.extend_from_slice(data);
///     input = &input[consumed..];
/// }
/// assert_eq!(body, b"hello");
/// ```
#[derive(Clone, Debug)]
pub struct ChunkedDecoder {
    state: State,
    /// Size of the chunk being read, then what is left of it.
    remaining: u64,
    /// Body bytes so far, against `max_body`.
    total: u64,
    max_body: u64,
    extensions: u64,
    trailers: u64,
}

impl ChunkedDecoder {
    /// A decoder that refuses bodies over `max_body` bytes (413).
    pub fn new(max_body: u64) -> Self {
        Self {
            state: State::Size { digits: 0 },
            remaining: 0,
            total: 0,
            max_body,
            extensions: 0,
            trailers: 0,
        }
    }

    /// Whether the terminating chunk and trailers have been read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decodes from `input`: returns how many bytes it consumed and the body data
    /// among them (at most one contiguous run; call again with the rest). Returns
    /// `(0, [])` only when `input` is empty or the body is done.
    ///
    /// # Errors
    ///
    /// [`Error::Malformed`] for broken framing, [`Error::BodyTooLarge`] past the
    /// budget, [`Error::HeadTooLarge`] past the extension or trailer caps.
    pub fn decode<'a>(&mut self, input: &'a [u8]) -> Result<(usize, &'a [u8]), Error> {
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            match self.state {
                State::Size { digits } => match hex(b) {
                    Some(d) => {
                        if digits == 16 {
                            return Err(Error::Malformed);
                        }
                        self.remaining = self.remaining << 4 | u64::from(d);
                        self.state = State::Size { digits: digits + 1 };
                    }
                    None if digits == 0 => return Err(Error::Malformed),
                    None => {
                        self.state = State::Ext;
                        continue; // look at this byte again as part of the extension
                    }
                },
                State::Ext => match b {
                    b'\r' => self.state = State::SizeLf,
                    b'\n' => return Err(Error::Malformed),
                    _ if is_ctl(b) => return Err(Error::Malformed),
                    _ => {
                        self.extensions += 1;
                        if self.extensions > CHUNKED_EXTENSIONS_LIMIT {
                            return Err(Error::HeadTooLarge);
                        }
                    }
                },
                State::SizeLf => {
                    if b != b'\n' {
                        return Err(Error::Malformed);
                    }
                    if self.remaining == 0 {
                        self.state = State::TrailerStart;
                    } else {
                        self.total = self.total.saturating_add(self.remaining);
                        if self.total > self.max_body {
                            return Err(Error::BodyTooLarge);
                        }
                        self.state = State::Data;
                    }
                }
                State::Data => {
                    let available = (input.len() - i) as u64;
                    let n = self.remaining.min(available) as usize;
                    self.remaining -= n as u64;
                    if self.remaining == 0 {
                        self.state = State::DataCr;
                    }
                    return Ok((i + n, &input[i..i + n]));
                }
                State::DataCr => {
                    if b != b'\r' {
                        return Err(Error::Malformed);
                    }
                    self.state = State::DataLf;
                }
                State::DataLf => {
                    if b != b'\n' {
                        return Err(Error::Malformed);
                    }
                    self.state = State::Size { digits: 0 };
                }
                State::TrailerStart | State::Trailer => match b {
                    b'\r' => {
                        self.state = State::TrailerLf {
                            blank: self.state == State::TrailerStart,
                        }
                    }
                    b'\n' => return Err(Error::Malformed),
                    _ if is_ctl(b) => return Err(Error::Malformed),
                    _ => {
                        self.trailers += 1;
                        if self.trailers > TRAILER_LIMIT {
                            return Err(Error::HeadTooLarge);
                        }
                        self.state = State::Trailer;
                    }
                },
                State::TrailerLf { blank } => {
                    if b != b'\n' {
                        return Err(Error::Malformed);
                    }
                    if blank {
                        self.state = State::Done;
                        return Ok((i + 1, &[]));
                    }
                    self.state = State::TrailerStart;
                }
                State::Done => return Ok((i, &[])),
            }
            i += 1;
        }
        Ok((i, &[]))
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Control characters other than HTAB (CR and LF are handled by the states).
fn is_ctl(b: u8) -> bool {
    (b < 0x20 && b != b'\t') || b == 0x7f
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `input` fed in pieces of `step` bytes.
    fn decode_in_steps(input: &[u8], step: usize) -> Result<(Vec<u8>, usize), Error> {
        let mut decoder = ChunkedDecoder::new(1 << 20);
        let mut body = Vec::new();
        let mut pos = 0;
        let mut pending: Vec<u8> = Vec::new();
        while !decoder.is_done() {
            if pending.is_empty() {
                if pos == input.len() {
                    return Err(Error::Malformed); // incomplete
                }
                let end = (pos + step).min(input.len());
                pending.extend_from_slice(&input[pos..end]);
                pos = end;
            }
            let (consumed, data) = decoder.decode(&pending)?;
            body.extend_from_slice(data);
            pending.drain(..consumed);
        }
        Ok((body, input.len() - pos + pending.len()))
    }

    #[test]
    fn decodes_whole_and_byte_by_byte() {
        let input = b"5\r\nhello\r\n1A;name=\"v\"; x\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nA: b\r\nC: d\r\n\r\nNEXT";
        for step in [1, 2, 3, 7, input.len()] {
            let (body, rest) = decode_in_steps(input, step).unwrap();
            assert_eq!(body, b"helloabcdefghijklmnopqrstuvwxyz", "step {step}");
            assert_eq!(
                rest, 4,
                "the next request's bytes are left alone (step {step})"
            );
        }
    }

    #[test]
    fn rejects_smuggling_shapes() {
        for bad in [
            &b"5\nhello\r\n0\r\n\r\n"[..], // bare LF after size
            b"5\r\nhello\n0\r\n\r\n",      // bare LF after data
            b"5\r\nhelloX\r\n0\r\n\r\n",   // data longer than its size
            b"\r\n",                       // no size
            b"-5\r\n",                     // sign
            b"0x5\r\n",                    // prefix
            b"5 \x01\r\n",                 // control char in extension
            b"0\r\nA: b\n\r\n",            // bare LF in trailers
            b"11111111111111111\r\n",      // 17 hex digits
        ] {
            assert_eq!(
                decode_in_steps(bad, 1).unwrap_err(),
                Error::Malformed,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    /// Feeds all of `input` to `decoder`.
    fn feed(decoder: &mut ChunkedDecoder, mut input: &[u8]) -> Result<(), Error> {
        while !input.is_empty() && !decoder.is_done() {
            let (consumed, _) = decoder.decode(input)?;
            input = &input[consumed..];
        }
        Ok(())
    }

    #[test]
    fn enforces_budgets() {
        assert_eq!(
            feed(&mut ChunkedDecoder::new(10), b"b\r\n"),
            Err(Error::BodyTooLarge)
        );
        let mut decoder = ChunkedDecoder::new(10);
        assert_eq!(
            feed(&mut decoder, b"5\r\n12345\r\n5\r\n12345\r\n0\r\n\r\n"),
            Ok(())
        );
        assert!(decoder.is_done(), "exactly the budget is fine");
        let over = b"5\r\n12345\r\n6\r\n";
        assert_eq!(
            feed(&mut ChunkedDecoder::new(10), over),
            Err(Error::BodyTooLarge)
        );
        let ext = format!(
            "1;{}\r\n",
            "e".repeat(CHUNKED_EXTENSIONS_LIMIT as usize + 1)
        );
        assert_eq!(
            feed(&mut ChunkedDecoder::new(10), ext.as_bytes()),
            Err(Error::HeadTooLarge)
        );
        let trailer = format!("0\r\nX: {}\r\n", "t".repeat(TRAILER_LIMIT as usize));
        assert_eq!(
            feed(&mut ChunkedDecoder::new(10), trailer.as_bytes()),
            Err(Error::HeadTooLarge)
        );
    }
}
