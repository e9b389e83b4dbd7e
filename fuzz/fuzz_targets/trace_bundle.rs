//! Fuzz target `trace_bundle`: see `ecco_fuzz::trace_bundle`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ecco_fuzz::trace_bundle(data));
