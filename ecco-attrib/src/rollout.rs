//! Attention rollout (Abnar & Zuidema 2020, "Quantifying Attention Flow in Transformers").
//!
//! Per block, the heads' attention is averaged, the residual connection is added as an identity
//! (`A + I`, rows renormalised, i.e. `0.5 A + 0.5 I`), and the blocks are composed from the first
//! to the last: `R = Â_L · … · Â_1`. Row `p` of `R` says how much of position `p`'s final state
//! flows from each input position. The method reads attention only: it ignores the target token,
//! `--attribution-target` and `--contrast-with`.
//!
//! A causal model's attention at position `p` depends on positions `≤ p` only, so one forward
//! pass over the whole sequence gives every generated token's rollout (row `n_input + k - 1`).

use burn::tensor::Tensor;
use ecco_core::{CaptureSpec, LanguageModel, Logits, ModelInputs};

use crate::error::{Error, Result};

/// One row per generated token: the rollout of the position that predicted it, over the
/// `n_input + k` positions it read. Rows sum to 1.
///
/// `embeds` is `[seq - 1, hidden]`: every token but the last, on the model's device.
pub(crate) fn attention_rollout(model: &dyn LanguageModel, embeds: &Tensor<2>, n_input: usize) -> Result<Vec<Vec<f32>>> {
    let [s, hidden] = embeds.dims();
    let capture = CaptureSpec { attention: true, ..CaptureSpec::none() }.with_logits(Logits::Skip);
    let out = model.forward(ModelInputs::new(embeds.clone().reshape([1, s, hidden])), &capture)?;
    let attention = out.decoder.map(|d| d.attention).unwrap_or_default();
    if attention.is_empty() {
        return Err(Error::Readback("the model recorded no attention for attention rollout".into()));
    }
    let eye = Tensor::<2>::eye(s, model.device());
    let mut joint: Option<Tensor<2>> = None;
    for a in attention {
        let mean = a.mean_dim(1).reshape([s, s]) + eye.clone();
        let augmented = mean.clone() / mean.sum_dim(1);
        joint = Some(match joint {
            None => augmented,
            Some(j) => augmented.matmul(j),
        });
    }
    let joint = joint.map(|j| j.into_data().try_into_vec::<f32>()).transpose().map_err(|e| Error::Readback(format!("{e:?}")))?;
    let joint = joint.unwrap_or_default();
    Ok((n_input..=s).map(|next| joint[(next - 1) * s..(next - 1) * s + next].to_vec()).collect())
}
