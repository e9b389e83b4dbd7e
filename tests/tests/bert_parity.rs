//! The BERT family (BERT, RoBERTa, DistilBERT) against `transformers` and captum: tokenisation,
//! captures, logits, masked predictions, the lens at the mask position, attributions of the
//! masked prediction, and (BERT) token types with an attention mask.

mod common;

use anyhow::{Context, Result, bail, ensure};
use burn::tensor::{Int, Tensor, TensorData};
use common::{assert_close_abs, assert_close_scaled, fixture_dir};
use ecco_attrib::{AttributionOptions, Lens, MaskedTarget, Method};
use ecco_core::{CaptureSpec, F32Tensor, Logits, ModelInputs, SafetensorsReader};
use ecco_models::{DeviceKind, LoadedModel, Model, capture_pass, to_f32};
use serde::Deserialize;

const FIXTURES: &[&str] = &["bert-wordpiece", "roberta-bpe", "distilbert-wordpiece"];

/// One top-k entry in the reference.
#[derive(Debug, Deserialize)]
struct Pred {
    token_id: u32,
    token: String,
    prob: f32,
    ranking: usize,
}

/// The lens at the mask position, one layer.
#[derive(Debug, Deserialize)]
struct LayerRef {
    top: Vec<Pred>,
    predicted_rank: usize,
}

/// The `masked` case of `reference.json`.
#[derive(Debug, Deserialize)]
struct MaskedCase {
    text: String,
    input_ids: Vec<u32>,
    tokens: Vec<String>,
    mask_position: usize,
    predicted_id: u32,
    mask_predictions: Vec<Pred>,
    layer_predictions: Vec<LayerRef>,
    attributions: std::collections::BTreeMap<String, Vec<f32>>,
    occlusion_raw: Vec<f32>,
}

/// The `pair` case: token types and padding hidden by the attention mask.
#[derive(Debug, Deserialize)]
struct PairCase {
    input_ids: Vec<u32>,
    token_type_ids: Vec<u32>,
    attention_mask: Vec<u32>,
}

fn case<T: for<'de> Deserialize<'de>>(dir: &std::path::Path, name: &str) -> Result<Option<T>> {
    let text = std::fs::read_to_string(dir.join("reference.json"))?;
    let json: serde_json::Value = serde_json::from_str(&text)?;
    let cases = json["cases"].as_array().context("no cases")?;
    match cases.iter().find(|c| c["name"] == name) {
        Some(c) => Ok(Some(serde_json::from_value(c.clone())?)),
        None => Ok(None),
    }
}

/// A fixture checkpoint and the tensors `transformers` computed on it.
struct Fixture {
    dir: std::path::PathBuf,
    tensors: std::collections::BTreeMap<String, F32Tensor>,
}

impl Fixture {
    fn load(name: &str) -> Result<Self> {
        let dir = fixture_dir(name);
        let tensors = SafetensorsReader::open(dir.join("reference.safetensors"))?.read_all()?;
        Ok(Self { dir, tensors })
    }

    fn tensor(&self, case: &str, what: &str) -> Result<&F32Tensor> {
        self.tensors.get(&format!("{case}.{what}")).with_context(|| format!("reference has no tensor {case}.{what}"))
    }
}

fn for_each(mut f: impl FnMut(&LoadedModel, &Fixture, &MaskedCase) -> Result<()>) -> Result<()> {
    for name in FIXTURES {
        let fixture = Fixture::load(name)?;
        let model = ecco_models::load(&fixture.dir, DeviceKind::Flex)?;
        let case: MaskedCase = case(&fixture.dir, "masked")?.context("no masked case")?;
        f(&model, &fixture, &case).with_context(|| name.to_string())?;
    }
    Ok(())
}

fn ids_tensor(ids: &[u32], m: &LoadedModel) -> Tensor<2, Int> {
    let data: Vec<i64> = ids.iter().map(|&i| i64::from(i)).collect();
    Tensor::from_data(TensorData::new(data, [1, ids.len()]), m.model.as_lm().device())
}

#[test]
fn tokenisation_matches_transformers() -> Result<()> {
    for_each(|m, _, c| {
        let enc = m.tokenizer.encode(&c.text, true)?;
        ensure!(enc.ids == c.input_ids, "ids {:?} != {:?}", enc.ids, c.input_ids);
        ensure!(enc.tokens == c.tokens, "tokens {:?} != {:?}", enc.tokens, c.tokens);
        ensure!(m.tokenizer.mask_token_id() == Some(c.input_ids[c.mask_position]), "mask token id");
        Ok(())
    })
}

#[test]
fn captures_and_logits_match_transformers() -> Result<()> {
    for_each(|m, fx, c| {
        let lm = m.model.as_lm();
        let (tensors, layers) = capture_pass(lm, &c.input_ids, &CaptureSpec::all())?;
        ensure!(layers == (0..lm.info().n_layers).collect::<Vec<_>>());
        for what in ["hidden_states", "activations", "attention"] {
            let ours = tensors.get(&format!("{what}.encoder")).with_context(|| format!("no {what}.encoder"))?;
            assert_close_scaled(what, ours, fx.tensor("masked", what)?, 1e-4)?;
        }
        ensure!(!tensors.contains_key("hidden_states.decoder"), "a masked LM has no decoder stack");
        let out = lm.forward(ModelInputs::new(lm.embed(ids_tensor(&c.input_ids, m))), &CaptureSpec::none().with_logits(Logits::All))?;
        let logits = to_f32(out.logits.context("logits")?)?;
        let logits = F32Tensor { shape: logits.shape[1..].to_vec(), data: logits.data };
        assert_close_scaled("logits", &logits, fx.tensor("masked", "logits")?, 1e-4)
    })
}

fn check_preds(what: &str, ours: &[ecco_attrib::LayerPrediction], theirs: &[Pred]) -> Result<()> {
    let ids: Vec<u32> = ours.iter().map(|p| p.token_id).collect();
    let ref_ids: Vec<u32> = theirs.iter().map(|p| p.token_id).collect();
    ensure!(ids == ref_ids, "{what}: top-k {ids:?} != {ref_ids:?}");
    for (a, b) in ours.iter().zip(theirs) {
        ensure!(a.token == b.token && a.ranking == b.ranking, "{what}: {a:?} vs {b:?}");
        ensure!((a.prob - b.prob).abs() <= 1e-4 * b.prob.max(1e-2), "{what}: prob {a:?} vs {b:?}");
    }
    Ok(())
}

#[test]
fn masked_predictions_and_lens_match_transformers() -> Result<()> {
    for_each(|m, fx, c| {
        let lm = m.model.as_lm();
        let token = |id| m.tokenizer.token(id);
        let preds = ecco_attrib::masked_predictions(lm, &c.input_ids, &[c.mask_position], 5, &token)?;
        check_preds("mask predictions", &preds[0], &c.mask_predictions)?;
        ensure!(preds[0][0].token_id == c.predicted_id);
        // The lens on the reference hidden states, from the mask token's own position.
        let hidden = fx.tensor("masked", "hidden_states")?;
        for lens in [Lens::Raw, Lens::Normed] {
            let layers = ecco_attrib::layer_predictions_at(lm, hidden, c.mask_position, 5, None, lens, &token)?;
            ensure!(layers.len() == c.layer_predictions.len(), "{} layers", layers.len());
            for (l, (o, t)) in layers.iter().zip(&c.layer_predictions).enumerate() {
                check_preds(&format!("{lens:?} layer {l}"), o, &t.top)?;
            }
            let ranks = ecco_attrib::rankings_watch_at(lm, hidden, c.mask_position, &[c.predicted_id], lens)?;
            let expected: Vec<Vec<usize>> = c.layer_predictions.iter().map(|l| vec![l.predicted_rank]).collect();
            ensure!(ranks == expected, "{lens:?} ranks {ranks:?} != {expected:?}");
        }
        Ok(())
    })
}

#[test]
fn masked_attributions_match_captum() -> Result<()> {
    let options = AttributionOptions::default();
    for_each(|m, _, c| {
        let lm = m.model.as_lm();
        let targets = [MaskedTarget { position: c.mask_position, target: c.predicted_id }];
        for (method, key, tol) in [
            (Method::GradXInput, "grad_x_input", 2e-3),
            (Method::Gradient, "gradient", 2e-3),
            (Method::IntegratedGradients, "integrated_gradients", 1e-2),
        ] {
            let ours = ecco_attrib::attribute_masked(lm, &c.input_ids, &targets, method, &options, &mut |_| {})?;
            let reference = c.attributions.get(key).with_context(|| format!("no {key}"))?;
            ensure!(ours.len() == 1);
            assert_close_abs(key, &ours[0], reference, tol)?;
            ensure!((ours[0].iter().sum::<f32>() - 1.0).abs() < 1e-4, "{key} does not sum to 1");
        }
        let drops = ecco_attrib::occlusion_masked_drops(lm, &c.input_ids, &targets, &options, &mut |_| {})?;
        let scale = c.occlusion_raw.iter().fold(0f32, |a, v| a.max(v.abs()));
        assert_close_abs("occlusion", &drops[0], &c.occlusion_raw, 1e-4 * scale.max(1e-3))?;
        // Rollout is defined for causal LMs only: a clear error, not a wrong answer.
        ensure!(ecco_attrib::attribute_masked(lm, &c.input_ids, &targets, Method::AttentionRollout, &options, &mut |_| {}).is_err());
        Ok(())
    })
}

#[test]
fn token_types_and_attention_mask_match_transformers() -> Result<()> {
    let fixture = Fixture::load("bert-wordpiece")?;
    let m = ecco_models::load(&fixture.dir, DeviceKind::Flex)?;
    let Model::Bert(bert) = &m.model else { bail!("not a BERT model") };
    let bert = bert.as_ref();
    let c: PairCase = case(&fixture.dir, "pair")?.context("no pair case")?;
    ensure!(c.token_type_ids.contains(&1) && c.attention_mask.contains(&0), "the case must exercise both");
    let n = c.input_ids.len();
    let device = &bert.device;
    let types: Vec<i64> = c.token_type_ids.iter().map(|&t| i64::from(t)).collect();
    let types = Tensor::<2, Int>::from_data(TensorData::new(types, [1, n]), device);
    let mask: Vec<f32> = c.attention_mask.iter().map(|&v| v as f32).collect();
    let mask = Tensor::<2>::from_data(TensorData::new(mask, [1, n]), device);
    let embeds = ecco_core::LanguageModel::embed(bert, ids_tensor(&c.input_ids, &m));
    let out = bert.forward_with(embeds, Some(types), Some(mask), &CaptureSpec::all())?;
    let captures = out.encoder.context("no encoder captures")?;
    let hidden = to_f32(Tensor::cat(captures.hidden_states, 0))?;
    assert_close_scaled("pair hidden states", &hidden, fixture.tensor("pair", "hidden_states")?, 1e-4)?;
    let attention = to_f32(Tensor::cat(captures.attention, 0))?;
    assert_close_scaled("pair attention", &attention, fixture.tensor("pair", "attention")?, 1e-4)?;
    let logits = to_f32(out.logits.context("logits")?)?;
    let logits = F32Tensor { shape: logits.shape[1..].to_vec(), data: logits.data };
    assert_close_scaled("pair logits", &logits, fixture.tensor("pair", "logits")?, 1e-4)
}
