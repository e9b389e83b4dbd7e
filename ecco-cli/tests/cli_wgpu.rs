//! `ecco generate --device wgpu` (build with `--features wgpu`): the trace records the backend
//! and holds the CPU's tokens and numbers; a machine with no adapter gets a one-line error.
//! Needs a wgpu adapter: a GPU, or a software Vulkan driver (Debian's mesa-vulkan-drivers).
#![cfg(feature = "wgpu")]

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, ensure};

mod common;
use common::{fixture, ok, read_json, s};

/// What a GPU device must match the CPU to (issue 7).
const TOLERANCE: f32 = 1e-3;

fn generate(device: &str, out: &Path) -> Result<serde_json::Value> {
    let model = fixture("gpt2-deep");
    ok(&[
        "generate",
        "--model",
        s(&model),
        "--prompt",
        "The capital of France is",
        "--max-new-tokens",
        "4",
        "--activations",
        "--hidden-states",
        "--attention",
        "--attribution",
        "grad_x_input",
        "--device",
        device,
        "--out",
        s(out),
    ])?;
    read_json(&out.join("trace.json"))
}

#[test]
fn generate_on_wgpu_records_the_backend_and_the_cpu_numbers() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let (gpu_dir, cpu_dir) = (tmp.path().join("wgpu"), tmp.path().join("flex"));
    let gpu = generate("wgpu", &gpu_dir)?;
    let cpu = generate("flex", &cpu_dir)?;
    ensure!(gpu["backend"] == "wgpu" && cpu["backend"] == "flex", "backends {} / {}", gpu["backend"], cpu["backend"]);
    ensure!(gpu["token_ids"] == cpu["token_ids"], "tokens {} != flex {}", gpu["token_ids"], cpu["token_ids"]);
    let lists = |t: &serde_json::Value| -> Result<Vec<f64>> {
        let lists = t["attributions"]["grad_x_input"].as_array().context("grad_x_input")?;
        Ok(lists.iter().flat_map(|l| l.as_array().cloned().unwrap_or_default()).filter_map(|v| v.as_f64()).collect())
    };
    let (a, b) = (lists(&gpu)?, lists(&cpu)?);
    ensure!(a.len() == b.len() && !a.is_empty());
    let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
    ensure!(worst <= f64::from(TOLERANCE), "grad_x_input differs from flex by {worst:e}");
    let gpu_t = ecco_core::SafetensorsReader::open(gpu_dir.join("tensors.safetensors"))?;
    let cpu_t = ecco_core::SafetensorsReader::open(cpu_dir.join("tensors.safetensors"))?;
    for key in ["hidden_states.decoder", "activations.decoder", "attention.decoder"] {
        let (x, y) = (gpu_t.read_f32(key)?, cpu_t.read_f32(key)?);
        ensure!(x.shape == y.shape, "{key}: shape {:?} != {:?}", x.shape, y.shape);
        let scale = y.data.iter().fold(0f32, |m, v| m.max(v.abs()));
        let worst = x.data.iter().zip(&y.data).map(|(p, q)| (p - q).abs()).fold(0f32, f32::max);
        ensure!(worst <= TOLERANCE * scale, "{key}: differs from flex by {worst:e} (scale {scale:e})");
    }
    Ok(())
}

/// With the Vulkan loader pointed at no driver and no other graphics API to fall back on,
/// `--device wgpu` is a one-line error naming the device, not a panic.
#[test]
fn wgpu_without_an_adapter_is_a_one_line_error() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let out = tmp.path().join("trace");
    let model = fixture("gpt2-deep");
    let missing = tmp.path().join("none.json");
    let run = Command::new(env!("CARGO_BIN_EXE_ecco"))
        .args(["generate", "--model", s(&model), "--prompt", "Hi", "--max-new-tokens", "1", "--device", "wgpu", "--out", s(&out)])
        // Vulkan (old and new loader variables), EGL (OpenGL): no driver files.
        .env("VK_ICD_FILENAMES", &missing)
        .env("VK_DRIVER_FILES", &missing)
        .env("__EGL_VENDOR_LIBRARY_FILENAMES", &missing)
        .output()?;
    let err = String::from_utf8_lossy(&run.stderr);
    ensure!(!run.status.success(), "succeeded without a driver: {err}");
    ensure!(err.starts_with("error: ") && err.trim_end().lines().count() == 1, "not a one-line error: {err:?}");
    ensure!(!err.contains("panicked"), "panic: {err}");
    ensure!(err.contains("device `wgpu` cannot be opened"), "error {err:?} does not name the device");
    ensure!(!out.exists(), "half-written output left behind");
    Ok(())
}
