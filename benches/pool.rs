//! get + return of a 4 KiB `Vec<u8>`: `recycle::Pool` beside the ways people do it
//! today, in the three scenarios of issue 12.
//!
//! - `fresh`: allocate a new buffer every time (no pool).
//! - `mutex`: a `Mutex<Vec<Vec<u8>>>` pool.
//! - `thread_local`: a bare `thread_local!` `RefCell<Vec<Vec<u8>>>` stack, the practical
//!   lower bound for a per-thread cache (it cannot balance objects across threads).
//! - `recycle`: this crate, `Pool::builder(..).max_idle(64).build()`.
//!
//! Scenarios (time per object):
//! - `1thread`: one thread gets a buffer, pushes one byte, returns it.
//! - `hold8`: one thread gets 8 buffers, pushes one byte into each, returns the 8.
//! - `2threads`: the `1thread` loop on two threads at once against one shared pool.
//!
//! The bench profile builds with `lto = true, codegen-units = 1`, as a user's optimised
//! release build would.
//!
//! # Instruction counts
//!
//! Timings on a shared machine are noisy; instruction counts are not. The same binary
//! runs one scenario in a loop, outside criterion, when given `count`:
//!
//! ```sh
//! cargo bench --bench pool --no-run   # prints the binary's path
//! valgrind --tool=callgrind --toggle-collect='*measured*' \
//!     target/release/deps/pool-HASH count 1thread recycle 100000
//! ```
//!
//! `--toggle-collect` restricts the count to the measured loop (setup and warm-up are
//! excluded); divide the total `Ir` by the objects the run printed.

use std::cell::RefCell;
use std::hint::black_box;
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};

const BUF: usize = 4096;
/// Buffers held at once in the `hold8` scenario.
const HOLD: usize = 8;

/// A source of buffers, with the two round shapes the scenarios use.
trait BufPool: Sync {
    /// Get one buffer, write to it, return it.
    fn round(&self);
    /// Get [`HOLD`] buffers, write to each, return them all.
    fn round_hold(&self);
}

#[inline]
fn work(buf: &mut Vec<u8>) {
    buf.push(1);
    black_box(buf);
}

/// A `BufPool` from a `take` and a `give` (the pools without guards).
macro_rules! take_give_pool {
    ($ty:ty) => {
        impl BufPool for $ty {
            #[inline]
            fn round(&self) {
                let mut buf = self.take();
                work(&mut buf);
                self.give(buf);
            }

            #[inline]
            fn round_hold(&self) {
                let mut bufs: [Vec<u8>; HOLD] = std::array::from_fn(|_| self.take());
                for buf in &mut bufs {
                    work(buf);
                }
                for buf in bufs {
                    self.give(buf);
                }
            }
        }
    };
}

struct Fresh;
impl Fresh {
    #[inline]
    fn take(&self) -> Vec<u8> {
        Vec::with_capacity(BUF)
    }
    #[inline]
    fn give(&self, buf: Vec<u8>) {
        drop(buf);
    }
}
take_give_pool!(Fresh);

struct MutexPool(Mutex<Vec<Vec<u8>>>);
impl MutexPool {
    #[inline]
    fn take(&self) -> Vec<u8> {
        let popped = self.0.lock().unwrap().pop();
        popped.unwrap_or_else(|| Vec::with_capacity(BUF))
    }
    #[inline]
    fn give(&self, mut buf: Vec<u8>) {
        buf.clear();
        self.0.lock().unwrap().push(buf);
    }
}
take_give_pool!(MutexPool);

thread_local! {
    static STACK: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}
struct ThreadLocalStack;
impl ThreadLocalStack {
    #[inline]
    fn take(&self) -> Vec<u8> {
        let popped = STACK.with(|s| s.borrow_mut().pop());
        popped.unwrap_or_else(|| Vec::with_capacity(BUF))
    }
    #[inline]
    fn give(&self, mut buf: Vec<u8>) {
        buf.clear();
        STACK.with(|s| s.borrow_mut().push(buf));
    }
}
take_give_pool!(ThreadLocalStack);

impl BufPool for recycle::Pool<Vec<u8>> {
    #[inline]
    fn round(&self) {
        work(&mut self.get());
    }

    #[inline]
    fn round_hold(&self) {
        let mut bufs: [recycle::Pooled<'_, Vec<u8>>; HOLD] = std::array::from_fn(|_| self.get());
        for buf in &mut bufs {
            work(buf);
        }
    }
}

fn recycle_pool() -> recycle::Pool<Vec<u8>> {
    recycle::Pool::builder(|| Vec::with_capacity(BUF))
        .max_idle(64)
        .build()
}

/// The three scenarios, each with the number of objects one call of `run` moves.
#[derive(Clone, Copy)]
enum Scenario {
    OneThread,
    Hold8,
    TwoThreads,
}

impl Scenario {
    const ALL: [(Scenario, &'static str); 3] = [
        (Scenario::OneThread, "1thread"),
        (Scenario::Hold8, "hold8"),
        (Scenario::TwoThreads, "2threads"),
    ];

    /// Objects per iteration, per thread.
    fn objects(self) -> u64 {
        match self {
            Scenario::Hold8 => HOLD as u64,
            _ => 1,
        }
    }

    fn threads(self) -> usize {
        match self {
            Scenario::TwoThreads => 2,
            _ => 1,
        }
    }

    /// Runs `iters` iterations on each of the scenario's threads; returns the mean time
    /// one thread took.
    fn run(self, pool: &impl BufPool, iters: u64) -> Duration {
        let threads = self.threads();
        let barrier = Barrier::new(threads);
        let one = || {
            // Warm up outside the measured loop (creates the thread's cache and objects).
            for _ in 0..16 {
                pool.round();
                pool.round_hold();
            }
            barrier.wait();
            let start = Instant::now();
            measured(self, pool, iters);
            start.elapsed()
        };
        if threads == 1 {
            return one();
        }
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads).map(|_| s.spawn(one)).collect();
            let total: Duration = handles.into_iter().map(|h| h.join().unwrap()).sum();
            total / threads as u32
        })
    }
}

/// The loop under measurement (callgrind's `--toggle-collect='*measured*'`).
#[inline(never)]
fn measured(scenario: Scenario, pool: &impl BufPool, iters: u64) {
    match scenario {
        Scenario::Hold8 => (0..iters).for_each(|_| pool.round_hold()),
        _ => (0..iters).for_each(|_| pool.round()),
    }
}

fn bench(c: &mut Criterion, name: &str, pool: &impl BufPool) {
    for (scenario, label) in Scenario::ALL {
        c.benchmark_group(format!("pool/{label}"))
            .throughput(Throughput::Elements(scenario.objects()))
            .bench_function(BenchmarkId::from_parameter(name), |b| {
                b.iter_custom(|iters| scenario.run(pool, iters))
            });
    }
}

fn with_pool(name: &str, f: &mut dyn FnMut(&dyn DynPool)) {
    match name {
        "fresh" => f(&Fresh),
        "mutex" => f(&MutexPool(Mutex::new(Vec::new()))),
        "thread_local" => f(&ThreadLocalStack),
        "recycle" => f(&recycle_pool()),
        _ => panic!("unknown pool {name:?}: fresh, mutex, thread_local or recycle"),
    }
}

/// Object-safe face of `BufPool`, for picking a pool by name.
trait DynPool {
    fn bench(&self, c: &mut Criterion, name: &str);
    fn count(&self, scenario: Scenario, iters: u64);
}

impl<P: BufPool> DynPool for P {
    fn bench(&self, c: &mut Criterion, name: &str) {
        bench(c, name, self);
    }
    fn count(&self, scenario: Scenario, iters: u64) {
        scenario.run(self, iters);
    }
}

const POOLS: [&str; 4] = ["fresh", "mutex", "thread_local", "recycle"];

/// `count SCENARIO POOL ITERS`: run one scenario outside criterion (for callgrind).
fn count(args: &[String]) {
    let [scenario, pool, iters] = args else {
        panic!(
            "usage: count <1thread|hold8|2threads> <{}> <iters>",
            POOLS.join("|")
        );
    };
    let (scenario, _) = Scenario::ALL
        .into_iter()
        .find(|(_, label)| label == scenario)
        .unwrap_or_else(|| panic!("unknown scenario {scenario:?}"));
    let iters: u64 = iters.parse().expect("iters: a number");
    with_pool(pool, &mut |p| p.count(scenario, iters));
    let objects = iters * scenario.objects() * scenario.threads() as u64;
    println!("objects: {objects}");
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("count") {
        return count(&args[1..]);
    }
    let mut c = Criterion::default().configure_from_args();
    for name in POOLS {
        with_pool(name, &mut |p| p.bench(&mut c, name));
    }
    c.final_summary();
}
