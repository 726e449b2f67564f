//! Request heads: `httparse` plus the limits and framing rules of RFC 9112.
//!
//! Pure functions over a byte slice: no I/O, no allocation. The caller owns the
//! buffer. A head that arrived whole (the first read of it holds its blank line) is
//! parsed at once, httparse finding its end; otherwise it is parsed only once
//! [`fields::find_head`] has found its blank line, so a slow client costs one scan of
//! the new bytes per read (and at most one early parse per head), not a re-parse of
//! the whole head. The fields that frame the message are read by [`FramingFields`], as a
//! response's are ([`response`](super::response)); this module adds what only a request
//! has: the request line, `Host`, `Expect`, the body limit.

use recycle_pool::status::Version;

use super::connection;
use super::fields::{self, Delimiter, FieldStorage, FramingError, FramingFields, memchr_lf};
use super::{REG_NAME, RequestError};

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
pub enum RequestFraming {
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
pub struct RequestHead {
    /// The method.
    pub method: Method,
    /// `HTTP/1.0` or `HTTP/1.1`.
    pub version: Version,
    /// Whether the connection may stay open after the response: the client allows it,
    /// and nothing in the head was suspicious enough to close after answering (a
    /// `Content-Length` repeated with the same value, RFC 9112 §6.3 rule 5).
    pub keep_alive: bool,
    /// How the body is delimited.
    pub framing: RequestFraming,
    /// `Expect: 100-continue` on an HTTP/1.1 request with a body.
    pub expect_continue: bool,
    /// The framing was read unambiguously, but the head is suspect (it repeats its
    /// `Content-Length`): answer it, then close (a proxy closes its upstream
    /// connection too).
    pub suspect: bool,
    /// `Connection` lists the `upgrade` option: the client may ask to switch protocols
    /// (RFC 9110 §7.8), if it also sent `Upgrade`. Whatever the version: a server
    /// ignores `Upgrade` in an HTTP/1.0 request, which the handler that upgrades
    /// checks.
    pub upgrade: bool,
}

impl RequestFraming {
    /// Whether there are body bytes to read: a `Content-Length` over 0, or chunked.
    pub const fn has_body(self) -> bool {
        !matches!(self, RequestFraming::None | RequestFraming::Length(0))
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

/// A parsed request head, as a handler sees it: every field borrowed from the
/// connection's read buffer (nothing copied to the heap).
#[derive(Debug)]
pub struct Request<'b> {
    /// What the connection needs to know (method, version, keep-alive, framing).
    pub head: RequestHead,
    /// The method as sent (`"GET"`, `"PATCH"`, …), for methods [`Method`] lumps
    /// together as [`Method::Other`].
    pub method_name: &'b str,
    /// The request target as sent (origin-form, absolute-form, `*`, …).
    pub target: &'b str,
    /// The target's path (absolute-form reduced to its path), without the query.
    pub path: &'b [u8],
    /// Every header field line, in order, as `httparse` read them.
    pub headers: &'b [httparse::Header<'b>],
    /// The fields of `headers` that the `Connection` options name (RFC 9110 §7.6.1),
    /// as bits by index: read with the options, for a [`parse`] asked to collect them
    /// (a proxy's, which drops them); 0 otherwise.
    pub named_by_connection: u128,
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

/// Parses a complete head (`buf[..end]`, with `end` from [`fields::find_head`]) into
/// `headers`;
/// returns the request and the bytes its head took.
///
/// # Errors
///
/// The [`RequestError`] that decides the status: malformed syntax (including a bare LF line
/// end, obs-fold, whitespace before a colon, control bytes in a value or the target),
/// an invalid or missing `Host`, an invalid absolute-form authority, framing that could
/// be read two ways, a coding refused per `codings`, too many headers, a target too
/// long, a body over `max_body`, an unknown expectation.
///
/// With `names`, the fields the `Connection` options name are found as the options
/// are read ([`Request::named_by_connection`]), so that a proxy need not read them
/// again; a server passes `false` and pays nothing for them.
pub fn parse<'b>(
    buf: &'b [u8],
    headers: &'b mut FieldStorage<'b>,
    max_body: u64,
    codings: Codings,
    names: bool,
) -> Result<(Request<'b>, usize), RequestError> {
    let Syntax {
        method_name,
        target,
        minor,
        headers,
        len,
    } = read_request(buf, headers)?;
    check_line(method_name, target)?;
    // The forms whose host is the `Host` field's: all but absolute-form (RFC 9112
    // §3.2.2: a server takes the host from the target and ignores `Host`).
    let host_from_field =
        method_name == "CONNECT" || matches!(target.as_bytes().first(), Some(b'/' | b'*'));
    let version = fields::version(minor);
    let method = match method_name {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        _ => Method::Other,
    };

    let (framing_fields, expect_continue, named_by_connection) =
        read_fields(headers, version, host_from_field, names)?;
    let framing = request_framing(&framing_fields, version, max_body, codings)?;
    // A sender that repeats its `Content-Length` (with the same value: RFC 9110 §8.6
    // makes it one value) is suspect: answered, then closed.
    let suspect = framing_fields.repeated_length();
    let keep_alive = !suspect && framing_fields.persistent(version);
    let request = Request {
        head: RequestHead {
            method,
            version,
            keep_alive,
            framing,
            expect_continue: expect_continue && framing.has_body(),
            suspect,
            upgrade: framing_fields.upgrade(),
        },
        method_name,
        target,
        path: path_of(target.as_bytes()),
        headers,
        named_by_connection,
    };
    Ok((request, len))
}

/// What httparse read of a request head.
struct Syntax<'b> {
    method_name: &'b str,
    target: &'b str,
    /// The version's minor digit.
    minor: u8,
    headers: &'b [httparse::Header<'b>],
    /// Bytes the head took.
    len: usize,
}

/// The head's syntax: httparse's reading of `buf` into `headers`, if it is one whole
/// head with CRLF line ends.
#[inline(always)]
fn read_request<'b>(
    buf: &'b [u8],
    headers: &'b mut FieldStorage<'b>,
) -> Result<Syntax<'b>, RequestError> {
    let mut req = httparse::Request::new(&mut []);
    // httparse refuses obs-fold, whitespace between a field name and its colon, and
    // CR, LF, NUL or other controls inside a value or the target (RFC 9112 §5.1, §5.2,
    // §3.2, RFC 9110 §5.5): each is a 400 here, never a request read two ways.
    let len = match req.parse_with_uninit_headers(buf, headers) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Err(RequestError::Malformed),
        Err(httparse::Error::TooManyHeaders) => return Err(RequestError::HeadTooLarge),
        Err(httparse::Error::Version) => return Err(version_error(buf)),
        Err(_) => return Err(RequestError::Malformed),
    };
    // Every line ends in CRLF, as in a response: see [`fields::crlf_only`].
    if !fields::crlf_only(&buf[..len]) {
        return Err(RequestError::Malformed);
    }
    let httparse::Request {
        method: Some(method_name),
        path: Some(target),
        version: Some(minor),
        headers,
    } = req
    else {
        return Err(RequestError::Malformed);
    };
    Ok(Syntax {
        method_name,
        target,
        minor,
        headers,
        len,
    })
}

/// The request line's limits and characters: a method and a target no longer than
/// the server reads, and a target of URI characters without a fragment.
#[inline(always)]
fn check_line(method_name: &str, target: &str) -> Result<(), RequestError> {
    if method_name.len() > MAX_METHOD_LEN {
        return Err(RequestError::MethodTooLong);
    }
    if target.len() > MAX_URI_LEN {
        return Err(RequestError::UriTooLong);
    }
    // RFC 9112 §3.2: URI characters only, so no raw non-ASCII byte (httparse lets
    // them through); and no fragment, which neither origin-form (§3.2.1) nor
    // absolute-form (RFC 9110 §4.1) carries.
    if !valid_target(method_name, target.as_bytes())
        || target.bytes().any(|b| b >= 0x80 || b == b'#')
    {
        return Err(RequestError::Malformed);
    }
    Ok(())
}

/// Reads the fields: those that frame the message through [`FramingFields`], and the
/// request's own, `Host` (exactly one on a 1.1 request, none invalid, never two: RFC
/// 9112 §3.2) and `Expect` (only `100-continue`, on 1.1). Returns the framing fields,
/// whether the client expects a 100, and (with `names`) the fields the `Connection`
/// options name (without, 0: a server reads `close` and the like as each
/// `Connection` comes).
// One call site, on every request: inlined, as when it was written there.
#[inline(always)]
fn read_fields(
    headers: &[httparse::Header<'_>],
    version: Version,
    host_from_field: bool,
    names: bool,
) -> Result<(FramingFields, bool, u128), RequestError> {
    let mut framing_fields = FramingFields::default();
    let mut connection = 0;
    let mut hosts = 0;
    let mut expect_continue = false;
    for header in headers {
        let name = header.name;
        let value = header.value;
        // The field's index, reckoned only for a `Connection` field when the names
        // are wanted: nothing is added to the server's loop over the fields.
        let read_connection = |flags: &mut _, value: &[u8]| {
            if names {
                let index = (std::ptr::from_ref(header).addr() - headers.as_ptr().addr())
                    / size_of::<httparse::Header<'_>>();
                connection |= 1 << index;
            } else {
                connection::read_flags(value, flags);
            }
        };
        if framing_fields.add_with(name, value, read_connection)? {
            continue;
        }
        if name.eq_ignore_ascii_case("host") {
            // RFC 9112 §3.2: a Host with an invalid value is a 400; so is an empty one
            // naming the host of an `http` URI (RFC 9110 §4.2.1: a recipient MUST
            // reject an http URI with an empty host).
            let no_host = value.first().is_none_or(|&b| b == b':');
            if !valid_host(value) || (no_host && host_from_field) {
                return Err(RequestError::Malformed);
            }
            hosts += 1;
        } else if name.eq_ignore_ascii_case("expect") {
            if version == Version::Http11
                && value.trim_ascii().eq_ignore_ascii_case(b"100-continue")
            {
                expect_continue = true;
            } else if version == Version::Http11 {
                return Err(RequestError::ExpectationFailed);
            }
        }
    }
    // RFC 9112 §3.2: a 1.1 request has exactly one Host; no request has two.
    if hosts > 1 || (version == Version::Http11 && hosts == 0) {
        return Err(RequestError::Malformed);
    }
    let named = framing_fields.read_connection(headers, connection);
    Ok((framing_fields, expect_continue, named))
}

/// The request's framing, from what its fields say ([`FramingFields::delimiter`]) and
/// the rules only a request has: it cannot be close-delimited, its body has a limit,
/// and a server may refuse codings it cannot decode.
// One call site, on every request: inlined, as when it was written there.
#[inline(always)]
fn request_framing(
    framing_fields: &FramingFields,
    version: Version,
    max_body: u64,
    codings: Codings,
) -> Result<RequestFraming, RequestError> {
    Ok(match framing_fields.delimiter(version)? {
        // §6.3 rule 4: a request whose final coding is not chunked cannot be
        // delimited (400).
        Delimiter::Unchunked => return Err(RequestError::BadFraming),
        // §6.1: a coding the server does not understand is a 501 (the framing is
        // sound: a proxy forwards it).
        Delimiter::Chunked { coded: true } if codings == Codings::Refuse => {
            return Err(RequestError::UnsupportedCoding);
        }
        Delimiter::Chunked { .. } => RequestFraming::Chunked,
        Delimiter::Length(n) if n > max_body => return Err(RequestError::BodyTooLarge),
        Delimiter::Length(n) => RequestFraming::Length(n),
        Delimiter::Absent => RequestFraming::None,
    })
}

/// The status for a head over the `max_head` byte limit, decided from its first
/// `max_head` bytes only (so not from how the bytes happened to arrive): 501 if the
/// method does not end within [`MAX_METHOD_LEN`] bytes; 414 if the request line does
/// not end within them or its target is over [`MAX_URI_LEN`], as nginx answers a
/// request line longer than its header buffer; 431 otherwise.
pub fn oversized(buf: &[u8], max_head: usize) -> RequestError {
    let seen = &buf[..buf.len().min(max_head)];
    // No space within the longest method accepted: the method is too long, whatever
    // the rest (RFC 9112 §3: 501, not a 414, which is about the target).
    if seen.len() > MAX_METHOD_LEN && !seen[..=MAX_METHOD_LEN].contains(&b' ') {
        return RequestError::MethodTooLong;
    }
    let Some(line_end) = memchr_lf(seen) else {
        return RequestError::UriTooLong;
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
        RequestError::UriTooLong
    } else {
        RequestError::HeadTooLarge
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
fn version_error(buf: &[u8]) -> RequestError {
    let line = &buf[empty_lines(buf)..];
    let line = &line[..memchr_lf(line).unwrap_or(line.len())];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    match line.rsplit(|&b| b == b' ').next() {
        Some(&[b'H', b'T', b'T', b'P', b'/', major, b'.', minor])
            if major.is_ascii_digit() && minor.is_ascii_digit() && major != b'1' =>
        {
            RequestError::VersionNotSupported
        }
        _ => RequestError::Malformed,
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

impl From<FramingError> for RequestError {
    fn from(FramingError: FramingError) -> Self {
        RequestError::BadFraming
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::fields::{MAX_HEADERS, field_storage, head_end};

    fn parse_with(req: &str, codings: Codings) -> Result<RequestHead, RequestError> {
        let end = head_end(req.as_bytes(), 0).expect("complete head");
        let mut headers = field_storage();
        parse(
            &req.as_bytes()[..end],
            &mut headers,
            1 << 20,
            codings,
            false,
        )
        .map(|(r, _)| r.head)
    }

    /// As a server that cannot decode codings before chunked parses.
    fn parse_all(req: &str) -> Result<RequestHead, RequestError> {
        parse_with(req, Codings::Refuse)
    }

    /// As a proxy parses: codings before chunked are forwarded.
    fn parse_forwarding(req: &str) -> Result<RequestHead, RequestError> {
        parse_with(req, Codings::Forward)
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
    fn a_length_or_chunked_frames_the_body() {
        let h = parse_all("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n").unwrap();
        assert_eq!(h.framing, RequestFraming::Length(5));
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
                (RequestFraming::Length(5), false),
                "{repeated}"
            );
        }
        // A length of 0 is a framing of its own (forwarded as sent), with no body.
        let h = parse_all("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n").unwrap();
        assert_eq!(
            (h.framing, h.framing.has_body()),
            (RequestFraming::Length(0), false)
        );
        let h = parse_all("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 000\r\n\r\n").unwrap();
        assert_eq!(h.framing, RequestFraming::Length(0));
        let h = parse_all(
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nExpect: 100-continue\r\n\r\n",
        );
        assert!(!h.unwrap().expect_continue, "no body to ask for");
        let h =
            parse_all("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n").unwrap();
        assert_eq!(h.framing, RequestFraming::Chunked);
    }

    #[test]
    fn framing_read_two_ways_or_not_at_all_is_a_400() {
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
            // RFC 9110 §5.6.4: a comma in a quoted-string splits
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
            assert_eq!(parse_all(&req), Err(RequestError::BadFraming), "{bad}");
            assert_eq!(
                parse_forwarding(&req),
                Err(RequestError::BadFraming),
                "{bad}"
            );
        }
    }

    #[test]
    fn codings_before_chunked_are_a_501_or_forwarded() {
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
            assert_eq!(
                parse_all(&req),
                Err(RequestError::UnsupportedCoding),
                "{coded}"
            );
            let head = parse_forwarding(&req).unwrap();
            assert_eq!(
                (head.framing, head.keep_alive),
                (RequestFraming::Chunked, true),
                "{coded}"
            );
        }
    }

    #[test]
    fn transfer_encoding_in_http_1_0_is_a_400() {
        // §6.1: Transfer-Encoding in HTTP/1.0 is faulty framing, coded or not.
        for te in ["chunked", "gzip, chunked", "gzip"] {
            let req = format!("POST / HTTP/1.0\r\nTransfer-Encoding: {te}\r\n\r\n");
            assert_eq!(parse_all(&req), Err(RequestError::BadFraming), "{te}");
            assert_eq!(
                parse_forwarding(&req),
                Err(RequestError::BadFraming),
                "{te}"
            );
        }
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
            let mut headers = field_storage();
            let end = head_end(bad, 0).unwrap_or(bad.len());
            assert_eq!(
                parse(&bad[..end], &mut headers, 1 << 20, Codings::Forward, true)
                    .map(|(r, _)| r.head),
                Err(RequestError::Malformed),
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
    fn a_body_target_or_head_over_its_limit_is_refused() {
        let req = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2000000\r\n\r\n";
        assert_eq!(parse_all(req), Err(RequestError::BodyTooLarge));
        let long = format!(
            "GET /{} HTTP/1.1\r\nHost: a\r\n\r\n",
            "a".repeat(MAX_URI_LEN)
        );
        assert_eq!(parse_all(&long), Err(RequestError::UriTooLong));
        let many: String = (0..=MAX_HEADERS).map(|i| format!("X-{i}: v\r\n")).collect();
        let req = format!("GET / HTTP/1.1\r\nHost: a\r\n{many}\r\n");
        assert_eq!(parse_all(&req), Err(RequestError::HeadTooLarge));
    }

    #[test]
    fn a_1_1_request_has_exactly_one_host() {
        assert_eq!(
            parse_all("GET / HTTP/1.1\r\n\r\n"),
            Err(RequestError::Malformed),
            "no Host"
        );
        assert_eq!(
            parse_all("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
            Err(RequestError::Malformed)
        );
    }

    #[test]
    fn another_major_version_is_a_505_an_ill_formed_one_a_400() {
        // RFC 9110 §15.6.6: a major version other than 1 is a 505; an ill-formed
        // version (RFC 9112 §2.3) a 400.
        for (line, error) in [
            ("GET / HTTP/2.0", RequestError::VersionNotSupported),
            ("GET / HTTP/3.0", RequestError::VersionNotSupported),
            ("GET / HTTP/0.9", RequestError::VersionNotSupported),
            ("PRI * HTTP/2.0", RequestError::VersionNotSupported),
            ("GET / HTTP/2", RequestError::Malformed),
            ("GET / http/2.0", RequestError::Malformed),
            ("GET / HTTP/2.0 x", RequestError::Malformed),
            ("GET / HTTP/22.0", RequestError::Malformed),
            ("GET / HTTP/1.2", RequestError::Malformed),
        ] {
            let req = format!("\r\n{line}\r\nHost: a\r\n\r\n");
            assert_eq!(parse_all(&req), Err(error), "{line}");
        }
    }

    #[test]
    fn obs_fold_and_a_bad_method_are_a_400() {
        assert_eq!(
            parse_all("GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n"),
            Err(RequestError::Malformed)
        );
        assert_eq!(
            parse_all("G@T / HTTP/1.1\r\nHost: a\r\n\r\n"),
            Err(RequestError::Malformed)
        );
    }

    #[test]
    fn only_100_continue_is_an_expectation_met() {
        let req = "POST / HTTP/1.1\r\nHost: a\r\nExpect: something\r\n\r\n";
        assert_eq!(parse_all(req), Err(RequestError::ExpectationFailed));
        let req = "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n";
        assert!(parse_all(req).unwrap().expect_continue);
    }

    #[test]
    fn every_valid_host_shape_is_taken() {
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
    }

    #[test]
    fn a_host_outside_the_grammar_is_refused() {
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
            // IP-literals outside RFC 3986 §3.2.2 (and RFC 6874 §2).
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
        assert_eq!(
            oversized(line(100).as_bytes(), 50),
            RequestError::UriTooLong
        );
        // It does, with a short target: 431, however much more was read.
        let head = line(10) + &"X: y\r\n".repeat(100);
        assert_eq!(oversized(head.as_bytes(), 64), RequestError::HeadTooLarge);
        // It does, with a target over MAX_URI_LEN (a head limit above it): 414.
        let head = line(MAX_URI_LEN + 1) + &"X: y\r\n".repeat(100);
        assert_eq!(
            oversized(head.as_bytes(), MAX_URI_LEN + 100),
            RequestError::UriTooLong
        );
        // Only the first `max_head` bytes count: a CRLF just past them does not.
        let head = line(100);
        let lf = head.find('\n').unwrap();
        assert_eq!(oversized(head.as_bytes(), lf), RequestError::UriTooLong);
        assert_eq!(
            oversized(head.as_bytes(), lf + 1),
            RequestError::HeadTooLarge
        );
    }

    #[test]
    fn each_target_form_is_for_its_methods() {
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
    fn the_path_drops_the_authority_and_query() {
        assert_eq!(path_of(b"/echo?x=1"), b"/echo");
        assert_eq!(path_of(b"http://example.com/bytes/5?q"), b"/bytes/5");
        assert_eq!(path_of(b"HTTP://example.com"), b"/");
        assert_eq!(path_of(b"https://example.com?q"), b"/");
        assert_eq!(path_of(b"*"), b"*");
    }
}
