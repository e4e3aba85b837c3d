#![no_main]
//! See tests/fuzz/checks.rs, `wal_frames`.

#[path = "../../tests/fuzz/checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::wal_frames(data));
