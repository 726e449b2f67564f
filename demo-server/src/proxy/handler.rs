//! The pairing of a client connection with an upstream one: [`ProxyHandler`], the
//! [`Handler`] of each client connection of `demo-server proxy`, and [`ProxyLocal`],
//! the state its event loop lends it.
//!
//! Sans-I/O, like [`Conn`](crate::http::conn::Conn) itself: the handler rewrites the
//! request head into an output buffer, streams the request body after it, parses the
//! response from an input buffer and streams its body into the client's
//! [`Response`]; a driver (the event loop's `server/upstream_io.rs`, or
//! [`mem`](super::mem) in tests, benchmarks and fuzzing) moves bytes between those
//! buffers and sockets as [`ProxyHandler`] describes.
//!
//! The rules of one exchange (its steps, its errors and what each costs the upstream's
//! health, retries, the upstream timeout, and the memory an exchange holds) are
//! written out in `docs/design.md`, "The proxy's exchange"; the items below state the
//! part each enforces.

use std::net::IpAddr;
use std::ops::Range;
use std::time::Instant;

use recycle_pool::status::Version;

pub use super::config::{DEFAULT_TUNNEL_IDLE_TIMEOUT, MAX_UPSTREAM_IDLE, Proxy, ProxyConfig};
use super::headers::{self, Disposition};
pub use super::local::{ProxyLocal, Released};
use super::upstream::{Event, Exchange};
use crate::http::conn::{Handler, Response};
use crate::http::encode;
use crate::http::fields;
use crate::http::parse::{Codings, Request, RequestFraming};
use crate::http::response::{self, Parsed, ResponseBodyReader, ResponseFraming};

/// Size of a copy buffer: 32 KiB, as Go's `ReverseProxy` and `io.Copy`.
pub const COPY_BUF_SIZE: usize = recycle_pool::io::COPY_BUF_SIZE;

/// Most bytes of an upstream response head (its interim heads each count alone); past
/// it, 502. Half a copy buffer, so a head never fills the input buffer.
pub const MAX_RESPONSE_HEAD: usize = COPY_BUF_SIZE / 2;

/// Most interim (1xx) responses before the final one; past it, 502. Go's transport
/// allows 5; a few more leave room for several `103 Early Hints`.
pub const MAX_INTERIM: usize = 8;

/// Most ended exchange states a worker keeps for reuse (some 200 bytes each, no
/// buffer): its peak number of exchanges in progress, up to this. A worker with more in
/// progress at once allocates (and frees) the states past it.
const MAX_SPARE: usize = 1024;

/// Longest whole request (its head and any body) kept in the exchange's own state rather
/// than in a copy buffer, written from there and kept for a retry (see
/// "Memory per connection pair" in `docs/design.md`). Below a page, so it never costs more than
/// the buffer page it frees; the most each spare exchange state keeps allocated for it.
const REPLAY_MAX: usize = 2048;

/// Bytes a chunk's framing may add to its data (a 16-digit size, two CRLFs), plus the
/// last chunk: room kept free in the output buffer for them.
const CHUNK_RESERVE: usize = 20 + encode::LAST_CHUNK.len();

/// The spare exchange states of an event loop.
impl ProxyLocal {
    /// An exchange state for a request: a spare one, or (while the worker's peak of
    /// exchanges in progress is still rising) a new one.
    pub(super) fn take_exchange(&mut self) -> Box<Forward> {
        self.spare.pop().unwrap_or_else(|| Box::new(Forward::new()))
    }

    /// Keeps an ended exchange's state for the next request, up to [`MAX_SPARE`].
    pub(super) fn put_exchange(&mut self, exchange: Box<Forward>) {
        debug_assert!(
            exchange.stage == Stage::Ended
                && exchange.out.capacity() == 0
                && exchange.from_upstream.capacity() == 0
        );
        debug_assert!(exchange.replay.is_empty());
        if self.spare.len() < MAX_SPARE {
            self.spare.push(exchange);
        }
    }
}

/// Why an attempt on an upstream connection failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The connection could not be made: the upstream refused it, or could not be
    /// reached.
    Refused,
    /// The proxy could not open a connection for a reason of its own (out of file
    /// descriptors, socket buffers or local ports): no mark against the upstream.
    Local,
    /// The connection was reset, or a read or write on it failed.
    Reset,
    /// The upstream closed the connection.
    Closed,
    /// No response head (or no more of the body) within the upstream timeout.
    Timeout,
    /// The response was malformed, framed ambiguously, or a tunnel.
    Malformed,
}

/// The method, as far as the response's framing depends on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Method {
    Head,
    Connect,
    Other,
}

impl Method {
    /// As `response::parse` takes it.
    fn as_bytes(self) -> &'static [u8] {
        match self {
            Method::Head => b"HEAD",
            Method::Connect => b"CONNECT",
            Method::Other => b"GET",
        }
    }
}

/// A list of protocols from `Upgrade` fields (RFC 9110 §7.8: `protocol-name
/// ["/" protocol-version]`, comma-separated), joined into one, of at most 63 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Protocols {
    len: u8,
    bytes: [u8; 63],
}

impl Protocols {
    const NONE: Protocols = Protocols {
        len: 0,
        bytes: [0; 63],
    };

    /// The protocols the `Upgrade` fields among `fields` list, each once as sent:
    /// `None` if there are none, or more than fit (a proxy may ignore an `Upgrade`,
    /// RFC 9110 §7.8, and this one ignores a longer list than any protocol needs).
    fn from_fields(fields: &[httparse::Header<'_>]) -> Option<Protocols> {
        let mut list = Protocols::NONE;
        let upgrade = fields
            .iter()
            .filter(|f| f.name.eq_ignore_ascii_case("upgrade"));
        for protocol in upgrade.flat_map(|f| fields::tokens(f.value)) {
            if protocol.is_empty() {
                continue;
            }
            let sep: &[u8] = if list.len == 0 { b"" } else { b", " };
            let (start, end) = (usize::from(list.len), usize::from(list.len) + sep.len());
            let slot = list.bytes.get_mut(start..end + protocol.len())?;
            slot[..sep.len()].copy_from_slice(sep);
            slot[sep.len()..].copy_from_slice(protocol);
            list.len = u8::try_from(end + protocol.len()).ok()?;
        }
        (list.len > 0).then_some(list)
    }

    /// What the client of `req` asks to switch to, if the proxy forwards the ask: an
    /// HTTP/1.1 request (RFC 9110 §7.8: `Upgrade` in an HTTP/1.0 request is
    /// ignored) without a body (the bytes after the head would be the body's and the
    /// new protocol's at once: the proxy ignores `Upgrade` then, as §7.8 allows), not
    /// suspect, whose `Connection` lists `upgrade` and whose `Upgrade` lists at least
    /// one protocol.
    fn asked(req: &Request<'_>) -> Option<Protocols> {
        let head = &req.head;
        if !head.upgrade
            || head.version != Version::Http11
            || head.framing.has_body()
            || head.suspect
        {
            return None;
        }
        Protocols::from_fields(req.headers)
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// Whether every protocol of `chosen` is in this list, in any case: a server must
    /// not switch to a protocol the client did not ask for (RFC 9110 §7.8).
    fn allows(&self, chosen: &Protocols) -> bool {
        fields::tokens(chosen.as_bytes())
            .all(|p| fields::tokens(self.as_bytes()).any(|a| a.eq_ignore_ascii_case(p)))
    }
}

/// The exchange as a whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// No exchange: the state sits in the worker's spares (or is about to). → `Running`
    /// when a request is forwarded.
    Ended,
    /// A request is being forwarded. → `Failed` on a failure that is not retried;
    /// `Ended` when the response ended ([`Forward::finish`]) or the client went away
    /// ([`Forward::on_abort`]).
    Running,
    /// The exchange failed: what the client gets, at the next `poll_response`, which
    /// then ends the exchange. No byte moves meanwhile.
    Failed(Outcome),
}

/// What the client gets when the exchange failed, at the next `poll_response`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// A status of the proxy's own (if the response has not started).
    Status(u16),
    /// The response is cut off.
    Cut,
}

/// Which connection an exchange asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Want {
    /// An idle one will do (the first attempt).
    Any,
    /// A new one (a retry: an idle one may be as stale as the one that failed).
    New,
}

/// The upstream connection of the current attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Link {
    /// None: the exchange ended, failed, or let its connection go. → `Wanted` when a
    /// request starts an exchange.
    None,
    /// The exchange asks the driver for a connection to its upstream. → `Connecting`
    /// or `Open` at [`attach`](Forward::attach); `None` if it cannot be made.
    Wanted(Want),
    /// A new connection (driver's key `key`), not made yet: nothing is written to it.
    /// → `Open` once [`connected`](Forward::connected); `None` if it fails.
    Connecting { key: usize },
    /// A connection that is made: taken from the idle set (`reused`) or opened for this
    /// attempt. → `None` when released or closed; a failure on it may start a new
    /// attempt (`Wanted(New)`).
    Open { key: usize, reused: bool },
}

impl Link {
    /// The driver's key of the connection attached, if one is.
    fn key(self) -> Option<usize> {
        match self {
            Link::Connecting { key } | Link::Open { key, .. } => Some(key),
            Link::None | Link::Wanted(_) => None,
        }
    }
}

/// One direction of a tunnel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flow {
    /// Bytes pass. → `Ending` at the sender's end of stream.
    Open,
    /// The sender ended its side: the bytes before its end are still being passed on.
    /// → `Ended` once they were, and the end was passed on (`shutdown(Write)`).
    Ending,
    /// The end was passed on. Final.
    Ended,
}

/// The request body, as far as the client sent it into the output buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Body {
    /// The request has none: it is whole with its head. Final.
    Absent,
    /// Raw bytes of a `Content-Length` body are still to come. → `Whole` at its end.
    Raw,
    /// Chunks are still to come (the last chunk is written at the end). → `Whole`.
    Chunked,
    /// All of it came (and its last chunk was written). Final but for `Tunnel`.
    Whole,
    /// The upstream switched protocols: the client's bytes go to it raw, as a tunnel
    /// (`Flow`: the client's end of stream goes on as `shutdown(Write)`). The
    /// exchange ends when both directions ended ([`Reading::Tunnel`]).
    Tunnel(Flow),
}

impl Body {
    /// Whether the request is all in the proxy's hands (written or still to write).
    fn is_whole(self) -> bool {
        matches!(self, Body::Absent | Body::Whole)
    }
}

/// How far an attempt's writing of the request got, as far as a retry depends on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sent {
    /// Nothing written yet (the connection is being chosen or made). → `Held` at the
    /// first byte written.
    Nothing,
    /// Bytes written, and every byte since the head is still held (in `out` or
    /// `replay`): a retry can resend the request. → `LetGo` once written bytes are
    /// dropped (to make room for more body, or with the output buffer).
    Held,
    /// Written bytes were let go: no retry can resend the request. Final for the
    /// exchange.
    LetGo,
}

/// The request side of an attempt: whether the upstream still takes the request, and
/// how far it got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Writing {
    /// The request is written as the upstream takes it. → `Stopped` when a write
    /// fails.
    Open(Sent),
    /// A write failed: the upstream stopped taking the request (it answered early and
    /// closed over an upload it will not read, or it reset). Nothing more is written
    /// and the connection is not reused; the read that follows decides between an
    /// answer (delivered) and a failed attempt (retried as [`Sent`] allows).
    Stopped(Sent),
}

impl Writing {
    /// How far the attempt's writing got.
    fn sent(self) -> Sent {
        match self {
            Writing::Open(sent) | Writing::Stopped(sent) => sent,
        }
    }

    fn is_open(self) -> bool {
        matches!(self, Writing::Open(_))
    }

    /// A byte was written.
    fn wrote(&mut self) {
        if *self == Writing::Open(Sent::Nothing) {
            *self = Writing::Open(Sent::Held);
        }
    }

    /// Written bytes were dropped: no retry can resend the request.
    fn let_go(&mut self) {
        match self {
            Writing::Open(sent) | Writing::Stopped(sent) => *sent = Sent::LetGo,
        }
    }
}

/// The response side of an attempt: where the upstream's response is.
#[derive(Clone, Debug)]
enum Reading {
    /// No byte of a response in this attempt yet: a failure now may be retried. →
    /// `Head` at the first byte received.
    Awaiting,
    /// A head is arriving: `scanned` bytes of the input were searched for its end,
    /// after `interims` interim heads passed on. A failure now is the proxy's own
    /// status (502, 504), never retried. → `Body` once the final head went to the
    /// client.
    Head { scanned: usize, interims: usize },
    /// The final head went to the client (`keep_alive`: it allows another request on
    /// the connection), and its body is copied. A failure now cuts the response off.
    /// The exchange ends with the body.
    Body {
        reader: ResponseBodyReader,
        keep_alive: bool,
    },
    /// The final head was a `101 Switching Protocols`, passed on: the connection is a
    /// tunnel, and the upstream's bytes go to the client raw (`Flow`: its end of
    /// stream goes on as the client's, [`End::Closed`] marking its arrival). Never
    /// retried, never reused; a failure (a reset, the idle timeout) ends the tunnel.
    /// The exchange ends when both directions ended ([`Body::Tunnel`]).
    Tunnel(Flow),
}

/// The upstream's side of the connection, once a response byte arrived (before that,
/// an end is a failed attempt at once, and this stays `Open`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    /// Open: more may come. → `Closed` or `Reset`.
    Open,
    /// The upstream closed its side: what was read is parsed, then the end decides
    /// (the end of a close-delimited body, or a truncated response).
    Closed,
    /// The connection was reset: what was read before it is delivered if it completes
    /// the response (an early answer to an upload); the connection is not reused.
    Reset,
}

/// The upstream side of one exchange: what a [`ProxyHandler`] holds only while an
/// exchange is in progress (see "Memory per connection pair" in `docs/design.md`).
///
/// Its state is a few enums, one per side, as hyper's `Conn` keeps `reading` and
/// `writing`: [`Stage`] (the exchange), [`Link`] (the connection), [`Body`] and
/// [`Writing`] (the request side), [`Reading`] and [`End`] (the response side). Each
/// variant says which transitions lead out of it.
#[derive(Debug)]
pub(super) struct Forward {
    stage: Stage,
    link: Link,
    upstream: usize,
    attempts: u8,
    deadline: Option<Instant>,
    // What the request asked, fixed for the exchange.
    version: Version,
    method: Method,
    /// The protocols the client asked to switch to, if the request was forwarded with
    /// `Upgrade` (then a `101` may switch protocols); empty if not. Apart from
    /// `method`: a `HEAD` may ask too, and its answer still has no body.
    asked: Protocols,
    idempotent: bool,
    /// The proxy sent `Connection: close` upstream.
    close_upstream: bool,

    // === the request side ===
    body: Body,
    writing: Writing,
    /// Bytes for the upstream: `out[sent..]` is still to write. A copy buffer only while
    /// there is something to write (or it keeps the request for a retry); empty, with
    /// no capacity, otherwise.
    out: Vec<u8>,
    sent: usize,
    /// The request, when it is whole and at most [`REPLAY_MAX`] long: written from here
    /// instead of `out`, and kept for a retry (empty otherwise; its capacity stays with
    /// the state).
    replay: Vec<u8>,
    /// Where `out` holds the `Host` value written for a request without one (the
    /// upstream's address), to rewrite on a retry elsewhere.
    fallback_host: Option<Range<usize>>,

    // === the response side ===
    reading: Reading,
    end: End,
    /// Bytes from the upstream: `from_upstream[consumed..]` is still to parse. A copy
    /// buffer only from a read to the moment it is used up; empty, with no capacity,
    /// otherwise.
    from_upstream: Vec<u8>,
    consumed: usize,
    /// Backpressure, not a phase: the input holds bytes the client's output had no room
    /// for (or that arrived since `respond` last ran), so the exchange waits on the
    /// client.
    client_full: bool,
}

impl Forward {
    const fn new() -> Self {
        Self {
            stage: Stage::Ended,
            link: Link::None,
            upstream: 0,
            attempts: 0,
            deadline: None,
            version: Version::Http11,
            method: Method::Other,
            asked: Protocols::NONE,
            idempotent: false,
            close_upstream: false,
            body: Body::Absent,
            writing: Writing::Open(Sent::Nothing),
            out: Vec::new(),
            sent: 0,
            replay: Vec::new(),
            fallback_host: None,
            reading: Reading::Awaiting,
            end: End::Open,
            from_upstream: Vec::new(),
            consumed: 0,
            client_full: false,
        }
    }

    /// Whether a byte of a response arrived in this attempt.
    fn responded(&self) -> bool {
        !matches!(self.reading, Reading::Awaiting)
    }

    // === the driver's side ===

    fn wants_connection(&self) -> Option<(usize, bool)> {
        match self.link {
            Link::Wanted(want) => Some((self.upstream, want == Want::Any)),
            _ => None,
        }
    }

    fn attach(&mut self, key: usize, reused: bool, local: &mut ProxyLocal) {
        debug_assert!(matches!(self.link, Link::Wanted(_)));
        if reused {
            self.link = Link::Open { key, reused };
            local.count(self.upstream, Event::Reused);
        } else {
            self.link = Link::Connecting { key };
        }
    }

    fn connected(&mut self, local: &mut ProxyLocal) {
        if let Link::Connecting { key } = self.link {
            self.link = Link::Open { key, reused: false };
            local.count(self.upstream, Event::Opened);
        }
    }

    fn connection(&self) -> Option<usize> {
        self.link.key()
    }

    fn to_send(&self) -> &[u8] {
        if self.link.key().is_none() || !self.writing.is_open() {
            return &[];
        }
        &self.request()[self.sent..]
    }

    fn sent(&mut self, n: usize, local: &mut ProxyLocal) {
        self.sent += n;
        if n > 0 {
            self.writing.wrote();
        }
        match self.body {
            Body::Absent => {}
            Body::Tunnel(_) => self.arm_tunnel(local),
            _ => self.arm(local), // the upstream is taking the body: it is alive
        }
        self.settle_out(local);
    }

    fn input_room(&self) -> usize {
        if self.link.key().is_none() || self.stage != Stage::Running || self.end != End::Open {
            return 0;
        }
        COPY_BUF_SIZE.saturating_sub(self.from_upstream.len())
    }

    fn input(&mut self, local: &ProxyLocal) -> &mut Vec<u8> {
        if self.from_upstream.capacity() == 0 {
            self.from_upstream = local.proxy.buffers().get();
            self.from_upstream.clear();
        }
        if self.from_upstream.capacity() < COPY_BUF_SIZE {
            self.from_upstream
                .reserve_exact(COPY_BUF_SIZE - self.from_upstream.len());
        }
        &mut self.from_upstream
    }

    fn received(&mut self, n: usize, local: &mut ProxyLocal) {
        if n > 0 && !self.responded() {
            self.reading = Reading::Head {
                scanned: 0,
                interims: 0,
            };
        }
        if matches!(self.reading, Reading::Body { .. }) {
            self.arm(local); // bytes of a head do not extend the time it may take
        }
        // Until `respond` passes them on: the connection does not ask for the response
        // while the client's output is past its high-water mark, and then the exchange
        // waits on the client, whatever the bytes are.
        self.client_full |= n > 0;
        self.settle_out(local); // a response began: no retry will need the request
    }

    fn read_blocked(&mut self, local: &mut ProxyLocal) {
        self.settle_inp(local);
        self.reset_if_stopped(); // a reset that left nothing to read
        if !self.writing.is_open() && !self.responded() {
            // The write failed and the connection holds no answer: a failed attempt.
            self.fail(local, Failure::Reset);
        }
    }

    fn connect_failed(&mut self, local: &mut ProxyLocal) {
        self.fail(local, Failure::Refused);
    }

    fn connect_failed_locally(&mut self, local: &mut ProxyLocal) {
        self.fail(local, Failure::Local);
    }

    fn write_failed(&mut self) {
        // Write no more. What the upstream sent before it stopped reading (an early
        // answer to an upload it will not read) sits in the socket ahead of the reset,
        // so nothing is decided here: the driver reads next, and the read says whether a
        // response came (`respond` delivers it) or not (`read_failed`, `upstream_closed`
        // or `read_blocked` fail the attempt).
        self.writing = Writing::Stopped(self.writing.sent());
        // In a tunnel there is no answer to wait for: the upstream is gone (a reset;
        // Linux reports it once, to this write, and the next read finds the end of
        // stream). The bytes it sent before still go to the client, then the tunnel
        // ends (`relay`), both connections closed: at once if its end was read
        // already, else at the end the next read finds (`upstream_closed`,
        // `read_blocked`).
        if self.end == End::Closed {
            self.reset_if_stopped();
        }
    }

    /// In a tunnel whose write failed, an end of the upstream's bytes is a reset: the
    /// client's direction cannot go on.
    fn reset_if_stopped(&mut self) {
        if matches!(self.reading, Reading::Tunnel(_)) && !self.writing.is_open() {
            self.end = End::Reset;
        }
    }

    fn read_failed(&mut self, local: &mut ProxyLocal) {
        if self.responded() {
            // The bytes read before the reset may hold the rest of the response (the
            // kernel delivers them first: an upstream that answers early and closes
            // with request bytes unread resets the connection): `respond` parses and
            // passes them on, then decides.
            self.end = End::Reset;
        } else {
            self.fail(local, Failure::Reset);
        }
    }

    fn upstream_closed(&mut self, local: &mut ProxyLocal) {
        if self.responded() {
            self.end = End::Closed; // `poll_response` reads what is left, then decides
            self.reset_if_stopped();
        } else {
            self.fail(local, Failure::Closed);
        }
    }

    fn deadline(&self) -> Option<Instant> {
        if self.stage != Stage::Running {
            return None;
        }
        if matches!(self.reading, Reading::Tunnel(_)) {
            return self.deadline; // idle both ways, whichever side is slow
        }
        if self.waits_on_client() {
            return None;
        }
        self.deadline
    }

    fn wants_write_shutdown(&self) -> bool {
        self.body == Body::Tunnel(Flow::Ending)
            && self.link.key().is_some()
            && self.writing.is_open()
            && self.sent == self.request().len()
    }

    fn write_shut(&mut self) {
        if self.body == Body::Tunnel(Flow::Ending) {
            self.body = Body::Tunnel(Flow::Ended);
        }
    }

    /// Whether the exchange waits on the client rather than on the upstream: for more
    /// of the request body (the upstream has all there was, and may be waiting for the
    /// rest), or for the client to read the response (the input buffer is full, or
    /// holds bytes, of a head or a body, that the client's output had no room for:
    /// the upstream may owe nothing more).
    fn waits_on_client(&self) -> bool {
        let for_body =
            !self.body.is_whole() && self.sent == self.request().len() && self.writing.is_open();
        let for_reader = self.client_full
            || (matches!(self.reading, Reading::Body { .. }) && self.input_room() == 0);
        for_body || for_reader
    }

    fn timed_out(&mut self, local: &mut ProxyLocal) {
        self.fail(local, Failure::Timeout);
    }

    fn buffered(&self) -> usize {
        (self.request().len() - self.sent) + (self.from_upstream.len() - self.consumed)
    }

    // === the exchange ===

    /// Starts the upstream timeout again: progress was made.
    fn arm(&mut self, local: &ProxyLocal) {
        self.deadline = Some(local.now + local.proxy.config.upstream_timeout);
    }

    /// Starts a tunnel's idle timeout again: a byte moved.
    fn arm_tunnel(&mut self, local: &ProxyLocal) {
        self.deadline = Some(local.now + local.proxy.config.tunnel_idle_timeout);
    }

    /// An attempt failed with `failure`: close its connection; retry, answer with a
    /// status, or cut the response off.
    fn fail(&mut self, local: &mut ProxyLocal, failure: Failure) {
        if self.stage != Stage::Running {
            return;
        }
        let link = std::mem::replace(&mut self.link, Link::None);
        if let Some(key) = link.key() {
            local.discard(self.upstream, key);
        }
        if !matches!(link, Link::Open { .. }) {
            local.count(self.upstream, Event::ConnectFailed);
        }
        if let Reading::Tunnel(_) = self.reading {
            local.count(self.upstream, Event::TunnelClosed);
        }
        if matches!(self.reading, Reading::Body { .. } | Reading::Tunnel(_)) {
            // The response started (or the tunnel): it can only be cut off.
            self.stage = Stage::Failed(Outcome::Cut);
            return;
        }
        // A pooled connection that failed before any response byte was closed by the
        // upstream while idle: no mark against its health. Nor is a local error.
        let stale = matches!(link, Link::Open { reused: true, .. })
            && !self.responded()
            && matches!(failure, Failure::Reset | Failure::Closed);
        if !stale && failure != Failure::Local {
            local
                .proxy
                .upstreams
                .record_failure(local.index, self.upstream, local.now);
        }
        // The retry rules ("Retries" in docs/design.md).
        let retry = self.may_retry()
            && !matches!(
                failure,
                Failure::Timeout | Failure::Malformed | Failure::Local
            );
        if retry {
            self.retry(stale, local);
        } else {
            let status = if failure == Failure::Timeout {
                504
            } else {
                502
            };
            self.stage = Stage::Failed(Outcome::Status(status));
        }
    }

    /// Starts a new attempt on a new connection: to the same upstream after a `stale`
    /// pooled connection (the upstream itself is fine), to the next one up otherwise
    /// (502 if there is none).
    fn retry(&mut self, stale: bool, local: &mut ProxyLocal) {
        let failed = self.upstream;
        if !stale {
            let Some(upstream) = local.proxy.upstreams.select(&mut local.cursor, local.now) else {
                self.stage = Stage::Failed(Outcome::Status(502));
                return;
            };
            self.retarget(upstream, local);
        }
        local.count(failed, Event::Retried);
        self.attempts += 1;
        self.sent = 0;
        self.writing = Writing::Open(Sent::Nothing);
        self.put_inp(local);
        self.reading = Reading::Awaiting;
        self.end = End::Open;
        self.link = Link::Wanted(Want::New);
        self.arm(local);
    }

    /// Sends the request to `upstream` instead (a retry): a `Host` that was the
    /// previous upstream's address becomes this one's.
    fn retarget(&mut self, upstream: usize, local: &ProxyLocal) {
        if upstream != self.upstream {
            if let Some(range) = self.fallback_host.take() {
                let name = local.proxy.upstreams.name(upstream).as_bytes();
                let start = range.start;
                let request = if self.out.capacity() > 0 {
                    &mut self.out
                } else {
                    &mut self.replay
                };
                request.splice(range, name.iter().copied());
                self.fallback_host = Some(start..start + name.len());
            }
        }
        self.upstream = upstream;
    }

    /// Ends the exchange: the connection is released (clean or not), the buffers go
    /// back.
    fn finish(&mut self, local: &mut ProxyLocal) {
        if let Some(key) = self.link.key() {
            let (response_read, keep_alive) = match &self.reading {
                Reading::Body { reader, keep_alive } => (
                    reader.is_done()
                        && self.consumed == self.from_upstream.len()
                        && self.end == End::Open,
                    *keep_alive,
                ),
                Reading::Tunnel(_) => {
                    tunnel_closed(local, self.upstream);
                    (false, false)
                }
                Reading::Awaiting | Reading::Head { .. } => (false, false),
            };
            let exchange = Exchange {
                request_sent: self.body.is_whole()
                    && self.sent == self.request().len()
                    && self.writing.is_open(),
                response_read,
                keep_alive: keep_alive && !self.close_upstream,
            };
            local.released.push(Released {
                key,
                upstream: self.upstream,
                exchange,
            });
        }
        self.link = Link::None;
        self.drop_buffers(local);
        self.stage = Stage::Ended;
        self.deadline = None;
    }

    fn drop_buffers(&mut self, local: &ProxyLocal) {
        self.put_out(local);
        self.put_inp(local);
        self.replay.clear();
    }

    // === the copy buffers: held only while they have bytes to move ===

    /// Takes an output buffer, unless one is held.
    fn take_out(&mut self, local: &ProxyLocal) {
        if self.out.capacity() == 0 {
            self.out = local.proxy.buffers().get();
            self.out.clear();
        }
    }

    /// Gives the output buffer back (if one is held).
    fn put_out(&mut self, local: &ProxyLocal) {
        if self.out.capacity() > 0 {
            local.proxy.buffers().put(std::mem::take(&mut self.out));
        }
        self.sent = 0;
    }

    /// Gives the input buffer back (if one is held), with whatever is left in it.
    fn put_inp(&mut self, local: &ProxyLocal) {
        if self.from_upstream.capacity() > 0 {
            local
                .proxy
                .buffers()
                .put(std::mem::take(&mut self.from_upstream));
        }
        self.consumed = 0;
    }

    /// Gives the input buffer back if it holds nothing (the exchange waits for the
    /// upstream again).
    fn settle_inp(&mut self, local: &ProxyLocal) {
        if self.from_upstream.is_empty() {
            self.put_inp(local);
        }
    }

    /// Whether a failed attempt may be retried, as far as the request goes (the
    /// "Retries" rules of `docs/design.md`; the failure's kind decides the rest).
    fn may_retry(&self) -> bool {
        self.attempts == 1
            && !self.responded()
            && match self.writing.sent() {
                Sent::Nothing => true,
                Sent::Held => self.idempotent,
                Sent::LetGo => false,
            }
    }

    /// The request bytes being sent: `out[sent..]` or `replay[sent..]` is still to write.
    fn request(&self) -> &[u8] {
        if self.out.capacity() > 0 {
            &self.out
        } else {
            &self.replay
        }
    }

    /// Gives the output buffer back as soon as it is not needed: a request that is whole
    /// and at most [`REPLAY_MAX`] long moves to `replay` (to be written from there, and
    /// kept for a retry); otherwise the buffer goes once all of it was written, unless a
    /// retry may need the request from it (then once a response byte arrives). `replay`
    /// is emptied once written and no retry may need it.
    fn settle_out(&mut self, local: &ProxyLocal) {
        let may_retry = self.may_retry();
        if self.out.capacity() == 0 {
            if !may_retry && self.sent == self.replay.len() {
                self.replay.clear();
                self.sent = 0;
            }
            return;
        }
        if self.body.is_whole() && self.out.len() <= REPLAY_MAX && self.replay.is_empty() {
            self.replay.extend_from_slice(&self.out);
            let sent = self.sent;
            self.put_out(local);
            self.sent = sent;
            return self.settle_out(local);
        }
        if self.sent < self.out.len() || may_retry {
            return;
        }
        self.writing.let_go(); // the bytes go: nothing will resend them
        self.put_out(local);
    }

    /// Frees the room an output buffer needs for `n` more bytes, by dropping what was
    /// written (then a retry can no longer resend the request).
    fn make_room(&mut self, n: usize) {
        if self.sent == 0 || self.out.len() + n <= COPY_BUF_SIZE {
            return;
        }
        self.out.drain(..self.sent);
        self.sent = 0;
        self.writing.let_go();
    }

    /// The response: a failure's outcome, heads, then body, as far as the client's
    /// output has room.
    fn respond(&mut self, res: &mut Response<'_, '_>, local: &mut ProxyLocal) {
        self.client_full = false; // set again below if the client's output fills up
        if let Stage::Failed(outcome) = self.stage {
            match outcome {
                Outcome::Status(status) if !res.is_started() => res.status_page(status),
                _ => res.abort(),
            }
            self.finish(local);
            return;
        }
        if let Reading::Awaiting | Reading::Head { .. } = self.reading {
            let read = self.read_heads(res, local);
            self.used_up(local);
            if let Err(failure) = read {
                self.fail(local, failure);
                return self.respond(res, local);
            }
            if let Reading::Body { .. } = self.reading {
                self.arm(local); // from here on, the upstream timeout bounds idleness
            }
        }
        self.copy_body(res, local);
    }

    /// Copies the response body from the input to the client's output, as far as it
    /// has room; ends the exchange at the body's end, or fails it if the body broke.
    fn copy_body(&mut self, res: &mut Response<'_, '_>, local: &mut ProxyLocal) {
        let reader = match &mut self.reading {
            Reading::Body { reader, .. } => reader,
            Reading::Tunnel(_) => return self.relay(res, local),
            Reading::Awaiting | Reading::Head { .. } => return, // no head yet
        };
        let mut broken = false;
        while !reader.is_done() && res.room() > 0 && self.consumed < self.from_upstream.len() {
            let end = self.from_upstream.len().min(self.consumed + res.room());
            let Ok((used, data)) = reader.decode(&self.from_upstream[self.consumed..end]) else {
                broken = true;
                break;
            };
            let taken = res.write(data);
            debug_assert_eq!(taken, data.len(), "decoded at most `room` bytes");
            self.consumed += used;
            // The client took bytes: room for the upstream's, and time to send them.
            self.deadline = Some(local.now + local.proxy.config.upstream_timeout);
        }
        compact(&mut self.from_upstream, &mut self.consumed);
        self.client_full = res.room() == 0 && !self.from_upstream.is_empty();
        // The upstream closed: the end of a close-delimited body, or a truncated one.
        broken |= !reader.is_done()
            && self.end != End::Open
            && self.from_upstream.is_empty()
            && (self.end == End::Reset || reader.on_eof().is_err());
        let done = reader.is_done();
        self.settle_inp(local);
        if broken {
            let failure = if self.end == End::Reset {
                Failure::Reset
            } else {
                Failure::Malformed
            };
            self.fail(local, failure);
            self.respond(res, local);
        } else if done {
            res.finish();
            self.finish(local);
        }
    }

    /// A tunnel's bytes from the upstream to the client, as far as its output has
    /// room; then the upstream's end of stream, once its bytes went; then the end of
    /// the tunnel, once both directions ended (or at once on a reset, after the bytes
    /// that came before it).
    #[cold]
    fn relay(&mut self, res: &mut Response<'_, '_>, local: &mut ProxyLocal) {
        let pending = &self.from_upstream[self.consumed..];
        let n = pending.len().min(res.room());
        if n > 0 {
            res.write(&pending[..n]);
            self.consumed += n;
            self.arm_tunnel(local);
        }
        compact(&mut self.from_upstream, &mut self.consumed);
        self.client_full = res.room() == 0 && !self.from_upstream.is_empty();
        self.settle_inp(local);
        if !self.from_upstream.is_empty() {
            return;
        }
        match (self.end, &self.reading) {
            (End::Reset, _) => {
                self.fail(local, Failure::Reset);
                return self.respond(res, local);
            }
            (End::Closed, Reading::Tunnel(Flow::Open | Flow::Ending)) => {
                res.finish(); // the driver passes the end on once the output is flushed
                self.reading = Reading::Tunnel(Flow::Ended);
            }
            _ => {}
        }
        if matches!(self.reading, Reading::Tunnel(Flow::Ended))
            && self.body == Body::Tunnel(Flow::Ended)
        {
            res.end_tunnel();
            self.finish(local);
        }
    }

    /// The final head was a `101` of `head_len` bytes, passed on: the connection
    /// becomes a tunnel, with the tunnel's idle timeout. Request bytes not yet written
    /// (the upstream answered before it read them all) go first, from the output
    /// buffer, before the client's.
    #[cold]
    fn start_tunnel(&mut self, head_len: usize, local: &mut ProxyLocal) {
        local.proxy.upstreams.record_success(self.upstream);
        local.count(self.upstream, Event::Upgraded);
        self.consumed += head_len;
        self.reading = Reading::Tunnel(Flow::Open);
        self.body = Body::Tunnel(Flow::Open);
        if self.out.capacity() == 0 && self.sent < self.replay.len() {
            self.take_out(local);
            self.out.extend_from_slice(&self.replay[self.sent..]);
            self.sent = 0;
        }
        self.replay.clear();
        self.arm_tunnel(local);
    }

    /// The client's bytes for a tunnel: as many as the output buffer has room for (the
    /// rest waits in the client's connection, which then stops reading it).
    #[cold]
    fn tunnel_in(&mut self, data: &[u8], local: &mut ProxyLocal) -> usize {
        if self.stage != Stage::Running || !self.writing.is_open() {
            return data.len(); // the tunnel is ending: nowhere to send them
        }
        self.make_room(data.len());
        let n = data.len().min(COPY_BUF_SIZE.saturating_sub(self.out.len()));
        if n == 0 {
            return 0;
        }
        self.take_out(local);
        self.out.extend_from_slice(&data[..n]);
        self.arm_tunnel(local);
        n
    }

    /// Drops the bytes of the input already used ([`compact`]), and gives the buffer
    /// back if that was all of them.
    fn used_up(&mut self, local: &ProxyLocal) {
        compact(&mut self.from_upstream, &mut self.consumed);
        self.settle_inp(local);
    }

    /// Reads the response heads in the input: forwards interim ones, starts the final
    /// one. Leaves `reading` at `Body` once the final head is in.
    fn read_heads(
        &mut self,
        res: &mut Response<'_, '_>,
        local: &mut ProxyLocal,
    ) -> Result<(), Failure> {
        let Reading::Head { scanned, interims } = &mut self.reading else {
            return Ok(()); // no byte yet
        };
        loop {
            let input = &self.from_upstream[self.consumed..];
            let method = self.method.as_bytes();
            // Two storages: the quick parse's borrow ends only with the loop turn.
            let (mut fields, mut scanned_fields) =
                (fields::field_storage(), fields::field_storage());
            // A head that arrived whole (the common case) is parsed at once: the parse
            // finds its end. Any other outcome (unfinished, over the limit, malformed)
            // takes the scan for its end first, as every head did before, so nothing
            // changes but the work: the scan cost a `memchr` call a line.
            let quick = match *scanned {
                0 => response::parse(input, method, &mut fields)
                    .ok()
                    .filter(|parsed| parsed.len <= MAX_RESPONSE_HEAD),
                _ => None,
            };
            let parsed = match quick {
                Some(parsed) => parsed,
                None => {
                    let end = match fields::find_head(input, scanned, MAX_RESPONSE_HEAD) {
                        Ok(Some(end)) => end,
                        Ok(None) => {
                            return match self.end {
                                End::Open => Ok(()),
                                End::Closed => Err(Failure::Closed),
                                End::Reset => Err(Failure::Reset),
                            };
                        }
                        Err(_) => return Err(Failure::Malformed),
                    };
                    response::parse(&input[..end], method, &mut scanned_fields)
                        .map_err(|_| Failure::Malformed)?
                }
            };
            if parsed.head.is_interim() {
                *interims += 1;
                if *interims > MAX_INTERIM {
                    return Err(Failure::Malformed);
                }
                pass_interim(&parsed, self.version, res);
                self.consumed += parsed.len;
                continue;
            }
            if let Err(failure) = start_response(&parsed, input, self.version, res) {
                if parsed.head.status != 101 {
                    return Err(failure);
                }
                let asked = (self.asked.len > 0).then_some(&self.asked);
                pass_switch(&parsed, input, asked, res)?;
                self.start_tunnel(parsed.len, local);
                return Ok(());
            }
            local.proxy.upstreams.record_success(self.upstream);
            self.consumed += parsed.len;
            self.reading = Reading::Body {
                reader: ResponseBodyReader::new(parsed.head.framing),
                keep_alive: parsed.head.keep_alive,
            };
            return Ok(());
        }
    }
}

/// Counts a tunnel of `upstream` as ended (out of the way of the paths every request
/// takes).
#[cold]
fn tunnel_closed(local: &ProxyLocal, upstream: usize) {
    local.count(upstream, Event::TunnelClosed);
}

/// The fields of an upstream head that go to the client, and `Via`.
fn forwarded<'a>(parsed: &'a Parsed<'_, 'a>) -> impl Iterator<Item = (&'a str, &'a [u8])> {
    headers::response_fields(parsed.fields, parsed.named_by_connection)
        .map(|f| (f.name, f.value))
        .chain([("Via", headers::via(parsed.head.version))])
}

/// Passes a `101` head on: only to a request forwarded with `Upgrade` (`asked`), and
/// only naming protocols it asked for (RFC 9110 §7.8, §15.2.2); any other 101 is a 502.
fn pass_switch(
    parsed: &Parsed<'_, '_>,
    head: &[u8],
    asked: Option<&Protocols>,
    res: &mut Response<'_, '_>,
) -> Result<(), Failure> {
    let chosen = Protocols::from_fields(parsed.fields)
        .filter(|p| asked.is_some_and(|asked| asked.allows(p)))
        .ok_or(Failure::Malformed)?;
    res.switch_protocols(chosen.as_bytes());
    forward_fields(parsed, head, res);
    Ok(())
}

/// Passes an interim head on: `100 Continue` went to the client from the connection
/// already (the proxy does not forward `Expect`); others (103) are forwarded, to
/// HTTP/1.1 clients (RFC 9110 §15.2).
fn pass_interim(parsed: &Parsed<'_, '_>, client: Version, res: &mut Response<'_, '_>) {
    if parsed.head.status != 100 && client == Version::Http11 {
        res.interim_with(parsed.head.status, forwarded(parsed));
    }
}

/// Starts the client's response from the final head `parsed`: its status, its framing
/// for a client that spoke `client`, and the forwarded fields.
fn start_response(
    parsed: &Parsed<'_, '_>,
    input: &[u8],
    client: Version,
    res: &mut Response<'_, '_>,
) -> Result<(), Failure> {
    let head = &parsed.head;
    let Some(len) = headers::response_body(head, client) else {
        return Err(Failure::Malformed);
    };
    if head.transfer_coded && head.framing != ResponseFraming::None {
        let mut buf = [0u8; 128];
        let codings =
            headers::response_codings(parsed.fields, &mut buf).ok_or(Failure::Malformed)?;
        res.start_coded(head.status, codings);
    } else {
        res.start(head.status, len);
    }
    forward_fields(parsed, input, res);
    Ok(())
}

/// Writes the fields of `parsed` (read from `head`) that go to the client, and
/// `Via`, into the head `res` began: what [`forwarded`] yields, the same bytes. A
/// field line that came as [`Response::header`] writes one (`name: value\r\n`) is
/// copied whole from `head`, and consecutive ones as one slice (four copies a field
/// and a chained iterator cost a small head some 400 instructions more).
#[inline(always)]
fn forward_fields(parsed: &Parsed<'_, '_>, head: &[u8], res: &mut Response<'_, '_>) {
    let mut run: Option<Range<usize>> = None;
    let kept = headers::response_kept(parsed.fields, parsed.named_by_connection);
    let mut bit = 1; // field i's (a shift by i costs more)
    for f in parsed.fields {
        let skip = kept & bit == 0;
        bit <<= 1;
        if skip {
            continue;
        }
        match (written_as_is(head, f), &mut run) {
            (Some(line), Some(run)) if run.end == line.start => run.end = line.end,
            (Some(line), _) => {
                if let Some(done) = run.replace(line) {
                    res.header_lines(&head[done]);
                }
            }
            (None, _) => {
                if let Some(done) = run.take() {
                    res.header_lines(&head[done]);
                }
                res.header(f.name, f.value);
            }
        }
    }
    if let Some(done) = run {
        res.header_lines(&head[done]);
    }
    res.header_lines(via_line(parsed.head.version));
}

/// Where in `head` the line of `field` is, if it reads exactly as
/// [`Response::header`] writes the field: the name, `": "`, the value, CRLF.
#[inline(always)]
fn written_as_is(head: &[u8], field: &httparse::Header<'_>) -> Option<Range<usize>> {
    let base = head.as_ptr() as usize;
    let start = (field.name.as_ptr() as usize).checked_sub(base)?;
    let value = (field.value.as_ptr() as usize).checked_sub(base)?;
    let end = value + field.value.len();
    (value == start + field.name.len() + 2
        && head.get(value - 2..value) == Some(b": ")
        && head.get(end..end + 2) == Some(b"\r\n"))
    .then_some(start..end + 2)
}

/// The `Via` line the proxy adds to a response received as `received`:
/// `Via: 1.1 demo-server` (see [`headers::via`]).
fn via_line(received: Version) -> &'static [u8] {
    match received {
        Version::Http10 => b"Via: 1.0 demo-server\r\n",
        Version::Http11 => b"Via: 1.1 demo-server\r\n",
    }
}

/// The [`Handler`] calls, on the exchange.
impl Forward {
    /// A request from `client`: forwarded (the exchange starts: `Running`), or
    /// answered at once.
    fn on_request(
        &mut self,
        client: IpAddr,
        req: &Request<'_>,
        res: &mut Response<'_, '_>,
        local: &mut ProxyLocal,
    ) {
        let max_forwards = match headers::disposition(req.method_name, req.headers) {
            Disposition::Forward { max_forwards } => max_forwards,
            local => return headers::answer(local, res), // CONNECT, TRACE, OPTIONS at 0
        };
        let Some(upstream) = local.proxy.upstreams.select(&mut local.cursor, local.now) else {
            res.status_page(503); // every upstream is down: at once
            return;
        };
        let config = &local.proxy.config;
        self.upstream = upstream;
        self.version = req.head.version;
        self.method = match req.method_name {
            "HEAD" => Method::Head,
            "CONNECT" => Method::Connect,
            _ => Method::Other,
        };
        // RFC 9110 §9.2.2.
        self.idempotent = matches!(
            req.method_name,
            "GET" | "HEAD" | "OPTIONS" | "TRACE" | "PUT" | "DELETE"
        );
        // A suspect head is answered, then both connections close.
        self.close_upstream = config.upstream_idle == 0 || req.head.suspect;
        debug_assert!(self.out.capacity() == 0 && self.from_upstream.capacity() == 0);
        let request = headers::Request {
            method: req.method_name.as_bytes(),
            target: req.target.as_bytes(),
            version: req.head.version,
            fields: req.headers,
            named_by_connection: req.named_by_connection,
            client,
            fallback_host: local.proxy.upstreams.name(upstream).as_bytes(),
            max_forwards,
            trust_forwarded: config.trust_forwarded,
        };
        // A request without a body is sent from `replay` when its head is short (see
        // `settle_out`): a head that surely fits is written there at once, not into an
        // output buffer taken from the pool only to be copied over and given back (some
        // 300 instructions). Any other request is written into an output buffer. (The
        // input buffer is taken when the upstream has bytes.)
        let direct = matches!(
            req.head.framing,
            RequestFraming::None | RequestFraming::Length(0)
        ) && self.replay.is_empty()
            && headers::request_head_bound(&request) <= REPLAY_MAX;
        if !direct {
            self.take_out(local);
        }
        // One branch for an ordinary request: `upgrade` is read with the other
        // `Connection` options.
        self.asked.len = 0;
        let upgrade = req.head.upgrade && self.ask_upgrade(req);
        // No `Connection: close` beside `upgrade` (an upstream that reads only its
        // first `Connection` line would miss `upgrade`): `close_upstream` still keeps
        // the connection out of the idle set after a non-101 answer.
        let head = if direct {
            &mut self.replay
        } else {
            &mut self.out
        };
        self.fallback_host = headers::write_request_head(
            head,
            &request,
            req.head.framing,
            self.close_upstream && !upgrade,
        );
        if upgrade {
            headers::append_upgrade(head, self.asked.as_bytes());
        }
        debug_assert!(
            !direct || self.replay.len() <= REPLAY_MAX,
            "under its bound"
        );
        self.start(req.head.framing, local);
    }

    /// Whether the upgrade a request whose `Connection` lists `upgrade` asks for is
    /// forwarded ([`Protocols::asked`]): then its head goes with `Upgrade` and
    /// `Connection: upgrade` (both hop-by-hop, RFC 9110 §7.6.1, otherwise dropped), and
    /// a `101` may switch protocols.
    ///
    /// The method stays what it was for reading the answer: RFC 9110 §7.8 ties
    /// `Upgrade` to no method, and a `HEAD` that asks is still a `HEAD` (§9.3.2): an
    /// answer other than `101` has no content, whatever its `Content-Length` says.
    #[cold]
    fn ask_upgrade(&mut self, req: &Request<'_>) -> bool {
        let Some(asked) = Protocols::asked(req) else {
            return false;
        };
        self.asked = asked;
        true
    }

    /// The exchange starts, its request head written: the first attempt asks for a
    /// connection, any will do.
    fn start(&mut self, framing: RequestFraming, local: &ProxyLocal) {
        self.body = match framing {
            RequestFraming::None | RequestFraming::Length(0) => Body::Absent,
            RequestFraming::Length(_) => Body::Raw,
            RequestFraming::Chunked => Body::Chunked,
        };
        self.stage = Stage::Running;
        self.link = Link::Wanted(Want::Any);
        self.attempts = 1;
        self.sent = 0;
        self.writing = Writing::Open(Sent::Nothing);
        self.reading = Reading::Awaiting;
        self.end = End::Open;
        self.consumed = 0;
        self.client_full = false;
        self.arm(local);
        self.settle_out(local); // a short request without a body moves out of the buffer
    }

    fn on_body(&mut self, data: &[u8], local: &mut ProxyLocal) -> usize {
        if let Body::Tunnel(_) = self.body {
            return self.tunnel_in(data, local);
        }
        if self.stage != Stage::Running || !self.writing.is_open() {
            if self.stage == Stage::Running && !self.responded() {
                // The write failed, and the read that decides between an early answer
                // and a retry (which needs every byte of the body) has not happened
                // yet.
                return 0;
            }
            return data.len(); // nowhere to send it: the connection drops it
        }
        if self.sent == self.request().len() {
            // The upstream had all there was: from now on it is waited for again.
            self.arm(local);
        }
        let chunked = self.body == Body::Chunked;
        let reserve = if chunked { CHUNK_RESERVE } else { 0 };
        self.make_room(data.len() + reserve);
        let room = COPY_BUF_SIZE.saturating_sub(self.out.len() + reserve);
        let n = data.len().min(room);
        if n == 0 {
            return 0; // full: the connection stops reading the client
        }
        self.take_out(local);
        if chunked {
            encode::write_chunk(&mut self.out, &data[..n]);
        } else {
            self.out.extend_from_slice(&data[..n]);
        }
        n
    }

    fn on_body_end(&mut self, local: &ProxyLocal) {
        if self.stage == Stage::Ended {
            return;
        }
        if self.body == Body::Chunked {
            // Room was kept for it.
            self.take_out(local);
            self.out.extend_from_slice(encode::LAST_CHUNK);
        }
        match self.body {
            Body::Raw | Body::Chunked => self.body = Body::Whole,
            // The client ended its side of a tunnel: once its bytes are written, the
            // driver passes the end on.
            Body::Tunnel(Flow::Open) => self.body = Body::Tunnel(Flow::Ending),
            Body::Absent | Body::Whole | Body::Tunnel(_) => {}
        }
        self.settle_out(local); // it may all have been written already
    }

    fn on_abort(&mut self, local: &mut ProxyLocal) {
        if self.stage == Stage::Ended {
            return;
        }
        match self.reading {
            Reading::Awaiting | Reading::Head { .. } => {
                local.count(self.upstream, Event::ClientAborted); // nginx's 499
            }
            // A tunnel that failed (its idle timeout, a reset) was counted closed then.
            Reading::Tunnel(_) if self.stage == Stage::Running => {
                local.count(self.upstream, Event::TunnelClosed);
            }
            Reading::Tunnel(_) | Reading::Body { .. } => {}
        }
        if let Some(key) = self.link.key() {
            local.discard(self.upstream, key);
        }
        self.link = Link::None;
        self.drop_buffers(local);
        self.stage = Stage::Ended;
        self.deadline = None;
    }
}

/// The proxy's [`Handler`]: one per client connection.
///
/// Between requests it holds only the client's address: the upstream side of an
/// exchange (`Forward`, some 200 bytes with its copy buffers' handles) is taken from
/// the event loop's spares ([`ProxyLocal`]) when a request is forwarded and given back
/// when the exchange ends, so an idle client connection costs 32 bytes here, whatever
/// it did before.
///
/// # The driver's protocol
///
/// The connection ([`Conn`](crate::http::conn::Conn)) calls the [`Handler`] methods;
/// a driver (the event loop's upstream I/O, or [`MemProxy`](super::mem::MemProxy))
/// makes the upstream side move, after each round of the connection and on each event
/// of the upstream socket, in this order, with [`ProxyLocal::now`] set first:
///
/// 1. **Release**: each [`ProxyLocal::next_released`] connection is checked (bytes or
///    an end of stream since its response make it dirty: clear
///    [`Exchange::response_read`]) and given to [`ProxyLocal::park`], which may hand
///    back a connection to close.
/// 2. **Connect**: if [`wants_connection`](Self::wants_connection) says
///    `(upstream, reuse)`, take [`ProxyLocal::take_idle`] when `reuse` allows, else
///    open a new connection; then [`attach`](Self::attach) it, or report
///    [`connect_failed`](Self::connect_failed) or
///    [`connect_failed_locally`](Self::connect_failed_locally). A new connection is
///    [`connected`](Self::connected) once made; nothing is written before.
/// 3. **Write** [`to_send`](Self::to_send) while the socket takes bytes, reporting
///    [`sent`](Self::sent). A failed write is [`write_failed`](Self::write_failed),
///    and the driver goes on to read even without a readiness event. In a tunnel,
///    when [`wants_write_shutdown`](Self::wants_write_shutdown) says so, shut the
///    socket's write side and report [`write_shut`](Self::write_shut).
/// 4. **Read** while [`input_room`](Self::input_room) is above 0: at most that many
///    bytes into the spare capacity of [`input`](Self::input), then
///    [`received`](Self::received); a read that would block is
///    [`read_blocked`](Self::read_blocked), an end of stream
///    [`upstream_closed`](Self::upstream_closed), an error
///    [`read_failed`](Self::read_failed). A room of 0 is backpressure: stop reading,
///    and keep the readiness for later.
/// 5. **Close** every [`ProxyLocal::next_closing`] connection.
/// 6. **Time**: wake at [`deadline`](Self::deadline) (it changes after any call) and
///    then call [`timed_out`](Self::timed_out). Idle connections expire through
///    [`ProxyLocal::expire`].
///
/// On the client's side, the driver shuts down the client socket's write side once its
/// output is flushed and [`Conn::take_shutdown`](crate::http::conn::Conn::take_shutdown)
/// says so (a tunnel's upstream ended its direction).
///
/// Every call does nothing (or answers "nothing") while no exchange is in progress,
/// so a driver need not know whether one is.
#[derive(Debug)]
pub struct ProxyHandler {
    client: IpAddr,
    /// The exchange in progress, if any.
    exchange: Option<Box<Forward>>,
}

impl ProxyHandler {
    /// The handler of a connection from `client` (appended to `X-Forwarded-For`).
    pub const fn new(client: IpAddr) -> Self {
        Self {
            client,
            exchange: None,
        }
    }

    // === the driver's side ===

    /// The connection the handler needs: `Some((upstream, reuse))`, where `reuse` says
    /// an idle one will do ([`ProxyLocal::take_idle`]); otherwise open a new one.
    /// Answer with [`attach`](Self::attach) or [`connect_failed`](Self::connect_failed).
    pub fn wants_connection(&self) -> Option<(usize, bool)> {
        self.exchange
            .as_ref()
            .and_then(|exchange| exchange.wants_connection())
    }

    /// Hands the handler the connection `key` it asked for: an idle one (`reused`) or
    /// one just opened (which may still be connecting: write to it once it is).
    pub fn attach(&mut self, key: usize, reused: bool, local: &mut ProxyLocal) {
        self.with(local, |exchange, local| exchange.attach(key, reused, local));
    }

    /// The new connection attached is made (counted as opened): write to it.
    pub fn connected(&mut self, local: &mut ProxyLocal) {
        self.with(local, |exchange, local| exchange.connected(local));
    }

    /// The connection in use, if any.
    pub fn connection(&self) -> Option<usize> {
        self.exchange
            .as_ref()
            .and_then(|exchange| exchange.connection())
    }

    /// The upstream of the exchange in progress, if one is.
    pub fn upstream(&self) -> Option<usize> {
        self.exchange.as_ref().map(|exchange| exchange.upstream)
    }

    /// Bytes to write to the connection now (empty if none).
    pub fn to_send(&self) -> &[u8] {
        self.exchange
            .as_ref()
            .map_or(&[], |exchange| exchange.to_send())
    }

    /// `n` bytes of [`to_send`](Self::to_send) were written.
    pub fn sent(&mut self, n: usize, local: &mut ProxyLocal) {
        self.with(local, |exchange, local| exchange.sent(n, local));
    }

    /// How many bytes the handler takes from the connection now (0: stop reading it).
    pub fn input_room(&self) -> usize {
        self.exchange
            .as_ref()
            .map_or(0, |exchange| exchange.input_room())
    }

    /// The input buffer, for the driver to read into: at most
    /// [`input_room`](Self::input_room) bytes after its length, then
    /// [`received`](Self::received) (the event loop reads into its spare capacity).
    /// A copy buffer is taken for it here if none is held: call this only with bytes to
    /// read, or say [`read_blocked`](Self::read_blocked) when the read found none.
    /// `None` with no exchange in progress (then `input_room` is 0).
    pub fn input(&mut self, local: &ProxyLocal) -> Option<&mut Vec<u8>> {
        self.exchange
            .as_deref_mut()
            .map(|exchange| exchange.input(local))
    }

    /// The connection has nothing to read for now (the read would block): the input
    /// buffer [`input`](Self::input) took goes back if it holds nothing.
    pub fn read_blocked(&mut self, local: &mut ProxyLocal) {
        self.with(local, |exchange, local| exchange.read_blocked(local));
    }

    /// `n` bytes were appended to [`input`](Self::input).
    pub fn received(&mut self, n: usize, local: &mut ProxyLocal) {
        self.with(local, |exchange, local| exchange.received(n, local));
    }

    /// The connection could not be made: the upstream refused it or is unreachable.
    pub fn connect_failed(&mut self, local: &mut ProxyLocal) {
        self.with(local, |exchange, local| exchange.connect_failed(local));
    }

    /// The proxy could not open a connection for a reason of its own (out of file
    /// descriptors, socket buffers or local ports: `EMFILE`, `ENFILE`, `ENOBUFS`,
    /// `ENOMEM`, `EADDRNOTAVAIL`): 502 without a retry, and no mark against the
    /// upstream, which was never asked.
    pub fn connect_failed_locally(&mut self, local: &mut ProxyLocal) {
        self.with(local, |exchange, local| {
            exchange.connect_failed_locally(local)
        });
    }

    /// Writing to the connection failed: the upstream stopped reading the request,
    /// perhaps because it answered early and closed (an upload it refuses: its kernel
    /// resets the connection over the unread body). Nothing more is written, and the
    /// connection is not reused; the driver then reads the connection as far as
    /// [`input_room`](Self::input_room) allows, even without a readiness event: a
    /// response that arrived before the reset is delivered (the rest of the request
    /// body is dropped), and only a read that finds none
    /// ([`read_blocked`](Self::read_blocked), [`read_failed`](Self::read_failed),
    /// [`upstream_closed`](Self::upstream_closed)) makes it a failed attempt.
    pub fn write_failed(&mut self, local: &mut ProxyLocal) {
        self.with(local, |exchange, _| exchange.write_failed());
    }

    /// Reading from the connection failed (reset).
    pub fn read_failed(&mut self, local: &mut ProxyLocal) {
        self.with(local, |exchange, local| exchange.read_failed(local));
    }

    /// The upstream closed its side: the end of a close-delimited body, a truncated
    /// one, or (before any response byte) a failed attempt.
    pub fn upstream_closed(&mut self, local: &mut ProxyLocal) {
        self.with(local, |exchange, local| exchange.upstream_closed(local));
    }

    /// When the upstream must have moved on: only while the handler waits on it, not
    /// on the client (see "Timeouts" in `docs/design.md`).
    pub fn deadline(&self) -> Option<Instant> {
        self.exchange
            .as_ref()
            .and_then(|exchange| exchange.deadline())
    }

    /// The [`deadline`](Self::deadline) passed: 504 before the response head, a cut-off
    /// response after.
    pub fn timed_out(&mut self, local: &mut ProxyLocal) {
        self.with(local, |exchange, local| exchange.timed_out(local));
    }

    /// Whether the driver is to shut down the connection's write side now
    /// (`shutdown(Write)`), then report [`write_shut`](Self::write_shut): the client
    /// ended its side of a tunnel, and every byte it sent before was written.
    pub fn wants_write_shutdown(&self) -> bool {
        self.exchange
            .as_ref()
            .is_some_and(|exchange| exchange.wants_write_shutdown())
    }

    /// The connection's write side was shut down (the client's end of stream went on
    /// through the tunnel).
    pub fn write_shut(&mut self, local: &mut ProxyLocal) {
        self.with(local, |exchange, _| exchange.write_shut());
    }

    /// Whether the exchange in progress is a tunnel (its upstream switched protocols).
    pub fn is_tunnel(&self) -> bool {
        self.exchange
            .as_ref()
            .is_some_and(|exchange| matches!(exchange.reading, Reading::Tunnel(_)))
    }

    /// Bytes the exchange holds in its copy buffers right now.
    pub fn buffered(&self) -> usize {
        self.exchange
            .as_ref()
            .map_or(0, |exchange| exchange.buffered())
    }

    /// Runs `f` on the exchange in progress (nothing if there is none), then gives its
    /// state back to the worker if `f` ended it.
    fn with<R>(
        &mut self,
        local: &mut ProxyLocal,
        f: impl FnOnce(&mut Forward, &mut ProxyLocal) -> R,
    ) -> Option<R> {
        let exchange = self.exchange.as_deref_mut()?;
        let r = f(exchange, local);
        if exchange.stage == Stage::Ended {
            if let Some(exchange) = self.exchange.take() {
                local.put_exchange(exchange);
            }
        }
        Some(r)
    }
}

impl Handler for ProxyHandler {
    type Local = ProxyLocal;

    /// Codings before chunked are forwarded with the body (RFC 9112 §6.1): a proxy
    /// need not understand them.
    const CODINGS: Codings = Codings::Forward;

    /// The fields the `Connection` options name are dropped, found as the parser
    /// reads the options (not split again here).
    const CONNECTION_NAMES: bool = true;

    fn on_request(
        &mut self,
        req: &Request<'_>,
        res: &mut Response<'_, '_>,
        local: &mut ProxyLocal,
    ) {
        if self.exchange.is_some() {
            // The connection starts a request only after the previous exchange ended,
            // which the handler always sees: a bug. Its connection is not kept.
            debug_assert!(false, "a request during an exchange");
            self.on_abort(local);
        }
        let mut exchange = local.take_exchange();
        exchange.on_request(self.client, req, res, local);
        if exchange.stage != Stage::Ended {
            self.exchange = Some(exchange);
        } else {
            local.put_exchange(exchange); // answered at once
        }
    }

    fn on_body(&mut self, data: &[u8], _: &mut Response<'_, '_>, local: &mut ProxyLocal) -> usize {
        // With no exchange there is nowhere to send it: the connection drops it.
        self.with(local, |exchange, local| exchange.on_body(data, local))
            .unwrap_or(data.len())
    }

    fn on_body_end(&mut self, _: &mut Response<'_, '_>, local: &mut ProxyLocal) {
        self.with(local, |exchange, local| exchange.on_body_end(local));
    }

    fn poll_response(&mut self, res: &mut Response<'_, '_>, local: &mut ProxyLocal) {
        self.with(local, |exchange, local| exchange.respond(res, local));
    }

    fn on_abort(&mut self, local: &mut ProxyLocal) {
        self.with(local, |exchange, local| exchange.on_abort(local));
    }
}

/// Drops the `consumed` bytes at the front of the input buffer `from_upstream`, so that its room is
/// never held by bytes already used (interim heads, body already copied): at once when
/// all of it was, else once half of it was (then the rest of a head, at most
/// [`MAX_RESPONSE_HEAD`], always fits after it).
fn compact(from_upstream: &mut Vec<u8>, consumed: &mut usize) {
    if *consumed == from_upstream.len() {
        from_upstream.clear();
        *consumed = 0;
    } else if *consumed >= COPY_BUF_SIZE / 2 {
        from_upstream.drain(..*consumed);
        *consumed = 0;
    }
}
