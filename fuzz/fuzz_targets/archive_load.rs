//! Fuzz target `archive_load`: see `berth_fuzz::archive_load`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| berth_fuzz::archive_load(data));
