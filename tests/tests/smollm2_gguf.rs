//! The real SmolLM2-135M-Instruct GGUF (Q4_1, llama architecture, byte-level BPE) read with our
//! GGUF reader, against what gguf-py and `transformers` read from the same file
//! (`scripts/fixtures/decoders.py smollm2`, committed in `fixtures/smollm2/reference.json`):
//! metadata, every tensor's dequantized values, the q/k rows un-permuted, the configuration and
//! the tokenizer.
//!
//! The file itself (98 MB) is not committed: `scripts/fetch_smollm2.sh` puts it in
//! `$ECCO_SMOLLM2_DIR` (default `~/.cache/ecco-rs/smollm2`). Without it this test fails, naming the
//! script, unless `ECCO_SKIP_SMOLLM2=1`.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use common::fixture_dir;
use ecco_models::gguf::{self, GgufTokenizer, Value};
use ecco_models::llama::{DecoderConfig, Family};
use ecco_models::nn::rotary::RopeScaling;
use serde::Deserialize;
use serde_json::Value as Json;

const FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

#[derive(Deserialize)]
struct TensorRef {
    name: String,
    #[serde(rename = "type")]
    ggml_type: String,
    dims: Vec<u64>,
    sum: f64,
    sum_squares: f64,
    first: Vec<f32>,
}

#[derive(Deserialize)]
struct Tokenization {
    text: String,
    ids: Vec<u32>,
}

#[derive(Deserialize)]
struct Reference {
    version: u32,
    alignment: u64,
    data_offset: u64,
    metadata: BTreeMap<String, Json>,
    n_tokens: usize,
    n_merges: usize,
    tensors: Vec<TensorRef>,
    config: BTreeMap<String, f64>,
    q_proj_0_row_sums: Vec<f64>,
    k_proj_0_row_sums: Vec<f64>,
    tokenization: Vec<Tokenization>,
    prompt: String,
    prompt_ids: Vec<u32>,
    paris_id: u32,
}

fn checkpoint() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("ECCO_SMOLLM2_DIR") {
        return Some(PathBuf::from(dir).join(FILE));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache/ecco-rs/smollm2").join(FILE))
}

/// A metadata value as gguf-py's `contents()` gives it, in JSON.
fn same(ours: &Value, theirs: &Json) -> bool {
    match (ours, theirs) {
        (Value::String(a), Json::String(b)) => a == b,
        (Value::Bool(a), Json::Bool(b)) => a == b,
        (Value::F32(a), Json::Number(b)) => b.as_f64() == Some(f64::from(*a)),
        (Value::Array(a), Json::Array(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y)),
        (v, Json::Number(b)) => v.as_u64().is_some_and(|v| b.as_u64() == Some(v)),
        _ => false,
    }
}

fn relative(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-12)
}

#[test]
fn smollm2_gguf_reads_as_gguf_py_and_transformers_read_it() -> Result<()> {
    let path = checkpoint().context("neither ECCO_SMOLLM2_DIR nor HOME is set")?;
    if !path.is_file() {
        if std::env::var("ECCO_SKIP_SMOLLM2").as_deref() == Ok("1") {
            eprintln!("skipping: no {} (ECCO_SKIP_SMOLLM2=1)", path.display());
            return Ok(());
        }
        bail!("no {}: run scripts/fetch_smollm2.sh (or set ECCO_SKIP_SMOLLM2=1)", path.display());
    }
    let reference: Reference = serde_json::from_str(&std::fs::read_to_string(fixture_dir("smollm2").join("reference.json"))?)?;

    let start = Instant::now();
    let file = gguf::open(&path)?;
    let opened = start.elapsed();
    ensure!(file.version() == reference.version && file.alignment() == reference.alignment && file.data_start() == reference.data_offset);
    for (key, theirs) in &reference.metadata {
        let ours = file.get(key).with_context(|| format!("metadata key {key} missing"))?;
        ensure!(same(ours, theirs), "{key}: ours {ours:?}, gguf-py {theirs}");
    }
    ensure!(file.get_array("tokenizer.ggml.tokens").map_err(|e| file.error(e))?.len() == reference.n_tokens);
    ensure!(file.get_array("tokenizer.ggml.merges").map_err(|e| file.error(e))?.len() == reference.n_merges);

    // Every tensor: type, dimensions and dequantized values (all of them, timed).
    ensure!(file.tensors().len() == reference.tensors.len());
    let start = Instant::now();
    let mut values = BTreeMap::new();
    for (info, theirs) in file.tensors().iter().zip(&reference.tensors) {
        ensure!(info.name == theirs.name && info.ggml_type.name() == theirs.ggml_type && info.dims == theirs.dims, "{}", info.name);
        values.insert(info.name.clone(), file.dequantize_info(info).map_err(|e| file.error(e))?);
    }
    let dequantized = start.elapsed();
    for theirs in &reference.tensors {
        let ours = &values[&theirs.name];
        ensure!(ours[..theirs.first.len()] == theirs.first[..], "{}: first values {:?}", theirs.name, &ours[..8]);
        let sum: f64 = ours.iter().map(|&v| f64::from(v)).sum();
        let squares: f64 = ours.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
        ensure!(relative(sum, theirs.sum) < 1e-9 || (sum - theirs.sum).abs() < 1e-6, "{}: sum {sum} vs {}", theirs.name, theirs.sum);
        ensure!(relative(squares, theirs.sum_squares) < 1e-9, "{}: sum of squares {squares} vs {}", theirs.name, theirs.sum_squares);
    }
    eprintln!("smollm2: opened in {opened:.2?}, {} tensors dequantized in {dequantized:.2?}", values.len());

    // The configuration from the metadata.
    let config = DecoderConfig::from_gguf(&file).map_err(|e| file.error(e))?;
    let want = |k: &str| reference.config.get(k).copied().unwrap_or(f64::NAN);
    ensure!(config.family == Family::Llama);
    ensure!(config.num_layers as f64 == want("num_hidden_layers") && config.hidden_size as f64 == want("hidden_size"));
    ensure!(config.intermediate_size as f64 == want("intermediate_size") && config.vocab_size as f64 == want("vocab_size"));
    ensure!(config.num_heads as f64 == want("num_attention_heads") && config.num_kv_heads as f64 == want("num_key_value_heads"));
    ensure!(config.head_dim as f64 == want("head_dim") && config.max_position_embeddings as f64 == want("max_position_embeddings"));
    ensure!(relative(config.rms_norm_eps, want("rms_norm_eps")) < 1e-6 && config.rope.theta == want("rope_theta"));
    ensure!(config.rope.scaling == RopeScaling::None && config.rope.rotary_dim == config.head_dim);
    ensure!(config.tie_word_embeddings && !config.qkv_bias && !config.qk_norm && !config.norm_plus_one && config.sliding_window.is_none());
    ensure!(config.bos_token_id == Some(1) && config.eos_token_ids == [2]);

    // llama.cpp's q/k row order, undone: the rows transformers un-permutes.
    for (name, heads, sums) in [
        ("blk.0.attn_q.weight", config.num_heads, &reference.q_proj_0_row_sums),
        ("blk.0.attn_k.weight", config.num_kv_heads, &reference.k_proj_0_row_sums),
    ] {
        let shape = file.tensor(name).context(name)?.shape();
        let stored = &values[name];
        let rows = gguf::unpermute_rows(stored, shape[0], shape[1], heads).context("unpermute")?;
        let row_sum = |w: &[f32], r: usize| w[r * shape[1]..(r + 1) * shape[1]].iter().map(|&v| f64::from(v)).sum::<f64>();
        ensure!(sums.len() == shape[0]);
        for (r, want) in sums.iter().enumerate() {
            ensure!((row_sum(&rows, r) - want).abs() < 1e-9 * want.abs().max(1.0), "{name} row {r}");
        }
        ensure!((0..shape[0]).any(|r| (row_sum(stored, r) - sums[r]).abs() > 1e-3), "{name}: the stored order is permuted");
    }

    // The tokenizer, with no BOS: this file says add_bos_token = false.
    let tok = GgufTokenizer::from_gguf(&file).map_err(|e| file.error(e))?;
    ensure!(!tok.add_bos && tok.bos_token_id == Some(1) && tok.eos_token_ids == [2]);
    ensure!(tok.tokenizer.get_vocab_size(true) == config.vocab_size);
    for case in &reference.tokenization {
        let enc = tok.tokenizer.encode(case.text.as_str(), true).map_err(anyhow::Error::msg)?;
        ensure!(enc.get_ids() == case.ids, "{:?}: ours {:?}, transformers {:?}", case.text, enc.get_ids(), case.ids);
    }
    let prompt = tok.tokenizer.encode(reference.prompt.as_str(), true).map_err(anyhow::Error::msg)?;
    ensure!(prompt.get_ids() == reference.prompt_ids);
    ensure!(tok.tokenizer.token_to_id("ĠParis") == Some(reference.paris_id));
    Ok(())
}
