//! Fuzz target `safetensors`: see `ecco_fuzz::safetensors`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ecco_fuzz::safetensors(data));
