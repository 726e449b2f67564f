//! Pooled buffers frozen into `bytes::Bytes`: shared without copying, home once after
//! the last view drops, readable after the pool's last other handle is gone.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;

use bytes::{Bytes, BytesMut};
use recycle_pool::sized::SizedPool;
use recycle_pool::{Pool, Reuse};

#[test]
fn a_bytes_cloned_into_threads_comes_home_once_after_the_last_drop() {
    const THREADS: usize = 8;
    let live = Arc::new(AtomicUsize::new(THREADS));
    let homes = Arc::new(Mutex::new(Vec::new()));
    let (live_in_hook, homes_in_hook) = (Arc::clone(&live), Arc::clone(&homes));
    let pool = Arc::new(
        Pool::builder_with(
            || Vec::<u8>::with_capacity(1024),
            move |buf: &mut Vec<u8>| {
                // Every view is gone by now: each thread counts itself out before its drop.
                homes_in_hook.lock().unwrap().push((
                    live_in_hook.load(SeqCst),
                    buf.len(),
                    thread::current().id(),
                ));
                buf.clear();
                Reuse::Keep
            },
        )
        .build(),
    );
    for round in 0..20 {
        let mut buf = pool.get_owned();
        buf.extend_from_slice(b"shared payload");
        let bytes = buf.freeze();
        let barrier = Arc::new(Barrier::new(THREADS));
        live.store(THREADS, SeqCst);
        let handles: Vec<_> = (0..THREADS)
            .map(|i| {
                let (view, barrier, live) = (
                    bytes.slice(i % 3..),
                    Arc::clone(&barrier),
                    Arc::clone(&live),
                );
                thread::spawn(move || {
                    barrier.wait();
                    assert_eq!(&view[..], &b"shared payload"[i % 3..]);
                    let clone = view.clone();
                    drop(view);
                    live.fetch_sub(1, SeqCst);
                    drop(clone);
                    thread::current().id()
                })
            })
            .collect();
        drop(bytes); // before the threads are done, or after: either way not the last
        let workers: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let homes = homes.lock().unwrap();
        assert_eq!(homes.len(), round + 1, "home exactly once per freeze");
        let (live_then, len, on) = homes[round];
        assert_eq!((live_then, len), (0, 14), "after the last drop, not before");
        assert!(
            workers.contains(&on) || on == thread::current().id(),
            "the hook ran on a thread that dropped a view"
        );
    }
    // Each came home on a worker thread (into its cache, handed back at its exit).
    let s = pool.stats();
    assert_eq!((s.returns, s.discards), (20, 0));
}

/// A buffer that counts its drops.
struct Tracked(Vec<u8>, Arc<AtomicUsize>);

impl AsRef<[u8]> for Tracked {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.1.fetch_add(1, SeqCst);
    }
}

#[test]
fn outstanding_bytes_outlive_the_pool_then_free_the_buffer() {
    let freed = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&freed);
    let pool = Arc::new(
        Pool::builder_with(
            move || Tracked(Vec::with_capacity(64), Arc::clone(&counter)),
            |t| {
                t.0.clear();
                Reuse::Keep
            },
        )
        .build(),
    );
    let mut buf = pool.get_owned();
    buf.0.extend_from_slice(b"still here");
    let bytes = buf.freeze();
    let weak = Arc::downgrade(&pool);
    drop(pool); // the last handle but the one inside `bytes`
    assert!(weak.upgrade().is_some(), "the view keeps the pool alive");
    let slice = bytes.slice(6..);
    drop(bytes);
    assert_eq!(&slice[..], b"here");
    assert_eq!(freed.load(SeqCst), 0);
    drop(slice);
    assert_eq!(
        freed.load(SeqCst),
        1,
        "the buffer went home and was freed with the pool"
    );
    assert!(weak.upgrade().is_none());
}

#[test]
fn freezing_copies_nothing() {
    let pool = Arc::new(Pool::new(|| Vec::<u8>::with_capacity(4096)));
    let mut buf = pool.get_owned();
    buf.resize(4000, 1);
    let at = buf.as_ptr();
    let bytes = buf.freeze();
    assert_eq!(bytes.as_ptr(), at);
    assert_eq!(bytes.slice(10..).as_ptr(), at.wrapping_add(10));
    assert_eq!(bytes.clone().as_ptr(), at);
    drop(bytes);
    assert_eq!(pool.get().as_ptr(), at, "the same buffer, home");

    let sized = Arc::new(SizedPool::new());
    let mut buf = sized.get_owned(3000);
    buf.resize(3000, 2);
    let at = buf.as_ptr();
    let bytes = buf.freeze();
    assert_eq!(bytes.as_ptr(), at);
    drop(bytes);
    assert_eq!(sized.get(3000).as_ptr(), at);
}

/// `BytesMut` cannot carry an owner, so a pooled `BytesMut` is the handle the pool keeps:
/// the bytes split off and frozen share its allocation, and once they are all dropped
/// the handle's next `reserve` reclaims the whole allocation in place.
#[test]
fn a_pooled_bytes_mut_reclaims_its_storage_after_frozen_splits_drop() {
    let pool = Pool::new(|| BytesMut::with_capacity(4096));
    let mut buf = pool.get();
    let base = buf.as_ptr();
    buf.extend_from_slice(b"first message");
    let first: Bytes = buf.split().freeze();
    assert_eq!(first.as_ptr(), base, "no copy");
    drop(buf); // back in the pool while `first` still lives
    let mut buf = pool.get();
    buf.reserve(4096); // `first` shares the storage: a new allocation, `first` untouched
    buf.extend_from_slice(b"second");
    assert_ne!(buf.as_ptr(), base);
    assert_eq!(&first[..], b"first message");
    drop(buf);
    drop(first);
    // The storage the pool now holds is the second one; reserve reclaims it whole.
    let mut buf = pool.get();
    let second_base = buf.as_ptr();
    let frozen = buf.split().freeze();
    drop(frozen);
    buf.reserve(4096);
    assert!(buf.capacity() >= 4096);
    assert!(
        buf.as_ptr() <= second_base,
        "reclaimed in place, not reallocated"
    );
}
