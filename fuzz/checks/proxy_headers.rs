//! `proxy_headers`: arbitrary client requests and arbitrary upstream responses through
//! the reverse proxy's sans-I/O state machine (`ProxyHandler` behind a connection,
//! driven in memory by `demo_server::proxy::mem`).
//!
//! Input layout: bytes 0-1 (little-endian) say how many of the bytes after the header
//! the client sends (the rest is what the upstream sends, to whichever connection the
//! proxy uses at the time); byte 2 the size of the pieces both are fed in (1 to 64,
//! low six bits); byte 3 flags: bit 0 the upstream closes at the end, bit 1 the client
//! does, bit 2 the client reads slowly (a few hundred bytes a step), bit 3 the upstream
//! timeout passes at the end, bit 4 connections are refused.
//!
//! Properties:
//! - never panics, never loops forever;
//! - nothing is forwarded for an invalid request: if the client's first head is
//!   refused by the request parser, or is ambiguous by a test of its own here (a bare
//!   LF line end, both `Content-Length` and `Transfer-Encoding`, a `Transfer-Encoding`
//!   with a quoted-string that does not end), no upstream connection ever received a
//!   byte (a body found broken only as it streams is cut off instead: the upstream sees
//!   a well-formed prefix, re-chunked, then the close);
//! - what the upstream received is a run of well-formed requests: CRLF line ends, a
//!   `Host`, at most one framing field (a `Transfer-Encoding` whose last element, read
//!   here with quoted-strings, is `chunked`), the proxy's `Via`, never CONNECT or
//!   TRACE (the proxy answers those itself); a connection left with a request cut
//!   short is never idle (reusable); an `Upgrade` goes only with `Connection:
//!   upgrade`, on a request without a body, and what follows such a request on its
//!   connection is not checked (after a 101 it is a tunnel's raw bytes);
//! - bounded buffers: the copy buffers never hold more than two of their size (plus a
//!   head), the client's pending output never more than the high-water mark plus a
//!   copy buffer and a head.
//!
//! Shared by `fuzz_targets/proxy_headers.rs` and `demo-server/tests/fuzz_replay.rs`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use demo_server::http::conn::WRITE_HIGH_WATER;
use demo_server::http::fields;
use demo_server::http::parse::{self, Codings};
use demo_server::proxy::handler::{COPY_BUF_SIZE, Proxy, ProxyConfig};
use demo_server::proxy::mem::MemProxy;
use demo_server::state::{Limits, Shared};
use recycle_pool::status::Clock;

struct Frozen;
impl Clock for Frozen {
    fn now(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }
}

const MAX_HEAD: usize = 2048;

/// Most steps a run takes: a bound on work, not a property.
const MAX_STEPS: usize = 20_000;

/// The last element of a list field value, by this check's own reading of RFC 9110
/// §5.6.1 and §5.6.4 (a comma inside a quoted-string, quoted-pairs included, splits
/// nothing); `None` if a quoted-string does not end.
fn last_element(value: &[u8]) -> Option<&[u8]> {
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, &b) in value.iter().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            b',' if !quoted => start = i + 1,
            _ => {}
        }
    }
    (!quoted).then(|| value[start..].trim_ascii())
}

/// Whether the first head in `bytes` (up to its blank line) is ambiguous by this
/// check's own reading: a bare LF line end, both framing fields, or a
/// `Transfer-Encoding` with a quoted-string that does not end (split at every comma,
/// `x;p="a, chunked` ends in chunked; split as RFC 9110 §5.6.4 says, it does not).
fn plainly_ambiguous(bytes: &[u8]) -> bool {
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(bytes.len(), |i| i + 4);
    let head = &bytes[..end];
    let bare_lf = head
        .iter()
        .enumerate()
        .any(|(i, &b)| b == b'\n' && (i == 0 || head[i - 1] != b'\r'));
    let has = |name: &[u8]| {
        head.split(|&b| b == b'\n').skip(1).any(|line| {
            line.len() > name.len()
                && line[..name.len()].eq_ignore_ascii_case(name)
                && line[name.len()] == b':'
        })
    };
    let unterminated_quote = head.split(|&b| b == b'\n').skip(1).any(|line| {
        let name = b"transfer-encoding:";
        line.len() > name.len()
            && line[..name.len()].eq_ignore_ascii_case(name)
            && last_element(line[name.len()..].trim_ascii()).is_none()
    });
    bare_lf || (has(b"content-length") && has(b"transfer-encoding")) || unterminated_quote
}

/// Checks that `bytes`, all an upstream connection received, are well-formed requests
/// (the last possibly cut short: the proxy stopped sending). Returns whether the last
/// one is complete.
fn check_forwarded(mut bytes: &[u8]) -> bool {
    while !bytes.is_empty() {
        let mut fields = [httparse::EMPTY_HEADER; 128];
        let mut req = httparse::Request::new(&mut fields);
        let len = match req.parse(bytes) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => return false, // cut short
            Err(e) => panic!(
                "forwarded an invalid head ({e}): {:?}",
                String::from_utf8_lossy(bytes)
            ),
        };
        let head = &bytes[..len];
        assert!(
            head.iter()
                .enumerate()
                .all(|(i, &b)| b != b'\n' || (i > 0 && head[i - 1] == b'\r')),
            "CRLF line ends only"
        );
        assert_eq!(req.version, Some(1), "HTTP/1.1 upstream");
        let count = |name: &str| {
            req.headers
                .iter()
                .filter(|h| h.name.eq_ignore_ascii_case(name))
                .count()
        };
        assert_eq!(count("host"), 1, "one Host");
        assert!(
            count("content-length") + count("transfer-encoding") <= 1,
            "one framing"
        );
        assert!(count("via") == 1, "the proxy's Via");
        if count("upgrade") > 0 {
            // Forwarded only as an upgrade ask: with the option, without a body.
            let option = req.headers.iter().any(|h| {
                h.name.eq_ignore_ascii_case("connection")
                    && h.value
                        .split(|&b| b == b',')
                        .any(|o| o.trim_ascii().eq_ignore_ascii_case(b"upgrade"))
            });
            assert!(option, "Upgrade forwarded without Connection: upgrade");
            assert_eq!(
                count("content-length") + count("transfer-encoding"),
                0,
                "an upgrade ask with a body"
            );
            return true; // what follows may be a tunnel's bytes
        }
        let method = req.method.unwrap_or_default();
        assert!(
            method != "CONNECT" && method != "TRACE",
            "forwarded {method}"
        );
        let framing = req
            .headers
            .iter()
            .find(|h| {
                h.name.eq_ignore_ascii_case("content-length")
                    || h.name.eq_ignore_ascii_case("transfer-encoding")
            })
            .map(|h| (h.name.to_ascii_lowercase(), h.value.to_vec()));
        bytes = &bytes[len..];
        match framing {
            None => {}
            Some((name, value)) if name == "content-length" => {
                let n: usize = std::str::from_utf8(&value).unwrap().parse().unwrap();
                if bytes.len() < n {
                    return false;
                }
                bytes = &bytes[n..];
            }
            Some((_, value)) => {
                assert!(
                    last_element(&value).is_some_and(|c| c.eq_ignore_ascii_case(b"chunked")),
                    "forwarded a Transfer-Encoding not ending in chunked: {:?}",
                    String::from_utf8_lossy(&value)
                );
                // Chunked, as the proxy wrote it: `size CRLF data CRLF`, then `0 CRLF CRLF`.
                loop {
                    let Some(eol) = bytes.windows(2).position(|w| w == b"\r\n") else {
                        return false;
                    };
                    let size = std::str::from_utf8(&bytes[..eol]).unwrap();
                    let size = usize::from_str_radix(size, 16).expect("a plain hex size");
                    bytes = &bytes[eol + 2..];
                    if bytes.len() < size + 2 {
                        return false;
                    }
                    assert_eq!(&bytes[size..size + 2], b"\r\n");
                    bytes = &bytes[size + 2..];
                    if size == 0 {
                        break;
                    }
                }
            }
        }
    }
    true
}

/// Whether the request parser refuses the first head of `client` (if it has one).
fn head_refused(client: &[u8]) -> bool {
    let Some(end) = fields::head_end(client, 0) else {
        return false;
    };
    let mut fields = fields::field_storage();
    end > MAX_HEAD
        || parse::parse(&client[..end], &mut fields, 1 << 16, Codings::Forward, true).is_err()
}

/// Runs `data` (see the module docs) through the proxy.
pub(crate) fn check(data: &[u8]) {
    if data.len() < 4 {
        return;
    }
    let split = usize::from(u16::from_le_bytes([data[0], data[1]]));
    let step = usize::from(data[2] & 0x3f) + 1;
    let flags = data[3];
    let rest = &data[4..];
    let (client, upstream) = rest.split_at(split.min(rest.len()));

    let limits = Limits {
        max_head_bytes: MAX_HEAD,
        max_body_bytes: 1 << 16,
        ..Limits::default()
    };
    let shared = Shared::with_clock(limits, 1, false, Box::new(Frozen));
    let config = ProxyConfig {
        upstreams: vec![
            "127.0.0.1:8080".parse().unwrap(),
            "127.0.0.1:8081".parse().unwrap(),
        ],
        ..ProxyConfig::default()
    };
    let proxy = Arc::new(Proxy::new(config, 1));
    let mut mem = MemProxy::new(&shared, &proxy);
    if flags & 0x10 != 0 {
        mem.refused = vec![true, false];
    }

    let (mut client, mut upstream) = (client, upstream);
    let mut steps = 0;
    while steps < MAX_STEPS {
        steps += 1;
        if flags & 0x04 != 0 {
            mem.client_room = 300;
        }
        let mut fed = false;
        if !client.is_empty() {
            let n = step.min(client.len());
            mem.client_sends(&client[..n]);
            client = &client[n..];
            fed = true;
        }
        if let (false, Some(key)) = (upstream.is_empty(), mem.current_connection()) {
            let n = step.min(upstream.len());
            mem.upstream_sends(key, &upstream[..n]);
            upstream = &upstream[n..];
            fed = true;
        }
        mem.run();
        check_bounds(&mem);
        if !fed && mem.client_room != usize::MAX {
            mem.client_room = usize::MAX; // the slow client catches up
            mem.run();
            check_bounds(&mem);
            break;
        }
        if !fed {
            break;
        }
    }
    if flags & 0x01 != 0 {
        if let Some(key) = mem.current_connection() {
            mem.upstream_closes(key);
        }
    }
    if flags & 0x02 != 0 {
        mem.client_closes();
    }
    if flags & 0x08 != 0 {
        mem.upstream_timeout();
    }
    mem.client_room = usize::MAX;
    mem.run();
    check_bounds(&mem);

    let (whole_client, _) = data[4..].split_at(split.min(data.len() - 4));
    // Empty lines before the request line are ignored (RFC 9112 §2.2), as the
    // connection does before it parses a head: they are not part of it.
    let whole_client = &whole_client[parse::empty_lines(whole_client)..];
    let received: usize = mem.connections().map(|(_, up)| up.received.len()).sum();
    if plainly_ambiguous(whole_client) || head_refused(whole_client) {
        assert_eq!(received, 0, "forwarded part of a refused request");
    }
    for (_, up) in mem.connections() {
        let complete = check_forwarded(&up.received);
        assert!(
            complete || !up.idle,
            "a connection with a request cut short kept idle"
        );
    }
}

fn check_bounds(mem: &MemProxy<'_>) {
    // A head may be written whole past a copy buffer's size: the client's (rewritten,
    // so a little longer) and the upstream's.
    let heads = 2 * MAX_HEAD + 1024;
    assert!(
        mem.peak_copied <= 2 * COPY_BUF_SIZE + heads,
        "copy buffers: {}",
        mem.peak_copied
    );
    assert!(
        mem.peak_output <= WRITE_HIGH_WATER + COPY_BUF_SIZE + heads + 1024,
        "client output: {}",
        mem.peak_output
    );
}
