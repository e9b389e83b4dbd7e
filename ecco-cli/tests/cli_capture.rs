//! `--capture PATTERNS`: hook points stored under their own names, with the contract's shapes,
//! holding exactly what the old shorthands hold in their layouts.

use anyhow::{Result, ensure};

mod common;
use common::{fails, fixture, ok, read_json, s};

#[test]
fn forward_capture_gives_the_shorthands_tensors_under_hook_names() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let out = tmp.path().join("trace");
    let model = fixture("gpt2-deep");
    ok(&[
        "forward",
        "--model",
        s(&model),
        "--text",
        "The capital of France is Paris.",
        "--activations",
        "--hidden-states",
        "--capture",
        "blocks.*.mlp.post,blocks.*.resid_post,final_norm",
        "--out",
        s(&out),
    ])?;
    let trace = read_json(&out.join("trace.json"))?;
    let layers = trace["model"]["n_layers"].as_u64().unwrap_or_default() as usize;
    ensure!(layers > 1);
    let reader = ecco_core::SafetensorsReader::open(out.join("tensors.safetensors"))?;
    let activations = reader.read_f32("activations.decoder")?;
    let hidden = reader.read_f32("hidden_states.decoder")?;
    let [_, neurons, positions] = activations.shape[..] else { anyhow::bail!("activations of shape {:?}", activations.shape) };
    let width = hidden.shape[2];
    for i in 0..layers {
        // `blocks.{i}.mlp.post` is `activations.decoder[i]` transposed, bit for bit.
        let post = reader.read_f32(&format!("blocks.{i}.mlp.post"))?;
        ensure!(post.shape == [positions, neurons], "blocks.{i}.mlp.post: shape {:?}", post.shape);
        for p in 0..positions {
            for n in 0..neurons {
                ensure!(
                    post.data[p * neurons + n] == activations.data[(i * neurons + n) * positions + p],
                    "blocks.{i}.mlp.post differs at {p}, {n}"
                );
            }
        }
        // `blocks.{i}.resid_post` is `hidden_states.decoder[i + 1]`, but for the last block,
        // whose hidden state Hugging Face records after the final norm.
        let resid = reader.read_f32(&format!("blocks.{i}.resid_post"))?;
        ensure!(resid.shape == [positions, width], "blocks.{i}.resid_post: shape {:?}", resid.shape);
        let row = &hidden.data[(i + 1) * positions * width..(i + 2) * positions * width];
        ensure!((resid.data == row) == (i + 1 < layers), "blocks.{i}.resid_post against hidden_states.decoder[{}]", i + 1);
    }
    let last = &hidden.data[layers * positions * width..];
    ensure!(reader.read_f32("final_norm")?.data == last, "final_norm is not hidden_states.decoder[{layers}]");
    ensure!(reader.entries().len() == 2 + 2 * layers + 1, "unexpected tensors: {:?}", reader.entries().keys());
    Ok(())
}

#[test]
fn generate_captures_both_stacks_of_t5_by_name() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let out = tmp.path().join("trace");
    ok(&[
        "generate",
        "--model",
        s(&fixture("t5-gated")),
        "--prompt",
        "translate English to German: The house is wonderful.",
        "--max-new-tokens",
        "3",
        "--capture",
        "encoder.blocks.*.attn.pattern,decoder.blocks.0.cross_attn.pattern,decoder.blocks.2.attn.z",
        "--out",
        s(&out),
    ])?;
    let reader = ecco_core::SafetensorsReader::open(out.join("tensors.safetensors"))?;
    let trace = read_json(&out.join("trace.json"))?;
    let n_input = trace["n_input_tokens"].as_u64().unwrap_or_default() as usize;
    let n_decoder = trace["tokens"].as_array().map_or(0, Vec::len) - n_input - 1;
    let heads = reader.read_f32("encoder.blocks.1.attn.pattern")?.shape[0];
    ensure!(reader.read_f32("encoder.blocks.0.attn.pattern")?.shape == [heads, n_input, n_input]);
    ensure!(reader.read_f32("decoder.blocks.0.cross_attn.pattern")?.shape == [heads, n_decoder, n_input]);
    ensure!(reader.read_f32("decoder.blocks.2.attn.z")?.shape[..2] == [n_decoder, heads]);
    ensure!(reader.entries().len() == 4, "unexpected tensors: {:?}", reader.entries().keys());
    Ok(())
}

#[test]
fn unknown_hooks_are_one_line_errors_listing_the_valid_ones() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let out = tmp.path().join("trace");
    let model = fixture("gpt2-bpe");
    let run =
        |capture: &str| ["forward", "--model", s(&model), "--text", "Hello", "--capture", capture, "--out", s(&out)].map(str::to_owned);
    for (capture, needle) in [
        ("blocks.*.mlp.pre", "unknown hook `blocks.*.mlp.pre` (valid: embed, blocks.{i}.resid_pre"),
        ("blocks.7.mlp.post", "unknown hook `blocks.7.mlp.post` (valid: embed, blocks.{0..1}.resid_pre"),
        ("decoder.embed", "unknown hook `decoder.embed`"),
        ("embed,,final_norm", "unknown hook ``"),
    ] {
        let args = run(capture);
        fails(&args.iter().map(String::as_str).collect::<Vec<_>>(), needle)?;
        ensure!(!out.exists(), "{capture}: output written");
    }
    Ok(())
}
