//! The real SmolLM2-135M-Instruct (Q4_1 GGUF) run end to end against `transformers` on the same
//! dequantized weights (`fixtures/smollm2/reference.json`): "The capital of France is" gives
//! " Paris" top-1 with `transformers`' probability, the last logits agree, the perplexity of a
//! fixed passage is within 0.5 %, and greedy decoding with the KV cache gives the full pass's
//! logits.
//!
//! The file is not committed: `scripts/fetch_smollm2.sh` puts it in `$ECCO_SMOLLM2_DIR` (default
//! `~/.cache/ecco-rs/smollm2`). Without it this test fails, naming the script, unless
//! `ECCO_SKIP_SMOLLM2=1`.

mod common;

use std::path::PathBuf;

use anyhow::{Context, Result, bail, ensure};
use burn::tensor::{Int, Tensor, TensorData};
use common::fixture_dir;
use ecco_core::{CaptureSpec, KvCache, LanguageModel, Logits, ModelInputs};
use ecco_models::{DeviceKind, LoadedModel, to_f32};
use serde::Deserialize;

const FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

#[derive(Deserialize)]
struct TopK {
    ids: Vec<u32>,
    values: Vec<f64>,
}

#[derive(Deserialize)]
struct Reference {
    prompt: String,
    prompt_ids: Vec<u32>,
    paris_id: u32,
    paris_prob: f64,
    last_logits_topk: TopK,
    last_logits_sum: f64,
    last_logits_sum_squares: f64,
    passage: String,
    passage_ids: Vec<u32>,
    passage_perplexity: f64,
}

/// The model, or `None` when the file is absent and `ECCO_SKIP_SMOLLM2=1`.
fn model() -> Result<Option<(LoadedModel, Reference)>> {
    let dir = match std::env::var_os("ECCO_SMOLLM2_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").context("neither ECCO_SMOLLM2_DIR nor HOME is set")?).join(".cache/ecco-rs/smollm2"),
    };
    let path = dir.join(FILE);
    if !path.is_file() {
        if std::env::var("ECCO_SKIP_SMOLLM2").as_deref() == Ok("1") {
            eprintln!("skipping: no {} (ECCO_SKIP_SMOLLM2=1)", path.display());
            return Ok(None);
        }
        bail!("no {}: run scripts/fetch_smollm2.sh (or set ECCO_SKIP_SMOLLM2=1)", path.display());
    }
    let reference: Reference = serde_json::from_str(&std::fs::read_to_string(fixture_dir("smollm2").join("reference.json"))?)?;
    Ok(Some((ecco_models::load(&path, DeviceKind::Flex)?, reference)))
}

/// Logits `[positions, vocab]` of one forward pass over `ids`, in f64.
fn logits(lm: &dyn LanguageModel, ids: &[u32]) -> Result<Vec<Vec<f64>>> {
    let data: Vec<i64> = ids.iter().map(|&i| i64::from(i)).collect();
    let embeds = lm.embed(Tensor::<2, Int>::from_data(TensorData::new(data, [1, ids.len()]), lm.device()));
    let out = lm.forward(ModelInputs::new(embeds), &CaptureSpec::none().with_logits(Logits::All))?;
    let t = to_f32(out.logits.context("logits")?)?;
    let vocab = lm.info().vocab_size;
    Ok(t.data.chunks_exact(vocab).map(|row| row.iter().map(|&v| f64::from(v)).collect()).collect())
}

fn log_softmax(row: &[f64]) -> Vec<f64> {
    let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let log_sum = row.iter().map(|v| (v - max).exp()).sum::<f64>().ln() + max;
    row.iter().map(|v| v - log_sum).collect()
}

#[test]
fn smollm2_says_paris_with_transformers_probability_and_perplexity() -> Result<()> {
    let Some((m, r)) = model()? else { return Ok(()) };
    let lm = m.model.as_lm();
    // The file says `add_bos_token = false`: no BOS even with special tokens on.
    let ids = m.tokenizer.encode(&r.prompt, true)?.ids;
    ensure!(ids == r.prompt_ids, "prompt ids {ids:?} != {:?}", r.prompt_ids);
    let all = logits(lm, &ids)?;
    let last = all.last().context("no logits")?;
    let scale = r.last_logits_topk.values.iter().fold(0f64, |m, v| m.max(v.abs()));
    for (&id, &want) in r.last_logits_topk.ids.iter().zip(&r.last_logits_topk.values) {
        let got = last[id as usize];
        ensure!((got - want).abs() <= 1e-3 * scale, "logit of {id}: ours {got}, transformers {want} (scale {scale})");
    }
    let top = (0..last.len()).max_by(|&a, &b| last[a].total_cmp(&last[b])).context("empty")?;
    ensure!(top == r.paris_id as usize, "top-1 is {top} ({:?}), not \" Paris\"", m.tokenizer.token(top as u32));
    let prob = log_softmax(last)[top].exp();
    ensure!((prob - r.paris_prob).abs() < 1e-3, "p(Paris) {prob}, transformers {}", r.paris_prob);
    let sum: f64 = last.iter().sum();
    let squares: f64 = last.iter().map(|v| v * v).sum();
    ensure!((squares - r.last_logits_sum_squares).abs() <= 1e-3 * r.last_logits_sum_squares, "sum of squares {squares}");
    ensure!((sum - r.last_logits_sum).abs() <= 1e-3 * r.last_logits_sum.abs(), "sum {sum}, transformers {}", r.last_logits_sum);

    let passage = m.tokenizer.encode(&r.passage, false)?.ids;
    ensure!(passage == r.passage_ids, "passage ids differ");
    let rows = logits(lm, &passage)?;
    let nll: f64 =
        rows.iter().zip(&passage[1..]).map(|(row, &next)| -log_softmax(row)[next as usize]).sum::<f64>() / (passage.len() - 1) as f64;
    let perplexity = nll.exp();
    ensure!((perplexity / r.passage_perplexity - 1.0).abs() < 0.005, "perplexity {perplexity}, transformers {}", r.passage_perplexity);
    eprintln!("smollm2: p(Paris) {prob:.4} (transformers {:.4}), perplexity {perplexity:.3} ({:.3})", r.paris_prob, r.passage_perplexity);

    // Decoding one token at a time with the KV cache gives the full pass's logits.
    let causal = m.model.as_causal().context("causal")?;
    let mut cache = KvCache::default();
    for (at, &id) in passage.iter().take(12).enumerate() {
        let (step, next) = causal.decode_step(&[id], cache)?;
        cache = next;
        let step = to_f32(step)?.data;
        let worst = step.iter().zip(&rows[at]).map(|(&a, &b)| (f64::from(a) - b).abs()).fold(0f64, f64::max);
        ensure!(worst <= 1e-4 * scale, "decode step {at}: {worst}");
    }
    Ok(())
}
