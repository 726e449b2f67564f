//! `/metrics`: the Prometheus text exposition format, version 0.0.4, written into one
//! output buffer and nowhere else, so a scrape allocates nothing once the buffer has
//! grown to fit.
//!
//! [`Exposition`] writes metric families; each [`Family`] writes its `# HELP` and
//! `# TYPE` lines once, then its samples, so a family's samples can never be split by
//! another's (the format requires them grouped). Label values and help text are
//! escaped as the format says; metric and label names are the program's own and are
//! checked in debug builds. [`write_pools`] and [`write_upstreams`] write the
//! families of the library's pools and of the proxy's upstreams.
//!
//! # Examples
//!
//! ```
//! use demo_server::metrics::{Exposition, Kind};
//!
//! let mut out = Vec::new();
//! let mut metrics = Exposition::new(&mut out);
//! let mut requests = metrics.family("demo_requests_total", Kind::Counter, "Requests served.");
//! requests.sample(&[("worker", "0")], 41);
//! requests.sample(&[("worker", "1")], 1);
//! metrics.family("demo_open_connections", Kind::Gauge, "Open connections.").sample(&[], 3);
//! assert_eq!(
//!     String::from_utf8(out).unwrap(),
//!     "# HELP demo_requests_total Requests served.\n\
//!      ## TYPE demo_requests_total counter\n\
//!      demo_requests_total{worker=\"0\"} 41\n\
//!      demo_requests_total{worker=\"1\"} 1\n\
//!      ## HELP demo_open_connections Open connections.\n\
//!      ## TYPE demo_open_connections gauge\n\
//!      demo_open_connections 3\n"
//! );
//! ```

use recycle_pool::Stats;

use crate::proxy::handler::Proxy;
use crate::proxy::upstream::{State, Upstreams};
use crate::state::Shared;

/// The `Content-Type` of a `/metrics` response.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A metric family's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Only ever goes up (its name should end in `_total`).
    Counter,
    /// Goes up and down.
    Gauge,
}

impl Kind {
    const fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        }
    }
}

/// A writer of metric families into one buffer.
#[derive(Debug)]
pub struct Exposition<'o> {
    out: &'o mut Vec<u8>,
}

/// One metric family being written: its samples follow its `# HELP` and `# TYPE`.
#[derive(Debug)]
pub struct Family<'e> {
    out: &'e mut Vec<u8>,
    name: &'static str,
}

impl<'o> Exposition<'o> {
    /// Writes after whatever `out` holds.
    pub fn new(out: &'o mut Vec<u8>) -> Self {
        Self { out }
    }

    /// Starts the family `name` of `kind`: writes its `# HELP` (with `help`, escaped)
    /// and `# TYPE` lines. Write each family once per exposition.
    ///
    /// # Panics
    ///
    /// In debug builds, if `name` is not a valid metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`).
    pub fn family(&mut self, name: &'static str, kind: Kind, help: &str) -> Family<'_> {
        debug_assert!(is_metric_name(name), "invalid metric name {name:?}");
        let out = &mut *self.out;
        out.extend_from_slice(b"# HELP ");
        out.extend_from_slice(name.as_bytes());
        out.push(b' ');
        for &b in help.as_bytes() {
            match b {
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\n' => out.extend_from_slice(b"\\n"),
                _ => out.push(b),
            }
        }
        out.extend_from_slice(b"\n# TYPE ");
        out.extend_from_slice(name.as_bytes());
        out.push(b' ');
        out.extend_from_slice(kind.as_str().as_bytes());
        out.push(b'\n');
        Family { out, name }
    }
}

impl Family<'_> {
    /// Writes one sample: `name{label="value",...} value`.
    ///
    /// # Panics
    ///
    /// In debug builds, if a label name is not valid (`[a-zA-Z_][a-zA-Z0-9_]*`, not
    /// starting with `__`).
    pub fn sample(&mut self, labels: &[(&str, &str)], value: u64) {
        let out = &mut *self.out;
        out.extend_from_slice(self.name.as_bytes());
        if !labels.is_empty() {
            out.push(b'{');
            for (i, &(name, value)) in labels.iter().enumerate() {
                debug_assert!(is_label_name(name), "invalid label name {name:?}");
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(name.as_bytes());
                out.extend_from_slice(b"=\"");
                for &b in value.as_bytes() {
                    match b {
                        b'\\' => out.extend_from_slice(b"\\\\"),
                        b'"' => out.extend_from_slice(b"\\\""),
                        b'\n' => out.extend_from_slice(b"\\n"),
                        _ => out.push(b),
                    }
                }
                out.push(b'"');
            }
            out.push(b'}');
        }
        out.push(b' ');
        out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        out.push(b'\n');
    }
}

fn is_metric_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_' || b == b':')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
}

fn is_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    !name.starts_with("__")
        && bytes
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Writes the counters of the library's pools, one sample per pool labelled
/// `pool="<name>"`: `recycle_pool_{hits,misses,returns,discards}_total` and the gauge
/// `recycle_pool_idle`.
pub fn write_pools(metrics: &mut Exposition<'_>, pools: &[(&str, Stats)]) {
    type Field = fn(&Stats) -> u64;
    let families: [(&'static str, Kind, &str, Field); 5] = [
        (
            "recycle_pool_hits_total",
            Kind::Counter,
            "Gets served by an idle object.",
            |s| s.hits,
        ),
        (
            "recycle_pool_misses_total",
            Kind::Counter,
            "Gets that created an object.",
            |s| s.misses,
        ),
        (
            "recycle_pool_returns_total",
            Kind::Counter,
            "Objects returned to the pool.",
            |s| s.returns,
        ),
        (
            "recycle_pool_discards_total",
            Kind::Counter,
            "Returned objects dropped instead of kept (dirty, too large, or no room).",
            |s| s.discards,
        ),
        (
            "recycle_pool_idle",
            Kind::Gauge,
            "Idle objects held.",
            |s| s.idle as u64,
        ),
    ];
    for (name, kind, help, field) in families {
        let mut family = metrics.family(name, kind, help);
        for (pool, stats) in pools {
            family.sample(&[("pool", pool)], field(stats));
        }
    }
}

/// Writes the proxy's per-upstream counters, one sample per upstream labelled
/// `upstream="<address>"`: `demo_upstream_connections_{opened,reused,discarded}_total`,
/// `demo_upstream_connect_failures_total`,
/// `demo_upstream_{retries,failures,client_aborts}_total`,
/// `demo_upstream_{upgrades,tunnels_closed}_total`, and the gauges
/// `demo_upstream_tunnels_open` and `demo_upstream_up` (1 while up, 0 while taken out
/// by failures).
pub fn write_upstreams(metrics: &mut Exposition<'_>, upstreams: &Upstreams) {
    type Field = fn(&Upstreams, usize) -> u64;
    let families: [(&'static str, Kind, &str, Field); 11] = [
        (
            "demo_upstream_connections_opened_total",
            Kind::Counter,
            "Upstream connections made (established).",
            |u, i| u.stats(i).opened,
        ),
        (
            "demo_upstream_connect_failures_total",
            Kind::Counter,
            "Upstream connections that could not be made (refused, unreachable, timed out while connecting, or a local error such as EMFILE).",
            |u, i| u.stats(i).connect_failures,
        ),
        (
            "demo_upstream_connections_reused_total",
            Kind::Counter,
            "Requests sent on a reused idle upstream connection.",
            |u, i| u.stats(i).reused,
        ),
        (
            "demo_upstream_connections_discarded_total",
            Kind::Counter,
            "Upstream connections closed instead of kept idle.",
            |u, i| u.stats(i).discarded,
        ),
        (
            "demo_upstream_retries_total",
            Kind::Counter,
            "Requests retried after an attempt on this upstream failed.",
            |u, i| u.stats(i).retries,
        ),
        (
            "demo_upstream_failures_total",
            Kind::Counter,
            "Failed attempts counted against the upstream's health (refused, reset, timed out, malformed response; not local errors, nor a pooled connection found closed).",
            |u, i| u.stats(i).failures,
        ),
        (
            "demo_upstream_client_aborts_total",
            Kind::Counter,
            "Requests whose client went away before the response head (nginx's 499); no mark against the upstream.",
            |u, i| u.stats(i).client_aborts,
        ),
        (
            "demo_upstream_upgrades_total",
            Kind::Counter,
            "Upgrades: 101 answers passed on to the client, each starting a tunnel (WebSocket and others).",
            |u, i| u.stats(i).upgrades,
        ),
        (
            "demo_upstream_tunnels_closed_total",
            Kind::Counter,
            "Tunnels ended: both sides done, a reset, the idle timeout, or the client gone.",
            |u, i| u.stats(i).tunnels_closed,
        ),
        (
            "demo_upstream_tunnels_open",
            Kind::Gauge,
            "Tunnels open now (upgrades less tunnels closed).",
            |u, i| u.stats(i).tunnels_open(),
        ),
        (
            "demo_upstream_up",
            Kind::Gauge,
            "Whether the upstream takes requests (0 while taken out by failures).",
            |u, i| u64::from(u.state(i) == State::Up),
        ),
    ];
    for (name, kind, help, field) in families {
        let mut family = metrics.family(name, kind, help);
        for i in 0..upstreams.len() {
            family.sample(&[("upstream", upstreams.name(i))], field(upstreams, i));
        }
    }
}

/// Writes what a server's `/metrics` shows: requests served, open connections, the
/// peak buffered by one connection, the read and write buffer pools, and for a proxy
/// its copy buffer pool and upstreams ([`write_pools`], [`write_upstreams`]).
pub fn write_server(out: &mut Vec<u8>, shared: &Shared, proxy: Option<&Proxy>) {
    let mut metrics = Exposition::new(out);
    metrics
        .family("demo_requests_total", Kind::Counter, "Requests answered.")
        .sample(&[], shared.requests_served());
    metrics
        .family(
            "demo_open_connections",
            Kind::Gauge,
            "Open client connections.",
        )
        .sample(&[], shared.open_connections() as u64);
    metrics
        .family(
            "demo_peak_buffered_bytes",
            Kind::Gauge,
            "Most bytes one connection held buffered at once since the start.",
        )
        .sample(&[], shared.peak_buffered() as u64);
    let pools = [
        ("read_buf", shared.readers.stats()),
        ("write_buf", shared.writers.stats()),
        (
            "copy_buf",
            proxy.map_or_else(Stats::default, |p| p.buffers.stats()),
        ),
    ];
    write_pools(&mut metrics, &pools[..if proxy.is_some() { 3 } else { 2 }]);
    if let Some(proxy) = proxy {
        write_upstreams(&mut metrics, &proxy.upstreams);
    }
}

/// Writes what a server's `/stats` shows, as one JSON object and a newline: the same
/// as [`write_server`], for people and scripts.
pub fn write_json(out: &mut Vec<u8>, shared: &Shared, proxy: Option<&Proxy>) {
    use std::io::Write as _;
    fn pool(out: &mut Vec<u8>, name: &str, s: Stats) {
        let _ = write!(
            out,
            "\"{name}\":{{\"hits\":{},\"misses\":{},\"returns\":{},\"discards\":{},\"trimmed\":{},\"idle\":{}}}",
            s.hits, s.misses, s.returns, s.discards, s.trimmed, s.idle
        );
    }
    let _ = write!(
        out,
        "{{\"connections\":{},\"requests\":{},\"peak_buffered_bytes\":{},\"pools\":{{",
        shared.open_connections(),
        shared.requests_served(),
        shared.peak_buffered(),
    );
    pool(out, "read_buf", shared.readers.stats());
    out.push(b',');
    pool(out, "write_buf", shared.writers.stats());
    if let Some(proxy) = proxy {
        out.push(b',');
        pool(out, "copy_buf", proxy.buffers.stats());
        out.extend_from_slice(b"},\"upstreams\":[");
        let upstreams = &proxy.upstreams;
        for i in 0..upstreams.len() {
            let s = upstreams.stats(i);
            let _ = write!(
                out,
                "{}{{\"upstream\":\"{}\",\"state\":\"{}\",\"opened\":{},\"connect_failures\":{},\"reused\":{},\"discarded\":{},\"retries\":{},\"failures\":{},\"client_aborts\":{},\"upgrades\":{},\"tunnels_open\":{},\"tunnels_closed\":{}}}",
                if i == 0 { "" } else { "," },
                upstreams.name(i),
                upstreams.state(i).as_str(),
                s.opened,
                s.connect_failures,
                s.reused,
                s.discarded,
                s.retries,
                s.failures,
                s.client_aborts,
                s.upgrades,
                s.tunnels_open(),
                s.tunnels_closed
            );
        }
        out.extend_from_slice(b"]}\n");
    } else {
        out.extend_from_slice(b"}}\n");
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::net::SocketAddr;
    use std::time::Instant;

    use recycle_pool::Pool;

    use super::*;
    use crate::proxy::upstream::{Event, HealthPolicy};

    /// One sample line, parsed.
    #[derive(Debug, PartialEq)]
    struct Sample {
        name: String,
        labels: Vec<(String, String)>,
        value: f64,
    }

    /// Checks `text` against the text format 0.0.4 line by line and returns its
    /// samples. Panics, naming the line, at the first violation.
    fn validate(text: &str) -> Vec<Sample> {
        assert!(
            text.is_empty() || text.ends_with('\n'),
            "the last line ends in LF"
        );
        let mut samples = Vec::new();
        let mut helped = HashSet::new();
        let mut typed = HashSet::new();
        let mut finished: HashSet<String> = HashSet::new();
        let mut current: Option<String> = None;
        /// Moves to family `name`; a family left earlier may not come back.
        fn enter(
            name: &str,
            current: &mut Option<String>,
            finished: &mut HashSet<String>,
            line: &str,
        ) {
            if current.as_deref() != Some(name) {
                assert!(!finished.contains(name), "family {name} split: {line:?}");
                if let Some(previous) = current.replace(name.to_owned()) {
                    finished.insert(previous);
                }
            }
        }
        for line in text.split_terminator('\n') {
            assert!(!line.contains('\r'), "{line:?}");
            if line.trim().is_empty() {
                continue;
            }
            if let Some(rest) = line.strip_prefix("# ") {
                let mut parts = rest.splitn(3, ' ');
                let keyword = parts.next().unwrap();
                let name = parts.next().expect("a metric name");
                assert!(is_metric_name(name), "{line:?}");
                let arg = parts.next().expect("help text or type");
                match keyword {
                    "HELP" => {
                        assert!(helped.insert(name.to_owned()), "second HELP: {line:?}");
                        assert!(
                            unescape(arg, false).is_some(),
                            "bad escape in help: {line:?}"
                        );
                        enter(name, &mut current, &mut finished, line);
                    }
                    "TYPE" => {
                        assert!(
                            ["counter", "gauge", "histogram", "summary", "untyped"].contains(&arg),
                            "{line:?}"
                        );
                        assert!(typed.insert(name.to_owned()), "second TYPE: {line:?}");
                        assert!(
                            current.as_deref() != Some(name)
                                || !samples.iter().any(|s: &Sample| s.name == name),
                            "TYPE after samples: {line:?}"
                        );
                        enter(name, &mut current, &mut finished, line);
                    }
                    _ => {} // other comments are allowed
                }
                continue;
            }
            assert!(!line.starts_with('#'), "{line:?}");
            let name_end = line.find(['{', ' ']).expect("name then value");
            let name = &line[..name_end];
            assert!(is_metric_name(name), "{line:?}");
            let mut rest = &line[name_end..];
            let mut labels = Vec::new();
            if let Some(inner) = rest.strip_prefix('{') {
                let mut s = inner;
                loop {
                    if let Some(after) = s.strip_prefix('}') {
                        rest = after;
                        break;
                    }
                    let eq = s.find('=').expect("label=value");
                    let label = &s[..eq];
                    assert!(is_label_name(label), "{line:?}");
                    s = s[eq + 1..].strip_prefix('"').expect("quoted value");
                    let mut end = None;
                    let mut escaped = false;
                    for (i, c) in s.char_indices() {
                        match (escaped, c) {
                            (false, '\\') => escaped = true,
                            (false, '"') => {
                                end = Some(i);
                                break;
                            }
                            _ => escaped = false,
                        }
                    }
                    let end = end.expect("closing quote");
                    let value =
                        unescape(&s[..end], true).unwrap_or_else(|| panic!("bad escape: {line:?}"));
                    assert!(
                        labels.iter().all(|(l, _)| l != label),
                        "repeated label: {line:?}"
                    );
                    labels.push((label.to_owned(), value));
                    s = &s[end + 1..];
                    if !s.starts_with('}') {
                        s = s
                            .strip_prefix(',')
                            .unwrap_or_else(|| panic!("no comma: {line:?}"));
                    }
                }
            }
            let value = rest.strip_prefix(' ').expect("one space before the value");
            let mut fields = value.split(' ');
            let number = fields.next().unwrap();
            let value: f64 = match number {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                "NaN" => f64::NAN,
                n => n.parse().unwrap_or_else(|_| panic!("bad value: {line:?}")),
            };
            if let Some(timestamp) = fields.next() {
                timestamp
                    .parse::<i64>()
                    .unwrap_or_else(|_| panic!("bad timestamp: {line:?}"));
            }
            assert!(fields.next().is_none(), "{line:?}");
            // Counter and gauge samples carry their family's name. Stricter than the
            // format, which allows untyped samples: every family written here is typed.
            assert_eq!(
                current.as_deref(),
                Some(name),
                "sample outside its family: {line:?}"
            );
            samples.push(Sample {
                name: name.to_owned(),
                labels,
                value,
            });
        }
        samples
    }

    /// Undoes the format's escapes (`\\`, `\n`, and in label values `\"`); `None` for
    /// any other escape or a bare quote.
    fn unescape(s: &str, label: bool) -> Option<String> {
        let mut out = String::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next()? {
                    '\\' => out.push('\\'),
                    'n' => out.push('\n'),
                    '"' if label => out.push('"'),
                    _ => return None,
                },
                '"' if label => return None,
                '\n' => return None,
                c => out.push(c),
            }
        }
        Some(out)
    }

    #[test]
    fn output_follows_the_text_format() {
        let start = Instant::now();
        let addrs: [SocketAddr; 2] = [
            "127.0.0.1:8080".parse().unwrap(),
            "[::1]:9000".parse().unwrap(),
        ];
        let upstreams = Upstreams::new(
            &addrs,
            HealthPolicy {
                max_fails: 1,
                ..HealthPolicy::default()
            },
            1,
            start,
        );
        upstreams.count(0, 0, Event::Opened);
        upstreams.count(0, 0, Event::Reused);
        upstreams.count(0, 0, Event::Reused);
        upstreams.count(0, 0, Event::Upgraded);
        upstreams.count(0, 0, Event::Upgraded);
        upstreams.count(0, 0, Event::TunnelClosed);
        upstreams.record_failure(0, 1, start);
        let pool = Pool::new(Vec::<u8>::new);
        drop(pool.get());

        let mut out = Vec::new();
        let mut metrics = Exposition::new(&mut out);
        metrics
            .family(
                "demo_requests_total",
                Kind::Counter,
                "Requests served.\nA \\ backslash.",
            )
            .sample(&[], 7);
        let mut odd = metrics.family("demo_odd", Kind::Gauge, "Escapes.");
        odd.sample(&[("path", "a\"b\\c\nd"), ("empty", "")], u64::MAX);
        write_pools(
            &mut metrics,
            &[("read_buf", pool.stats()), ("write_buf", Stats::default())],
        );
        write_upstreams(&mut metrics, &upstreams);

        let text = String::from_utf8(out).unwrap();
        let samples = validate(&text);
        let find = |name: &str, labels: &[(&str, &str)]| {
            let labels: Vec<_> = labels
                .iter()
                .map(|&(l, v)| (l.to_owned(), v.to_owned()))
                .collect();
            samples
                .iter()
                .find(|s| s.name == name && s.labels == labels)
                .unwrap_or_else(|| panic!("no {name} {labels:?} in\n{text}"))
                .value
        };
        assert!(text.contains("# HELP demo_requests_total Requests served.\\nA \\\\ backslash.\n"));
        assert_eq!(find("demo_requests_total", &[]), 7.0);
        assert_eq!(
            find("demo_odd", &[("path", "a\"b\\c\nd"), ("empty", "")]),
            u64::MAX as f64
        );
        assert_eq!(
            find("recycle_pool_misses_total", &[("pool", "read_buf")]),
            1.0
        );
        assert_eq!(
            find("recycle_pool_returns_total", &[("pool", "read_buf")]),
            1.0
        );
        assert_eq!(find("recycle_pool_idle", &[("pool", "read_buf")]), 1.0);
        assert_eq!(
            find("recycle_pool_hits_total", &[("pool", "write_buf")]),
            0.0
        );
        let up = [("upstream", "127.0.0.1:8080")];
        let down = [("upstream", "[::1]:9000")];
        assert_eq!(find("demo_upstream_connections_opened_total", &up), 1.0);
        assert_eq!(find("demo_upstream_connections_reused_total", &up), 2.0);
        assert_eq!(find("demo_upstream_failures_total", &down), 1.0);
        assert_eq!(find("demo_upstream_up", &up), 1.0);
        assert_eq!(find("demo_upstream_up", &down), 0.0);
        assert_eq!(find("demo_upstream_connect_failures_total", &up), 0.0);
        assert_eq!(find("demo_upstream_client_aborts_total", &down), 0.0);
        assert_eq!(find("demo_upstream_upgrades_total", &up), 2.0);
        assert_eq!(find("demo_upstream_tunnels_closed_total", &up), 1.0);
        assert_eq!(find("demo_upstream_tunnels_open", &up), 1.0);
        assert_eq!(find("demo_upstream_tunnels_open", &down), 0.0);
        assert_eq!(samples.len(), 2 + 5 * 2 + 11 * 2);
    }

    #[test]
    fn the_validator_catches_violations() {
        // A validator that accepted everything would make the test above worthless.
        for bad in [
            "a 1",                                               // no trailing LF
            "# TYPE a counter\n# TYPE a counter\na 1\n",         // two TYPEs
            "# TYPE a counter\na 1\n# TYPE b gauge\nb 1\na 2\n", // split family
            "# TYPE a counter\na{x=\"1\"\"} 1\n",                // bare quote
            "# TYPE a counter\na{x=\"\\t\"} 1\n",                // unknown escape
            "# TYPE a counter\na{__x=\"1\"} 1\n",                // reserved label
            "# TYPE a counter\na{x=\"1\",x=\"2\"} 1\n",          // repeated label
            "# TYPE a counter\na{x=\"1\"y=\"2\"} 1\n",           // no comma
            "# TYPE a counter\na one\n",                         // not a number
            "# TYPE a counter\na  1\n",                          // two spaces
            "# TYPE a widget\na 1\n",                            // unknown type
            "# TYPE 1a counter\n1a 1\n",                         // bad name
            "b 1\n",                                             // sample before its TYPE
        ] {
            let caught = std::panic::catch_unwind(|| validate(bad)).is_err();
            assert!(caught, "{bad:?} passed");
        }
    }

    #[test]
    fn writing_reuses_the_buffer() {
        let mut out = Vec::with_capacity(4096);
        let ptr = out.as_ptr();
        for _ in 0..3 {
            out.clear();
            let mut metrics = Exposition::new(&mut out);
            write_pools(&mut metrics, &[("read_buf", Stats::default())]);
        }
        assert_eq!(out.as_ptr(), ptr, "no reallocation once it fits");
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "invalid metric name")]
    fn bad_names_are_caught_in_debug_builds() {
        Exposition::new(&mut Vec::new()).family("bad-name", Kind::Gauge, "");
    }
}
