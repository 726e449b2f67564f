//! Request heads: `httparse` plus the limits and framing rules of RFC 9112.
//!
//! Pure functions over a byte slice: no I/O, no allocation. The caller owns the
//! buffer; a head is parsed only once [`head_end`] has found its blank line, so a slow
//! client costs one scan of the new bytes per read, not a re-parse of the whole head.

use std::mem::MaybeUninit;

use recycle_pool::status::Version;

use super::body::valid_transfer_parameters;
use super::{Error, REG_NAME, TCHAR};

/// Most header fields a request head may have; one more is a 431.
pub const MAX_HEADERS: usize = 100;

/// Longest request target accepted; a longer one is a 414.
pub const MAX_URI_LEN: usize = 8 * 1024;

/// Longest method accepted (the longest registered one, `UPDATEREDIRECTREF`, has 17
/// bytes); a longer one is a 501 (RFC 9112 §3).
pub const MAX_METHOD_LEN: usize = 64;

/// Request methods the demo routes distinguish.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// `GET`
    Get,
    /// `HEAD`
    Head,
    /// `POST`
    Post,
    /// Any other (syntactically valid) method.
    Other,
}

/// How the request body is delimited (RFC 9112 §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body: neither `Content-Length` nor `Transfer-Encoding`.
    None,
    /// `Content-Length: n`. `Length(0)` is a body of no bytes: the connection reads
    /// none, but a proxy forwards the field as it came.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// What a request head says that the connection acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    /// The method.
    pub method: Method,
    /// `HTTP/1.0` or `HTTP/1.1`.
    pub version: Version,
    /// Whether the connection may stay open after the response: the client allows it,
    /// and nothing in the head was suspicious enough to close after answering (a
    /// `Content-Length` repeated with the same value, RFC 9112 §6.3 rule 5).
    pub keep_alive: bool,
    /// How the body is delimited.
    pub framing: Framing,
    /// `Expect: 100-continue` on an HTTP/1.1 request with a body.
    pub expect_continue: bool,
    /// The framing was read unambiguously, but the head is suspect (it repeats its
    /// `Content-Length`): answer it, then close (a proxy closes its upstream
    /// connection too).
    pub suspect: bool,
}

impl Framing {
    /// Whether there are body bytes to read: a `Content-Length` over 0, or chunked.
    pub const fn has_body(self) -> bool {
        !matches!(self, Framing::None | Framing::Length(0))
    }
}

/// What to do with a request whose `Transfer-Encoding` lists codings before its final
/// `chunked` (`gzip, chunked`: valid, RFC 9112 §6.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codings {
    /// Refuse it with 501 (RFC 9112 §6.1): an origin server that cannot decode the
    /// coding.
    Refuse,
    /// Take it: the body is read per its chunked framing and handed on still coded
    /// (a proxy forwards the codings with it).
    Forward,
}

/// Where the head ends (the index just past its blank line), scanning only from
/// `from` (minus 3 bytes of overlap): call it with the previous length of the buffer so
/// that a head arriving byte by byte costs linear, not quadratic, time.
#[inline]
pub fn head_end(buf: &[u8], from: usize) -> Option<usize> {
    let start = from.saturating_sub(3);
    let mut i = start;
    while let Some(pos) = memchr_lf(&buf[i..]) {
        let lf = i + pos;
        // "\n\n" or "\n\r\n" ends the head (httparse accepts a bare LF line ending).
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

/// How many bytes of empty lines (CRLF, or a bare LF as httparse accepts in a head)
/// `buf` starts with: RFC 9112 §2.2 has a server ignore them before a request line.
#[inline]
pub fn empty_lines(buf: &[u8]) -> usize {
    let mut n = 0;
    loop {
        match buf[n..] {
            [b'\n', ..] => n += 1,
            [b'\r', b'\n', ..] => n += 2,
            _ => return n,
        }
    }
}

/// SIMD search: a scalar loop here took a third of the time of a 430-byte browser
/// request in `benches/fakeconn.rs`.
#[inline]
fn memchr_lf(bytes: &[u8]) -> Option<usize> {
    memchr::memchr(b'\n', bytes)
}

/// A parsed request head, as a handler sees it: every field borrowed from the
/// connection's read buffer (nothing copied to the heap).
#[derive(Debug)]
pub struct Request<'b> {
    /// What the connection needs to know (method, version, keep-alive, framing).
    pub head: Head,
    /// The method as sent (`"GET"`, `"PATCH"`, …), for methods [`Method`] lumps
    /// together as [`Method::Other`].
    pub method_name: &'b str,
    /// The request target as sent (origin-form, absolute-form, `*`, …).
    pub target: &'b str,
    /// The target's path (absolute-form reduced to its path), without the query.
    pub path: &'b [u8],
    /// Every header field line, in order, as `httparse` read them.
    pub headers: &'b [httparse::Header<'b>],
}

impl<'b> Request<'b> {
    /// The value of the first field named `name` (case-insensitive), if any.
    pub fn header(&self, name: &str) -> Option<&'b [u8]> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }
}

/// Storage for the header fields of one head, filled by [`parse`]: on the caller's
/// stack, uninitialised (zeroing 100 headers, 3.2 KB, cost a third of the time of a
/// small request in `benches/fakeconn.rs`).
pub type HeaderStorage<'b> = [MaybeUninit<httparse::Header<'b>>; MAX_HEADERS];

/// Fresh [`HeaderStorage`].
pub const fn header_storage<'b>() -> HeaderStorage<'b> {
    [const { MaybeUninit::uninit() }; MAX_HEADERS]
}

/// Parses a complete head (`buf[..end]`, with `end` from [`head_end`]) into `headers`;
/// returns the request and the bytes its head took.
///
/// # Errors
///
/// The [`Error`] that decides the status: malformed syntax (including a bare LF line
/// end, obs-fold, whitespace before a colon, control bytes in a value or the target),
/// an invalid or missing `Host`, an invalid absolute-form authority, framing that could
/// be read two ways, a coding refused per `codings`, too many headers, a target too
/// long, a body over `max_body`, an unknown expectation.
pub fn parse<'b>(
    buf: &'b [u8],
    headers: &'b mut HeaderStorage<'b>,
    max_body: u64,
    codings: Codings,
) -> Result<(Request<'b>, usize), Error> {
    let mut req = httparse::Request::new(&mut []);
    // httparse refuses obs-fold, whitespace between a field name and its colon, and
    // CR, LF, NUL or other controls inside a value or the target (RFC 9112 §5.1, §5.2,
    // §3.2, RFC 9110 §5.5): each is a 400 here, never a request read two ways.
    let len = match req.parse_with_uninit_headers(buf, headers) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Err(Error::Malformed),
        Err(httparse::Error::TooManyHeaders) => return Err(Error::HeadTooLarge),
        Err(httparse::Error::Version) => return Err(version_error(buf)),
        Err(_) => return Err(Error::Malformed),
    };
    // RFC 9112 §2.2 lets a recipient take a bare LF as a line end; httparse does. A
    // proxy that did so in front of a server that does not would frame the request
    // differently from it, so every line must end in CRLF.
    if memchr::memchr_iter(b'\n', &buf[..len]).any(|lf| lf == 0 || buf[lf - 1] != b'\r') {
        return Err(Error::Malformed);
    }
    let httparse::Request {
        method: Some(method_name),
        path: Some(target),
        version: Some(minor),
        headers,
    } = req
    else {
        return Err(Error::Malformed);
    };
    if method_name.len() > MAX_METHOD_LEN {
        return Err(Error::MethodTooLong);
    }
    if target.len() > MAX_URI_LEN {
        return Err(Error::UriTooLong);
    }
    // RFC 9112 §3.2: URI characters only, so no raw non-ASCII byte (httparse lets
    // them through); and no fragment, which neither origin-form (§3.2.1) nor
    // absolute-form (RFC 9110 §4.1) carries.
    if !valid_target(method_name, target.as_bytes())
        || target.bytes().any(|b| b >= 0x80 || b == b'#')
    {
        return Err(Error::Malformed);
    }
    // The forms whose host is the `Host` field's: all but absolute-form (RFC 9112
    // §3.2.2: a server takes the host from the target and ignores `Host`).
    let host_from_field =
        method_name == "CONNECT" || matches!(target.as_bytes().first(), Some(b'/' | b'*'));
    let version = if minor == 1 {
        Version::Http11
    } else {
        Version::Http10
    };
    let method = match method_name {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        _ => Method::Other,
    };

    let mut content_length: Option<u64> = None;
    let mut repeated_length = false;
    let mut transfer_codings = TransferCodings::default();
    let mut close = false;
    let mut keep_alive_token = false;
    let mut hosts = 0;
    let mut expect_continue = false;
    for header in headers.iter() {
        let name = header.name;
        let value = header.value;
        if name.eq_ignore_ascii_case("content-length") {
            for item in tokens(value) {
                let n = parse_content_length(item)?;
                // Repeated identical values are one value (RFC 9110 §8.6), but a sender
                // that repeats it is suspect: answered, then closed. Differing ones
                // could be read two ways (RFC 9112 §6.3 rule 5).
                match content_length {
                    Some(prev) if prev != n => return Err(Error::BadFraming),
                    Some(_) => repeated_length = true,
                    None => content_length = Some(n),
                }
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            transfer_codings.add(value)?;
        } else if name.eq_ignore_ascii_case("connection") {
            // By length first: a `Connection` may list thousands of options.
            each_token(value, |token| match token.len() {
                5 => close |= token.eq_ignore_ascii_case(b"close"),
                10 => keep_alive_token |= token.eq_ignore_ascii_case(b"keep-alive"),
                _ => {}
            });
        } else if name.eq_ignore_ascii_case("host") {
            // RFC 9112 §3.2: a Host with an invalid value is a 400; so is an empty one
            // naming the host of an `http` URI (RFC 9110 §4.2.1: a recipient MUST
            // reject an http URI with an empty host).
            let no_host = value.first().is_none_or(|&b| b == b':');
            if !valid_host(value) || (no_host && host_from_field) {
                return Err(Error::Malformed);
            }
            hosts += 1;
        } else if name.eq_ignore_ascii_case("expect") {
            if version == Version::Http11
                && value.trim_ascii().eq_ignore_ascii_case(b"100-continue")
            {
                expect_continue = true;
            } else if version == Version::Http11 {
                return Err(Error::ExpectationFailed);
            }
        }
    }

    // RFC 9112 §3.2: a 1.1 request has exactly one Host; no request has two.
    if hosts > 1 || (version == Version::Http11 && hosts == 0) {
        return Err(Error::Malformed);
    }
    let framing = if transfer_codings.present {
        // §6.1: TE in a 1.0 message, or TE beside Content-Length, is faulty framing;
        // §6.3 rule 4: TE whose final coding is not chunked cannot be delimited (400).
        if version == Version::Http10 || content_length.is_some() || !transfer_codings.chunked {
            return Err(Error::BadFraming);
        }
        // §6.1: a coding the server does not understand is a 501 (the framing is
        // sound: a proxy forwards it).
        if transfer_codings.coded && codings == Codings::Refuse {
            return Err(Error::UnsupportedCoding);
        }
        Framing::Chunked
    } else {
        match content_length {
            Some(n) if n > max_body => return Err(Error::BodyTooLarge),
            Some(n) => Framing::Length(n),
            None => Framing::None,
        }
    };
    let keep_alive = !repeated_length
        && match version {
            Version::Http11 => !close,
            Version::Http10 => keep_alive_token && !close,
        };
    let request = Request {
        head: Head {
            method,
            version,
            keep_alive,
            framing,
            expect_continue: expect_continue && framing.has_body(),
            suspect: repeated_length,
        },
        method_name,
        target,
        path: path_of(target.as_bytes()),
        headers,
    };
    Ok((request, len))
}

/// The status for a head over the `max_head` byte limit, decided from its first
/// `max_head` bytes only (so not from how the bytes happened to arrive): 501 if the
/// method does not end within [`MAX_METHOD_LEN`] bytes; 414 if the request line does
/// not end within them or its target is over [`MAX_URI_LEN`], as nginx answers a
/// request line longer than its header buffer; 431 otherwise.
pub fn oversized(buf: &[u8], max_head: usize) -> Error {
    let seen = &buf[..buf.len().min(max_head)];
    // No space within the longest method accepted: the method is too long, whatever
    // the rest (RFC 9112 §3: 501, not a 414, which is about the target).
    if seen.len() > MAX_METHOD_LEN && !seen[..=MAX_METHOD_LEN].contains(&b' ') {
        return Error::MethodTooLong;
    }
    let Some(line_end) = memchr_lf(seen) else {
        return Error::UriTooLong;
    };
    let line = &seen[..line_end];
    let target = match (
        line.iter().position(|&b| b == b' '),
        line.iter().rposition(|&b| b == b' '),
    ) {
        (Some(first), Some(last)) if first < last => &line[first + 1..last],
        _ => &[][..],
    };
    if target.len() > MAX_URI_LEN {
        Error::UriTooLong
    } else {
        Error::HeadTooLarge
    }
}

/// `Host = uri-host [ ":" port ]` (RFC 9110 §7.2), with `uri-host` an IP-literal in
/// brackets or a `reg-name` (RFC 3986 §3.2.2: unreserved, pct-encoded and sub-delims,
/// which takes in IPv4 addresses) and `port = *DIGIT`. Empty is valid syntax (§7.2: a
/// target without authority), which [`parse`] refuses for an `http` target (§4.2.1).
/// `value` comes from httparse, trimmed.
fn valid_host(value: &[u8]) -> bool {
    let port = if value.first() == Some(&b'[') {
        let Some(close) = value.iter().position(|&b| b == b']') else {
            return false;
        };
        if !valid_ip_literal(&value[1..close]) {
            return false;
        }
        &value[close + 1..]
    } else {
        // Classify every byte first, without branches (nearly every Host is plain
        // letters, digits, `-` and `.`, perhaps with `:port`); only a Host with
        // percent-encodings takes the slow walk.
        let class = value
            .iter()
            .fold(0, |class, &b| class | HOST_CLASS[b as usize]);
        let end = match class {
            0 => value.len(),
            COLON => value.iter().position(|&b| b == b':').unwrap_or(value.len()),
            c if c & INVALID != 0 => return false,
            _ => return valid_host_slow(value),
        };
        &value[end..]
    };
    match port.split_first() {
        None => true,
        Some((b':', digits)) => digits.iter().all(u8::is_ascii_digit),
        Some(_) => false,
    }
}

/// The inside of an `IP-literal` (RFC 3986 §3.2.2): an `IPv6address` (RFC 3986's
/// grammar, which `Ipv6Addr`'s parser follows: at most one `::`, 1 to 4 hex digits a
/// group, an IPv4 address without leading zeros at the end), perhaps with a zone
/// (RFC 6874 §2: `"%25" ZoneID`, `ZoneID = 1*( unreserved / pct-encoded )`), or an
/// `IPvFuture` (`"v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )`).
fn valid_ip_literal(literal: &[u8]) -> bool {
    if let [b'v' | b'V', future @ ..] = literal {
        let Some(dot) = future.iter().position(|&b| b == b'.') else {
            return false;
        };
        let (version, rest) = (&future[..dot], &future[dot + 1..]);
        return !version.is_empty()
            && version.iter().all(u8::is_ascii_hexdigit)
            && !rest.is_empty()
            && rest.iter().all(|&b| REG_NAME.contains(b) || b == b':');
    }
    let mut address = literal;
    if let Some(i) = literal.iter().position(|&b| b == b'%') {
        match literal[i..].strip_prefix(b"%25") {
            Some(zone) if valid_zone_id(zone) => address = &literal[..i],
            _ => return false,
        }
    }
    std::str::from_utf8(address).is_ok_and(|a| a.parse::<std::net::Ipv6Addr>().is_ok())
}

/// `ZoneID = 1*( unreserved / pct-encoded )` (RFC 6874 §2).
fn valid_zone_id(id: &[u8]) -> bool {
    let mut i = 0;
    while i < id.len() {
        let hex = |j: usize| id.get(j).is_some_and(u8::is_ascii_hexdigit);
        match id[i] {
            b'%' if hex(i + 1) && hex(i + 2) => i += 3,
            b if b.is_ascii_alphanumeric() || b"-._~".contains(&b) => i += 1,
            _ => return false,
        }
    }
    !id.is_empty()
}

/// [`valid_host`]'s byte classes: 0 for `unreserved / sub-delims`, and bits for the
/// rest.
const COLON: u8 = 1;
const PERCENT: u8 = 2;
const INVALID: u8 = 4;
static HOST_CLASS: [u8; 256] = {
    let mut class = [INVALID; 256];
    let mut b = 0;
    while b < 256 {
        if REG_NAME.contains(b as u8) {
            class[b] = 0;
        }
        b += 1;
    }
    class[b':' as usize] = COLON;
    class[b'%' as usize] = PERCENT;
    class
};

/// A reg-name with percent-encodings: each `%` must start `%HH`.
fn valid_host_slow(value: &[u8]) -> bool {
    let mut i = 0;
    loop {
        i += value[i..]
            .iter()
            .position(|&b| !REG_NAME.contains(b))
            .unwrap_or(value.len() - i);
        match value.get(i) {
            Some(b'%') => {
                let hex = |j: usize| value.get(j).is_some_and(u8::is_ascii_hexdigit);
                if !(hex(i + 1) && hex(i + 2)) {
                    return false;
                }
                i += 3;
            }
            None => return true,
            Some(b':') => return value[i + 1..].iter().all(u8::is_ascii_digit),
            Some(_) => return false,
        }
    }
}

/// `Content-Length = 1*DIGIT` (RFC 9110 §8.6), at most 19 digits so it fits a u64
/// with room to spare: a sign, hex, spaces or nothing are refused.
pub(crate) fn parse_content_length(value: &[u8]) -> Result<u64, Error> {
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return Err(Error::BadFraming);
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

/// Calls `f` with each element of a comma-separated list of tokens, as [`tokens`]
/// yields them, in one tight pass: for `Connection`, whose options a client may list
/// by the thousand (one byte and a comma each), so that reading them costs about what
/// reading any other bytes of the head does.
#[inline]
pub(crate) fn each_token(value: &[u8], mut f: impl FnMut(&[u8])) {
    let mut rest = value;
    loop {
        let end = rest.iter().position(|&b| b == b',').unwrap_or(rest.len());
        let mut token = &rest[..end];
        // OWS around an element is rare: trimmed only where there is some (httparse
        // lets no CR, LF or FF into a value, so this trims what `tokens` trims).
        if let [b' ' | b'\t', ..] = token {
            token = token.trim_ascii_start();
        }
        if let [.., b' ' | b'\t'] = token {
            token = token.trim_ascii_end();
        }
        f(token);
        match rest.get(end + 1..) {
            Some(after) => rest = after,
            None => return,
        }
    }
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
/// field at a time with [`add`](Self::add). Shared by requests and responses.
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
    /// [`Error::BadFraming`] for framing no one could delimit, or that two recipients
    /// could read two ways: a coding that is not `token *( OWS ";" OWS
    /// transfer-parameter )` (§7; an unterminated quoted-string among its parameters,
    /// say), `chunked` with parameters (§7.1: "Their presence SHOULD be treated as an
    /// error"), any coding after `chunked` (§7: it is applied once, and last).
    pub(crate) fn add(&mut self, value: &[u8]) -> Result<(), Error> {
        self.present = true;
        for coding in list(value).filter(|coding| !coding.is_empty()) {
            let name_len = coding
                .iter()
                .position(|&b| !TCHAR.contains(b))
                .unwrap_or(coding.len());
            let (name, parameters) = coding.split_at(name_len);
            if self.chunked || name.is_empty() || !valid_transfer_parameters(parameters) {
                return Err(Error::BadFraming);
            }
            // §7: coding names are case-insensitive.
            self.chunked = name.eq_ignore_ascii_case(b"chunked");
            if self.chunked && !parameters.is_empty() {
                return Err(Error::BadFraming);
            }
            self.coded |= !self.chunked;
        }
        Ok(())
    }
}

/// An absolute-form `http` or `https` target split into its authority (possibly
/// empty) and the rest, path and query (possibly empty): `http://host:1/p?q` →
/// `(host:1, /p?q)`. `None` for any other form of target.
pub(crate) fn split_absolute_form(target: &[u8]) -> Option<(&[u8], &[u8])> {
    let rest = [&b"http://"[..], b"https://"]
        .into_iter()
        .find_map(|scheme| {
            let matches =
                target.len() >= scheme.len() && target[..scheme.len()].eq_ignore_ascii_case(scheme);
            matches.then(|| &target[scheme.len()..])
        })?;
    let end = rest
        .iter()
        .position(|&b| b == b'/' || b == b'?')
        .unwrap_or(rest.len());
    Some(rest.split_at(end))
}

/// The error for a request line whose version httparse refused (it knows `HTTP/1.0`
/// and `HTTP/1.1`): a well-formed `HTTP-version` (RFC 9112 §2.3: `"HTTP/" DIGIT "."
/// DIGIT`, case-sensitive) of another major version is one this server does not
/// support, 505 (RFC 9110 §15.6.6); anything else is a 400. (`HTTP/1.2` is a 400 too,
/// though RFC 9110 §2.5 would have it read as 1.1: httparse does not parse it.)
fn version_error(buf: &[u8]) -> Error {
    let line = &buf[empty_lines(buf)..];
    let line = &line[..memchr_lf(line).unwrap_or(line.len())];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    match line.rsplit(|&b| b == b' ').next() {
        Some(&[b'H', b'T', b'T', b'P', b'/', major, b'.', minor])
            if major.is_ascii_digit() && minor.is_ascii_digit() && major != b'1' =>
        {
            Error::VersionNotSupported
        }
        _ => Error::Malformed,
    }
}

/// Whether `target` has a form `method` may use (RFC 9112 §3.2): origin-form (`/…`)
/// for any method but CONNECT; absolute-form, an `http` or `https` URI (the schemes of
/// RFC 9110 §4.2, the only ones this server serves) with a host and no userinfo
/// (§4.2.1, §4.2.4); authority-form, `uri-host ":" port`, for CONNECT only and always
/// with a port (§3.2.3; RFC 9110 §9.3.6); asterisk-form for OPTIONS only (§3.2.4).
/// Anything else is an invalid request-line: 400 (RFC 9112 §3).
fn valid_target(method: &str, target: &[u8]) -> bool {
    let connect = method == "CONNECT";
    match target {
        [b'/', ..] => !connect,
        b"*" => method == "OPTIONS",
        _ if connect => target
            .iter()
            .rposition(|&b| b == b':')
            .is_some_and(|colon| {
                let port = &target[colon + 1..];
                !port.is_empty() && port.iter().all(u8::is_ascii_digit) && valid_host(target)
            }),
        _ => split_absolute_form(target).is_some_and(|(authority, _)| {
            !authority.is_empty() && authority[0] != b':' && valid_host(authority)
        }),
    }
}

/// The path of a request target: origin-form as is, absolute-form reduced to its
/// path (`http://host/p?q` → `/p`), the query dropped.
fn path_of(target: &[u8]) -> &[u8] {
    let path = match split_absolute_form(target) {
        Some((_, rest)) if rest.starts_with(b"/") => rest,
        Some(_) => b"/",
        None => target,
    };
    match path.iter().position(|&b| b == b'?') {
        Some(i) => &path[..i],
        None => path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_with(req: &str, codings: Codings) -> Result<Head, Error> {
        let end = head_end(req.as_bytes(), 0).expect("complete head");
        let mut headers = header_storage();
        parse(&req.as_bytes()[..end], &mut headers, 1 << 20, codings).map(|(r, _)| r.head)
    }

    /// As a server that cannot decode codings before chunked parses.
    fn parse_all(req: &str) -> Result<Head, Error> {
        parse_with(req, Codings::Refuse)
    }

    /// As a proxy parses: codings before chunked are forwarded.
    fn parse_forwarding(req: &str) -> Result<Head, Error> {
        parse_with(req, Codings::Forward)
    }

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
    fn keep_alive_defaults() {
        assert!(
            parse_all("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
                .unwrap()
                .keep_alive
        );
        assert!(
            !parse_all("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
                .unwrap()
                .keep_alive
        );
        assert!(!parse_all("GET / HTTP/1.0\r\n\r\n").unwrap().keep_alive);
        assert!(
            parse_all("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
                .unwrap()
                .keep_alive
        );
        assert!(
            !parse_all("GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, CLOSE\r\n\r\n")
                .unwrap()
                .keep_alive
        );
    }

    #[test]
    fn framing_rules() {
        let h = parse_all("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n").unwrap();
        assert_eq!(h.framing, Framing::Length(5));
        // RFC 9112 §6.3 rule 5: a repeated identical length is one length, but the
        // sender is suspect: the connection closes after the response.
        for repeated in [
            "Content-Length: 5\r\nContent-Length: 5",
            "Content-Length: 5, 5",
        ] {
            let h = parse_all(&format!("POST / HTTP/1.1\r\nHost: a\r\n{repeated}\r\n\r\n"));
            let h = h.unwrap();
            assert_eq!(
                (h.framing, h.keep_alive),
                (Framing::Length(5), false),
                "{repeated}"
            );
        }
        // A length of 0 is a framing of its own (forwarded as sent), with no body.
        let h = parse_all("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n").unwrap();
        assert_eq!(
            (h.framing, h.framing.has_body()),
            (Framing::Length(0), false)
        );
        let h = parse_all("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 000\r\n\r\n").unwrap();
        assert_eq!(h.framing, Framing::Length(0));
        let h = parse_all(
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nExpect: 100-continue\r\n\r\n",
        );
        assert!(!h.unwrap().expect_continue, "no body to ask for");
        let h =
            parse_all("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n").unwrap();
        assert_eq!(h.framing, Framing::Chunked);
        for bad in [
            "Content-Length: 5\r\nContent-Length: 6",
            "Content-Length: 5, 6",
            "Content-Length: +5",
            "Content-Length: 0x5",
            "Content-Length: ",
            "Content-Length: 99999999999999999999",
            "Content-Length: 5\r\nTransfer-Encoding: chunked",
            "Transfer-Encoding: chunked, chunked",
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked",
            // RFC 9112 §6.3 rule 4: the final coding is not chunked: 400, whatever
            // the coding (not 501: no length can be read, understood or not).
            "Transfer-Encoding: gzip",
            "Transfer-Encoding: identity",
            "Transfer-Encoding: chunked, gzip",
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip",
            "Transfer-Encoding: xchunked",
            "Transfer-Encoding: chunked;q=1",
            "Transfer-Encoding: ",
            "Content-Length: 1\r\nTransfer-Encoding: gzip, chunked",
            // Review item 1: RFC 9110 §5.6.4, a comma in a quoted-string splits
            // nothing. Unterminated, the quoted-string runs to the end of the value:
            // no final chunked (a reader splitting at every comma would see one).
            "Transfer-Encoding: x;p=\"a, chunked",
            "Transfer-Encoding: x;p=\"a\\\", chunked",
            "Transfer-Encoding: x;p=\"a\\",
            "Transfer-Encoding: chunked, x;p=\"a,b\"",
            // RFC 9112 §7: `token *( OWS ";" OWS transfer-parameter )`, and chunked
            // has no parameters (§7.1).
            "Transfer-Encoding: chunked;q=1, chunked",
            "Transfer-Encoding: \"chunked\"",
            "Transfer-Encoding: x y, chunked",
            "Transfer-Encoding: x;p, chunked",
            "Transfer-Encoding: x;p=, chunked",
            "Transfer-Encoding: x;=v, chunked",
            "Transfer-Encoding: x;p=\"v\"w, chunked",
            "Transfer-Encoding: ;p=v, chunked",
        ] {
            let req = format!("POST / HTTP/1.1\r\nHost: a\r\n{bad}\r\n\r\n");
            assert_eq!(parse_all(&req), Err(Error::BadFraming), "{bad}");
            assert_eq!(parse_forwarding(&req), Err(Error::BadFraming), "{bad}");
        }
        // §6.1: codings before a final chunked are valid. A server that cannot decode
        // them answers 501; a proxy forwards them.
        for coded in [
            "Transfer-Encoding: gzip, chunked",
            "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked",
            "Transfer-Encoding: br ,\tCHUNKED",
            "Transfer-Encoding: identity, chunked",
            "Transfer-Encoding: x;p=\"a,b\", chunked",
            "Transfer-Encoding: x ; p = \"a\\\",\\\\\" ;q=1,chunked",
            "Transfer-Encoding: gzip;level=9\t, ,chunked",
        ] {
            let req = format!("POST / HTTP/1.1\r\nHost: a\r\n{coded}\r\n\r\n");
            assert_eq!(parse_all(&req), Err(Error::UnsupportedCoding), "{coded}");
            let head = parse_forwarding(&req).unwrap();
            assert_eq!(
                (head.framing, head.keep_alive),
                (Framing::Chunked, true),
                "{coded}"
            );
        }
        // §6.1: Transfer-Encoding in HTTP/1.0 is faulty framing, coded or not.
        for te in ["chunked", "gzip, chunked", "gzip"] {
            let req = format!("POST / HTTP/1.0\r\nTransfer-Encoding: {te}\r\n\r\n");
            assert_eq!(parse_all(&req), Err(Error::BadFraming), "{te}");
            assert_eq!(parse_forwarding(&req), Err(Error::BadFraming), "{te}");
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
    fn line_and_field_syntax_that_could_be_read_two_ways_is_refused() {
        // RFC 9112 §2.2 (CRLF line ends), §5.1 (no whitespace before the colon), §5.2
        // (no obs-fold), RFC 9110 §5.5 (no CR, LF, NUL in a value), §5.1 (token names),
        // RFC 9112 §3 (method token, version, target bytes).
        for bad in [
            &b"GET / HTTP/1.1\nHost: a\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nHost: a\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\n\n",
            b"GET / HTTP/1.1\nHost: a\n\n",
            b"\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost : a\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length\t: 0\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n\tb\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x0bb\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nX\x00: b\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nX(: b\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n",
            b"GET /a\x00b HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET /a\rb HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET /a\x7fb HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n",
            b"G\x00T / HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GE(T / HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET / HTTP/1.2\r\nHost: a\r\n\r\n",
            b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n",
            b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET / http/1.1\r\nHost: a\r\n\r\n",
            // RFC 9110 §4.2.1, §4.2.4: an http URI with an empty host or a userinfo.
            b"GET http:///p HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET http://?q HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET http://user@a/p HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET https://u:p@a HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET http://a b/ HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET http://a:x/ HTTP/1.1\r\nHost: a\r\n\r\n",
        ] {
            let mut headers = header_storage();
            let end = head_end(bad, 0).unwrap_or(bad.len());
            assert_eq!(
                parse(&bad[..end], &mut headers, 1 << 20, Codings::Forward).map(|(r, _)| r.head),
                Err(Error::Malformed),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        // Valid but unusual: percent-encodings and obs-text pass as they are.
        let req = "GET /a%00b%0D%0A?x=%2F HTTP/1.1\r\nHost: a\r\nX: \t v \r\n\r\n";
        assert!(parse_forwarding(req).is_ok());
        let req = "GET http://a.example:80/p HTTP/1.1\r\nHost: b\r\n\r\n";
        assert!(parse_forwarding(req).is_ok());
    }

    #[test]
    fn limits_and_other_errors() {
        let req = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2000000\r\n\r\n";
        assert_eq!(parse_all(req), Err(Error::BodyTooLarge));
        let long = format!(
            "GET /{} HTTP/1.1\r\nHost: a\r\n\r\n",
            "a".repeat(MAX_URI_LEN)
        );
        assert_eq!(parse_all(&long), Err(Error::UriTooLong));
        let many: String = (0..=MAX_HEADERS).map(|i| format!("X-{i}: v\r\n")).collect();
        let req = format!("GET / HTTP/1.1\r\nHost: a\r\n{many}\r\n");
        assert_eq!(parse_all(&req), Err(Error::HeadTooLarge));
        assert_eq!(
            parse_all("GET / HTTP/1.1\r\n\r\n"),
            Err(Error::Malformed),
            "no Host"
        );
        assert_eq!(
            parse_all("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
            Err(Error::Malformed)
        );
        // RFC 9110 §15.6.6: a major version other than 1 is a 505; an ill-formed
        // version (RFC 9112 §2.3) a 400.
        for (line, error) in [
            ("GET / HTTP/2.0", Error::VersionNotSupported),
            ("GET / HTTP/3.0", Error::VersionNotSupported),
            ("GET / HTTP/0.9", Error::VersionNotSupported),
            ("PRI * HTTP/2.0", Error::VersionNotSupported),
            ("GET / HTTP/2", Error::Malformed),
            ("GET / http/2.0", Error::Malformed),
            ("GET / HTTP/2.0 x", Error::Malformed),
            ("GET / HTTP/22.0", Error::Malformed),
            ("GET / HTTP/1.2", Error::Malformed),
        ] {
            let req = format!("\r\n{line}\r\nHost: a\r\n\r\n");
            assert_eq!(parse_all(&req), Err(error), "{line}");
        }
        assert_eq!(
            parse_all("GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n"),
            Err(Error::Malformed)
        );
        assert_eq!(
            parse_all("G@T / HTTP/1.1\r\nHost: a\r\n\r\n"),
            Err(Error::Malformed)
        );
        let req = "POST / HTTP/1.1\r\nHost: a\r\nExpect: something\r\n\r\n";
        assert_eq!(parse_all(req), Err(Error::ExpectationFailed));
        let req = "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n";
        assert!(parse_all(req).unwrap().expect_continue);
    }

    #[test]
    fn host_values() {
        // RFC 9110 §7.2, RFC 3986 §3.2.2: every path of `valid_host` (plain, with a
        // port, percent-encoded, IP-literal).
        for ok in [
            "",
            "a",
            "A-b.c",
            "a:",
            "a:8080",
            "127.0.0.1:80",
            "%41",
            "x%2e%2Ey:1",
            "a_b~c!$&'()*+,;=",
            "[::1]",
            "[::1]:443",
            "[v1.fe]",
            "[fe80::1%25eth0]",
            // RFC 3986 §3.2.2, every shape of IPv6address; IPvFuture; RFC 6874 zones.
            "[::]",
            "[1:2:3:4:5:6:7:8]",
            "[1::]",
            "[1:2:3:4:5:6:7::]",
            "[::2:3:4:5:6:7:8]",
            "[1:2::7:8]:80",
            "[::ffff:192.0.2.1]",
            "[1:2:3:4:5:6:1.2.3.4]",
            "[FE80::aB]",
            "[V7.a:b!$&'()*+,;=-._~]",
            "[fe80::1%25%41-._~]",
        ] {
            assert!(valid_host(ok.as_bytes()), "{ok:?}");
        }
        for bad in [
            "a b",
            "a/b",
            "a@b",
            "a?b",
            "a#b",
            "a:b",
            "a:1:2",
            ":1x",
            "%4",
            "%zz",
            "a%4:1",
            "[::1",
            "[]",
            "[::1]x",
            "[::1]:a",
            "[a/b]",
            "a\"b",
            "a\\b",
            "a[b",
            "\u{80}",
            // Review item 7: IP-literals outside RFC 3986 §3.2.2 (and RFC 6874 §2).
            "[zzz]",
            "[::1%eth0]",
            "[:::::]:",
            "[::1%25]",
            "[::1%25a%4]",
            "[::1%25a!]",
            "[1:2:3:4:5:6:7:8:9]",
            "[1:2:3:4:5:6:7]",
            "[1::2::3]",
            "[12345::]",
            "[::g]",
            "[1.2.3.4]",
            "[::ffff:1.2.3.04]",
            "[::ffff:1.2.3]",
            "[:1::]",
            "[::1:]",
            "[v]",
            "[v1]",
            "[v1.]",
            "[v.a]",
            "[vx.a]",
            "[v1.a/b]",
            "[v1.a%41]",
            "[::1]]",
            "[[::1]",
        ] {
            assert!(!valid_host(bad.as_bytes()), "{bad:?}");
        }
    }

    #[test]
    fn oversized_heads_are_414_or_431_from_the_request_line() {
        let line = |target: usize| format!("GET /{} HTTP/1.1\r\nHost: a\r\n", "x".repeat(target));
        // The request line does not end within the limit: 414.
        assert_eq!(oversized(line(100).as_bytes(), 50), Error::UriTooLong);
        // It does, with a short target: 431, however much more was read.
        let head = line(10) + &"X: y\r\n".repeat(100);
        assert_eq!(oversized(head.as_bytes(), 64), Error::HeadTooLarge);
        // It does, with a target over MAX_URI_LEN (a head limit above it): 414.
        let head = line(MAX_URI_LEN + 1) + &"X: y\r\n".repeat(100);
        assert_eq!(
            oversized(head.as_bytes(), MAX_URI_LEN + 100),
            Error::UriTooLong
        );
        // Only the first `max_head` bytes count: a CRLF just past them does not.
        let head = line(100);
        let lf = head.find('\n').unwrap();
        assert_eq!(oversized(head.as_bytes(), lf), Error::UriTooLong);
        assert_eq!(oversized(head.as_bytes(), lf + 1), Error::HeadTooLarge);
    }

    #[test]
    fn target_forms() {
        // RFC 9112 §3.2: each form, with the methods that may use it.
        for (method, target) in [
            ("GET", "/"),
            ("GET", "/a/b?c=d"),
            ("CONNECT", "a:443"),
            ("CONNECT", "[::1]:443"),
            ("OPTIONS", "*"),
            ("OPTIONS", "/"),
            ("GET", "http://a"),
            ("GET", "HTTPS://a.example:8443/p?q"),
            ("GET", "http://a?q"),
            ("POST", "http://[::1]:80/echo"),
        ] {
            assert!(valid_target(method, target.as_bytes()), "{method} {target}");
        }
        for (method, target) in [
            ("GET", "bytes/3"),
            ("GET", "a:80"),
            ("GET", "*"),
            ("CONNECT", "*"),
            ("CONNECT", "/"),
            ("CONNECT", "a"),
            ("CONNECT", "a:"),
            ("CONNECT", "[::1]"),
            ("CONNECT", "a b:80"),
            ("CONNECT", "http://a:80"),
            ("OPTIONS", "**"),
            ("GET", "ftp://a/"),
            ("GET", "http:/a"),
            ("GET", "http://"),
            ("GET", "http:///p"),
            ("GET", "http://:80/p"),
            ("GET", "http://user@a/"),
            ("GET", "http://[zzz]/"),
            ("GET", "?q"),
        ] {
            assert!(
                !valid_target(method, target.as_bytes()),
                "{method} {target}"
            );
        }
    }

    #[test]
    fn targets() {
        assert_eq!(path_of(b"/echo?x=1"), b"/echo");
        assert_eq!(path_of(b"http://example.com/bytes/5?q"), b"/bytes/5");
        assert_eq!(path_of(b"HTTP://example.com"), b"/");
        assert_eq!(path_of(b"https://example.com?q"), b"/");
        assert_eq!(path_of(b"*"), b"*");
    }
}
