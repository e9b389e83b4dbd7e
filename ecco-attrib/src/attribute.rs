//! Primary attributions of a causal LM's generated tokens, as Ecco computes them.
//!
//! For the `k`-th generated token the model reads the prompt and the `k` tokens generated before
//! it; each method scores every one of those input tokens. As in Ecco 0.1.2
//! (`ecco/attribution.py`, `compute_primary_attributions_scores` and `normalize_attributes`),
//! the per-embedding attribution is reduced to its L2 norm over the embedding dimension and the
//! norms are divided by their sum.

use burn::tensor::{Int, Tensor, TensorData};
use ecco_core::{LanguageModel, ModelKind};

use crate::engine::{AttributionTarget, Row, Scoring, gradients, scores};
use crate::error::{Error, Result};
use crate::gauss_legendre::gauss_legendre;
use crate::method::Method;
use crate::rollout::attention_rollout;

/// Settings shared by every method.
#[derive(Clone, Debug, PartialEq)]
pub struct AttributionOptions {
    /// Differentiate the probability (Ecco) or the logit of the target.
    pub target: AttributionTarget,
    /// Contrastive attribution: subtract this foil token's score from the target's.
    pub contrast_with: Option<u32>,
    /// Integrated gradients' number of Gauss-Legendre points (captum's default: 50).
    pub ig_steps: usize,
    /// Most token positions in one batch (bounds memory: the backward pass keeps every
    /// layer's activations of a batch). 512 keeps integrated gradients on a distilgpt2-sized
    /// model under 0.65 GiB, and is no slower than 4096 (1.6 GiB): the products are as
    /// efficient at 512 rows.
    pub max_batch_tokens: usize,
}

impl Default for AttributionOptions {
    fn default() -> Self {
        Self { target: AttributionTarget::Prob, contrast_with: None, ig_steps: 50, max_batch_tokens: 512 }
    }
}

/// A causal sequence to attribute: `ids[..n_input]` is the prompt, the rest was generated.
#[derive(Clone, Copy, Debug)]
pub struct Sequence<'a> {
    /// Prompt followed by the generated ids.
    pub ids: &'a [u32],
    /// Prompt length.
    pub n_input: usize,
}

impl Sequence<'_> {
    fn n_generated(&self) -> usize {
        self.ids.len().saturating_sub(self.n_input)
    }

    /// `[seq - 1, hidden]` token embeddings of every id but the last (the one nobody reads).
    fn embeddings(&self, model: &dyn LanguageModel) -> Tensor<2> {
        let ids: Vec<i64> = self.ids[..self.ids.len() - 1].iter().map(|&i| i64::from(i)).collect();
        let n = ids.len();
        let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [1, n]), model.device());
        let e = model.embed(ids);
        let hidden = e.dims()[2];
        e.reshape([n, hidden])
    }
}

/// The number of model rows a method needs for `seq` (for progress bars).
pub fn work(method: Method, seq: Sequence<'_>, options: &AttributionOptions) -> usize {
    let n = seq.n_generated();
    match method {
        Method::Gradient | Method::GradXInput => n,
        Method::IntegratedGradients => n * options.ig_steps,
        Method::Occlusion => (0..n).map(|k| seq.n_input + k + 1).sum(),
        Method::AttentionRollout => n,
    }
}

/// One normalised list per generated token: `n_input + k` values for the `k`-th.
///
/// `progress` is called with the number of rows each batch finished.
///
/// # Errors
/// A non-causal model, an empty sequence, ids outside the vocabulary, model errors.
pub fn attribute(
    model: &dyn LanguageModel,
    seq: Sequence<'_>,
    method: Method,
    options: &AttributionOptions,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<Vec<f32>>> {
    check(model, seq, options)?;
    let embeds = seq.embeddings(model);
    let n = seq.n_generated();
    let scoring = Scoring { target: options.target, max_batch_tokens: options.max_batch_tokens, fixed_len: None };
    let row = |k: usize| target_row(seq, options, k);
    let per_position: Vec<Vec<f32>> = match method {
        Method::Gradient | Method::GradXInput | Method::IntegratedGradients => {
            gradient_family(model, &embeds, n, &row, method, options.ig_steps, scoring, progress)?
        }
        Method::Occlusion => occlusion_drops(model, &embeds, seq, scoring, options, progress)?
            .into_iter()
            .map(|drops| drops.into_iter().map(f32::abs).collect())
            .collect(),
        Method::AttentionRollout => {
            let rows = attention_rollout(model, &embeds, seq.n_input)?;
            progress(n);
            rows
        }
    };
    Ok(per_position.into_iter().map(normalise).collect())
}

/// The gradient family on `n` targets, target `k` scored by `row(k)`: per target, per input
/// position, the L2 norm over the embedding of `gradient`, `grad_x_input` or
/// `integrated_gradients` (any other `method` is taken as the last), before normalising.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gradient_family(
    model: &dyn LanguageModel,
    embeds: &Tensor<2>,
    n: usize,
    row: &dyn Fn(usize) -> Row,
    method: Method,
    ig_steps: usize,
    scoring: Scoring,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<Vec<f32>>> {
    let hidden = embeds.dims()[1];
    let rows: Vec<Row> = match method {
        Method::Gradient | Method::GradXInput => (0..n).map(row).collect(),
        _ => {
            // captum `IntegratedGradients` with a zero baseline: x * sum_i w_i grad F(alpha_i x).
            let (alphas, weights) = gauss_legendre(ig_steps);
            (0..n)
                .flat_map(|k| alphas.iter().zip(&weights).map(move |(&a, &w)| Row { scale: a as f32, weight: w as f32, ..row(k) }))
                .collect()
        }
    };
    let grads = gradients(model, embeds, &rows, n, scoring, progress)?;
    if method == Method::Gradient {
        return Ok(grads.iter().map(|g| l2_per_position(g, hidden)).collect());
    }
    let e = read_embeds(embeds)?;
    Ok(grads.iter().map(|g| l2_per_position(&times(g, &e), hidden)).collect())
}

/// Occlusion: per generated token, per input position, the target's score with every input
/// minus the score with that position's embedding zeroed (positive = the token helped).
///
/// # Errors
/// As [`attribute`].
pub fn occlusion(
    model: &dyn LanguageModel,
    seq: Sequence<'_>,
    options: &AttributionOptions,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<Vec<f32>>> {
    check(model, seq, options)?;
    let embeds = seq.embeddings(model);
    let scoring = Scoring { target: options.target, max_batch_tokens: options.max_batch_tokens, fixed_len: None };
    occlusion_drops(model, &embeds, seq, scoring, options, progress)
}

fn occlusion_drops(
    model: &dyn LanguageModel,
    embeds: &Tensor<2>,
    seq: Sequence<'_>,
    scoring: Scoring,
    options: &AttributionOptions,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<Vec<f32>>> {
    let n = seq.n_generated();
    let mut rows = Vec::new();
    for k in 0..n {
        let base = target_row(seq, options, k);
        rows.push(base.clone());
        rows.extend((0..seq.n_input + k).map(|i| Row { occlude: Some(i), ..base.clone() }));
    }
    let values = scores(model, embeds, &rows, scoring, progress)?;
    let mut out = Vec::with_capacity(n);
    let mut at = 0;
    for k in 0..n {
        let len = seq.n_input + k;
        let full = values[at];
        out.push(values[at + 1..at + 1 + len].iter().map(|v| full - v).collect());
        at += 1 + len;
    }
    Ok(out)
}

/// The plain row of the `k`-th generated token: its target at the position before it.
fn target_row(seq: Sequence<'_>, options: &AttributionOptions, k: usize) -> Row {
    Row {
        group: k,
        scale: 1.0,
        weight: 1.0,
        position: seq.n_input + k - 1,
        target: seq.ids[seq.n_input + k],
        foil: options.contrast_with,
        occlude: None,
    }
}

fn check(model: &dyn LanguageModel, seq: Sequence<'_>, options: &AttributionOptions) -> Result<()> {
    let info = model.info();
    if info.kind != ModelKind::Causal {
        return Err(Error::ModelMismatch(format!("attribution of generated tokens needs a causal LM, {} is {:?}", info.name, info.kind)));
    }
    if seq.n_input == 0 {
        return Err(Error::Empty("the prompt has no tokens"));
    }
    check_targets(seq.n_generated(), seq.ids.iter().copied(), info.vocab_size, options)
}

/// The checks every model kind shares: something was generated, integrated gradients has
/// steps, and every id (the foil's included) lies inside the vocabulary.
pub(crate) fn check_targets(n_generated: usize, ids: impl Iterator<Item = u32>, vocab: usize, options: &AttributionOptions) -> Result<()> {
    if n_generated == 0 {
        return Err(Error::Empty("no generated tokens"));
    }
    check_ig_steps(options.ig_steps)?;
    for id in ids.chain(options.contrast_with) {
        if id as usize >= vocab {
            return Err(Error::TokenOutOfRange { id, vocab });
        }
    }
    Ok(())
}

/// The most integrated-gradients steps a run may ask for: each step is a forward and a backward
/// pass per generated token, so 10,000 already takes hours on a large model; more is a typo.
pub const MAX_IG_STEPS: usize = 10_000;

/// Fails unless `steps` is in `1..=MAX_IG_STEPS`.
///
/// # Errors
/// [`Error::IgSteps`].
pub fn check_ig_steps(steps: usize) -> Result<()> {
    if steps == 0 || steps > MAX_IG_STEPS {
        return Err(Error::IgSteps { steps, max: MAX_IG_STEPS });
    }
    Ok(())
}

pub(crate) fn read_embeds(e: &Tensor<2>) -> Result<Vec<f32>> {
    e.clone().into_data().try_into_vec::<f32>().map_err(|err| Error::Readback(format!("{err:?}")))
}

/// Elementwise product of a gradient with the embeddings it was taken at (same row-major layout;
/// the gradient may be shorter).
pub(crate) fn times(g: &[f32], e: &[f32]) -> Vec<f32> {
    g.iter().zip(e).map(|(g, e)| g * e).collect()
}

/// L2 norm of each `hidden`-wide row.
pub(crate) fn l2_per_position(values: &[f32], hidden: usize) -> Vec<f32> {
    values.chunks_exact(hidden).map(|row| row.iter().map(|v| v * v).sum::<f32>().sqrt()).collect()
}

/// Divides by the sum (Ecco's `normalize_attributes`); all zeros stay zeros.
pub(crate) fn normalise(values: Vec<f32>) -> Vec<f32> {
    let sum: f32 = values.iter().sum();
    if sum > 0.0 && sum.is_finite() { values.into_iter().map(|v| v / sum).collect() } else { values }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn norms_and_normalisation() {
        assert_eq!(l2_per_position(&[3.0, 4.0, 0.0, 1.0], 2), vec![5.0, 1.0]);
        assert_eq!(normalise(vec![1.0, 3.0]), vec![0.25, 0.75]);
        assert_eq!(normalise(vec![0.0, 0.0]), vec![0.0, 0.0]);
        assert_eq!(times(&[2.0, 3.0], &[4.0, 5.0, 6.0]), vec![8.0, 15.0]);
    }
}
