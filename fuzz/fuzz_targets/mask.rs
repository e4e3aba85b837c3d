#![no_main]
//! See tests/fuzz/checks.rs, `mask`.

#[path = "../../tests/fuzz/checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(init: checks::init_mask(), |data: &[u8]| checks::mask(data));
