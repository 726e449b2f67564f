//! Integration tests for `recycle_pool::Pool`.

use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Barrier, Mutex, Weak, mpsc};
use std::thread;

use recycle_pool::pool::MAX_THREAD_CACHE;
use recycle_pool::{Pool, Recycle, Reuse};

/// A process-wide allocator that counts, per thread, the bytes each thread allocates
/// and frees (the tests run on parallel threads; per-thread counts keep them apart).
mod heap {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    thread_local! {
        // `const`, without a destructor: usable inside the allocator, at any time.
        static ALLOCATED: Cell<u64> = const { Cell::new(0) };
        static FREED: Cell<u64> = const { Cell::new(0) };
    }

    fn add(counter: &'static std::thread::LocalKey<Cell<u64>>, bytes: usize) {
        let _ = counter.try_with(|c| c.set(c.get() + bytes as u64));
    }

    /// Bytes this thread allocated so far.
    pub(crate) fn allocated() -> u64 {
        ALLOCATED.with(Cell::get)
    }

    /// Bytes this thread allocated and did not free itself.
    pub(crate) fn live() -> i64 {
        allocated() as i64 - FREED.with(Cell::get) as i64
    }

    pub(crate) struct Counting;

    // SAFETY: delegates every call to `System` unchanged; only counts.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            add(&ALLOCATED, layout.size());
            // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
            unsafe { System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            add(&FREED, layout.size());
            // SAFETY: the caller upholds `GlobalAlloc::dealloc`'s contract.
            unsafe { System.dealloc(ptr, layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            add(&FREED, layout.size());
            add(&ALLOCATED, new_size);
            // SAFETY: the caller upholds `GlobalAlloc::realloc`'s contract.
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }
}

#[global_allocator]
static HEAP: heap::Counting = heap::Counting;

const COUNT: usize = if cfg!(miri) { 200 } else { 20_000 };

/// An object with an identity that records what happens to it.
struct Tracked {
    id: usize,
    /// Set while a holder has it; a second holder would find it set.
    in_use: AtomicBool,
    /// How many times the hook ran on it.
    recycled: usize,
    /// The hook discards it when set.
    poison: bool,
    /// Its drop panics when set (unless the thread is already panicking).
    explode: bool,
    log: Arc<Log>,
}

#[derive(Default)]
struct Log {
    created: AtomicUsize,
    recycled: AtomicUsize,
    dropped: AtomicUsize,
    dropped_ids: Mutex<Vec<usize>>,
}

impl Log {
    fn pool(self: &Arc<Self>) -> recycle_pool::Builder<Tracked> {
        let log = Arc::clone(self);
        Pool::builder(move || Tracked {
            id: log.created.fetch_add(1, SeqCst),
            in_use: AtomicBool::new(false),
            recycled: 0,
            poison: false,
            explode: false,
            log: Arc::clone(&log),
        })
    }
}

impl Tracked {
    fn acquire(&self) {
        assert!(
            !self.in_use.swap(true, SeqCst),
            "object {} held twice",
            self.id
        );
    }
    fn release(&self) {
        assert!(self.in_use.swap(false, SeqCst));
    }
}

impl Recycle for Tracked {
    fn recycle(&mut self) -> Reuse {
        self.recycled += 1;
        self.log.recycled.fetch_add(1, SeqCst);
        if self.poison {
            Reuse::Discard
        } else {
            Reuse::Keep
        }
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.log.dropped.fetch_add(1, SeqCst);
        self.log.dropped_ids.lock().unwrap().push(self.id);
        if self.explode && !thread::panicking() {
            panic!("T::drop of object {} fails", self.id);
        }
    }
}

#[test]
fn smoke() {
    let pool = Pool::new(Vec::<u8>::new);
    let mut v = pool.get();
    v.extend_from_slice(b"abc");
    let ptr = v.as_ptr();
    drop(v);
    let v = pool.get();
    assert!(v.is_empty(), "the hook cleared it");
    assert_eq!(v.as_ptr(), ptr, "the same allocation came back");
    let s = pool.stats();
    assert_eq!(
        (s.hits, s.misses, s.returns, s.discards, s.idle),
        (1, 1, 1, 0, 0)
    );
}

#[test]
fn hook_runs_once_per_return() {
    let log = Arc::new(Log::default());
    let pool = log.pool().build();
    for round in 1..=5 {
        let a = pool.get();
        let b = pool.get();
        drop(a);
        pool.put(b.detach());
        assert_eq!(log.recycled.load(SeqCst), 2 * round);
    }
    // Each object saw the hook once per return and no more.
    let a = pool.get();
    let b = pool.get();
    assert_eq!(a.recycled + b.recycled, 10);
    assert_eq!(log.created.load(SeqCst), 2);
}

#[test]
fn discarded_object_is_never_handed_out_again() {
    let log = Arc::new(Log::default());
    let pool = log.pool().build();
    let mut a = pool.get();
    let poisoned = a.id;
    a.poison = true;
    drop(a);
    assert_eq!(log.dropped_ids.lock().unwrap().as_slice(), &[poisoned]);
    for _ in 0..100 {
        assert_ne!(pool.get().id, poisoned);
    }
    let s = pool.stats();
    assert_eq!(s.discards, 1);
}

#[test]
fn no_object_is_held_twice_under_contention() {
    const THREADS: usize = 4;
    let log = Arc::new(Log::default());
    let pool = log.pool().thread_cache(2).max_idle(4).build();
    let barrier = Barrier::new(THREADS);
    thread::scope(|s| {
        for t in 0..THREADS {
            let (pool, barrier) = (&pool, &barrier);
            s.spawn(move || {
                barrier.wait();
                let mut held = Vec::new();
                for i in 0..COUNT {
                    let obj = pool.get();
                    obj.acquire();
                    held.push(obj);
                    // Hold a varying number at once, so objects cross tiers.
                    if held.len() > (i + t) % 5 {
                        for obj in held.drain(..) {
                            obj.release();
                        }
                    }
                }
                for obj in held.drain(..) {
                    obj.release();
                }
            });
        }
    });
    let s = pool.stats();
    assert_eq!(s.hits + s.misses, (THREADS * COUNT) as u64);
    assert_eq!(s.returns, (THREADS * COUNT) as u64);
    assert_eq!(s.in_use(), 0);
    let created = log.created.load(SeqCst);
    assert_eq!(s.misses, created as u64);
    // Everything created is either idle or was dropped.
    assert_eq!(created, s.idle + log.dropped.load(SeqCst));
    drop(pool);
    assert_eq!(
        log.dropped.load(SeqCst),
        created,
        "every object dropped exactly once"
    );
    let ids: HashSet<usize> = log.dropped_ids.lock().unwrap().iter().copied().collect();
    assert_eq!(ids.len(), created, "no object dropped twice");
}

#[test]
fn objects_flow_from_consumer_to_producer_threads() {
    // The producer only gets, the consumer only returns: the shared tier carries the
    // objects back, so the producer stops creating once the caches fill.
    let pool = Arc::new(
        Pool::builder(Vec::<u8>::new)
            .thread_cache(4)
            .max_idle(16)
            .build(),
    );
    let (tx, rx) = mpsc::sync_channel(8);
    let consumer = thread::spawn(move || {
        for guard in rx {
            drop::<recycle_pool::OwnedPooled<Vec<u8>>>(guard);
        }
    });
    for _ in 0..COUNT {
        tx.send(pool.get_owned()).unwrap();
    }
    drop(tx);
    consumer.join().unwrap();
    let s = pool.stats();
    assert_eq!(s.returns, COUNT as u64);
    assert!(s.misses < (COUNT / 10) as u64, "objects were reused: {s:?}");
}

#[test]
fn shared_tier_bound_holds() {
    let pool = Pool::builder(Vec::<u8>::new)
        .thread_cache(2)
        .max_idle(3)
        .build();
    let held: Vec<_> = (0..20).map(|_| pool.get()).collect();
    drop(held);
    let s = pool.stats();
    assert_eq!(s.idle, 5, "2 in the thread cache + 3 shared");
    assert_eq!(s.discards, 15);

    // Another thread sees only the shared tier.
    thread::scope(|s| {
        s.spawn(|| {
            let held: Vec<_> = (0..5).map(|_| pool.get()).collect();
            assert_eq!(pool.stats().hits, 3);
            drop(held);
        });
    });
    let s = pool.stats();
    assert!(
        s.idle <= 2 + 2 + 3,
        "bounded by thread_cache x threads + max_idle: {s:?}"
    );
}

#[test]
fn zero_sized_tiers() {
    // No thread cache: everything goes through the shared tier.
    let pool = Pool::builder(Vec::<u8>::new)
        .thread_cache(0)
        .max_idle(2)
        .build();
    drop((pool.get(), pool.get(), pool.get()));
    assert_eq!(pool.stats().idle, 2);
    // No tier at all: a pool that never keeps anything still works.
    let pool = Pool::builder(Vec::<u8>::new)
        .thread_cache(0)
        .max_idle(0)
        .build();
    drop(pool.get());
    let s = pool.stats();
    assert_eq!((s.misses, s.discards, s.idle), (1, 1, 0));
}

#[test]
fn max_capacity_discards_grown_buffers() {
    let pool = Pool::builder(|| Vec::<u8>::with_capacity(16))
        .max_capacity(1024)
        .build();
    let mut big = pool.get();
    big.resize(4096, 7);
    drop(big);
    let mut small = pool.get();
    small.resize(1024, 7);
    drop(small);
    let s = pool.stats();
    assert_eq!((s.discards, s.idle), (1, 1));
    assert!(pool.get().capacity() <= 1024);
}

#[test]
fn trim_frees_idle_objects_after_two_trims() {
    let log = Arc::new(Log::default());
    let pool = log.pool().thread_cache(4).max_idle(4).build();
    drop((0..8).map(|_| pool.get()).collect::<Vec<_>>());
    assert_eq!(pool.stats().idle, 8);
    pool.trim();
    assert_eq!(pool.stats().idle, 8, "one trim keeps everything");
    assert_eq!(log.dropped.load(SeqCst), 0);
    pool.trim();
    assert_eq!(pool.stats().idle, 0);
    assert_eq!(log.dropped.load(SeqCst), 8);
    assert_eq!(pool.stats().trimmed, 8);
}

#[test]
fn trim_keeps_objects_in_use_and_recently_used() {
    let pool = Pool::builder(Vec::<u8>::new).thread_cache(4).build();
    let mut held = pool.get();
    held.push(1);
    pool.trim();
    drop(pool.get()); // used between the trims: young again
    pool.trim();
    assert_eq!(held.as_slice(), &[1], "a held object is never trimmed");
    assert_eq!(pool.stats().idle, 1);
    pool.trim();
    pool.trim();
    assert_eq!(pool.stats().idle, 0);
    drop(held);
    assert_eq!(pool.stats().idle, 1);
}

#[test]
fn trim_frees_idle_objects_cached_by_other_threads() {
    let log = Arc::new(Log::default());
    let pool = Arc::new(log.pool().thread_cache(4).max_idle(0).build());
    let (to_worker, worker_rx) = mpsc::channel::<()>();
    let (to_main, main_rx) = mpsc::channel::<()>();
    let worker = {
        let pool = Arc::clone(&pool);
        thread::spawn(move || {
            // Fill this thread's cache, then wait while the main thread trims.
            drop((0..4).map(|_| pool.get()).collect::<Vec<_>>());
            to_main.send(()).unwrap();
            worker_rx.recv().unwrap();
            // Next access: this thread notices the trims and frees its stale objects.
            let fresh = pool.get();
            assert_eq!(fresh.id, 4, "the stale objects were freed, not reused");
            drop(fresh);
            to_main.send(()).unwrap();
            worker_rx.recv().unwrap();
        })
    };
    main_rx.recv().unwrap();
    assert_eq!(pool.stats().idle, 4);
    pool.trim();
    pool.trim(); // never blocks on the worker
    to_worker.send(()).unwrap();
    main_rx.recv().unwrap();
    assert_eq!(
        log.dropped.load(SeqCst),
        4,
        "freed while the worker is still alive"
    );
    let s = pool.stats();
    assert_eq!((s.trimmed, s.idle), (4, 1));
    to_worker.send(()).unwrap();
    worker.join().unwrap();
}

#[test]
fn detach_takes_the_object_out_for_good() {
    let log = Arc::new(Log::default());
    let pool = log.pool().build();
    let obj = pool.get().detach();
    assert_eq!(
        log.recycled.load(SeqCst),
        0,
        "no hook for a detached object"
    );
    assert_eq!(pool.stats().idle, 0);
    drop(obj);
    assert_eq!(log.dropped.load(SeqCst), 1);
    let s = pool.stats();
    assert_eq!((s.detached, s.returns, s.in_use()), (1, 0, 0));
}

#[test]
fn hook_and_create_may_use_the_same_pool() {
    // The hook takes a scratch object from the pool it is returning to, and the
    // create function looks at the pool's stats: neither may deadlock or alias.
    let pool: Arc<Pool<Vec<u32>>> = Arc::new_cyclic(|weak: &std::sync::Weak<Pool<Vec<u32>>>| {
        let (for_create, for_hook) = (weak.clone(), weak.clone());
        Pool::builder_with(
            move || {
                if let Some(pool) = for_create.upgrade() {
                    let _ = pool.stats();
                }
                Vec::new()
            },
            move |v: &mut Vec<u32>| {
                if let Some(pool) = for_hook.upgrade() {
                    if v.len() > 1 {
                        let mut scratch = pool.get(); // reentrant get, and its return
                        scratch.push(v.iter().sum());
                    }
                }
                v.clear();
                Reuse::Keep
            },
        )
        .build()
    });
    let mut a = pool.get();
    a.extend([1, 2, 3]);
    drop(a);
    let s = pool.stats();
    assert_eq!((s.misses, s.returns), (2, 2));
    assert!(pool.get().is_empty());
}

/// What a [`Reentrant`] object does to its own pool when dropped.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum OnDrop {
    Nothing,
    /// Puts a new object (that does nothing on drop) into the pool.
    Put,
    /// Trims the pool, then puts a new object into it.
    TrimAndPut,
    /// On another thread, which then exits: trims the pool, then puts a new object
    /// (into that thread's cache, which the thread leaves behind).
    TrimAndPutElsewhere,
}

/// An object whose drop uses the very pool it belongs to.
struct Reentrant {
    pool: Weak<Pool<Reentrant>>,
    on_drop: OnDrop,
    /// What the hook says when it is returned.
    reuse: Reuse,
}

impl Reentrant {
    fn new(pool: &Arc<Pool<Reentrant>>, on_drop: OnDrop, reuse: Reuse) -> Self {
        Reentrant {
            pool: Arc::downgrade(pool),
            on_drop,
            reuse,
        }
    }
}

impl Drop for Reentrant {
    fn drop(&mut self) {
        // Gone while the pool itself is dropped: nothing to do then.
        let Some(pool) = self.pool.upgrade() else {
            return;
        };
        if self.on_drop == OnDrop::TrimAndPutElsewhere {
            // `join` returns after the thread's thread-local destructors ran.
            thread::spawn(move || {
                pool.trim();
                pool.put(Reentrant::new(&pool, OnDrop::Nothing, Reuse::Keep));
            })
            .join()
            .unwrap();
            return;
        }
        if self.on_drop == OnDrop::TrimAndPut {
            pool.trim();
        }
        if self.on_drop != OnDrop::Nothing {
            pool.put(Reentrant::new(&pool, OnDrop::Nothing, Reuse::Keep));
        }
    }
}

fn reentrant_pool(thread_cache: usize, max_idle: usize) -> Arc<Pool<Reentrant>> {
    Arc::new_cyclic(|pool: &Weak<Pool<Reentrant>>| {
        let pool = pool.clone();
        Pool::builder_with(
            move || Reentrant {
                pool: pool.clone(),
                on_drop: OnDrop::Nothing,
                reuse: Reuse::Keep,
            },
            |obj: &mut Reentrant| obj.reuse,
        )
        .thread_cache(thread_cache)
        .max_idle(max_idle)
        .build()
    })
}

#[test]
fn object_drop_may_use_the_same_pool() {
    // T::drop runs when the pool discards, evicts or trims an object, in the middle of
    // a return or a trim of that same pool; it may use the pool (here: put an object
    // back into it, and that put sweeps the same stack). No borrow may be held then.
    let pool = reentrant_pool(2, 1);
    // Refused by the hook: dropped in the return path; the put in its drop is kept.
    pool.put(Reentrant::new(&pool, OnDrop::Put, Reuse::Discard));
    let s = pool.stats();
    assert_eq!(
        (s.puts, s.returns, s.discards, s.idle),
        (2, 2, 1, 1),
        "{s:?}"
    );
    // Both tiers full (2 here, 1 shared): a return that fits nowhere is dropped, and
    // the put in its drop finds no room either.
    for _ in 0..2 {
        pool.put(Reentrant::new(&pool, OnDrop::Nothing, Reuse::Keep));
    }
    pool.put(Reentrant::new(&pool, OnDrop::Put, Reuse::Keep));
    let s = pool.stats();
    assert_eq!((s.puts, s.discards, s.idle), (6, 3, 3), "{s:?}");
    assert_identities(&s, 0);

    // Trimmed from this thread's cache and from the shared tier: every drop puts a
    // young object back, into the stack being swept or the queue being walked, and
    // the trim keeps those.
    let pool = reentrant_pool(2, 2);
    for _ in 0..3 {
        pool.put(Reentrant::new(&pool, OnDrop::Put, Reuse::Keep)); // 2 here, 1 shared
    }
    pool.trim();
    pool.trim();
    let s = pool.stats();
    assert_eq!((s.puts, s.trimmed, s.idle), (6, 3, 3), "{s:?}");
    assert_identities(&s, 0);
}

#[test]
fn a_trim_inside_a_trim_never_frees_a_young_object() {
    // A `T::drop` run by a trim's sweep trims again (a newer epoch) and returns a new
    // object: that object was idle through no trim, so the outer sweep, still at the
    // older epoch, must keep it. In the shared tier and in this thread's cache.
    for (thread_cache, max_idle) in [(0, 4), (4, 0)] {
        let pool = reentrant_pool(thread_cache, max_idle);
        pool.put(Reentrant::new(&pool, OnDrop::TrimAndPut, Reuse::Keep));
        pool.put(Reentrant::new(&pool, OnDrop::Nothing, Reuse::Keep));
        pool.trim();
        assert_eq!(pool.stats().idle, 2, "one trim keeps both");
        pool.trim(); // frees both old ones; the first one's drop trims and puts
        let s = pool.stats();
        assert_eq!(
            (s.trimmed, s.idle),
            (2, 1),
            "thread_cache {thread_cache}: the young object is kept: {s:?}"
        );
        assert_identities(&s, 0);
        // And it ages like any other: freed after two more trims.
        pool.trim();
        pool.trim();
        assert_eq!((pool.stats().trimmed, pool.stats().idle), (3, 0));
    }
}

#[test]
fn overlapping_trims_never_free_a_young_object_in_a_left_cache() {
    // Two trims overlap: while the first sweeps this thread's cache (it is in a
    // `T::drop` there), another thread trims, returns an object to its own cache and
    // exits. The first trim then sweeps the cache that thread left behind, at its
    // older epoch, and meets an object tagged with a newer one: idle through no trim
    // that began before it was returned, so kept.
    let pool = reentrant_pool(4, 0);
    pool.put(Reentrant::new(
        &pool,
        OnDrop::TrimAndPutElsewhere,
        Reuse::Keep,
    ));
    pool.trim();
    pool.trim();
    let s = pool.stats();
    assert_eq!((s.trimmed, s.idle), (1, 1), "{s:?}");
    assert_identities(&s, 0);
}

#[test]
fn a_return_after_two_trims_frees_the_stale_objects_below_it() {
    // Two trims on another thread (so this thread's cache is not swept at once), then
    // one return to a cache with room: the return notices the trims, frees the stale
    // object and keeps the young one.
    let pool = Pool::builder(|| Vec::<u8>::with_capacity(1))
        .thread_cache(4)
        .max_idle(0)
        .build();
    drop(pool.get()); // idle from here on: stale after two trims
    thread::scope(|s| {
        s.spawn(|| {
            pool.trim();
            pool.trim();
        });
    });
    pool.put(Vec::with_capacity(100));
    let s = pool.stats();
    assert_eq!(
        (s.idle, s.trimmed),
        (1, 1),
        "the return swept the stale object: {s:?}"
    );
    let young = pool.get();
    assert!(young.capacity() >= 100, "the young object was kept");
}

#[test]
fn a_thread_that_only_returns_frees_its_stale_objects() {
    // A consumer thread fills its cache once, then only drops guards that another
    // thread took (objects handed over a channel) and never gets. After two trims its
    // first return frees the stale objects: a live thread that keeps returning does
    // not hold them through any number of trims.
    const IDLE: usize = if cfg!(miri) { 20 } else { 1000 };
    let pool = Pool::builder(|| Vec::<u8>::with_capacity(64))
        .thread_cache(IDLE + 8)
        .max_idle(0)
        .build();
    let (to_consumer, from_producer) = mpsc::channel::<recycle_pool::Pooled<'_, Vec<u8>>>();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let s = thread::scope(|s| {
        let pool = &pool;
        s.spawn(move || {
            drop((0..IDLE).map(|_| pool.get()).collect::<Vec<_>>());
            done_tx.send(()).unwrap();
            for guard in from_producer.iter() {
                drop(guard);
                done_tx.send(()).unwrap();
            }
            go_rx.recv().unwrap(); // stay alive while the main thread checks
        });
        done_rx.recv().unwrap();
        let filled = pool.stats().idle;
        pool.trim();
        pool.trim(); // the consumer's objects are stale now
        to_consumer.send(pool.get()).unwrap(); // made fresh: the main cache is empty
        done_rx.recv().unwrap();
        let s = pool.stats();
        drop(to_consumer);
        go_tx.send(()).unwrap();
        assert_eq!(filled, IDLE);
        s
    });
    assert_eq!(
        (s.idle, s.trimmed),
        (1, IDLE as u64),
        "one return after two trims freed the stale objects: {s:?}"
    );
}

#[test]
fn hits_never_go_backwards_as_seen_from_another_thread() {
    // `Stats` promises counters that only grow: a reader on another thread, polling
    // while the owner does get/return rounds holding 8, never sees `hits` (or
    // `returns`) lower than it saw before.
    const ROUNDS: usize = if cfg!(miri) { 50 } else { 300_000 };
    let pool = Pool::builder(|| Vec::<u8>::with_capacity(16))
        .thread_cache(8)
        .max_idle(0)
        .build();
    let stop = AtomicBool::new(false);
    let barrier = Barrier::new(2);
    let (reads, decreases, worst) = thread::scope(|s| {
        s.spawn(|| {
            barrier.wait();
            let mut held = Vec::with_capacity(8);
            for _ in 0..ROUNDS {
                held.extend((0..8).map(|_| pool.get()));
                held.clear();
            }
            stop.store(true, SeqCst);
        });
        barrier.wait();
        let (mut last, mut reads, mut decreases, mut worst) = ((0, 0), 0u64, 0u64, 0u64);
        while !stop.load(SeqCst) {
            let s = pool.stats();
            let now = (s.hits, s.returns);
            if now.0 < last.0 || now.1 < last.1 {
                decreases += 1;
                worst = worst.max(last.0.saturating_sub(now.0));
            }
            last = (last.0.max(now.0), last.1.max(now.1));
            reads += 1;
        }
        (reads, decreases, worst)
    });
    assert!(reads > 0);
    assert_eq!(
        decreases, 0,
        "hits went backwards {decreases} times in {reads} reads, by up to {worst}"
    );
    let s = pool.stats();
    assert_eq!(s.hits + s.misses, 8 * ROUNDS as u64, "{s:?}");
}

#[test]
fn a_return_is_counted_when_a_stale_objects_drop_panics() {
    // The return path sweeps this thread's cache first (two trims happened), and the
    // stale object's drop panics: the object being returned is dropped by the
    // unwinding, and counted as returned and discarded. Through a guard and a put.
    for put in [false, true] {
        let log = Arc::new(Log::default());
        let pool = Arc::new(log.pool().thread_cache(2).max_idle(0).build());
        let mut stale = pool.get();
        let returning = pool.get();
        stale.explode = true;
        drop(stale); // into this thread's cache
        {
            let pool = Arc::clone(&pool);
            // Trims on another thread: this thread sweeps its cache on its next access.
            thread::spawn(move || {
                pool.trim();
                pool.trim();
            })
            .join()
            .unwrap();
        }
        let result = catch_unwind(AssertUnwindSafe(|| {
            if put {
                pool.put(returning.detach());
            } else {
                drop(returning);
            }
        }));
        assert!(result.is_err(), "the stale object's drop panicked");
        assert_eq!(log.dropped.load(SeqCst), 2, "both objects were dropped");
        let s = pool.stats();
        assert_eq!(
            (s.returns, s.discards, s.trimmed, s.idle),
            (2, 1, 1, 0),
            "put: {put}: {s:?}"
        );
        assert_eq!((s.no_room, s.refused), (1, 0), "counted as no room: {s:?}");
        assert_identities(&s, 0);
        // The pool goes on working on this thread.
        drop(pool.get());
        assert_identities(&pool.stats(), 0);
    }
}

#[test]
fn a_panicking_drop_during_the_pools_drop_does_not_leak_the_rest() {
    // Idle objects in an exited thread's cache (3), this thread's cache (4) and the
    // shared tier (2); one of them panics when dropped. The pool's drop goes on with
    // the others, as std's collections do, then lets the panic through.
    for explode in ["exited thread", "this thread", "shared tier"] {
        let log = Arc::new(Log::default());
        let pool = Arc::new(log.pool().thread_cache(4).max_idle(2).build());
        // This thread's cache first, so that it does not adopt the exited thread's.
        let mut held: Vec<_> = (0..6).map(|_| pool.get()).collect();
        {
            let pool = Arc::clone(&pool);
            thread::spawn(move || {
                let mut held: Vec<_> = (0..3).map(|_| pool.get()).collect();
                held[1].explode = explode == "exited thread";
            })
            .join()
            .unwrap();
        }
        held[1].explode = explode == "this thread";
        held[4].explode = explode == "shared tier"; // the first of the queue
        drop(held); // the first 4 into this thread's cache, the last 2 shared
        assert_eq!(pool.stats().idle, 9);
        let pool = Arc::into_inner(pool).unwrap();
        assert!(catch_unwind(AssertUnwindSafe(|| drop(pool))).is_err());
        assert_eq!(
            log.dropped.load(SeqCst),
            log.created.load(SeqCst),
            "{explode}: objects leaked"
        );
    }
}

#[test]
fn thread_cache_over_the_maximum_is_refused_at_build() {
    use recycle_pool::pool::MAX_THREAD_CACHE;
    for n in [MAX_THREAD_CACHE + 1, usize::MAX] {
        let err = catch_unwind(|| Pool::builder(Vec::<u8>::new).thread_cache(n).build())
            .expect_err("build panics");
        let msg = err.downcast_ref::<String>().unwrap();
        assert_eq!(
            msg,
            &format!("thread_cache {n} is over MAX_THREAD_CACHE (65536)")
        );
    }
}

#[test]
fn a_large_thread_cache_grows_as_it_fills() {
    // thread_cache(MAX_THREAD_CACHE): a thread's cache takes room for what it holds,
    // not for 65,536 objects up front.
    let pool = Pool::builder(Vec::<u8>::new)
        .thread_cache(recycle_pool::pool::MAX_THREAD_CACHE)
        .max_idle(1)
        .build();
    let pool = Arc::new(pool);
    {
        let pool = Arc::clone(&pool);
        // Not a scoped thread: `join` returns after its thread-local destructors ran.
        thread::spawn(move || {
            let before = heap::allocated();
            pool.put(Vec::new()); // the thread's first use: makes its cache
            let bytes = heap::allocated() - before;
            assert!(bytes < 4096, "the first put allocated {bytes} bytes");
            // 100 objects held at once all come back to this thread's cache.
            let held: Vec<_> = (0..100).map(|_| pool.get()).collect();
            drop(held);
            let s = pool.stats();
            assert_eq!(
                (s.idle, s.discards, s.hits, s.misses),
                (100, 0, 1, 99),
                "{s:?}"
            );
            let held: Vec<_> = (0..100).map(|_| pool.get()).collect();
            assert_eq!(pool.stats().hits, 101, "all from the thread's cache");
            drop(held);
        })
        .join()
        .unwrap();
    }
    pool.trim();
    pool.trim(); // the exited thread's cache
    assert_eq!((pool.stats().trimmed, pool.stats().idle), (100, 0));
}

#[test]
fn owned_guard_outlives_its_scope() {
    struct Conn {
        buf: recycle_pool::OwnedPooled<Vec<u8>>,
    }
    let pool = Arc::new(Pool::new(Vec::<u8>::new));
    let conn = {
        let mut buf = pool.get_owned();
        buf.extend_from_slice(b"kept");
        Conn { buf }
    };
    let conn = thread::spawn(move || conn).join().unwrap();
    assert_eq!(conn.buf.as_slice(), b"kept");
    assert!(Arc::ptr_eq(conn.buf.pool(), &pool));
    drop(conn);
    assert_eq!(pool.stats().returns, 1);
}

#[test]
fn pool_dropped_while_owned_guards_are_alive() {
    let log = Arc::new(Log::default());
    let pool = Arc::new(log.pool().build());
    let guards: Vec<_> = (0..3).map(|_| pool.get_owned()).collect();
    let weak = Arc::downgrade(&pool);
    drop(pool);
    assert!(weak.upgrade().is_some(), "the guards keep the pool alive");
    let handles: Vec<_> = guards
        .into_iter()
        .map(|g| thread::spawn(move || drop(g)))
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert!(weak.upgrade().is_none(), "the last guard freed the pool");
    assert_eq!(log.recycled.load(SeqCst), 3);
    assert_eq!(log.dropped.load(SeqCst), 3, "and every object with it");
}

#[test]
fn debug_impls() {
    let pool = Pool::builder(Vec::<u8>::new)
        .thread_cache(3)
        .max_idle(5)
        .build();
    assert_eq!(
        format!("{pool:?}"),
        "Pool { thread_cache: 3, max_idle: 5, .. }"
    );
    let mut g = pool.get();
    g.push(1);
    assert_eq!(format!("{g:?}"), "[1]");
}

/// The identities documented on `Stats`, for a pool no other thread is using, with
/// `live` guards still held.
#[track_caller]
fn assert_identities(stats: &recycle_pool::Stats, live: u64) {
    assert_eq!(
        stats.idle as u64,
        stats.prefilled + stats.returns - stats.discards - stats.hits - stats.trimmed,
        "idle identity: {stats:?}"
    );
    assert_eq!(stats.in_use(), live, "in_use: {stats:?}");
    assert_eq!(
        stats.hits + stats.misses,
        (stats.returns - stats.puts) + stats.detached + live,
        "handout identity: {stats:?}"
    );
}

#[test]
fn guard_dropped_on_another_thread_feeds_that_threads_cache() {
    // No shared tier: an object can only move between threads inside a guard.
    let log = Arc::new(Log::default());
    let pool = Arc::new(log.pool().thread_cache(4).max_idle(0).build());
    let guard = pool.get_owned();
    let id = guard.id;
    let other = {
        let pool = Arc::clone(&pool);
        thread::spawn(move || {
            drop(guard); // returned on this thread: into this thread's cache
            let again = pool.get();
            assert_eq!(again.id, id, "the dropping thread's cache has it");
            again.id
        })
    };
    assert_eq!(other.join().unwrap(), id);
    // The thread that took it never got it back.
    assert_ne!(pool.get().id, id);
    assert_eq!(log.created.load(SeqCst), 2);

    // The same with a borrowed guard and a scoped thread.
    let pool = log.pool().thread_cache(4).max_idle(0).build();
    let guard = pool.get();
    let id = guard.id;
    thread::scope(|s| {
        s.spawn(|| {
            drop(guard);
            assert_eq!(pool.get().id, id);
        });
    });
    assert_ne!(pool.get().id, id);
}

#[test]
fn an_exited_threads_cache_is_trimmed_and_adopted() {
    let log = Arc::new(Log::default());
    let pool = Arc::new(log.pool().thread_cache(4).max_idle(0).build());
    let fill = |pool: &Arc<Pool<Tracked>>, n: usize| {
        let pool = Arc::clone(pool);
        // `join` returns after the thread's thread-local destructors ran.
        thread::spawn(move || drop((0..n).map(|_| pool.get()).collect::<Vec<_>>()))
            .join()
            .unwrap();
    };
    fill(&pool, 3);
    assert_eq!(
        pool.stats().idle,
        3,
        "the exited thread's objects stay idle"
    );
    // A new thread adopts the cache, objects and all: no new object is made.
    fill(&pool, 2);
    assert_eq!(log.created.load(SeqCst), 3);
    assert_eq!(pool.stats().hits, 2);
    // Nobody uses the pool any more: trim frees the left-behind cache's objects
    // without waiting for the pool's drop.
    pool.trim();
    assert_eq!(log.dropped.load(SeqCst), 0, "one trim keeps them");
    pool.trim();
    assert_eq!(log.dropped.load(SeqCst), 3);
    let stats = pool.stats();
    assert_eq!((stats.trimmed, stats.idle), (3, 0));
    assert_identities(&stats, 0);
}

#[test]
fn many_pools_on_one_thread() {
    // More pools than ways in the per-thread direct-mapped cache, used in turn: each
    // gets its own objects back.
    let pools: Vec<Pool<Vec<u8>>> = (0..9)
        .map(|_| Pool::builder(Vec::new).max_idle(0).build())
        .collect();
    let bufs: Vec<_> = pools.iter().map(|p| p.get().detach()).collect();
    let ptrs: Vec<_> = bufs.iter().map(|b| b.as_ptr()).collect();
    for (pool, mut buf) in pools.iter().zip(bufs) {
        buf.reserve(64 + ptrs.len()); // a distinct allocation per pool
        pool.put(buf);
    }
    for _ in 0..3 {
        for pool in pools.iter().chain(pools.iter().rev()) {
            let buf = pool.get();
            assert!(buf.capacity() >= 64, "a pool got another pool's object");
            drop(buf);
        }
    }
    for pool in &pools {
        let s = pool.stats();
        assert_eq!((s.misses, s.hits, s.idle), (1, 6, 1), "{s:?}");
    }
    // Short-lived pools: the thread's registry drops the entries of pools that are gone
    // (and frees their caches), so the thread's memory does not grow with every pool
    // it ever used. On a thread of its own, whose allocations are counted.
    thread::spawn(|| {
        let short_lived = || {
            let pool = Pool::new(Vec::<u8>::new);
            drop(pool.get());
            assert_eq!(pool.stats().idle, 1);
        };
        (0..10).for_each(|_| short_lived());
        let before = heap::live();
        let pools = if cfg!(miri) { 100 } else { 1000 };
        (0..pools).for_each(|_| short_lived());
        let grown = heap::live() - before;
        assert!(grown < 8192, "{grown} bytes more after {pools} pools");
    })
    .join()
    .unwrap();
}

#[test]
fn stats_identities_hold_through_every_path() {
    let log = Arc::new(Log::default());
    let pool = log.pool().thread_cache(2).max_idle(2).build();
    let mut held: Vec<_> = (0..6).map(|_| pool.get()).collect(); // misses
    assert_identities(&pool.stats(), 6);
    held.truncate(2); // 4 returns: 2 kept here, 2 shared
    assert_identities(&pool.stats(), 2);
    let detached = held.pop().unwrap().detach();
    assert_identities(&pool.stats(), 1);
    pool.put(detached); // a detached object put back: cancels out
    pool.put(log.pool().build().get().detach()); // a foreign object: no room, discarded
    assert_identities(&pool.stats(), 1);
    let mut poisoned = held.pop().unwrap();
    poisoned.poison = true;
    drop(poisoned); // refused by the hook
    assert_identities(&pool.stats(), 0);
    let again: Vec<_> = (0..5).map(|_| pool.get()).collect(); // hits and a miss
    assert_identities(&pool.stats(), 5);
    drop(again);
    pool.trim();
    pool.trim();
    let stats = pool.stats();
    assert!(
        stats.trimmed > 0 && stats.discards > 0 && stats.puts == 2,
        "{stats:?}"
    );
    assert_identities(&stats, 0);
}

#[test]
fn stats_identities_hold_when_the_hook_panics() {
    let drops = Arc::new(AtomicUsize::new(0));
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, SeqCst);
        }
    }
    let pool = {
        let drops = Arc::clone(&drops);
        Pool::builder_with(
            move || Counted(Arc::clone(&drops)),
            |_| panic!("hook fails"),
        )
        .build()
    };
    let guard = pool.get();
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(guard)));
    assert!(err.is_err());
    assert_eq!(
        drops.load(SeqCst),
        1,
        "the object was dropped by the unwinding"
    );
    let stats = pool.stats();
    assert_eq!((stats.returns, stats.discards, stats.idle), (1, 1, 0));
    assert_identities(&stats, 0);

    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        pool.put(Counted(Arc::clone(&drops)))
    }));
    assert!(err.is_err());
    let stats = pool.stats();
    assert_eq!((stats.returns, stats.discards, stats.puts), (2, 2, 1));
    assert_identities(&stats, 0);
}

#[test]
fn stats_identities_hold_when_capacity_panics() {
    struct Odd;
    impl Recycle for Odd {
        fn recycle(&mut self) -> Reuse {
            Reuse::Keep
        }
        fn capacity(&self) -> usize {
            panic!("capacity fails")
        }
    }
    let pool = Pool::builder(|| Odd).max_capacity(1).build();
    let guard = pool.get();
    assert!(std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(guard))).is_err());
    let stats = pool.stats();
    assert_eq!((stats.returns, stats.discards), (1, 1));
    assert_identities(&stats, 0);
}

#[test]
fn stats_identities_hold_when_create_panics() {
    let calls = AtomicUsize::new(0);
    let calls = Arc::new(calls);
    let pool = {
        let calls = Arc::clone(&calls);
        Pool::builder(move || {
            if calls.fetch_add(1, SeqCst) == 1 {
                panic!("create fails");
            }
            Vec::<u8>::new()
        })
        .build()
    };
    let first = pool.get();
    assert!(std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(pool.get()))).is_err());
    let stats = pool.stats();
    assert_eq!(stats.misses, 1, "only the object that exists: {stats:?}");
    assert_identities(&stats, 1);
    drop(first);
    let third = pool.get(); // a hit: the create function is not called
    assert_identities(&pool.stats(), 1);
    drop(third);
    assert_eq!(calls.load(SeqCst), 2);
}

#[test]
fn stats_identities_hold_for_a_buffer_pool() {
    use recycle_pool::io::BufferPool;
    let pool = Pool::new(|| Vec::<u8>::with_capacity(64));
    let buffers: &dyn BufferPool = &pool;
    // A lent buffer is detached until it is put back.
    let buf = buffers.get();
    assert_identities(&pool.stats(), 0);
    assert_eq!(pool.stats().detached, 1);
    buffers.put(buf);
    let stats = pool.stats();
    assert_eq!((stats.returns, stats.puts, stats.idle), (1, 1, 1));
    assert_identities(&stats, 0);
    let (a, b) = (buffers.get(), buffers.get());
    assert_identities(&pool.stats(), 0);
    buffers.put(a);
    buffers.put(b);
    assert_identities(&pool.stats(), 0);
}

#[test]
fn recycle_with_and_max_capacity_combine_in_either_order() {
    let hook = |v: &mut Vec<u8>| {
        v.clear();
        Reuse::Keep
    };
    let bound_first = Pool::builder(Vec::<u8>::new)
        .max_capacity(16)
        .recycle_with(hook)
        .build();
    let hook_first = Pool::builder(Vec::<u8>::new)
        .recycle_with(hook)
        .max_capacity(16)
        .build();
    for pool in [bound_first, hook_first] {
        pool.get().extend_from_slice(&[1; 64]); // grew past the bound: discarded
        pool.get().push(1); // within it: kept, and cleared by the custom hook
        let s = pool.stats();
        assert_eq!((s.returns, s.discards, s.idle), (2, 1, 1), "{s:?}");
        assert!(pool.get().is_empty());
    }
}

/// An object returned to this thread's cache comes back bit for bit, whatever its
/// layout: the cache reads small word-multiple types one word at a time (to avoid a
/// store-forwarding stall) and everything else with an ordinary copy, so this covers
/// both paths, padding, fat pointers, 16-byte alignment, the 64-byte limit and beyond.
#[test]
fn objects_of_every_layout_come_back_intact() {
    use std::fmt::Debug;

    /// Gets two objects, gives them values, returns them, gets them back (LIFO) and
    /// checks they are the same objects with the same values, over many rounds.
    fn round_trip<T: Clone + PartialEq + Debug + Send + 'static>(
        fresh: impl Fn() -> T + Send + Sync + 'static,
        value: impl Fn(u64) -> T,
    ) {
        let pool = Pool::builder_with(fresh, |_: &mut T| Reuse::Keep)
            .max_idle(4)
            .build();
        for round in 0..100 {
            let (mut a, mut b) = (pool.get(), pool.get());
            *a = value(2 * round);
            *b = value(2 * round + 1);
            drop(b);
            drop(a);
            let a = pool.get(); // the last returned comes out first
            let b = pool.get();
            assert_eq!(*a, value(2 * round), "round {round}");
            assert_eq!(*b, value(2 * round + 1), "round {round}");
        }
        let s = pool.stats();
        assert_eq!(
            s.misses, 2,
            "every get after the first two was served from the cache"
        );
    }

    #[derive(Clone, PartialEq, Debug)]
    struct Padded(u8, u64, u16); // 24 bytes with 13 of padding
    #[derive(Clone, PartialEq, Debug)]
    #[repr(align(16))]
    struct Aligned(u64, u32);

    round_trip(|| 0u64, |i| i);
    round_trip(
        || Padded(0, 0, 0),
        |i| Padded(i as u8, !i, i as u16 ^ 0x5a5a),
    );
    round_trip(|| Aligned(0, 0), |i| Aligned(i.rotate_left(7), i as u32));
    round_trip(String::new, |i| format!("object {i}"));
    round_trip(Vec::<u32>::new, |i| vec![i as u32; (i % 5) as usize]);
    round_trip(|| Box::<str>::from(""), |i| i.to_string().into_boxed_str()); // fat pointer
    round_trip(|| [0u64; 8], |i| [i; 8]); // 64 bytes: the largest read by words
    round_trip(|| [0u64; 9], |i| [i; 9]); // 72 bytes: an ordinary copy
    round_trip(|| [0u8; 3], |i| [i as u8; 3]); // not whole words
    round_trip(|| 0u32, |i| i as u32); // less than a word
    round_trip(|| (), |_| ()); // zero-sized
}

#[test]
fn prefill_fills_the_shared_tier_and_never_more_than_max_idle() {
    let made = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&made);
    let pool = Pool::builder(move || {
        counter.fetch_add(1, SeqCst);
        Vec::<u8>::with_capacity(128)
    })
    .thread_cache(0)
    .max_idle(3)
    .prefill(10)
    .build();
    assert_eq!(made.load(SeqCst), 3, "only max_idle objects are made");
    let s = pool.stats();
    assert_eq!((s.prefilled, s.idle, s.misses), (3, 3, 0));
    assert_identities(&s, 0);
    // Another thread finds them: they sit in the shared tier, not in a thread cache.
    std::thread::scope(|sc| {
        sc.spawn(|| {
            let held: Vec<_> = (0..3).map(|_| pool.get()).collect();
            assert!(held.iter().all(|b| b.capacity() >= 128));
        });
    });
    assert_eq!(made.load(SeqCst), 3, "the three gets were hits");
    let s = pool.stats();
    assert_eq!((s.hits, s.misses), (3, 0));
    assert_identities(&s, 0);
    // Trim ages prefilled objects like any idle object.
    pool.trim();
    pool.trim();
    assert_eq!(pool.stats().idle, 0);
    assert_identities(&pool.stats(), 0);
}

#[test]
fn prefill_without_a_shared_tier_makes_nothing() {
    let pool = Pool::builder(Vec::<u8>::new).max_idle(0).prefill(5).build();
    assert_eq!((pool.stats().prefilled, pool.stats().idle), (0, 0));
}

#[test]
fn try_get_never_creates_and_counts_empty_tries() {
    let made = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&made);
    let pool = Arc::new(Pool::new(move || {
        counter.fetch_add(1, SeqCst);
        String::new()
    }));
    assert!(pool.try_get().is_none());
    assert!(pool.try_get_owned().is_none());
    assert_eq!(made.load(SeqCst), 0);
    let mut s = pool.get();
    s.push_str("dirty");
    drop(s);
    let again = pool.try_get().expect("the returned one is idle");
    assert!(again.is_empty(), "it went through the hook");
    assert!(pool.try_get().is_none(), "only one exists");
    drop(again);
    let stats = pool.stats();
    assert_eq!((stats.misses, stats.hits, stats.empty_tries), (1, 1, 3));
    assert_identities(&stats, 0);
    assert_eq!(made.load(SeqCst), 1);
}

#[test]
fn try_get_from_two_threads_hands_each_object_out_once() {
    let pool = Pool::builder(|| Vec::<u8>::with_capacity(8))
        .thread_cache(0)
        .max_idle(4)
        .prefill(4)
        .build();
    let barrier = std::sync::Barrier::new(2);
    let got: Vec<usize> = std::thread::scope(|sc| {
        let handles: Vec<_> = (0..2)
            .map(|_| {
                sc.spawn(|| {
                    barrier.wait();
                    let mut mine = Vec::new();
                    while let Some(b) = pool.try_get() {
                        mine.push(b.detach());
                    }
                    mine.iter().map(|v| v.as_ptr() as usize).collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let mut unique = got.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(
        (got.len(), unique.len()),
        (4, 4),
        "each prefilled buffer once"
    );
    let s = pool.stats();
    assert_eq!((s.hits, s.misses, s.detached), (4, 0, 4));
    assert!(s.empty_tries >= 2);
}

/// `Pool<Vec<u8>>` is also a `BufferPool`, whose `get`/`put` share names with the
/// inherent ones: every mix of the two interfaces keeps the identities exact, with
/// `in_use` counting live guards.
#[test]
fn stats_stay_exact_for_every_mix_of_buffer_pool_and_guards() {
    use recycle_pool::io::BufferPool;

    #[derive(Clone, Copy, Debug)]
    enum Take {
        Guard,
        Owned,
        Lend,
    }
    #[derive(Clone, Copy, Debug)]
    enum Give {
        /// Drop the guard (a lent buffer: `BufferPool::put`).
        Drop,
        /// `Pool::put` (a guard is detached first).
        Put,
        /// `BufferPool::put` (a guard is detached first).
        BufferPut,
        /// Detach a guard / keep a lent buffer for good.
        Keep,
    }
    for take in [Take::Guard, Take::Owned, Take::Lend] {
        for give in [Give::Drop, Give::Put, Give::BufferPut, Give::Keep] {
            let pool = Arc::new(Pool::new(|| Vec::<u8>::with_capacity(64)));
            let held = pool.get(); // one live guard throughout
            let mut kept = Vec::new();
            for round in 0..3 {
                let (buf, guard) = match take {
                    Take::Guard => (None, Some(Err(pool.get()))),
                    Take::Owned => (None, Some(Ok(pool.get_owned()))),
                    Take::Lend => (Some(BufferPool::get(&*pool)), None),
                };
                let live = 1 + u64::from(guard.is_some());
                assert_identities(&pool.stats(), live);
                let detach = |g: Result<_, _>| match g {
                    Ok(owned) => recycle_pool::OwnedPooled::detach(owned),
                    Err(borrowed) => recycle_pool::Pooled::detach(borrowed),
                };
                match (give, buf, guard) {
                    (Give::Drop, Some(buf), None) => BufferPool::put(&*pool, buf),
                    (Give::Drop, None, Some(g)) => drop(g),
                    (Give::Put, Some(buf), None) => pool.put(buf),
                    (Give::Put, None, Some(g)) => pool.put(detach(g)),
                    (Give::BufferPut, Some(buf), None) => BufferPool::put(&*pool, buf),
                    (Give::BufferPut, None, Some(g)) => BufferPool::put(&*pool, detach(g)),
                    (Give::Keep, Some(buf), None) => kept.push(buf),
                    (Give::Keep, None, Some(g)) => kept.push(detach(g)),
                    _ => unreachable!(),
                }
                let stats = pool.stats();
                assert_identities(&stats, 1);
                assert_eq!(
                    stats.in_use(),
                    1,
                    "{take:?} {give:?} round {round}: {stats:?}"
                );
            }
            // And the other way round: a guard's object through `BufferPool::put`,
            // a lent buffer through `Pool::put`.
            BufferPool::put(&*pool, pool.get().detach());
            pool.put(BufferPool::get(&*pool));
            assert_identities(&pool.stats(), 1);
            drop(held);
            assert_identities(&pool.stats(), 0);
        }
    }
}

/// Each discard is counted under its cause, and the causes add up to `discards`.
#[test]
fn discards_are_counted_by_cause() {
    let log = Arc::new(Log::default());
    let pool = log
        .pool()
        .thread_cache(1)
        .max_idle(1)
        .max_capacity(0)
        .build();
    // Refused by the hook, twice.
    for _ in 0..2 {
        let mut poisoned = pool.get();
        poisoned.poison = true;
    }
    // No room: three returns for two places (one per tier).
    drop((pool.get(), pool.get(), pool.get()));
    let s = pool.stats();
    assert_eq!(
        (s.refused, s.over_capacity, s.no_room, s.evicted),
        (2, 0, 1, 0),
        "{s:?}"
    );
    assert_eq!(s.discards, 3);
    assert_identities(&s, 0);

    // Over capacity, in a pool of a type measured by a function of the user's.
    let bounded = Pool::builder_with(Vec::<u8>::new, |v| {
        v.clear();
        Reuse::Keep
    })
    .max_capacity_with(16, Vec::capacity)
    .build();
    bounded.get().reserve(100);
    bounded.get().reserve(100);
    bounded.get().push(1);
    let s = bounded.stats();
    assert_eq!(
        (s.refused, s.over_capacity, s.no_room, s.discards),
        (0, 2, 0, 2),
        "{s:?}"
    );
    assert_identities(&s, 0);
}

/// A panicking hook counts as refused, a panicking `T::drop` during a return's sweep
/// as no room: the causes still add up.
#[test]
fn discards_by_cause_add_up_when_user_code_panics() {
    let pool = Pool::builder_with(Vec::<u8>::new, |v| {
        if v.len() == 7 {
            panic!("hook fails on 7 bytes");
        }
        Reuse::Keep
    })
    .build();
    let mut guard = pool.get();
    guard.extend_from_slice(&[0; 7]);
    assert!(catch_unwind(AssertUnwindSafe(|| drop(guard))).is_err());
    let s = pool.stats();
    assert_eq!((s.returns, s.refused, s.discards), (1, 1, 1), "{s:?}");
    assert_eq!(
        s.discards,
        s.refused + s.over_capacity + s.no_room + s.evicted
    );
    assert_identities(&s, 0);
}

/// With the `serde` feature, `Stats` goes to JSON and back, fields by name.
#[cfg(feature = "serde")]
#[test]
fn stats_round_trip_through_serde() {
    let pool = Pool::builder(Vec::<u8>::new).max_capacity(0).build();
    pool.get().reserve(8); // over capacity
    drop(pool.get());
    let stats = pool.stats();
    let json = serde_json::to_value(stats).unwrap();
    assert_eq!(json["misses"], 2);
    assert_eq!(json["over_capacity"], 1);
    assert_eq!(json["discards"], 1);
    let back: recycle_pool::Stats = serde_json::from_value(json).unwrap();
    assert_eq!(back, stats);
}

/// A large `max_idle` is a ceiling, not a reservation: a pool that was never used
/// costs a few bytes, and the shared tier's memory follows the objects it holds.
#[test]
fn memory_follows_what_is_held_not_the_bounds() {
    let before = heap::live();
    let pool = Pool::builder(Vec::<u8>::new)
        .max_idle(1 << 22)
        .thread_cache(MAX_THREAD_CACHE)
        .build();
    let unused = heap::live() - before;
    assert!(unused <= 4096, "an unused pool holds {unused} bytes");
    drop(pool);

    // 1,000 idle (empty, so unallocated) vecs in the shared tier: room for them, and
    // not for the four million the bound allows.
    let pool = Pool::builder(Vec::<u8>::new)
        .max_idle(1 << 22)
        .thread_cache(0)
        .build();
    let before = heap::live();
    for _ in 0..1000 {
        pool.put(Vec::new());
    }
    let held = heap::live() - before;
    let per_object = held / 1000;
    println!("unused pool: {unused} B; 1,000 idle objects: {held} B ({per_object} B each)");
    assert!(
        (24..=64).contains(&per_object),
        "{held} bytes for 1,000 idle objects"
    );
    assert_eq!(pool.stats().idle, 1000);
    // Taken out again: the room goes with them.
    let taken: Vec<_> = (0..1000).map(|_| pool.get().detach()).collect();
    drop(taken);
    // What stays: the queue's current block (31 slots) and this thread's entry in
    // the pool's registry.
    let left = heap::live() - before;
    assert!(left <= 4096, "{left} bytes held by an empty shared tier");
    drop(pool);
}

/// A small shared tier of a large inline `T` holds what its bound needs, not a whole
/// `SegQueue` block of 31 slots: `max_idle(1)` of a 4 KiB object costs one slot.
#[test]
fn a_small_shared_tier_of_large_objects_holds_one_slot_each() {
    struct Big(#[allow(dead_code)] [u8; 4096]);
    let slot = std::mem::size_of::<Big>();
    for max_idle in [1, 8, 31] {
        let before = heap::live();
        let pool = Pool::builder_with(|| Big([0; 4096]), |_| Reuse::Keep)
            .thread_cache(0)
            .max_idle(max_idle)
            .build();
        pool.put(Big([1; 4096]));
        let _ = pool.get().detach();
        pool.trim();
        pool.trim();
        let held = heap::live() - before;
        // Its `max_idle` slots (a `T` and a word or two each), this thread's registry
        // entry, and nothing for the other 31 - max_idle places of a block.
        let bound = i64::try_from(max_idle * (slot + 32) + 1024).unwrap();
        assert!(
            held <= bound,
            "max_idle({max_idle}) of {slot}-byte objects holds {held} bytes"
        );
        drop(pool);
    }
}

/// `max_capacity_with` on a `Recycle` type measures with the given function, and a
/// later `max_capacity` goes back to `Recycle::capacity` (and the other way round).
#[test]
fn max_capacity_with_measures_a_recycle_type_too() {
    // Measured by length: a hook that keeps the bytes, and a vec that holds 5.
    let by_len = Pool::builder(Vec::<u8>::new)
        .recycle_with(|_| Reuse::Keep)
        .max_capacity_with(4, Vec::len)
        .build();
    by_len.get().extend_from_slice(&[1; 5]);
    assert_eq!(by_len.stats().over_capacity, 1);

    let measured = Pool::builder(Vec::<u8>::new)
        .max_capacity_with(0, |_| 1) // everything is over
        .build();
    drop(measured.get());
    assert_eq!(measured.stats().over_capacity, 1);

    let back_to_capacity = Pool::builder(Vec::<u8>::new)
        .max_capacity_with(0, |_| 1)
        .max_capacity(16) // `Vec::capacity` again: an empty vec is kept
        .build();
    drop(back_to_capacity.get());
    let mut big = back_to_capacity.get();
    big.reserve(100);
    drop(big);
    let s = back_to_capacity.stats();
    assert_eq!((s.over_capacity, s.idle), (1, 0), "{s:?}");
    drop(back_to_capacity.get());
    assert_eq!(back_to_capacity.stats().idle, 1);
}

/// Every object comes back whole, whatever its size and alignment, from each tier:
/// `get` reads an object out of the thread's stack, or out of the place the slow path
/// (shared tier, create) put it, 8 bytes at a time when it is a few whole words and
/// as a plain copy otherwise. Objects are told apart by the number they were made
/// with; the hook keeps them as they are.
#[test]
fn objects_come_back_whole_from_every_tier_whatever_their_size() {
    fn check<T: Send + 'static>(make: fn(u64) -> T, id: fn(&T) -> u64) {
        let next = Arc::new(AtomicUsize::new(1));
        let build = |thread_cache: usize, max_idle: usize| {
            let next = Arc::clone(&next);
            Pool::builder_with(
                move || make(next.fetch_add(1, SeqCst) as u64),
                |_: &mut T| Reuse::Keep,
            )
            .thread_cache(thread_cache)
            .max_idle(max_idle)
            .build()
        };
        let name = std::any::type_name::<T>();
        // The thread's stack: last in, first out.
        let pool = build(8, 0);
        let (a, b) = (pool.get(), pool.get());
        let (ia, ib) = (id(&a), id(&b));
        drop((a, b));
        assert_eq!(
            (id(&pool.get()), id(&pool.get())),
            (ib, ia),
            "{name}, stack"
        );
        // The shared tier alone (no thread cache): first in, first out.
        let pool = build(0, 8);
        let (a, b) = (pool.get(), pool.get());
        let (ia, ib) = (id(&a), id(&b));
        drop(a);
        drop(b);
        let (c, d) = (pool.get(), pool.get());
        assert_eq!((id(&c), id(&d)), (ia, ib), "{name}, shared tier");
        // Nowhere to keep it: each get makes a new one, read whole.
        let pool = build(0, 0);
        let first = id(&pool.get());
        assert_eq!(id(&pool.get()), first + 1, "{name}, created");
    }
    // Three words (the word-by-word read), with and without heap data.
    check(|n| n.to_string(), |s| s.parse().unwrap());
    check(
        |n| [n, !n, n ^ 0x5555],
        |a| {
            assert_eq!((a[1], a[2]), (!a[0], a[0] ^ 0x5555), "torn: {a:?}");
            a[0]
        },
    );
    // Not a whole number of words, or less aligned: a plain copy.
    check(
        |n| (n as u8, (n >> 8) as u8, 7u8),
        |t| {
            assert_eq!(t.2, 7);
            u64::from(t.0) | u64::from(t.1) << 8
        },
    );
    check(
        |n| (n, n as u32),
        |t| {
            assert_eq!(t.1, t.0 as u32);
            t.0
        },
    );
    // More than eight words: a plain copy.
    check(
        |n| [n; 9],
        |a| {
            assert!(a.iter().all(|&x| x == a[0]), "torn: {a:?}");
            a[0]
        },
    );
}

/// The per-thread stack stays last in, first out whatever mix of single objects and
/// batches a thread takes and returns (one object of the stack may sit in the node's
/// front place, which moves as objects come and go), and a trim frees the objects in
/// it too.
#[test]
fn objects_come_back_last_in_first_out_across_batches_and_single_rounds() {
    let made = std::sync::atomic::AtomicUsize::new(0);
    let made = std::sync::Arc::new(made);
    let counter = made.clone();
    // Each object is told apart by its capacity: 10, 20, 30, ...
    let pool = Pool::new(move || {
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        Vec::<u8>::with_capacity(10 * n)
    });
    let id = |v: &Vec<u8>| v.capacity() / 10;
    let (a, b, c) = (pool.get(), pool.get(), pool.get());
    assert_eq!((id(&a), id(&b), id(&c)), (1, 2, 3));
    // Returned in order: the stack is [1, 2, 3], 1 in the front place.
    drop(a);
    drop(b);
    drop(c);
    assert_eq!(pool.stats().idle, 3);
    let mut order = Vec::new();
    // One at a time: the top each time.
    for _ in 0..3 {
        let top = pool.get();
        order.push(id(&top));
    }
    // Then a batch: the rest, top first.
    let rest = [pool.get(), pool.get(), pool.get()];
    order.extend(rest.iter().map(|v| id(v)));
    assert_eq!(order, [3, 3, 3, 3, 2, 1]);
    // Returned in the order 2, 1, 3: the next gets see 3, 1, 2.
    let [third, second, first] = rest;
    drop(second);
    drop(first);
    drop(third);
    let again = [pool.get(), pool.get(), pool.get()];
    assert_eq!(again.iter().map(|v| id(v)).collect::<Vec<_>>(), [3, 1, 2]);
    assert_eq!(made.load(std::sync::atomic::Ordering::Relaxed), 3);
    drop(again);
    // Every idle object, the front place's included, ages out through two trims.
    assert_eq!(pool.stats().idle, 3);
    pool.trim();
    pool.trim();
    let s = pool.stats();
    assert_eq!((s.idle, s.trimmed), (0, 3));
}
