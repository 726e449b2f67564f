//! The demo's routes: what each request asks for, decided from its method and path.

use crate::http::parse::Method;

/// Largest `/bytes/{n}` served (1 GiB).
pub const MAX_BYTES: u64 = 1 << 30;

/// What a request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// `GET /`: "Hello, World!".
    Hello,
    /// `POST /echo`: the request body, streamed back.
    Echo,
    /// `GET /status/{code}`: an empty response with that status.
    Status(u16),
    /// `GET /bytes/{n}`: `n` bytes of `a..z`, streamed under backpressure.
    Bytes(u64),
    /// `GET /stats`: pool and server counters as JSON.
    Stats,
    /// An unknown path: 404.
    NotFound,
    /// A known path with the wrong method: 405 with this `Allow`.
    MethodNotAllowed(&'static str),
    /// A known path with a parameter out of range: 400 with this message.
    BadParameter(&'static str),
}

/// Routes a request.
///
/// # Examples
///
/// ```
/// use demo_server::app::{route, Route};
/// use demo_server::http::parse::Method;
///
/// assert_eq!(route(Method::Get, b"/bytes/10"), Route::Bytes(10));
/// assert_eq!(route(Method::Post, b"/"), Route::MethodNotAllowed("GET, HEAD"));
/// ```
pub fn route(method: Method, path: &[u8]) -> Route {
    const READ: &str = "GET, HEAD";
    let read = matches!(method, Method::Get | Method::Head);
    let only = |ok: bool, allow, route| {
        if ok {
            route
        } else {
            Route::MethodNotAllowed(allow)
        }
    };
    match path {
        b"/" => only(read, READ, Route::Hello),
        b"/echo" => only(method == Method::Post, "POST", Route::Echo),
        b"/stats" => only(read, READ, Route::Stats),
        _ => {
            if let Some(code) = path.strip_prefix(b"/status/") {
                return only(read, READ, status_param(code));
            }
            if let Some(n) = path.strip_prefix(b"/bytes/") {
                return only(read, READ, bytes_param(n));
            }
            Route::NotFound
        }
    }
}

fn number(digits: &[u8], max_digits: usize) -> Option<u64> {
    if digits.is_empty() || digits.len() > max_digits || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(digits.iter().fold(0, |n, &d| n * 10 + u64::from(d - b'0')))
}

fn status_param(code: &[u8]) -> Route {
    match number(code, 3) {
        // 1xx is not a final status: answering with one would leave the client waiting.
        Some(code @ 200..=999) => Route::Status(code as u16),
        _ => Route::BadParameter("status code must be in 200..=999\n"),
    }
}

fn bytes_param(n: &[u8]) -> Route {
    match number(n, 10) {
        Some(n) if n <= MAX_BYTES => Route::Bytes(n),
        _ => Route::BadParameter("byte count must be in 0..=1073741824\n"),
    }
}

/// `n` bytes of the `/bytes` body starting at `offset`: `a..z` repeating, so a client
/// can check every byte.
pub fn pattern(offset: u64, n: usize) -> &'static [u8] {
    let start = (offset % 26) as usize;
    &PATTERN[start..start + n.min(PATTERN_CHUNK)]
}

/// Most bytes [`pattern`] returns at once.
pub const PATTERN_CHUNK: usize = 16 * 1024;

static PATTERN: [u8; PATTERN_CHUNK + 26] = {
    let mut bytes = [0u8; PATTERN_CHUNK + 26];
    let mut i = 0;
    while i < bytes.len() {
        bytes[i] = b'a' + (i % 26) as u8;
        i += 1;
    }
    bytes
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route(Method::Get, b"/"), Route::Hello);
        assert_eq!(route(Method::Head, b"/"), Route::Hello);
        assert_eq!(route(Method::Post, b"/echo"), Route::Echo);
        assert_eq!(
            route(Method::Get, b"/echo"),
            Route::MethodNotAllowed("POST")
        );
        assert_eq!(route(Method::Get, b"/status/418"), Route::Status(418));
        assert!(matches!(
            route(Method::Get, b"/status/100"),
            Route::BadParameter(_)
        ));
        assert!(matches!(
            route(Method::Get, b"/status/1000"),
            Route::BadParameter(_)
        ));
        assert!(matches!(
            route(Method::Get, b"/status/"),
            Route::BadParameter(_)
        ));
        assert_eq!(route(Method::Get, b"/bytes/0"), Route::Bytes(0));
        assert!(matches!(
            route(Method::Get, b"/bytes/99999999999"),
            Route::BadParameter(_)
        ));
        assert!(matches!(
            route(Method::Get, b"/bytes/-1"),
            Route::BadParameter(_)
        ));
        assert_eq!(
            route(Method::Other, b"/stats"),
            Route::MethodNotAllowed("GET, HEAD")
        );
        assert_eq!(route(Method::Get, b"/nope"), Route::NotFound);
    }

    #[test]
    fn pattern_is_continuous() {
        let mut body = Vec::new();
        let mut offset = 0u64;
        while body.len() < 100_000 {
            let piece = pattern(offset, 7_777);
            body.extend_from_slice(piece);
            offset += piece.len() as u64;
        }
        assert!(
            body.iter()
                .enumerate()
                .all(|(i, &b)| b == b'a' + (i % 26) as u8)
        );
    }
}
