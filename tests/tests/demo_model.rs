//! The embedded demo model shows something true: it names capitals, its attribution points at
//! the country, and the logit lens ranks the answer first at the last layer; every number is
//! checked against what `transformers` computed on the same weights (`fixtures/demo/reference.json`,
//! written by `scripts/demo/train_demo.py`).

mod common;

use anyhow::{Context, Result, ensure};
use ecco_attrib::{AttributionOptions, Lens, Method, Sequence};
use ecco_core::CaptureSpec;
use ecco_models::{DEMO_NAME, DeviceKind, GenerateOptions, LoadedModel, capture_pass};
use serde::Deserialize;

/// One prompt of `reference.json`.
#[derive(Debug, Deserialize)]
struct DemoCase {
    prompt: String,
    prompt_ids: Vec<u32>,
    prompt_tokens: Vec<String>,
    max_new_tokens: usize,
    generated_ids: Vec<u32>,
    generated_tokens: Vec<String>,
    probs: Vec<f32>,
    grad_x_input_first: Vec<f32>,
    normed_ranks_first: Vec<usize>,
}

/// `fixtures/demo/reference.json`.
#[derive(Debug, Deserialize)]
struct DemoReference {
    cases: Vec<DemoCase>,
}

fn setup() -> Result<(LoadedModel, DemoReference)> {
    let model = ecco_models::load_demo(DeviceKind::Flex)?;
    let path = common::fixture_dir("demo").join("reference.json");
    let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    Ok((model, serde_json::from_str(&text)?))
}

fn case<'a>(reference: &'a DemoReference, prompt: &str) -> Result<&'a DemoCase> {
    reference.cases.iter().find(|c| c.prompt == prompt).with_context(|| format!("no reference for {prompt:?}"))
}

/// The greedy continuation of `prompt_ids`.
fn greedy(m: &LoadedModel, prompt_ids: &[u32], n: usize) -> Result<Vec<u32>> {
    let causal = m.model.as_causal().context("the demo model is causal")?;
    let opts = GenerateOptions { max_new_tokens: n, sampling: None, eos_token_ids: m.model.eos_token_ids(), cancel: None };
    Ok(ecco_models::generate(causal, prompt_ids, &opts, |_| {})?)
}

/// The probabilities of `next` after `ids`, from the model's last position.
fn next_probs(m: &LoadedModel, ids: &[u32]) -> Result<Vec<f32>> {
    let spec = CaptureSpec { hidden_states: true, ..CaptureSpec::none() };
    let (tensors, _) = capture_pass(m.model.as_lm(), ids, &spec)?;
    let hidden = tensors.get("hidden_states.decoder").context("hidden states")?;
    let n = m.model.as_lm().info().n_layers;
    // The last layer under the raw lens is the model's own output distribution.
    let preds = ecco_attrib::layer_predictions(m.model.as_lm(), hidden, ids.len(), 1, Some(n - 1), Lens::Raw, &|id| m.tokenizer.token(id))?;
    Ok(preds.iter().flatten().map(|p| p.prob).collect())
}

#[test]
fn the_demo_model_is_the_embedded_checkpoint() -> Result<()> {
    let (m, _) = setup()?;
    ensure!(m.name == DEMO_NAME);
    let info = m.model.as_lm().info();
    ensure!(info.family == "gpt2" && info.n_layers == 4, "{info:?}");
    Ok(())
}

#[test]
fn the_capital_of_france_is_paris_as_transformers_says() -> Result<()> {
    let (m, reference) = setup()?;
    let c = case(&reference, "The capital of France is")?;
    let enc = m.tokenizer.encode(&c.prompt, false)?;
    ensure!(enc.ids == c.prompt_ids && enc.tokens == c.prompt_tokens, "tokens {:?}", enc.tokens);
    let generated = greedy(&m, &enc.ids, c.max_new_tokens)?;
    let first = generated.first().map(|&id| m.tokenizer.token(id));
    ensure!(first.as_deref() == Some("ĠParis"), "continues with {first:?}");
    for c in &reference.cases {
        let enc = m.tokenizer.encode(&c.prompt, false)?;
        let generated = greedy(&m, &enc.ids, c.max_new_tokens)?;
        ensure!(generated == c.generated_ids, "{:?}: {generated:?} != {:?}", c.prompt, c.generated_tokens);
        // Each greedy step's probability, as transformers computed it.
        let ids: Vec<u32> = enc.ids.iter().chain(&generated).copied().collect();
        for (k, &p) in c.probs.iter().enumerate() {
            let prefix = &ids[..enc.ids.len() + k];
            let ours = next_probs(&m, prefix)?;
            let top = ours.first().copied().context("no prediction")?;
            ensure!((top - p).abs() < 1e-3, "{:?} step {k}: p {top} vs transformers {p}", c.prompt);
        }
    }
    Ok(())
}

#[test]
fn grad_x_input_puts_the_largest_weight_on_france() -> Result<()> {
    let (m, reference) = setup()?;
    let c = case(&reference, "The capital of France is")?;
    let mut ids = c.prompt_ids.clone();
    ids.push(c.generated_ids[0]);
    let seq = Sequence { ids: &ids, n_input: c.prompt_ids.len() };
    let attr = ecco_attrib::attribute(m.model.as_lm(), seq, Method::GradXInput, &AttributionOptions::default(), &mut |_| {})?;
    let first = attr.first().context("one list per generated token")?;
    let argmax = (0..first.len()).max_by(|&a, &b| first[a].total_cmp(&first[b])).context("empty")?;
    ensure!(c.prompt_tokens[argmax] == "ĠFrance", "largest weight on {:?}: {first:?}", c.prompt_tokens[argmax]);
    for (o, t) in first.iter().zip(&c.grad_x_input_first) {
        ensure!((o - t).abs() < 2e-3, "grad_x_input {first:?} vs transformers {:?}", c.grad_x_input_first);
    }
    Ok(())
}

#[test]
fn the_normed_lens_ranks_paris_first_at_the_last_layer() -> Result<()> {
    let (m, reference) = setup()?;
    let c = case(&reference, "The capital of France is")?;
    let mut ids = c.prompt_ids.clone();
    ids.push(c.generated_ids[0]);
    let spec = CaptureSpec { hidden_states: true, ..CaptureSpec::none() };
    let (tensors, _) = capture_pass(m.model.as_lm(), &ids[..ids.len() - 1], &spec)?;
    let hidden = tensors.get("hidden_states.decoder").context("hidden states")?;
    let ranks = ecco_attrib::rankings(m.model.as_lm(), hidden, &ids, c.prompt_ids.len(), Lens::Normed)?;
    let per_layer: Vec<usize> = ranks.iter().map(|layer| layer[0]).collect();
    ensure!(per_layer.last() == Some(&1), "ranks of Paris per layer: {per_layer:?}");
    ensure!(per_layer == c.normed_ranks_first, "ranks {per_layer:?} vs transformers {:?}", c.normed_ranks_first);
    Ok(())
}
