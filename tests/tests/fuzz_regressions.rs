//! Replays every input a fuzz target once failed on (`fuzz/regressions/TARGET/`) through the
//! code that target runs (`fuzz/src/lib.rs`, included here): each must now return normally.
//! Before the fixes of issue 24 these panicked (a syntax error inside a tokenizer's `decoder`, a
//! `Strip` decoder, a bad `Precompiled` normalizer, a shape product overflowing, a config asking
//! for 2^64 - 1 layers) or aborted on a huge allocation (a trace tensor `[4, 10^12, 0, 0]`).

use std::path::Path;

use anyhow::{Result, anyhow, ensure};

#[path = "../../fuzz/src/lib.rs"]
#[allow(dead_code)]
mod targets;

/// Runs `run` on every file of `fuzz/regressions/target/`; the number of files.
fn replay(target: &str, run: fn(&[u8])) -> Result<usize> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("fuzz").join("regressions").join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        let bytes = std::fs::read(&path)?;
        std::panic::catch_unwind(|| run(&bytes)).map_err(|_| anyhow!("{} panicked", path.display()))?;
        n += 1;
    }
    Ok(n)
}

#[test]
fn inputs_that_once_failed_are_handled() -> Result<()> {
    let targets: [(&str, fn(&[u8])); 4] = [
        ("safetensors", targets::safetensors),
        ("tokenizer_json", targets::tokenizer_json),
        ("config_json", targets::config_json),
        ("trace_bundle", targets::trace_bundle),
    ];
    for (name, run) in targets {
        ensure!(replay(name, run)? > 0, "fuzz/regressions/{name} is empty");
    }
    Ok(())
}
