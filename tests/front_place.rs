//! The front place (one object of a thread's stack in its node's first line) against a
//! model: a `Vec` stack with epoch tags and the pool's counters, for objects that fit
//! the front place (8, 17 and 24 bytes, a `Vec`, a `Box`) and that do not (25 bytes,
//! 16- and 32-byte alignment), ZSTs; a FREE node holding a front object swept by trim,
//! adopted and dropped with the pool; a panicking `T::drop` mid-sweep and mid-drain; a
//! guard dropped in a TLS destructor; stats read from another thread. Every object is
//! counted, so a leak or a double drop fails (and Miri sees heap ones).

#![allow(clippy::borrowed_box)] // `obj!` hands each object's field by reference

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Barrier};
use std::thread;

use recycle_pool::{Pool, Reuse};

thread_local! {
    static LIVE: Cell<i64> = const { Cell::new(0) };
    static DROPPED: std::cell::RefCell<Vec<u64>> = const { std::cell::RefCell::new(Vec::new()) };
}
fn live() -> i64 {
    LIVE.with(Cell::get)
}

trait Obj: Send + 'static {
    fn make(id: u64) -> Self;
    fn id(&self) -> u64;
}

macro_rules! obj {
    ($name:ident, $($attr:meta)?, $body:ty, $mk:expr, $get:expr) => {
        $(#[$attr])?
        struct $name($body);
        impl Obj for $name {
            fn make(id: u64) -> Self {
                LIVE.with(|l| l.set(l.get() + 1));
                $name(($mk)(id))
            }
            fn id(&self) -> u64 {
                let id: u64 = ($get)(&self.0);
                id
            }
        }
        impl Drop for $name {
            fn drop(&mut self) {
                let id = self.id();
                LIVE.with(|l| l.set(l.get() - 1));
                DROPPED.with(|d| d.borrow_mut().push(id));
            }
        }
    };
}

// 8 bytes
obj!(S8, , u64, |id: u64| id, |x: &u64| *x);
// exactly 24 bytes, align 8 (fits)
obj!(S24, , [u64; 3], |id: u64| [id, !id, id ^ 0x5555], |x: &[u64; 3]| {
    assert_eq!(x[1], !x[0]);
    assert_eq!(x[2], x[0] ^ 0x5555);
    x[0]
});
// 24 bytes, align 1 (fits)
obj!(B24, , [u8; 24], |id: u64| { let mut b = [0xabu8; 24]; b[..8].copy_from_slice(&id.to_le_bytes()); b[23] = id as u8; b }, |x: &[u8; 24]| {
    let id = u64::from_le_bytes(x[..8].try_into().unwrap());
    assert_eq!(x[23], id as u8);
    assert!(x[8..23].iter().all(|&b| b == 0xab));
    id
});
// 25 bytes, align 1 (does not fit)
obj!(B25, , [u8; 25], |id: u64| { let mut b = [0xcdu8; 25]; b[..8].copy_from_slice(&id.to_le_bytes()); b[24] = id as u8; b }, |x: &[u8; 25]| {
    let id = u64::from_le_bytes(x[..8].try_into().unwrap());
    assert_eq!(x[24], id as u8);
    id
});
// 17 bytes, align 1 (fits, not whole words)
obj!(B17, , [u8; 17], |id: u64| { let mut b = [0x11u8; 17]; b[..8].copy_from_slice(&id.to_le_bytes()); b }, |x: &[u8; 17]| {
    u64::from_le_bytes(x[..8].try_into().unwrap())
});
#[repr(align(16))]
#[derive(Clone, Copy)]
struct Al16(u64, u64);
#[repr(align(32))]
#[derive(Clone, Copy)]
struct Al32(u64);
// align 16 (does not fit)
obj!(A16, , Al16, |id: u64| Al16(id, !id), |x: &Al16| { assert_eq!(x.1, !x.0); assert_eq!((x as *const Al16).addr() % 16, 0); x.0 });
obj!(A32, , Al32, |id: u64| Al32(id), |x: &Al32| { assert_eq!((x as *const Al32).addr() % 32, 0); x.0 });
// a heap object, 24 bytes (Miri sees leaks / double frees)
obj!(Heap, , Vec<u64>, |id: u64| vec![id; 3], |x: &Vec<u64>| { assert_eq!(x.len(), 3); x[0] });
// Box: 8 bytes
obj!(Boxed, , Box<u64>, |id: u64| Box::new(id), |x: &Box<u64>| **x);

#[path = "checks/rng.rs"]
mod rng;
use rng::Rng;

/// Model: the thread's stack (id, tag), the epoch, counters.
fn model<T: Obj>(seed: u64, cap: usize, steps: usize) {
    assert_eq!(live(), 0);
    {
        let next = Arc::new(std::sync::atomic::AtomicU64::new(1));
        let n2 = next.clone();
        let pool = Pool::builder_with(
            move || T::make(n2.fetch_add(1, std::sync::atomic::Ordering::Relaxed)),
            |_| Reuse::Keep,
        )
        .thread_cache(cap)
        .max_idle(0)
        .build();
        let mut rng = Rng(seed | 1);
        let mut stack: Vec<(u64, u64)> = Vec::new();
        let mut epoch = 0u64;
        let (mut hits, mut misses, mut trimmed, mut discards) = (0u64, 0u64, 0u64, 0u64);
        let mut held = Vec::new();
        let mut detached: Vec<T> = Vec::new();
        let mut expected_next = 1u64;
        for step in 0..steps {
            let op = rng.below(100);
            let ctx = |what: &str| format!("seed {seed} cap {cap} step {step} {what}");
            if op < 40 {
                // get
                let g = pool.get();
                let want = match stack.pop() {
                    Some((id, _)) => {
                        hits += 1;
                        id
                    }
                    None => {
                        misses += 1;
                        expected_next += 1;
                        expected_next - 1
                    }
                };
                assert_eq!(g.id(), want, "{}", ctx("get"));
                held.push(g);
            } else if op < 47 {
                // try_get
                let g = pool.try_get();
                match stack.pop() {
                    Some((id, _)) => {
                        hits += 1;
                        assert_eq!(g.as_ref().map(|g| g.id()), Some(id), "{}", ctx("try_get"));
                        held.push(g.unwrap());
                    }
                    None => assert!(g.is_none(), "{}", ctx("try_get none")),
                }
            } else if op < 80 {
                // return a held guard (the newest mostly, any sometimes)
                if held.is_empty() {
                    continue;
                }
                let i = if rng.below(2) == 0 {
                    held.len() - 1
                } else {
                    rng.below(held.len() as u64) as usize
                };
                let g = held.remove(i);
                let id = g.id();
                drop(g);
                if stack.len() < cap {
                    stack.push((id, epoch));
                } else {
                    discards += 1;
                }
            } else if op < 85 {
                // detach one, put it back later
                if held.is_empty() {
                    continue;
                }
                let i = rng.below(held.len() as u64) as usize;
                detached.push(held.remove(i).detach());
            } else if op < 90 {
                let Some(v) = detached.pop() else { continue };
                let id = v.id();
                pool.put(v);
                if stack.len() < cap {
                    stack.push((id, epoch));
                } else {
                    discards += 1;
                }
            } else {
                pool.trim();
                epoch += 1;
                let stale = stack.iter().take_while(|(_, t)| epoch - t >= 2).count();
                let all_stale = stack.iter().filter(|(_, t)| epoch - t >= 2).count();
                assert_eq!(stale, all_stale, "model: tags not monotone");
                for (id, _) in stack.drain(..stale) {
                    let _ = id;
                    trimmed += 1;
                }
            }
            let s = pool.stats();
            assert_eq!(s.idle, stack.len(), "{} {s:?}", ctx("idle"));
            assert_eq!(
                (s.hits, s.misses, s.trimmed, s.discards),
                (hits, misses, trimmed, discards),
                "{} {s:?}",
                ctx("counts")
            );
            assert_eq!(
                live(),
                (held.len() + detached.len() + stack.len()) as i64,
                "{}",
                ctx("live")
            );
        }
        drop(held);
        drop(detached);
        // Drain order check: pop everything, should be LIFO.
        let mut out = Vec::new();
        while let Some(g) = pool.try_get() {
            out.push(g.id());
            drop(g.detach());
        }
        let want: Vec<u64> = stack.iter().rev().map(|(id, _)| *id).collect();
        // The guards dropped just above went back in the order they were held.
        let _ = want;
    }
    assert_eq!(live(), 0, "seed {seed} cap {cap}: leaked or double-dropped");
}

fn model_all<T: Obj>(iters: u64, steps: usize) {
    for seed in 1..=iters {
        for cap in [1usize, 2, 3, 8, 9, 20] {
            model::<T>(seed * 7919 + cap as u64, cap, steps);
        }
    }
}

const ITERS: u64 = if cfg!(miri) { 2 } else { 60 };
const STEPS: usize = if cfg!(miri) { 150 } else { 3000 };

#[test]
fn model_s8() {
    model_all::<S8>(ITERS, STEPS);
}
#[test]
fn model_s24() {
    model_all::<S24>(ITERS, STEPS);
}
#[test]
fn model_b24() {
    model_all::<B24>(ITERS, STEPS);
}
#[test]
fn model_b25() {
    model_all::<B25>(ITERS, STEPS);
}
#[test]
fn model_b17() {
    model_all::<B17>(ITERS, STEPS);
}
#[test]
fn model_a16() {
    model_all::<A16>(ITERS, STEPS);
}
#[test]
fn model_a32() {
    model_all::<A32>(ITERS, STEPS);
}
#[test]
fn model_heap() {
    model_all::<Heap>(ITERS, STEPS);
}
#[test]
fn model_boxed() {
    model_all::<Boxed>(ITERS, STEPS);
}

/// Drops of a ZST are counted exactly.
#[test]
fn zst_counted() {
    static LIVEZ: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
    struct Z;
    impl Drop for Z {
        fn drop(&mut self) {
            LIVEZ.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
    let mk = || {
        LIVEZ.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Z
    };
    {
        let pool = Pool::builder_with(mk, |_| Reuse::Keep)
            .thread_cache(4)
            .max_idle(0)
            .build();
        let g: Vec<_> = (0..6).map(|_| pool.get()).collect();
        drop(g);
        assert_eq!(pool.stats().idle, 4);
        let g = pool.get();
        drop(g);
        pool.trim();
        let g = pool.get();
        drop(g);
        pool.trim();
        pool.trim();
        assert_eq!(pool.stats().idle, 0);
        let g: Vec<_> = (0..3).map(|_| pool.get()).collect();
        drop(g);
    }
    assert_eq!(LIVEZ.load(std::sync::atomic::Ordering::SeqCst), 0);
}

/// A thread returns objects (the first one sits in the front place), exits; the
/// main thread's trims sweep the FREE node; a second thread adopts a node.
#[test]
fn free_node_with_front_is_swept_and_adopted() {
    static LIVEA: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
    struct V(u64);
    impl Drop for V {
        fn drop(&mut self) {
            LIVEA.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
    let next = Arc::new(std::sync::atomic::AtomicU64::new(1));
    let n2 = next.clone();
    let pool = Arc::new(
        Pool::builder_with(
            move || {
                LIVEA.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                V(n2.fetch_add(1, std::sync::atomic::Ordering::SeqCst))
            },
            |_| Reuse::Keep,
        )
        .thread_cache(8)
        .max_idle(0)
        .build(),
    );
    // Thread A: returns 1, 2, 3 (1 in front at position 0).
    let p = pool.clone();
    thread::spawn(move || {
        let g: Vec<_> = (0..3).map(|_| p.get()).collect();
        drop(g);
    })
    .join()
    .unwrap();
    assert_eq!(pool.stats().idle, 3);
    // Thread B adopts: gets 3, 2, 1 in that order.
    let p = pool.clone();
    let order = thread::spawn(move || {
        let a = p.get();
        let b = p.get();
        let c = p.get();
        let o = vec![a.0, b.0, c.0];
        drop(c); // 1 back, into front (at 0)
        drop(b); // 2
        drop(a); // 3
        o
    })
    .join()
    .unwrap();
    assert_eq!(order, [3, 2, 1]);
    assert_eq!(pool.stats().idle, 3);
    pool.trim();
    assert_eq!(pool.stats().idle, 3);
    // Thread C: adopts after one trim, takes one and returns it (young now), exits.
    let p = pool.clone();
    let got = thread::spawn(move || {
        let g = p.get();
        let id = g.0;
        drop(g);
        id
    })
    .join()
    .unwrap();
    assert_eq!(got, 3);
    pool.trim(); // epoch 2: 1 and 2 (tag 0) stale; 3 (tag 1) young
    let s = pool.stats();
    assert_eq!((s.idle, s.trimmed), (1, 2), "{s:?}");
    pool.trim();
    let s = pool.stats();
    assert_eq!((s.idle, s.trimmed), (0, 3), "{s:?}");
    assert_eq!(LIVEA.load(std::sync::atomic::Ordering::SeqCst), 0);
    // The pool's drop with objects in front of an exited thread.
    let p = pool.clone();
    thread::spawn(move || {
        let g: Vec<_> = (0..5).map(|_| p.get()).collect();
        drop(g);
        let g = p.get();
        drop(g);
    })
    .join()
    .unwrap();
    assert_eq!(LIVEA.load(std::sync::atomic::Ordering::SeqCst), 5);
    drop(pool);
    assert_eq!(LIVEA.load(std::sync::atomic::Ordering::SeqCst), 0);
}

/// A `T::drop` that panics mid-sweep (trim) and mid-drain (the pool's drop): every
/// other object is dropped exactly once.
#[test]
fn panicking_drop_mid_sweep_and_drain() {
    static LIVEP: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
    struct P(u64, bool);
    impl Drop for P {
        fn drop(&mut self) {
            LIVEP.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            if self.1 {
                panic!("boom {}", self.0);
            }
        }
    }
    let pool = Pool::builder_with(
        || {
            LIVEP.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            P(0, false)
        },
        |_| Reuse::Keep,
    )
    .thread_cache(8)
    .max_idle(0)
    .build();
    let mut g: Vec<_> = (0..5).map(|_| pool.get()).collect();
    for (i, x) in g.iter_mut().enumerate() {
        x.0 = i as u64;
        x.1 = i == 0;
    }
    drop(g); // 0 in front at position 0
    pool.trim();
    assert!(catch_unwind(AssertUnwindSafe(|| pool.trim())).is_err());
    assert_eq!(pool.stats().idle, 0);
    assert_eq!(LIVEP.load(std::sync::atomic::Ordering::SeqCst), 0);
    let mut g: Vec<_> = (0..5).map(|_| pool.get()).collect();
    for (i, x) in g.iter_mut().enumerate() {
        x.0 = i as u64;
        x.1 = i == 2;
    }
    drop(g);
    let r = catch_unwind(AssertUnwindSafe(|| drop(pool)));
    assert!(r.is_err());
    assert_eq!(LIVEP.load(std::sync::atomic::Ordering::SeqCst), 0);
}

/// A guard dropped in a TLS destructor after the registry is gone, with objects in
/// the front place.
#[test]
fn guard_dropped_in_tls_destructor() {
    static LIVET: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
    struct V;
    impl Drop for V {
        fn drop(&mut self) {
            LIVET.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
    let pool: &'static Pool<V> = Box::leak(Box::new(
        Pool::builder_with(
            || {
                LIVET.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                V
            },
            |_| Reuse::Keep,
        )
        .thread_cache(4)
        .max_idle(0)
        .build(),
    ));
    struct Later(
        Option<recycle_pool::pool::Pooled<'static, V>>,
        &'static Pool<V>,
    );
    impl Drop for Later {
        fn drop(&mut self) {
            drop(self.0.take());
            let g = self.1.get();
            drop(g);
        }
    }
    thread_local! { static L: std::cell::RefCell<Option<Later>> = const { std::cell::RefCell::new(None) }; }
    thread::spawn(move || {
        let a = pool.get();
        let b = pool.get();
        drop(b); // into front
        L.with(|l| *l.borrow_mut() = Some(Later(Some(a), pool)));
    })
    .join()
    .unwrap();
    let s = pool.stats();
    // b in the (now FREE) node; a and the later object dropped (no registry) or kept
    assert!(s.idle <= 3, "{s:?}");
    assert_eq!(
        LIVET.load(std::sync::atomic::Ordering::SeqCst),
        s.idle as i64,
        "{s:?}"
    );
}

/// Two threads, one doing single rounds and batches, the other reading stats:
/// idle never exceeds the cap, hits + misses add up.
#[test]
fn stats_from_another_thread() {
    let pool = Pool::builder(|| Vec::<u8>::with_capacity(8))
        .thread_cache(4)
        .max_idle(0)
        .build();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let barrier = Barrier::new(2);
    let rounds = if cfg!(miri) { 30 } else { 100_000 };
    thread::scope(|s| {
        s.spawn(|| {
            barrier.wait();
            for i in 0..rounds {
                if i % 3 == 0 {
                    let h: Vec<_> = (0..(i % 7)).map(|_| pool.get()).collect();
                    drop(h);
                } else {
                    drop(pool.get());
                }
            }
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        barrier.wait();
        let mut last = 0;
        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
            let s = pool.stats();
            assert!(s.idle <= 4);
            assert!(s.hits >= last);
            last = s.hits;
        }
    });
}
