//! Fuzz target `layer_apply`: see `berth_fuzz::layer_apply`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| berth_fuzz::layer_apply(data));
