//! loom models of every concurrent protocol in the crate.
//!
//! Run with `scripts/loom.sh`, i.e.
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 cargo test --release -p recycle-pool --test loom`.
//!
//! Under `cfg(loom)` the crate's facade (`src/sync.rs`) routes every atomic,
//! `UnsafeCell`, `Arc`, thread-local (the per-thread registry), the shared queue and the
//! RCU cell through loom, so these models exercise the real pool, status and date code.
//! Every per-thread cache carries a loom leak tracker: a cache that neither its thread
//! nor its pool frees fails the model.
//!
//! Pools shared between model threads live in `loom::sync::Arc` (the pool's drop
//! drops other threads' idle objects, and loom must see what orders their last use
//! before it); owned guards are taken with `Pool::get_owned(&pool)`.

// In a module rather than `#![cfg(loom)]`, to work around a rustc/cargo bug (as
// crossbeam-epoch's loom tests do).
#[cfg(loom)]
mod models {
    use std::sync::Arc;
    use std::sync::Mutex as StdMutex;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};

    use loom::sync::Arc as LoomArc;
    use loom::thread;
    use recycle_pool::status::{Clock, DateCache, StatusLines, Version};
    use recycle_pool::{Pool, Recycle, Reuse};

    /// Runs `f` under loom with a preemption bound (from LOOM_MAX_PREEMPTIONS, default 3).
    fn model(f: impl Fn() + Sync + Send + 'static) {
        let mut builder = loom::model::Builder::new();
        if builder.preemption_bound.is_none() {
            builder.preemption_bound = Some(3);
        }
        builder.check(f);
    }

    /// Records what happens to every object (std atomics: bookkeeping, not protocol).
    #[derive(Default)]
    struct Log {
        created: AtomicUsize,
        dropped: StdMutex<Vec<usize>>,
    }

    struct Obj {
        id: usize,
        in_use: AtomicBool,
        discard: bool,
        log: Arc<Log>,
    }

    impl Obj {
        fn acquire(&self) {
            assert!(
                !self.in_use.swap(true, SeqCst),
                "object {} held twice",
                self.id
            );
        }
        fn release(&self) {
            self.in_use.store(false, SeqCst);
        }
    }

    impl Recycle for Obj {
        fn recycle(&mut self) -> Reuse {
            assert!(!self.in_use.load(SeqCst), "recycled while in use");
            if self.discard {
                Reuse::Discard
            } else {
                Reuse::Keep
            }
        }
    }

    impl Drop for Obj {
        fn drop(&mut self) {
            let mut dropped = self.log.dropped.lock().unwrap();
            assert!(
                !dropped.contains(&self.id),
                "object {} dropped twice",
                self.id
            );
            dropped.push(self.id);
        }
    }

    fn pool(log: &Arc<Log>, thread_cache: usize, max_idle: usize) -> LoomArc<Pool<Obj>> {
        let log = Arc::clone(log);
        LoomArc::new(
            Pool::builder(move || Obj {
                id: log.created.fetch_add(1, SeqCst),
                in_use: AtomicBool::new(false),
                discard: false,
                log: Arc::clone(&log),
            })
            .thread_cache(thread_cache)
            .max_idle(max_idle)
            .build(),
        )
    }

    /// After the pool is gone, every object ever created was dropped exactly once.
    fn assert_all_dropped_once(log: &Log) {
        let dropped = log.dropped.lock().unwrap();
        assert_eq!(
            dropped.len(),
            log.created.load(SeqCst),
            "leaked or double-dropped"
        );
    }

    /// Model 1: get/put from two threads, through both tiers.
    #[test]
    fn get_put_two_threads() {
        model(|| {
            let log = Arc::new(Log::default());
            let pool = pool(&log, 1, 1);
            let worker = {
                let pool = LoomArc::clone(&pool);
                thread::spawn(move || {
                    for _ in 0..2 {
                        let obj = pool.get();
                        obj.acquire();
                        obj.release();
                    }
                })
            };
            let a = pool.get();
            a.acquire();
            a.release();
            pool.put(a.detach());
            worker.join().unwrap();
            let stats = pool.stats();
            assert_eq!(stats.hits + stats.misses, 3);
            assert_eq!(stats.returns, 3);
            assert_eq!(stats.detached, 1);
            assert_eq!(stats.in_use(), 0);
            drop(pool);
            assert_all_dropped_once(&log);
        });
    }

    /// Model 2: an owned guard taken on one thread, dropped on another.
    #[test]
    fn owned_guard_dropped_on_another_thread() {
        model(|| {
            let log = Arc::new(Log::default());
            let pool = pool(&log, 2, 1);
            let guard = Pool::get_owned(&pool);
            guard.acquire();
            let worker = thread::spawn(move || {
                guard.release();
                drop(guard); // lands in the worker's cache
            });
            let mine = pool.get(); // races with the return
            mine.acquire();
            mine.release();
            drop(mine);
            worker.join().unwrap();
            let stats = pool.stats();
            assert_eq!((stats.returns, stats.in_use()), (2, 0));
            drop(pool);
            assert_all_dropped_once(&log);
        });
    }

    /// Model 3: trim racing with get/put on another thread.
    #[test]
    fn trim_races_get_put() {
        model(|| {
            let log = Arc::new(Log::default());
            let pool = pool(&log, 1, 1);
            drop((pool.get(), pool.get())); // one in this thread's cache, one shared
            let worker = {
                let pool = LoomArc::clone(&pool);
                thread::spawn(move || {
                    let obj = pool.get();
                    obj.acquire();
                    obj.release();
                })
            };
            pool.trim();
            pool.trim();
            worker.join().unwrap();
            // This thread's cached object (id 0) was idle through both trims, whatever
            // the worker did: the second trim freed it.
            let freed = log.dropped.lock().unwrap().contains(&0);
            assert!(freed, "{:?}", pool.stats());
            let stats = pool.stats();
            assert_eq!(stats.in_use(), 0);
            // Only the worker's cache can hold one: it returns at most one object.
            assert!(stats.idle <= 1, "{stats:?}");
            let dropped = log.dropped.lock().unwrap().len();
            assert_eq!(dropped, (stats.trimmed + stats.discards) as usize);
            assert_eq!(
                stats.idle as u64,
                stats.returns - stats.discards - stats.hits - stats.trimmed,
                "{stats:?}"
            );
            drop(pool);
            assert_all_dropped_once(&log);
        });
    }

    /// Model 3b: idle objects are freed after two trims, in every tier.
    #[test]
    fn idle_objects_freed_after_two_trims() {
        model(|| {
            let log = Arc::new(Log::default());
            let pool = pool(&log, 1, 1);
            let worker = {
                let pool = LoomArc::clone(&pool);
                thread::spawn(move || drop((pool.get(), pool.get())))
            };
            worker.join().unwrap();
            pool.trim();
            pool.trim();
            // The shared tier is swept by trim itself. The worker's cache is swept too
            // once its thread-local destructor handed it back, which loom (unlike std's
            // `join`) lets happen after `join` returns: both outcomes are explored.
            let dropped = log.dropped.lock().unwrap().len();
            assert!(dropped == 1 || dropped == 2, "{dropped}");
            let stats = pool.stats();
            assert_eq!(stats.trimmed as usize, dropped);
            assert_eq!(stats.idle, 2 - dropped);
            drop(pool);
            assert_all_dropped_once(&log);
        });
    }

    /// Model 4: both tiers full; what overflows is dropped, never lost.
    #[test]
    fn full_tiers_drop_overflow() {
        model(|| {
            let log = Arc::new(Log::default());
            let pool = pool(&log, 1, 1);
            let worker = {
                let pool = LoomArc::clone(&pool);
                thread::spawn(move || drop((pool.get(), pool.get())))
            };
            drop((pool.get(), pool.get()));
            worker.join().unwrap();
            let stats = pool.stats();
            assert_eq!(stats.returns, 4);
            assert!(stats.idle <= 3, "1 per thread cache + 1 shared: {stats:?}");
            assert_eq!(log.dropped.lock().unwrap().len() as u64, stats.discards);
            drop(pool);
            assert_all_dropped_once(&log);
        });
    }

    /// Model 5: the pool's last handle dropped while an owned guard lives elsewhere.
    #[test]
    fn pool_dropped_while_owned_guard_lives() {
        model(|| {
            let log = Arc::new(Log::default());
            let pool = pool(&log, 1, 1);
            let guard = Pool::get_owned(&pool);
            let worker = thread::spawn(move || drop(guard));
            drop(pool);
            worker.join().unwrap();
            assert_all_dropped_once(&log);
        });
    }

    /// A hook that discards, racing a get: the discarded object never comes back.
    #[test]
    fn discarded_object_never_returns() {
        model(|| {
            let log = Arc::new(Log::default());
            let pool = pool(&log, 1, 1);
            let mut poisoned = Pool::get_owned(&pool);
            poisoned.discard = true;
            let id = poisoned.id;
            let worker = thread::spawn(move || drop(poisoned));
            let other = pool.get();
            assert_ne!(other.id, id);
            drop(other);
            worker.join().unwrap();
            assert!(log.dropped.lock().unwrap().contains(&id));
            assert_ne!(pool.get().id, id);
        });
    }

    /// A thread exits while another starts using the pool: the second may adopt the
    /// first one's cache (objects and all) as soon as the first thread's registry
    /// hands it back. Exclusive access to the cache (loom tracks its `UnsafeCell`), no
    /// object held twice, every cache freed (leak tracker) and every object dropped once.
    #[test]
    fn exited_threads_cache_is_adopted() {
        model(|| {
            let log = Arc::new(Log::default());
            let pool = pool(&log, 1, 0);
            let first = {
                let pool = LoomArc::clone(&pool);
                thread::spawn(move || {
                    let obj = pool.get();
                    obj.acquire();
                    obj.release();
                })
            };
            let second = {
                let pool = LoomArc::clone(&pool);
                thread::spawn(move || {
                    let obj = pool.get();
                    obj.acquire();
                    obj.release();
                    drop(obj);
                    pool.stats().idle
                })
            };
            first.join().unwrap();
            let idle = second.join().unwrap();
            assert!((1..=2).contains(&idle), "{idle}");
            let stats = pool.stats();
            assert_eq!((stats.hits + stats.misses, stats.returns), (2, 2));
            assert_eq!(stats.misses as usize, log.created.load(SeqCst));
            drop(pool);
            assert_all_dropped_once(&log);
        });
    }

    /// The pool's last handle dropped while a thread that used it exits: whichever
    /// of the pool's drop and the thread's registry comes second frees the cache,
    /// exactly once, and the pool's drop drops the idle objects itself.
    #[test]
    fn pool_drop_races_thread_exit() {
        model(|| {
            let log = Arc::new(Log::default());
            let pool = pool(&log, 2, 0);
            let worker = {
                let pool = LoomArc::clone(&pool);
                thread::spawn(move || drop(pool.get()))
            };
            drop(pool.get());
            drop(pool);
            worker.join().unwrap();
            assert_all_dropped_once(&log);
        });
    }

    /// `trim` sweeps the cache an exited thread left behind while a new thread may
    /// adopt it: the cache is claimed by one of them at a time.
    #[test]
    fn trim_sweeps_left_cache_while_a_thread_adopts_it() {
        model(|| {
            let log = Arc::new(Log::default());
            let pool = pool(&log, 1, 0);
            let first = {
                let pool = LoomArc::clone(&pool);
                thread::spawn(move || drop(pool.get()))
            };
            first.join().unwrap();
            let second = {
                let pool = LoomArc::clone(&pool);
                thread::spawn(move || {
                    let obj = pool.get();
                    obj.acquire();
                    obj.release();
                })
            };
            pool.trim();
            pool.trim();
            second.join().unwrap();
            let stats = pool.stats();
            let dropped = log.dropped.lock().unwrap().len();
            assert_eq!(stats.trimmed as usize, dropped);
            assert_eq!(stats.idle + dropped, log.created.load(SeqCst));
            drop(pool);
            assert_all_dropped_once(&log);
        });
    }

    /// `trim` sweeps the shared tier while a return refills it. The
    /// young object the sweep took out may find no room to go back: it is dropped and
    /// counted as a discard, never as trimmed (nothing was idle through two trims).
    #[test]
    fn trim_never_counts_a_young_object_as_trimmed() {
        // Whether some interleaving took the eviction path (checked after the model).
        static EVICTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        model(|| {
            let log = Arc::new(Log::default());
            let pool = pool(&log, 0, 1);
            let (a, b) = (pool.get(), pool.get());
            drop(a); // idle in the shared tier, young
            let b = b.detach();
            let worker = {
                let pool = LoomArc::clone(&pool);
                thread::spawn(move || pool.put(b))
            };
            pool.trim();
            worker.join().unwrap();
            let stats = pool.stats();
            assert_eq!(stats.trimmed, 0, "{stats:?}");
            let dropped = log.dropped.lock().unwrap().len() as u64;
            assert_eq!(stats.discards, dropped, "{stats:?}");
            assert_eq!(stats.idle as u64 + dropped, 2, "{stats:?}");
            assert_eq!(
                stats.idle as u64,
                stats.returns - stats.discards - stats.hits - stats.trimmed
            );
            // The one drop is the put finding no room, or the sweep's young object
            // finding none (evicted): never both, never another cause.
            assert_eq!(stats.discards, stats.no_room + stats.evicted, "{stats:?}");
            assert_eq!((stats.refused, stats.over_capacity), (0, 0), "{stats:?}");
            if stats.evicted == 1 {
                EVICTED.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            drop(pool);
            assert_all_dropped_once(&log);
        });
        assert!(
            EVICTED.load(std::sync::atomic::Ordering::Relaxed),
            "no interleaving evicted a young object"
        );
    }

    /// Two trims overlap and one thread returns an object after its trim: the sweep of
    /// the other trim, at an older epoch, meets an object tagged with a newer one. It
    /// was idle through no trim that began before it was returned, so no sweep frees
    /// it. Shared tier (swept by `trim` itself).
    #[test]
    fn racing_trims_never_free_a_fresh_return() {
        model(|| {
            let log = Arc::new(Log::default());
            let pool = pool(&log, 0, 2);
            let fresh = pool.get().detach();
            let fresh_id = fresh.id;
            let other = {
                let pool = LoomArc::clone(&pool);
                thread::spawn(move || {
                    pool.trim();
                    pool.put(fresh);
                })
            };
            pool.trim();
            other.join().unwrap();
            let dropped = log.dropped.lock().unwrap().clone();
            assert!(
                !dropped.contains(&fresh_id),
                "a fresh return was trimmed: {:?}",
                pool.stats()
            );
            assert_eq!(pool.stats().idle, 1);
        });
    }

    /// A new pool takes a dropped pool's place (its dense index) in the table of a
    /// thread that used the dropped one, maybe while that pool is being dropped on
    /// another thread. Taking the place frees the dropped pool's header if its state
    /// is DEAD by then (the pool's drop freed the rest of the node); otherwise (the
    /// index was not free yet, so the new pool has another) the thread's exit does:
    /// exactly once (leak tracker, no double free), and the pool's drop frees the node
    /// only after the thread's last use of its stack (loom orders the free, which
    /// writes the stack, against it).
    #[test]
    fn a_new_pool_takes_a_dropped_pools_place() {
        model(|| {
            let log = Arc::new(Log::default());
            let first = pool(&log, 1, 0);
            let worker = {
                let first = LoomArc::clone(&first);
                let log = Arc::clone(&log);
                thread::spawn(move || {
                    drop(first.get()); // this thread's table holds `first`'s node
                    drop(first); // maybe the last handle: `first` is dropped here
                    // Maybe at `first`'s index, if its drop is over by now.
                    let second = pool(&log, 1, 0);
                    drop(second.get());
                })
            };
            drop(first); // or here, racing the worker
            worker.join().unwrap();
            assert_all_dropped_once(&log);
        });
    }

    /// A guard dropped on another thread than the one that took it, while that thread
    /// goes on using its own cache: the guard's node is not the dropping thread's (its
    /// owner says so), so the object goes to the dropping thread's cache. A return
    /// that trusted the guard's node would write the first thread's stack from the
    /// second thread, which loom reports.
    #[test]
    fn guard_dropped_on_another_thread_leaves_the_takers_cache_alone() {
        model(|| {
            let log = Arc::new(Log::default());
            let pool = pool(&log, 2, 0);
            drop(pool.get()); // this thread's cache exists: the guard remembers it
            let guard = Pool::get_owned(&pool);
            let worker = thread::spawn(move || drop(guard));
            drop(pool.get()); // this thread's own cache, at the same time
            worker.join().unwrap();
            let stats = pool.stats();
            assert_eq!((stats.returns, stats.idle), (3, 2), "{stats:?}");
            drop(pool);
            assert_all_dropped_once(&log);
        });
    }

    /// A guard outlives the thread that took it; another thread adopts that thread's
    /// cache and drops the guard there (its node is now that thread's: the owner
    /// matches and the return skips the lookup), while `trim` may claim the left cache
    /// first (then the adopting thread makes a cache of its own, and the guard's node,
    /// whose owner is the exited thread, is not used).
    #[test]
    fn guard_returns_to_its_node_after_another_thread_adopted_it() {
        model(|| {
            let log = Arc::new(Log::default());
            let pool = pool(&log, 1, 0);
            let guard = {
                let pool = LoomArc::clone(&pool);
                thread::spawn(move || Pool::get_owned(&pool))
            }
            .join()
            .unwrap();
            let adopter = {
                let pool = LoomArc::clone(&pool);
                thread::spawn(move || {
                    let other = pool.get();
                    other.acquire();
                    other.release();
                    drop(guard);
                    drop(other);
                })
            };
            pool.trim();
            adopter.join().unwrap();
            let stats = pool.stats();
            assert_eq!(stats.returns, 2, "{stats:?}");
            assert_eq!(stats.idle as u64 + stats.discards, 2, "{stats:?}");
            drop(pool);
            assert_all_dropped_once(&log);
        });
    }

    /// Model 6: a reader and an inserter racing on the status-line cache.
    #[test]
    fn status_lines_reader_and_inserter() {
        model(|| {
            let lines = Arc::new(StatusLines::new());
            let writer = {
                let lines = Arc::clone(&lines);
                thread::spawn(move || {
                    lines.register(599, "Network Connect Timeout").unwrap();
                    let mut out = Vec::new();
                    lines.write_line(404, Version::Http11, &mut out).unwrap();
                    assert_eq!(out, b"HTTP/1.1 404 Not Found\r\n");
                })
            };
            let mut reader = lines.reader();
            let mut out = Vec::new();
            reader.write_line(599, Version::Http11, &mut out).unwrap();
            let line = String::from_utf8(out).unwrap();
            assert!(
                line == "HTTP/1.1 599 Server Error\r\n"
                    || line == "HTTP/1.1 599 Network Connect Timeout\r\n",
                "{line:?}"
            );
            let mut out = Vec::new();
            lines.write_line(200, Version::Http11, &mut out).unwrap();
            assert_eq!(out, b"HTTP/1.1 200 OK\r\n");
            writer.join().unwrap();
            // No insert was lost: the custom reason and both cached lines survive.
            let mut out = Vec::new();
            reader.write_line(599, Version::Http11, &mut out).unwrap();
            assert_eq!(out, b"HTTP/1.1 599 Network Connect Timeout\r\n");
            assert_eq!(lines.cached(), 3, "404, 200 and 599");
        });
    }

    /// A clock whose second loom threads can move.
    struct TestClock(loom::sync::Arc<loom::sync::atomic::AtomicU64>);
    impl Clock for TestClock {
        fn now(&self) -> std::time::SystemTime {
            let secs = self.0.load(loom::sync::atomic::Ordering::Acquire);
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs)
        }
    }

    /// Model 7: DateCache refreshes racing with readers.
    #[test]
    fn date_cache_refresh_races_readers() {
        model(|| {
            let now = loom::sync::Arc::new(loom::sync::atomic::AtomicU64::new(784_111_777));
            let dates = Arc::new(DateCache::with_clock(TestClock(now.clone())));
            now.store(784_111_778, loom::sync::atomic::Ordering::Release);
            let other = {
                let dates = Arc::clone(&dates);
                thread::spawn(move || dates.value())
            };
            let mine = dates.value();
            let theirs = other.join().unwrap();
            for value in [mine, theirs] {
                assert_eq!(&value, b"Sun, 06 Nov 1994 08:49:38 GMT");
            }
            assert!(!dates.refresh(), "refreshed once for the new second");
        });
    }

    /// The facade really routes through loom: a known race is caught.
    #[test]
    #[should_panic(expected = "lost update")]
    fn loom_catches_a_known_race() {
        loom::model(|| {
            let total = recycle_pool::__loom::single_writer_counter_bumped_by_two_threads();
            assert_eq!(total, 2, "lost update");
        });
    }

    /// The shared tier's bound: a compare-and-swap reservation before the push and a
    /// release after the pop keep it, in every interleaving.
    #[test]
    fn shared_tier_bound_holds_under_a_race() {
        model(|| {
            recycle_pool::__loom::shared_tier_race(false, true);
        });
    }

    /// The same race on a small tier, whose queue is an `ArrayQueue` of exactly its
    /// places: the reservation never finds the queue full.
    #[test]
    fn small_shared_tier_bound_holds_under_a_race() {
        model(|| {
            recycle_pool::__loom::shared_tier_race(false, false);
        });
    }

    /// The same race with the reservation weakened to a check, then an add: two
    /// pushers both see the free place, and the tier holds two objects in one place.
    #[test]
    #[should_panic(expected = "over the bound")]
    fn shared_tier_bound_fails_with_a_check_then_add() {
        loom::model(|| {
            recycle_pool::__loom::shared_tier_race(true, true);
        });
    }

    /// `register` racing a miss on a code that is cached on a miss (404). The
    /// line the miss caches must come from the table it is installed into, so a
    /// registration is never overwritten by a line built from the reason it replaced.
    #[test]
    fn status_lines_register_vs_miss() {
        model(|| {
            let lines = Arc::new(StatusLines::new());
            let registrar = {
                let lines = Arc::clone(&lines);
                thread::spawn(move || lines.register(404, "Gone Fishing").unwrap())
            };
            let mut out = Vec::new();
            lines.write_line(404, Version::Http11, &mut out).unwrap();
            assert!(
                out == b"HTTP/1.1 404 Not Found\r\n" || out == b"HTTP/1.1 404 Gone Fishing\r\n",
                "{:?}",
                String::from_utf8_lossy(&out)
            );
            registrar.join().unwrap();
            // The registration is not lost, whatever the interleaving.
            let mut out = Vec::new();
            lines.write_line(404, Version::Http11, &mut out).unwrap();
            let line = String::from_utf8(out).unwrap();
            assert_eq!(line, "HTTP/1.1 404 Gone Fishing\r\n", "lost registration");
            assert_eq!(lines.cached(), 1);
        });
    }

    /// `DateCache` racing a clock set back by more than the slack: the value follows
    /// the clock back, whatever the interleaving.
    #[test]
    fn date_cache_follows_a_step_back() {
        model(|| {
            let now = loom::sync::Arc::new(loom::sync::atomic::AtomicU64::new(784_111_778));
            let dates = Arc::new(DateCache::with_clock(TestClock(now.clone())));
            let other = {
                let dates = Arc::clone(&dates);
                thread::spawn(move || dates.value())
            };
            now.store(784_111_700, loom::sync::atomic::Ordering::Release);
            dates.refresh();
            let theirs = other.join().unwrap();
            assert!(
                &theirs == b"Sun, 06 Nov 1994 08:49:38 GMT"
                    || &theirs == b"Sun, 06 Nov 1994 08:48:20 GMT"
            );
            let mut out = Vec::new();
            dates.write_cached(&mut out);
            assert_eq!(
                out, b"Sun, 06 Nov 1994 08:48:20 GMT",
                "followed the clock back"
            );
        });
    }

    /// `DateCache`: a thread that read the clock before another published a much later
    /// second never puts its older second back, though the gap is more than the
    /// step-back slack (a publisher reads the clock after the value it replaces was
    /// published).
    #[test]
    fn date_cache_late_thread_never_steps_back() {
        model(|| {
            let now = loom::sync::Arc::new(loom::sync::atomic::AtomicU64::new(784_111_777));
            let dates = Arc::new(DateCache::with_clock(TestClock(now.clone())));
            now.store(784_111_778, loom::sync::atomic::Ordering::Release);
            let late = {
                let dates = Arc::clone(&dates);
                thread::spawn(move || dates.refresh())
            };
            now.store(784_111_782, loom::sync::atomic::Ordering::Release);
            dates.refresh();
            late.join().unwrap();
            let mut out = Vec::new();
            dates.write_cached(&mut out);
            assert_eq!(
                out, b"Sun, 06 Nov 1994 08:49:42 GMT",
                "an older second came back"
            );
        });
    }

    /// `SizedPool` calibration: two threads request and calibrate at once. The
    /// calibrator's state (the request counts it last saw) sits behind a try-lock
    /// (acquire on taking it, release on giving it back); loom reports an unordered
    /// access to that state if either ordering is weakened to `Relaxed`. A thread that
    /// finds the lock taken does not wait (its `calibrate` returns false), and one of
    /// the two always calibrates.
    #[test]
    fn sized_calibrations_from_two_threads() {
        model(|| {
            let pool = Arc::new(
                recycle_pool::sized::SizedPool::builder()
                    .max_size(128)
                    .max_idle(1)
                    .thread_cache(0)
                    .build(),
            );
            let other = {
                let pool = Arc::clone(&pool);
                thread::spawn(move || {
                    drop(pool.get(100));
                    pool.calibrate()
                })
            };
            drop(pool.get(10));
            let mine = pool.calibrate();
            let theirs = other.join().unwrap();
            let stats = pool.stats();
            assert_eq!(
                stats.calibrations,
                u64::from(mine) + u64::from(theirs),
                "{stats:?}"
            );
            assert!(mine || theirs, "one of them saw at least its own request");
            assert!([64, 128].contains(&stats.default_size));
            assert!(stats.ceiling >= stats.default_size);
        });
    }

    /// `SizedPool`: a return that read the ceiling before a calibration lowered it
    /// lands in a class above the new ceiling. Every calibration trims the classes
    /// above the ceiling, so the next one frees it even though the ceiling stays put.
    /// Fails if only a calibration that lowers the ceiling trims.
    #[test]
    fn sized_return_racing_a_lowering_calibration() {
        model(|| {
            let pool = Arc::new(
                recycle_pool::sized::SizedPool::builder()
                    .max_size(128)
                    .max_idle(1)
                    .thread_cache(0)
                    .calibrate_every(1 << 40)
                    .build(),
            );
            for _ in 0..3 {
                drop(pool.get(10));
            }
            let other = {
                let pool = Arc::clone(&pool);
                thread::spawn(move || pool.put(Vec::with_capacity(128)))
            };
            assert!(pool.calibrate());
            other.join().unwrap();
            drop(pool.get(10));
            assert!(pool.calibrate());
            let stats = pool.stats();
            assert_eq!(stats.ceiling, 64);
            assert_eq!(
                stats.idle_bytes_in(128),
                0,
                "a 128 B buffer kept above the 64 B ceiling: {stats:?}"
            );
        });
    }
}
