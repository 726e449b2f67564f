//! What requests and responses share: the head-end scan, the line-ending rule, the
//! field storage, and the one reading of the fields that delimit a message and say
//! whether its connection persists.
//!
//! As hyper's `proto/h1` shares its header handling between `role::Server` and
//! `role::Client`, [`parse`](super::parse) (requests) and
//! [`response`](super::response) (responses) both read their framing through
//! [`FramingFields`] and [`FramingFields::delimiter`]: a rule against a message that
//! could be read two ways (RFC 9112 §6.3, §11.2) is written here once and holds for
//! both roles. Each role then adds only what is its own: `Host`, `Expect` and the body
//! limit for a request; the status code and the request method for a response.
//!
//! Pure functions over byte slices: no I/O, no allocation.

use std::mem::MaybeUninit;

use recycle_pool::status::Version;

use super::TCHAR;
use super::body::valid_transfer_parameters;
use super::connection::{self, Flags};

/// Most header fields a head may have; one more is a 431 for a request, a
/// [`ResponseError::HeadTooLarge`](super::response::ResponseError::HeadTooLarge) for a
/// response.
pub const MAX_HEADERS: usize = 100;

/// Storage for the header fields of one head, filled by the parser: on the caller's
/// stack, uninitialised (zeroing 100 headers, 3.2 KB, cost a third of the time of a
/// small request in `benches/fakeconn.rs`).
pub type FieldStorage<'b> = [MaybeUninit<httparse::Header<'b>>; MAX_HEADERS];

/// Fresh [`FieldStorage`]: nothing is zeroed.
pub const fn field_storage<'b>() -> FieldStorage<'b> {
    [const { MaybeUninit::uninit() }; MAX_HEADERS]
}

/// The head being scanned is already over its byte limit (see [`find_head`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeadOverLimit;

/// Looks for the end of the head at the front of `buf` (the index just past its blank
/// line), scanning only the bytes after `*scanned` and recording how far it got, so a
/// head arriving byte by byte costs linear, not quadratic, time.
///
/// `*scanned` is 0 again once a head is found. `Ok(None)` means "read more".
///
/// # Errors
///
/// [`HeadOverLimit`] when the head is (or already is, unfinished) longer than
/// `max_head_bytes`; each role answers that in its own way.
#[inline]
pub fn find_head(
    buf: &[u8],
    scanned: &mut usize,
    max_head_bytes: usize,
) -> Result<Option<usize>, HeadOverLimit> {
    match head_end(buf, *scanned) {
        Some(end) if end > max_head_bytes => Err(HeadOverLimit),
        Some(end) => {
            *scanned = 0;
            Ok(Some(end))
        }
        None if buf.len() > max_head_bytes => Err(HeadOverLimit),
        None => {
            *scanned = buf.len();
            Ok(None)
        }
    }
}

/// Where the head ends (the index just past its blank line), scanning only from
/// `from` (minus 3 bytes of overlap): call it with the previous length of the buffer.
#[inline]
pub fn head_end(buf: &[u8], from: usize) -> Option<usize> {
    let start = from.saturating_sub(3);
    let mut i = start;
    while let Some(pos) = memchr_lf(&buf[i..]) {
        let lf = i + pos;
        // "\n\n" or "\n\r\n" ends the head (httparse accepts a bare LF line ending;
        // [`crlf_only`] then refuses the head).
        if buf.get(lf + 1) == Some(&b'\n') {
            return Some(lf + 2);
        }
        if buf.get(lf + 1) == Some(&b'\r') && buf.get(lf + 2) == Some(&b'\n') {
            return Some(lf + 3);
        }
        i = lf + 1;
    }
    None
}

/// SIMD search: a scalar loop here took a third of the time of a 430-byte browser
/// request in `benches/fakeconn.rs`.
#[inline]
pub(crate) fn memchr_lf(bytes: &[u8]) -> Option<usize> {
    memchr::memchr(b'\n', bytes)
}

/// Whether every line of a parsed head ends in CRLF.
///
/// RFC 9112 §2.2 lets a recipient take a bare LF as a line end, and httparse does. A
/// proxy that did so in front of a server that does not (or behind an upstream whose
/// next hop does not) would frame the message differently from it, so both roles
/// refuse a head with a bare LF.
///
/// A head of up to 4 KiB takes one pass over each byte beside the byte before it, in
/// blocks of 64 without a branch per byte, which the compiler vectorizes: a `memchr`
/// call a line cost a small head more (some 50 instructions each). A longer one is
/// searched for its LFs with `memchr`, faster over long lines (a 1 MiB head of a few
/// lines took 15% more instructions in the pass).
#[inline]
pub(crate) fn crlf_only(head: &[u8]) -> bool {
    let Some((&first, rest)) = head.split_first() else {
        return true;
    };
    if head.len() > 4096 {
        return !memchr::memchr_iter(b'\n', head).any(|lf| lf == 0 || head[lf - 1] != b'\r');
    }
    first != b'\n'
        && !rest.chunks(64).zip(head.chunks(64)).any(|(bytes, before)| {
            bytes.iter().zip(before).fold(false, |bare, (&b, &prev)| {
                bare | ((b == b'\n') & (prev != b'\r'))
            })
        })
}

/// Whether the field name `name`, a token (as httparse gives names), is `lower` in
/// any case, `lower` being lowercase letters and `-`.
///
/// Each byte `| 0x20` against `lower`'s, folded without a branch: for a letter the
/// only other byte that ORs to it is its capital, and the one other byte that ORs to
/// `-` is CR, no token byte. `eq_ignore_ascii_case` lowercases each byte with a
/// branch: for a `Content-Length` it cost some 60 instructions more.
#[inline(always)]
pub(crate) fn token_is(name: &str, lower: &[u8]) -> bool {
    debug_assert!(lower.iter().all(|&b| b.is_ascii_lowercase() || b == b'-'));
    name.len() == lower.len()
        && (name.bytes().zip(lower)).fold(true, |eq, (b, &l)| eq & (b | 0x20 == l))
}

/// The version httparse read, by its minor digit (it knows only `HTTP/1.0` and
/// `HTTP/1.1`).
#[inline]
pub(crate) fn version(minor: u8) -> Version {
    if minor == 1 {
        Version::Http11
    } else {
        Version::Http10
    }
}

/// The message's fields could be read two ways, or delimit nothing: a request's
/// [`BadFraming`](super::RequestError::BadFraming), a response's
/// [`BadFraming`](super::response::ResponseError::BadFraming).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FramingError;

/// How the fields alone delimit a body (RFC 9112 §6.3 rules 3 to 8), before each role
/// applies its own rules (a request's body limit, a response's status and method).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delimiter {
    /// Neither `Content-Length` nor `Transfer-Encoding`.
    Absent,
    /// `Content-Length: n`.
    Length(u64),
    /// A `Transfer-Encoding` whose final coding is `chunked`; `coded` if another coding
    /// comes before it.
    Chunked {
        /// A coding other than `chunked` is listed.
        coded: bool,
    },
    /// A `Transfer-Encoding` whose final coding is not `chunked`: a request cannot be
    /// delimited (400), a response runs to the close (§6.3 rule 4).
    Unchunked,
}

/// The fields of one head that frame the message and decide whether its connection
/// persists (`Content-Length`, `Transfer-Encoding`, `Connection`), read one field at a
/// time with [`add`](Self::add), the same way for requests and responses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FramingFields {
    content_length: Option<u64>,
    repeated_length: bool,
    codings: TransferCodings,
    flags: Flags,
}

impl FramingFields {
    /// Reads one field; returns whether it was one of the fields this reads (the
    /// caller then has nothing more to do with it). A `Connection` field is read for
    /// `close`, `keep-alive` and `upgrade` alone: a server's reading.
    ///
    /// # Errors
    ///
    /// [`FramingError`] for a `Content-Length` that is not all digits or that differs
    /// from an earlier one (RFC 9112 §6.3 rule 5), or a `Transfer-Encoding` that
    /// `TransferCodings::add` refuses.
    // Always inlined: called for every field of every head, it is as cheap as the
    // chain of comparisons it replaced only when it is part of the caller's loop.
    #[inline(always)]
    pub fn add(&mut self, name: &str, value: &[u8]) -> Result<bool, FramingError> {
        self.add_with(name, value, |flags, value| {
            connection::read_flags(value, flags)
        })
    }

    /// [`add`](Self::add) for a reading that also finds the fields the `Connection`
    /// options name (a proxy's: it drops them, RFC 9110 §7.6.1): field `index`'s bit
    /// is set in `connection` if it is a `Connection` field, which is read later,
    /// with the others, by [`read_connection`](Self::read_connection).
    ///
    /// # Errors
    ///
    /// As [`add`](Self::add).
    #[inline(always)]
    pub fn add_deferring(
        &mut self,
        index: usize,
        name: &str,
        value: &[u8],
        connection: &mut u128,
    ) -> Result<bool, FramingError> {
        self.add_with(name, value, |_, _| *connection |= 1 << index)
    }

    /// Reads the `Connection` fields of `all` that [`add_deferring`](Self::add_deferring)
    /// marked in `connection` (each once: `close`, `keep-alive`, `upgrade` and the
    /// names at once), and returns the fields their options name, as bits by index.
    /// Call it once every field was added, before [`persistent`](Self::persistent)
    /// and [`upgrade`](Self::upgrade).
    #[inline]
    pub fn read_connection(&mut self, all: &[httparse::Header<'_>], connection: u128) -> u128 {
        if connection == 0 {
            return 0;
        }
        connection::read(all, connection, &mut self.flags)
    }

    /// [`add`](Self::add), with `connection` reading a `Connection` value (into the
    /// flags that [`persistent`](Self::persistent) and [`upgrade`](Self::upgrade) read,
    /// with [`connection::read_flags`], or later, with
    /// [`read_connection`](Self::read_connection)).
    ///
    /// # Errors
    ///
    /// As [`add`](Self::add).
    #[inline(always)]
    pub fn add_with(
        &mut self,
        name: &str,
        value: &[u8],
        connection: impl FnOnce(&mut connection::Flags, &[u8]),
    ) -> Result<bool, FramingError> {
        if token_is(name, b"content-length") {
            for item in tokens(value) {
                let n = parse_content_length(item)?;
                // Repeated identical values are one value (RFC 9110 §8.6); differing
                // ones could be read two ways (RFC 9112 §6.3 rule 5).
                match self.content_length {
                    Some(previous) if previous != n => return Err(FramingError),
                    Some(_) => self.repeated_length = true,
                    None => self.content_length = Some(n),
                }
            }
        } else if token_is(name, b"transfer-encoding") {
            self.codings.add(value)?;
        } else if token_is(name, b"connection") {
            // A `Connection` may list thousands of options: see [`connection`].
            connection(&mut self.flags, value);
        } else {
            return Ok(false);
        }
        Ok(true)
    }

    /// The `Content-Length` value, if one was sent.
    #[inline]
    pub fn content_length(&self) -> Option<u64> {
        self.content_length
    }

    /// Whether `Content-Length` was sent more than once (with the same value): the
    /// sender is suspect.
    #[inline]
    pub fn repeated_length(&self) -> bool {
        self.repeated_length
    }

    /// Whether the fields let the connection persist after this message (RFC 9112
    /// §9.3): no `close` option, and HTTP/1.1 or an HTTP/1.0 `keep-alive` option.
    #[inline]
    pub fn persistent(&self, version: Version) -> bool {
        let Flags {
            close, keep_alive, ..
        } = self.flags;
        match version {
            Version::Http11 => !close,
            Version::Http10 => keep_alive && !close,
        }
    }

    /// Whether `Connection` lists the `upgrade` option (RFC 9110 §7.8: a sender of
    /// `Upgrade` sends it too, as `Upgrade` is hop-by-hop).
    #[inline]
    pub fn upgrade(&self) -> bool {
        self.flags.upgrade
    }

    /// How the fields delimit the body.
    ///
    /// # Errors
    ///
    /// [`FramingError`] for `Transfer-Encoding` beside `Content-Length` (§6.3 rule 3:
    /// "ought to be handled as an error") or in an HTTP/1.0 message (§6.1: faulty
    /// framing).
    #[inline]
    pub fn delimiter(&self, version: Version) -> Result<Delimiter, FramingError> {
        let codings = self.codings;
        if !codings.present {
            return Ok(match self.content_length {
                Some(n) => Delimiter::Length(n),
                None => Delimiter::Absent,
            });
        }
        if self.content_length.is_some() || version == Version::Http10 {
            return Err(FramingError);
        }
        Ok(if codings.chunked {
            Delimiter::Chunked {
                coded: codings.coded,
            }
        } else {
            Delimiter::Unchunked
        })
    }

    /// Whether `Transfer-Encoding` lists a coding other than `chunked`.
    #[inline]
    pub fn transfer_coded(&self) -> bool {
        self.codings.coded
    }
}

/// `Content-Length = 1*DIGIT` (RFC 9110 §8.6), at most 19 digits so it fits a u64
/// with room to spare: a sign, hex, spaces or nothing are refused.
pub(crate) fn parse_content_length(value: &[u8]) -> Result<u64, FramingError> {
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return Err(FramingError);
    }
    Ok(value.iter().fold(0, |n, &d| n * 10 + u64::from(d - b'0')))
}

/// The elements of a comma-separated list of tokens (RFC 9110 §5.6.1, §5.6.2:
/// `Connection`, `Content-Length`), each without its surrounding OWS; empty elements
/// included.
///
/// A token holds no quote, so every comma splits: in `Connection: a"b, close` the
/// first element is simply not a token and `close` is still seen. (Reading the `"` as
/// the start of a quoted-string, as [`list`] does, would hide `close`, or a field
/// name that `Connection` asks to remove.)
pub(crate) fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|&b| b == b',').map(<[u8]>::trim_ascii)
}

/// The elements of a comma-separated field value whose elements may hold
/// quoted-strings (RFC 9110 §5.6.1; here `Transfer-Encoding`, whose codings take
/// parameters, §5.6.6), each without its surrounding OWS; empty elements included.
///
/// A comma inside a quoted-string (§5.6.4: `"` to `"`, a backslash taking the next
/// byte as it is) does not split: `x;p="a,b", chunked` is two elements, `x;p="a,b"`
/// and `chunked`. A quoted-string that does not end runs to the end of the value, one
/// element (`x;p="a, chunked` is one): it matches no token, and no transfer coding
/// ([`TransferCodings`] refuses it).
///
/// `trim_ascii` also trims CR, LF and FF, none of which httparse lets into a value, so
/// on a parsed value it trims exactly OWS (SP and HTAB).
pub(crate) fn list(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(value);
    std::iter::from_fn(move || {
        let value = rest?;
        let (element, after) = match element_end(value) {
            Some(comma) => (&value[..comma], Some(&value[comma + 1..])),
            None => (value, None),
        };
        rest = after;
        Some(element.trim_ascii())
    })
}

/// Where the first list element of `value` ends: the index of the first comma outside
/// a quoted-string, if any.
fn element_end(value: &[u8]) -> Option<usize> {
    let mut i = 0;
    loop {
        i += memchr::memchr2(b',', b'"', value.get(i..)?)?;
        if value[i] == b',' {
            return Some(i);
        }
        i += 1; // the opening quote
        // Inside the quoted-string: to its closing quote, over quoted-pairs.
        loop {
            i += memchr::memchr2(b'"', b'\\', value.get(i..)?)?;
            if value[i] == b'"' {
                i += 1;
                break;
            }
            i += 2;
        }
    }
}

/// What the `Transfer-Encoding` fields of a message say (RFC 9112 §6.1, §7), read one
/// field at a time with [`add`](Self::add).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct TransferCodings {
    /// The message has a `Transfer-Encoding` field.
    pub(crate) present: bool,
    /// The last coding so far is `chunked`.
    pub(crate) chunked: bool,
    /// A coding other than `chunked` is listed.
    pub(crate) coded: bool,
}

impl TransferCodings {
    /// Reads the codings of one `Transfer-Encoding` value, skipping empty elements
    /// (RFC 9110 §5.6.1).
    ///
    /// # Errors
    ///
    /// [`FramingError`] for framing no one could delimit, or that two recipients could
    /// read two ways: a coding that is not `token *( OWS ";" OWS transfer-parameter )`
    /// (§7; an unterminated quoted-string among its parameters, say), `chunked` with
    /// parameters (§7.1: "Their presence SHOULD be treated as an error"), any coding
    /// after `chunked` (§7: it is applied once, and last; a body chunked and then coded
    /// again could be forwarded only unchanged and close-delimited).
    pub(crate) fn add(&mut self, value: &[u8]) -> Result<(), FramingError> {
        self.present = true;
        for coding in list(value).filter(|coding| !coding.is_empty()) {
            let name_len = coding
                .iter()
                .position(|&b| !TCHAR.contains(b))
                .unwrap_or(coding.len());
            let (name, parameters) = coding.split_at(name_len);
            if self.chunked || name.is_empty() || !valid_transfer_parameters(parameters) {
                return Err(FramingError);
            }
            // §7: coding names are case-insensitive.
            self.chunked = name.eq_ignore_ascii_case(b"chunked");
            if self.chunked && !parameters.is_empty() {
                return Err(FramingError);
            }
            self.coded |= !self.chunked;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_end_scans_only_new_bytes_and_finds_every_ending() {
        let req = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nNEXT";
        let end = req.len() - 4;
        assert_eq!(head_end(req, 0), Some(end));
        // Fed one byte at a time, resuming from the previous length.
        let found = (1..=req.len()).find_map(|n| head_end(&req[..n], n - 1));
        assert_eq!(found, Some(end));
        // A bare LF ends the head too (the parse then refuses it, with a status).
        assert_eq!(head_end(b"GET / HTTP/1.1\nHost: a\n\n", 0), Some(24));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: a\r\n", 0), None);
    }

    #[test]
    fn crlf_only_refuses_exactly_the_heads_with_a_bare_lf() {
        // Every input of up to 9 bytes over `a`, CR and LF, against the rule read
        // byte by byte.
        let mut inputs: Vec<Vec<u8>> = vec![Vec::new()];
        let mut from = 0;
        while inputs[from].len() < 9 {
            for b in [b'a', b'\r', b'\n'] {
                let mut next = inputs[from].clone();
                next.push(b);
                inputs.push(next);
            }
            from += 1;
        }
        let naive = |input: &[u8]| {
            !input
                .iter()
                .enumerate()
                .any(|(i, &b)| b == b'\n' && (i == 0 || input[i - 1] != b'\r'))
        };
        for input in &inputs {
            let shown = String::from_utf8_lossy(input);
            assert_eq!(crlf_only(input), naive(input), "{shown:?}");
        }
        // Across the 64-byte blocks of the pass.
        let mut long = b"GET / HTTP/1.1\r\n".to_vec();
        long.extend(std::iter::repeat_n(b'a', 200));
        long.extend_from_slice(b"\r\n\r\n");
        assert!(crlf_only(&long));
        for at in [16, 63, 64, 65, 127, 128, 200, long.len() - 2] {
            let mut bare = long.clone();
            bare[at] = b'\n';
            assert!(!crlf_only(&bare), "LF at {at}");
        }
        // Over 4 KiB, where LFs are searched for instead.
        let mut huge = b"GET / HTTP/1.1\r\n".to_vec();
        for _ in 0..300 {
            huge.extend_from_slice(b"X-Field: value\r\n");
        }
        huge.extend_from_slice(b"\r\n");
        assert!(huge.len() > 4096 && crlf_only(&huge));
        for at in [0, 16, 4095, 4096, 4097, huge.len() - 2] {
            let mut bare = huge.clone();
            bare[at] = b'\n';
            assert_eq!(crlf_only(&bare), naive(&bare), "LF at {at}");
            assert!(!crlf_only(&bare) || huge[at] == b'\n', "LF at {at}");
        }
    }

    #[test]
    fn token_is_is_eq_ignore_ascii_case_for_tokens() {
        // Every token byte at every place of each name the parsers look for: the
        // branch-free test agrees with the general one (it is a test byte by byte, so
        // one byte changed at a time covers every name).
        for lower in [
            "content-length",
            "transfer-encoding",
            "connection",
            "date",
            "-",
        ] {
            let mut names = vec![lower.to_ascii_uppercase(), lower.to_owned()];
            for at in 0..lower.len() {
                for b in (0..=255u8).filter(|&b| TCHAR.contains(b)) {
                    let mut name = lower.as_bytes().to_vec();
                    name[at] = b;
                    names.push(String::from_utf8(name).unwrap());
                }
            }
            names.extend([String::new(), format!("{lower}s"), lower[1..].to_owned()]);
            for name in &names {
                assert_eq!(
                    token_is(name, lower.as_bytes()),
                    name.eq_ignore_ascii_case(lower),
                    "{name:?} as {lower:?}"
                );
            }
        }
    }

    #[test]
    fn lists_split_outside_quoted_strings_only() {
        // RFC 9110 §5.6.1 (OWS around elements, empty ones kept), §5.6.4 (quoted-string,
        // quoted-pair).
        let elements = |value: &str| -> Vec<String> {
            list(value.as_bytes())
                .map(|e| String::from_utf8(e.to_vec()).unwrap())
                .collect()
        };
        assert_eq!(elements("a, b ,\tc"), ["a", "b", "c"]);
        assert_eq!(elements(" , a,,"), ["", "a", "", ""]);
        assert_eq!(elements(""), [""]);
        assert_eq!(elements("x;p=\"a,b\", chunked"), ["x;p=\"a,b\"", "chunked"]);
        assert_eq!(elements(r#""a\",b", c"#), [r#""a\",b""#, "c"]);
        assert_eq!(elements(r#""a\\", b"#), [r#""a\\""#, "b"]);
        assert_eq!(elements("\"\", \"\""), ["\"\"", "\"\""]);
        // Unterminated: one element to the end, whatever follows.
        assert_eq!(elements("x;p=\"a, chunked"), ["x;p=\"a, chunked"]);
        assert_eq!(elements("a, \"b, c"), ["a", "\"b, c"]);
        // A backslash outside a quoted-string is a byte like any other.
        assert_eq!(elements(r#"a\, b\"c, d"#), [r#"a\"#, r#"b\"c, d"#]);
        assert_eq!(elements("\"a\\"), ["\"a\\"]);
    }

    #[test]
    fn find_head_scans_only_new_bytes_and_holds_the_limit() {
        let head = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        let mut scanned = 0;
        for n in 1..head.len() {
            assert_eq!(find_head(&head[..n], &mut scanned, 64), Ok(None));
            assert_eq!(scanned, n);
        }
        assert_eq!(find_head(head, &mut scanned, 64), Ok(Some(head.len())));
        assert_eq!(scanned, 0, "ready for the next head");
        assert_eq!(find_head(head, &mut 0, head.len() - 1), Err(HeadOverLimit));
        assert_eq!(find_head(&head[..20], &mut 0, 19), Err(HeadOverLimit));
        assert_eq!(find_head(&head[..20], &mut 0, 20), Ok(None));
    }

    #[test]
    fn bare_lf_anywhere_in_a_head_is_refused() {
        assert!(crlf_only(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
        assert!(!crlf_only(b"GET / HTTP/1.1\nHost: a\r\n\r\n"));
        assert!(!crlf_only(b"GET / HTTP/1.1\r\nHost: a\r\n\n"));
        assert!(!crlf_only(b"\n"));
        // Random heads, against the plain reading.
        let plain = |head: &[u8]| {
            !(0..head.len()).any(|i| head[i] == b'\n' && (i == 0 || head[i - 1] != b'\r'))
        };
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..20_000 {
            let len = (state % 30) as usize;
            let head: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    [b'\r', b'\n', b'a', 0x8d, 0x0a | 0x80][(state % 5) as usize]
                })
                .collect();
            assert_eq!(crlf_only(&head), plain(&head), "{head:?}");
        }
    }

    fn read(fields: &[(&str, &str)]) -> Result<FramingFields, FramingError> {
        let mut framing = FramingFields::default();
        for (name, value) in fields {
            framing.add(name, value.as_bytes())?;
        }
        Ok(framing)
    }

    #[test]
    fn both_roles_read_the_same_delimiter_from_the_same_fields() {
        let v11 = Version::Http11;
        let delimiter = |fields: &[(&str, &str)]| read(fields)?.delimiter(v11);
        assert_eq!(delimiter(&[]), Ok(Delimiter::Absent));
        assert_eq!(
            delimiter(&[("Content-Length", "5")]),
            Ok(Delimiter::Length(5))
        );
        assert_eq!(
            delimiter(&[("Content-Length", "5, 5")]),
            Ok(Delimiter::Length(5))
        );
        assert_eq!(
            delimiter(&[("Content-Length", "5"), ("content-length", "6")]),
            Err(FramingError)
        );
        assert_eq!(
            delimiter(&[("Transfer-Encoding", "gzip, chunked")]),
            Ok(Delimiter::Chunked { coded: true })
        );
        assert_eq!(
            delimiter(&[("Transfer-Encoding", "gzip")]),
            Ok(Delimiter::Unchunked)
        );
        assert_eq!(
            delimiter(&[("Transfer-Encoding", "chunked"), ("Content-Length", "5")]),
            Err(FramingError)
        );
        assert_eq!(
            delimiter(&[("Transfer-Encoding", "chunked, gzip")]),
            Err(FramingError)
        );
        let te = read(&[("Transfer-Encoding", "chunked")]).unwrap();
        assert_eq!(te.delimiter(Version::Http10), Err(FramingError));
    }

    #[test]
    fn persistence_follows_the_version_and_connection_options() {
        let keep = |version, fields: &[(&str, &str)]| read(fields).unwrap().persistent(version);
        assert!(keep(Version::Http11, &[]));
        assert!(!keep(
            Version::Http11,
            &[("Connection", "Keep-Alive, close")]
        ));
        assert!(!keep(Version::Http10, &[]));
        assert!(keep(Version::Http10, &[("Connection", "keep-alive")]));
    }
}
