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
        "gets {} (hits {}, misses {}), returns {}, discards {}, idle {}",
        stats.hits + stats.misses,
        stats.hits,
        stats.misses,
        stats.returns,
        stats.discards,
        stats.idle
    );
    pool.trim();
    pool.trim();
    // What is left sits in the caches of the exited workers: at most
    // `thread_cache` objects per thread that used the pool.
    println!(
        "after two trims: idle {} (in exited workers' caches)",
        pool.stats().idle
    );
}
