//! Fuzz target `config_json`: see `ecco_fuzz::config_json`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ecco_fuzz::config_json(data));
