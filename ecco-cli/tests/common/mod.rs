//! Helpers shared by the CLI tests: run the `ecco` binary, expect success or a one-line error.
// Each test binary uses its own subset.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{Context, Result, ensure};

/// A committed fixture directory.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join("fixtures").join(name)
}

/// Runs the `ecco` binary.
pub fn ecco(args: &[&str]) -> Result<Output> {
    Ok(Command::new(env!("CARGO_BIN_EXE_ecco")).args(args).output()?)
}

/// A path as `&str` for an argument list.
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap_or_default()
}

/// Runs and expects success; returns stdout.
pub fn ok(args: &[&str]) -> Result<String> {
    let out = ecco(args)?;
    ensure!(out.status.success(), "ecco {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    Ok(String::from_utf8(out.stdout)?)
}

/// Runs and expects a one-line error containing `needle`, no panic and no backtrace.
pub fn fails(args: &[&str], needle: &str) -> Result<()> {
    let out = ecco(args)?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(!out.status.success(), "ecco {args:?} succeeded");
    ensure!(err.starts_with("error: ") && err.trim_end().lines().count() == 1, "not a one-line error: {err:?}");
    ensure!(!err.contains("panicked") && !err.contains("RUST_BACKTRACE"), "panic: {err}");
    ensure!(err.contains(needle), "error {err:?} does not mention {needle:?}");
    Ok(())
}

/// Reads and parses a JSON file.
pub fn read_json(path: &Path) -> Result<serde_json::Value> {
    Ok(serde_json::from_str(&std::fs::read_to_string(path).with_context(|| path.display().to_string())?)?)
}
