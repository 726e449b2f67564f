//! A pool used from thread-local destructors, at thread exit.
//!
//! In its own test binary because the bug it guards against aborted the process
//! ("fatal runtime error: thread local panicked on drop"). Nothing here panics inside
//! a destructor: what a destructor sees is recorded and asserted on the main thread.
//!
//! The order of thread-local destructors is last-registered, first-run on Linux (a
//! `thread_local!` with a destructor registers it on first access). The tests rely on
//! it to put the user's destructor before or after the pool's per-thread registry, and
//! check that they got the order they asked for.

use std::cell::RefCell;
use std::sync::{Arc, Mutex};
use std::thread;

use recycle_pool::{OwnedPooled, Pool, Stats};

type Buf = OwnedPooled<Vec<u8>>;

thread_local! {
    /// A per-thread scratch buffer, the ordinary way to keep a guard in a thread-local.
    static SCRATCH: RefCell<Option<Buf>> = const { RefCell::new(None) };
}

fn pool(max_idle: usize) -> Arc<Pool<Vec<u8>>> {
    Arc::new(
        Pool::builder(|| Vec::with_capacity(64))
            .thread_cache(4)
            .max_idle(max_idle)
            .build(),
    )
}

/// Runs a thread that keeps a guard in `SCRATCH` until it exits. With
/// `scratch_first`, `SCRATCH` is touched before the pool (so its destructor runs
/// after the registry's); otherwise after.
fn keep_guard_until_exit(pool: &Arc<Pool<Vec<u8>>>, scratch_first: bool) {
    let pool = Arc::clone(pool);
    thread::spawn(move || {
        if scratch_first {
            SCRATCH.with(|_| {});
        }
        let mut buf = pool.get_owned();
        buf.extend_from_slice(b"per-thread scratch");
        SCRATCH.with(|scratch| *scratch.borrow_mut() = Some(buf));
    })
    .join()
    .expect("the thread exits cleanly");
}

#[track_caller]
fn assert_identities(stats: &Stats) {
    assert_eq!(
        stats.idle as u64,
        stats.returns - stats.discards - stats.hits - stats.trimmed,
        "{stats:?}"
    );
    assert_eq!(
        stats.hits + stats.misses,
        (stats.returns - stats.puts) + stats.detached,
        "{stats:?}"
    );
}

#[test]
fn guard_dropped_after_the_registry_goes_to_the_shared_tier() {
    let pool = pool(4);
    // This thread's own cache first (an object made and detached), so that below it
    // cannot adopt the exited thread's cache: only the shared tier can serve it then.
    drop(pool.get().detach());
    keep_guard_until_exit(&pool, true);
    let stats = pool.stats();
    assert_eq!(
        (stats.returns, stats.discards, stats.idle),
        (1, 0, 1),
        "{stats:?}"
    );
    // It is in the shared tier, not in the cache the registry gave up (the registry
    // made the thread's fast path forget that cache before giving it up), so this
    // thread gets it, cleared by the hook.
    let buf = pool.get();
    assert!(buf.is_empty() && buf.capacity() >= 64);
    let stats = pool.stats();
    assert_eq!((stats.hits, stats.misses), (1, 2), "{stats:?}");
}

#[test]
fn guard_dropped_after_the_registry_is_discarded_without_a_shared_tier() {
    let pool = pool(0);
    keep_guard_until_exit(&pool, true);
    let stats = pool.stats();
    // No thread cache to go to any more and no shared tier: dropped, and counted.
    assert_eq!(
        (stats.returns, stats.discards, stats.idle),
        (1, 1, 0),
        "{stats:?}"
    );
    assert_identities(&stats);
}

#[test]
fn guard_dropped_before_the_registry_stays_in_the_threads_cache() {
    let pool = pool(0);
    keep_guard_until_exit(&pool, false);
    let stats = pool.stats();
    // Returned while the registry was alive: into the thread's cache, which the
    // registry then handed back to the pool with the object in it.
    assert_eq!(
        (stats.returns, stats.discards, stats.idle),
        (1, 0, 1),
        "{stats:?}"
    );
    assert_identities(&stats);
    // The next thread adopts that cache, object and all.
    let pool2 = Arc::clone(&pool);
    let reused = thread::spawn(move || pool2.get().capacity() >= 64)
        .join()
        .unwrap();
    assert!(reused);
    assert_eq!((pool.stats().hits, pool.stats().misses), (1, 1));
}

/// Uses every operation of the pool from a destructor that runs after the registry's.
struct UseAtExit {
    pool: Arc<Pool<Vec<u8>>>,
    seen: Arc<Mutex<Vec<Stats>>>,
}

impl Drop for UseAtExit {
    fn drop(&mut self) {
        let pool = &self.pool;
        let mut seen = self.seen.lock().unwrap();
        drop(pool.get()); // a get (a miss) and a return (to the shared tier)
        seen.push(pool.stats());
        let held = pool.get(); // a hit, from the shared tier
        let kept = pool.get().detach(); // a miss, detached
        pool.put(kept); // a put (to the shared tier)
        drop(held);
        pool.trim();
        pool.trim(); // both idle objects stayed idle through two trims
        seen.push(pool.stats());
    }
}

thread_local! {
    static AT_EXIT: RefCell<Option<UseAtExit>> = const { RefCell::new(None) };
}

#[test]
fn every_operation_works_in_a_destructor_after_the_registry() {
    let pool = pool(4);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (pool2, seen2) = (Arc::clone(&pool), Arc::clone(&seen));
    thread::spawn(move || {
        // Registered before the pool's registry, so destroyed after it.
        AT_EXIT.with(|slot| {
            *slot.borrow_mut() = Some(UseAtExit {
                pool: Arc::clone(&pool2),
                seen: seen2,
            })
        });
        drop(pool2.get()); // the thread uses the pool: its registry exists
    })
    .join()
    .expect("the thread exits cleanly");
    let seen = seen.lock().unwrap();
    let [first, last] = seen.as_slice() else {
        panic!("the destructor ran to completion: {seen:?}");
    };
    // The thread's own return (before exit) went to its cache; the destructor's
    // return found no cache and went to the shared tier.
    assert_eq!(
        (first.misses, first.returns, first.idle),
        (2, 2, 2),
        "{first:?}"
    );
    let stats = pool.stats();
    assert_eq!(*last, stats, "nothing changed after the destructor");
    assert_eq!(
        (
            stats.hits,
            stats.misses,
            stats.returns,
            stats.puts,
            stats.detached
        ),
        (1, 3, 4, 1, 1),
        "{stats:?}"
    );
    // The trims freed both objects of the shared tier and the exited thread's cache.
    assert_eq!(
        (stats.trimmed, stats.idle, stats.discards),
        (3, 0, 0),
        "{stats:?}"
    );
    assert_identities(&stats);
}
