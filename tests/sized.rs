//! SizedPool: classes, returns to the class a capacity fits, the largest class, and
//! calibration (default size, ceiling, freeing what the ceiling no longer keeps).

use std::sync::{Arc, Barrier};
use std::thread;

use recycle_pool::BufferPool;
use recycle_pool::sized::{CHECK_EVERY, MAX_CLASS, MIN_CLASS, SizedPool};

fn uncalibrated() -> SizedPool {
    SizedPool::builder().calibrate(false).build()
}

#[test]
fn get_serves_the_smallest_class_that_fits() {
    let pool = uncalibrated();
    for n in [0, 1, 64, 65, 1000, 4096, 4097, 100_000, MAX_CLASS] {
        let buf = pool.get(n);
        assert!(buf.is_empty());
        let want = n.max(MIN_CLASS).next_power_of_two();
        assert!(buf.capacity() >= want, "get({n}): {}", buf.capacity());
        assert!(buf.capacity() < 2 * want, "get({n}): not a bigger class");
    }
}

#[test]
fn a_buffer_comes_back_to_the_class_its_capacity_fits() {
    let pool = uncalibrated();
    let mut buf = pool.get(100); // 128 B class
    buf.resize(5000, 7); // grew past 4 KiB
    let grown_at = buf.as_ptr();
    let capacity = buf.capacity();
    drop(buf);
    let stats = pool.stats();
    assert_eq!(
        stats.idle_bytes_in(128),
        0,
        "not back in the class it came from"
    );
    assert_eq!(
        stats.idle_bytes_in(4096),
        4096,
        "moved up to the class it fits"
    );
    // A request for 4 KiB gets it, cleared; one for 8 KiB cannot (5000 < 8192).
    let again = pool.get(4096);
    assert_eq!(
        (again.as_ptr(), again.capacity(), again.len()),
        (grown_at, capacity, 0)
    );
    drop(again);
    let bigger = pool.get(8192);
    assert_ne!(bigger.as_ptr(), grown_at);
    assert!(bigger.capacity() >= 8192);
}

#[test]
fn nothing_above_the_largest_class_is_kept() {
    let pool = SizedPool::builder()
        .max_size(1 << 16)
        .calibrate(false)
        .build();
    assert_eq!(pool.max_size(), 1 << 16);
    drop(pool.get((1 << 16) + 1)); // above: allocated, then dropped
    let mut grew = pool.get(1 << 16);
    grew.reserve((1 << 16) + 1); // grew past the largest class
    drop(grew);
    let s = pool.stats();
    assert_eq!(
        (s.huge_requests, s.dropped_out_of_classes, s.idle()),
        (1, 2, 0)
    );
    // Made elsewhere: too small to be a class, or too big.
    pool.put(Vec::with_capacity(10));
    pool.put(Vec::with_capacity(1 << 20));
    pool.put(Vec::with_capacity(1 << 16));
    let s = pool.stats();
    assert_eq!((s.dropped_out_of_classes, s.idle()), (4, 1));
}

#[test]
fn returned_bytes_are_never_seen_again() {
    let pool = uncalibrated();
    for round in 0..100u8 {
        let mut buf = pool.get(256);
        assert!(buf.is_empty(), "round {round}: the hook cleared it");
        assert!(buf.iter().all(|&b| b == 0));
        buf.extend_from_slice(&[round; 200]);
    }
    assert_eq!(pool.stats().classes[2].1.misses, 1);
}

#[test]
fn calibration_learns_the_default_and_the_ceiling() {
    let pool = SizedPool::new();
    assert_eq!(pool.default_size(), 4096);
    assert_eq!(pool.ceiling(), MAX_CLASS);
    // 90% 512 B, 6% 16 KiB, 4% 1 MiB.
    for i in 0..100 {
        let n = match i % 100 {
            0..=89 => 500,
            90..=95 => 16 << 10,
            _ => 1 << 20,
        };
        drop(pool.get(n));
    }
    assert!(pool.calibrate());
    let s = pool.stats();
    assert_eq!(
        (s.default_size, s.ceiling, s.calibrations),
        (512, 16 << 10, 1)
    );
    assert!(pool.get_default().capacity() >= 512);
    // The 1 MiB buffer was idle: the lower ceiling freed it at once.
    assert_eq!(s.idle_bytes_in(1 << 20), 0);
    // A 1 MiB buffer is still handed out, and dropped on return.
    let big = pool.get(1 << 20);
    assert!(big.capacity() >= 1 << 20);
    drop(big);
    let s = pool.stats();
    assert_eq!((s.dropped_over_ceiling, s.idle_bytes_in(1 << 20)), (1, 0));
    // Nothing new since: a calibration has nothing to learn from and changes nothing.
    let before = pool.stats().calibrations;
    drop(pool.get_default());
    assert!(pool.calibrate());
    assert_eq!(pool.stats().calibrations, before + 1);
    assert_eq!(pool.default_size(), 512, "one get of the default keeps it");
    assert!(!pool.calibrate(), "no request since the last calibration");
}

#[test]
fn percentile_one_keeps_every_class_and_zero_keeps_only_the_default() {
    for (p, ceiling) in [(1.0, 1 << 20), (0.0, 512)] {
        let pool = SizedPool::builder().percentile(p).build();
        for i in 0..10 {
            drop(pool.get(if i == 0 { 1 << 20 } else { 500 }));
        }
        pool.calibrate();
        assert_eq!(
            (pool.default_size(), pool.ceiling()),
            (512, ceiling),
            "p = {p}"
        );
    }
}

#[test]
fn huge_requests_count_toward_the_ceiling() {
    let pool = SizedPool::builder().max_size(4096).build();
    for _ in 0..10 {
        drop(pool.get(1 << 20));
    }
    drop(pool.get(100));
    pool.calibrate();
    // Requests above the largest class dominate: the default is the largest class.
    assert_eq!((pool.default_size(), pool.ceiling()), (4096, 4096));
}

#[test]
fn calibration_runs_by_itself_after_enough_requests() {
    let pool = SizedPool::builder().calibrate_every(100).build();
    for _ in 0..CHECK_EVERY * 2 {
        drop(pool.get(300));
    }
    let s = pool.stats();
    assert!(s.calibrations >= 1, "{s:?}");
    assert_eq!((s.default_size, s.ceiling), (512, 512));
}

#[test]
fn without_calibration_nothing_is_learned() {
    let pool = uncalibrated();
    for _ in 0..CHECK_EVERY * 2 {
        drop(pool.get(300));
    }
    assert!(!pool.calibrate());
    let s = pool.stats();
    assert_eq!(
        (s.calibrations, s.default_size, s.ceiling),
        (0, 4096, MAX_CLASS)
    );
}

/// The scenario: a burst of huge requests, then normal traffic. The calibrated
/// pool goes back to holding what normal traffic needs; the uncalibrated one keeps the
/// burst's buffers.
#[test]
fn after_a_burst_the_calibrated_pool_falls_back_to_the_normal_footprint() {
    let run = |pool: &SizedPool| {
        // The burst: 16 requests of 2 MiB at once.
        let held: Vec<_> = (0..16).map(|_| pool.get(2 << 20)).collect();
        drop(held);
        // Normal traffic: 4 KiB requests, one in ten 64 KiB.
        for i in 0..CHECK_EVERY * 20 {
            drop(pool.get(if i % 10 == 0 { 64 << 10 } else { 4000 }));
        }
        pool.stats().idle_bytes()
    };
    let calibrated = SizedPool::builder().calibrate_every(1000).build();
    let plain = uncalibrated();
    let (after_calibrated, after_plain) = (run(&calibrated), run(&plain));
    assert!(
        after_plain >= 2 * (2 << 20),
        "the burst's buffers stay: {after_plain}"
    );
    assert!(
        after_calibrated <= 4096 + (64 << 10) + 4096,
        "only a 4 KiB and a 64 KiB buffer stay: {after_calibrated} ({:?})",
        calibrated.stats()
    );
    assert_eq!(calibrated.ceiling(), 64 << 10);
}

#[test]
fn two_threads_calibrating_at_once() {
    let pool = Arc::new(SizedPool::builder().calibrate_every(1).build());
    let barrier = Arc::new(Barrier::new(2));
    let handles: Vec<_> = [300usize, 3000]
        .into_iter()
        .map(|size| {
            let (pool, barrier) = (Arc::clone(&pool), Arc::clone(&barrier));
            thread::spawn(move || {
                barrier.wait();
                let mut calibrated = 0;
                for _ in 0..2000 {
                    drop(pool.get(size));
                    calibrated += u64::from(pool.calibrate());
                }
                calibrated
            })
        })
        .collect();
    let by_hand: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    let s = pool.stats();
    assert!(s.calibrations >= by_hand, "{s:?}");
    let requests: u64 = s.classes.iter().map(|(_, c)| c.hits + c.misses).sum();
    assert_eq!(requests, 4000);
    // Each calibration saw a window of requests: one class or both.
    assert!([512, 4096].contains(&s.default_size), "{s:?}");
    assert!(
        [512, 4096].contains(&s.ceiling) && s.ceiling >= s.default_size,
        "{s:?}"
    );
}

#[test]
fn a_sized_pool_is_a_buffer_pool() {
    let pool = SizedPool::new();
    let buf = BufferPool::get(&pool);
    assert!(buf.capacity() >= 4096);
    BufferPool::put(&pool, buf);
    assert_eq!(pool.stats().idle(), 1);
    let mut out = Vec::new();
    let n = recycle_pool::io::copy(&mut &[9u8; 100_000][..], &mut out, &pool).unwrap();
    assert_eq!((n, out.len()), (100_000, 100_000));
}

#[test]
fn owned_guards_go_home_from_other_threads() {
    let pool = Arc::new(SizedPool::new());
    let mut buf = pool.get_owned(1000);
    buf.push(1);
    thread::spawn(move || drop(buf)).join().unwrap();
    assert_eq!(pool.stats().idle_bytes_in(1024), 1024);
    let detached = pool.get_owned(1000).detach();
    assert!(detached.capacity() >= 1000);
    drop(detached); // never comes back
    assert_eq!(pool.stats().classes[4].1.returns, 1);
}

/// Two pools used in turn by one thread: each counts its own gets, so both calibrate
/// (a counter shared by every pool on the thread landed its checks on one of them).
#[test]
fn two_pools_used_in_turn_both_calibrate() {
    let a = SizedPool::builder().calibrate_every(1000).build();
    let b = SizedPool::builder().calibrate_every(1000).build();
    drop((0..4).map(|_| a.get(1 << 20)).collect::<Vec<_>>());
    drop((0..4).map(|_| b.get(1 << 20)).collect::<Vec<_>>());
    for _ in 0..(CHECK_EVERY as usize * 8) {
        drop(a.get(4000));
        drop(b.get(4000));
    }
    for (name, pool) in [("a", &a), ("b", &b)] {
        let s = pool.stats();
        assert!(s.calibrations > 0, "pool {name} never calibrated: {s:?}");
        assert_eq!(s.ceiling, 4096, "pool {name}");
        assert_eq!(s.idle_bytes_in(1 << 20), 0, "pool {name}");
    }
}

/// Thread-per-connection: threads that each make fewer than `CHECK_EVERY` gets still
/// add up to a calibration, and a burst's buffers are freed.
#[test]
fn short_lived_threads_still_calibrate() {
    let pool = Arc::new(SizedPool::new());
    drop((0..4).map(|_| pool.get(1 << 20)).collect::<Vec<_>>());
    for _ in 0..200 {
        let pool = Arc::clone(&pool);
        thread::spawn(move || {
            for _ in 0..500 {
                drop(pool.get(4000));
            }
        })
        .join()
        .unwrap();
    }
    let s = pool.stats();
    assert!(
        s.calibrations > 0,
        "100,000 requests, no calibration: {s:?}"
    );
    assert_eq!(s.ceiling, 4096);
    assert_eq!(s.idle_bytes_in(1 << 20), 0);
}

/// Traffic too thin to reach `calibrate_every` calibrates on the user's trim timer.
#[test]
fn trim_calibrates_idle_traffic() {
    let pool = SizedPool::new();
    drop((0..4).map(|_| pool.get(1 << 20)).collect::<Vec<_>>());
    for _ in 0..100 {
        drop(pool.get(4000));
    }
    assert_eq!(pool.stats().calibrations, 0);
    pool.trim();
    let s = pool.stats();
    assert_eq!(s.calibrations, 1);
    assert_eq!(s.ceiling, 4096);
    assert_eq!(s.idle_bytes_in(1 << 20), 0);
    pool.trim(); // no request since: nothing to learn from, nothing changes
    assert_eq!(pool.stats().calibrations, 1);
}

/// A burst of 128 KiB buffers on a thread that stays alive, then normal traffic; the
/// calibration runs on another thread and frees them (classes this big keep no
/// per-thread cache, where only their owner could free them).
#[test]
fn a_calibration_frees_a_live_threads_big_buffers() {
    let pool = Arc::new(SizedPool::builder().calibrate_every(u64::MAX / 4).build());
    let (to_worker, from_main) = std::sync::mpsc::channel::<()>();
    let (to_main, from_worker) = std::sync::mpsc::channel::<()>();
    let worker = {
        let pool = Arc::clone(&pool);
        thread::spawn(move || {
            drop((0..2).map(|_| pool.get(128 << 10)).collect::<Vec<_>>());
            for _ in 0..1000 {
                drop(pool.get(4000));
            }
            to_main.send(()).unwrap();
            from_main.recv().unwrap(); // alive, idle
        })
    };
    from_worker.recv().unwrap();
    assert!(pool.calibrate());
    let s = pool.stats();
    to_worker.send(()).unwrap();
    worker.join().unwrap();
    assert_eq!(s.ceiling, 4096);
    assert_eq!(s.idle_bytes_in(128 << 10), 0, "{s:?}");
}

/// A request above `isize::MAX` bytes panics (as `Vec::with_capacity`), as documented,
/// and leaves the pool usable.
#[test]
fn a_request_above_isize_max_panics() {
    let pool = SizedPool::new();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        drop(pool.get(isize::MAX as usize + 1))
    }));
    assert!(r.is_err());
    assert!(pool.get(100).capacity() >= 100);
}
