//! Fuzz target `http_chunked`: see `../checks/http_chunked.rs` for the properties checked.
#![no_main]

#[path = "../checks/http_chunked.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check(data));
