//! T5 (`T5ForConditionalGeneration`) against `transformers` and captum: tokenisation,
//! relative-position buckets, greedy generation, captures of both stacks and cross attention,
//! logits, and Ecco's encoder-decoder attributions. Two checkpoints: `t5-relu` (ReLU FFN, tied
//! head with the `d_model^-0.5` rescale) and `t5-gated` (gated-GELU FFN, untied head, three
//! decoder blocks for two encoder blocks).

mod common;

use std::collections::BTreeMap;

use anyhow::{Context, Result, ensure};
use burn::tensor::{Int, Tensor, TensorData};
use common::{assert_close_abs, assert_close_scaled, fixture_dir};
use ecco_attrib::{AttributionOptions, Method, Seq2SeqSequence};
use ecco_core::{CaptureSpec, F32Tensor, LanguageModel, Logits, ModelInputs, ModelKind, SafetensorsReader};
use ecco_models::t5::attention::relative_position_bucket;
use ecco_models::{DeviceKind, GenerateOptions, LoadedModel, capture_pass_seq2seq, to_f32};
use serde::Deserialize;

const FIXTURES: &[&str] = &["t5-relu", "t5-gated"];

/// The bucket tables in `reference.json`.
#[derive(Debug, Deserialize)]
struct Buckets {
    relative_positions: [i64; 2],
    bidirectional: Vec<usize>,
    causal: Vec<usize>,
}

/// `reference.json`.
#[derive(Debug, Deserialize)]
struct Reference {
    text: String,
    input_ids: Vec<u32>,
    tokens: Vec<String>,
    decoder_start_token_id: u32,
    decoder_input_ids: Vec<u32>,
    generated_ids: Vec<u32>,
    /// `generated_texts[k - 1]`: the first k generated tokens, `decode(skip_special_tokens=True)`.
    generated_texts: Vec<String>,
    attributions: BTreeMap<String, Vec<Vec<f32>>>,
    buckets: Buckets,
}

struct Fixture {
    name: &'static str,
    model: LoadedModel,
    reference: Reference,
    tensors: BTreeMap<String, F32Tensor>,
}

impl Fixture {
    fn tensor(&self, what: &str) -> Result<&F32Tensor> {
        self.tensors.get(what).with_context(|| format!("{}: reference has no tensor {what}", self.name))
    }
}

fn for_each(mut f: impl FnMut(&Fixture) -> Result<()>) -> Result<()> {
    for &name in FIXTURES {
        let dir = fixture_dir(name);
        let model = ecco_models::load(&dir, DeviceKind::Flex)?;
        let reference: Reference = serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json"))?)?;
        let tensors = SafetensorsReader::open(dir.join("reference.safetensors"))?.read_all()?;
        f(&Fixture { name, model, reference, tensors }).with_context(|| name.to_owned())?;
    }
    Ok(())
}

/// The largest difference relative to the reference's scale (printed with `--nocapture`).
fn report(what: &str, ours: &[f32], theirs: &[f32]) {
    let scale = theirs.iter().fold(0f32, |m, v| m.max(v.abs())).max(f32::MIN_POSITIVE);
    let worst = ours.iter().zip(theirs).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    eprintln!("{what}: max |diff| {worst:.3e}, {:.3e} of the scale {scale:.3e}", worst / scale);
}

fn embed(lm: &dyn LanguageModel, ids: &[u32]) -> Tensor<3> {
    let data: Vec<i64> = ids.iter().map(|&i| i64::from(i)).collect();
    lm.embed(Tensor::<2, Int>::from_data(TensorData::new(data, [1, ids.len()]), lm.device()))
}

#[test]
fn tokenisation_and_config_match_transformers() -> Result<()> {
    for_each(|fx| {
        let r = &fx.reference;
        let enc = fx.model.tokenizer.encode(&r.text, true)?;
        ensure!(enc.ids == r.input_ids, "ids {:?} vs {:?}", enc.ids, r.input_ids);
        ensure!(enc.tokens == r.tokens, "tokens {:?} vs {:?}", enc.tokens, r.tokens);
        for (k, text) in r.generated_texts.iter().enumerate() {
            let ours = fx.model.tokenizer.decode_skip_special(&r.generated_ids[..=k])?;
            ensure!(&ours == text, "decoded {ours:?} vs {text:?}");
        }
        let t5 = fx.model.model.as_seq2seq().context("not an encoder-decoder")?;
        ensure!(t5.config.decoder_start_token_id == r.decoder_start_token_id);
        ensure!(fx.model.model.as_lm().info().kind == ModelKind::EncoderDecoder && fx.model.model.as_causal().is_none());
        Ok(())
    })
}

#[test]
fn relative_position_buckets_match_transformers() -> Result<()> {
    for_each(|fx| {
        let b = &fx.reference.buckets;
        let t5 = fx.model.model.as_seq2seq().context("not an encoder-decoder")?;
        let (nb, md) = (t5.config.num_buckets, t5.config.max_distance);
        for (i, rel) in (b.relative_positions[0]..=b.relative_positions[1]).enumerate() {
            let (bi, causal) = (relative_position_bucket(rel, true, nb, md), relative_position_bucket(rel, false, nb, md));
            ensure!(bi == b.bidirectional[i], "bidirectional bucket of {rel}: {bi}, transformers {}", b.bidirectional[i]);
            ensure!(causal == b.causal[i], "causal bucket of {rel}: {causal}, transformers {}", b.causal[i]);
        }
        Ok(())
    })
}

#[test]
fn greedy_generation_matches_transformers() -> Result<()> {
    for_each(|fx| {
        let r = &fx.reference;
        let t5 = fx.model.model.as_seq2seq().context("not an encoder-decoder")?;
        let options = GenerateOptions {
            max_new_tokens: r.generated_ids.len(),
            sampling: None,
            eos_token_ids: fx.model.model.eos_token_ids(),
            cancel: None,
        };
        let ids = ecco_models::generate_seq2seq(t5, &r.input_ids, &options, |_| {})?;
        ensure!(ids == r.generated_ids, "greedy {ids:?}, transformers {:?}", r.generated_ids);
        Ok(())
    })
}

#[test]
fn captures_match_transformers() -> Result<()> {
    for_each(|fx| {
        let r = &fx.reference;
        let (tensors, layers) = capture_pass_seq2seq(fx.model.model.as_lm(), &r.input_ids, &r.decoder_input_ids, &CaptureSpec::all())?;
        for what in [
            "hidden_states.encoder",
            "hidden_states.decoder",
            "activations.encoder",
            "activations.decoder",
            "attention.encoder",
            "attention.decoder",
            "attention.cross",
        ] {
            let ours = tensors.get(what).with_context(|| format!("we captured no {what}"))?;
            report(&format!("{} {what}", fx.name), &ours.data, &fx.tensor(what)?.data);
            assert_close_scaled(what, ours, fx.tensor(what)?, 1e-4)?;
        }
        let t5 = fx.model.model.as_seq2seq().context("not an encoder-decoder")?;
        ensure!(layers == (0..t5.config.num_decoder_layers).collect::<Vec<_>>(), "layers {layers:?}");
        Ok(())
    })
}

#[test]
fn logits_match_transformers() -> Result<()> {
    for_each(|fx| {
        let r = &fx.reference;
        let lm = fx.model.model.as_lm();
        let inputs = ModelInputs { embeds: embed(lm, &r.input_ids), decoder_embeds: Some(embed(lm, &r.decoder_input_ids)) };
        let out = lm.forward(inputs, &CaptureSpec::none().with_logits(Logits::All))?;
        let logits = out.logits.context("no logits")?;
        let [_, seq, vocab] = logits.dims();
        let logits = to_f32(logits.reshape([seq, vocab]))?;
        report(&format!("{} logits", fx.name), &logits.data, &fx.tensor("logits")?.data);
        assert_close_scaled("logits", &logits, fx.tensor("logits")?, 1e-4)?;
        // Without a decoder input the model says so instead of panicking.
        ensure!(lm.forward(ModelInputs::new(embed(lm, &r.input_ids)), &CaptureSpec::none()).is_err());
        Ok(())
    })
}

#[test]
fn attributions_match_captum() -> Result<()> {
    let options = AttributionOptions::default();
    for_each(|fx| {
        let r = &fx.reference;
        let mut decoder_ids = vec![r.decoder_start_token_id];
        decoder_ids.extend(&r.generated_ids);
        let seq = Seq2SeqSequence { encoder_ids: &r.input_ids, decoder_ids: &decoder_ids };
        let lm = fx.model.model.as_lm();
        for (method, key) in
            [(Method::GradXInput, "grad_x_input"), (Method::Gradient, "gradient"), (Method::IntegratedGradients, "integrated_gradients")]
        {
            let ours = ecco_attrib::attribute_seq2seq(lm, seq, method, &options, &mut |_| {})?;
            let theirs = r.attributions.get(key).with_context(|| format!("no {key}"))?;
            ensure!(ours.len() == theirs.len(), "{key}: {} lists, reference {}", ours.len(), theirs.len());
            for (k, (a, b)) in ours.iter().zip(theirs).enumerate() {
                ensure!(a.len() == r.input_ids.len() + k + 1, "{key}[{k}]: {} values", a.len());
                report(&format!("{} {key}[{k}]", fx.name), a, b);
                // Normalised values sum to 1: 1e-4 of that scale.
                assert_close_abs(&format!("{key}[{k}]"), a, b, 1e-4)?;
            }
        }
        ensure!(ecco_attrib::attribute_seq2seq(lm, seq, Method::Occlusion, &options, &mut |_| {}).is_err());
        Ok(())
    })
}
