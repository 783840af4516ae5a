//! Fuzz target `image_json`: see `berth_fuzz::image_json`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| berth_fuzz::image_json(data));
