//! The Llama-family decoders against `transformers` and captum (`scripts/fixtures/decoders.py`):
//! on a small random checkpoint of each family (Llama untied and tied with Llama 3 rotary
//! scaling, Mistral with a sliding window shorter than the prompt, Qwen2 with q/k/v biases and
//! yarn, Qwen3 with q/k norm, Gemma 2 with soft-capping and sandwich norms, Gemma 3 with local and
//! global rotary bases): tokenisation, greedy generation, every hook point, logits, decoding
//! steps against the full pass, attributions and the logit lens.

mod common;

use std::collections::BTreeMap;

use anyhow::{Context, Result, ensure};
use burn::tensor::{Int, Tensor, TensorData};
use common::{LayerPredsRef, PerLens, WatchRef, assert_close_abs, assert_close_scaled, fixture_dir, set_case};
use ecco_attrib::{AttributionOptions, Lens, Method, Sequence};
use ecco_core::{
    CaptureSpec, CausalLm, F32Tensor, HookPattern, HookTensor, KvCache, LanguageModel, Logits, ModelInputs, SafetensorsReader, hook_points,
};
use ecco_models::{DeviceKind, GenerateOptions, LoadedModel, to_f32};
use serde::Deserialize;

const FIXTURES: &[&str] = &["llama-tiny", "llama3-tiny", "mistral-tiny", "qwen2-tiny", "qwen3-tiny", "gemma2-tiny", "gemma3-tiny"];

#[derive(Debug, Deserialize)]
struct Case {
    prompt: String,
    input_ids: Vec<u32>,
    n_prompt: usize,
    max_new_tokens: usize,
    generated_ids: Vec<u32>,
    token_ids: Vec<u32>,
    tokens: Vec<String>,
    attributions: BTreeMap<String, Vec<Vec<f32>>>,
    rankings: PerLens<Vec<Vec<usize>>>,
    rankings_watch: WatchRef,
    layer_predictions: LayerPredsRef,
}

#[derive(Debug, Deserialize)]
struct Reference {
    model_type: String,
    case: Case,
}

struct Fixture {
    name: &'static str,
    model: LoadedModel,
    reference: Reference,
    tensors: BTreeMap<String, F32Tensor>,
}

impl Fixture {
    fn tensor(&self, name: &str) -> Result<&F32Tensor> {
        self.tensors.get(name).with_context(|| format!("reference has no tensor {name}"))
    }

    fn lm(&self) -> &dyn LanguageModel {
        self.model.model.as_lm()
    }

    /// The ids of the final forward pass the reference recorded: every token but the last.
    fn final_ids(&self) -> &[u32] {
        let ids = &self.reference.case.token_ids;
        &ids[..ids.len() - 1]
    }
}

fn for_each(mut f: impl FnMut(&Fixture) -> Result<()>) -> Result<()> {
    for &name in FIXTURES {
        let dir = fixture_dir(name);
        let reference: Reference = serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json"))?)?;
        let tensors = SafetensorsReader::open(dir.join("reference.safetensors"))?.read_all()?;
        let model = ecco_models::load(&dir, DeviceKind::Flex)?;
        set_case(name);
        let fixture = Fixture { name, model, reference, tensors };
        ensure!(
            fixture.lm().info().family.starts_with(&fixture.reference.model_type[..4]),
            "{name}: family {}",
            fixture.lm().info().family
        );
        f(&fixture).with_context(|| name)?;
    }
    Ok(())
}

fn embeds(lm: &dyn LanguageModel, ids: &[u32]) -> Tensor<3> {
    let data: Vec<i64> = ids.iter().map(|&i| i64::from(i)).collect();
    lm.embed(Tensor::<2, Int>::from_data(TensorData::new(data, [1, ids.len()]), lm.device()))
}

/// A recorded value with the batch dimension dropped.
fn unbatched(value: &HookTensor) -> Result<F32Tensor> {
    let t = match value {
        HookTensor::Rank3(t) => to_f32(t.clone())?,
        HookTensor::Rank4(t) => to_f32(t.clone())?,
    };
    Ok(F32Tensor { shape: t.shape[1..].to_vec(), data: t.data })
}

#[test]
fn tokenisation_and_greedy_generation_match_transformers() -> Result<()> {
    for_each(|fx| {
        let case = &fx.reference.case;
        let enc = fx.model.tokenizer.encode(&case.prompt, false)?;
        ensure!(enc.ids == case.input_ids, "ids {:?} != {:?}", enc.ids, case.input_ids);
        let all: Vec<String> = case.token_ids.iter().map(|&id| fx.model.tokenizer.token(id)).collect();
        ensure!(all == case.tokens, "tokens {all:?} != {:?}", case.tokens);
        let causal = fx.model.model.as_causal().context("causal")?;
        // No early stop: the reference generated a fixed number of tokens.
        let opts = GenerateOptions { max_new_tokens: case.max_new_tokens, sampling: None, eos_token_ids: Vec::new(), cancel: None };
        let ids = ecco_models::generate(causal, &case.input_ids, &opts, |_| {})?;
        ensure!(ids == case.generated_ids, "generated {ids:?}, transformers {:?}", case.generated_ids);
        Ok(())
    })
}

#[test]
fn every_hook_point_and_the_logits_match_transformers() -> Result<()> {
    for_each(|fx| {
        let lm = fx.lm();
        let points = hook_points(&lm.hook_stacks());
        let spec =
            CaptureSpec { hooks: points.iter().copied().map(HookPattern::from).collect(), ..CaptureSpec::none() }.with_logits(Logits::All);
        let out = lm.forward(ModelInputs::new(embeds(lm, fx.final_ids())), &spec)?;
        ensure!(out.hooks.len() == points.len(), "{} of {} hook points recorded", out.hooks.len(), points.len());
        for (point, value) in &out.hooks {
            let name = point.to_string();
            assert_close_scaled(&name, &unbatched(value)?, fx.tensor(&name)?, 1e-4)?;
        }
        let logits = to_f32(out.logits.context("logits")?)?;
        let logits = F32Tensor { shape: logits.shape[1..].to_vec(), data: logits.data };
        assert_close_scaled("logits", &logits, fx.tensor("logits")?, 1e-4)
    })
}

/// Decoding one token at a time with the KV cache (past the sliding windows) gives the logits
/// of the full pass at every position.
#[test]
fn decode_steps_match_the_full_pass() -> Result<()> {
    for_each(|fx| {
        let causal: &dyn CausalLm = fx.model.model.as_causal().context("causal")?;
        let full = fx.tensor("logits")?;
        let vocab = full.shape[1];
        let mut cache = KvCache::default();
        for (at, &id) in fx.final_ids().iter().enumerate() {
            let (logits, next) = causal.decode_step(&[id], cache)?;
            cache = next;
            let step = to_f32(logits)?;
            let want = F32Tensor { shape: vec![vocab], data: full.data[at * vocab..(at + 1) * vocab].to_vec() };
            assert_close_scaled(&format!("decode step at {at}"), &step, &want, 1e-4)?;
        }
        Ok(())
    })
}

#[test]
fn attributions_match_captum() -> Result<()> {
    let options = AttributionOptions::default();
    for_each(|fx| {
        let case = &fx.reference.case;
        let seq = Sequence { ids: &case.token_ids, n_input: case.n_prompt };
        for (method, key) in
            [(Method::GradXInput, "grad_x_input"), (Method::Gradient, "gradient"), (Method::IntegratedGradients, "integrated_gradients")]
        {
            let ours = ecco_attrib::attribute(fx.lm(), seq, method, &options, &mut |_| {})?;
            let theirs = case.attributions.get(key).with_context(|| format!("no reference {key}"))?;
            ensure!(ours.len() == theirs.len(), "{key}: {} lists, reference {}", ours.len(), theirs.len());
            for (k, (o, t)) in ours.iter().zip(theirs).enumerate() {
                assert_close_abs(&format!("{key}[{k}]"), o, t, 1e-4)?;
            }
        }
        Ok(())
    })
}

/// The lens over each block's output as the reference takes it: `raw` is the head on
/// `resid_post` as is, `normed` the final norm first (the last block's is `final_norm`), then the
/// head, soft-capped in Gemma 2.
#[test]
fn logit_lens_matches_transformers() -> Result<()> {
    for_each(|fx| {
        let lm = fx.lm();
        let case = &fx.reference.case;
        let n = lm.info().n_layers;
        let stack = |last: &str| -> Result<F32Tensor> {
            let mut names = vec!["embed".to_owned()];
            names.extend((0..n - 1).map(|i| format!("blocks.{i}.resid_post")));
            names.push(last.to_owned());
            let parts = names.iter().map(|name| fx.tensor(name)).collect::<Result<Vec<_>>>()?;
            let mut shape = parts[0].shape.clone();
            shape.insert(0, parts.len());
            Ok(F32Tensor { shape, data: parts.iter().flat_map(|p| p.data.iter().copied()).collect() })
        };
        let raw_hidden = stack(&format!("blocks.{}.resid_post", n - 1))?;
        let normed_hidden = stack("final_norm")?;
        // Gemma 2's raw reference is the head without its final soft-capping, which ours applies:
        // the same order (tanh is increasing), other probabilities.
        let capped = fx.model.model.as_lm().info().family == "gemma2";
        for (lens, hidden, ranks, watch, preds) in [
            (Lens::Raw, &raw_hidden, &case.rankings.raw, &case.rankings_watch.raw, &case.layer_predictions.raw),
            (Lens::Normed, &normed_hidden, &case.rankings.normed, &case.rankings_watch.normed, &case.layer_predictions.normed),
        ] {
            let ours = ecco_attrib::rankings(lm, hidden, &case.token_ids, case.n_prompt, lens)?;
            ensure!(&ours == ranks, "{lens:?} rankings {ours:?} != {ranks:?}");
            let w = &case.rankings_watch;
            // The reference's position is the index read; ours is the position it predicts.
            let ours = ecco_attrib::rankings_watch(lm, hidden, w.position + 1, &w.watch, lens)?;
            ensure!(&ours == watch, "{lens:?} rankings_watch {ours:?} != {watch:?}");
            let lp = &case.layer_predictions;
            let ours =
                ecco_attrib::layer_predictions(lm, hidden, lp.position + 1, lp.topk, None, lens, &|id| fx.model.tokenizer.token(id))?;
            ensure!(ours.len() == preds.len(), "{lens:?}: {} layers", ours.len());
            for (l, (o, t)) in ours.iter().zip(preds.iter()).enumerate() {
                let ids: Vec<u32> = o.iter().map(|p| p.token_id).collect();
                let ref_ids: Vec<u32> = t.iter().map(|p| p.token_id).collect();
                ensure!(ids == ref_ids, "{lens:?} layer {l}: top-k {ids:?} != {ref_ids:?}");
                if capped && lens == Lens::Raw {
                    continue;
                }
                for (a, b) in o.iter().zip(t.iter()) {
                    ensure!((a.prob - b.prob).abs() <= 1e-4 * b.prob.max(1e-2), "{} {lens:?} layer {l}: prob {a:?} vs {b:?}", fx.name);
                }
            }
        }
        Ok(())
    })
}

/// The hand-written backward pass (Llama, Mistral with its sliding window, Qwen2 with biases and
/// yarn; all grouped-query) against burn's autodiff through the ordinary forward pass: the same
/// final hidden states, and the same gradients of `sum(cotangents * last_hidden)` for two scaled
/// input copies, several cotangent rows and a prefix shorter than the sequence, within 1e-5 of
/// their scale. The other families have no hand-written pass (autodiff serves them).
#[test]
fn hand_backward_matches_autodiff() -> Result<()> {
    let mut covered = Vec::new();
    for_each(|fx| {
        let lm = fx.lm();
        let ids = fx.final_ids();
        let seq = ids.len();
        let scales = [1.0f32, 0.37];
        let x = Tensor::cat(scales.iter().map(|&s| embeds(lm, ids) * s).collect(), 0);
        let Some(tape) = lm.input_gradients(x.clone()) else { return Ok(()) };
        let tape = tape?;
        covered.push(fx.name);
        let hidden = lm.info().hidden_size;
        for (copy, len) in [(0, seq), (1, seq - 3)] {
            let rows = 3;
            let cot: Vec<f32> = (0..rows * len * hidden).map(|i| (i * 7919 % 1000) as f32 / 500.0 - 1.0).collect();
            let cot = Tensor::<3>::from_data(TensorData::new(cot, [rows, len, hidden]), lm.device());
            let ours = to_f32(tape.backward(&[copy; 3], cot.clone())?)?;
            let xc = x.clone().slice([copy..copy + 1, 0..len, 0..hidden]).repeat_dim(0, rows).autodiff().require_grad();
            let out = lm.forward(ModelInputs::new(xc.clone()), &CaptureSpec::none().with_logits(Logits::Skip))?;
            if copy == 0 {
                let last = tape.last_hidden().slice([0..1, 0..len, 0..hidden]);
                let plain = out.last_hidden.clone().slice([0..1, 0..len, 0..hidden]).inner();
                assert_close_scaled("last hidden", &to_f32(last)?, &to_f32(plain)?, 1e-5)?;
            }
            let grads = (out.last_hidden * cot.autodiff()).sum().backward();
            let theirs = to_f32(xc.grad(&grads).context("no gradient")?)?;
            assert_close_scaled(&format!("input gradient, copy {copy}, {len} positions"), &ours, &theirs, 1e-5)?;
        }
        ensure!(tape.backward(&[2], embeds(lm, ids)).is_err(), "an input copy out of range is an error");
        Ok(())
    })?;
    ensure!(covered == ["llama-tiny", "llama3-tiny", "mistral-tiny", "qwen2-tiny"], "hand-written backward on {covered:?}");
    Ok(())
}
