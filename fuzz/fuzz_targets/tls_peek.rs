#![no_main]
//! See tests/fuzz/checks.rs, `tls_peek`.

#[path = "../../tests/fuzz/checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::tls_peek(data));
