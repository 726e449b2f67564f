//! Integration tests for `recycle_pool::status`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use recycle_pool::status::{Clock, DateCache, StatusError, StatusLines, Version, reason};

/// The IANA HTTP Status Code Registry, as of RFC 9110 (plus 418 from RFC 2324).
const REGISTRY: &str = "\
100 Continue|101 Switching Protocols|102 Processing|103 Early Hints|200 OK|201 Created|\
202 Accepted|203 Non-Authoritative Information|204 No Content|205 Reset Content|\
206 Partial Content|207 Multi-Status|208 Already Reported|226 IM Used|300 Multiple Choices|\
301 Moved Permanently|302 Found|303 See Other|304 Not Modified|305 Use Proxy|\
307 Temporary Redirect|308 Permanent Redirect|400 Bad Request|401 Unauthorized|\
402 Payment Required|403 Forbidden|404 Not Found|405 Method Not Allowed|406 Not Acceptable|\
407 Proxy Authentication Required|408 Request Timeout|409 Conflict|410 Gone|\
411 Length Required|412 Precondition Failed|413 Content Too Large|414 URI Too Long|\
415 Unsupported Media Type|416 Range Not Satisfiable|417 Expectation Failed|418 I'm a teapot|\
421 Misdirected Request|422 Unprocessable Content|423 Locked|424 Failed Dependency|\
425 Too Early|426 Upgrade Required|428 Precondition Required|429 Too Many Requests|\
431 Request Header Fields Too Large|451 Unavailable For Legal Reasons|\
500 Internal Server Error|501 Not Implemented|502 Bad Gateway|503 Service Unavailable|\
504 Gateway Timeout|505 HTTP Version Not Supported|506 Variant Also Negotiates|\
507 Insufficient Storage|508 Loop Detected|510 Not Extended|511 Network Authentication Required";

fn registry() -> Vec<(u16, &'static str)> {
    REGISTRY
        .split('|')
        .map(|entry| {
            let (code, phrase) = entry.split_once(' ').unwrap();
            (code.parse().unwrap(), phrase)
        })
        .collect()
}

const VERSIONS: [(Version, &str); 2] =
    [(Version::Http10, "HTTP/1.0"), (Version::Http11, "HTTP/1.1")];

#[test]
fn every_registered_code_renders_exactly() {
    let lines = StatusLines::new();
    let registry = registry();
    for &(code, phrase) in &registry {
        for (version, name) in VERSIONS {
            let expected = format!("{name} {code} {phrase}\r\n");
            let mut out = Vec::new();
            lines.write_line(code, version, &mut out).unwrap();
            assert_eq!(out, expected.as_bytes(), "first use (miss) of {code}");
            out.clear();
            lines.write_line(code, version, &mut out).unwrap();
            assert_eq!(out, expected.as_bytes(), "cached use (hit) of {code}");
            assert_eq!(&lines.line(code, version).unwrap()[..], expected.as_bytes());
        }
    }
    assert_eq!(lines.cached(), 2 * registry.len());
    // And nothing else is registered.
    let known = (0..=u16::MAX).filter(|&c| reason(c).is_some()).count();
    assert_eq!(known, registry.len());
}

#[test]
fn unknown_codes_render_and_are_never_cached() {
    let lines = StatusLines::new();
    let registered = registry().len();
    let unknown: Vec<u16> = (100..=599).filter(|&c| reason(c).is_none()).collect();
    let mut out = Vec::new();
    for i in 0..10_000 {
        let code = unknown[i % unknown.len()];
        let (version, name) = VERSIONS[i % 2];
        out.clear();
        lines.write_line(code, version, &mut out).unwrap();
        let line = std::str::from_utf8(&out).unwrap();
        assert!(line.starts_with(&format!("{name} {code} ")), "{line}");
        assert!(line.ends_with("\r\n") && line.len() > 15);
        // Interleave registered codes, which are cached.
        let (known, _) = registry()[(i / 2) % registered];
        lines.write_line(known, version, &mut out).unwrap();
    }
    assert_eq!(
        &lines.line(299, Version::Http11).unwrap()[..],
        b"HTTP/1.1 299 Success\r\n"
    );
    assert_eq!(
        &lines.line(599, Version::Http10).unwrap()[..],
        b"HTTP/1.0 599 Server Error\r\n"
    );
    assert_eq!(
        lines.cached(),
        2 * registered,
        "bounded by the registered codes"
    );
}

/// RFC 9110 §15: "All valid status codes are within the range of 100 to 599,
/// inclusive." Anything else is refused (an error, nothing written), never written
/// as a line such as `HTTP/1.1 999 Unknown`.
#[test]
fn out_of_range_codes_are_refused() {
    let lines = StatusLines::new();
    for code in [0, 1, 99, 600, 601, 700, 999, 1000, 4040, u16::MAX] {
        let mut out = Vec::new();
        assert_eq!(
            lines.write_line(code, Version::Http11, &mut out),
            Err(StatusError::OutOfRange(code))
        );
        assert!(out.is_empty(), "nothing written for {code}");
        assert!(lines.line(code, Version::Http10).is_err());
        assert!(lines.register(code, "Nope").is_err());
    }
    assert_eq!(lines.cached(), 0);
}

#[test]
fn custom_reasons_are_validated_and_replace_cached_lines() {
    let lines = StatusLines::new();
    assert_eq!(
        &lines.line(599, Version::Http11).unwrap()[..],
        b"HTTP/1.1 599 Server Error\r\n"
    );
    lines.register(599, "Network Connect Timeout").unwrap();
    assert_eq!(
        &lines.line(599, Version::Http11).unwrap()[..],
        b"HTTP/1.1 599 Network Connect Timeout\r\n"
    );
    // Override a registered phrase; a cached line is rebuilt.
    assert_eq!(
        &lines.line(200, Version::Http10).unwrap()[..],
        b"HTTP/1.0 200 OK\r\n"
    );
    lines.register(200, "Fine").unwrap();
    assert_eq!(
        &lines.line(200, Version::Http10).unwrap()[..],
        b"HTTP/1.0 200 Fine\r\n"
    );
    assert_eq!(
        &lines.line(200, Version::Http11).unwrap()[..],
        b"HTTP/1.1 200 Fine\r\n"
    );
    for bad in ["a\r\nb", "nul\0", "bell\x07", "del\x7f"] {
        assert_eq!(lines.register(222, bad), Err(StatusError::InvalidReason));
    }
    lines.register(222, "Tab\tand obs-text é").unwrap();
    assert_eq!(
        lines.cached(),
        1 + 2,
        "599 (1.1) and 200 (both) lines; 222 not used yet"
    );
}

#[test]
fn concurrent_readers_always_see_complete_lines() {
    let lines = Arc::new(StatusLines::new());
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (lines, stop) = (Arc::clone(&lines), Arc::clone(&stop));
        thread::spawn(move || {
            let mut round = 0u32;
            while !stop.load(SeqCst) {
                // Flip custom phrases for a few codes while readers read them.
                for code in [299u16, 599, 200] {
                    let phrase = if round % 2 == 0 { "Even" } else { "Odd" };
                    lines.register(code, phrase).unwrap();
                }
                round += 1;
                thread::yield_now();
            }
            round
        })
    };
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let lines = Arc::clone(&lines);
            thread::spawn(move || {
                let mut out = Vec::new();
                for i in 0..20_000u32 {
                    let code = [200u16, 299, 404, 599][i as usize % 4];
                    out.clear();
                    lines.write_line(code, Version::Http11, &mut out).unwrap();
                    let line = std::str::from_utf8(&out).unwrap();
                    let ok = match code {
                        404 => line == "HTTP/1.1 404 Not Found\r\n",
                        200 => ["OK", "Even", "Odd"]
                            .iter()
                            .any(|p| line == format!("HTTP/1.1 200 {p}\r\n")),
                        299 => ["Success", "Even", "Odd"]
                            .iter()
                            .any(|p| line == format!("HTTP/1.1 299 {p}\r\n")),
                        _ => ["Server Error", "Even", "Odd"]
                            .iter()
                            .any(|p| line == format!("HTTP/1.1 599 {p}\r\n")),
                    };
                    assert!(ok, "torn or wrong line: {line:?}");
                }
            })
        })
        .collect();
    for r in readers {
        r.join().unwrap();
    }
    stop.store(true, SeqCst);
    assert!(writer.join().unwrap() > 0);
    assert!(lines.cached() <= 2 * (registry().len() + 2));
}

/// A clock the test moves by hand (milliseconds since the epoch).
struct ManualClock(Arc<AtomicU64>);
impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.0.load(SeqCst))
    }
}

#[test]
fn date_parses_back_and_changes_across_a_second() {
    // 1994-11-06T08:49:37.250Z, RFC 9110's example date.
    let now = Arc::new(AtomicU64::new(784_111_777_250));
    let dates = DateCache::with_clock(ManualClock(Arc::clone(&now)));
    assert_eq!(&dates.value(), b"Sun, 06 Nov 1994 08:49:37 GMT");
    let parsed = httpdate::parse_http_date(std::str::from_utf8(&dates.value()).unwrap()).unwrap();
    assert_eq!(parsed, UNIX_EPOCH + Duration::from_secs(784_111_777));

    // Later in the same second: no change.
    now.store(784_111_777_999, SeqCst);
    assert!(!dates.refresh());
    // Across the boundary: a new value, once refreshed.
    now.store(784_111_778_000, SeqCst);
    let mut out = Vec::new();
    dates.write_cached(&mut out);
    assert_eq!(
        out, b"Sun, 06 Nov 1994 08:49:37 GMT",
        "cached: the clock is not read"
    );
    assert!(dates.refresh());
    out.clear();
    dates.write_cached(&mut out);
    assert_eq!(out, b"Sun, 06 Nov 1994 08:49:38 GMT");
    // A clock one second behind (a thread that read it late) never moves it back.
    now.store(784_111_777_900, SeqCst);
    assert!(!dates.refresh());
    assert_eq!(&dates.value(), b"Sun, 06 Nov 1994 08:49:38 GMT");
}

#[test]
fn date_follows_a_clock_set_back_by_more_than_two_seconds() {
    // 1994-11-06T08:49:38.000Z.
    let now = Arc::new(AtomicU64::new(784_111_778_000));
    let dates = DateCache::with_clock(ManualClock(Arc::clone(&now)));
    // Up to 2 seconds back: taken for a racing thread, not followed.
    for back in [784_111_777_999, 784_111_777_000, 784_111_776_000] {
        now.store(back, SeqCst);
        assert!(!dates.refresh(), "{back}");
        assert_eq!(&dates.value(), b"Sun, 06 Nov 1994 08:49:38 GMT");
    }
    // 3 seconds back: a clock set back, followed.
    now.store(784_111_775_999, SeqCst);
    assert!(dates.refresh());
    assert_eq!(&dates.value(), b"Sun, 06 Nov 1994 08:49:35 GMT");
    // A clock that ran years ahead and is set right by NTP.
    now.store(1_784_111_778_000, SeqCst); // 2026
    assert!(dates.refresh());
    assert_eq!(&dates.value(), b"Wed, 15 Jul 2026 10:36:18 GMT");
    now.store(784_111_780_000, SeqCst);
    assert!(dates.refresh());
    assert_eq!(&dates.value(), b"Sun, 06 Nov 1994 08:49:40 GMT");
    // And forward again from there, second by second.
    now.store(784_111_781_000, SeqCst);
    assert!(dates.refresh());
    assert_eq!(&dates.value(), b"Sun, 06 Nov 1994 08:49:41 GMT");
}

#[test]
fn date_survives_a_broken_clock() {
    struct Before1970;
    impl Clock for Before1970 {
        fn now(&self) -> SystemTime {
            UNIX_EPOCH - Duration::from_secs(86_400)
        }
    }
    assert_eq!(
        &DateCache::with_clock(Before1970).value(),
        b"Thu, 01 Jan 1970 00:00:00 GMT"
    );
    struct Year10000;
    impl Clock for Year10000 {
        fn now(&self) -> SystemTime {
            UNIX_EPOCH + Duration::from_secs(253_402_300_800 + 1000)
        }
    }
    assert_eq!(
        &DateCache::with_clock(Year10000).value(),
        b"Fri, 31 Dec 9999 23:59:59 GMT"
    );
}

#[test]
fn system_clock_date_is_current() {
    let dates = DateCache::new();
    let value = dates.value();
    let parsed = httpdate::parse_http_date(std::str::from_utf8(&value).unwrap()).unwrap();
    let drift = SystemTime::now().duration_since(parsed).unwrap();
    assert!(drift < Duration::from_secs(60), "{drift:?}");
}

/// A clock the test moves by hand that counts how often it is read.
struct CountingClock {
    now: Arc<AtomicU64>,
    reads: Arc<AtomicU64>,
}
impl Clock for CountingClock {
    fn now(&self) -> SystemTime {
        self.reads.fetch_add(1, SeqCst);
        UNIX_EPOCH + Duration::from_millis(self.now.load(SeqCst))
    }
}

/// While the clock is up to 2 seconds behind the published second (a leap second
/// repeats one; a thread read it late), nothing is published, and a refresh costs
/// what it costs in step: one clock reading. The slow path (a second reading, an
/// `Arc` clone and a format) is taken only when the value changes.
#[test]
fn date_refresh_is_one_clock_reading_while_the_clock_is_a_little_behind() {
    let now = Arc::new(AtomicU64::new(784_111_778_000));
    let reads = Arc::new(AtomicU64::new(0));
    let dates = DateCache::with_clock(CountingClock {
        now: Arc::clone(&now),
        reads: Arc::clone(&reads),
    });
    for at in [
        784_111_778_000, // in step
        784_111_778_999, // later in the same second
        784_111_777_999, // under 1 s behind
        784_111_777_000, // 1 s behind (a leap second)
        784_111_776_000, // 2 s behind: still within the slack
    ] {
        now.store(at, SeqCst);
        reads.store(0, SeqCst);
        for _ in 0..1000 {
            assert!(!dates.refresh(), "{at}");
        }
        assert_eq!(reads.load(SeqCst), 1000, "clock readings at {at}");
        assert_eq!(&dates.value(), b"Sun, 06 Nov 1994 08:49:38 GMT");
    }
    // A new second: the one refresh that publishes it reads the clock twice.
    now.store(784_111_779_000, SeqCst);
    reads.store(0, SeqCst);
    assert!(dates.refresh());
    assert!(!dates.refresh());
    assert_eq!(reads.load(SeqCst), 3);
}
