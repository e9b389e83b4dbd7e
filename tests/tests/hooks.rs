//! Hook points on the GPT-2, BERT and T5 fixtures: every hook point is emitted once; writing a
//! hook's own recorded value back leaves the logits bit-identical; zero-ablating
//! `blocks.{i}.mlp.post` (or some of its neurons) equals zeroing the FFN output weights it feeds;
//! gradients at hook points agree between GPT-2's hand-written backward pass and burn's autodiff,
//! and autodiff's agree with finite differences taken through writable hooks.

mod common;

use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail, ensure};
use burn::tensor::Tensor;
use common::fixture_dir;
use ecco_attrib::{AttributionTarget, GradientPath, HookTarget, hook_gradients};
use ecco_core::{
    BlockSite, CaptureSpec, Edit, FnIntervention, HookPattern, HookPoint, HookTensor, Hooks, LanguageModel, Logits, ModelInputs, Stack,
    hook_points,
};
use ecco_models::{DeviceKind, LoadedModel, Model};

/// A loaded fixture and the token ids of its inputs (the decoder's for T5).
struct Case {
    loaded: LoadedModel,
    ids: Vec<u32>,
    decoder_ids: Option<Vec<u32>>,
}

impl Case {
    fn load(name: &str) -> Result<Self> {
        let loaded = ecco_models::load(&fixture_dir(name), DeviceKind::Flex)?;
        let (ids, decoder_ids) = match &loaded.model {
            Model::Gpt2(_) => (loaded.tokenizer.encode("The capital of France is", false)?.ids, None),
            Model::Bert(_) => (loaded.tokenizer.encode("The capital of France is [MASK].", true)?.ids, None),
            Model::T5(t5) => {
                let mut decoder = vec![t5.config.decoder_start_token_id];
                decoder.extend(loaded.tokenizer.encode("Das Haus ist", false)?.ids);
                (loaded.tokenizer.encode("translate English to German: The house is wonderful.", true)?.ids, Some(decoder))
            }
        };
        ensure!(ids.len() > 2 && decoder_ids.as_ref().is_none_or(|d| d.len() > 2), "{name}: too few tokens");
        Ok(Self { loaded, ids, decoder_ids })
    }

    fn lm(&self) -> &dyn LanguageModel {
        self.loaded.model.as_lm()
    }

    fn inputs_of(&self, lm: &dyn LanguageModel) -> ModelInputs {
        let embed = |ids: &[u32]| {
            let data: Vec<i64> = ids.iter().map(|&i| i64::from(i)).collect();
            lm.embed(Tensor::from_data(burn::tensor::TensorData::new(data, [1, ids.len()]), lm.device()))
        };
        ModelInputs { embeds: embed(&self.ids), decoder_embeds: self.decoder_ids.as_deref().map(embed) }
    }

    fn inputs(&self) -> ModelInputs {
        self.inputs_of(self.lm())
    }

    /// The scored position: the last one.
    fn position(&self) -> usize {
        self.decoder_ids.as_ref().unwrap_or(&self.ids).len() - 1
    }
}

const FIXTURES: [&str; 3] = ["gpt2-bpe", "bert-wordpiece", "t5-gated"];

fn values(t: Tensor<3>) -> Result<Vec<f32>> {
    t.into_data().try_into_vec::<f32>().map_err(|e| anyhow::anyhow!("{e:?}"))
}

fn logits(lm: &dyn LanguageModel, inputs: ModelInputs, hooks: &mut Hooks) -> Result<Vec<f32>> {
    values(lm.forward_hooked(inputs, hooks)?.logits.context("no logits")?)
}

fn all_patterns(lm: &dyn LanguageModel) -> Vec<HookPattern> {
    hook_points(&lm.hook_stacks()).into_iter().map(HookPattern::from).collect()
}

#[test]
fn every_hook_point_is_emitted_once_with_its_shape() -> Result<()> {
    for name in FIXTURES {
        let case = Case::load(name)?;
        let lm = case.lm();
        let spec = CaptureSpec { hooks: all_patterns(lm), ..CaptureSpec::none() };
        // Every emission, in order, seen by an intervention that changes nothing.
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        let watch = move |point: &HookPoint, value: HookTensor| {
            log.lock().map_err(|_| ecco_core::Error::MissingInput("poisoned"))?.push(*point);
            Ok(value)
        };
        let mut hooks = Hooks::new(spec);
        for pattern in all_patterns(lm) {
            hooks = hooks.with_intervention(pattern, Arc::new(FnIntervention(watch.clone())));
        }
        let out = lm.forward_hooked(case.inputs(), &mut hooks)?;
        let expected = hook_points(&lm.hook_stacks());
        let seen = seen.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.clone();
        ensure!(seen == expected, "{name}: emitted {seen:?}, expected {expected:?}");
        ensure!(out.hooks.len() == expected.len(), "{name}: {} of {} hook points recorded", out.hooks.len(), expected.len());
        let info = lm.info();
        for (point, value) in &out.hooks {
            let dims = value.dims();
            let pos = match point.stack {
                Stack::Encoder => case.ids.len(),
                _ => case.position() + 1,
            };
            let d = info.hidden_size;
            let want: Vec<usize> = match point.site {
                ecco_core::Site::Embed | ecco_core::Site::FinalNorm => vec![1, pos, d],
                ecco_core::Site::Block(_, site) => match site {
                    BlockSite::MlpPost => vec![1, pos, info.intermediate_size],
                    BlockSite::AttnPattern => vec![1, info.n_heads, pos, pos],
                    BlockSite::CrossAttnPattern => vec![1, info.n_heads, pos, case.ids.len()],
                    BlockSite::AttnQ | BlockSite::AttnK | BlockSite::AttnV | BlockSite::AttnZ => vec![1, pos, info.n_heads, dims[3]],
                    _ => vec![1, pos, d],
                },
            };
            ensure!(dims == want, "{name} {point}: shape {dims:?}, expected {want:?}");
        }
    }
    Ok(())
}

#[test]
fn writing_back_a_recorded_value_leaves_the_logits_bit_identical() -> Result<()> {
    for name in FIXTURES {
        let case = Case::load(name)?;
        let lm = case.lm();
        let spec = CaptureSpec { hooks: all_patterns(lm), ..CaptureSpec::none() }.with_logits(Logits::All);
        let out = lm.forward(case.inputs(), &spec)?;
        let reference = values(out.logits.context("no logits")?)?;
        for (point, value) in out.hooks {
            let mut hooks = Hooks::new(CaptureSpec::none()).with_intervention(point.into(), Arc::new(Edit::Replace(value)));
            let ours = logits(lm, case.inputs(), &mut hooks)?;
            ensure!(ours == reference, "{name}: writing back {point} changed the logits");
        }
    }
    Ok(())
}

/// The model with its FFN output weights zeroed at `point` (`mlp.post`), rows `neurons` only
/// when given.
fn zeroed(case: &Case, point: HookPoint, neurons: Option<&[usize]>) -> Result<Model> {
    let Some(block) = point.block_index() else { bail!("{point} is not in a block") };
    // The rows of an `[in, out]` weight are the neurons.
    let zero = |w: &Tensor<2>| -> Tensor<2> {
        let Some(neurons) = neurons else { return w.zeros_like() };
        let [a, _] = w.dims();
        let mut keep = vec![1f32; a];
        for &n in neurons {
            keep[n] = 0.0;
        }
        let shape = [a, 1];
        w.clone() * Tensor::<2>::from_data(burn::tensor::TensorData::new(keep, shape), &w.device())
    };
    Ok(match &case.loaded.model {
        Model::Gpt2(m) => {
            let mut m = m.clone();
            let c_proj = &mut m.h[block].mlp.c_proj;
            c_proj.weight = zero(&c_proj.weight);
            c_proj.host = None;
            Model::Gpt2(m)
        }
        Model::Bert(m) => {
            let mut m = m.clone();
            let down = &mut m.layer[block].ffn.down;
            down.weight = zero(&down.weight);
            Model::Bert(m)
        }
        Model::T5(m) => {
            let mut m = m.clone();
            let stack = if point.stack == Stack::Encoder { &mut m.encoder } else { &mut m.decoder };
            let down = &mut stack.block[block].ffn.down;
            down.weight = zero(&down.weight);
            Model::T5(m)
        }
    })
}

#[test]
fn zero_ablating_mlp_post_equals_zeroing_the_ffn_output_weights() -> Result<()> {
    for name in FIXTURES {
        let case = Case::load(name)?;
        let lm = case.lm();
        let stacks = lm.hook_stacks();
        for &(stack, _) in &stacks {
            let point = HookPoint::block(stack, 1, BlockSite::MlpPost);
            for (edit, neurons) in
                [(Edit::Zero, None), (Edit::ZeroIndices { axis: 1, indices: vec![0, 17, 30] }, Some(&[0usize, 17, 30][..]))]
            {
                let mut hooks = Hooks::new(CaptureSpec::none()).with_intervention(point.into(), Arc::new(edit.clone()));
                let ablated = logits(lm, case.inputs(), &mut hooks)?;
                let plain = logits(lm, case.inputs(), &mut Hooks::new(CaptureSpec::none()))?;
                let model = zeroed(&case, point, neurons)?;
                let reference = logits(model.as_lm(), case.inputs_of(model.as_lm()), &mut Hooks::new(CaptureSpec::none()))?;
                ensure!(ablated != plain, "{name} {point} {edit:?}: the ablation changed nothing");
                ensure!(ablated == reference, "{name} {point} {edit:?}: ablated logits differ from the zeroed model's");
            }
        }
    }
    Ok(())
}

#[test]
fn interventions_that_do_not_fit_are_errors() -> Result<()> {
    let case = Case::load("gpt2-bpe")?;
    let lm = case.lm();
    let point = HookPoint::block(Stack::Main, 0, BlockSite::MlpPost);
    for edit in [
        Edit::ZeroIndices { axis: 1, indices: vec![100_000] },
        Edit::ZeroIndices { axis: 2, indices: vec![0] },
        Edit::Add { vector: vec![1.0; 3], scale: 1.0 },
    ] {
        let mut hooks = Hooks::new(CaptureSpec::none()).with_intervention(point.into(), Arc::new(edit.clone()));
        let Err(e) = lm.forward_hooked(case.inputs(), &mut hooks) else { bail!("{edit:?} was accepted") };
        ensure!(e.to_string().starts_with("intervention on `blocks.0.mlp.post`"), "{e}");
    }
    Ok(())
}

fn grads_of(found: &[(HookPoint, HookTensor)], point: &HookPoint) -> Result<Vec<f32>> {
    let (_, g) = found.iter().find(|(p, _)| p == point).with_context(|| format!("no gradient at {point}"))?;
    Ok(g.to_vec()?.1)
}

/// A deterministic direction of `n` values in [-1, 1].
fn direction(n: usize) -> Vec<f32> {
    (0..n).map(|i| (i as f32 * 0.618_034 + 0.1).fract() * 2.0 - 1.0).collect()
}

/// `value + eps * direction`.
fn shifted(value: &HookTensor, eps: f32) -> HookTensor {
    let along = |n: usize, device: &burn::tensor::Device| Tensor::<1>::from_floats(direction(n).as_slice(), device) * eps;
    match value {
        HookTensor::Rank3(a) => HookTensor::Rank3(a.clone() + along(a.dims().iter().product(), &a.device()).reshape(a.dims())),
        HookTensor::Rank4(a) => HookTensor::Rank4(a.clone() + along(a.dims().iter().product(), &a.device()).reshape(a.dims())),
    }
}

#[test]
fn gradients_at_hook_points_hand_written_against_autodiff() -> Result<()> {
    let case = Case::load("gpt2-bpe")?;
    let lm = case.lm();
    let token = case.ids[1];
    for target in [AttributionTarget::Prob, AttributionTarget::Logit] {
        let target = HookTarget { position: case.position() - 1, token, foil: None, target };
        let patterns = all_patterns(lm);
        let fast = hook_gradients(lm, case.inputs(), &patterns, target, GradientPath::Fastest)?;
        let reference = hook_gradients(lm, case.inputs(), &patterns, target, GradientPath::Autodiff)?;
        ensure!(fast.len() == reference.len() && fast.len() == hook_points(&lm.hook_stacks()).len());
        for (point, g) in &reference {
            let theirs = g.to_vec()?.1;
            let ours = grads_of(&fast, point)?;
            let scale = theirs.iter().fold(0f32, |m, v| m.max(v.abs()));
            let worst = ours.iter().zip(&theirs).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
            ensure!(scale > 0.0 || *point == HookPoint::block(Stack::Main, 0, BlockSite::AttnPattern), "{point}: zero gradient");
            ensure!(worst <= 1e-4 * scale.max(1e-6), "{point} ({:?}): max |diff| {worst:e}, scale {scale:e}", target.target);
        }
    }
    Ok(())
}

#[test]
fn autodiff_gradients_at_hook_points_match_finite_differences() -> Result<()> {
    let checks: [(&str, &[&str]); 3] = [
        ("gpt2-bpe", &["embed", "blocks.0.mlp.post", "blocks.1.attn.z", "blocks.1.resid_mid"]),
        ("bert-wordpiece", &["embed", "blocks.10.mlp.post", "blocks.3.attn.v", "blocks.6.attn.pattern", "blocks.11.resid_post"]),
        (
            "t5-gated",
            &[
                "encoder.blocks.0.mlp.post",
                "encoder.final_norm",
                "decoder.blocks.2.attn.z",
                "decoder.blocks.1.cross_attn.pattern",
                "decoder.blocks.0.attn.v",
                "decoder.blocks.2.resid_mid",
            ],
        ),
    ];
    for (name, names) in checks {
        let case = Case::load(name)?;
        let lm = case.lm();
        let position = case.position();
        let token = case.ids[1];
        let target = HookTarget { position, token, foil: None, target: AttributionTarget::Logit };
        let points: Vec<HookPoint> = names.iter().map(|n| n.parse()).collect::<Result<_, _>>()?;
        let patterns: Vec<HookPattern> = points.iter().copied().map(HookPattern::from).collect();
        let grads = hook_gradients(lm, case.inputs(), &patterns, target, GradientPath::Autodiff)?;
        let recorded = lm.forward(case.inputs(), &CaptureSpec { hooks: patterns.clone(), ..CaptureSpec::none() })?.hooks;
        let vocab = lm.info().vocab_size;
        for point in &points {
            let value = recorded.get(point).with_context(|| format!("{point} not recorded"))?;
            let n: usize = value.dims().iter().product();
            let eps = 1e-2;
            let f = |sign: f32| -> Result<f32> {
                let mut hooks =
                    Hooks::new(CaptureSpec::none()).with_intervention((*point).into(), Arc::new(Edit::Replace(shifted(value, sign * eps))));
                Ok(logits(lm, case.inputs(), &mut hooks)?[position * vocab + token as usize])
            };
            // Central differences at eps and eps / 2, extrapolated (Richardson): the error is
            // then of order eps^4, not eps^2.
            let coarse = (f(1.0)? - f(-1.0)?) / (2.0 * eps);
            let fine = (f(0.5)? - f(-0.5)?) / eps;
            let numeric = (4.0 * fine - coarse) / 3.0;
            let analytic: f32 = grads_of(&grads, point)?.iter().zip(direction(n)).map(|(g, d)| g * d).sum();
            ensure!(analytic.abs() > 1e-2, "{name} {point}: the gradient along the direction is {analytic}");
            ensure!(
                (numeric - analytic).abs() <= 2e-2 * analytic.abs(),
                "{name} {point}: finite difference {numeric}, gradient {analytic}"
            );
        }
    }
    Ok(())
}

#[test]
fn interventions_apply_to_decoding_steps_as_to_a_full_pass() -> Result<()> {
    let case = Case::load("gpt2-bpe")?;
    let lm = case.lm();
    let Model::Gpt2(gpt2) = &case.loaded.model else { bail!("not GPT-2") };
    let causal: &dyn ecco_core::CausalLm = gpt2.as_ref();
    let width = lm.info().hidden_size;
    let steer = || {
        let add = Edit::Add { vector: direction(width), scale: 3.0 };
        Hooks::new(CaptureSpec::none()).with_intervention("blocks.0.resid_post".parse().unwrap_or_else(|e| panic!("{e}")), Arc::new(add))
    };
    let n = case.ids.len();
    let vocab = lm.info().vocab_size;
    let full = logits(lm, case.inputs(), &mut steer())?;
    let last = &full[(n - 1) * vocab..];
    let plain = logits(lm, case.inputs(), &mut Hooks::new(CaptureSpec::none()))?;
    ensure!(plain[(n - 1) * vocab..] != *last, "steering changed nothing");
    let mut hooks = steer();
    let (_, cache) = causal.decode_step_hooked(&case.ids[..n - 1], ecco_core::KvCache::default(), &mut hooks)?;
    let (stepped, _) = causal.decode_step_hooked(&case.ids[n - 1..], cache, &mut hooks)?;
    let stepped = stepped.into_data().try_into_vec::<f32>().map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let worst = stepped.iter().zip(last).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    ensure!(worst < 1e-4, "decoding steps with the same intervention differ from the full pass by {worst}");
    Ok(())
}
