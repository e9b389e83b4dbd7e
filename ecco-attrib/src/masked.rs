//! Masked LMs (BERT, RoBERTa, DistilBERT), beyond Ecco: what the model predicts at a mask
//! position, and which input tokens drove that prediction.
//!
//! Attribution follows Ecco's convention for generated tokens with the mask position in place of
//! the last one: the target is the softmax probability (or logit) of the predicted token at the
//! mask position, differentiated with respect to the word embeddings of the whole sequence (the
//! model reads both directions), reduced to the L2 norm per position and divided by the sum.

use burn::tensor::{Int, Tensor, TensorData};
use ecco_core::{CaptureSpec, LanguageModel, Logits, ModelInputs, ModelKind};
use serde::{Deserialize, Serialize};

use crate::attribute::{AttributionOptions, gradient_family, normalise};
use crate::engine::{Row, Scoring, scores};
use crate::error::{Error, Result};
use crate::lens::LayerPrediction;
use crate::method::Method;

/// A prediction to attribute: the token `target` at input position `position`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaskedTarget {
    /// Index of the (mask) token in the input.
    pub position: usize,
    /// The predicted token id.
    pub target: u32,
}

/// `[seq, hidden]` word embeddings of `ids`.
fn embeddings(model: &dyn LanguageModel, ids: &[u32]) -> Tensor<2> {
    let data: Vec<i64> = ids.iter().map(|&i| i64::from(i)).collect();
    let n = ids.len();
    let e = model.embed(Tensor::<2, Int>::from_data(TensorData::new(data, [1, n]), model.device()));
    let hidden = e.dims()[2];
    e.reshape([n, hidden])
}

fn check(model: &dyn LanguageModel, ids: &[u32], targets: &[MaskedTarget]) -> Result<()> {
    let info = model.info();
    if info.kind != ModelKind::Masked {
        return Err(Error::ModelMismatch(format!("masked-LM attribution needs a masked LM, {} is {:?}", info.name, info.kind)));
    }
    if ids.is_empty() {
        return Err(Error::Empty("the text has no tokens"));
    }
    let vocab = info.vocab_size;
    for &id in ids.iter().chain(targets.iter().map(|t| &t.target)) {
        if id as usize >= vocab {
            return Err(Error::TokenOutOfRange { id, vocab });
        }
    }
    if let Some(t) = targets.iter().find(|t| t.position >= ids.len()) {
        return Err(Error::PositionOutOfRange { position: t.position, reason: format!("the text has {} tokens", ids.len()) });
    }
    Ok(())
}

/// Per target, the `top_k` tokens the model predicts at its position: `(id, probability)`,
/// most likely first (ties: lower id first).
///
/// # Errors
/// A model without an MLM head, positions outside `ids`.
pub fn masked_predictions(
    model: &dyn LanguageModel,
    ids: &[u32],
    positions: &[usize],
    top_k: usize,
    token: &dyn Fn(u32) -> String,
) -> Result<Vec<Vec<LayerPrediction>>> {
    let targets: Vec<MaskedTarget> = positions.iter().map(|&position| MaskedTarget { position, target: 0 }).collect();
    check(model, ids, &targets)?;
    let embeds = embeddings(model, ids).unsqueeze::<3>();
    let out = model.forward(ModelInputs::new(embeds), &CaptureSpec::none().with_logits(Logits::All))?;
    let logits = out.logits.ok_or(Error::NoLmHead)?;
    let vocab = logits.dims()[2];
    let flat = logits.into_data().try_into_vec::<f32>().map_err(|e| Error::Readback(format!("{e:?}")))?;
    Ok(positions.iter().map(|&p| crate::lens::top_k(&flat[p * vocab..(p + 1) * vocab], top_k, token)).collect())
}

/// One normalised list per target, one value per input token.
///
/// `progress` is called with the number of rows each batch finished.
///
/// # Errors
/// A model that is not a masked LM or has no head, positions or ids out of range,
/// `attention_rollout` (not defined here), model errors.
pub fn attribute_masked(
    model: &dyn LanguageModel,
    ids: &[u32],
    targets: &[MaskedTarget],
    method: Method,
    options: &AttributionOptions,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<Vec<f32>>> {
    check(model, ids, targets)?;
    crate::attribute::check_ig_steps(options.ig_steps)?;
    let embeds = embeddings(model, ids);
    let n = targets.len();
    let scoring = Scoring { target: options.target, max_batch_tokens: options.max_batch_tokens, fixed_len: Some(ids.len()) };
    let row = |k: usize| masked_row(targets, options, k);
    let per_position: Vec<Vec<f32>> = match method {
        Method::Gradient | Method::GradXInput | Method::IntegratedGradients => {
            gradient_family(model, &embeds, n, &row, method, options.ig_steps, scoring, progress)?
        }
        Method::Occlusion => occlusion_masked(model, &embeds, ids.len(), n, &row, scoring, progress)?
            .into_iter()
            .map(|drops| drops.into_iter().map(f32::abs).collect())
            .collect(),
        Method::AttentionRollout => {
            return Err(Error::ModelMismatch("attention_rollout is defined for causal LMs only".to_owned()));
        }
    };
    Ok(per_position.into_iter().map(normalise).collect())
}

/// Target `k`'s row: its mask position and predicted token, the foil if any.
fn masked_row(targets: &[MaskedTarget], options: &AttributionOptions, k: usize) -> Row {
    Row {
        group: k,
        scale: 1.0,
        weight: 1.0,
        position: targets[k].position,
        target: targets[k].target,
        foil: options.contrast_with,
        occlude: None,
    }
}

/// Per target, the score with every input minus the score with one input embedding zeroed.
///
/// # Errors
/// As [`attribute_masked`].
pub fn occlusion_masked_drops(
    model: &dyn LanguageModel,
    ids: &[u32],
    targets: &[MaskedTarget],
    options: &AttributionOptions,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<Vec<f32>>> {
    check(model, ids, targets)?;
    let embeds = embeddings(model, ids);
    let scoring = Scoring { target: options.target, max_batch_tokens: options.max_batch_tokens, fixed_len: Some(ids.len()) };
    let row = |k: usize| masked_row(targets, options, k);
    occlusion_masked(model, &embeds, ids.len(), targets.len(), &row, scoring, progress)
}

fn occlusion_masked(
    model: &dyn LanguageModel,
    embeds: &Tensor<2>,
    len: usize,
    n: usize,
    row: &dyn Fn(usize) -> Row,
    scoring: Scoring,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<Vec<f32>>> {
    let mut rows = Vec::with_capacity(n * (len + 1));
    for k in 0..n {
        rows.push(row(k));
        rows.extend((0..len).map(|i| Row { occlude: Some(i), ..row(k) }));
    }
    let values = scores(model, embeds, &rows, scoring, progress)?;
    Ok(values.chunks_exact(len + 1).map(|c| c[1..].iter().map(|v| c[0] - v).collect()).collect())
}
