//! Fuzz target `pool_ops`: see `../checks/pool_ops.rs` for the properties checked.
#![no_main]

#[path = "../checks/pool_ops.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check(data));
