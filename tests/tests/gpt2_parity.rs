//! GPT-2 against `transformers` and captum: tokenisation, greedy generation, captures, logits,
//! attributions and the logit lens, on the fixture checkpoints the fixture script built.
//!
//! They run on `ECCO_TEST_DEVICE` (default flex; `wgpu` or `cuda` with the crate's feature of
//! that name), where `device_matches_flex` also compares the device with the CPU directly.

mod common;

use anyhow::{Context, Result, ensure};
use burn::tensor::{Int, Tensor, TensorData};
use common::{Case, Fixture, GPU_TOLERANCE, assert_close_abs, assert_close_scaled, device_tol, set_case, test_device};
use ecco_attrib::{AttributionOptions, Lens, Method, Sequence};
use ecco_core::{CaptureSpec, F32Tensor, LayerSelection, Logits, ModelInputs};
use ecco_models::{DeviceKind, GenerateOptions, LoadedModel, capture_pass, to_f32};

const FIXTURES: &[&str] = &["gpt2-bpe", "gpt2-deep"];

fn load(name: &str) -> Result<(LoadedModel, Fixture)> {
    let fixture = Fixture::load(name)?;
    let model = ecco_models::load(&fixture.dir, test_device()?)?;
    Ok((model, fixture))
}

fn for_each_case(mut f: impl FnMut(&LoadedModel, &Fixture, &Case) -> Result<()>) -> Result<()> {
    for name in FIXTURES {
        let (model, fixture) = load(name)?;
        ensure!(!fixture.cases.is_empty(), "{name}: no cases");
        for case in &fixture.cases {
            set_case(&format!("{name}/{}", case.name));
            f(&model, &fixture, case).with_context(|| format!("{name}/{}", case.name))?;
        }
    }
    Ok(())
}

#[test]
fn tokenisation_matches_transformers() -> Result<()> {
    for_each_case(|m, _, case| {
        let enc = m.tokenizer.encode(&case.prompt, false)?;
        ensure!(enc.ids == case.input_ids, "ids {:?} != {:?}", enc.ids, case.input_ids);
        ensure!(enc.tokens == case.tokens[..case.n_prompt], "tokens {:?}", enc.tokens);
        let all: Vec<String> = case.token_ids.iter().map(|&id| m.tokenizer.token(id)).collect();
        ensure!(all == case.tokens, "raw tokens {all:?} != {:?}", case.tokens);
        ensure!(m.tokenizer.decode(&case.token_ids)? == case.output_text, "decoded text differs");
        Ok(())
    })
}

#[test]
fn greedy_generation_matches_transformers() -> Result<()> {
    for_each_case(|m, _, case| {
        let causal = m.model.as_causal().context("causal")?;
        let opts = GenerateOptions { max_new_tokens: case.max_new_tokens, sampling: None, eos_token_id: m.model.eos_token_id() };
        let ids = ecco_models::generate(causal, &case.input_ids, &opts, |_| {})?;
        ensure!(ids == case.generated_ids, "generated {ids:?}, transformers {:?}", case.generated_ids);
        Ok(())
    })
}

fn final_pass_ids(case: &Case) -> &[u32] {
    &case.token_ids[..case.token_ids.len() - 1]
}

#[test]
fn captures_match_transformers() -> Result<()> {
    for_each_case(|m, fx, case| {
        let (tensors, layers) = capture_pass(m.model.as_lm(), final_pass_ids(case), &CaptureSpec::all())?;
        ensure!(layers == (0..m.model.as_lm().info().n_layers).collect::<Vec<_>>());
        for (ours, theirs) in
            [("hidden_states.decoder", "hidden_states"), ("activations.decoder", "activations"), ("attention.decoder", "attention")]
        {
            let ours_t = tensors.get(ours).with_context(|| format!("no {ours}"))?;
            assert_close_scaled(ours, ours_t, fx.tensor(&case.name, theirs)?, device_tol(1e-4))?;
        }
        // --layers keeps the chosen layers in ascending order.
        let n = m.model.as_lm().info().n_layers;
        let spec = CaptureSpec { activations: true, layers: LayerSelection::Only(vec![n - 1, 0]), ..CaptureSpec::none() };
        let (only, layers) = capture_pass(m.model.as_lm(), final_pass_ids(case), &spec)?;
        ensure!(layers == vec![0, n - 1]);
        let full = fx.tensor(&case.name, "activations")?;
        let per_layer = full.data.len() / n;
        let mut expected = full.data[..per_layer].to_vec();
        expected.extend_from_slice(&full.data[(n - 1) * per_layer..]);
        let expected = F32Tensor { shape: vec![2, full.shape[1], full.shape[2]], data: expected };
        assert_close_scaled("activations --layers", only.get("activations.decoder").context("acts")?, &expected, device_tol(1e-4))
    })
}

#[test]
fn logits_match_transformers() -> Result<()> {
    for_each_case(|m, fx, case| {
        let lm = m.model.as_lm();
        let ids = final_pass_ids(case);
        let logits = all_logits(m, ids)?;
        let vocab = lm.info().vocab_size;
        let p = ids.len();
        let (ours, theirs) = match fx.tensor(&case.name, "logits") {
            Ok(full) => (F32Tensor { shape: vec![p, vocab], data: logits.data }, full.clone()),
            Err(_) => {
                let tail = fx.tensor(&case.name, "logits_tail")?;
                let rows = tail.shape[0];
                (F32Tensor { shape: vec![rows, vocab], data: logits.data[(p - rows) * vocab..].to_vec() }, tail.clone())
            }
        };
        assert_close_scaled("logits", &ours, &theirs, device_tol(1e-4))
    })
}

/// The logits at every position of one forward pass over `ids`.
fn all_logits(m: &LoadedModel, ids: &[u32]) -> Result<F32Tensor> {
    let lm = m.model.as_lm();
    let data: Vec<i64> = ids.iter().map(|&i| i64::from(i)).collect();
    let t = Tensor::<2, Int>::from_data(TensorData::new(data, [1, ids.len()]), lm.device());
    let out = lm.forward(ModelInputs::new(lm.embed(t)), &CaptureSpec::none().with_logits(Logits::All))?;
    Ok(to_f32(out.logits.context("logits")?)?)
}

fn attribute(m: &LoadedModel, case: &Case, method: Method, options: &AttributionOptions) -> Result<Vec<Vec<f32>>> {
    let seq = Sequence { ids: &case.token_ids, n_input: case.n_prompt };
    Ok(ecco_attrib::attribute(m.model.as_lm(), seq, method, options, &mut |_| {})?)
}

fn compare_lists(what: &str, ours: &[Vec<f32>], theirs: &[Vec<f32>], tol: f32) -> Result<()> {
    ensure!(ours.len() == theirs.len(), "{what}: {} lists, reference {}", ours.len(), theirs.len());
    for (k, (o, t)) in ours.iter().zip(theirs).enumerate() {
        assert_close_abs(&format!("{what}[{k}]"), o, t, tol)?;
        ensure!((o.iter().sum::<f32>() - 1.0).abs() < 1e-4, "{what}[{k}] does not sum to 1");
    }
    Ok(())
}

#[test]
fn attributions_match_captum_and_rollout_reference() -> Result<()> {
    let options = AttributionOptions::default();
    for_each_case(|m, _, case| {
        for (method, key, tol) in [
            // The issue asks for 2e-3 (1e-2 for IG); we measure at most 3e-7.
            (Method::GradXInput, "grad_x_input", 1e-5),
            (Method::Gradient, "gradient", 1e-5),
            (Method::IntegratedGradients, "integrated_gradients", 1e-5),
            // Rollout is attention only: as tight as the captured attention.
            (Method::AttentionRollout, "attention_rollout", 1e-5),
        ] {
            let tol = device_tol(tol);
            let reference = case.attributions.get(key).with_context(|| format!("no reference {key}"))?;
            compare_lists(key, &attribute(m, case, method, &options)?, reference, tol)?;
        }
        Ok(())
    })
}

#[test]
fn occlusion_and_contrast_match_reference() -> Result<()> {
    let options = AttributionOptions::default();
    for_each_case(|m, _, case| {
        let seq = Sequence { ids: &case.token_ids, n_input: case.n_prompt };
        let drops = ecco_attrib::occlusion(m.model.as_lm(), seq, &options, &mut |_| {})?;
        ensure!(drops.len() == case.occlusion_raw.len());
        for (k, (o, t)) in drops.iter().zip(&case.occlusion_raw).enumerate() {
            let scale = t.iter().fold(0f32, |a, v| a.max(v.abs()));
            assert_close_abs(&format!("occlusion[{k}]"), o, t, device_tol(1e-4) * scale.max(1e-3))?;
        }
        // Contrastive: the foil differs per step, so attribute one generated token at a time.
        let c = &case.contrastive_grad_x_input;
        for (k, (&foil, expected)) in c.foil_ids.iter().zip(&c.values).enumerate() {
            let ids = &case.token_ids[..case.n_prompt + k + 1];
            let seq = Sequence { ids, n_input: case.n_prompt + k };
            let opts = AttributionOptions { contrast_with: Some(foil), ..options.clone() };
            let ours = ecco_attrib::attribute(m.model.as_lm(), seq, Method::GradXInput, &opts, &mut |_| {})?;
            compare_lists(&format!("contrastive[{k}]"), &ours, std::slice::from_ref(expected), 2e-3)?;
        }
        Ok(())
    })
}

#[test]
fn logit_lens_matches_reference() -> Result<()> {
    for_each_case(|m, fx, case| {
        let lm = m.model.as_lm();
        let hidden = fx.tensor(&case.name, "hidden_states")?;
        for (lens, ranks, watch, preds) in [
            (Lens::Raw, &case.rankings.raw, &case.rankings_watch.raw, &case.layer_predictions.raw),
            (Lens::Normed, &case.rankings.normed, &case.rankings_watch.normed, &case.layer_predictions.normed),
        ] {
            let ours = ecco_attrib::rankings(lm, hidden, &case.token_ids, case.n_prompt, lens)?;
            ensure!(&ours == ranks, "{lens:?} rankings {ours:?} != {ranks:?}");
            let w = &case.rankings_watch;
            let ours = ecco_attrib::rankings_watch(lm, hidden, w.position, &w.watch, lens)?;
            ensure!(&ours == watch, "{lens:?} rankings_watch {ours:?} != {watch:?}");
            let lp = &case.layer_predictions;
            let ours = ecco_attrib::layer_predictions(lm, hidden, lp.position, lp.topk, None, lens, &|id| m.tokenizer.token(id))?;
            ensure!(ours.len() == preds.len(), "{lens:?}: {} layers", ours.len());
            for (l, (o, t)) in ours.iter().zip(preds.iter()).enumerate() {
                let ids: Vec<u32> = o.iter().map(|p| p.token_id).collect();
                let ref_ids: Vec<u32> = t.iter().map(|p| p.token_id).collect();
                ensure!(ids == ref_ids, "{lens:?} layer {l}: top-k {ids:?} != {ref_ids:?}");
                for (a, b) in o.iter().zip(t.iter()) {
                    ensure!(a.token == b.token && a.ranking == b.ranking, "{lens:?} layer {l}: {a:?} vs {b:?}");
                    ensure!((a.prob - b.prob).abs() <= device_tol(1e-4) * b.prob.max(1e-2), "{lens:?} layer {l}: prob {a:?} vs {b:?}");
                }
            }
        }
        // The single-layer form returns that layer's row.
        let lp = &case.layer_predictions;
        let last = lm.info().n_layers - 1;
        let one = ecco_attrib::layer_predictions(lm, hidden, lp.position, lp.topk, Some(last), Lens::Raw, &|id| m.tokenizer.token(id))?;
        ensure!(one.len() == 1 && one[0].first().map(|p| p.token_id) == lp.raw[last].first().map(|p| p.token_id));
        Ok(())
    })
}

/// On a GPU device, the same numbers as the CPU: logits, captures and `grad_x_input` on both
/// fixtures within [`GPU_TOLERANCE`] of flex's (scaled by the values' magnitude for tensors).
/// Nothing to compare on flex: ignored unless a GPU backend is compiled in, and a skip said
/// aloud when `ECCO_TEST_DEVICE` is still flex.
#[test]
#[cfg_attr(not(any(feature = "wgpu", feature = "cuda")), ignore = "compares a GPU device with flex: build with the wgpu or cuda feature")]
fn device_matches_flex() -> Result<()> {
    if test_device()? == DeviceKind::Flex {
        eprintln!("device_matches_flex skipped: ECCO_TEST_DEVICE is flex, so there is no GPU device to compare with flex");
        return Ok(());
    }
    for name in FIXTURES {
        let (gpu, fixture) = load(name)?;
        let cpu = ecco_models::load(&fixture.dir, DeviceKind::Flex)?;
        for case in &fixture.cases {
            set_case(&format!("{name}/{} vs flex", case.name));
            let ids = final_pass_ids(case);
            let check = || -> Result<()> {
                assert_close_scaled("logits", &all_logits(&gpu, ids)?, &all_logits(&cpu, ids)?, GPU_TOLERANCE)?;
                let (ours, _) = capture_pass(gpu.model.as_lm(), ids, &CaptureSpec::all())?;
                let (theirs, _) = capture_pass(cpu.model.as_lm(), ids, &CaptureSpec::all())?;
                for key in ["hidden_states.decoder", "activations.decoder", "attention.decoder"] {
                    let get = |t: &std::collections::BTreeMap<String, F32Tensor>| t.get(key).cloned().with_context(|| format!("no {key}"));
                    assert_close_scaled(key, &get(&ours)?, &get(&theirs)?, GPU_TOLERANCE)?;
                }
                let options = AttributionOptions::default();
                let ours = attribute(&gpu, case, Method::GradXInput, &options)?;
                let theirs = attribute(&cpu, case, Method::GradXInput, &options)?;
                compare_lists("grad_x_input", &ours, &theirs, GPU_TOLERANCE)
            };
            check().with_context(|| format!("{name}/{}", case.name))?;
        }
    }
    Ok(())
}

/// The hand-written backward pass (`LanguageModel::input_gradients`, which attribution uses)
/// against burn's autodiff through the ordinary forward pass on flex: the same final hidden
/// states, and the same gradients of `sum(cotangents * last_hidden)` for two scaled input copies,
/// several cotangent rows and a prefix shorter than the sequence, within 1e-5 of their scale on
/// every device. (The reference is always flex: on lavapipe, wgpu's own autodiff is 1e-3 away
/// from flex on `gpt2-deep`, while the hand-written pass on wgpu stays within 2e-6.)
#[test]
fn hand_backward_matches_autodiff() -> Result<()> {
    for_each_case(|m, fixture, case| {
        let flex;
        let reference = if test_device()? == DeviceKind::Flex {
            m.model.as_lm()
        } else {
            flex = ecco_models::load(&fixture.dir, DeviceKind::Flex)?;
            flex.model.as_lm()
        };
        let lm = m.model.as_lm();
        let ids = final_pass_ids(case);
        let seq = ids.len();
        let embeds = |lm: &dyn ecco_core::LanguageModel| {
            let data: Vec<i64> = ids.iter().map(|&i| i64::from(i)).collect();
            lm.embed(Tensor::<2, Int>::from_data(TensorData::new(data, [1, seq]), lm.device()))
        };
        let scales = [1.0f32, 0.37];
        let copies = |e: Tensor<3>| Tensor::cat(scales.iter().map(|&s| e.clone() * s).collect(), 0);
        let (x, x_ref) = (copies(embeds(lm)), copies(embeds(reference)));
        let tape = lm.input_gradients(x).context("GPT-2 has a hand-written backward pass")??;
        let hidden = lm.info().hidden_size;
        for (copy, len) in [(0, seq), (1, seq.saturating_sub(2).max(1))] {
            let rows = 3;
            let cot: Vec<f32> = (0..rows * len * hidden).map(|i| (i * 7919 % 1000) as f32 / 500.0 - 1.0).collect();
            let cot_on =
                |lm: &dyn ecco_core::LanguageModel| Tensor::<3>::from_data(TensorData::new(cot.clone(), [rows, len, hidden]), lm.device());
            let ours = to_f32(tape.backward(&[copy; 3], cot_on(lm))?)?;
            let xc = x_ref.clone().slice([copy..copy + 1, 0..len, 0..hidden]).repeat_dim(0, rows).autodiff().require_grad();
            let out = reference.forward(ModelInputs::new(xc.clone()), &CaptureSpec::none().with_logits(Logits::Skip))?;
            if copy == 0 {
                let last = tape.last_hidden().slice([0..1, 0..len, 0..hidden]);
                let plain = out.last_hidden.clone().slice([0..1, 0..len, 0..hidden]).inner();
                assert_close_scaled("last hidden", &to_f32(last)?, &to_f32(plain)?, device_tol(1e-5))?;
            }
            let grads = (out.last_hidden * cot_on(reference).autodiff()).sum().backward();
            let theirs = to_f32(xc.grad(&grads).context("no gradient")?)?;
            assert_close_scaled(&format!("input gradient, copy {copy}, {len} positions"), &ours, &theirs, 1e-5)?;
        }
        // Rows of different copies in one call: each as if alone.
        let len = seq;
        let cot: Vec<f32> = (0..2 * len * hidden).map(|i| (i * 104_729 % 997) as f32 / 498.5 - 1.0).collect();
        let cot = Tensor::<3>::from_data(TensorData::new(cot, [2, len, hidden]), lm.device());
        let mixed = to_f32(tape.backward(&[1, 0], cot.clone())?)?;
        for (row, copy) in [(0, 1), (1, 0)] {
            let alone = to_f32(tape.backward(&[copy], cot.clone().slice([row..row + 1, 0..len, 0..hidden]))?)?;
            let part = &mixed.data[row * len * hidden..(row + 1) * len * hidden];
            assert_close_abs(
                &format!("mixed copies, row {row}"),
                part,
                &alone.data,
                1e-6 * alone.data.iter().fold(0f32, |m, v| m.max(v.abs())),
            )?;
        }
        let e = embeds(lm);
        ensure!(tape.backward(&[2], e.clone()).is_err(), "an input copy out of range is an error");
        ensure!(tape.backward(&[0, 0], e).is_err(), "one copy per row");
        Ok(())
    })
}

/// One-token decoding steps (on the CPU: products on the mapped weights, `ecco_models::host`)
/// give the logits of the full forward pass at every position, within 1e-5 of their scale.
#[test]
fn decode_steps_match_the_full_pass() -> Result<()> {
    for_each_case(|m, _, case| {
        if let ecco_models::Model::Gpt2(g) = &m.model {
            let cpu = test_device()? == DeviceKind::Flex;
            ensure!(g.head_host.is_some() == cpu && g.h[0].mlp.c_fc.host.is_some() == cpu, "host weights only on the CPU");
        }
        let ids = final_pass_ids(case);
        let full = all_logits(m, ids)?;
        let vocab = full.shape[2];
        let lm = m.model.as_causal().context("causal")?;
        let (logits, mut cache) = lm.decode_step(&ids[..case.n_prompt], ecco_core::KvCache::default())?;
        let mut at = case.n_prompt - 1;
        let mut step = to_f32(logits)?;
        loop {
            let want = F32Tensor { shape: vec![vocab], data: full.data[at * vocab..(at + 1) * vocab].to_vec() };
            assert_close_scaled(&format!("decode step at {at}"), &step, &want, device_tol(1e-5))?;
            at += 1;
            if at == ids.len() {
                break;
            }
            let (logits, next) = lm.decode_step(&ids[at..at + 1], cache)?;
            cache = next;
            step = to_f32(logits)?;
        }
        Ok(())
    })
}
