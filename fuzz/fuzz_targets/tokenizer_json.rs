//! Fuzz target `tokenizer_json`: see `ecco_fuzz::tokenizer_json`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ecco_fuzz::tokenizer_json(data));
