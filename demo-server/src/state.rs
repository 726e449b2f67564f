//! Server-wide state shared by every worker: limits, pools, caches, counters.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use crossbeam_utils::CachePadded;
use recycle::Pool;
use recycle::io::{ReadBuf, WriteBuf};
use recycle::status::{Clock, DateCache, LineReader, StatusLines, SystemClock};

/// Default `--max-head-bytes`.
pub const DEFAULT_MAX_HEAD_BYTES: usize = 16 * 1024;
/// Default `--max-body-bytes`.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 8 * 1024 * 1024;

/// Capacity of a pooled read buffer; it grows (up to the head limit) for larger heads.
pub const READ_BUF_SIZE: usize = 4 * 1024;
/// Capacity of a pooled write buffer.
pub const WRITE_BUF_SIZE: usize = 16 * 1024;
/// Buffers that grew past this are not kept by their pool.
pub const MAX_POOLED_BUF: usize = 256 * 1024;

/// The limits a connection is held to.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Most bytes a request head may take (431 past it).
    pub max_head_bytes: usize,
    /// Most bytes a request body may take (413 past it).
    pub max_body_bytes: u64,
    /// Time allowed for a complete request head, from its first byte (408 after it).
    pub header_timeout: Duration,
    /// Time a keep-alive connection may sit idle between requests, or a request body
    /// may stall.
    pub idle_timeout: Duration,
    /// Time pending output may make no progress before the connection is dropped.
    pub write_timeout: Duration,
    /// Most open connections across all workers; more are closed at once.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_head_bytes: DEFAULT_MAX_HEAD_BYTES,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(30),
            max_connections: 10_000,
        }
    }
}

/// What all workers share.
pub struct Shared {
    /// Connection limits.
    pub limits: Limits,
    /// Read buffers: borrowed while a connection has unparsed bytes.
    pub readers: Pool<ReadBuf>,
    /// Write buffers: borrowed while a connection has output pending.
    pub writers: Pool<WriteBuf>,
    /// Status lines.
    pub lines: StatusLines,
    /// The `Date` header value.
    pub dates: DateCache<Box<dyn Clock>>,
    /// Whether to log every request at `info` under the `access` target.
    pub access_log: bool,
    open: AtomicUsize,
    /// Requests served, one single-writer counter per worker.
    served: Box<[CachePadded<AtomicU64>]>,
}

impl Shared {
    /// State for `workers` workers on the system clock.
    pub fn new(limits: Limits, workers: usize, access_log: bool) -> Self {
        Self::with_clock(limits, workers, access_log, Box::new(SystemClock))
    }

    /// State for `workers` workers on `clock` (tests freeze time with their own).
    pub fn with_clock(
        limits: Limits,
        workers: usize,
        access_log: bool,
        clock: Box<dyn Clock>,
    ) -> Self {
        Self {
            limits,
            readers: Pool::builder(|| ReadBuf::with_capacity(READ_BUF_SIZE))
                .max_capacity(MAX_POOLED_BUF)
                .max_idle(1024)
                .build(),
            writers: Pool::builder(|| WriteBuf::with_capacity(WRITE_BUF_SIZE))
                .max_capacity(MAX_POOLED_BUF)
                .max_idle(1024)
                .build(),
            lines: StatusLines::new(),
            dates: DateCache::with_clock(clock),
            access_log,
            open: AtomicUsize::new(0),
            served: (0..workers.max(1))
                .map(|_| CachePadded::new(AtomicU64::new(0)))
                .collect(),
        }
    }

    /// A worker's view: its own status-line reader and counter.
    pub fn context(&self, worker: usize) -> Ctx<'_> {
        assert!(worker < self.served.len(), "worker {worker} out of range");
        Ctx {
            shared: self,
            lines: self.lines.reader(),
            worker,
            closing: false,
        }
    }

    /// Open connections right now.
    pub fn open_connections(&self) -> usize {
        self.open.load(Relaxed)
    }

    /// Counts a new connection unless `max_connections` are open; returns whether it
    /// was admitted.
    pub fn try_open(&self) -> bool {
        let max = self.limits.max_connections;
        self.open
            .fetch_update(Relaxed, Relaxed, |n| (n < max).then_some(n + 1))
            .is_ok()
    }

    /// Counts a closed connection.
    pub fn close(&self) {
        self.open.fetch_sub(1, Relaxed);
    }

    /// Requests served by all workers.
    pub fn requests_served(&self) -> u64 {
        self.served.iter().map(|c| c.load(Relaxed)).sum()
    }
}

/// One worker's handle on the shared state, passed to the connection state machine.
pub struct Ctx<'a> {
    /// The shared state.
    pub shared: &'a Shared,
    /// This worker's status-line reader.
    pub lines: LineReader<'a>,
    worker: usize,
    /// Set when the server shuts down: responses close their connection.
    pub closing: bool,
}

impl Ctx<'_> {
    /// Counts one request served by this worker (a load and a store: one writer).
    pub fn count_request(&self) {
        let counter = &self.shared.served[self.worker];
        counter.store(counter.load(Relaxed) + 1, Relaxed);
    }
}
