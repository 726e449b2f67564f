//! The event loop of one worker thread: a mio `Poll`, a listener, and a `Slab` of
//! connections.
//!
//! # Fairness
//!
//! A connection that always has work (a fast client pipelining requests, or reading a
//! large response as fast as it is written) must not keep the worker from its other
//! connections, its listener and its timers. So each readiness event gives a
//! connection a budget of [`ROUNDS_PER_TURN`] rounds (read, process, write), as tokio
//! gives each task a cooperative budget; a connection that still has work then goes
//! to the back of a ready queue, which the loop serves after polling for new events
//! with a zero timeout.
//!
//! # Memory per idle connection
//!
//! The slab is allocated up front, so what an idle keep-alive connection costs the
//! process is its slab entry: 232 bytes for `serve`, 208 for `proxy` (x86-64), held
//! to a 256-byte budget by a unit test. What only a busy connection needs is not in
//! it but behind a pointer-sized handle, taken when work starts and given back when
//! the connection goes idle: the read and write buffers (boxed in their pools, so a
//! handle is two words) and the proxy's exchange state ([`ProxyHandler`]). The
//! connection's timers are [`Tick`]s, 32-bit milliseconds since the worker started,
//! rather than 16-byte `Instant`s.
//!
//! [`ProxyHandler`]: crate::proxy::handler::ProxyHandler

use std::collections::VecDeque;
use std::io::{self, ErrorKind};
use std::net::{Shutdown, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use recycle_pool::Pooled;
use recycle_pool::io::{ReadBuf, WriteBuf};
use slab::Slab;

use super::service::{SERVICE_TOKEN, Service};
use super::socket::{self, Socket};
use super::tick::Tick;
use super::{Config, TICK};
use crate::http::conn::{Conn, Handler, WRITE_HIGH_WATER};
use crate::state::{Ctx, Shared};

/// The listener's token; client connections use their slab key, and the service's own
/// sockets [`SERVICE_TOKEN`] plus theirs.
const LISTENER: Token = Token(usize::MAX);

/// How long a finished connection keeps reading (and dropping) what the client still
/// sends after our write side is shut, so that the client receives our last response
/// instead of a reset.
const LINGER: Duration = Duration::from_secs(2);

/// How long accepting pauses after the process ran out of file descriptors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// How often worker 0 trims the shared pools: a buffer idle through two trims (30 to
/// 60 s) is freed, so memory taken by a burst of connections goes back.
const TRIM_INTERVAL: Duration = Duration::from_secs(30);

/// Most request-body bytes buffered ahead of processing.
const READ_HIGH_WATER: usize = 64 * 1024;

/// Rounds (read, process, write) a connection gets per turn before the others: at most
/// about 1 MiB of output (16 times the write high-water mark), a millisecond or less.
const ROUNDS_PER_TURN: u32 = 16;

struct Connection<'a, H> {
    stream: TcpStream,
    http: Conn<H>,
    /// Borrowed while unprocessed bytes remain; an idle connection holds none.
    rbuf: Option<Pooled<'a, Box<ReadBuf>>>,
    /// Borrowed while output is pending.
    wbuf: Option<Pooled<'a, Box<WriteBuf>>>,
    /// Bytes may be waiting in the socket (we stopped reading before `WouldBlock`).
    readable: bool,
    /// The peer shut its write side (we read its EOF).
    read_closed: bool,
    /// The last event said the peer hung up: read on to the EOF, even after a short
    /// read (its edge is already spent).
    hup: bool,
    /// Registered for WRITABLE (only while output is pending).
    writable_interest: bool,
    /// When the head being read must be complete (also set for a new connection).
    head_deadline: Option<Tick>,
    /// Last read or write progress.
    last_active: Tick,
    /// When lingering ends; `Some` once our write side is shut.
    linger_until: Option<Tick>,
    /// In the ready queue: it used its turn with work left.
    queued: bool,
}

/// What [`EventLoop::drive`] does after a round of a connection's turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flow {
    /// Something moved: go round again, if the turn's budget allows.
    Again,
    /// Nothing moved: wait for the next readiness event.
    Yield,
    /// Close the connection now.
    Close,
}

/// The read or write failed for good (reset by peer and the like): close.
struct Failed;

/// The steps of a round, in order (see [`EventLoop::round`]).
impl<'a, H: Handler> Connection<'a, H> {
    fn pending_output(&self) -> bool {
        self.wbuf.as_ref().is_some_and(|w| !w.is_empty())
    }

    /// Whether the output reached its high-water mark, where `process` stops (reading
    /// and answering wait until it is written).
    fn output_full(&self) -> bool {
        self.wbuf
            .as_ref()
            .is_some_and(|w| w.len() >= WRITE_HIGH_WATER)
    }

    /// Whether the client is gone while its request waits for a response: its
    /// connection was reset (nginx's 499). The exchange is then aborted (the proxy
    /// closes its upstream connection) rather than answered to no one. Bytes still to
    /// read (pipelined) are read first, as usual. A plain end of stream is not enough:
    /// a client may shut down its sending side and still wait for the answer (RFC 9112
    /// §9.6), and until we write, a FIN from `close` looks the same as one from
    /// `shutdown`.
    fn client_gone(&self) -> bool {
        self.hup
            && self.http.awaiting_response()
            && !self.http.wants_input(0)
            && socket::hung_up(&self.stream)
    }

    /// Reads, bounded: a head never past its limit (+1 to detect it), a body never
    /// more than [`READ_HIGH_WATER`] ahead of processing. Returns whether it read
    /// anything.
    fn read(&mut self, shared: &'a Shared, tick: Tick) -> Result<bool, Failed> {
        let wlen = self.wbuf.as_ref().map_or(0, |w| w.len());
        if !self.readable || self.read_closed || !self.http.wants_input(wlen) {
            return Ok(false);
        }
        let cap = if self.http.awaiting_head() {
            shared.limits.max_head_bytes + 1
        } else {
            READ_HIGH_WATER
        };
        let rbuf = self.rbuf.get_or_insert_with(|| shared.readers.get());
        let mut progress = false;
        while rbuf.len() < cap {
            match rbuf.read_from_trusted(&mut Socket(&mut self.stream)) {
                Ok(0) => {
                    self.read_closed = true;
                    self.readable = false;
                    return Ok(progress);
                }
                Ok(_) => {
                    progress = true;
                    self.last_active = tick;
                    if rbuf.spare_capacity() > 0 && !self.hup {
                        // A short read: the socket is drained for now, and new data
                        // raises a new edge. Skipping the read that would say
                        // WouldBlock saves a syscall per request (as tokio does on the
                        // same platforms).
                        self.readable = false;
                        return Ok(progress);
                    }
                }
                Err(e) if socket::would_block(&e) => {
                    self.readable = false;
                    return Ok(progress);
                }
                Err(e) if socket::interrupted(&e) => {}
                Err(_) => return Err(Failed),
            }
        }
        Ok(progress) // at the cap: `readable` stays set, more may be waiting
    }

    /// Processes, if there is anything to process: buffered input, a body to generate,
    /// or an end of input to report. Returns whether input was consumed or output
    /// written.
    ///
    /// A connection that holds no buffer is lent the worker's [`Spare`] ones: the
    /// empty input, and an output buffer that it keeps only if something was written
    /// to it. So a round that only asks whether a response is ready (the proxy's,
    /// while the upstream has not answered) takes nothing from the pools.
    fn process(
        &mut self,
        shared: &'a Shared,
        ctx: &mut Ctx<'_>,
        local: &mut H::Local,
        spare: &mut Spare<'a>,
    ) -> bool {
        let eof_pending = self.read_closed && !self.http.is_done();
        let responding = self.http.is_responding();
        if self.rbuf.is_none() && !responding && !eof_pending {
            return false;
        }
        let mut progress = false;
        let lent = self.wbuf.is_none();
        let mut wbuf = match self.wbuf.take() {
            Some(wbuf) => wbuf,
            None => spare.output.take().unwrap_or_else(|| shared.writers.get()),
        };
        let before = wbuf.len();
        if self.rbuf.is_some() || responding {
            // A streaming response needs no input, but `process` takes a buffer.
            let rbuf: &mut ReadBuf = match self.rbuf.as_mut() {
                Some(rbuf) => rbuf,
                None => &mut spare.input,
            };
            let unread = rbuf.len();
            self.http.process(rbuf, &mut wbuf, ctx, local);
            progress |= rbuf.len() != unread;
            debug_assert!(spare.input.is_empty(), "nothing reads into the spare");
        }
        let partial = self.rbuf.as_ref().is_some_and(|r| !r.is_empty());
        if self.read_closed && self.http.wants_input(wbuf.len()) && !self.http.is_done() {
            self.http.on_eof(partial, &mut wbuf, ctx, local);
        }
        progress |= wbuf.len() != before;
        if lent && wbuf.is_empty() {
            // Nothing written: still as it came from the pool (it is never flushed
            // while lent, so it carries no error either).
            spare.output = Some(wbuf);
        } else {
            self.wbuf = Some(wbuf);
        }
        progress
    }

    /// Writes what is pending. Returns whether any of it went.
    fn write(&mut self, tick: Tick) -> Result<bool, Failed> {
        let Some(wbuf) = self.wbuf.as_mut() else {
            return Ok(false);
        };
        let unflushed = wbuf.len();
        match wbuf.flush_to(&mut self.stream) {
            Ok(()) => {}
            Err(e) if socket::would_block(&e) => {}
            Err(_) => return Err(Failed),
        }
        let progress = wbuf.len() != unflushed;
        if progress {
            self.last_active = tick;
        }
        Ok(progress)
    }

    /// Bytes the connection's buffers hold (for `/stats`).
    fn buffered(&self) -> usize {
        self.rbuf.as_ref().map_or(0, |r| r.len()) + self.wbuf.as_ref().map_or(0, |w| w.len())
    }

    /// Gives back buffers that hold nothing: an idle connection holds none.
    fn release_idle_buffers(&mut self) {
        if self.wbuf.as_ref().is_some_and(|w| w.is_empty()) {
            self.wbuf = None;
        }
        if self.rbuf.as_ref().is_some_and(|r| r.is_empty()) {
            self.rbuf = None;
        }
    }

    /// The deadline for the head being read: set when its first bytes arrive (or the
    /// connection opens), cleared once it is read, or while idle between requests.
    fn update_head_deadline(&mut self, tick: Tick, header_timeout: Duration) {
        if !self.http.awaiting_head() {
            self.head_deadline = None;
        } else if self.rbuf.is_some() && self.head_deadline.is_none() {
            self.head_deadline = Some(tick.after(header_timeout));
        } else if self.rbuf.is_none() && self.http.requests() > 0 {
            self.head_deadline = None; // idle between requests
        }
    }

    /// Done and flushed: close, or, while the client may still be sending, shut our
    /// write side and linger first.
    fn finish(&mut self, tick: Tick) -> Flow {
        if self.read_closed {
            return Flow::Close;
        }
        let _ = self.stream.shutdown(Shutdown::Write);
        self.linger_until = Some(tick.after(LINGER));
        self.readable = true;
        self.linger()
    }

    /// Lingering: reads and drops what the client still sends, until its EOF.
    fn linger(&mut self) -> Flow {
        if socket::drain(&mut self.stream) {
            Flow::Close
        } else {
            Flow::Yield
        }
    }
}

/// Buffers the worker lends a connection that holds none for a round (see
/// [`Connection::process`]).
struct Spare<'a> {
    /// Always empty: the input of a round that has none (asked for capacity 0, it
    /// holds 1 byte: `ReadBuf::with_capacity` never makes an empty buffer).
    input: ReadBuf,
    /// An output buffer as the pool gives it, kept between rounds that write nothing
    /// and given back at the end of the loop's turn.
    output: Option<Pooled<'a, Box<WriteBuf>>>,
}

pub(super) struct EventLoop<'a, S: Service<'a>> {
    listener: Option<TcpListener>,
    poll: Poll,
    conns: Slab<Connection<'a, S::Handler>>,
    service: S,
    /// The service's per-worker state (the handlers' `Local` state, its own sockets).
    state: S::State,
    shared: &'a Shared,
    ctx: Ctx<'a>,
    config: &'a Config,
    stop: &'a AtomicBool,
    accept_paused_until: Option<Instant>,
    shutdown_deadline: Option<Instant>,
    next_sweep: Tick,
    next_trim: Tick,
    /// When the worker started: where its [`Tick`]s count from.
    epoch: Instant,
    /// The clock, read after each poll and again after every [`ROUNDS_PER_TURN`]
    /// rounds within a turn: a reading is at most that many rounds' work old (one
    /// connection's whole turn, about a millisecond), not the whole turn's, however
    /// many connections it drives. An ordinary turn runs fewer rounds and reads the
    /// clock once.
    now: Instant,
    /// `now` as a [`Tick`].
    tick: Tick,
    /// Rounds run since the clock was last read.
    rounds_since_clock: u32,
    spare: Spare<'a>,
    index: usize,
    /// Keys to act on after a sweep (kept to reuse its allocation).
    expired: Vec<(usize, Expiry)>,
    /// Connections that used their turn with work left, in the order they did.
    ready: VecDeque<usize>,
}

#[derive(Clone, Copy, Debug)]
enum Expiry {
    /// A partial head timed out: answer 408.
    Header,
    /// Close without a word.
    Close,
    /// The service's deadline for the exchange passed.
    Service,
}

impl<'a, S: Service<'a>> EventLoop<'a, S> {
    pub(super) fn new(
        index: usize,
        mut listener: TcpListener,
        service: S,
        shared: &'a Shared,
        config: &'a Config,
        stop: &'a AtomicBool,
    ) -> io::Result<Self> {
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let capacity = (config.limits.max_connections / config.threads.max(1)).clamp(16, 4096);
        let state = service.state(index, poll.registry())?;
        let epoch = Instant::now();
        let start = Tick::at(epoch, epoch);
        Ok(Self {
            listener: Some(listener),
            poll,
            conns: Slab::with_capacity(capacity),
            service,
            state,
            shared,
            ctx: shared.context(index),
            config,
            stop,
            accept_paused_until: None,
            shutdown_deadline: None,
            next_sweep: start.after(TICK),
            next_trim: start.after(TRIM_INTERVAL),
            epoch,
            now: epoch,
            rounds_since_clock: 0,
            tick: start,
            spare: Spare {
                input: ReadBuf::with_capacity(0),
                output: None,
            },
            index,
            expired: Vec::with_capacity(64),
            ready: VecDeque::with_capacity(capacity),
        })
    }

    pub(super) fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        loop {
            if self.stop.load(Ordering::Acquire) && self.shutdown_deadline.is_none() {
                self.begin_shutdown();
            }
            if let Some(deadline) = self.shutdown_deadline {
                if self.conns.is_empty() || Instant::now() >= deadline {
                    break;
                }
            }
            // Connections waiting for another turn: look for new events without
            // sleeping, then serve them all.
            let timeout = if self.ready.is_empty() {
                TICK
            } else {
                Duration::ZERO
            };
            match self.poll.poll(&mut events, Some(timeout)) {
                Ok(()) => {}
                Err(e) if socket::interrupted(&e) => continue,
                Err(e) => return Err(e),
            }
            self.read_clock();
            self.shared.dates.refresh();
            self.dispatch(&events);
            self.serve_ready_queue();
            self.timers();
            // Between turns the worker holds no buffer: a spare goes back to its pool.
            self.spare.output = None;
        }
        // Whatever is left past the shutdown deadline is dropped; dirty write buffers
        // are refused by their pool.
        for key in self.conns.iter().map(|(key, _)| key).collect::<Vec<_>>() {
            self.close(key);
        }
        Ok(())
    }

    /// Acts on one poll's events: the service's own sockets first, so that what they
    /// said (an idle upstream connection closed or written to) is known before any
    /// client's request can take one of them; then the listener and the clients.
    fn dispatch(&mut self, events: &Events) {
        for event in events.iter() {
            let Token(token) = event.token();
            if token != LISTENER.0 && token & SERVICE_TOKEN != 0 {
                if let Some(key) = S::event(&mut self.state, token & !SERVICE_TOKEN, event) {
                    self.drive_from_service(key);
                }
            }
        }
        for event in events.iter() {
            match event.token() {
                LISTENER => self.accept(),
                Token(token) if token & SERVICE_TOKEN != 0 => {} // above
                Token(key) => {
                    let Some(conn) = self.conns.get_mut(key) else {
                        continue; // sporadic event for a closed connection
                    };
                    if event.is_readable() || event.is_read_closed() || event.is_error() {
                        conn.readable = true;
                    }
                    conn.hup |= event.is_read_closed() || event.is_error();
                    self.drive(key);
                }
            }
        }
    }

    /// Each waiting connection gets one more turn, behind the events just served; one
    /// that uses it up again goes to the back.
    fn serve_ready_queue(&mut self) {
        for _ in 0..self.ready.len() {
            let Some(key) = self.ready.pop_front() else {
                break;
            };
            match self.conns.get_mut(key) {
                Some(conn) if conn.queued => {
                    conn.queued = false;
                    self.drive(key);
                }
                _ => {} // closed (and maybe reused) since it was queued
            }
        }
    }

    /// The loop's timers, on the turn's clock reading: accepting again after a pause,
    /// the per-tick sweep of deadlines, and (worker 0) the pools' trim.
    fn timers(&mut self) {
        let now = self.now;
        if self.accept_paused_until.is_some_and(|until| now >= until) {
            self.accept_paused_until = None;
            self.accept();
        }
        if self.tick.reached(self.next_sweep) {
            self.next_sweep = self.tick.after(TICK);
            self.sweep(now);
        }
        if self.index == 0 && self.tick.reached(self.next_trim) {
            self.next_trim = self.tick.after(TRIM_INTERVAL);
            self.shared.readers.trim();
            self.shared.writers.trim();
        }
    }

    fn begin_shutdown(&mut self) {
        log::debug!("worker shutting down with {} connections", self.conns.len());
        if let Some(mut listener) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        self.ctx.closing = true;
        self.shutdown_deadline = Some(Instant::now() + self.config.shutdown_timeout);
        S::shutdown(&mut self.state);
        let idle: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| c.http.awaiting_head() && c.rbuf.is_none() && !c.pending_output())
            .map(|(key, _)| key)
            .collect();
        for key in idle {
            self.close(key);
        }
    }

    fn accept(&mut self) {
        if self.accept_paused_until.is_some() {
            return;
        }
        loop {
            let Some(listener) = &self.listener else {
                return;
            };
            match listener.accept() {
                Ok((stream, peer)) => {
                    if !self.shared.try_open() {
                        log::debug!("refusing {peer}: max connections open");
                        drop(stream); // closed at once; the others keep being served
                        continue;
                    }
                    if let Err(e) = self.register(stream, peer) {
                        log::warn!("cannot register a connection: {e}");
                        self.shared.close();
                    }
                }
                Err(e) if socket::would_block(&e) => return,
                // A connection reset before it was accepted is no reason to stop.
                Err(e) if socket::interrupted(&e) || e.kind() == ErrorKind::ConnectionAborted => {}
                Err(e) => {
                    // EMFILE, ENFILE, ENOBUFS, ENOMEM: back off instead of spinning on a
                    // listener that stays readable.
                    log::warn!("accept failed: {e}; pausing accepts for {ACCEPT_BACKOFF:?}");
                    self.accept_paused_until = Some(Instant::now() + ACCEPT_BACKOFF);
                    return;
                }
            }
        }
    }

    fn register(&mut self, mut stream: TcpStream, peer: SocketAddr) -> io::Result<()> {
        stream.set_nodelay(true)?;
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        self.poll
            .registry()
            .register(&mut stream, Token(key), Interest::READABLE)?;
        let now = self.tick;
        entry.insert(Connection {
            stream,
            http: Conn::new(self.service.handler(peer)),
            rbuf: None,
            wbuf: None,
            readable: true, // try at once: the request often arrived with the handshake
            read_closed: false,
            hup: false,
            writable_interest: false,
            head_deadline: Some(now.after(self.config.limits.header_timeout)),
            last_active: now,
            linger_until: None,
            queued: false,
        });
        self.drive(key);
        Ok(())
    }

    /// [`drive`](Self::drive), for an event on one of the service's own sockets: its
    /// I/O goes first, so the first round's `process` sees what it brought (the
    /// proxy's upstream answer), rather than a round asking the handler for a
    /// response that has not been read yet. Pumping is what every round does after
    /// `process`; this is one more, before.
    fn drive_from_service(&mut self, key: usize) {
        if let Some(conn) = self.conns.get_mut(key) {
            if conn.linger_until.is_none() {
                S::pump(&mut self.state, key, conn.http.handler_mut(), self.now);
            }
        }
        self.drive(key);
    }

    /// Reads, processes and writes until nothing moves, or the turn's budget is spent
    /// (then the connection waits in the ready queue for another turn).
    fn drive(&mut self, key: usize) {
        let mut rounds = 0;
        loop {
            let flow = self.round(key, self.now, self.tick);
            self.rounds_since_clock += 1;
            if self.rounds_since_clock == ROUNDS_PER_TURN {
                self.read_clock();
            }
            match flow {
                Flow::Again => {
                    rounds += 1;
                    if rounds == ROUNDS_PER_TURN {
                        self.requeue(key);
                        break;
                    }
                }
                Flow::Yield => break,
                Flow::Close => {
                    self.close(key);
                    return;
                }
            }
        }
        self.update_interest(key);
    }

    /// Reads the clock into `now` and `tick`.
    fn read_clock(&mut self) {
        self.now = Instant::now();
        self.tick = Tick::at(self.epoch, self.now);
        self.rounds_since_clock = 0;
    }

    /// One round of a connection's turn: read, process, the service's own I/O, write,
    /// then the bookkeeping; says whether to go round again.
    fn round(&mut self, key: usize, now: Instant, tick: Tick) -> Flow {
        let shared = self.shared;
        let Some(conn) = self.conns.get_mut(key) else {
            return Flow::Close; // closed already: nothing to close
        };
        if conn.linger_until.is_some() {
            return conn.linger();
        }
        if conn.client_gone() {
            return Flow::Close;
        }
        let Ok(read) = conn.read(shared, tick) else {
            return Flow::Close; // reset by peer and the like
        };
        let processed = conn.process(
            shared,
            &mut self.ctx,
            S::local(&mut self.state),
            &mut self.spare,
        );
        // The service's own I/O for this exchange (the proxy's upstream side).
        let pumped = S::pump(&mut self.state, key, conn.http.handler_mut(), now);
        let full = conn.output_full();
        let Ok(written) = conn.write(tick) else {
            return Flow::Close; // the dirty buffer goes back and is refused
        };
        self.ctx
            .note_buffered(conn.buffered() + S::buffered(conn.http.handler()));
        conn.release_idle_buffers();
        conn.update_head_deadline(tick, shared.limits.header_timeout);
        if conn.http.is_done() && !conn.pending_output() {
            return conn.finish(tick);
        }
        // Again only when this round made work possible for a step that ran before the
        // step that made it possible (each step already ran after the ones before it):
        // the service gave the handler something new, or made room for client input
        // that is waiting (buffered, still in the socket, or its end not yet
        // reported); the output had stopped `process` at its high-water mark and was
        // written; or a read that stopped at its cap may go on now that there is room.
        // A round that read a request, forwarded or answered it and wrote what there
        // was is the last: the round that would find nothing to do is saved (two of a
        // proxied request's six, one of a served request's two). The room term is what
        // finishes an upload bigger than the proxy's copy buffer that arrived in one
        // write. tests/proxy.rs guards it: `uploads_of_every_size_in_one_write_complete_
        // on_a_reused_upstream_connection`, `uploads_in_one_write_complete_on_fresh_
        // connections` and `pipelined_requests_around_an_upload_are_all_answered` hang
        // (and fail on their clients' timeouts) without it.
        let input_waiting = conn.readable
            || conn.rbuf.is_some() // given back when empty
            || (conn.read_closed && !conn.http.is_done());
        if pumped.input
            || (pumped.room && input_waiting)
            || (written && full)
            || (conn.readable && (read || processed))
        {
            return Flow::Again;
        }
        if !conn.pending_output() && conn.http.take_shutdown() {
            // A tunnel's other side ended its direction: so does this one, after what
            // was written (the client's direction goes on).
            let _ = conn.stream.shutdown(Shutdown::Write);
            return Flow::Again;
        }
        Flow::Yield
    }

    /// Work left, and the turn's budget is spent: the others first. (Edge-triggered
    /// readiness will not report bytes already waiting: the queue must.)
    fn requeue(&mut self, key: usize) {
        if let Some(conn) = self.conns.get_mut(key) {
            if !conn.queued {
                conn.queued = true;
                self.ready.push_back(key);
            }
        }
    }

    /// WRITABLE only while output is pending.
    fn update_interest(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let want = conn.pending_output();
        if want != conn.writable_interest {
            let interest = if want {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            if self
                .poll
                .registry()
                .reregister(&mut conn.stream, Token(key), interest)
                .is_err()
            {
                self.close(key);
                return;
            }
            conn.writable_interest = want;
        }
    }

    fn close(&mut self, key: usize) {
        if let Some(mut conn) = self.conns.try_remove(key) {
            conn.http.abort(S::local(&mut self.state));
            S::pump(
                &mut self.state,
                key,
                conn.http.handler_mut(),
                Instant::now(),
            );
            let _ = self.poll.registry().deregister(&mut conn.stream);
            self.shared.close();
            // `conn` drops here: the socket closes and its buffers go back to their
            // pools, where a write buffer with unflushed bytes is refused.
        }
    }

    /// Acts on every deadline that passed.
    fn sweep(&mut self, now: Instant) {
        let limits = &self.shared.limits;
        let tick = self.tick;
        S::tick(&mut self.state, now);
        self.expired.clear();
        for (key, conn) in self.conns.iter() {
            let service = S::deadline(conn.http.handler());
            let expiry = if service.is_some_and(|deadline| now >= deadline) {
                Some(Expiry::Service)
            } else if let Some(until) = conn.linger_until {
                tick.reached(until).then_some(Expiry::Close)
            } else if conn.pending_output() {
                (tick.since(conn.last_active) >= limits.write_timeout).then_some(Expiry::Close)
            } else if let Some(deadline) = conn.head_deadline {
                let partial = conn.rbuf.is_some();
                tick.reached(deadline).then_some(if partial {
                    Expiry::Header
                } else {
                    Expiry::Close
                })
            } else if service.is_some() {
                None // waiting on the service, which has its own deadline
            } else {
                (tick.since(conn.last_active) >= limits.idle_timeout).then_some(Expiry::Close)
            };
            if let Some(expiry) = expiry {
                self.expired.push((key, expiry));
            }
        }
        for i in 0..self.expired.len() {
            let (key, expiry) = self.expired[i];
            match expiry {
                Expiry::Close => self.close(key),
                Expiry::Header => {
                    let conn = &mut self.conns[key];
                    let wbuf = conn.wbuf.get_or_insert_with(|| self.shared.writers.get());
                    conn.http
                        .on_header_timeout(wbuf, &mut self.ctx, S::local(&mut self.state));
                    self.drive(key);
                }
                Expiry::Service => {
                    let conn = &mut self.conns[key];
                    S::on_deadline(&mut self.state, conn.http.handler_mut(), now);
                    self.drive(key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a worker's `Slab` stores per connection (slab 0.4's own entry type, which is
    /// private): the connection, or the index of the next vacant entry.
    #[allow(dead_code)]
    enum SlabEntry<T> {
        Vacant(usize),
        Occupied(T),
    }

    /// The memory budget of an idle keep-alive connection: 256 bytes, for `serve` and
    /// for `proxy`. The slab is allocated up front and an idle connection holds no
    /// buffer and no upstream connection, so its slab entry is all the memory it takes
    /// from the process: `bench/idle-conns.sh` measures it as the RSS delta per
    /// connection at N = 5,000 and 15,000 (the slab's spare room past N and the
    /// kernel's socket memory are not in that number). A field added to `Connection`,
    /// `Conn` or a handler's idle state must fit in what is left, or move into
    /// something an idle connection does not hold.
    const IDLE_CONNECTION_BUDGET: usize = 256;

    #[test]
    fn an_idle_connection_fits_its_memory_budget() {
        use std::mem::size_of;

        use crate::app::App;
        use crate::proxy::handler::ProxyHandler;

        let serve = size_of::<SlabEntry<Connection<'static, App<'static>>>>();
        let proxy = size_of::<SlabEntry<Connection<'static, ProxyHandler>>>();
        eprintln!("slab entry: serve {serve} B, proxy {proxy} B");
        assert!(
            serve <= IDLE_CONNECTION_BUDGET,
            "serve: {serve} B per connection"
        );
        assert!(
            proxy <= IDLE_CONNECTION_BUDGET,
            "proxy: {proxy} B per connection"
        );
    }
}
