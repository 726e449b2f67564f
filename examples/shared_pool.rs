//! Shares one pool of 4 KiB buffers across worker threads and prints what it did.
//!
//! Run with `cargo run --release --example shared_pool`.

use std::sync::Arc;
use std::thread;

use recycle_pool::Pool;

fn main() {
    let pool = Arc::new(
        Pool::builder(|| Vec::<u8>::with_capacity(4096))
            .thread_cache(8)
            .max_idle(64)
            .max_capacity(64 * 1024) // never keep a buffer that grew past 64 KiB
            .build(),
    );

    let workers: Vec<_> = (0..4)
        .map(|worker| {
            let pool = Arc::clone(&pool);
            thread::spawn(move || {
                let mut checksum = 0u64;
                for request in 0..100_000u64 {
                    let mut buf = pool.get();
                    assert!(buf.is_empty(), "a previous user's bytes never leak");
                    // Every 10,000th request is huge: that buffer is not kept.
                    let len = if request % 10_000 == 0 { 100_000 } else { 512 };
                    buf.resize(len, (worker + request) as u8);
                    checksum += buf.iter().map(|&b| u64::from(b)).sum::<u64>();
                }
                checksum
            })
        })
        .collect();
    let checksum: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();

    let stats = pool.stats();
    println!("checksum {checksum}");
    println!(
        "gets {} (hits {}, misses {}), returns {}, discards {} (over max_capacity {}, no room {})",
        stats.hits + stats.misses,
        stats.hits,
        stats.misses,
        stats.returns,
        stats.discards,
        stats.over_capacity,
        stats.no_room,
    );
    // The workers have exited; their caches (at most `thread_cache` objects each) are
    // still the pool's, and `trim` sweeps them like the shared tier.
    println!(
        "idle {} (exited workers' caches and the shared tier)",
        stats.idle
    );
    pool.trim();
    pool.trim();
    println!(
        "after two trims: idle {} (all of it was idle through both)",
        pool.stats().idle
    );
}
