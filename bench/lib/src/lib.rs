//! The library's io and status benchmarks (`benches/io.rs`, `benches/status.rs`).
//!
//! A workspace member that is never published, so that criterion stays out of the
//! library's dev-dependencies. Run them with `cargo bench -p lib-bench --bench io` and
//! `cargo bench -p lib-bench --bench status`. This library target is empty: cargo needs
//! one target besides the benches.
