//! Fuzz target `http_request`: see `../checks/http_request.rs` for the properties checked.
#![no_main]

#[path = "../checks/http_request.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check(data));
