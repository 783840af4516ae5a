//! Fuzz target `flags`: see `berth_fuzz::flags`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| berth_fuzz::flags(data));
