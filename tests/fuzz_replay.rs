//! Replays the committed `pool_ops` fuzz corpus and crash reproducers
//! (`fuzz/corpus/pool_ops/`, `fuzz/artifacts/pool_ops/`) through the fuzz target's
//! checks on stable `cargo test`.

use std::path::PathBuf;

#[path = "../fuzz/checks/pool_ops.rs"]
mod pool_ops;

#[test]
fn pool_ops_corpus() {
    let fuzz = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz");
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
