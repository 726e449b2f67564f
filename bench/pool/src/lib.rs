//! The pool benchmark (`benches/pool.rs`): `recycle_pool::Pool` beside the ways people
//! pool objects today, and beside its peer crates with `--features comparisons`.
//!
//! A workspace member that is never published, so that the benchmark-only peer crates
//! stay out of the library's manifest. Run it with `bench/pool-peers.sh`, or
//! `cargo bench -p pool-bench --features comparisons`. This library target is empty:
//! cargo needs one target besides the bench.
