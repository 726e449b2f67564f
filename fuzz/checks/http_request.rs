//! `http_request`: arbitrary bytes, split at arbitrary points, through the demo
//! server's connection state machine.
//!
//! Input layout: the first 4 bytes choose the sizes of the pieces the rest is fed in
//! (1 to 64 bytes each, cycling); the rest is what a client sends.
//!
//! Properties:
//! - never panics;
//! - no output before a complete request head (or before the head limit is passed);
//! - however the input is split, the output is the same (but for the chunk boundaries
//!   of a re-chunked echo);
//! - every output starts with a valid status line (100..=599, RFC 9110 §15);
//! - a success (2xx) is produced only for a request whose head is valid HTTP;
//! - memory held stays under the limits: the read buffer never holds more than the
//!   head limit plus one piece (plus one byte), the write buffer never more than the high-water mark
//!   plus one produced block;
//! - once the connection is done, it produces nothing more.
//!
//! Shared by `fuzz_targets/http_request.rs` and the corpus replay in
//! `demo-server/tests/fuzz_replay.rs`.

use std::time::{Duration, SystemTime};

use demo_server::app::App;
use demo_server::http::conn::{Conn, WRITE_HIGH_WATER};
use demo_server::state::{Limits, Shared};
use recycle_pool::io::{ReadBuf, WriteBuf};
use recycle_pool::status::Clock;

struct Frozen;
impl Clock for Frozen {
    fn now(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }
}

const MAX_HEAD: usize = 2048;

/// Whether `bytes` hold the end of a request head.
fn has_head_end(bytes: &[u8]) -> bool {
    bytes.windows(2).any(|w| w == b"\n\n") || bytes.windows(3).any(|w| w == b"\n\r\n")
}

/// What one run over the input gave.
struct Run {
    output: Vec<u8>,
    done: bool,
    /// Stopped early: a long stream of valid pipelined requests, enough checked.
    cut: bool,
}

/// Feeds `input` to a fresh connection in pieces of the sizes `sizes` gives, checking
/// the properties that hold at every step.
fn run(input: &[u8], mut sizes: impl Iterator<Item = usize>) -> Run {
    let limits = Limits {
        max_head_bytes: MAX_HEAD,
        max_body_bytes: 4096,
        ..Limits::default()
    };
    let shared = Shared::with_clock(limits, 1, false, Box::new(Frozen));
    let mut ctx = shared.context(0);
    let mut conn = Conn::new(App::new(&shared));
    let mut rbuf = ReadBuf::with_capacity(256);
    let mut wbuf = WriteBuf::with_capacity(256);
    let mut output = Vec::new();
    let mut fed = 0;

    while fed < input.len() && conn.wants_input(wbuf.len()) {
        let size = sizes.next().unwrap_or(input.len());
        let piece = &input[fed..(fed + size).min(input.len())];
        fed += piece.len();
        rbuf.extend_from_slice(piece);
        loop {
            conn.process(&mut rbuf, &mut wbuf, &mut ctx, &mut ());
            assert!(
                rbuf.len() <= MAX_HEAD + size.min(input.len()) + 1,
                "read buffer over the limit: {}",
                rbuf.len()
            );
            assert!(
                wbuf.len() <= WRITE_HIGH_WATER + 32 * 1024,
                "write buffer over the limit"
            );
            if wbuf.is_empty() {
                break;
            }
            if output.is_empty() {
                let seen = &input[..fed];
                assert!(
                    has_head_end(seen) || fed > MAX_HEAD,
                    "output before a complete head: {:?}",
                    String::from_utf8_lossy(seen)
                );
            }
            wbuf.flush_to(&mut output).unwrap();
            if output.len() > 8 << 20 {
                return Run {
                    output,
                    done: conn.is_done(),
                    cut: true,
                };
            }
        }
    }
    if conn.is_done() {
        let before = output.len();
        rbuf.extend_from_slice(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        conn.process(&mut rbuf, &mut wbuf, &mut ctx, &mut ());
        wbuf.flush_to(&mut output).unwrap();
        assert_eq!(output.len(), before, "output after the connection was done");
    }
    Run {
        output,
        done: conn.is_done(),
        cut: false,
    }
}

pub(crate) fn check(data: &[u8]) {
    let (control, input) = data.split_at(data.len().min(4));
    let sizes = control.iter().map(|&c| 1 + usize::from(c % 64)).cycle();
    let pieces = run(input, sizes);
    let whole = run(input, std::iter::once(input.len()));

    // However the bytes are split, the same bytes out: decisions come from the bytes,
    // not from how they arrived (a re-chunked echo is the one exception: its chunks
    // are the pieces that arrived).
    let rechunked = |out: &[u8]| out.windows(26).any(|w| w == b"Transfer-Encoding: chunked");
    if !pieces.cut && !whole.cut && !rechunked(&pieces.output) && !rechunked(&whole.output) {
        assert!(
            pieces.output == whole.output && pieces.done == whole.done,
            "the split changed the response:\n{:?}\n{:?}",
            String::from_utf8_lossy(&pieces.output[..pieces.output.len().min(300)]),
            String::from_utf8_lossy(&whole.output[..whole.output.len().min(300)])
        );
    }

    let output = pieces.output;
    if output.is_empty() {
        return;
    }
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(&output) {
        Ok(_) => {}
        Err(e) => panic!(
            "invalid response head ({e}): {:?}",
            String::from_utf8_lossy(&output[..output.len().min(200)])
        ),
    }
    let status = response.code.expect("a status code");
    assert!((100..=599).contains(&status), "RFC 9110 §15: {status}");
    assert!(output.starts_with(b"HTTP/1.1 ") || output.starts_with(b"HTTP/1.0 "));
    if (200..300).contains(&status) {
        let mut headers = [httparse::EMPTY_HEADER; 128];
        let mut request = httparse::Request::new(&mut headers);
        assert!(
            matches!(request.parse(input), Ok(httparse::Status::Complete(_))),
            "success for an invalid request: {:?}",
            String::from_utf8_lossy(&input[..input.len().min(200)])
        );
    }
}
