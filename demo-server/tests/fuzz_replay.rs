//! Replays every committed fuzz input (`fuzz/corpus/<target>/`) and every crash
//! reproducer (`fuzz/artifacts/<target>/`) through the same checks the fuzz targets run,
//! so that a crash once found stays a failing test until it is fixed. Runs on stable
//! with plain `cargo test`; no cargo-fuzz needed.

use std::path::PathBuf;

#[path = "../../fuzz/checks/http_request.rs"]
mod http_request;

#[path = "../../fuzz/checks/http_chunked.rs"]
mod http_chunked;

#[path = "../../fuzz/checks/proxy_headers.rs"]
mod proxy_headers;

/// Every file of the target's corpus and artifacts.
fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let fuzz = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut files = Vec::new();
    for dir in ["corpus", "artifacts"] {
        let Ok(entries) = std::fs::read_dir(fuzz.join(dir).join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_file() {
                let bytes = std::fs::read(&path).unwrap();
                files.push((path, bytes));
            }
        }
    }
    files.sort();
    files
}

fn replay(target: &str, check: fn(&[u8])) {
    let inputs = inputs(target);
    assert!(
        inputs.len() >= 5,
        "the {target} corpus is missing ({} files)",
        inputs.len()
    );
    for (path, bytes) in inputs {
        let result = std::panic::catch_unwind(|| check(&bytes));
        assert!(result.is_ok(), "{target} fails on {}", path.display());
    }
}

#[test]
fn http_request_corpus() {
    replay("http_request", http_request::check);
}

#[test]
fn http_chunked_corpus() {
    replay("http_chunked", http_chunked::check);
}

#[test]
fn proxy_headers_corpus() {
    replay("proxy_headers", proxy_headers::check);
}
