#![no_main]
//! See tests/fuzz/checks.rs, `jsonrpc`.

#[path = "../../tests/fuzz/checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::jsonrpc(data));
