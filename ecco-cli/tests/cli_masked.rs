//! The `ecco` binary on masked LMs (BERT family): `forward` with captures, mask predictions and
//! their attributions, the lens at the mask position, and one-line errors.

use anyhow::{Context, Result, ensure};

mod common;
use common::{fails, fixture, ok, read_json, s};

fn f32s(v: &serde_json::Value) -> Vec<f32> {
    v.as_array().map(|a| a.iter().filter_map(serde_json::Value::as_f64).map(|x| x as f32).collect()).unwrap_or_default()
}

#[test]
fn forward_on_a_masked_lm_predicts_attributes_and_the_lens_reads_it() -> Result<()> {
    for name in ["bert-wordpiece", "roberta-bpe"] {
        let model = fixture(name);
        let reference = read_json(&model.join("reference.json"))?;
        let case = &reference["cases"][0];
        let text = case["text"].as_str().context("text")?;
        let tmp = tempfile::tempdir()?;
        let out = tmp.path().join("trace");
        ok(&[
            "forward",
            "--model",
            s(&model),
            "--text",
            text,
            "--activations",
            "--hidden-states",
            "--attention",
            "--attribution",
            "grad_x_input,gradient",
            "--mask-topk",
            "5",
            "--out",
            s(&out),
        ])?;
        let trace = read_json(&out.join("trace.json"))?;
        ensure!(trace["model"]["model_type"] == "mlm" && trace["token_ids"] == case["input_ids"], "{name}: {trace}");
        let mask = case["mask_position"].as_u64().context("mask_position")?;
        let preds = &trace["masked_predictions"][0];
        ensure!(preds["position"] == mask && preds["predictions"][0]["token_id"] == case["predicted_id"], "{name}: {preds}");
        ensure!(preds["predictions"].as_array().map(Vec::len) == Some(5));
        for key in ["grad_x_input", "gradient"] {
            let ours = f32s(&trace["attributions"][key][0]);
            let theirs = f32s(&case["attributions"][key]);
            ensure!(!theirs.is_empty() && ours.len() == theirs.len(), "{name} {key}: {} values", ours.len());
            let worst = ours.iter().zip(&theirs).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            ensure!(worst < 2e-3, "{name} {key}: off by {worst}");
        }
        let tensors = std::fs::read(out.join("tensors.safetensors"))?;
        let header = String::from_utf8_lossy(&tensors[..tensors.len().min(4096)]).into_owned();
        for t in ["activations.encoder", "hidden_states.encoder", "attention.encoder"] {
            ensure!(header.contains(t), "{name}: no {t}");
        }
        // The lens at the mask token itself.
        let position = mask.to_string();
        let lens = ok(&["layer-predictions", "--model", s(&model), "--trace", s(&out), "--position", &position, "--topk", "5", "--json"])?;
        let lens: serde_json::Value = serde_json::from_str(&lens)?;
        let layers = case["layer_predictions"].as_array().context("layer_predictions")?;
        ensure!(lens.as_array().map(Vec::len) == Some(layers.len()));
        for (l, (ours, theirs)) in lens.as_array().into_iter().flatten().zip(layers).enumerate() {
            ensure!(ours[0]["token_id"] == theirs["top"][0]["token_id"], "{name} layer {l}: {ours} vs {theirs}");
        }
        fails(&["rankings", "--model", s(&model), "--trace", s(&out), "--json"], "rankings-watch")?;
        // The report's lens view defaults to the mask token and reads it the same way.
        let report: serde_json::Value =
            serde_json::from_str(&ok(&["report", "--model", s(&model), "--trace", s(&out), "--components", "0", "--json"])?)?;
        ensure!(report["attributions"][0]["first_target"] == mask, "{name}: {}", report["attributions"]);
        let view = &report["layer_predictions"];
        ensure!(view["position"] == mask, "{name}: report lens at {}", view["position"]);
        let tops = view["predictions"].as_array().context("report predictions")?;
        ensure!(tops.len() == layers.len(), "{name}: {} report layers", tops.len());
        for (l, (ours, theirs)) in tops.iter().zip(layers).enumerate() {
            ensure!(ours[0]["token_id"] == theirs["top"][0]["token_id"], "{name} report layer {l}: {ours} vs {theirs}");
        }
    }
    Ok(())
}

#[test]
fn masked_lm_bad_input_gives_one_line_errors() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let out = tmp.path().join("trace");
    let bert = fixture("bert-wordpiece");
    fails(&["generate", "--model", s(&bert), "--prompt", "the cat", "--max-new-tokens", "2", "--out", s(&out)], "use `ecco forward`")?;
    fails(&["forward", "--model", s(&bert), "--text", "the cat sat", "--attribution", "grad_x_input", "--out", s(&out)], "[MASK]")?;
    fails(&["forward", "--model", s(&bert), "--text", "the [MASK] sat", "--attribution", "rollout", "--out", s(&out)], "causal")?;
    ensure!(!out.exists(), "an error left output behind");

    // An architecture we do not implement: the error lists the supported ones.
    let unsupported = tmp.path().join("unsupported");
    std::fs::create_dir(&unsupported)?;
    std::fs::write(unsupported.join("config.json"), r#"{"model_type": "mamba"}"#)?;
    std::fs::copy(bert.join("tokenizer.json"), unsupported.join("tokenizer.json"))?;
    fails(&["forward", "--model", s(&unsupported), "--text", "hi", "--out", s(&out)], "supported: gpt2, bert, roberta, distilbert")?;

    // A tokenizer with more entries than the model's vocabulary.
    let mixed = tmp.path().join("mixed");
    std::fs::create_dir(&mixed)?;
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(bert.join(f), mixed.join(f))?;
    }
    std::fs::copy(fixture("roberta-bpe").join("tokenizer.json"), mixed.join("tokenizer.json"))?;
    fails(&["forward", "--model", s(&mixed), "--text", "hi", "--out", s(&out)], "vocabulary")?;
    ensure!(!out.exists(), "an error left output behind");
    Ok(())
}
