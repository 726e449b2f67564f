//! Server-wide state shared by every worker: limits, pools, caches, counters.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use crossbeam_utils::CachePadded;
use recycle_pool::Pool;
use recycle_pool::io::{ReadBuf, WriteBuf};
use recycle_pool::status::{Clock, DateCache, StatusLines, SystemClock};

use crate::http::conn::Settings;
use crate::http::parse::Request;

pub use crate::http::conn::{DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_HEAD_BYTES};

/// Timeouts are at most a day: longer than any sensible deadline, and far from where
/// `Instant + Duration` overflows.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);
/// Timeouts are at least a millisecond (the shutdown timeout may be zero).
pub const MIN_TIMEOUT: Duration = Duration::from_millis(1);
/// Fewest bytes `max_head_bytes` may be: a small request with a few fields.
pub const MIN_HEAD_BYTES: usize = 256;
/// Most bytes `max_head_bytes` may be (1 MiB, Go's default).
pub const MAX_HEAD_BYTES: usize = 1 << 20;
/// Most connections `max_connections` may admit.
pub const MAX_CONNECTIONS: usize = 1_000_000;
/// Most worker threads.
pub const MAX_THREADS: usize = 1024;

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

impl Limits {
    /// Checks that every limit is in its range ([`MIN_HEAD_BYTES`]..=[`MAX_HEAD_BYTES`],
    /// timeouts [`MIN_TIMEOUT`]..=[`MAX_TIMEOUT`], 1..=[`MAX_CONNECTIONS`]).
    ///
    /// # Errors
    ///
    /// A message naming the first limit out of range.
    pub fn check(&self) -> Result<(), String> {
        let head = MIN_HEAD_BYTES..=MAX_HEAD_BYTES;
        if !head.contains(&self.max_head_bytes) {
            return Err(format!("max_head_bytes must be in {head:?}"));
        }
        for (name, timeout) in [
            ("header_timeout", self.header_timeout),
            ("idle_timeout", self.idle_timeout),
            ("write_timeout", self.write_timeout),
        ] {
            check_timeout(timeout, MIN_TIMEOUT).map_err(|e| format!("{name} {e}"))?;
        }
        if !(1..=MAX_CONNECTIONS).contains(&self.max_connections) {
            return Err(format!("max_connections must be in 1..={MAX_CONNECTIONS}"));
        }
        Ok(())
    }
}

/// Checks that `timeout` is in `min..=`[`MAX_TIMEOUT`].
///
/// # Errors
///
/// "must be between {min} and 1day".
pub fn check_timeout(timeout: Duration, min: Duration) -> Result<(), String> {
    if timeout < min || timeout > MAX_TIMEOUT {
        return Err(format!(
            "must be between {} and {}",
            humantime::format_duration(min),
            humantime::format_duration(MAX_TIMEOUT)
        ));
    }
    Ok(())
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
    /// Read buffers: borrowed while a connection has unparsed bytes. Boxed, so that a
    /// connection's handle on one is two words (see the worker's memory budget).
    pub readers: Pool<Box<ReadBuf>>,
    /// Write buffers: borrowed while a connection has output pending (boxed, as
    /// `readers`).
    pub writers: Pool<Box<WriteBuf>>,
    /// Status lines.
    pub lines: StatusLines,
    /// The `Date` header value.
    pub dates: DateCache<Box<dyn Clock>>,
    /// Whether to log every request at `info` under the `access` target.
    pub access_log: bool,
    open: AtomicUsize,
    /// Requests served, one single-writer counter per worker.
    served: Box<[CachePadded<AtomicU64>]>,
    /// The most bytes one connection held buffered at once, one single-writer maximum
    /// per worker.
    peak: Box<[CachePadded<AtomicUsize>]>,
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
            readers: Pool::builder(|| Box::new(ReadBuf::with_capacity(READ_BUF_SIZE)))
                .max_capacity(MAX_POOLED_BUF)
                .max_idle(1024)
                .build(),
            writers: Pool::builder(|| Box::new(WriteBuf::with_capacity(WRITE_BUF_SIZE)))
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
            peak: (0..workers.max(1))
                .map(|_| CachePadded::new(AtomicUsize::new(0)))
                .collect(),
        }
    }

    /// A worker's view: the [`Settings`] it lends its connections (its own
    /// status-line reader) and its counters.
    pub fn context(&self, worker: usize) -> Ctx<'_> {
        assert!(worker < self.served.len(), "worker {worker} out of range");
        let mut settings = Settings::new(&self.lines, &self.dates);
        settings.max_head_bytes = self.limits.max_head_bytes;
        settings.max_body_bytes = self.limits.max_body_bytes;
        settings.answered = Some(&self.served[worker]);
        if self.access_log {
            settings.on_request = Some(log_access);
        }
        Ctx {
            settings,
            shared: self,
            worker,
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

    /// The most bytes one connection held buffered at once since the start (its read
    /// and write buffers, and for the proxy its copy buffers): how far memory per
    /// connection went, whatever the bodies' sizes.
    pub fn peak_buffered(&self) -> usize {
        self.peak.iter().map(|c| c.load(Relaxed)).max().unwrap_or(0)
    }
}

/// One worker's handle on the shared state: the [`Settings`] it lends its connections
/// (a `&mut Ctx` passes for a `&mut Settings`), and the counters it keeps for them.
pub struct Ctx<'a> {
    /// What the connections see.
    pub settings: Settings<'a>,
    shared: &'a Shared,
    worker: usize,
}

impl<'a> std::ops::Deref for Ctx<'a> {
    type Target = Settings<'a>;

    #[inline]
    fn deref(&self) -> &Settings<'a> {
        &self.settings
    }
}

impl<'a> std::ops::DerefMut for Ctx<'a> {
    #[inline]
    fn deref_mut(&mut self) -> &mut Settings<'a> {
        &mut self.settings
    }
}

impl Ctx<'_> {
    /// Notes that a connection holds `bytes` buffered (for
    /// [`Shared::peak_buffered`]).
    #[inline]
    pub fn note_buffered(&self, bytes: usize) {
        let peak = &self.shared.peak[self.worker];
        if bytes > peak.load(Relaxed) {
            peak.store(bytes, Relaxed);
        }
    }
}

/// The access log: one line per request head, at `info` under the `access` target
/// (`--access-log`).
fn log_access(req: &Request<'_>) {
    log::info!(
        target: "access",
        "{} {} {}",
        req.method_name,
        String::from_utf8_lossy(req.path),
        req.head.version.as_str()
    );
}
