//! Fuzz target `pickle`: see `ecco_fuzz::pickle`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ecco_fuzz::pickle(data));
