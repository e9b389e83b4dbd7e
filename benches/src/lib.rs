//! Shared set-up for the criterion benchmarks: a distilgpt2-sized GPT-2 checkpoint with random
//! weights (6 layers, width 768, 12 heads, vocabulary 50257) and GPT-2's real tokenizer.
//!
//! The checkpoint is written once to `target/bench-model/distilgpt2-random` (or taken from
//! `$ECCO_BENCH_MODEL`, e.g. one written by `scripts/fixtures/gpt2.py bench-model`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use ecco_core::{F32Tensor, write_safetensors};

/// distilgpt2's shape.
pub const LAYERS: usize = 6;
/// Width of the residual stream.
pub const WIDTH: usize = 768;
/// Attention heads.
pub const HEADS: usize = 12;
/// GPT-2's vocabulary.
pub const VOCAB: usize = 50257;
/// Position embeddings.
pub const POSITIONS: usize = 1024;

/// The benchmark checkpoint's directory, written on first use.
///
/// # Errors
/// When it cannot be written.
pub fn bench_model() -> Result<PathBuf> {
    if let Ok(dir) = std::env::var("ECCO_BENCH_MODEL") {
        return Ok(PathBuf::from(dir));
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = root.join("target").join("bench-model").join("distilgpt2-random");
    if dir.join("model.safetensors").is_file() {
        return Ok(dir);
    }
    std::fs::create_dir_all(&dir)?;
    let tokenizer = root.join("fixtures").join("gpt2-bpe").join("tokenizer.json");
    std::fs::copy(&tokenizer, dir.join("tokenizer.json")).with_context(|| tokenizer.display().to_string())?;
    let config = serde_json::json!({
        "model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "vocab_size": VOCAB,
        "n_positions": POSITIONS, "n_embd": WIDTH, "n_layer": LAYERS, "n_head": HEADS,
        "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5, "bos_token_id": 50256, "eos_token_id": 50256,
    });
    std::fs::write(dir.join("config.json"), serde_json::to_string_pretty(&config)?)?;
    write_safetensors(&dir.join("model.safetensors"), &random_weights())?;
    Ok(dir)
}

/// The value of a benchmark's set-up step, or a panic naming the step: a benchmark that cannot
/// be set up fails instead of reporting nothing.
pub fn set_up<T, E: std::fmt::Display>(step: &str, result: std::result::Result<T, E>) -> T {
    match result {
        Ok(value) => value,
        Err(e) => panic!("benchmark set-up failed ({step}): {e}"),
    }
}

/// Normal(0, 0.02) weights (GPT-2's `initializer_range`), unit layer norms, zero biases.
fn random_weights() -> BTreeMap<String, F32Tensor> {
    let mut rng = SplitMix(0x5eed);
    let mut out = BTreeMap::new();
    let mut put = |name: String, shape: Vec<usize>, fill: Fill| {
        let n = shape.iter().product();
        let data = match fill {
            Fill::Normal => (0..n).map(|_| rng.normal() * 0.02).collect(),
            Fill::Ones => vec![1.0; n],
            Fill::Zeros => vec![0.0; n],
        };
        out.insert(name, F32Tensor { shape, data });
    };
    put("wte.weight".into(), vec![VOCAB, WIDTH], Fill::Normal);
    put("wpe.weight".into(), vec![POSITIONS, WIDTH], Fill::Normal);
    for i in 0..LAYERS {
        for ln in ["ln_1", "ln_2"] {
            put(format!("h.{i}.{ln}.weight"), vec![WIDTH], Fill::Ones);
            put(format!("h.{i}.{ln}.bias"), vec![WIDTH], Fill::Zeros);
        }
        for (name, d_in, d_out) in [
            ("attn.c_attn", WIDTH, 3 * WIDTH),
            ("attn.c_proj", WIDTH, WIDTH),
            ("mlp.c_fc", WIDTH, 4 * WIDTH),
            ("mlp.c_proj", 4 * WIDTH, WIDTH),
        ] {
            put(format!("h.{i}.{name}.weight"), vec![d_in, d_out], Fill::Normal);
            put(format!("h.{i}.{name}.bias"), vec![d_out], Fill::Zeros);
        }
    }
    put("ln_f.weight".into(), vec![WIDTH], Fill::Ones);
    put("ln_f.bias".into(), vec![WIDTH], Fill::Zeros);
    out
}

enum Fill {
    Normal,
    Ones,
    Zeros,
}

/// A tiny deterministic generator (SplitMix64) with Box-Muller normals.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn uniform(&mut self) -> f32 {
        ((self.next() >> 40) as f32 + 0.5) / (1u64 << 24) as f32
    }

    fn normal(&mut self) -> f32 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
    }
}

/// A prompt of about `n` GPT-2 tokens.
pub fn prompt_of(n: usize) -> String {
    let words = ["the", "model", "reads", "every", "token", "and", "writes", "a", "trace", "of", "what", "it", "saw"];
    (0..n).map(|i| words[i % words.len()]).collect::<Vec<_>>().join(" ")
}
