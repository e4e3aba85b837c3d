#![no_main]
//! See tests/fuzz/checks.rs, `policy`.

#[path = "../../tests/fuzz/checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::policy(data));
