//! The `pool_ops` fuzz target's checks (`tests/checks/pool_ops.rs`) on stable
//! `cargo test`: over the committed corpus and crash reproducers
//! (`fuzz/corpus/pool_ops/`, `fuzz/artifacts/pool_ops/`) in a checkout of the
//! repository, and over a fixed set of generated inputs everywhere, the published
//! crate (which leaves `fuzz/` out) included.

use std::path::PathBuf;

#[path = "checks/pool_ops.rs"]
mod pool_ops;

#[test]
fn pool_ops_corpus() {
    let fuzz = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    if !fuzz.exists() {
        // The packaged crate: no corpus to replay; `pool_ops_generated` still runs.
        eprintln!("no fuzz/ directory (a packaged crate): corpus replay skipped");
        return;
    }
    let mut count = 0;
    for dir in ["corpus", "artifacts"] {
        let Ok(entries) = std::fs::read_dir(fuzz.join(dir).join("pool_ops")) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            let result = std::panic::catch_unwind(|| pool_ops::check(&bytes));
            assert!(result.is_ok(), "pool_ops fails on {}", path.display());
            count += 1;
        }
    }
    assert!(count >= 5, "the pool_ops corpus is missing ({count} files)");
}

/// Inputs from a fixed pseudo-random sequence (xorshift64), so the run is the same
/// every time: every `thread_cache`/`max_idle` setting, operation sequences up to 512
/// operations long.
#[test]
fn pool_ops_generated() {
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let inputs = if cfg!(miri) { 20 } else { 600 };
    for i in 0..inputs {
        let len = 2 + (next() % 1024) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        // Cover every setting of the two configuration bytes in turn.
        bytes[0] = i as u8;
        bytes[1] = (i / 8) as u8;
        let result = std::panic::catch_unwind(|| pool_ops::check(&bytes));
        assert!(
            result.is_ok(),
            "pool_ops fails on generated input {i}: {bytes:?}"
        );
    }
}
