//! `pool_ops`: a sequence of operations on a `recycle_pool::Pool` of objects with ids.
//!
//! Input layout: byte 0 sets `thread_cache` (0..=3, or 9, 12, 17 or 33, so that a
//! thread's cache grows past the slots it starts with), byte 1 `max_idle` (0..=4);
//! every following pair of bytes is one operation (`op % 8`) and its argument.
//!
//! Properties, after every operation:
//! - no object is ever held twice;
//! - an object the hook discarded never comes back;
//! - the idle count never exceeds `thread_cache + max_idle` (one thread);
//! - the stats add up: hits + misses = gets, returns = guard drops + puts, puts = puts,
//!   the objects created equal misses, and the identities documented on `Stats` hold
//!   exactly (`idle = returns - discards - hits - trimmed`, `in_use()` = live guards),
//!   and the discards the hook refused are counted as `refused`, the rest as `no_room`;
//! - in the end, every object created is dropped exactly once.
//!
//! Shared by `fuzz/fuzz_targets/pool_ops.rs` and `tests/fuzz_replay.rs`; it lives here,
//! in `tests/`, so that the published crate, which leaves `fuzz/` out, has it.

use std::cell::RefCell;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use recycle_pool::{Pool, Recycle, Reuse};

struct Item {
    id: usize,
    discard: bool,
    drops: Arc<AtomicUsize>,
}

impl Recycle for Item {
    fn recycle(&mut self) -> Reuse {
        if self.discard {
            Reuse::Discard
        } else {
            Reuse::Keep
        }
    }
}

impl Drop for Item {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Relaxed);
    }
}

pub(crate) fn check(data: &[u8]) {
    let thread_cache = match data.first().copied().unwrap_or(0) % 8 {
        small @ 0..=3 => usize::from(small),
        4 => 9,
        5 => 12,
        6 => 17,
        _ => 33,
    };
    let max_idle = usize::from(data.get(1).copied().unwrap_or(0) % 5);
    let created = Arc::new(AtomicUsize::new(0));
    let drops = Arc::new(AtomicUsize::new(0));
    let pool = {
        let (created, drops) = (Arc::clone(&created), Arc::clone(&drops));
        Arc::new(
            Pool::builder(move || Item {
                id: created.fetch_add(1, Relaxed),
                discard: false,
                drops: Arc::clone(&drops),
            })
            .thread_cache(thread_cache)
            .max_idle(max_idle)
            .build(),
        )
    };
    // Ids held right now, and ids discarded for good (shared with the checks below).
    let held_ids: RefCell<HashSet<usize>> = RefCell::default();
    let mut gone: HashSet<usize> = HashSet::new();
    let mut guards = Vec::new();
    let mut owned = Vec::new();
    let mut detached: Vec<Item> = Vec::new();
    let (mut gets, mut returns, mut puts, mut refused) = (0u64, 0u64, 0u64, 0u64);

    let take = |id: usize, gone: &HashSet<usize>| {
        assert!(held_ids.borrow_mut().insert(id), "object {id} held twice");
        assert!(!gone.contains(&id), "discarded object {id} came back");
    };

    for op in data.get(2..).unwrap_or(&[]).chunks(2) {
        let arg = usize::from(op.get(1).copied().unwrap_or(0));
        match op[0] % 8 {
            0 if guards.len() < 64 => {
                let guard = pool.get();
                take(guard.id, &gone);
                guards.push(guard);
                gets += 1;
            }
            1 if !guards.is_empty() => {
                let guard = guards.swap_remove(arg % guards.len());
                held_ids.borrow_mut().remove(&guard.id);
                drop(guard);
                returns += 1;
            }
            2 if !guards.is_empty() => {
                let item = guards.swap_remove(arg % guards.len()).detach();
                detached.push(item); // still held, by us
            }
            3 if !detached.is_empty() => {
                let item = detached.swap_remove(arg % detached.len());
                held_ids.borrow_mut().remove(&item.id);
                pool.put(item);
                returns += 1;
                puts += 1;
            }
            4 => pool.trim(),
            5 if !guards.is_empty() => {
                let mut guard = guards.swap_remove(arg % guards.len());
                guard.discard = true;
                held_ids.borrow_mut().remove(&guard.id);
                gone.insert(guard.id);
                drop(guard);
                returns += 1;
                refused += 1;
            }
            6 if owned.len() < 64 => {
                let guard = pool.get_owned();
                take(guard.id, &gone);
                owned.push(guard);
                gets += 1;
            }
            7 if !owned.is_empty() => {
                let guard = owned.swap_remove(arg % owned.len());
                held_ids.borrow_mut().remove(&guard.id);
                drop(guard);
                returns += 1;
            }
            _ => {}
        }
        let stats = pool.stats();
        assert!(
            stats.idle <= thread_cache + max_idle,
            "idle {} over the bounds",
            stats.idle
        );
        assert_eq!(stats.hits + stats.misses, gets, "{stats:?}");
        assert_eq!(stats.returns, returns, "{stats:?}");
        assert_eq!(stats.puts, puts, "{stats:?}");
        // One thread, no capacity bound: every discard is a refusal or found no room.
        assert_eq!(stats.refused, refused, "{stats:?}");
        assert_eq!((stats.over_capacity, stats.evicted), (0, 0), "{stats:?}");
        assert_eq!(stats.discards, stats.refused + stats.no_room, "{stats:?}");
        assert_eq!(stats.misses, created.load(Relaxed) as u64);
        assert_eq!(
            stats.idle as u64,
            stats.returns - stats.discards - stats.hits - stats.trimmed,
            "{stats:?}"
        );
        let live = (guards.len() + owned.len()) as u64;
        assert_eq!(stats.in_use(), live, "{stats:?}");
        assert_eq!(
            stats.hits + stats.misses,
            (stats.returns - stats.puts) + stats.detached + live,
            "{stats:?}"
        );
        let alive = created.load(Relaxed) - drops.load(Relaxed);
        assert_eq!(
            alive,
            stats.idle + held_ids.borrow().len(),
            "objects leaked or lost"
        );
    }
    drop((guards, owned, detached));
    drop(pool);
    assert_eq!(
        drops.load(Relaxed),
        created.load(Relaxed),
        "every object dropped exactly once"
    );
}
