//! Gradients at hook points: the gradient of one scored token (its probability or logit at a
//! position, optionally minus a foil's) with respect to any hook point of the forward pass, not
//! only the input embeddings. Neuron attribution (`grad × activation` per neuron of
//! `blocks.{i}.mlp.post`) is then one product with the captured activations.
//!
//! Models with a hand-written backward pass that reaches the hook points
//! ([`InputGradients::hook_backward`](ecco_core::InputGradients::hook_backward), GPT-2) use it;
//! others use autodiff ([`GradientProbe`]: a zero leaf added at each hook point).

use std::sync::Arc;

use burn::tensor::{Tensor, TensorData};
use ecco_core::{CaptureSpec, GradientProbe, HookPattern, HookPoint, HookTensor, Hooks, Intervention, LanguageModel, Logits, ModelInputs};

use crate::engine::{AttributionTarget, head_logit_gradients, head_scores};
use crate::error::{Error, Result};

/// The scalar a hook gradient differentiates: the score of `token` at `position` (the decoder's
/// position for an encoder-decoder), minus `foil`'s when given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HookTarget {
    /// The position whose output is scored.
    pub position: usize,
    /// The scored token.
    pub token: u32,
    /// A token whose score is subtracted (contrastive).
    pub foil: Option<u32>,
    /// The token's probability or its logit.
    pub target: AttributionTarget,
}

/// How [`hook_gradients`] computes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GradientPath {
    /// The model's hand-written backward pass when it has one, else autodiff.
    #[default]
    Fastest,
    /// Always burn's autodiff (the reference).
    Autodiff,
}

/// The hook points `patterns` select in `model`, each once, in emission order.
///
/// # Errors
/// A pattern that selects nothing in the model.
pub fn resolve_points(model: &dyn LanguageModel, patterns: &[HookPattern]) -> Result<Vec<HookPoint>> {
    let stacks = model.hook_stacks();
    let mut points = Vec::new();
    for pattern in patterns {
        for point in pattern.resolve(&stacks).map_err(ecco_core::Error::from)? {
            if !points.contains(&point) {
                points.push(point);
            }
        }
    }
    let order = ecco_core::hook_points(&stacks);
    points.sort_by_key(|p| order.iter().position(|q| q == p));
    Ok(points)
}

/// The gradient of `target`'s score with respect to every hook point `patterns` select, for one
/// sequence (`inputs` of batch 1, plain tensors): `(point, gradient)` in emission order, each
/// gradient `[1, …]` shaped as the hook's value.
///
/// # Errors
/// A pattern that selects nothing, a position or token out of range, a model without an LM
/// head, a failed forward pass.
pub fn hook_gradients(
    model: &dyn LanguageModel,
    inputs: ModelInputs,
    patterns: &[HookPattern],
    target: HookTarget,
    path: GradientPath,
) -> Result<Vec<(HookPoint, HookTensor)>> {
    let points = resolve_points(model, patterns)?;
    let seq = inputs.decoder_embeds.as_ref().unwrap_or(&inputs.embeds).dims()[1];
    if target.position >= seq {
        return Err(Error::PositionOutOfRange { position: target.position, reason: format!("the sequence has {seq} positions") });
    }
    if path == GradientPath::Fastest
        && inputs.decoder_embeds.is_none()
        && let Some(found) = hand_written(model, &inputs.embeds, &points, target)?
    {
        return Ok(found);
    }
    autodiff(model, inputs, &points, target)
}

/// The gradients through the model's hand-written backward pass; `None` when it has none.
fn hand_written(
    model: &dyn LanguageModel,
    embeds: &Tensor<3>,
    points: &[HookPoint],
    target: HookTarget,
) -> Result<Option<Vec<(HookPoint, HookTensor)>>> {
    let Some(tape) = model.input_gradients(embeds.clone()) else { return Ok(None) };
    let tape = tape?;
    let last = tape.last_hidden();
    let [_, seq, hidden] = last.dims();
    let h = last.slice_dim(1, target.position..target.position + 1);
    let dlogits = head_logit_gradients(model, h.clone(), std::iter::once((target.token, target.foil, 1.0)), target.target)?;
    let vocab = dlogits.dims()[1];
    let dh = tape.head_backward_at(h, dlogits.reshape([1, 1, vocab]))?;
    let at: Vec<f32> = (0..seq).map(|j| if j == target.position { 1.0 } else { 0.0 }).collect();
    let at = Tensor::<3>::from_data(TensorData::new(at, [1, seq, 1]), &dh.device());
    let Some(found) = tape.hook_backward(0, dh.reshape([1, 1, hidden]) * at, points) else { return Ok(None) };
    let mut found = found?;
    found.sort_by_key(|(p, _)| points.iter().position(|q| q == p));
    Ok(Some(found))
}

/// The gradients by autodiff: a [`GradientProbe`] at each point.
fn autodiff(
    model: &dyn LanguageModel,
    inputs: ModelInputs,
    points: &[HookPoint],
    target: HookTarget,
) -> Result<Vec<(HookPoint, HookTensor)>> {
    let probe = Arc::new(GradientProbe::new());
    let mut hooks = Hooks::new(CaptureSpec::none().with_logits(Logits::Skip));
    for point in points {
        hooks = hooks.with_intervention(HookPattern::from(*point), Arc::clone(&probe) as Arc<dyn Intervention>);
    }
    let inputs = ModelInputs { embeds: inputs.embeds.autodiff(), decoder_embeds: inputs.decoder_embeds.map(Tensor::autodiff) };
    let out = model.forward_hooked(inputs, &mut hooks)?;
    let h = out.last_hidden.slice_dim(1, target.position..target.position + 1);
    let score = head_scores(model, h, std::iter::once((target.token, target.foil, 1.0)), target.target)?.sum();
    if !score.is_tracked() {
        return Err(Error::Empty("no hook point of the forward pass was emitted"));
    }
    let grads = score.backward();
    Ok(probe.gradients(&grads).into_iter().map(|(p, g)| (p, g.without_autodiff())).collect())
}
