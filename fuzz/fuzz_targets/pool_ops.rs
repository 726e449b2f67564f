//! Fuzz target `pool_ops`: see `../../tests/checks/pool_ops.rs` for the properties checked.
#![no_main]

#[path = "../../tests/checks/pool_ops.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check(data));
