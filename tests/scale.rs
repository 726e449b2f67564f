//! Issue 19: the per-thread tier with many pools per thread, big caches and drops that
//! use the pool. Costs are measured in `bench/pool` (`512pools`, `sweep`); these tests
//! check what a user would notice: the right objects, the right counts, no crash.

use std::sync::{Arc, Weak};
use std::thread;

use recycle_pool::pool::MAX_THREAD_CACHE;
use recycle_pool::{Pool, Reuse};

/// A pool whose objects say which pool made them.
fn tagged(tag: usize) -> Pool<Vec<usize>> {
    Pool::builder(move || vec![tag])
        .recycle_with(|_| Reuse::Keep) // keep the tag
        .max_idle(0)
        .build()
}

#[test]
#[cfg_attr(
    miri,
    ignore = "too slow under Miri; the smaller tests cover the same code"
)]
fn a_thousand_pools_round_robin_each_keep_their_own_objects() {
    let pools: Vec<_> = (0..1000).map(tagged).collect();
    for _ in 0..3 {
        for (tag, pool) in pools.iter().enumerate() {
            assert_eq!(*pool.get(), [tag]);
        }
    }
    for pool in &pools {
        let stats = pool.stats();
        // One object made, then served from this thread's cache every time after.
        assert_eq!(
            (stats.misses, stats.hits, stats.idle),
            (1, 2, 1),
            "{stats:?}"
        );
    }
}

#[test]
#[cfg_attr(
    miri,
    ignore = "too slow under Miri; the smaller tests cover the same code"
)]
fn a_new_pool_never_sees_a_dropped_pools_objects() {
    // Pools come and go while others stay: a new pool may take a dropped pool's place
    // in every registry, and must start empty on every thread that used the old one.
    let keep: Vec<_> = (0..8).map(|tag| tagged(1000 + tag)).collect();
    let mut tag = 0;
    for _round in 0..50 {
        let short: Vec<_> = (0..16)
            .map(|_| {
                tag += 1;
                tagged(tag)
            })
            .collect();
        thread::scope(|s| {
            s.spawn(|| {
                for pool in short.iter().chain(&keep) {
                    drop(pool.get());
                }
            });
        });
        for pool in short.iter().chain(&keep) {
            let first = pool.get()[0];
            assert_eq!(first, pool.get()[0]);
        }
        for (i, pool) in short.iter().enumerate() {
            let made = pool.get()[0];
            assert_eq!(made, tag - 15 + i, "an object of another pool");
        }
        drop(short);
    }
    for (i, pool) in keep.iter().enumerate() {
        assert_eq!(pool.get()[0], 1000 + i);
    }
}

#[test]
fn guards_of_many_pools_cross_threads() {
    let pools: Arc<Vec<_>> = Arc::new((0..64).map(|tag| Arc::new(tagged(tag))).collect());
    let guards: Vec<_> = pools.iter().map(|p| p.get_owned()).collect();
    // `join`, not a scope: it waits for the thread-local destructors too, so the
    // thread's registry has handed its caches back when it returns.
    thread::spawn(move || {
        for guard in guards {
            let pool = Arc::clone(guard.pool());
            // Dropped here: into this thread's cache for that pool.
            drop(guard);
            assert_eq!(pool.stats().idle, 1);
        }
    })
    .join()
    .unwrap();
    // Each object is in the exited thread's cache for its pool; a new thread adopts
    // those caches, objects and all.
    let pools2 = Arc::clone(&pools);
    thread::spawn(move || {
        for (tag, pool) in pools2.iter().enumerate() {
            assert_eq!(*pool.get(), [tag]);
            let stats = pool.stats();
            assert_eq!((stats.misses, stats.hits), (1, 1), "{stats:?}");
        }
    })
    .join()
    .unwrap();
}

/// An object whose drop puts a fresh object back into its pool (a pooled object that
/// owns a pooled child, reduced to its essence).
struct Parent {
    pool: Weak<Pool<Parent>>,
}

impl Drop for Parent {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.upgrade() {
            pool.put(Parent { pool: Weak::new() });
        }
    }
}

#[test]
#[cfg_attr(
    miri,
    ignore = "too slow under Miri; the smaller tests cover the same code"
)]
fn a_drop_that_returns_to_the_pool_during_a_sweep_does_not_recurse() {
    // The whole thing on a 256 KiB stack: a sweep that recursed once per stale object
    // would overflow it after a few thousand (and abort the test binary).
    thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(|| {
            let pool = Arc::new_cyclic(|weak: &Weak<Pool<Parent>>| {
                let weak = weak.clone();
                Pool::builder_with(move || Parent { pool: weak.clone() }, |_| Reuse::Keep)
                    .thread_cache(MAX_THREAD_CACHE)
                    .max_idle(0)
                    .build()
            });
            let held: Vec<_> = (0..MAX_THREAD_CACHE).map(|_| pool.get()).collect();
            drop(held);
            assert_eq!(pool.stats().idle, MAX_THREAD_CACHE);
            pool.trim();
            pool.trim();
            // This get sweeps the stale objects; each one's drop puts a child back.
            let got = pool.get();
            let stats = pool.stats();
            assert_eq!(stats.trimmed, MAX_THREAD_CACHE as u64, "{stats:?}");
            assert_eq!(stats.puts, MAX_THREAD_CACHE as u64, "{stats:?}");
            // The children were kept (the sweep had reconciled the stack first), and
            // the get took one of them.
            assert_eq!(stats.idle, MAX_THREAD_CACHE - 1, "{stats:?}");
            assert!(got.pool.upgrade().is_none(), "the get took a child");
        })
        .unwrap()
        .join()
        .expect("no stack overflow, no panic");
}

#[test]
fn a_sweep_frees_exactly_the_stale_objects_oldest_first() {
    let pool = Pool::builder(Vec::<u8>::new)
        .thread_cache(1024)
        .max_idle(0)
        .build();
    let held: Vec<_> = (0..1000).map(|_| pool.get()).collect();
    drop(held); // 1000 idle, tagged epoch 0
    pool.trim(); // epoch 1: nothing is stale yet
    let young: Vec<_> = (0..10).map(|_| pool.get()).collect();
    drop(young); // 10 re-tagged with epoch 1 (on top)
    pool.trim(); // epoch 2: the 990 below are stale; `trim` sweeps its own thread
    let stats = pool.stats();
    assert_eq!((stats.idle, stats.trimmed), (10, 990), "{stats:?}");
    let again: Vec<_> = (0..10).map(|_| pool.get()).collect();
    assert_eq!(pool.stats().hits, 20);
    drop(again); // tagged epoch 2
    pool.trim();
    let stats = pool.stats();
    assert_eq!((stats.idle, stats.trimmed), (10, 990), "{stats:?}");
    pool.trim();
    let stats = pool.stats();
    assert_eq!((stats.idle, stats.trimmed), (0, 1000), "{stats:?}");
}

#[test]
fn a_guard_whose_thread_exited_returns_into_the_cache_of_the_thread_that_adopted_it() {
    let pool = Arc::new(tagged(7));
    let pool2 = Arc::clone(&pool);
    // Taken on a thread that then exits: its cache goes back to the pool.
    let guard = thread::spawn(move || pool2.get_owned()).join().unwrap();
    let pool3 = Arc::clone(&pool);
    thread::spawn(move || {
        // This thread adopts that cache (a get that finds it empty, so a miss) ...
        let other = pool3.get();
        assert_eq!(pool3.stats().misses, 2);
        // ... so the guard comes back to the cache it was taken from, now this
        // thread's: the next get here is a hit from it.
        drop(guard);
        assert_eq!(pool3.stats().idle, 1);
        drop(other);
        let (a, b) = (pool3.get(), pool3.get());
        let stats = pool3.stats();
        assert_eq!(
            (stats.hits, stats.misses, stats.idle),
            (2, 2, 0),
            "{stats:?}"
        );
        drop((a, b));
    })
    .join()
    .unwrap();
    assert_eq!(pool.stats().idle, 2);
}
