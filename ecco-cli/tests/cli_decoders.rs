//! The `ecco` binary on the Llama-family decoders: greedy generation on a tiny fixture of each
//! family as `transformers` gives it, and the full pipeline (generate with `grad_x_input`,
//! activations and hidden states; the lens; NMF; the report) on the real SmolLM2-135M GGUF
//! (`scripts/fetch_smollm2.sh`; this test fails without it, naming the script, unless
//! `ECCO_SKIP_SMOLLM2=1`).

use std::path::PathBuf;

use anyhow::{Context, Result, bail, ensure};

mod common;
use common::{fails, fixture, ok, read_json, s};

fn u32s(v: &serde_json::Value) -> Vec<u32> {
    v.as_array().map(|a| a.iter().filter_map(serde_json::Value::as_u64).map(|x| x as u32).collect()).unwrap_or_default()
}

#[test]
fn generate_on_every_decoder_family_matches_transformers() -> Result<()> {
    for name in ["llama-tiny", "mistral-tiny", "qwen2-tiny", "gemma2-tiny", "gemma3-tiny"] {
        let model = fixture(name);
        let case = read_json(&model.join("reference.json"))?["case"].clone();
        let tmp = tempfile::tempdir()?;
        let out = tmp.path().join("trace");
        let prompt = case["prompt"].as_str().context("prompt")?;
        let n = case["max_new_tokens"].as_u64().context("max_new_tokens")?.to_string();
        ok(&[
            "generate",
            "--model",
            s(&model),
            "--prompt",
            prompt,
            "--max-new-tokens",
            &n,
            "--capture",
            "blocks.*.attn.k",
            "--out",
            s(&out),
        ])?;
        let trace = read_json(&out.join("trace.json"))?;
        let ids = u32s(&trace["token_ids"]);
        let want = u32s(&case["token_ids"]);
        // Generation stops early at an end-of-sequence id; the reference did not.
        ensure!(!ids.is_empty() && want.starts_with(&ids), "{name}: {ids:?} is not a prefix of {want:?}");
    }
    Ok(())
}

fn smollm2() -> Result<Option<PathBuf>> {
    let dir = match std::env::var_os("ECCO_SMOLLM2_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").context("neither ECCO_SMOLLM2_DIR nor HOME is set")?).join(".cache/ecco-rs/smollm2"),
    };
    let path = dir.join("SmolLM2-135M-Instruct.Q4_1.gguf");
    if path.is_file() {
        return Ok(Some(path));
    }
    if std::env::var("ECCO_SKIP_SMOLLM2").as_deref() == Ok("1") {
        eprintln!("skipping: no {} (ECCO_SKIP_SMOLLM2=1)", path.display());
        return Ok(None);
    }
    bail!("no {}: run scripts/fetch_smollm2.sh (or set ECCO_SKIP_SMOLLM2=1)", path.display())
}

#[test]
fn the_full_pipeline_runs_on_smollm2() -> Result<()> {
    let Some(model) = smollm2()? else { return Ok(()) };
    let tmp = tempfile::tempdir()?;
    let trace = tmp.path().join("trace");
    let prompt = "The capital of France is";
    let args = ["--prompt", prompt, "--max-new-tokens", "3", "--attribution", "grad_x_input", "--activations", "--hidden-states"];
    ok(&[&["generate", "--model", s(&model)][..], &args[..], &["--out", s(&trace)][..]].concat())?;
    let json = read_json(&trace.join("trace.json"))?;
    let text = json["output_text"].as_str().context("output_text")?;
    ensure!(text.starts_with("The capital of France is Paris"), "{text:?}");
    let attributions = json["attributions"]["grad_x_input"].as_array().context("grad_x_input")?;
    ensure!(attributions.len() == 3, "{} attribution lists", attributions.len());
    // The lens: " Paris" (position 5, predicted from " is") is the last layer's top prediction.
    let lp = ok(&["layer-predictions", "--model", s(&model), "--trace", s(&trace), "--position", "5", "--topk", "1", "--layer", "29"])?;
    ensure!(lp.contains("Paris"), "{lp}");
    ok(&["rankings", "--model", s(&model), "--trace", s(&trace)])?;
    ok(&["nmf", "--trace", s(&trace), "--components", "3"])?;
    let html = tmp.path().join("report.html");
    ok(&["report", "--trace", s(&trace), "--model", s(&model), "--out", s(&html)])?;
    ensure!(std::fs::metadata(&html)?.len() > 10_000, "report too small");
    // A directory holding one GGUF file loads the same way; with two, it is a one-line error.
    let dir = tmp.path().join("dir");
    std::fs::create_dir(&dir)?;
    std::os::unix::fs::symlink(&model, dir.join("a.gguf"))?;
    let one = ["generate", "--model", s(&dir), "--prompt", prompt, "--max-new-tokens", "1", "--out"];
    ok(&[&one[..], &[s(&tmp.path().join("t1"))][..]].concat())?;
    std::os::unix::fs::symlink(&model, dir.join("b.gguf"))?;
    fails(&[&one[..], &[s(&tmp.path().join("t2"))][..]].concat(), "2 .gguf files")
}

#[test]
fn an_unsupported_model_type_is_a_one_line_error_listing_the_supported() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    std::fs::write(tmp.path().join("config.json"), r#"{"model_type": "phi3"}"#)?;
    std::fs::copy(fixture("llama-tiny").join("tokenizer.json"), tmp.path().join("tokenizer.json"))?;
    let out = tmp.path().join("trace");
    fails(&["generate", "--model", s(tmp.path()), "--prompt", "Hi", "--max-new-tokens", "1", "--out", s(&out)], "gemma3_text")
}
