//! Integration tests for `recycle_pool::io`.

use std::io::{self, BufRead, ErrorKind, Read, Write};
use std::sync::Mutex;

use recycle_pool::Pool;
use recycle_pool::io::{BufferPool, PooledReader, PooledWriter, ReadBuf, WriteBuf, copy};

const SECRET: &[u8] = b"Authorization: Bearer s3cr3t-t0k3n-of-the-previous-client";

#[path = "checks/rng.rs"]
mod rng;
use rng::Rng;

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Any 8 consecutive bytes of the secret.
fn leaks_secret(bytes: &[u8]) -> bool {
    SECRET.windows(8).any(|piece| contains(bytes, piece))
}

/// A source that records the whole buffer it is handed, then yields `data`.
struct Spy<'a> {
    seen: Vec<u8>,
    data: &'a [u8],
}
impl Read for Spy<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.seen.extend_from_slice(buf);
        let n = self.data.len().min(buf.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

#[test]
fn read_buf_never_yields_a_previous_connections_bytes() {
    let pool = Pool::new(|| ReadBuf::with_capacity(256));
    let addr = {
        let mut buf = pool.get();
        buf.read_from(&mut &SECRET[..]).unwrap();
        buf.consume(10); // part of it read, the rest still buffered
        buf.filled().as_ptr() as usize - 10
    };
    let mut buf = pool.get();
    assert_eq!(
        buf.filled().as_ptr() as usize,
        addr,
        "the same allocation came back"
    );
    assert!(buf.is_empty());
    assert!(!buf.is_eof() && buf.error().is_none());

    // Every public way to look at the buffer: the filled part, the spare space handed
    // to a reader, after growing and compacting, and its Debug output.
    let mut spy = Spy {
        seen: Vec::new(),
        data: b"GET / HTTP/1.1\r\n",
    };
    buf.read_from(&mut spy).unwrap();
    assert!(
        !leaks_secret(&spy.seen),
        "a reader was handed the old bytes"
    );
    assert!(spy.seen.iter().all(|&b| b == 0));
    assert_eq!(buf.filled(), b"GET / HTTP/1.1\r\n");
    buf.consume(4);
    buf.reserve(1024);
    let mut spy = Spy {
        seen: Vec::new(),
        data: b"",
    };
    buf.read_from(&mut spy).unwrap();
    assert!(!leaks_secret(&spy.seen));
    assert!(!leaks_secret(buf.filled()));
    assert!(!leaks_secret(format!("{buf:?}").as_bytes()));
}

#[test]
fn pooled_reader_never_yields_a_previous_connections_bytes() {
    let pool = Pool::new(|| ReadBuf::with_capacity(128));
    {
        let mut first = PooledReader::new(SECRET, pool.get());
        let mut word = [0u8; 5];
        first.read_exact(&mut word).unwrap();
        assert_eq!(&word, b"Autho");
        assert!(
            !first.buffer().is_empty(),
            "the rest of the secret is buffered"
        );
    }
    let mut spy = Spy {
        seen: Vec::new(),
        data: b"next client\n",
    };
    let mut second = PooledReader::new(&mut spy, pool.get());
    let mut everything = Vec::new();
    second.read_to_end(&mut everything).unwrap();
    assert_eq!(everything, b"next client\n");
    drop(second);
    assert!(!leaks_secret(&spy.seen));
    assert_eq!(
        pool.stats().hits,
        1,
        "the second reader reused the first one's buffer"
    );
}

/// A reader over a `TrustedRead` source (`PooledReader::trusted`) scrubs only the bytes
/// it received, which is what makes it cheaper than `new`, and still never hands a
/// previous stream's bytes to the next one. A source that breaks the promise (it writes
/// past what it reports) shows which path ran: its scribble survives the trusted
/// reader, and `new` zeroes it.
#[test]
fn a_trusted_pooled_reader_scrubs_only_what_it_received() {
    /// Reports `data` but also writes `0xAA` over the rest of the slice.
    struct Scribbler<'a>(&'a [u8]);
    impl Read for Scribbler<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(buf.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            buf[n..].fill(0xAA);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }
    impl recycle_pool::io::TrustedRead for Scribbler<'_> {}

    for trusted in [true, false] {
        let pool = Pool::new(|| ReadBuf::with_capacity(128));
        {
            let source = Scribbler(SECRET);
            let mut first = if trusted {
                PooledReader::trusted(source, pool.get())
            } else {
                PooledReader::new(source, pool.get())
            };
            let mut all = Vec::new();
            first.read_to_end(&mut all).unwrap();
            assert_eq!(all, SECRET);
        }
        let mut spy = Spy {
            seen: Vec::new(),
            data: b"next",
        };
        let mut second = PooledReader::new(&mut spy, pool.get());
        let mut all = Vec::new();
        second.read_to_end(&mut all).unwrap();
        drop(second);
        assert_eq!(all, b"next");
        assert!(!leaks_secret(&spy.seen), "what it received was scrubbed");
        assert_eq!(
            spy.seen.contains(&0xAA),
            trusted,
            "trusted: only the received bytes were zeroed"
        );
    }
}

/// `PooledReader` is covariant in its reader, as `BufReader` is: a reader over a
/// longer-lived source can stand in for one over a shorter-lived source (this fails to
/// compile if a field makes it invariant).
#[allow(dead_code)]
fn pooled_reader_is_covariant_in_its_reader<'a>(
    reader: PooledReader<&'static [u8], Box<ReadBuf>>,
) -> PooledReader<&'a [u8], Box<ReadBuf>> {
    reader
}

/// A trusted reader on a caller-managed buffer that an untrusted source wrote all over
/// starts clean too: `trusted` drains the buffer as `new` does.
#[test]
fn a_trusted_pooled_reader_on_a_reused_plain_buffer_scrubs_it() {
    let mut buf = ReadBuf::with_capacity(128);
    {
        let mut first = PooledReader::new(SECRET, &mut buf);
        let mut word = [0u8; 5];
        first.read_exact(&mut word).unwrap(); // the rest stays buffered
    }
    let mut spy = Spy {
        seen: Vec::new(),
        data: b"next",
    };
    struct Trusted<'a, 'b>(&'a mut Spy<'b>);
    impl Read for Trusted<'_, '_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.0.read(buf)
        }
    }
    impl recycle_pool::io::TrustedRead for Trusted<'_, '_> {}
    let mut all = Vec::new();
    PooledReader::trusted(Trusted(&mut spy), &mut buf)
        .read_to_end(&mut all)
        .unwrap();
    assert_eq!(all, b"next");
    assert!(!leaks_secret(&spy.seen) && !leaks_secret(buf.filled()));
}

/// A reader made on a caller-managed buffer that another
/// stream's reader used (here a plain `&mut ReadBuf`, never through a pool's hook)
/// starts as a pooled one does: the old bytes scrubbed, EOF and error cleared.
#[test]
fn pooled_reader_on_a_reused_plain_buffer_scrubs_and_resets_it() {
    let mut buf = ReadBuf::with_capacity(128);
    {
        let mut first = PooledReader::new(SECRET, &mut buf);
        let mut line = Vec::new();
        first.read_to_end(&mut line).unwrap(); // to EOF
    }
    assert!(buf.is_eof());
    {
        let mut second = PooledReader::new(&b""[..], &mut buf);
        assert!(second.fill_buf().unwrap().is_empty());
    }
    assert!(buf.is_eof(), "the second stream ended too");
    {
        // A stream that fails: its error stays with the buffer, not with the next one.
        struct Reset;
        impl Read for Reset {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                for (byte, secret) in buf.iter_mut().zip(SECRET.iter().cycle()) {
                    *byte = *secret;
                }
                Err(ErrorKind::ConnectionReset.into())
            }
        }
        let mut third = PooledReader::new(Reset, &mut buf);
        assert!(third.fill_buf().is_err());
    }
    assert_eq!(buf.error(), Some(ErrorKind::ConnectionReset));

    let mut spy = Spy {
        seen: Vec::new(),
        data: b"next client\n",
    };
    {
        let _fourth = PooledReader::new(&mut spy, &mut buf);
    }
    assert!(buf.is_empty() && !buf.is_eof() && buf.error().is_none());
    let mut line = String::new();
    PooledReader::new(&mut spy, &mut buf)
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "next client\n");
    assert_eq!(spy.seen.len(), 128);
    assert!(spy.seen.iter().all(|&b| b == 0), "handed {:?}", spy.seen);
}

#[test]
fn read_buf_compacts_and_grows_without_losing_bytes() {
    let mut rng = Rng(0x5eed);
    let input: Vec<u8> = (0..20_000).map(|i| (i % 251) as u8).collect();
    let mut source = &input[..];
    let mut buf = ReadBuf::with_capacity(64);
    let mut out = Vec::new();
    loop {
        if buf.read_from(&mut source).unwrap() == 0 && buf.is_empty() {
            break;
        }
        let take = (rng.below(100) as usize).min(buf.len());
        out.extend_from_slice(&buf.filled()[..take]);
        buf.consume(take);
    }
    assert!(buf.is_eof());
    assert_eq!(out, input);
}

#[test]
fn dirty_write_bufs_are_discarded() {
    let pool = Pool::new(WriteBuf::new);

    // Unflushed bytes.
    let mut w = pool.get();
    w.extend_from_slice(b"half a response");
    drop(w);
    assert_eq!(pool.stats().discards, 1);
    assert!(pool.get().is_empty());

    // A write error, even with nothing left unflushed afterwards.
    struct Broken;
    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::new(ErrorKind::ConnectionReset, "reset"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut w = pool.get();
    w.extend_from_slice(b"x");
    assert_eq!(
        w.flush_to(&mut Broken).unwrap_err().kind(),
        ErrorKind::ConnectionReset
    );
    assert_eq!(w.error(), Some(ErrorKind::ConnectionReset));
    drop(w);
    assert_eq!(pool.stats().discards, 2);

    // A clean one is kept.
    let mut w = pool.get();
    w.extend_from_slice(b"ok");
    w.flush_to(&mut Vec::new()).unwrap();
    drop(w);
    let s = pool.stats();
    assert_eq!((s.discards, s.idle), (2, 1));
    let w = pool.get();
    assert!(w.is_clean() && w.is_empty());
}

/// Accepts 1..=7 bytes per call, or says WouldBlock, at random.
struct Trickle {
    rng: Rng,
    out: Vec<u8>,
}
impl Write for Trickle {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.rng.below(4) {
            0 => Err(ErrorKind::WouldBlock.into()),
            1 if self.rng.below(2) == 0 => Err(ErrorKind::Interrupted.into()),
            _ => {
                let n = (1 + self.rng.below(7) as usize).min(buf.len());
                self.out.extend_from_slice(&buf[..n]);
                Ok(n)
            }
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn partial_writes_deliver_the_exact_stream() {
    for seed in 1..=200u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut sink = Trickle {
            rng: Rng(seed),
            out: Vec::new(),
        };
        let mut buf = WriteBuf::with_capacity(16);
        let mut expected = Vec::new();
        for _ in 0..rng.below(64) {
            let chunk: Vec<u8> = (0..rng.below(40)).map(|_| rng.next() as u8).collect();
            buf.extend_from_slice(&chunk);
            expected.extend_from_slice(&chunk);
            // Sometimes one write, sometimes a flush that may stop at WouldBlock.
            let result = if rng.below(2) == 0 {
                buf.write_to(&mut sink).map(drop)
            } else {
                buf.flush_to(&mut sink)
            };
            if let Err(e) = result {
                assert!(matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::Interrupted
                ));
            }
            assert_eq!(
                [sink.out.as_slice(), buf.unflushed()].concat(),
                expected,
                "seed {seed}: written + unflushed is the stream so far"
            );
        }
        // Like an event loop: retry until flushed.
        while let Err(e) = buf.flush_to(&mut sink) {
            assert_eq!(e.kind(), ErrorKind::WouldBlock);
        }
        assert_eq!(sink.out, expected, "seed {seed}");
        assert!(buf.is_clean());
    }
}

#[test]
fn pooled_writer_flushes_on_drop_and_refuses_a_dirty_buffer() {
    let pool = Pool::new(|| WriteBuf::with_capacity(8));
    let mut out = Vec::new();
    {
        let mut w = PooledWriter::new(&mut out, pool.get());
        w.write_all(b"abc").unwrap();
        w.write_all(b"a write larger than the buffer").unwrap();
        w.write_all(b"z").unwrap();
    }
    assert_eq!(out, b"abca write larger than the bufferz");
    assert_eq!(pool.stats().idle, 1);

    /// Takes 2 bytes, then fails.
    struct FailsLater(usize);
    impl Write for FailsLater {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.0 == 0 {
                return Err(ErrorKind::BrokenPipe.into());
            }
            let n = self.0.min(buf.len());
            self.0 -= n;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut w = PooledWriter::new(FailsLater(2), pool.get());
    w.write_all(b"hello").unwrap(); // buffered
    assert_eq!(w.flush().unwrap_err().kind(), ErrorKind::BrokenPipe);
    drop(w);
    assert_eq!(pool.stats().discards, 1, "the dirty writer was not kept");
    let err = PooledWriter::new(FailsLater(0), pool.get());
    let mut err = err;
    err.write_all(b"x").unwrap();
    assert!(err.into_inner().is_err());
    assert_eq!(pool.stats().discards, 2);
}

/// Counts gets and puts, like the logging pool in Go's ReverseProxy test.
#[derive(Default)]
struct LoggingPool {
    log: Mutex<Vec<&'static str>>,
}
impl BufferPool for LoggingPool {
    fn get(&self) -> Vec<u8> {
        self.log.lock().unwrap().push("get");
        Vec::with_capacity(16)
    }
    fn put(&self, buf: Vec<u8>) {
        assert!(buf.capacity() >= 16);
        self.log.lock().unwrap().push("put");
    }
}

#[test]
fn copy_gets_and_puts_exactly_once_per_copy_even_on_error() {
    let pool = LoggingPool::default();
    let input: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
    let mut out = Vec::new();
    assert_eq!(copy(&mut &input[..], &mut out, &pool).unwrap(), 1000);
    assert_eq!(out, input);
    assert_eq!(*pool.log.lock().unwrap(), ["get", "put"]);

    struct FailingReader;
    impl Read for FailingReader {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(ErrorKind::ConnectionAborted.into())
        }
    }
    let err = copy(&mut FailingReader, &mut Vec::new(), &pool).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionAborted);
    let err = copy(&mut &input[..], &mut &mut [0u8; 10][..], &pool).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WriteZero);
    assert_eq!(
        *pool.log.lock().unwrap(),
        ["get", "put", "get", "put", "get", "put"]
    );

    struct PanickingWriter;
    impl Write for PanickingWriter {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            panic!("writer bug")
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        copy(&mut &input[..], &mut PanickingWriter, &pool)
    }));
    assert!(result.is_err());
    assert_eq!(
        pool.log.lock().unwrap().len(),
        8,
        "the buffer came back after a panic too"
    );
}

#[test]
fn pool_of_vecs_is_a_buffer_pool() {
    let pool = Pool::builder(|| Vec::with_capacity(4096))
        .max_capacity(8192)
        .build();
    let input = vec![7u8; 100_000];
    let mut out = Vec::new();
    copy(&mut &input[..], &mut out, &pool).unwrap();
    copy(&mut &input[..], &mut out, &pool).unwrap();
    assert_eq!(out.len(), 200_000);
    let s = pool.stats();
    assert_eq!((s.misses, s.hits, s.returns, s.idle), (1, 1, 2, 1));
    // A get + put pair is a get, a detach and a put, so that it mixes with the
    // inherent `get`/`put` (tests/pool.rs tries every mix); no guard is live.
    assert_eq!((s.detached, s.puts, s.in_use()), (2, 2, 0));
    assert_eq!(
        s.hits + s.misses,
        (s.returns - s.puts) + s.detached + s.in_use()
    );

    let buffers: &dyn BufferPool = &pool;
    let buf = buffers.get();
    assert!(
        buf.capacity() >= 4096,
        "the pooled buffer itself, not an empty one"
    );
    let s = pool.stats();
    assert_eq!((s.hits, s.idle, s.detached, s.in_use()), (2, 0, 3, 0));
    buffers.put(buf);
    let s = pool.stats();
    assert_eq!((s.returns, s.puts, s.idle, s.in_use()), (3, 3, 1, 0));
}

#[test]
fn blocking_adapters_serve_lines() {
    let readers = Pool::new(ReadBuf::new);
    let writers = Pool::new(WriteBuf::new);
    for round in 0..3 {
        let input = format!("GET /{round}\nHost: x\n\n");
        let mut reader = PooledReader::new(input.as_bytes(), readers.get());
        let mut writer = PooledWriter::new(Vec::new(), writers.get());
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap() > 0 && line != "\n" {
            writer.write_all(line.to_uppercase().as_bytes()).unwrap();
            line.clear();
        }
        let out = writer.into_inner().unwrap();
        assert_eq!(out, format!("GET /{round}\nHOST: X\n").as_bytes());
    }
    assert_eq!(readers.stats().misses + writers.stats().misses, 2);
}

#[test]
fn buffers_that_grew_past_the_bound_are_not_kept() {
    let readers = Pool::builder(|| ReadBuf::with_capacity(1024))
        .max_capacity(8192)
        .build();
    let mut big = readers.get();
    big.reserve(100_000); // one huge request
    drop(big);
    let mut small = readers.get();
    small.reserve(4000);
    drop(small);
    let s = readers.stats();
    assert_eq!((s.discards, s.idle), (1, 1));
    assert!(readers.get().capacity() <= 8192);

    let writers = Pool::builder(|| WriteBuf::with_capacity(1024))
        .max_capacity(8192)
        .build();
    let mut big = writers.get();
    big.extend_from_slice(&[0u8; 50_000]);
    big.flush_to(&mut Vec::new()).unwrap(); // clean, but huge
    drop(big);
    assert_eq!(writers.stats().discards, 1);
}

#[test]
#[should_panic(expected = "capacity overflow")]
fn read_buf_reserve_overflow_panics_like_vec() {
    let mut buf = ReadBuf::with_capacity(16);
    buf.extend_from_slice(b"unread");
    // 6 unread bytes + usize::MAX overflows: a checked add, never a wrap (release) or
    // an arithmetic-overflow panic (debug).
    buf.reserve(usize::MAX);
}

#[test]
fn read_buf_scrubs_what_a_reader_wrote_beyond_what_it_reported() {
    /// Writes the secret over the whole slice it is handed but reports 1 byte (a
    /// decoder that reports part of a frame), or fails after writing.
    struct Overwrites {
        fail: bool,
    }
    impl Read for Overwrites {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            for (dst, src) in buf.iter_mut().zip(SECRET.iter().cycle()) {
                *dst = *src;
            }
            if self.fail {
                return Err(ErrorKind::ConnectionReset.into());
            }
            Ok(1)
        }
    }
    for fail in [false, true] {
        let pool = Pool::new(|| ReadBuf::with_capacity(4096));
        {
            let mut buf = pool.get();
            let _ = buf.read_from(&mut Overwrites { fail });
        }
        let mut buf = pool.get();
        assert_eq!(pool.stats().hits, 1, "the same buffer came back");
        let mut spy = Spy {
            seen: Vec::new(),
            data: b"GET / HTTP/1.1\r\n",
        };
        buf.read_from(&mut spy).unwrap();
        assert_eq!(spy.seen.len(), 4096);
        let leaked = spy.seen.iter().filter(|&&b| b != 0).count();
        assert_eq!(
            leaked, 0,
            "fail={fail}: {leaked} bytes of the previous connection"
        );
    }
}

#[test]
fn read_buf_trusted_reads_still_scrub_every_byte_received() {
    // A `TrustedRead` source (here a byte slice, as a socket would be) is scrubbed only
    // as far as it reported; the next user must still see none of those bytes, across
    // several reads, a compaction and growth past the first capacity.
    let pool = Pool::new(|| ReadBuf::with_capacity(64));
    {
        let mut buf = pool.get();
        let mut source = &SECRET.repeat(8)[..];
        while buf.read_from_trusted(&mut source).unwrap() > 0 {
            if buf.len() > 100 {
                let half = buf.len() / 2;
                buf.consume(half); // the next full read compacts instead of growing
            }
        }
        assert!(buf.capacity() > 64, "the buffer grew");
    }
    let mut buf = pool.get();
    assert_eq!(pool.stats().hits, 1, "the same buffer came back");
    let mut spy = Spy {
        seen: Vec::new(),
        data: b"GET / HTTP/1.1\r\n",
    };
    buf.read_from(&mut spy).unwrap();
    assert!(spy.seen.len() > 64);
    let leaked = spy.seen.iter().filter(|&&b| b != 0).count();
    assert_eq!(leaked, 0, "{leaked} bytes of the previous connection");
}

/// Takes all but the last byte of what it is handed (a socket whose send queue is
/// always nearly full).
struct AllButOne(u64);
impl Write for AllButOne {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().saturating_sub(1);
        if n == 0 {
            return Err(ErrorKind::WouldBlock.into());
        }
        self.0 += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn write_buf_grows_with_pending_bytes_not_with_bytes_written() {
    let mut sink = AllButOne(0);
    let mut buf = WriteBuf::new();
    let initial = buf.capacity();
    for round in 0..10_000u64 {
        buf.extend_from_slice(&[b'x'; 1000]);
        buf.write_to(&mut sink).unwrap();
        assert_eq!(buf.len(), 1);
        assert_eq!(buf.capacity(), initial, "round {round}");
    }
    assert_eq!(sink.0, 10_000 * 1000 - 1);

    // The same through `push` and through `bytes::BufMut` (`put` fills `chunk_mut`).
    use bytes::BufMut;
    for round in 0..10_000u64 {
        match round % 3 {
            0 => (0..1000).for_each(|_| buf.push(b'y')),
            1 => buf.put(&[b'z'; 1000][..]),
            _ => buf.put_slice(&[b'w'; 1000]),
        }
        buf.write_to(&mut sink).unwrap();
        assert_eq!(buf.capacity(), initial, "round {round}");
    }
}

#[test]
fn write_buf_stays_exact_under_random_appends_and_partial_writes() {
    use bytes::BufMut;
    for seed in 1..=100u64 {
        let mut rng = Rng(seed.wrapping_mul(0x2545_f491_4f6c_dd1d));
        let mut sink = Trickle {
            rng: Rng(seed),
            out: Vec::new(),
        };
        let mut buf = WriteBuf::with_capacity(32);
        let mut expected = Vec::new();
        let mut peak = 0;
        for _ in 0..2000 {
            let chunk: Vec<u8> = (0..rng.below(24)).map(|_| rng.next() as u8).collect();
            match rng.below(3) {
                0 => buf.extend_from_slice(&chunk),
                1 => chunk.iter().for_each(|&b| buf.push(b)),
                _ => buf.put(&chunk[..]),
            }
            expected.extend_from_slice(&chunk);
            peak = peak.max(buf.len());
            // Drain to a random level of at least 8 bytes: the sink takes at most 7 per
            // write, so the buffer never empties and never gets the free rewind.
            let target = 8 + rng.below(48) as usize;
            while buf.len() > target {
                let _ = buf.write_to(&mut sink);
            }
            assert_eq!([sink.out.as_slice(), buf.unflushed()].concat(), expected);
        }
        while let Err(e) = buf.flush_to(&mut sink) {
            assert_eq!(e.kind(), ErrorKind::WouldBlock);
        }
        assert_eq!(sink.out, expected, "seed {seed}");
        // Growth follows the pending bytes (plus `Vec`'s doubling), not the stream.
        assert!(
            buf.capacity() <= 4 * (peak + 64).max(32),
            "seed {seed}: capacity {} for at most {peak} pending bytes of {}",
            buf.capacity(),
            expected.len()
        );
    }
}

/// A sink that fails every write with `kind` and counts the attempts (a blocking
/// socket whose send timeout fires reports `WouldBlock`).
struct Failing {
    kind: ErrorKind,
    writes: usize,
}
impl Failing {
    fn new(kind: ErrorKind) -> Self {
        Self { kind, writes: 0 }
    }
}
impl Write for Failing {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        self.writes += 1;
        Err(self.kind.into())
    }
    fn flush(&mut self) -> io::Result<()> {
        Err(self.kind.into())
    }
}

#[test]
fn pooled_writer_into_inner_hands_the_stream_back_and_never_retries() {
    let pool = Pool::new(|| WriteBuf::with_capacity(64));
    for kind in [
        ErrorKind::WouldBlock,
        ErrorKind::TimedOut,
        ErrorKind::BrokenPipe,
    ] {
        let mut w = PooledWriter::new(Failing::new(kind), pool.get());
        w.write_all(b"buffered").unwrap();
        let Err(err) = w.into_inner() else {
            panic!("{kind:?}: the flush succeeded")
        };
        assert_eq!(err.error().kind(), kind);
        assert!(format!("{err:?}").contains("IntoInnerError"));
        let (error, sink) = err.into_parts();
        assert_eq!(error.kind(), kind);
        assert_eq!(
            sink.writes, 1,
            "{kind:?}: the failed flush was not tried again"
        );
    }
    assert_eq!(pool.stats().discards, 3, "every dirty buffer was refused");

    // `?` turns it into the io::Error.
    fn unwrap_through_question_mark(w: PooledWriter<Failing, Box<WriteBuf>>) -> io::Result<()> {
        w.into_inner()?;
        Ok(())
    }
    let mut w = PooledWriter::new(
        Failing::new(ErrorKind::BrokenPipe),
        Box::new(WriteBuf::new()),
    );
    w.write_all(b"x").unwrap();
    let err = unwrap_through_question_mark(w).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BrokenPipe);
}

#[test]
fn pooled_writer_drop_does_not_retry_a_failed_flush() {
    let pool = Pool::new(|| WriteBuf::with_capacity(64));
    for kind in [ErrorKind::WouldBlock, ErrorKind::TimedOut] {
        let mut sink = Failing::new(kind);
        {
            let mut w = PooledWriter::new(&mut sink, pool.get());
            w.write_all(b"buffered").unwrap();
            assert_eq!(w.flush().unwrap_err().kind(), kind);
        }
        assert_eq!(sink.writes, 1, "{kind:?}: drop wrote again after a failure");
    }
    assert_eq!(pool.stats().discards, 2);

    // After a failed flush, a later successful one lets drop flush again.
    struct BlocksOnce {
        blocked: bool,
        out: Vec<u8>,
    }
    impl Write for BlocksOnce {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if !self.blocked {
                self.blocked = true;
                return Err(ErrorKind::WouldBlock.into());
            }
            self.out.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut sink = BlocksOnce {
        blocked: false,
        out: Vec::new(),
    };
    {
        let mut w = PooledWriter::new(&mut sink, pool.get());
        w.write_all(b"one ").unwrap();
        assert_eq!(w.flush().unwrap_err().kind(), ErrorKind::WouldBlock);
        w.flush().unwrap();
        w.write_all(b"two").unwrap();
    }
    assert_eq!(sink.out, b"one two");
    assert_eq!(pool.stats().discards, 2, "the clean buffer was kept");
}

#[test]
fn pooled_writer_records_pass_through_and_flush_errors() {
    let pool = Pool::new(|| WriteBuf::with_capacity(8));

    // A write larger than the buffer goes straight through; its error is recorded.
    let mut sink = Failing::new(ErrorKind::ConnectionReset);
    {
        let mut w = PooledWriter::new(&mut sink, pool.get());
        let err = w.write(b"larger than eight bytes").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionReset);
        assert!(
            w.buffer().is_empty(),
            "nothing buffered: the buffer looks clean"
        );
    }
    assert_eq!(sink.writes, 1);
    assert_eq!(
        pool.stats().discards,
        1,
        "the errored writer's buffer was refused"
    );

    // The stream's own flush fails after the buffer was written out.
    struct FlushFails(Vec<u8>);
    impl Write for FlushFails {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Err(ErrorKind::BrokenPipe.into())
        }
    }
    let mut sink = FlushFails(Vec::new());
    {
        let mut w = PooledWriter::new(&mut sink, pool.get());
        w.write_all(b"abc").unwrap();
        assert_eq!(w.flush().unwrap_err().kind(), ErrorKind::BrokenPipe);
        w.write_all(b"def").unwrap(); // buffered; drop must not write to a broken stream
    }
    assert_eq!(sink.0, b"abc");
    assert_eq!(pool.stats().discards, 2);

    // A stream that takes nothing (`Ok(0)`) on a pass-through write: `WriteZero`,
    // recorded as it is when the buffer is flushed into such a stream.
    struct Full;
    impl Write for Full {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Ok(0)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    {
        let mut w = PooledWriter::new(Full, pool.get());
        let err = w.write(b"larger than eight bytes").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WriteZero);
        let err = w.write_all(b"larger than eight bytes").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WriteZero);
    }
    assert_eq!(
        pool.stats().discards,
        3,
        "the pass-through WriteZero was recorded"
    );
    {
        let mut w = PooledWriter::new(Full, pool.get());
        w.write_all(b"abc").unwrap();
        assert_eq!(w.flush().unwrap_err().kind(), ErrorKind::WriteZero);
    }
    assert_eq!(pool.stats().discards, 4, "and so is the buffered one");

    // Transient errors are not recorded: a WouldBlock on a pass-through write leaves
    // the (empty) buffer reusable.
    let mut sink = Failing::new(ErrorKind::WouldBlock);
    {
        let mut w = PooledWriter::new(&mut sink, pool.get());
        assert!(w.write(b"larger than eight bytes").is_err());
    }
    let s = pool.stats();
    assert_eq!((s.discards, s.idle), (4, 1));
}

#[test]
fn pooled_writer_buffers_a_fixed_amount() {
    /// Records the size of every write it receives.
    struct Sizes(Vec<usize>);
    impl Write for Sizes {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.push(buf.len());
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut w = PooledWriter::new(Sizes(Vec::new()), Box::new(WriteBuf::with_capacity(8)));
    for _ in 0..100 {
        w.write_all(b"abc").unwrap(); // 3 + 3 fit, the third flushes first
    }
    w.write_all(&[0; 8]).unwrap(); // as large as the bound: straight through
    let sizes = w.into_inner().unwrap().0;
    assert_eq!(sizes[..3], [6, 6, 6]);
    assert_eq!(sizes.iter().sum::<usize>(), 308);
    assert!(sizes.iter().all(|&n| n == 6 || n == 8), "{sizes:?}");
}

/// A buggy sink that claims to take far more than it is handed.
struct Liar;
impl Write for Liar {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Ok(1 << 40)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn write_counts_never_exceed_the_bytes_handed_over() {
    let mut buf = WriteBuf::new();
    buf.extend_from_slice(b"abc");
    assert_eq!(
        buf.write_to(&mut Liar).unwrap(),
        3,
        "clamped to what was pending"
    );
    assert!(buf.is_clean());

    // Through a writer: buffered and passed straight through. `write_all` slices by
    // the count returned, so an unclamped one would panic there.
    let mut w = PooledWriter::new(Liar, Box::new(WriteBuf::with_capacity(4)));
    assert_eq!(w.write(b"0123456789").unwrap(), 10, "pass-through");
    w.write_all(b"0123456789").unwrap();
    w.write_all(b"ab").unwrap();
    w.write_all(b"cde").unwrap(); // flushes "ab" first
    w.into_inner().unwrap();
}

/// A sink whose behaviour the test switches: take one byte then block, block, or
/// take everything.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    OneByteThenBlock,
    Block,
    TakeAll,
}
struct Switched {
    mode: std::rc::Rc<std::cell::Cell<Mode>>,
    out: Vec<u8>,
}
impl Write for Switched {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.mode.get() {
            Mode::OneByteThenBlock => {
                self.mode.set(Mode::Block);
                self.out.push(buf[0]);
                Ok(1)
            }
            Mode::Block => Err(ErrorKind::WouldBlock.into()),
            Mode::TakeAll => {
                self.out.extend_from_slice(buf);
                Ok(buf.len())
            }
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A flush that writes part of the buffer and then meets
/// `WouldBlock` leaves a small written prefix before the unsent bytes; a write that
/// fits the writer's bound must not make the buffer grow to fit behind them (it used
/// to double, the pool kept the bigger buffer, and the next writer took its capacity
/// as its bound: 16, 32, ... 2048 over 8 reuses).
#[test]
fn pooled_writer_never_grows_its_buffer_and_reuse_never_ratchets_the_bound() {
    let pool = Pool::new(|| WriteBuf::with_capacity(8));
    let mut capacities = Vec::new();
    for _ in 0..10 {
        let mode = std::rc::Rc::new(std::cell::Cell::new(Mode::OneByteThenBlock));
        let buf = pool.get();
        let limit = buf.capacity();
        let sink = Switched {
            mode: mode.clone(),
            out: Vec::new(),
        };
        let mut w = PooledWriter::new(sink, buf);
        w.write_all(&vec![b'a'; limit - 1]).unwrap(); // buffered
        // Too much for the bound: the flush sends 1 byte, then meets WouldBlock.
        assert_eq!(w.write(b"bb").unwrap_err().kind(), ErrorKind::WouldBlock);
        assert_eq!(w.buffer().len(), limit - 2);
        w.write_all(b"cc").unwrap(); // fits the bound: buffered, without growing
        assert_eq!(w.buffer().len(), limit);
        mode.set(Mode::TakeAll);
        w.flush().unwrap();
        let mut expected = vec![b'a'; limit - 1];
        expected.extend_from_slice(b"cc");
        assert_eq!(w.into_inner().unwrap().out, expected);
        capacities.push(pool.get().capacity());
    }
    assert_eq!(capacities, [8; 10]);
    assert_eq!(pool.stats().discards, 0, "every buffer came back clean");
}

/// A caller-managed buffer that saw another stream's write
/// error, then was emptied elsewhere, is empty but dirty. A writer made on it used to
/// skip the drop-time flush (the error said the stream was broken) and lose the new
/// stream's bytes without a word; it is refused, as unflushed bytes are.
#[test]
#[should_panic(expected = "PooledWriter::new: buffer saw another stream's write error")]
fn pooled_writer_refuses_a_buffer_with_another_streams_error() {
    struct Broken;
    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(ErrorKind::ConnectionReset.into())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut buf = WriteBuf::new();
    buf.extend_from_slice(b"x");
    assert!(buf.flush_to(&mut Broken).is_err()); // stream 1 broke
    buf.flush_to(&mut Vec::new()).unwrap(); // emptied elsewhere: the error stays
    assert!(buf.is_empty() && buf.error().is_some());
    let mut out = Vec::new();
    let mut w = PooledWriter::new(&mut out, &mut buf);
    w.write_all(b"hello, stream 2").unwrap();
}

/// A writer dropped by an unwind writes nothing (the panic may have left the bytes
/// half-formed); the buffer still holds them, so its pool refuses it.
#[test]
fn pooled_writer_dropped_while_panicking_writes_nothing() {
    let pool = Pool::new(|| WriteBuf::with_capacity(64));
    let mut out = Vec::new();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut w = PooledWriter::new(&mut out, pool.get());
        w.write_all(b"half a resp").unwrap();
        panic!("handler bug");
    }));
    assert!(result.is_err());
    assert!(out.is_empty(), "{out:?}");
    let s = pool.stats();
    assert_eq!((s.discards, s.idle), (1, 0));
}

/// A sink that does, at random, everything a `Write` impl may do: take some of what it
/// is handed or all of it, say `WouldBlock` or `Interrupted`, take nothing (`Ok(0)`),
/// fail hard, or (buggy) claim more than it was handed. Its `flush` may block or fail.
/// It counts the hard failures it reports (`Ok(0)` for a non-empty slice included, as
/// the writers report it as `WriteZero`) and remembers the last one from `write`.
struct Chaos {
    rng: Rng,
    out: Vec<u8>,
    failures: usize,
    last_write_failure: Option<ErrorKind>,
}
impl Chaos {
    fn new(seed: u64) -> Self {
        Self {
            rng: Rng(seed | 1),
            out: Vec::new(),
            failures: 0,
            last_write_failure: None,
        }
    }
    fn fail(&mut self, kind: ErrorKind) {
        self.failures += 1;
        self.last_write_failure = Some(kind);
    }
}
impl Write for Chaos {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        match self.rng.below(40) {
            0 => {
                self.fail(ErrorKind::WriteZero);
                Ok(0)
            }
            1 => {
                self.fail(ErrorKind::ConnectionReset);
                Err(ErrorKind::ConnectionReset.into())
            }
            2 => {
                self.out.extend_from_slice(buf);
                Ok(buf.len() + 7) // a liar
            }
            3..=10 => Err(ErrorKind::WouldBlock.into()),
            11..=13 => Err(ErrorKind::Interrupted.into()),
            14..=25 => {
                self.out.extend_from_slice(buf);
                Ok(buf.len())
            }
            _ => {
                let n = 1 + self.rng.below(buf.len() as u64) as usize;
                self.out.extend_from_slice(&buf[..n]);
                Ok(n)
            }
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self.rng.below(20) {
            0 => {
                self.failures += 1;
                Err(ErrorKind::BrokenPipe.into())
            }
            1 => Err(ErrorKind::WouldBlock.into()),
            _ => Ok(()),
        }
    }
}

fn random_bytes(rng: &mut Rng, max: u64) -> Vec<u8> {
    (0..rng.below(max + 1)).map(|_| rng.next() as u8).collect()
}

/// `WriteBuf` under the chaos sink: written + unflushed is always exactly the stream
/// appended; `write_to` reports what the sink took (never a liar's count); the error
/// is the last hard failure; growth follows the pending bytes.
#[test]
fn write_buf_property_under_a_chaos_sink() {
    use bytes::BufMut;
    for seed in 1..=200u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut sink = Chaos::new(rng.next());
        let mut buf = WriteBuf::with_capacity(rng.below(40) as usize);
        let mut expected = Vec::new();
        let mut peak = 0;
        for _ in 0..1500 {
            let chunk = random_bytes(&mut rng, 24);
            match rng.below(4) {
                0 => buf.extend_from_slice(&chunk),
                1 => chunk.iter().for_each(|&b| buf.push(b)),
                2 => buf.put(&chunk[..]),
                _ => buf.put_slice(&chunk),
            }
            expected.extend_from_slice(&chunk);
            peak = peak.max(buf.len());
            for _ in 0..rng.below(4) {
                let before = sink.out.len();
                if rng.below(2) == 0 {
                    if let Ok(n) = buf.write_to(&mut sink) {
                        assert_eq!(n, sink.out.len() - before, "seed {seed}");
                    }
                } else {
                    let _ = buf.flush_to(&mut sink);
                }
                assert_eq!(
                    [sink.out.as_slice(), buf.unflushed()].concat(),
                    expected,
                    "seed {seed}"
                );
            }
            assert_eq!(buf.error(), sink.last_write_failure, "seed {seed}");
            assert_eq!(buf.is_clean(), buf.is_empty() && sink.failures == 0);
        }
        assert!(
            buf.capacity() <= 4 * (peak + 64),
            "seed {seed}: capacity {} for at most {peak} pending bytes",
            buf.capacity()
        );
    }
}

/// `PooledWriter` under the chaos sink, over buffers reused through a pool: the stream
/// is exactly the bytes each `write` accepted, in order; no write claims more than it
/// was handed; the writer never buffers more than its bound and never grows its
/// buffer (so every buffer the pool hands out has the capacity it was made with); and
/// the pool refuses a buffer exactly when its stream saw a hard failure or did not get
/// every accepted byte.
#[test]
fn pooled_writer_property_under_a_chaos_sink() {
    for seed in 1..=300u64 {
        let mut rng = Rng(seed.wrapping_mul(0x2545_f491_4f6c_dd1d));
        let cap = [0, 1, 8, 32][rng.below(4) as usize];
        let pool = Pool::new(move || WriteBuf::with_capacity(cap));
        let mut discards = 0;
        for stream in 0..8 {
            let mut sink = Chaos::new(rng.next());
            let buf = pool.get();
            assert_eq!(buf.capacity(), cap, "seed {seed} stream {stream}");
            let mut w = PooledWriter::new(&mut sink, buf);
            let mut accepted = Vec::new();
            for _ in 0..rng.below(40) {
                if rng.below(4) == 0 {
                    let _ = w.flush();
                } else {
                    let chunk = random_bytes(&mut rng, 2 * cap as u64 + 2);
                    if let Ok(n) = w.write(&chunk) {
                        assert!(n <= chunk.len(), "seed {seed}: {n} of {}", chunk.len());
                        accepted.extend_from_slice(&chunk[..n]);
                    }
                }
                assert!(w.buffer().len() <= cap, "seed {seed}");
                assert_eq!(
                    [w.get_ref().out.as_slice(), w.buffer()].concat(),
                    accepted,
                    "seed {seed} stream {stream}"
                );
            }
            if rng.below(2) == 0 {
                let _ = w.into_inner();
            } else {
                drop(w);
            }
            assert_eq!(sink.out, accepted[..sink.out.len()], "seed {seed}");
            let dirty = sink.failures > 0 || sink.out.len() != accepted.len();
            discards += u64::from(dirty);
            assert_eq!(
                pool.stats().discards,
                discards,
                "seed {seed} stream {stream}: failures {}, {} of {} bytes out",
                sink.failures,
                sink.out.len(),
                accepted.len()
            );
        }
    }
}
