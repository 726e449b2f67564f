//! Runs one in-memory scenario a given number of times, without timing, for an
//! instruction count under callgrind: run it twice with two op counts and divide the
//! difference of the totals by the difference of the counts (setup cancels out), as
//! `scripts/instructions.sh` does. The user-space CPU of a request, counted exactly.
//!
//! `cargo bench -p demo-server --bench instructions -- <scenario> <ops>`; without
//! arguments, every scenario once with its wall time, for a quick look (callgrind's
//! count is the measure). Scenarios:
//!
//! - the fake connections of `benches/fakeconn.rs`: `no_keep_alive`, `keep_alive_lite`,
//!   and `proxy` (Go's keep-alive-lite request proxied through [`MemProxy`] to a fake
//!   upstream and its small response back);
//! - the proxy's cost for a large head, `<shape><size>` with `<size>` `16k` (the default
//!   head limit) or `1m` (`--max-head-bytes 1048576`), a request head of that size
//!   proxied as `proxy` is, and `resp-<shape>16k`, an upstream response head of 16 KiB
//!   (the most the proxy reads) behind the `proxy` request. Every head but `plain` ends
//!   in a `Connection` field filling it with options; the worst of them must cost
//!   within 2x `plain`, the same size without one (issue 21). Shapes:
//!   - `plain`: 96 short fields, then one whose plain value fills the head;
//!   - `conn`: the same, the last a `Connection` of one-byte options (`a,a,a,…`: at
//!     16 KiB, some 7,700) that name no field;
//!   - `same`: `conn` with the 96 fields all named `a`, the name every option repeats;
//!   - `alt`: fields named `a` and `b` (and one `c` that no option names), options
//!     `a,B,a,B,…`: each one another name than the option before it;
//!   - `rand`: fields with one-byte names, options one byte each drawn at random from
//!     twice as many names, in either case;
//!   - `two`: the same with two-byte names (the hash table's path), `ows`: `rand` with
//!     a space on each side of every option (`a , b , …`);
//!   - `long`: 96 fields with 40-byte names, options naming them in turn;
//!   - `three`: fields named `abc`, `abd`, `abe`, options `abc,ABD,aBc,AbD,…`: each a
//!     three-byte name other than the one before it (a lookup each);
//!   - `distinct`: 96 fields of four-byte names, options four-byte names all
//!     different, naming none of them (`o000,o001,…`);
//!   - `fold`: fields `x_00`…`x_95`, options `X-00`…: names that fold to the fields'
//!     only with `_` read as `-`, which `Connection` does not do;
//!   - `caret`: fields and options of `^` and `~` only, seven and eleven bytes (they
//!     differ in the `0x20` bit alone: a hash that folds it puts them all in one slot);
//!   - `tok`: two fields of 1,000-byte names differing in the last byte, options
//!     naming them in turn;
//!   - `inner`: options `a b` (a space inside: no token, naming nothing) over fields
//!     named `a` and `b`;
//!   - `lines`: `alt` spread over 96 `Connection` lines instead of one.
//!   - `kinds`: fields with names of every length from one to eight bytes, options
//!     of every such length in turn (every kind of the block loop at work), and
//!     `kspace`: the same with a space after each option;
//!   - `nine`: fields `x-abcd-00`…`x-abcd-95`, options of nine bytes (one past the
//!     word path), each other than the one before it (`x-abcd-a0,x-abcd-b1,…`);
//!   - `words`: 96 names of three to eight bytes, options naming them in turn in
//!     upper case;
//!   - `edge`: options of 62 spaces then a one-byte name: every element crosses a
//!     64-byte block edge;
//!   - `seventeen`: fields `x-abcdefghijkl00x`…`x-abcdefghijkl95x`, options naming
//!     them in turn in upper case: 17 bytes, one past the two-word path;
//!     `sxmiss`: 17-byte options that name none of them (`x-abcdefghijkm00x`…);
//!   - `shift`: a 17-byte option every 48 bytes, six `abc` and one `abcde` between
//!     (fields named by all of them): the long option starts at each 16-byte offset
//!     of a block in turn, one in four in a block's last 16 bytes;
//!   - `hmiss`: 96 fields of 56-byte names (seven 8-byte words differing only in
//!     their top bits), options of 32 more names of that family naming none of
//!     them: names whose hashes collide if the long-name hash does not mix.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use demo_server::app::App;
use demo_server::http::conn::Conn;
use demo_server::proxy::handler::{Proxy, ProxyConfig};
use demo_server::proxy::mem::MemProxy;
use demo_server::state::{Limits, Shared};

mod support {
    pub(crate) mod requests;
}
use support::requests::{BROWSER_REQUEST, LITE_REQUEST, UPSTREAM_RESPONSE};

/// The shapes of a large head (see the module docs).
const SHAPES: [&str; 24] = [
    "plain",
    "conn",
    "same",
    "alt",
    "rand",
    "two",
    "ows",
    "long",
    "three",
    "distinct",
    "fold",
    "caret",
    "tok",
    "inner",
    "lines",
    "kinds",
    "kspace",
    "nine",
    "words",
    "edge",
    "seventeen",
    "sxmiss",
    "shift",
    "hmiss",
];

/// A small deterministic generator (xorshift), so a shape is the same head each run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// The 96 field names and the options of `shape`, as a function that writes the
/// `i`th option (`None` for `plain`, which has no `Connection`).
#[allow(clippy::type_complexity)]
fn shape(shape: &str) -> (Vec<String>, Option<Box<dyn FnMut(usize) -> String>>) {
    fn one(i: usize) -> String {
        let b = b"abcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+-.^_`|~"[i % 51];
        String::from(b as char)
    }
    fn two(i: usize) -> String {
        format!("{}{}", one(i), one(i / 51))
    }
    fn long(i: usize) -> String {
        format!("X-A-Rather-Long-Field-Name-Number-{i:05}x")
    }
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let names: Vec<String>;
    let options: Box<dyn FnMut(usize) -> String> = match shape {
        "plain" => return ((0..96).map(|i| format!("X-{i:02}")).collect(), None),
        "conn" => {
            names = (0..96).map(|i| format!("X-{i:02}")).collect();
            Box::new(|_| "a".into())
        }
        "same" => {
            names = vec!["a".into(); 96];
            Box::new(|_| "a".into())
        }
        "alt" => {
            names = (0..96).map(|i| ["a", "b", "c"][i % 3].into()).collect();
            Box::new(|i| if i % 2 == 0 { "a" } else { "B" }.into())
        }
        "rand" | "ows" => {
            names = (0..96).map(|i| one(i % 25)).collect();
            let ows = shape == "ows";
            Box::new(move |_| {
                let o = one(rng.below(50));
                let o = if rng.below(2) == 0 {
                    o.to_uppercase()
                } else {
                    o
                };
                if ows { format!(" {o} ") } else { o }
            })
        }
        "two" => {
            names = (0..96).map(two).collect();
            Box::new(move |_| two(rng.below(192)))
        }
        "long" => {
            names = (0..96).map(long).collect();
            Box::new(move |i| long(i % 96))
        }
        "three" => {
            names = (0..96)
                .map(|i| ["abc", "abd", "abe"][i % 3].into())
                .collect();
            Box::new(|i| ["abc", "ABD", "aBc", "AbD"][i % 4].into())
        }
        "distinct" => {
            names = (0..96).map(|i| format!("X-{i:02}")).collect();
            Box::new(|i| format!("o{:03}", i % 1000))
        }
        "fold" => {
            names = (0..96).map(|i| format!("x_{i:02}")).collect();
            Box::new(|i| format!("X-{:02}", i % 96))
        }
        "caret" => {
            // Seven and eleven bytes of `^` and `~`, by the bits of `i`.
            fn caret(i: usize, len: usize) -> String {
                (0..len)
                    .map(|b| if i >> (b % 7) & 1 == 1 { '~' } else { '^' })
                    .collect()
            }
            names = (0..96).map(|i| caret(i, [7, 11][i % 2])).collect();
            Box::new(|i| caret(i % 128, [7, 11][i / 128 % 2]))
        }
        "tok" => {
            let name = |i: usize| format!("{}{}", "t".repeat(999), ["a", "b"][i % 2]);
            names = (0..96)
                .map(|i| format!("X-{i:02}"))
                .chain([name(0), name(1)])
                .collect();
            Box::new(name)
        }
        "inner" => {
            names = (0..96).map(|i| ["a", "b"][i % 2].into()).collect();
            Box::new(|_| "a b".into())
        }
        "lines" => {
            names = (0..3).map(|i| ["a", "b", "c"][i].into()).collect();
            Box::new(|i| if i % 2 == 0 { "a" } else { "B" }.into())
        }
        "kinds" | "kspace" => {
            // Names of every length 1..=8: every kind of the mask loop active.
            let base = [
                "a", "ab", "abc", "abcd", "abcde", "abcdef", "abcdefg", "abcdefgh",
            ];
            names = (0..96).map(|i| base[i % 8].to_string()).collect();
            let sp = shape == "kspace";
            let opts = [
                "a", "AB", "aBc", "abCd", "abcDe", "abcdEf", "abcdeFg", "abcdefGh", "b", "ba",
                "bac", "bacd", "bacde", "bacdef", "bacdefg", "bacdefgh",
            ];
            Box::new(move |i| {
                let o = opts[i % 16];
                if sp { format!("{o} ") } else { o.to_string() }
            })
        }
        "nine" => {
            // Nine bytes: just past a word, the slow path; each option other than the last.
            names = (0..96).map(|i| format!("x-abcd-{i:02}")).collect();
            Box::new(|i| format!("x-abcd-{}{}", (b'a' + (i % 26) as u8) as char, i % 10))
        }
        "words" => {
            // 96 names of 3..=8 bytes, options naming them in turn (a lookup each).
            names = (0..96)
                .map(|i| format!("{}{:02}", &"wxyzwx"[..1 + i % 6], i))
                .collect();
            let n2 = names.clone();
            Box::new(move |i| n2[i % 96].to_uppercase())
        }
        "edge" => {
            // Options of 63 spaces then `a`: every element crosses a block edge.
            names = (0..96).map(|i| ["a", "b"][i % 2].into()).collect();
            Box::new(|i| format!("{}{}", " ".repeat(62), ["a", "B"][i % 2]))
        }
        "seventeen" | "sxmiss" => {
            // 17 bytes: one past two words; named in turn in upper case, or not at all.
            names = (0..96).map(|i| format!("x-abcdefghijkl{i:02}x")).collect();
            if shape == "sxmiss" {
                Box::new(|i| format!("x-abcdefghijkm{:02}x", i % 96))
            } else {
                Box::new(|i| format!("X-ABCDEFGHIJKL{:02}x", i % 96))
            }
        }
        "shift" => {
            // Period 48: a 17-byte name, six `abc`, one `abcde` (18 + 24 + 6 bytes).
            names = (0..96)
                .map(|i| match i {
                    0..48 => format!("x-abcdefghijkl{i:02}x"),
                    _ => ["abc", "abcde"][i % 2].into(),
                })
                .collect();
            Box::new(|i| match i % 8 {
                0 => format!("x-abcdefghijkl{:02}x", i / 8 % 48),
                7 => "abcde".into(),
                _ => "abc".into(),
            })
        }
        "hmiss" => {
            // Seven words `-abcdef?`… whose last byte is `a` or `!`: they differ only in
            // bit 6 of the word's top byte. Fields are 96 of the family, options 32 others.
            fn family(i: usize) -> String {
                (0..7)
                    .map(|j| {
                        let word = ["-abcdef", "-ghijkl", "-mnopqr", "-stuvwx"][j % 4];
                        format!("{word}{}", if i >> j & 1 == 1 { 'a' } else { '!' })
                    })
                    .collect()
            }
            names = (0..96).map(family).collect();
            Box::new(|i| family(96 + i % 32))
        }
        _ => panic!("unknown shape {shape}: {SHAPES:?}"),
    };
    (names, Some(options))
}

/// A head of exactly `size` bytes: `first` (a request or status line and what must
/// come first), the fields of `shape`, then a `Connection` of its options as many as
/// fit, or a plain field, filled to the size.
fn head(first: &[u8], size: usize, shape_name: &str) -> Vec<u8> {
    let (names, options) = shape(shape_name);
    let mut head = first.to_vec();
    for name in &names {
        head.extend_from_slice(format!("{name}: v\r\n").as_bytes());
    }
    let end = size - 4; // the last CRLF, and the blank line
    // `lines`: the options over 96 `Connection` lines of about the same length.
    let lines = if shape_name == "lines" { 96 } else { 1 };
    let per_line = (end - head.len()) / lines;
    for _ in 1..lines {
        let line_end = head.len() + per_line;
        let mut options = shape(shape_name).1.expect("options");
        head.extend_from_slice(b"Connection: ");
        for i in 0.. {
            let option = options(i);
            let sep = usize::from(i > 0);
            if head.len() + sep + option.len() + 2 > line_end {
                break;
            }
            if sep == 1 {
                head.push(b',');
            }
            head.extend_from_slice(option.as_bytes());
        }
        head.extend_from_slice(b"\r\n");
    }
    match options {
        Some(mut options) => {
            head.extend_from_slice(b"Connection: ");
            for i in 0.. {
                let option = options(i);
                let sep = if i == 0 { 0 } else { 1 };
                if head.len() + sep + option.len() > end {
                    break;
                }
                if sep == 1 {
                    head.push(b',');
                }
                head.extend_from_slice(option.as_bytes());
            }
            // Fill what no option fits into with spaces (OWS after the last).
            head.resize(end, b' ');
        }
        None => {
            head.extend_from_slice(b"X-Plain: ");
            head.resize(end, b'v');
        }
    }
    head.extend_from_slice(b"\r\n\r\n");
    assert_eq!(head.len(), size);
    head
}

/// The request, the upstream response and the head limit of a large-head scenario.
fn large(scenario: &str) -> (Vec<u8>, Vec<u8>, usize) {
    if let Some(rest) = scenario.strip_prefix("resp-") {
        let shape = rest.strip_suffix("16k").expect("resp-<shape>16k");
        let mut response = head(
            b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n",
            16 << 10,
            shape,
        );
        response.extend_from_slice(b"Hello, World!");
        return (LITE_REQUEST.to_vec(), response, 64 << 10);
    }
    let (shape, size, limit) = if let Some(shape) = scenario.strip_suffix("16k") {
        (shape, 16 << 10, 64 << 10)
    } else if let Some(shape) = scenario.strip_suffix("1m") {
        (shape, 1 << 20, 2 << 20)
    } else {
        panic!("unknown scenario {scenario}");
    };
    let request = head(b"GET / HTTP/1.1\r\nHost: example.com\r\n", size, shape);
    (request, UPSTREAM_RESPONSE.to_vec(), limit)
}

/// Runs `scenario` `ops` times after one unmeasured op (buffers and exchange states
/// made); returns the mean wall time of an op.
fn run(scenario: &str, ops: u64) -> f64 {
    let (request, response, max_head_bytes) = match scenario {
        "no_keep_alive" | "keep_alive_lite" => (Vec::new(), Vec::new(), 64 << 10),
        "proxy" => (LITE_REQUEST.to_vec(), UPSTREAM_RESPONSE.to_vec(), 64 << 10),
        _ => large(scenario),
    };
    let limits = Limits {
        max_head_bytes,
        ..Limits::default()
    };
    let shared = Shared::new(limits, 1, false);
    let mut ctx = shared.context(0);
    let mut sink: Vec<u8> = Vec::with_capacity(4096);
    let mut serve = |conn: &mut Conn<App<'_>>, request: &[u8], ctx: &mut _| {
        let mut rbuf = shared.readers.get();
        rbuf.extend_from_slice(request);
        let mut wbuf = shared.writers.get();
        conn.process(&mut rbuf, &mut wbuf, ctx, &mut ());
        wbuf.flush_to(&mut sink).unwrap();
        black_box(&sink);
        sink.clear();
    };
    let start;
    match scenario {
        "no_keep_alive" => {
            let mut once = || {
                let mut conn = Conn::new(App::new(&shared));
                serve(&mut conn, BROWSER_REQUEST, &mut ctx);
                assert!(conn.is_done());
            };
            once();
            start = Instant::now();
            (0..ops).for_each(|_| once());
        }
        "keep_alive_lite" => {
            let mut conn = Conn::new(App::new(&shared));
            serve(&mut conn, LITE_REQUEST, &mut ctx);
            start = Instant::now();
            (0..ops).for_each(|_| serve(&mut conn, LITE_REQUEST, &mut ctx));
        }
        _ => {
            let config = ProxyConfig {
                upstreams: vec!["127.0.0.1:8080".parse().unwrap()],
                ..ProxyConfig::default()
            };
            let proxy = Arc::new(Proxy::new(config, 1));
            let mut mem = MemProxy::new(&shared, &proxy);
            let mut once = || {
                let key = mem.exchange(&request, &response);
                let received = mem.client_received();
                assert!(
                    received.starts_with(b"HTTP/1.1 200 ") && received.ends_with(b"Hello, World!"),
                    "{scenario}: {:?}",
                    String::from_utf8_lossy(&received[..received.len().min(60)])
                );
                black_box(mem.client_received());
                mem.clear_client_received();
                mem.clear_upstream_received(key);
            };
            once();
            start = Instant::now();
            (0..ops).for_each(|_| once());
        }
    }
    start.elapsed().as_secs_f64() / ops.max(1) as f64
}

/// Every scenario's name, with the ops of a quick look at its wall time.
fn scenarios() -> Vec<(String, u64)> {
    let mut all = vec![
        ("no_keep_alive".to_owned(), 100_000),
        ("keep_alive_lite".to_owned(), 100_000),
        ("proxy".to_owned(), 100_000),
    ];
    for shape in SHAPES {
        all.push((format!("{shape}16k"), 1000));
        all.push((format!("{shape}1m"), 20));
    }
    for shape in SHAPES {
        all.push((format!("resp-{shape}16k"), 1000));
    }
    all
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    match args.as_slice() {
        [scenario, ops] => {
            run(scenario, ops.parse().expect("a number of ops"));
        }
        [list] if list == "--list" => {
            for (scenario, _) in scenarios() {
                println!("{scenario}");
            }
        }
        [] => {
            for (scenario, ops) in scenarios() {
                println!("{scenario}: {:.2} us/op", run(&scenario, ops) * 1e6);
            }
        }
        _ => eprintln!("usage: instructions [--list | <scenario> <ops>]"),
    }
}
