//! The `ecco` binary on T5 (an encoder-decoder): `generate` with captures of both stacks and
//! cross attention, greedy tokens as `transformers` gives them, attributions as captum gives them,
//! `forward`, and one-line errors.

use anyhow::{Context, Result, ensure};

mod common;
use common::{fails, fixture, ok, read_json, s};

fn u32s(v: &serde_json::Value) -> Vec<u32> {
    v.as_array().map(|a| a.iter().filter_map(serde_json::Value::as_u64).map(|x| x as u32).collect()).unwrap_or_default()
}

fn f32s(v: &serde_json::Value) -> Vec<f32> {
    v.as_array().map(|a| a.iter().filter_map(serde_json::Value::as_f64).map(|x| x as f32).collect()).unwrap_or_default()
}

/// Names and shapes in a safetensors header.
fn header(path: &std::path::Path) -> Result<serde_json::Value> {
    let bytes = std::fs::read(path)?;
    let len = u64::from_le_bytes(bytes.get(..8).context("short file")?.try_into()?) as usize;
    Ok(serde_json::from_slice(bytes.get(8..8 + len).context("short header")?)?)
}

#[test]
fn generate_on_t5_writes_both_stacks_and_cross_attention() -> Result<()> {
    for name in ["t5-relu", "t5-gated"] {
        let model = fixture(name);
        let reference = read_json(&model.join("reference.json"))?;
        let text = reference["text"].as_str().context("text")?;
        let tmp = tempfile::tempdir()?;
        let out = tmp.path().join("trace");
        ok(&[
            "generate",
            "--model",
            s(&model),
            "--prompt",
            text,
            "--max-new-tokens",
            "3",
            "--activations",
            "--hidden-states",
            "--attention",
            "--attribution",
            "grad_x_input",
            "--out",
            s(&out),
        ])?;
        let trace = read_json(&out.join("trace.json"))?;
        ensure!(trace["model"]["model_type"] == "enc-dec" && trace["model"]["family"] == "t5", "{name}: {}", trace["model"]);
        let input = u32s(&reference["input_ids"]);
        let generated = u32s(&reference["generated_ids"]);
        let mut expected = input.clone();
        expected.push(0);
        expected.extend(&generated[..3]);
        ensure!(u32s(&trace["token_ids"]) == expected, "{name}: token_ids {} vs {expected:?}", trace["token_ids"]);
        ensure!(trace["n_input_tokens"] == input.len(), "{name}: n_input_tokens {}", trace["n_input_tokens"]);
        // `output_text`: the generated text alone (decoder tokens after the start token, special
        // tokens skipped), as `tokenizer.decode(generated, skip_special_tokens=True)` gives it.
        ensure!(
            trace["output_text"] == reference["generated_texts"][2],
            "{name}: output_text {} vs {}",
            trace["output_text"],
            reference["generated_texts"][2]
        );
        let attr = trace["attributions"]["grad_x_input"].as_array().context("no attributions")?;
        ensure!(attr.len() == 3, "{name}: {} attribution lists", attr.len());
        for (k, list) in attr.iter().enumerate() {
            let ours = f32s(list);
            let theirs = f32s(&reference["attributions"]["grad_x_input"][k]);
            ensure!(ours.len() == input.len() + k + 1 && ours.len() == theirs.len(), "{name}[{k}]: {} values", ours.len());
            let worst = ours.iter().zip(&theirs).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            ensure!(worst < 1e-4, "{name}[{k}]: off by {worst}");
        }
        let h = header(&out.join("tensors.safetensors"))?;
        let (n_enc, n_dec) = (input.len(), 3);
        let config = read_json(&model.join("config.json"))?;
        let enc_layers = config["num_layers"].as_u64().context("num_layers")? as usize;
        let dec_layers = config["num_decoder_layers"].as_u64().context("num_decoder_layers")? as usize;
        let (heads, d_ff, d) = (4, 64, 32);
        for (t, shape) in [
            ("activations.encoder", vec![enc_layers, d_ff, n_enc]),
            ("activations.decoder", vec![dec_layers, d_ff, n_dec]),
            ("hidden_states.encoder", vec![enc_layers + 1, n_enc, d]),
            ("hidden_states.decoder", vec![dec_layers + 1, n_dec, d]),
            ("attention.encoder", vec![enc_layers, heads, n_enc, n_enc]),
            ("attention.decoder", vec![dec_layers, heads, n_dec, n_dec]),
            ("attention.cross", vec![dec_layers, heads, n_dec, n_enc]),
        ] {
            let found: Vec<usize> = h[t]["shape"]
                .as_array()
                .context(format!("{name}: no {t}"))?
                .iter()
                .filter_map(|v| v.as_u64())
                .map(|v| v as usize)
                .collect();
            ensure!(found == shape, "{name}: {t} has shape {found:?}, expected {shape:?}");
        }
        // The lens reads the decoder: at the last layer (after the final norm, as transformers
        // returns it) every greedy token ranks first, and the first prediction is the first token.
        let ranks: serde_json::Value = serde_json::from_str(&ok(&["rankings", "--model", s(&model), "--trace", s(&out), "--json"])?)?;
        let rows = ranks["rankings"].as_array().context("rankings")?;
        ensure!(rows.len() == dec_layers && rows[dec_layers - 1] == serde_json::json!([1, 1, 1]), "{name}: {ranks}");
        let first = (input.len() + 1).to_string();
        let preds: serde_json::Value = serde_json::from_str(&ok(&[
            "layer-predictions",
            "--model",
            s(&model),
            "--trace",
            s(&out),
            "--position",
            &first,
            "--topk",
            "1",
            "--json",
        ])?)?;
        ensure!(preds[dec_layers - 1][0]["token_id"] == generated[0], "{name}: {preds}");
        fails(&["layer-predictions", "--model", s(&model), "--trace", s(&out), "--position", "2", "--json"], "position 2")?;
        // NMF joins the encoder's and decoder's activations along the positions (as Ecco).
        let nmf: serde_json::Value = serde_json::from_str(&ok(&["nmf", "--trace", s(&out), "--components", "2", "--json"])?)?;
        let comps = nmf["components"].as_array().context("components")?;
        ensure!(comps.len() == 2 && comps[0].as_array().map(Vec::len) == Some(n_enc + n_dec), "{name}: nmf {}", nmf["components"]);
        let html = tmp.path().join("report.html");
        ok(&["report", "--model", s(&model), "--trace", s(&out), "--out", s(&html)])?;
        // `forward`: the encoder reads the text, the decoder its start token.
        let fwd = tmp.path().join("forward");
        ok(&["forward", "--model", s(&model), "--text", text, "--attention", "--activations", "--out", s(&fwd)])?;
        let trace = read_json(&fwd.join("trace.json"))?;
        let mut expected = input.clone();
        expected.push(0);
        ensure!(u32s(&trace["token_ids"]) == expected && trace["n_input_tokens"] == input.len(), "{name}: forward {trace}");
        ensure!(trace["output_text"] == "", "{name}: forward output_text {}", trace["output_text"]);
        let h = header(&fwd.join("tensors.safetensors"))?;
        ensure!(h.get("attention.cross").is_some() && h.get("activations.decoder").is_some(), "{name}: forward tensors {h}");
        // `forward --decoder-text`: the decoder reads its start token and the text's tokens.
        let fwd2 = tmp.path().join("forward2");
        let first_token = reference["generated_tokens"][0].as_str().context("generated_tokens")?.trim_start_matches('▁');
        ok(&["forward", "--model", s(&model), "--text", text, "--decoder-text", first_token, "--hidden-states", "--out", s(&fwd2)])?;
        let trace = read_json(&fwd2.join("trace.json"))?;
        let mut expected = input.clone();
        expected.extend([0, generated[0]]);
        ensure!(u32s(&trace["token_ids"]) == expected, "{name}: forward --decoder-text {}", trace["token_ids"]);
        ensure!(
            trace["output_text"] == reference["generated_texts"][0],
            "{name}: forward --decoder-text output_text {}",
            trace["output_text"]
        );
        let h = header(&fwd2.join("tensors.safetensors"))?;
        ensure!(h["hidden_states.decoder"]["shape"] == serde_json::json!([dec_layers + 1, 2, d]), "{name}: {h}");
        // Seeded sampling: the same seed gives the same tokens.
        let sampled = |dir: &str| -> Result<serde_json::Value> {
            let path = tmp.path().join(dir);
            ok(&[
                "generate",
                "--model",
                s(&model),
                "--prompt",
                text,
                "--max-new-tokens",
                "4",
                "--sample",
                "--seed",
                "7",
                "--top-k",
                "10",
                "--out",
                s(&path),
            ])?;
            Ok(read_json(&path.join("trace.json"))?["token_ids"].clone())
        };
        ensure!(sampled("s1")? == sampled("s2")?, "{name}: seeded sampling differs between runs");
    }
    Ok(())
}

#[test]
fn t5_bad_input_is_a_one_line_error() -> Result<()> {
    let model = fixture("t5-relu");
    let tmp = tempfile::tempdir()?;
    let out = |n: &str| tmp.path().join(n).to_string_lossy().into_owned();
    fails(
        &[
            "generate",
            "--model",
            s(&model),
            "--prompt",
            "The cat",
            "--max-new-tokens",
            "2",
            "--attribution",
            "occlusion",
            "--out",
            &out("a"),
        ],
        "occlusion",
    )?;
    fails(&["generate", "--model", s(&model), "--prompt", "The cat", "--max-new-tokens", "0", "--out", &out("b")], "max-new-tokens")?;
    fails(
        &[
            "generate",
            "--model",
            s(&model),
            "--prompt",
            "The cat",
            "--max-new-tokens",
            "2",
            "--activations",
            "--layers",
            "7",
            "--out",
            &out("c"),
        ],
        "layer 7",
    )?;
    fails(&["forward", "--model", s(&model), "--text", "The cat", "--attribution", "grad_x_input", "--out", &out("d")], "generate")?;
    // Broken checkpoints: an unknown FFN, an untied head the checkpoint lacks.
    for (key, value, needle) in [
        ("feed_forward_proj", serde_json::json!("fancy-gelu"), "feed_forward_proj"),
        ("tie_word_embeddings", serde_json::json!(false), "lm_head.weight"),
    ] {
        let dir = tmp.path().join(format!("broken-{key}"));
        std::fs::create_dir_all(&dir)?;
        for f in ["model.safetensors", "tokenizer.json"] {
            std::fs::copy(model.join(f), dir.join(f))?;
        }
        let mut config = read_json(&model.join("config.json"))?;
        config[key] = value;
        config.as_object_mut().context("config")?.remove("scale_decoder_outputs");
        std::fs::write(dir.join("config.json"), serde_json::to_string(&config)?)?;
        fails(
            &["generate", "--model", s(&dir), "--prompt", "The cat", "--max-new-tokens", "2", "--out", &out(&format!("x-{key}"))],
            needle,
        )?;
    }
    // `--layers` picks the same blocks of both stacks.
    let layered = tmp.path().join("layered");
    ok(&[
        "generate",
        "--model",
        s(&model),
        "--prompt",
        "The cat",
        "--max-new-tokens",
        "2",
        "--activations",
        "--layers",
        "1",
        "--out",
        s(&layered),
    ])?;
    let h = header(&layered.join("tensors.safetensors"))?;
    ensure!(h["activations.encoder"]["shape"][0] == 1 && h["activations.decoder"]["shape"][0] == 1, "{h}");
    ensure!(read_json(&layered.join("trace.json"))?["activation_layers"] == serde_json::json!([1]));
    fails(
        &["forward", "--model", s(&fixture("bert-wordpiece")), "--text", "The [MASK]", "--decoder-text", "x", "--out", &out("e")],
        "--decoder-text",
    )?;
    Ok(())
}
