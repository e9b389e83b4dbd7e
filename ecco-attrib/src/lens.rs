//! The logit lens: what each layer's hidden state predicts (Ecco's `layer_predictions`,
//! `rankings`, `rankings_watch`).
//!
//! Rows are blocks: layer `l` reads hidden state `l + 1` of the trace (index 0 is the embedding
//! output, skipped as Ecco does). Positions follow Ecco: the prediction *for* position `P` comes
//! from the hidden state at index `P - 1`. A token's ranking is 1 plus the number of
//! vocabulary entries with a strictly greater logit.

use burn::tensor::{Int, Tensor, TensorData};
use ecco_core::{F32Tensor, LanguageModel, TraceModel};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How a layer's hidden state is projected to the vocabulary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lens {
    /// The LM head on the hidden state as is (Ecco 0.1.2): only the last layer, which Hugging
    /// Face returns after the final norm, is normed.
    Raw,
    /// The final layer norm first, then the LM head, for every layer (the usual logit lens).
    #[default]
    Normed,
}

impl std::str::FromStr for Lens {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "raw" => Ok(Self::Raw),
            "normed" => Ok(Self::Normed),
            other => Err(format!("unknown lens `{other}` (known: raw, normed)")),
        }
    }
}

/// One of a layer's top-k predictions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerPrediction {
    /// The token's id.
    pub token_id: u32,
    /// The tokenizer's raw token.
    pub token: String,
    /// Softmax probability under this layer's lens logits.
    pub prob: f32,
    /// 1-based rank among the vocabulary.
    pub ranking: usize,
}

/// Fails unless `trace` was made by a model shaped like `model`.
///
/// # Errors
/// [`Error::ModelMismatch`] naming what differs.
pub fn check_compatible(model: &dyn LanguageModel, trace: &TraceModel) -> Result<()> {
    let info = model.info();
    let pairs = [
        ("layers", info.n_layers, trace.n_layers),
        ("hidden size", info.hidden_size, trace.hidden_size),
        ("vocabulary", info.vocab_size, trace.vocab_size),
    ];
    for (what, ours, theirs) in pairs {
        if ours != theirs {
            return Err(Error::ModelMismatch(format!("{what}: the model has {ours}, the trace {theirs}")));
        }
    }
    Ok(())
}

/// Lens logits `[layer][i][vocab]` for hidden-state positions `positions`.
fn lens_logits(model: &dyn LanguageModel, hidden: &F32Tensor, positions: &[usize], lens: Lens) -> Result<Vec<Vec<Vec<f32>>>> {
    let [layers_plus_one, seq, width] = hidden_dims(model, hidden)?;
    let n_layers = layers_plus_one - 1;
    let device = model.device();
    let all = Tensor::<3>::from_data(TensorData::new(hidden.data.clone(), [layers_plus_one, seq, width]), device);
    let idx: Vec<i64> = positions.iter().map(|&p| p as i64).collect();
    let idx = Tensor::<1, Int>::from_data(TensorData::new(idx, [positions.len()]), device);
    let rows = all.slice([1..layers_plus_one, 0..seq, 0..width]).select(1, idx);
    let rows = match lens {
        Lens::Raw => rows,
        // Hugging Face's last hidden state is already after the final norm.
        Lens::Normed if n_layers > 1 => {
            let n = positions.len();
            let inner = model.final_norm(rows.clone().slice([0..n_layers - 1, 0..n, 0..width]));
            Tensor::cat(vec![inner, rows.slice([n_layers - 1..n_layers, 0..n, 0..width])], 0)
        }
        Lens::Normed => rows,
    };
    let logits = model.lm_head(rows).ok_or(Error::NoLmHead)?;
    let vocab = logits.dims()[2];
    let flat = logits.into_data().try_into_vec::<f32>().map_err(|e| Error::Readback(format!("{e:?}")))?;
    Ok(flat.chunks_exact(positions.len() * vocab).map(|layer| layer.chunks_exact(vocab).map(<[f32]>::to_vec).collect()).collect())
}

fn hidden_dims(model: &dyn LanguageModel, hidden: &F32Tensor) -> Result<[usize; 3]> {
    let info = model.info();
    match hidden.shape[..] {
        [l, s, h] if l == info.n_layers + 1 && h == info.hidden_size && s > 0 => Ok([l, s, h]),
        _ => Err(Error::ModelMismatch(format!(
            "hidden states have shape {:?}, the model needs [{}, positions, {}]",
            hidden.shape,
            info.n_layers + 1,
            info.hidden_size
        ))),
    }
}

/// 1 + the number of entries strictly greater than `values[id]`.
pub fn rank(values: &[f32], id: u32) -> usize {
    let v = values[id as usize];
    1 + values.iter().filter(|&&x| x > v).count()
}

fn check_position(position: usize, seq: usize) -> Result<usize> {
    if position == 0 || position > seq {
        return Err(Error::PositionOutOfRange {
            position,
            reason: format!("positions with a prediction are 1..={seq} (position P is predicted from index P-1)"),
        });
    }
    Ok(position - 1)
}

fn check_ids(ids: &[u32], vocab: usize) -> Result<()> {
    match ids.iter().find(|&&id| id as usize >= vocab) {
        Some(&id) => Err(Error::TokenOutOfRange { id, vocab }),
        None => Ok(()),
    }
}

/// Per layer (or only `layer`), the `topk` tokens predicted for `position`.
///
/// # Errors
/// A position or layer out of range, hidden states of another model.
pub fn layer_predictions(
    model: &dyn LanguageModel,
    hidden: &F32Tensor,
    position: usize,
    topk: usize,
    layer: Option<usize>,
    lens: Lens,
    token: &dyn Fn(u32) -> String,
) -> Result<Vec<Vec<LayerPrediction>>> {
    let [_, seq, _] = hidden_dims(model, hidden)?;
    let index = check_position(position, seq)?;
    layer_predictions_at(model, hidden, index, topk, layer, lens, token)
}

/// As [`layer_predictions`], from the hidden state at `index` itself: for masked LMs, whose
/// prediction for a mask token comes from that token's own hidden state.
///
/// # Errors
/// An index or layer out of range, hidden states of another model.
pub fn layer_predictions_at(
    model: &dyn LanguageModel,
    hidden: &F32Tensor,
    index: usize,
    topk: usize,
    layer: Option<usize>,
    lens: Lens,
    token: &dyn Fn(u32) -> String,
) -> Result<Vec<Vec<LayerPrediction>>> {
    let [layers_plus_one, seq, _] = hidden_dims(model, hidden)?;
    if index >= seq {
        return Err(Error::PositionOutOfRange { position: index, reason: format!("the trace has {seq} positions") });
    }
    if let Some(l) = layer
        && l >= layers_plus_one - 1
    {
        return Err(ecco_core::Error::LayerOutOfRange { layer: l, n_layers: layers_plus_one - 1 }.into());
    }
    let logits = lens_logits(model, hidden, &[index], lens)?;
    Ok(logits
        .iter()
        .enumerate()
        .filter(|(l, _)| layer.is_none_or(|want| want == *l))
        .map(|(_, per_pos)| top_k(&per_pos[0], topk, token))
        .collect())
}

/// The `topk` largest of `values` (ties: lower id first) with softmax probabilities and ranks.
pub fn top_k(values: &[f32], topk: usize, token: &dyn Fn(u32) -> String) -> Vec<LayerPrediction> {
    let probs = softmax(values);
    let mut order: Vec<usize> = (0..values.len()).collect();
    let k = topk.min(values.len());
    if k == 0 {
        return Vec::new();
    }
    order.select_nth_unstable_by(k - 1, |&a, &b| values[b].total_cmp(&values[a]).then(a.cmp(&b)));
    order.truncate(k);
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]).then(a.cmp(&b)));
    order
        .into_iter()
        .map(|i| LayerPrediction { token_id: i as u32, token: token(i as u32), prob: probs[i], ranking: rank(values, i as u32) })
        .collect()
}

/// Per layer, the ranking of every generated token: `[layers][generated]`.
///
/// `token_ids` is the whole sequence; the hidden states cover all of it but the last token.
///
/// # Errors
/// No generated tokens, hidden states of another model.
pub fn rankings(model: &dyn LanguageModel, hidden: &F32Tensor, token_ids: &[u32], n_input: usize, lens: Lens) -> Result<Vec<Vec<usize>>> {
    let [_, seq, _] = hidden_dims(model, hidden)?;
    if n_input == 0 || token_ids.len() <= n_input {
        return Err(Error::Empty("the trace has no generated tokens (make it with `ecco generate`)"));
    }
    if seq + 1 != token_ids.len() {
        return Err(Error::ModelMismatch(format!("hidden states cover {seq} positions but the trace has {} tokens", token_ids.len())));
    }
    check_ids(token_ids, model.info().vocab_size)?;
    let positions: Vec<usize> = (n_input - 1..seq).collect();
    let logits = lens_logits(model, hidden, &positions, lens)?;
    Ok(logits.iter().map(|layer| layer.iter().zip(&positions).map(|(values, &j)| rank(values, token_ids[j + 1])).collect()).collect())
}

/// Per layer, the rankings of the `watch` ids as predictions for `position`: `[layers][watch]`.
///
/// # Errors
/// A position out of range, an id outside the vocabulary.
pub fn rankings_watch(
    model: &dyn LanguageModel,
    hidden: &F32Tensor,
    position: usize,
    watch: &[u32],
    lens: Lens,
) -> Result<Vec<Vec<usize>>> {
    let [_, seq, _] = hidden_dims(model, hidden)?;
    let index = check_position(position, seq)?;
    rankings_watch_at(model, hidden, index, watch, lens)
}

/// As [`rankings_watch`], from the hidden state at `index` itself (masked LMs).
///
/// # Errors
/// An index out of range, an id outside the vocabulary.
pub fn rankings_watch_at(
    model: &dyn LanguageModel,
    hidden: &F32Tensor,
    index: usize,
    watch: &[u32],
    lens: Lens,
) -> Result<Vec<Vec<usize>>> {
    let [_, seq, _] = hidden_dims(model, hidden)?;
    if index >= seq {
        return Err(Error::PositionOutOfRange { position: index, reason: format!("the trace has {seq} positions") });
    }
    if watch.is_empty() {
        return Err(Error::Empty("no token ids to watch"));
    }
    check_ids(watch, model.info().vocab_size)?;
    let logits = lens_logits(model, hidden, &[index], lens)?;
    Ok(logits.iter().map(|layer| watch.iter().map(|&id| rank(&layer[0], id)).collect()).collect())
}

fn softmax(values: &[f32]) -> Vec<f32> {
    let max = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f64> = values.iter().map(|&v| f64::from(v - max).exp()).collect();
    let total: f64 = exps.iter().sum();
    exps.into_iter().map(|e| (e / total) as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_counts_strictly_greater() {
        assert_eq!(rank(&[0.5, 2.0, 2.0, -1.0], 1), 1);
        assert_eq!(rank(&[0.5, 2.0, 2.0, -1.0], 3), 4);
        assert_eq!(rank(&[0.5, 2.0, 2.0, -1.0], 0), 3);
        assert!(check_position(0, 5).is_err() && check_position(6, 5).is_err());
        assert_eq!(check_position(5, 5).ok(), Some(4));
    }

    #[test]
    fn softmax_sums_to_one() {
        let p = softmax(&[1.0, 2.0, 3.0]);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6 && p[2] > p[1]);
    }
}
