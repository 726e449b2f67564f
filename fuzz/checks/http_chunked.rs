//! `http_chunked`: the demo server's chunked decoder against a simple reference
//! decoder written here, over the whole input at once.
//!
//! Input layout: the first byte chooses the size of the pieces the rest is fed to the
//! real decoder in (1 to 64 bytes, its low six bits) and whether the caller takes only
//! half of each data run (bit 6); the rest is a chunked body.
//!
//! Property: both decode the same body and stop at the same byte, or both reject, or
//! both want more input.
//!
//! Shared by `fuzz_targets/http_chunked.rs` and `demo-server/tests/fuzz_replay.rs`.

use demo_server::http::body::{CHUNKED_EXTENSIONS_LIMIT, ChunkedDecoder, TRAILER_LIMIT};

const MAX_BODY: u64 = 1 << 16;

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// The body and the bytes the message took.
    Complete(Vec<u8>, usize),
    Invalid,
    Incomplete,
}

/// Why the reference stopped short of a complete body.
enum Stop {
    Incomplete,
    Invalid,
}

/// A cursor over the input: running off its end means "incomplete", never "invalid".
struct Cursor<'a> {
    input: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Result<u8, Stop> {
        self.input.get(self.i).copied().ok_or(Stop::Incomplete)
    }

    fn expect(&mut self, b: u8) -> Result<(), Stop> {
        if self.peek()? != b {
            return Err(Stop::Invalid);
        }
        self.i += 1;
        Ok(())
    }

    fn skip_while(&mut self, f: impl Fn(u8) -> bool) -> Result<usize, Stop> {
        let start = self.i;
        while f(self.peek()?) {
            self.i += 1;
        }
        Ok(self.i - start)
    }

    /// `BWS` / `OWS`: `*( SP / HTAB )`.
    fn ws(&mut self) -> Result<(), Stop> {
        self.skip_while(|b| b == b' ' || b == b'\t').map(drop)
    }

    /// `token = 1*tchar`.
    fn token(&mut self) -> Result<(), Stop> {
        match self.skip_while(is_tchar)? {
            0 => Err(Stop::Invalid),
            _ => Ok(()),
        }
    }

    /// `quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE`.
    fn quoted_string(&mut self) -> Result<(), Stop> {
        let text = |b: u8| b == b'\t' || b == b' ' || (b >= 0x21 && b != 0x7f);
        self.expect(b'"')?;
        loop {
            match self.peek()? {
                b'"' => break,
                b'\\' => {
                    self.i += 1;
                    if !text(self.peek()?) {
                        return Err(Stop::Invalid);
                    }
                }
                b if text(b) => {}
                _ => return Err(Stop::Invalid),
            }
            self.i += 1;
        }
        self.i += 1;
        Ok(())
    }

    /// `chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )`,
    /// up to (not including) the CR that ends the size line.
    fn chunk_ext(&mut self) -> Result<(), Stop> {
        loop {
            let start = self.i;
            self.ws()?;
            match self.peek()? {
                b'\r' if self.i == start => return Ok(()),
                b';' => self.i += 1,
                _ => return Err(Stop::Invalid),
            }
            self.ws()?;
            self.token()?;
            let name_end = self.i;
            self.ws()?;
            if self.peek()? == b'=' {
                self.i += 1;
                self.ws()?;
                if self.peek()? == b'"' {
                    self.quoted_string()?;
                } else {
                    self.token()?;
                }
            } else {
                // That whitespace may only come before a `;`: read it again as such.
                self.i = name_end;
            }
        }
    }

    /// `field-line = field-name ":" OWS field-value OWS`, up to the CR.
    fn field_line(&mut self) -> Result<(), Stop> {
        self.token()?;
        self.expect(b':')?;
        self.skip_while(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
            .map(drop)
    }

    fn crlf(&mut self) -> Result<(), Stop> {
        self.expect(b'\r')?;
        self.expect(b'\n')
    }
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Checks `parsed` (the result of parsing a line that began at `start`) against a cap
/// on `used + its length`: the decoder counts those bytes as it reads them, so an
/// overlong line is refused even before it ends.
fn capped(
    c: &Cursor<'_>,
    start: usize,
    parsed: Result<(), Stop>,
    used: &mut u64,
    cap: u64,
) -> Result<(), Stop> {
    let seen = match parsed {
        Ok(()) => c.i - start,
        Err(Stop::Incomplete) => c.input.len() - start,
        Err(Stop::Invalid) => return Err(Stop::Invalid),
    };
    if *used + seen as u64 > cap {
        return Err(Stop::Invalid);
    }
    parsed?;
    *used += seen as u64;
    Ok(())
}

/// RFC 9112 §7.1, read top-down, with the same limits as the server: sizes of 1 to 16
/// significant hex digits (leading zeros count against the extension cap), extensions
/// per §7.1.1, trailer lines per §7.1.2, CRLF line ends only.
fn reference(input: &[u8]) -> Outcome {
    match reference_body(&mut Cursor { input, i: 0 }) {
        Ok((body, end)) => Outcome::Complete(body, end),
        Err(Stop::Incomplete) => Outcome::Incomplete,
        Err(Stop::Invalid) => Outcome::Invalid,
    }
}

fn reference_body(c: &mut Cursor<'_>) -> Result<(Vec<u8>, usize), Stop> {
    let mut body = Vec::new();
    let mut extensions = 0u64;
    loop {
        let digits = c.input[c.i..]
            .iter()
            .take_while(|b| b.is_ascii_hexdigit())
            .count();
        // `1*HEXDIG`: leading zeros are valid however many; past the first digit they
        // are not significant and count against the extension cap instead.
        let zeros = c.input[c.i..c.i + digits]
            .iter()
            .take_while(|&&b| b == b'0')
            .count();
        let (counted, significant) = if zeros == digits {
            (digits.saturating_sub(1), 0)
        } else {
            (zeros.saturating_sub(1), digits - zeros)
        };
        extensions += counted as u64;
        if significant > 16 || extensions > CHUNKED_EXTENSIONS_LIMIT {
            return Err(Stop::Invalid);
        }
        if c.i + digits == c.input.len() {
            return Err(Stop::Incomplete);
        }
        if digits == 0 {
            return Err(Stop::Invalid);
        }
        let hex = std::str::from_utf8(&c.input[c.i..c.i + digits]).unwrap();
        let size = u64::from_str_radix(hex, 16).unwrap();
        c.i += digits;
        let start = c.i;
        let parsed = c.chunk_ext();
        capped(c, start, parsed, &mut extensions, CHUNKED_EXTENSIONS_LIMIT)?;
        c.crlf()?;
        if size == 0 {
            break;
        }
        // `size` may be as large as `u64::MAX` (16 significant digits): no sum overflows.
        if size > MAX_BODY - body.len() as u64 {
            return Err(Stop::Invalid);
        }
        let size = size as usize;
        if c.input.len() < c.i + size {
            return Err(Stop::Incomplete);
        }
        body.extend_from_slice(&c.input[c.i..c.i + size]);
        c.i += size;
        c.crlf()?;
    }
    let mut trailers = 0u64;
    while c.peek()? != b'\r' {
        let start = c.i;
        let parsed = c.field_line();
        capped(c, start, parsed, &mut trailers, TRAILER_LIMIT)?;
        c.crlf()?;
    }
    c.crlf()?;
    Ok((body, c.i))
}

/// The server's decoder, fed in pieces of `piece` bytes; with `half`, the caller takes
/// only half of each data run and gives the rest back ([`ChunkedDecoder::unread`]), as
/// the connection does when its handler applies backpressure.
fn real(input: &[u8], piece: usize, half: bool) -> Outcome {
    let mut decoder = ChunkedDecoder::new(MAX_BODY);
    let mut body = Vec::new();
    let mut fed = 0; // bytes handed to the decoder so far
    let mut buffered: Vec<u8> = Vec::new();
    let mut consumed_total = 0;
    while !decoder.is_done() {
        if buffered.is_empty() {
            if fed == input.len() {
                return Outcome::Incomplete;
            }
            let end = (fed + piece).min(input.len());
            buffered.extend_from_slice(&input[fed..end]);
            fed = end;
        }
        match decoder.decode(&buffered) {
            Ok((consumed, data)) => {
                let taken = if half {
                    data.len().div_ceil(2)
                } else {
                    data.len()
                };
                body.extend_from_slice(&data[..taken]);
                let left = data.len() - taken;
                decoder.unread(left);
                buffered.drain(..consumed - left);
                consumed_total += consumed - left;
            }
            Err(_) => return Outcome::Invalid,
        }
    }
    Outcome::Complete(body, consumed_total)
}

pub(crate) fn check(data: &[u8]) {
    let Some((&first, input)) = data.split_first() else {
        return;
    };
    let piece = 1 + usize::from(first % 64);
    let half = first & 0x40 != 0;
    let expected = reference(input);
    let got = real(input, piece, half);
    assert_eq!(got, expected, "input {:?}", String::from_utf8_lossy(input));
}
