#![no_main]
//! See tests/fuzz/checks.rs, `json_doc`.

#[path = "../../tests/fuzz/checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::json_doc(data));
