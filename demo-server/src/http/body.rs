//! Request bodies: the chunked decoder (RFC 9112 §7.1) and the body-length budget.
//!
//! Strict where leniency has been a request-smuggling vector: every framing line ends
//! in CRLF (a bare LF is an error), chunk sizes are at most 16 significant hex digits
//! (leading zeros, valid however many, count against the extension cap), the rest of
//! a size line must follow the `chunk-ext` grammar (§7.1.1) and every trailer line the
//! `field-line` grammar (§7.1.2). Extensions and trailers are accepted and dropped, but
//! capped.

use super::{RequestError, TCHAR};

/// Most bytes of chunk extensions accepted over a whole body.
pub const CHUNKED_EXTENSIONS_LIMIT: u64 = 16 * 1024;

/// Most bytes of trailer fields accepted.
pub const TRAILER_LIMIT: u64 = 16 * 1024;

/// Where the decoder is. The extension states follow RFC 9112 §7.1.1:
///
/// ```text
/// chunk-ext      = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
/// chunk-ext-name = token
/// chunk-ext-val  = token / quoted-string
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Reading hex digits of a chunk size; `digits` so far.
    Size { digits: u8 },
    /// Whitespace after the size or after a value: only more of it or `;` may follow.
    ExtSemi,
    /// After `;`: whitespace, then a name.
    ExtPreName,
    /// Inside an extension name.
    ExtName,
    /// Whitespace after a name: `=` or `;` must follow.
    ExtPostName,
    /// After `=`: whitespace, then a token or a quoted-string.
    ExtPreValue,
    /// Inside a token value.
    ExtToken,
    /// Inside a quoted-string value.
    ExtQuoted,
    /// After a backslash inside a quoted-string.
    ExtQuotedPair,
    /// Right after the closing quote.
    ExtQuoteEnd,
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
    /// Inside a trailer field name.
    TrailerName,
    /// Inside a trailer field value (after the colon).
    TrailerValue,
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
    /// among them (at most one contiguous run, which always ends the consumed bytes;
    /// call again with the rest). Returns `(0, [])` only when `input` is empty or the
    /// body is done.
    ///
    /// # Errors
    ///
    /// [`RequestError::Malformed`] for broken framing, [`RequestError::BodyTooLarge`] past the
    /// budget, [`RequestError::HeadTooLarge`] past the extension or trailer caps.
    pub fn decode<'a>(&mut self, input: &'a [u8]) -> Result<(usize, &'a [u8]), RequestError> {
        let mut i = 0;
        while i < input.len() {
            match self.state {
                State::Done => break,
                State::Data => {
                    let available = (input.len() - i) as u64;
                    let n = self.remaining.min(available) as usize;
                    self.remaining -= n as u64;
                    if self.remaining == 0 {
                        self.state = State::DataCr;
                    }
                    return Ok((i + n, &input[i..i + n]));
                }
                _ => {
                    self.state = self.step(input[i])?;
                    i += 1;
                }
            }
        }
        Ok((i, &[]))
    }

    /// Takes back the last `n` data bytes that [`decode`](Self::decode) returned: the
    /// caller could not use them, and the next call (with those bytes at the front of
    /// its input) returns them again.
    pub fn unread(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        debug_assert!(
            matches!(self.state, State::Data | State::DataCr),
            "unread only right after data"
        );
        self.remaining += n as u64;
        self.state = State::Data;
    }

    /// One framing byte (any state but `Data`): the next state.
    fn step(&mut self, b: u8) -> Result<State, RequestError> {
        use State::*;
        Ok(match self.state {
            Size { digits } => match hex(b) {
                // A leading zero after the first (`1*HEXDIG` allows any number) is not
                // a significant digit; it counts against the extension budget, so a
                // size line stays bounded.
                Some(0) if digits > 0 && self.remaining == 0 => {
                    self.count_extension()?;
                    Size { digits: 1 }
                }
                Some(d) if digits > 0 && self.remaining == 0 => {
                    self.remaining = u64::from(d);
                    Size { digits: 1 }
                }
                Some(_) if digits == 16 => return Err(RequestError::Malformed),
                Some(d) => {
                    self.remaining = self.remaining << 4 | u64::from(d);
                    Size { digits: digits + 1 }
                }
                None if digits == 0 => return Err(RequestError::Malformed),
                None if b == b'\r' => SizeLf,
                None => {
                    self.count_extension()?;
                    extension(ExtSemi, b)?
                }
            },
            // CR ends the line only where the grammar may end: after a name or value.
            ExtName | ExtToken | ExtQuoteEnd if b == b'\r' => SizeLf,
            ExtSemi | ExtPreName | ExtName | ExtPostName | ExtPreValue | ExtToken | ExtQuoted
            | ExtQuotedPair | ExtQuoteEnd => {
                self.count_extension()?;
                extension(self.state, b)?
            }
            SizeLf => {
                if b != b'\n' {
                    return Err(RequestError::Malformed);
                }
                if self.remaining == 0 {
                    TrailerStart
                } else {
                    self.total = self.total.saturating_add(self.remaining);
                    if self.total > self.max_body {
                        return Err(RequestError::BodyTooLarge);
                    }
                    Data
                }
            }
            Data => unreachable!("data is consumed in runs, not stepped through"),
            DataCr => expect(b, b'\r', DataLf)?,
            DataLf => expect(b, b'\n', Size { digits: 0 })?,
            TrailerStart if b == b'\r' => TrailerLf { blank: true },
            TrailerValue if b == b'\r' => TrailerLf { blank: false },
            TrailerStart | TrailerName | TrailerValue => {
                self.trailers += 1;
                if self.trailers > TRAILER_LIMIT {
                    return Err(RequestError::HeadTooLarge);
                }
                trailer(self.state, b)?
            }
            TrailerLf { blank } => expect(b, b'\n', if blank { Done } else { TrailerStart })?,
            Done => unreachable!("nothing is read after the end"),
        })
    }

    fn count_extension(&mut self) -> Result<(), RequestError> {
        self.extensions += 1;
        if self.extensions > CHUNKED_EXTENSIONS_LIMIT {
            return Err(RequestError::HeadTooLarge);
        }
        Ok(())
    }
}

/// The next state inside a chunk extension (RFC 9112 §7.1.1), for any byte but a CR
/// that ends the line. Whitespace is BWS: allowed around `;` and `=`, nowhere else.
fn extension(state: State, b: u8) -> Result<State, RequestError> {
    use State::*;
    let ws = b == b' ' || b == b'\t';
    Ok(match (state, b) {
        (ExtSemi | ExtPostName | ExtQuoteEnd | ExtToken | ExtName, b';') => ExtPreName,
        (ExtSemi, _) if ws => ExtSemi,
        (ExtToken | ExtQuoteEnd, _) if ws => ExtSemi,
        (ExtPreName, _) if ws => ExtPreName,
        (ExtPreName | ExtName, _) if TCHAR.contains(b) => ExtName,
        (ExtName | ExtPostName, _) if ws => ExtPostName,
        (ExtName | ExtPostName, b'=') => ExtPreValue,
        (ExtPreValue, _) if ws => ExtPreValue,
        (ExtPreValue, b'"') => ExtQuoted,
        (ExtPreValue | ExtToken, _) if TCHAR.contains(b) => ExtToken,
        (ExtQuoted, b'"') => ExtQuoteEnd,
        (ExtQuoted, b'\\') => ExtQuotedPair,
        // qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text (RFC 9110 §5.6.4)
        (ExtQuoted, _) if ws || (b >= 0x21 && b != 0x7f) => ExtQuoted,
        // quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
        (ExtQuotedPair, _) if ws || (b >= 0x21 && b != 0x7f) => ExtQuoted,
        _ => return Err(RequestError::Malformed),
    })
}

/// Whether `parameters` is what may follow a transfer coding's name (RFC 9112 §7):
/// `*( OWS ";" OWS token BWS "=" BWS ( token / quoted-string ) )`. That is the
/// chunk-ext grammar of this decoder (§7.1.1), with whitespace before the first `;`
/// and a value required for every name.
pub(super) fn valid_transfer_parameters(parameters: &[u8]) -> bool {
    use State::*;
    let mut state = ExtSemi;
    for &b in parameters {
        let Ok(next) = extension(state, b) else {
            return false;
        };
        if next == ExtPreName && matches!(state, ExtName | ExtPostName) {
            return false; // a name without a value
        }
        state = next;
    }
    matches!(state, ExtToken | ExtQuoteEnd) || parameters.is_empty()
}

/// The next state inside a trailer line (RFC 9112 §7.1.2: a `field-line`, RFC 9112
/// §5: `field-name ":" OWS field-value OWS`), for any byte but a CR that ends it. No
/// whitespace before the colon (§5.1) and no obs-fold (§5.2).
fn trailer(state: State, b: u8) -> Result<State, RequestError> {
    use State::*;
    Ok(match state {
        TrailerStart | TrailerName if TCHAR.contains(b) => TrailerName,
        TrailerName if b == b':' => TrailerValue,
        // field-vchar, SP and HTAB (RFC 9110 §5.5); no other control character.
        TrailerValue if b == b'\t' || (b >= 0x20 && b != 0x7f) => TrailerValue,
        _ => return Err(RequestError::Malformed),
    })
}

fn expect(b: u8, wanted: u8, next: State) -> Result<State, RequestError> {
    if b == wanted {
        Ok(next)
    } else {
        Err(RequestError::Malformed)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// What [`decode_in_steps`] saw.
    #[derive(Debug, PartialEq, Eq)]
    enum Decoded {
        /// The body ended: its data, and how many input bytes were left after it.
        Done(Vec<u8>, usize),
        /// The input ran out before the body ended (neither accepted nor rejected).
        Incomplete,
        /// The decoder refused the input.
        Rejected(RequestError),
    }

    /// Decodes `input` fed in pieces of `step` bytes.
    fn decode_in_steps(input: &[u8], step: usize) -> Decoded {
        let mut decoder = ChunkedDecoder::new(1 << 20);
        let mut body = Vec::new();
        let mut pos = 0;
        let mut pending: Vec<u8> = Vec::new();
        while !decoder.is_done() {
            if pending.is_empty() {
                if pos == input.len() {
                    return Decoded::Incomplete;
                }
                let end = (pos + step).min(input.len());
                pending.extend_from_slice(&input[pos..end]);
                pos = end;
            }
            let (consumed, data) = match decoder.decode(&pending) {
                Ok(decoded) => decoded,
                Err(error) => return Decoded::Rejected(error),
            };
            body.extend_from_slice(data);
            pending.drain(..consumed);
        }
        Decoded::Done(body, input.len() - pos + pending.len())
    }

    #[test]
    fn decodes_whole_and_byte_by_byte() {
        let input = b"5\r\nhello\r\n1A;name=\"v\"; x\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nA: b\r\nC: d\r\n\r\nNEXT";
        for step in [1, 2, 3, 7, input.len()] {
            assert_eq!(
                decode_in_steps(input, step),
                Decoded::Done(b"helloabcdefghijklmnopqrstuvwxyz".to_vec(), 4),
                "the body, and the next request's bytes left alone (step {step})"
            );
        }
    }

    #[test]
    fn leading_zeros_of_a_chunk_size_are_not_significant_digits() {
        let zeros = "0".repeat(100);
        let input = format!(
            "00000000000000003\r\nabc\r\n{zeros}10\r\n{}\r\n{zeros}\r\n\r\n",
            "x".repeat(16)
        );
        for step in [1, 7, input.len()] {
            assert_eq!(
                decode_in_steps(input.as_bytes(), step),
                Decoded::Done([&b"abc"[..], &[b'x'; 16]].concat(), 0),
                "step {step}"
            );
        }
        // Sixteen significant digits after the zeros still fit; seventeen do not.
        let max = format!("0{}\r\n", "f".repeat(16));
        let over = format!("0{}\r\n", "1".repeat(17));
        assert_ne!(
            decode_in_steps(max.as_bytes(), 1),
            Decoded::Rejected(RequestError::Malformed)
        );
        assert_eq!(
            decode_in_steps(over.as_bytes(), 1),
            Decoded::Rejected(RequestError::Malformed)
        );
        // Zeros are bounded as extensions are.
        let endless = "0".repeat(CHUNKED_EXTENSIONS_LIMIT as usize + 2);
        assert_eq!(
            decode_in_steps(endless.as_bytes(), 1),
            Decoded::Rejected(RequestError::HeadTooLarge)
        );
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
            // §7.1: `chunk-size = 1*HEXDIG`, first on its line. Read as 0, an empty
            // size line ends the body at once and makes what follows a request; a sign
            // or whitespace skipped before the digits makes ` 5` and `-5` a 5.
            b"\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
            b" 5\r\nhello\r\n0\r\n\r\n",
            b"\t5\r\nhello\r\n0\r\n\r\n",
            b"+5\r\nhello\r\n0\r\n\r\n",
            b"-5\r\nhello\r\n0\r\n\r\n",
            b";a\r\nhello\r\n0\r\n\r\n", // an extension without a size
            // RFC 9112 §7.1.1: `chunk-size [ chunk-ext ] CRLF` and nothing else. A
            // front end reading these as 16, 10 or 5 frames the body differently.
            b"0x5\r\nhello\r\n0\r\n\r\n", // a prefix, complete this time
            b"0x10\r\n",
            b"5zzz\r\nhello\r\n0\r\n\r\n",    // junk after the digits
            b"1 0\r\na\r\n0\r\n\r\n",         // digits after whitespace
            b"5 \r\nhello\r\n0\r\n\r\n",      // whitespace not followed by `;`
            b"5;\r\nhello\r\n0\r\n\r\n",      // `;` without a name
            b"5;=v\r\nhello\r\n0\r\n\r\n",    // a value without a name
            b"5;a=\r\nhello\r\n0\r\n\r\n",    // `=` without a value
            b"5;a b\r\nhello\r\n0\r\n\r\n",   // two names
            b"5;a=\"x\r\nhello\r\n0\r\n\r\n", // unterminated quoted-string
            b"5;a=\"x\"y\r\nhello\r\n0\r\n\r\n", // junk after a quoted-string
            b"5;a@b\r\nhello\r\n0\r\n\r\n",   // a name that is not a token
            // RFC 9112 §7.1.2: a trailer line is a field line.
            b"0\r\nno colon here\r\n\r\n",
            b"0\r\n: no name\r\n\r\n",
            b"0\r\nName : space before the colon\r\n\r\n",
            b"0\r\n folded: line\r\n\r\n",
            b"0\r\nA: b\x00c\r\n\r\n", // NUL in a value
            b"0\r\nA\x7f: b\r\n\r\n",  // DEL in a name
        ] {
            for step in [bad.len(), 7, 1] {
                // Refused, not merely incomplete: a row that ends before the decoder
                // decides would pass whatever the decoder does.
                assert_eq!(
                    decode_in_steps(bad, step),
                    Decoded::Rejected(RequestError::Malformed),
                    "{:?} in {step}-byte pieces",
                    String::from_utf8_lossy(bad)
                );
            }
        }
    }

    #[test]
    fn accepts_every_form_the_grammar_allows() {
        // RFC 9112 §7.1.1 (with BWS around `;` and `=`) and §7.1.2: valid but unusual.
        for ok in [
            &b"5;a\r\nhello\r\n0\r\n\r\n"[..],
            b"5 ;a\r\nhello\r\n0\r\n\r\n",
            b"5\t; a = b ;c\r\nhello\r\n0\r\n\r\n",
            b"5;a=\"q \\\" ;x\"\r\nhello\r\n0\r\n\r\n",
            b"5;a=\"\"\r\nhello\r\n0\r\n\r\n",
            b"5;!#$%&'*+-.^_`|~09az=!#$%&'*+-.^_`|~09AZ\r\nhello\r\n0\r\n\r\n",
            b"5\r\nhello\r\n0\r\nA:\r\nB: \t c d \x80\xff\r\nC:d\r\n\r\n",
            b"5\r\nhello\r\n0;end\r\n\r\n",
        ] {
            for step in [1, 7, ok.len()] {
                assert_eq!(
                    decode_in_steps(ok, step),
                    Decoded::Done(b"hello".to_vec(), 0),
                    "{:?} in {step}-byte pieces",
                    String::from_utf8_lossy(ok)
                );
            }
        }
    }

    #[test]
    fn unread_data_comes_back_first() {
        let input = b"6\r\nhello!\r\n0\r\n\r\n";
        let mut decoder = ChunkedDecoder::new(100);
        let (consumed, data) = decoder.decode(input).unwrap();
        assert_eq!((consumed, data), (9, &b"hello!"[..]));
        // The caller took two bytes of the six.
        decoder.unread(4);
        let rest = &input[consumed - 4..];
        assert_eq!(decoder.decode(rest).unwrap(), (4, &b"llo!"[..]));
        assert_eq!(decoder.decode(&rest[4..]).unwrap(), (7, &b""[..]));
        assert!(decoder.is_done());
    }

    /// Feeds all of `input` to `decoder`.
    fn feed(decoder: &mut ChunkedDecoder, mut input: &[u8]) -> Result<(), RequestError> {
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
            Err(RequestError::BodyTooLarge)
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
            Err(RequestError::BodyTooLarge)
        );
        let ext = format!(
            "1;{}\r\n",
            "e".repeat(CHUNKED_EXTENSIONS_LIMIT as usize + 1)
        );
        assert_eq!(
            feed(&mut ChunkedDecoder::new(10), ext.as_bytes()),
            Err(RequestError::HeadTooLarge)
        );
        let trailer = format!("0\r\nX: {}\r\n", "t".repeat(TRAILER_LIMIT as usize));
        assert_eq!(
            feed(&mut ChunkedDecoder::new(10), trailer.as_bytes()),
            Err(RequestError::HeadTooLarge)
        );
    }
}
