//! get + return of a 4 KiB `Vec<u8>`: `recycle_pool::Pool` beside the ways people do it
//! today, in three scenarios: one thread getting and returning one buffer, one thread
//! holding eight at once, and two threads sharing one pool.
//!
//! - `fresh`: allocate a new buffer every time (no pool).
//! - `mutex`: a `Mutex<Vec<Vec<u8>>>` pool.
//! - `thread_local`: a bare `thread_local!` `RefCell<Vec<Vec<u8>>>` stack, what people
//!   write by hand (it cannot balance objects across threads). Its `pop` copies the
//!   `Vec` out 16 bytes at a time right after `push` wrote it 8 bytes at a time: a load
//!   that spans two pending stores cannot be forwarded from the store buffer and waits
//!   for them (a store-forwarding stall, some 20 to 30 cycles on the development
//!   machine), so this row measures the hand-written stack *with* that stall.
//! - `thread_local_words`: the same stack, but `pop` reads the `Vec` one 8-byte word at a
//!   time (as the crate's own stack does): no stall. The floor for a per-thread cache,
//!   and the baseline issue 19 measures the crate against.
//! - `thread_local_array`: a `thread_local!` array of such stacks, one per instance
//!   (an instance is an index into it): the floor for many pools on one thread, whose
//!   `512pools` row shows what touching 512 stacks' lines costs with nothing else.
//! - `recycle-pool`: this crate, `Pool::builder(..).max_idle(64).build()`.
//!
//! With `--features comparisons` (`bench/pool-peers.sh` runs it and tabulates the
//! results), the peer crates too: `lockfree-object-pool`, `object-pool`, `opool` and
//! `opool-local`, `sharded-slab`, `poolshark`. Each is used the way its own docs show
//! (see the doc comment on each in `mod peers`), with a reset that clears the `Vec`.
//! Every pool starts empty where its API allows (`lockfree-object-pool` creates a whole
//! page of 32 objects at construction), and every one reaches its steady state through
//! the same unmeasured warm-up on each measuring thread before the timed loop.
//!
//! Scenarios (time per object):
//! - `1thread`: one thread gets a buffer, pushes one byte, returns it.
//! - `hold8`: one thread gets 8 buffers, pushes one byte into each, returns the 8.
//! - `2threads`: the `1thread` loop on two threads at once against one shared pool (a
//!   thread-local pool, such as the `thread_local!` stack or `poolshark`, has one pool per
//!   thread instead; `opool-local` is not `Sync` and is left out of this scenario).
//! - `512pools`: the `1thread` round on each of 512 pools of the same kind in turn, on
//!   one thread (a server with a pool per buffer kind and per message type). Only for
//!   the pools that are instances: the single `thread_local!` stacks and `poolshark`
//!   have one pool per thread and type, so they have no such scenario
//!   (`thread_local_array` is their many-pools form). Compare it with the same
//!   pool's `1thread`: a cost that is flat in the number of pools gives the same time.
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
//! cargo bench -p pool-bench --bench pool --no-run   # prints the binary's path
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
/// Pools in the `512pools` scenario.
const POOLS: usize = 512;
/// Buffers held at once in the `hold8` scenario.
const HOLD: usize = 8;

/// A source of buffers, with the two round shapes the scenarios use.
trait BufPool {
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

thread_local! {
    static WORDS: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// Pops the top of `stack` reading the `Vec` by 8-byte words (`read_volatile`, so that
/// the compiler does not merge them back into 16-byte loads): no store-forwarding
/// stall when the `Vec` was pushed a moment ago.
#[inline]
fn pop_by_words(stack: &mut Vec<Vec<u8>>) -> Option<Vec<u8>> {
    let len = stack.len().checked_sub(1)?;
    // SAFETY: `len < stack.len()`, so the element is initialised; `set_len` makes the
    // stack forget it, so it is moved out exactly once. A `Vec<u8>` is three aligned
    // words, copied word by word into `out`.
    unsafe {
        stack.set_len(len);
        let from = stack.as_ptr().add(len).cast::<std::mem::MaybeUninit<u64>>();
        let mut out = std::mem::MaybeUninit::<Vec<u8>>::uninit();
        let to = out.as_mut_ptr().cast::<std::mem::MaybeUninit<u64>>();
        for i in 0..size_of::<Vec<u8>>() / 8 {
            to.add(i).write(from.add(i).read_volatile());
        }
        Some(out.assume_init())
    }
}

/// [`ThreadLocalStack`] without the store-forwarding stall: `take` reads the `Vec` by
/// words ([`pop_by_words`]).
struct ThreadLocalWords;
impl ThreadLocalWords {
    #[inline]
    fn take(&self) -> Vec<u8> {
        let popped = WORDS.with(|s| pop_by_words(&mut s.borrow_mut()));
        popped.unwrap_or_else(|| Vec::with_capacity(BUF))
    }
    #[inline]
    fn give(&self, mut buf: Vec<u8>) {
        buf.clear();
        WORDS.with(|s| s.borrow_mut().push(buf));
    }
}
take_give_pool!(ThreadLocalWords);

thread_local! {
    static ARRAY: RefCell<Vec<Vec<Vec<u8>>>> = const { RefCell::new(Vec::new()) };
}
/// A `thread_local!` array of stall-free stacks ([`ThreadLocalWords`]), one per
/// instance: an instance is an index into the array, given out in order. What a
/// per-thread cache for many pools costs at the least: one pool's round touches its
/// stack's header (24 bytes in the array), the top slot and the buffer, with no
/// lookup beyond the index, no ownership check, no trim epoch and no counters.
struct ThreadLocalArray(usize);
impl ThreadLocalArray {
    fn new() -> Self {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        ThreadLocalArray(NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
    }
    #[inline(always)]
    fn take(&self) -> Vec<u8> {
        let popped = ARRAY.with(|a| a.borrow_mut().get_mut(self.0).and_then(pop_by_words));
        popped.unwrap_or_else(|| Vec::with_capacity(BUF))
    }
    #[inline(always)]
    fn give(&self, mut buf: Vec<u8>) {
        buf.clear();
        ARRAY.with(|a| {
            let mut a = a.borrow_mut();
            match a.get_mut(self.0) {
                Some(stack) => stack.push(buf),
                None => grow_and_push(&mut a, self.0, buf),
            }
        });
    }
}
take_give_pool!(ThreadLocalArray);

/// A thread's first return to stack `index`: grows its array to hold it.
#[cold]
#[inline(never)]
fn grow_and_push(array: &mut Vec<Vec<Vec<u8>>>, index: usize, buf: Vec<u8>) {
    array.resize_with(index + 1, Vec::new);
    array[index].push(buf);
}

/// [`POOLS`] pools of one kind, used in turn: one `round` is a round on each.
struct Many<P>(Vec<P>);
impl<P: BufPool> BufPool for Many<P> {
    #[inline]
    fn round(&self) {
        for pool in &self.0 {
            pool.round();
        }
    }
    #[inline]
    fn round_hold(&self) {
        for pool in &self.0 {
            pool.round_hold();
        }
    }
}

/// A `BufPool` from a pool whose guard (dereferencing to the `Vec<u8>`) returns the
/// buffer when dropped: `guard_pool!(Type, |pool| expression getting a guard)`.
macro_rules! guard_pool {
    ($ty:ty, |$pool:ident| $get:expr) => {
        impl BufPool for $ty {
            #[inline]
            fn round(&self) {
                let $pool = self;
                let mut buf = $get;
                work(&mut buf);
            }

            #[inline]
            fn round_hold(&self) {
                let $pool = self;
                let mut bufs: [_; HOLD] = std::array::from_fn(|_| $get);
                for buf in &mut bufs {
                    work(buf);
                }
            }
        }
    };
}

guard_pool!(recycle_pool::Pool<Vec<u8>>, |pool| pool.get());

fn recycle_pool() -> recycle_pool::Pool<Vec<u8>> {
    recycle_pool::Pool::builder(|| Vec::with_capacity(BUF))
        .max_idle(64)
        .build()
}

/// The three scenarios, each with the number of objects one call of `run` moves.
#[derive(Clone, Copy)]
enum Scenario {
    OneThread,
    Hold8,
    TwoThreads,
    /// `1thread` on each of [`POOLS`] pools in turn.
    ManyPools,
}

impl Scenario {
    /// The scenarios on one pool.
    const ALL: [(Scenario, &'static str); 3] = [
        (Scenario::OneThread, "1thread"),
        (Scenario::Hold8, "hold8"),
        (Scenario::TwoThreads, "2threads"),
    ];
    const MANY: (Scenario, &'static str) = (Scenario::ManyPools, "512pools");

    /// Objects per iteration, per thread.
    fn objects(self) -> u64 {
        match self {
            Scenario::Hold8 => HOLD as u64,
            Scenario::ManyPools => POOLS as u64,
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
    fn run(self, pool: &(impl BufPool + Sync), iters: u64) -> Duration {
        let threads = self.threads();
        let barrier = Barrier::new(threads);
        let one = || self.run_here(pool, iters, &barrier);
        if threads == 1 {
            return one();
        }
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads).map(|_| s.spawn(one)).collect();
            let total: Duration = handles.into_iter().map(|h| h.join().unwrap()).sum();
            total / threads as u32
        })
    }

    /// The calling thread's part of [`Scenario::run`]: warm up, wait for the other
    /// threads at `barrier`, time `iters` iterations.
    fn run_here(self, pool: &impl BufPool, iters: u64, barrier: &Barrier) -> Duration {
        // Warm up outside the measured loop (creates the thread's cache and objects).
        for _ in 0..16 {
            pool.round();
            pool.round_hold();
        }
        barrier.wait();
        let start = Instant::now();
        measured(self, pool, iters);
        start.elapsed()
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

/// Benchmarks one pool in one scenario; `run(iters)` returns the time one thread took.
fn bench(
    c: &mut Criterion,
    name: &str,
    (scenario, label): (Scenario, &str),
    mut run: impl FnMut(u64) -> Duration,
) {
    c.benchmark_group(format!("pool/{label}"))
        .throughput(Throughput::Elements(scenario.objects()))
        .bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter_custom(&mut run)
        });
}

fn with_pool(name: &str, f: &mut dyn FnMut(&dyn DynPool)) {
    match name {
        "fresh" => f(&Instances(|| Fresh)),
        "mutex" => f(&Instances(|| MutexPool(Mutex::new(Vec::new())))),
        "thread_local" => f(&ThreadLocalStack),
        "thread_local_words" => f(&ThreadLocalWords),
        "thread_local_array" => f(&Instances(ThreadLocalArray::new)),
        "recycle" => f(&Instances(recycle_pool)),
        #[cfg(feature = "comparisons")]
        "lockfree-object-pool" => f(&Instances(peers::lockfree_object_pool)),
        #[cfg(feature = "comparisons")]
        "object-pool" => f(&Instances(peers::object_pool)),
        #[cfg(feature = "comparisons")]
        "opool" => f(&Instances(peers::opool)),
        #[cfg(feature = "comparisons")]
        "opool-local" => f(&ThreadBound(peers::opool_local())),
        #[cfg(feature = "comparisons")]
        "sharded-slab" => f(&Instances(peers::SlabPool::default)),
        #[cfg(feature = "comparisons")]
        "poolshark" => f(&peers::Poolshark::new()),
        _ => panic!("unknown pool {name:?}: one of {}", pools().join(", ")),
    }
}

/// Object-safe face of `BufPool`, for picking a pool by name.
trait DynPool {
    fn bench(&self, c: &mut Criterion, name: &str);
    /// Runs `iters` iterations of `scenario` outside criterion; the time one thread took.
    fn count(&self, scenario: Scenario, iters: u64) -> Duration;
}

impl<P: BufPool + Sync> DynPool for P {
    fn bench(&self, c: &mut Criterion, name: &str) {
        for scenario in Scenario::ALL {
            bench(c, name, scenario, |iters| scenario.0.run(self, iters));
        }
    }
    fn count(&self, scenario: Scenario, iters: u64) -> Duration {
        assert!(
            !matches!(scenario, Scenario::ManyPools),
            "one pool per thread: no 512pools scenario"
        );
        scenario.run(self, iters)
    }
}

/// A pool that can be made many times (`make` makes one): every scenario, `512pools`
/// included.
struct Instances<F>(F);

impl<P: BufPool + Sync, F: Fn() -> P> DynPool for Instances<F> {
    fn bench(&self, c: &mut Criterion, name: &str) {
        (self.0)().bench(c, name);
        let many = Many((0..POOLS).map(|_| (self.0)()).collect());
        let (scenario, _) = Scenario::MANY;
        bench(c, name, Scenario::MANY, |iters| scenario.run(&many, iters));
    }
    fn count(&self, scenario: Scenario, iters: u64) -> Duration {
        match scenario {
            Scenario::ManyPools => {
                let many = Many((0..POOLS).map(|_| (self.0)()).collect());
                scenario.run(&many, iters)
            }
            _ => (self.0)().count(scenario, iters),
        }
    }
}

/// A pool that is not `Sync`: it runs the one-thread scenarios only.
#[cfg(feature = "comparisons")]
struct ThreadBound<P>(P);

#[cfg(feature = "comparisons")]
impl<P: BufPool> DynPool for ThreadBound<P> {
    fn bench(&self, c: &mut Criterion, name: &str) {
        for scenario in Scenario::ALL {
            if scenario.0.threads() == 1 {
                bench(c, name, scenario, |iters| {
                    scenario.0.run_here(&self.0, iters, &Barrier::new(1))
                });
            }
        }
    }
    fn count(&self, scenario: Scenario, iters: u64) -> Duration {
        assert_eq!(
            scenario.threads(),
            1,
            "this pool is not Sync: one thread only"
        );
        scenario.run_here(&self.0, iters, &Barrier::new(1))
    }
}

const OURS: [&str; 6] = [
    "fresh",
    "mutex",
    "thread_local",
    "thread_local_words",
    "thread_local_array",
    "recycle",
];
#[cfg(feature = "comparisons")]
const PEERS: [&str; 6] = [
    "lockfree-object-pool",
    "object-pool",
    "opool",
    "opool-local",
    "sharded-slab",
    "poolshark",
];
#[cfg(not(feature = "comparisons"))]
const PEERS: [&str; 0] = [];

/// The names `with_pool` knows, in benchmark order.
fn pools() -> Vec<&'static str> {
    OURS.into_iter().chain(PEERS).collect()
}

/// `count SCENARIO POOL ITERS`: run one scenario outside criterion (for callgrind), and
/// print the objects moved and the time per object of the timed loop (per thread).
fn count(args: &[String]) {
    let [scenario, pool, iters] = args else {
        panic!(
            "usage: count <1thread|hold8|2threads|512pools> <{}> <iters>",
            pools().join("|")
        );
    };
    let (scenario, _) = Scenario::ALL
        .into_iter()
        .chain([Scenario::MANY])
        .find(|(_, label)| label == scenario)
        .unwrap_or_else(|| panic!("unknown scenario {scenario:?}"));
    let iters: u64 = iters.parse().expect("iters: a number");
    let mut took = Duration::ZERO;
    with_pool(pool, &mut |p| took = p.count(scenario, iters));
    let objects = iters * scenario.objects() * scenario.threads() as u64;
    println!("objects: {objects}");
    let per_thread = (iters * scenario.objects()).max(1) as f64;
    println!("ns per object: {:.2}", took.as_nanos() as f64 / per_thread);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("count") {
        return count(&args[1..]);
    }
    let mut c = Criterion::default().configure_from_args();
    for name in pools() {
        with_pool(name, &mut |p| p.bench(&mut c, name));
    }
    c.final_summary();
}

/// The peer crates (`--features comparisons`), each used the way its docs show, on the
/// same object (a `Vec<u8>` of [`BUF`] bytes' capacity, cleared between uses) and the
/// same rounds as the pools above.
#[cfg(feature = "comparisons")]
mod peers {
    use super::{BUF, BufPool, HOLD, work};

    fn new_buf() -> Vec<u8> {
        Vec::with_capacity(BUF)
    }

    /// `lockfree-object-pool`'s `LinearObjectPool` (lock-free: pages of 32 slots, each
    /// with an atomic free mask), as its docs show: `LinearObjectPool::new(init, reset)`
    /// with `init` making a 4 KiB `Vec` and `reset` = `Vec::clear` (run as the guard
    /// drops); `pull()` gives a guard that puts the object back when dropped. A page
    /// creates its 32 objects when it is created (the first with the pool).
    pub(super) fn lockfree_object_pool() -> lockfree_object_pool::LinearObjectPool<Vec<u8>> {
        lockfree_object_pool::LinearObjectPool::new(new_buf, Vec::clear)
    }
    guard_pool!(lockfree_object_pool::LinearObjectPool<Vec<u8>>, |pool| pool
        .pull());

    /// `object-pool`'s `Pool` (a `parking_lot` mutex around a `Vec`), as its docs show:
    /// `pull(fallback)` pops an object, or makes one with `fallback` when the pool is
    /// empty (created empty here: `Pool::new(0, ..)`); the guard pushes it back when
    /// dropped. Objects are not reset on return (the docs' warning), so the caller
    /// clears after pulling, as the docs advise.
    pub(super) fn object_pool() -> object_pool::Pool<Vec<u8>> {
        object_pool::Pool::new(0, new_buf)
    }
    guard_pool!(object_pool::Pool<Vec<u8>>, |pool| {
        let mut buf = pool.pull(new_buf);
        buf.clear();
        buf
    });

    /// The `PoolAllocator` both `opool` pools take, as opool's docs show: `allocate`
    /// makes a 4 KiB `Vec`, `reset` (run when an object is taken from the pool) clears
    /// it; `is_valid` keeps its default (every object goes back).
    pub(super) struct BufAllocator;

    impl opool::PoolAllocator<Vec<u8>> for BufAllocator {
        #[inline]
        fn allocate(&self) -> Vec<u8> {
            new_buf()
        }

        #[inline]
        fn reset(&self, buf: &mut Vec<u8>) {
            buf.clear();
        }
    }

    /// `opool`'s `Pool` (lock-free: a crossbeam `ArrayQueue`), as its docs show:
    /// `Pool::new(64, allocator)` (empty, room for 64, as `recycle-pool`'s `max_idle(64)`);
    /// `get()` pops and resets an object or allocates one; the guard pushes it back when
    /// dropped (or drops it when the queue is full).
    pub(super) fn opool() -> opool::Pool<BufAllocator, Vec<u8>> {
        opool::Pool::new(64, BufAllocator)
    }
    guard_pool!(opool::Pool<BufAllocator, Vec<u8>>, |pool| pool.get());

    /// `opool`'s `LocalPool` (single-thread, not `Sync`: a `VecDeque` behind an
    /// `UnsafeCell`), used like its `Pool`: `LocalPool::new(64, allocator)`, `get()`, the
    /// guard puts the object back when dropped. One thread only, so no `2threads` row.
    pub(super) fn opool_local() -> opool::LocalPool<BufAllocator, Vec<u8>> {
        opool::LocalPool::new(64, BufAllocator)
    }
    guard_pool!(opool::LocalPool<BufAllocator, Vec<u8>>, |pool| pool.get());

    /// The object `sharded-slab`'s pool holds: it needs `Default` (how the pool makes an
    /// object for a new slot) and `Clear` (how `Pool::clear` resets it for reuse).
    #[derive(Debug)]
    pub(super) struct SlabBuf(Vec<u8>);

    impl Default for SlabBuf {
        fn default() -> Self {
            SlabBuf(new_buf())
        }
    }

    impl sharded_slab::Clear for SlabBuf {
        #[inline]
        fn clear(&mut self) {
            self.0.clear();
        }
    }

    /// `sharded-slab`'s `Pool` (lock-free, one shard per thread), as its docs show:
    /// `create()` takes a slot (its object made by `Default` the first time, cleared and
    /// reused after) and gives a guard with the slot's key; dropping the guard releases
    /// the access, and `clear(key)` gives the slot back (it clears the object with
    /// `Clear`).
    #[derive(Default)]
    pub(super) struct SlabPool(sharded_slab::Pool<SlabBuf>);

    type SlabGuard<'a> = sharded_slab::pool::RefMut<'a, SlabBuf>;

    impl SlabPool {
        #[inline]
        fn take(&self) -> SlabGuard<'_> {
            self.0.create().expect("sharded-slab: the shard is full")
        }

        #[inline]
        fn give(&self, buf: SlabGuard<'_>) {
            let key = buf.key();
            drop(buf);
            self.0.clear(key);
        }
    }

    impl BufPool for SlabPool {
        #[inline]
        fn round(&self) {
            let mut buf = self.take();
            work(&mut buf.0);
            self.give(buf);
        }

        #[inline]
        fn round_hold(&self) {
            let mut bufs: [_; HOLD] = std::array::from_fn(|_| self.take());
            for buf in &mut bufs {
                work(&mut buf.0);
            }
            for buf in bufs {
                self.give(buf);
            }
        }
    }

    /// `poolshark`'s thread-local pool (`poolshark::local`, the one its docs recommend by
    /// default): `LPooled::<Vec<u8>>::take()` pops from the calling thread's pool (or
    /// makes `Vec::new()`), and the guard clears the `Vec` and pushes it onto the
    /// dropping thread's pool. Set up as its docs say: `local::set_size::<Vec<u8>>(64,
    /// 4096)` first (its default keeps no `Vec` of more than 1024 elements' capacity,
    /// so it would free every 4 KiB buffer), and `reserve(4096)` after `take` (the
    /// pool has no factory: this gives a new `Vec` its 4 KiB, and costs a compare on a
    /// recycled one). One pool per thread, like the `thread_local!` stack.
    pub(super) struct Poolshark(());

    impl Poolshark {
        pub(super) fn new() -> Self {
            poolshark::local::set_size::<Vec<u8>>(64, BUF);
            Poolshark(())
        }
    }

    guard_pool!(Poolshark, |_pool| {
        let mut buf = poolshark::local::LPooled::<Vec<u8>>::take();
        buf.reserve(BUF);
        buf
    });
}
