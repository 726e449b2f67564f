//! `http_chunked`: the demo server's chunked decoder against a simple reference
//! decoder written here, over the whole input at once.
//!
//! Input layout: the first byte chooses the size of the pieces the rest is fed to the
//! real decoder in (1 to 64 bytes); the rest is a chunked body.
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

fn is_ctl(b: u8) -> bool {
    (b < 0x20 && b != b'\t') || b == 0x7f
}

/// Bytes at the front of `bytes` that could still belong to an unfinished line (what
/// the decoder has counted against a cap before the line ends).
fn line_prefix(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .take_while(|&&b| b != b'\r' && b != b'\n' && !is_ctl(b))
        .count()
}

/// RFC 9112 §7.1, read top-down, with the same limits as the server: sizes of 1 to 16
/// hex digits, extensions without control characters, CRLF line ends only.
fn reference(input: &[u8]) -> Outcome {
    let mut i = 0;
    let mut body = Vec::new();
    let mut extensions = 0u64;
    let at = |i: usize| input.get(i).copied();
    // Reads to the CRLF ending a line whose content must be free of CTLs; returns the
    // index after the LF, the line length, or an outcome to stop with.
    let line = |start: usize| -> Result<(usize, usize), Outcome> {
        let mut j = start;
        loop {
            match input.get(j) {
                None => return Err(Outcome::Incomplete),
                Some(b'\r') => {
                    return match input.get(j + 1) {
                        None => Err(Outcome::Incomplete),
                        Some(b'\n') => Ok((j + 2, j - start)),
                        Some(_) => Err(Outcome::Invalid),
                    };
                }
                Some(b'\n') => return Err(Outcome::Invalid),
                Some(&b) if is_ctl(b) => return Err(Outcome::Invalid),
                Some(_) => j += 1,
            }
        }
    };
    loop {
        let digits = input[i.min(input.len())..]
            .iter()
            .take_while(|b| b.is_ascii_hexdigit())
            .count();
        if i + digits == input.len() {
            return if digits > 16 {
                Outcome::Invalid
            } else {
                Outcome::Incomplete
            };
        }
        if digits == 0 || digits > 16 {
            return Outcome::Invalid;
        }
        let size =
            u64::from_str_radix(std::str::from_utf8(&input[i..i + digits]).unwrap(), 16).unwrap();
        i += digits;
        let (next, ext_len) = match line(i) {
            Ok(v) => v,
            Err(outcome) => {
                // The decoder counts extension bytes as it goes: an overlong extension
                // is refused even before its line ends.
                let seen = line_prefix(&input[i..]);
                if extensions + seen as u64 > CHUNKED_EXTENSIONS_LIMIT {
                    return Outcome::Invalid;
                }
                return outcome;
            }
        };
        extensions += ext_len as u64;
        if extensions > CHUNKED_EXTENSIONS_LIMIT {
            return Outcome::Invalid;
        }
        i = next;
        if size == 0 {
            break;
        }
        if body.len() as u64 + size > MAX_BODY {
            return Outcome::Invalid;
        }
        let size = size as usize;
        if input.len() < i + size {
            return Outcome::Incomplete;
        }
        body.extend_from_slice(&input[i..i + size]);
        i += size;
        match (at(i), at(i + 1)) {
            (Some(b'\r'), Some(b'\n')) => i += 2,
            (None, _) | (Some(b'\r'), None) => return Outcome::Incomplete,
            _ => return Outcome::Invalid,
        }
    }
    let mut trailers = 0u64;
    loop {
        match line(i) {
            Ok((next, 0)) => return Outcome::Complete(body, next),
            Ok((next, len)) => {
                trailers += len as u64;
                if trailers > TRAILER_LIMIT {
                    return Outcome::Invalid;
                }
                i = next;
            }
            Err(outcome) => {
                let seen = line_prefix(&input[i..]);
                if trailers + seen as u64 > TRAILER_LIMIT {
                    return Outcome::Invalid;
                }
                return outcome;
            }
        }
    }
}

fn real(input: &[u8], piece: usize) -> Outcome {
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
                body.extend_from_slice(data);
                buffered.drain(..consumed);
                consumed_total += consumed;
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
    let expected = reference(input);
    let got = real(input, piece);
    assert_eq!(got, expected, "input {:?}", String::from_utf8_lossy(input));
}
