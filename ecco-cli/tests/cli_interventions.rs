//! `--ablate`, `--steer`, `ecco steering-vector` and `ecco patch` from the command line: the
//! trace records what was applied, the patching JSON has the contract's shape, and bad input
//! is a one-line error with nothing written.

use anyhow::{Result, ensure};

mod common;
use common::{fails, fixture, ok, read_json, s};

#[test]
fn steering_and_ablation_change_generation_and_are_recorded() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let model = fixture("gpt2-deep");
    let vector = tmp.path().join("v.safetensors");
    ok(&[
        "steering-vector",
        "--model",
        s(&model),
        "--positive",
        "the cat is happy",
        "--negative",
        "the cat is sad",
        "--hook",
        "blocks.4.resid_post",
        "--out",
        s(&vector),
    ])?;
    let plain = tmp.path().join("plain");
    ok(&["generate", "--model", s(&model), "--prompt", "the cat sat", "--max-new-tokens", "3", "--out", s(&plain)])?;
    let steered = tmp.path().join("steered");
    let steer = format!("blocks.4.resid_post:{}:8", s(&vector));
    ok(&[
        "generate",
        "--model",
        s(&model),
        "--prompt",
        "the cat sat",
        "--max-new-tokens",
        "3",
        "--steer",
        &steer,
        "--ablate",
        "blocks.1.attn.z:h2",
        "--ablation",
        "mean",
        "--out",
        s(&steered),
    ])?;
    let (plain, steered) = (read_json(&plain.join("trace.json"))?, read_json(&steered.join("trace.json"))?);
    ensure!(plain.get("interventions").is_none(), "an unchanged run records interventions");
    ensure!(plain["tokens"] != steered["tokens"], "steering by 8 changed no generated token");
    let applied = &steered["interventions"];
    ensure!(applied[0]["kind"] == "ablate" && applied[0]["mode"] == "mean" && applied[0]["heads"][0] == 2, "{applied}");
    ensure!(applied[1]["kind"] == "steer" && applied[1]["hook"] == "blocks.4.resid_post" && applied[1]["scale"] == 8.0, "{applied}");
    Ok(())
}

#[test]
fn patch_prints_the_contract_json() -> Result<()> {
    let model = fixture("gpt2-deep");
    let out = ok(&[
        "patch",
        "--model",
        s(&model),
        "--clean",
        "the cat sat on the mat",
        "--corrupted",
        "the cat sat on the dog",
        "--target",
        "5",
        "--foil",
        "6",
        "--hook",
        "blocks.*.resid_pre",
        "--json",
    ])?;
    let grid: serde_json::Value = serde_json::from_str(&out)?;
    ensure!(grid["metric"] == "logit_diff" && grid["hook"] == "blocks.*.resid_pre", "{grid}");
    let n = grid["positions"].as_array().map_or(0, Vec::len);
    let effects = grid["effects"].as_array().cloned().unwrap_or_default();
    ensure!(effects.len() == 12 && effects.iter().all(|r| r.as_array().map_or(0, Vec::len) == n), "{grid}");
    // Layer 0's residual stream at a position is that token's embedding (and position): where
    // the two texts share the token, patching it changes nothing.
    let (clean, corrupted) =
        (grid["positions"].as_array().cloned().unwrap_or_default(), grid["corrupted_positions"].as_array().cloned().unwrap_or_default());
    let row = effects[0].as_array().cloned().unwrap_or_default();
    ensure!(clean.len() == row.len() && clean.iter().zip(&corrupted).any(|(a, b)| a != b), "{grid}");
    // Patched copies run in a batch of another size than the corrupted run: equal up to
    // rounding.
    let tol = 1e-5 * grid["corrupted"].as_f64().unwrap_or(f64::NAN).abs().max(1.0);
    let mut moved = false;
    for ((a, b), e) in clean.iter().zip(&corrupted).zip(&row) {
        let e = e.as_f64().unwrap_or(f64::NAN);
        ensure!(a != b || e.abs() <= tol, "layer 0 at the shared token {a}: effect {e}");
        moved |= a != b && e.abs() > tol;
    }
    ensure!(moved, "patching the differing tokens at layer 0 moved nothing: {grid}");
    let heads = ok(&[
        "patch",
        "--model",
        s(&model),
        "--clean",
        "the cat sat on the mat",
        "--corrupted",
        "the cat sat on the dog",
        "--target",
        "5",
        "--hook",
        "blocks.*.attn.z",
        "--method",
        "attribution",
        "--json",
    ])?;
    let heads: serde_json::Value = serde_json::from_str(&heads)?;
    ensure!(heads["heads"].as_array().map_or(0, Vec::len) == 4 && heads["method"] == "attribution", "{heads}");
    Ok(())
}

#[test]
fn bad_interventions_are_one_line_errors_and_write_nothing() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let model = fixture("gpt2-deep");
    let out = tmp.path().join("never");
    let run = |flag: &str, value: &str, needle: &str| -> Result<()> {
        fails(&["generate", "--model", s(&model), "--prompt", "the cat", "--max-new-tokens", "2", flag, value, "--out", s(&out)], needle)?;
        ensure!(!out.exists(), "output written after a failure: {flag} {value}");
        Ok(())
    };
    run("--ablate", "blocks.99.mlp.post", "blocks.99.mlp.post")?;
    run("--ablate", "blocks.1.mlp.post:5000", "neuron 5000")?;
    run("--ablate", "blocks.1.attn.z:h9", "head 9")?;
    run("--ablate", "blocks.1.attn.z:3", "heads")?;
    let two = tmp.path().join("two.safetensors");
    let bundle = tmp.path().join("bundle");
    ok(&["forward", "--model", s(&model), "--text", "the cat", "--capture", "blocks.0.resid_pre,blocks.1.resid_pre", "--out", s(&bundle)])?;
    std::fs::copy(bundle.join("tensors.safetensors"), &two)?;
    run("--steer", &format!("blocks.1.resid_post:{}", s(&two)), "exactly one")?;
    let narrow = tmp.path().join("narrow.safetensors");
    ok(&[
        "steering-vector",
        "--model",
        s(&fixture("gpt2-bpe")),
        "--positive",
        "a",
        "--negative",
        "b",
        "--hook",
        "blocks.0.resid_post",
        "--out",
        s(&narrow),
    ])?;
    run("--steer", &format!("blocks.1.resid_post:{}", s(&narrow)), "16 values")?;
    let patch = |clean: &str, corrupted: &str, target: &str, hook: &str, needle: &str| {
        fails(&["patch", "--model", s(&model), "--clean", clean, "--corrupted", corrupted, "--target", target, "--hook", hook], needle)
    };
    patch("the cat sat on the mat", "the cat sat on the rug", "5", "blocks.*.resid_pre", "same token length")?;
    patch("the cat sat on the mat", "the cat sat on the dog", "the cat", "blocks.*.resid_pre", "not a single token")?;
    patch("the cat sat on the mat", "the cat sat on the dog", "5", "blocks.*.attn.pattern", "cannot patch")?;
    patch("the cat sat on the mat", "the cat sat on the dog", "5", "blocks.40.resid_pre", "blocks.40.resid_pre")?;
    Ok(())
}
