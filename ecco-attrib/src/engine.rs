//! The batched engine behind every attribution method.
//!
//! A *row* is one scaled (or occluded) copy of the input embeddings and one target: the
//! probability (or logit) of a token at one position, optionally minus a foil's. Rows are run
//! through the model in batches; one backward pass per batch gives every row's gradient with
//! respect to its own input copy. The causal mask keeps each position independent of later
//! ones, so one sequence serves every generated token: row `k` reads its target at position
//! `n_input + k - 1` and its gradient is zero past that position.
//!
//! Model weights are plain tensors: only the input copies live on the autodiff device.

use burn::tensor::{Int, Tensor, TensorData, activation};
use ecco_core::{CaptureSpec, InputGradients, LanguageModel, Logits, ModelInputs};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// What the attribution differentiates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttributionTarget {
    /// The softmax probability of the target token (Ecco's choice).
    #[default]
    Prob,
    /// The raw logit of the target token.
    Logit,
}

impl std::str::FromStr for AttributionTarget {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "prob" => Ok(Self::Prob),
            "logit" => Ok(Self::Logit),
            other => Err(format!("unknown attribution target `{other}` (known: prob, logit)")),
        }
    }
}

/// One input copy and one target.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Row {
    /// Which output list the row's gradient adds to.
    pub group: usize,
    /// The input embeddings are multiplied by this (integrated gradients' alpha; 1 otherwise).
    pub scale: f32,
    /// The row's target is multiplied by this in the summed loss (quadrature weight).
    pub weight: f32,
    /// Position whose output is scored.
    pub position: usize,
    /// Token whose probability (or logit) is scored.
    pub target: u32,
    /// A token whose score is subtracted (contrastive attribution).
    pub foil: Option<u32>,
    /// An input position whose embedding is zeroed (occlusion).
    pub occlude: Option<usize>,
}

/// How rows are turned into scores.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Scoring {
    pub target: AttributionTarget,
    /// Most token positions (rows x sequence length) in one batch; bounds memory.
    pub max_batch_tokens: usize,
    /// Every row reads this many positions (a bidirectional model reads the whole sequence);
    /// `None`: a row reads up to its scored position (causal).
    pub fixed_len: Option<usize>,
}

/// How many input positions `row` reads.
fn row_len(row: &Row, fixed_len: Option<usize>) -> usize {
    fixed_len.unwrap_or(row.position + 1)
}

/// Most padding a batch may carry, as a fraction of its real token positions: every row of a
/// batch is padded to the batch's longest, and that padding costs forward and backward time.
const MAX_PADDING: f64 = 0.2;

/// Splits `rows` into consecutive batches of at most `max_batch_tokens` token positions, each
/// padded by at most [`MAX_PADDING`] (rows arrive ordered by position, so neighbours are alike).
fn batches(rows: &[Row], max_batch_tokens: usize, fixed_len: Option<usize>) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < rows.len() {
        let mut end = start + 1;
        let mut len = row_len(&rows[start], fixed_len);
        let mut real = len;
        while end < rows.len() {
            let row_len = row_len(&rows[end], fixed_len);
            let next_len = len.max(row_len);
            let padded = (end + 1 - start) * next_len;
            if padded > max_batch_tokens || padded as f64 > (1.0 + MAX_PADDING) * (real + row_len) as f64 {
                break;
            }
            len = next_len;
            real += row_len;
            end += 1;
        }
        out.push(start..end);
        start = end;
    }
    out
}

/// The input copies of `rows`, `[rows, len, hidden]`, from `embeds` `[seq, hidden]`.
fn inputs(embeds: &Tensor<2>, rows: &[Row], len: usize) -> Tensor<3> {
    let hidden = embeds.dims()[1];
    let multipliers: Vec<f32> = rows.iter().flat_map(|r| (0..len).map(move |j| if r.occlude == Some(j) { 0.0 } else { r.scale })).collect();
    let m = Tensor::<3>::from_data(TensorData::new(multipliers, [rows.len(), len, 1]), &embeds.device());
    embeds.clone().slice([0..len, 0..hidden]).unsqueeze::<3>() * m
}

/// The weighted, summed score of `rows` given their input copies `x`.
fn score(model: &dyn LanguageModel, x: Tensor<3>, rows: &[Row], scoring: Scoring) -> Result<Tensor<1>> {
    let [n, len, hidden] = x.dims();
    let out = model.forward(ModelInputs::new(x), &CaptureSpec::none().with_logits(Logits::Skip))?;
    let pick = at_positions(rows, len, &out.last_hidden.device());
    let h = (out.last_hidden * pick).sum_dim(1);
    let targets = rows.iter().map(|r| (r.target, r.foil, r.weight));
    head_scores(model, h.reshape([n, 1, hidden]), targets, scoring.target)
}

/// Each row's weighted score from its hidden state at the scored position, `h`
/// `[rows, 1, hidden]`: `weight * (score(target) - score(foil))`, where a score is the
/// softmax probability or the logit the LM head gives.
pub(crate) fn head_scores(
    model: &dyn LanguageModel,
    h: Tensor<3>,
    targets: impl Iterator<Item = (u32, Option<u32>, f32)>,
    target: AttributionTarget,
) -> Result<Tensor<1>> {
    let logits = head_logits(model, h)?;
    let [n, vocab] = logits.dims();
    let values = match target {
        AttributionTarget::Prob => activation::softmax(logits, 1),
        AttributionTarget::Logit => logits,
    };
    let select = selection(targets, n, vocab, &values.device())?;
    Ok((values * select).sum_dim(1).reshape([n]))
}

/// The LM head's logits `[rows, vocab]` for hidden states `h` `[rows, 1, hidden]`.
fn head_logits(model: &dyn LanguageModel, h: Tensor<3>) -> Result<Tensor<2>> {
    let n = h.dims()[0];
    let logits = model.lm_head(h).ok_or(Error::NoLmHead)?;
    let vocab = logits.dims()[2];
    Ok(logits.reshape([n, vocab]))
}

/// `[rows, vocab]`: `weight` at each row's target token, `-weight` at its foil: the scores of
/// [`head_scores`] are the sums of this times the probabilities (or logits).
fn selection(
    targets: impl Iterator<Item = (u32, Option<u32>, f32)>,
    n: usize,
    vocab: usize,
    device: &burn::tensor::Device,
) -> Result<Tensor<2>> {
    let mut select = vec![0f32; n * vocab];
    for (i, (id, foil, weight)) in targets.enumerate() {
        for (id, sign) in [(Some(id), 1.0), (foil, -1.0)] {
            if let Some(id) = id {
                let id = id as usize;
                if id >= vocab {
                    return Err(Error::TokenOutOfRange { id: id as u32, vocab });
                }
                select[i * vocab + id] += sign * weight;
            }
        }
    }
    Ok(Tensor::<2>::from_data(TensorData::new(select, [n, vocab]), device))
}

/// The gradient of [`head_scores`] with respect to the logits, `[rows, vocab]`, without
/// autodiff (so that threads can take it): the selection itself for logits, and
/// `p * (select - sum(select * p))` for probabilities `p`.
pub(crate) fn head_logit_gradients(
    model: &dyn LanguageModel,
    h: Tensor<3>,
    targets: impl Iterator<Item = (u32, Option<u32>, f32)>,
    target: AttributionTarget,
) -> Result<Tensor<2>> {
    let logits = head_logits(model, h)?;
    let [n, vocab] = logits.dims();
    let select = selection(targets, n, vocab, &logits.device())?;
    Ok(match target {
        AttributionTarget::Logit => select,
        AttributionTarget::Prob => {
            let p = activation::softmax(logits, 1);
            let score = (p.clone() * select.clone()).sum_dim(1);
            p * (select - score)
        }
    })
}

fn read<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    t.into_data().try_into_vec::<f32>().map_err(|e| Error::Readback(format!("{e:?}")))
}

/// The longest [`row_len`] of `batch` (what its rows are padded to).
fn batch_len(batch: &[Row], fixed_len: Option<usize>) -> usize {
    batch.iter().map(|r| row_len(r, fixed_len)).max().unwrap_or(1)
}

/// `[rows, len, 1]`: 1 at each row's scored position, 0 elsewhere.
fn at_positions(rows: &[Row], len: usize, device: &burn::tensor::Device) -> Tensor<3> {
    let pick: Vec<f32> = rows.iter().flat_map(|r| (0..len).map(move |j| if j == r.position { 1.0 } else { 0.0 })).collect();
    Tensor::<3>::from_data(TensorData::new(pick, [rows.len(), len, 1]), device)
}

/// Adds each row's gradient (`grad`, `[rows, len, hidden]` row-major) to its group's sum.
fn add_to_groups(sums: &mut [Vec<f32>], batch: &[Row], grad: &[f32], len: usize, hidden: usize) {
    for (r, row) in batch.iter().zip(grad.chunks_exact(len * hidden)) {
        for (s, g) in sums[r.group].iter_mut().zip(row) {
            *s += g;
        }
    }
}

/// Each row's weighted score, forward passes only.
pub(crate) fn scores(
    model: &dyn LanguageModel,
    embeds: &Tensor<2>,
    rows: &[Row],
    scoring: Scoring,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<f32>> {
    let mut out = Vec::with_capacity(rows.len());
    for range in batches(rows, scoring.max_batch_tokens, scoring.fixed_len) {
        let batch = &rows[range];
        let len = batch_len(batch, scoring.fixed_len);
        out.extend(read(score(model, inputs(embeds, batch, len), batch, scoring)?)?);
        progress(batch.len());
    }
    Ok(out)
}

/// Per group, the sum of its rows' weighted gradients with respect to their input copies,
/// `[positions, hidden]` row-major (positions up to the group's scored position).
pub(crate) fn gradients(
    model: &dyn LanguageModel,
    embeds: &Tensor<2>,
    rows: &[Row],
    n_groups: usize,
    scoring: Scoring,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<Vec<f32>>> {
    let hidden = embeds.dims()[1];
    let mut sums: Vec<Vec<f32>> = vec![Vec::new(); n_groups];
    for r in rows {
        let need = row_len(r, scoring.fixed_len) * hidden;
        if sums[r.group].len() < need {
            sums[r.group].resize(need, 0.0);
        }
    }
    if shared_forward_gradients(model, embeds, rows, &mut sums, scoring, progress)? {
        return Ok(sums);
    }
    for range in batches(rows, scoring.max_batch_tokens, scoring.fixed_len) {
        let batch = &rows[range];
        let len = batch_len(batch, scoring.fixed_len);
        let x = inputs(embeds, batch, len).autodiff().require_grad();
        let total = score(model, x.clone(), batch, scoring)?.sum();
        let grads = total.backward();
        let grad = x.grad(&grads).ok_or_else(|| Error::Readback("no gradient for the inputs".to_owned()))?;
        add_to_groups(sums.as_mut_slice(), batch, &read(grad)?, len, hidden);
        progress(batch.len());
    }
    Ok(sums)
}

/// [`gradients`] through the model's hand-written backward pass
/// ([`LanguageModel::input_gradients`]), when it has one and the rows allow it (none
/// occluded): one forward pass per input scale serves every row of that scale (every
/// generated token of a causal model, every mask token of a masked one). Adds each row's
/// gradient to `sums` and returns `true`; returns `false`, having done nothing, otherwise.
fn shared_forward_gradients(
    model: &dyn LanguageModel,
    embeds: &Tensor<2>,
    rows: &[Row],
    sums: &mut [Vec<f32>],
    scoring: Scoring,
    progress: &mut dyn FnMut(usize),
) -> Result<bool> {
    if rows.iter().any(|r| r.occlude.is_some()) || rows.is_empty() {
        return Ok(false);
    }
    let hidden = embeds.dims()[1];
    let seq = batch_len(rows, scoring.fixed_len);
    let mut scales: Vec<f32> = Vec::new();
    for r in rows {
        if !scales.contains(&r.scale) {
            scales.push(r.scale);
        }
    }
    // One forward pass takes as many scaled copies as the token budget allows.
    let per_pass = (scoring.max_batch_tokens / seq).max(1);
    for chunk in scales.chunks(per_pass) {
        let copies: Vec<Row> = chunk.iter().map(|&scale| Row { scale, ..rows[0].clone() }).collect();
        let Some(tape) = model.input_gradients(inputs(embeds, &copies, seq)) else { return Ok(false) };
        backward_chunk(model, &*tape?, chunk, rows, sums, seq, hidden, scoring, progress)?;
    }
    Ok(true)
}

/// The rows of one forward pass (`tape`, over one copy per scale of `chunk`), batched, each
/// batch's head and backward pass on a thread of its own; adds their gradients to `sums`.
#[allow(clippy::too_many_arguments)]
fn backward_chunk(
    model: &dyn LanguageModel,
    tape: &dyn InputGradients,
    chunk: &[f32],
    rows: &[Row],
    sums: &mut [Vec<f32>],
    seq: usize,
    hidden: usize,
    scoring: Scoring,
    progress: &mut dyn FnMut(usize),
) -> Result<()> {
    let last = tape.last_hidden().reshape([chunk.len() * seq, hidden]);
    // The chunk's rows with their copies, by position: batches mix copies and stay even.
    let mut of_chunk: Vec<(Row, usize)> =
        rows.iter().filter_map(|r| chunk.iter().position(|&s| s == r.scale).map(|copy| (r.clone(), copy))).collect();
    of_chunk.sort_by_key(|(r, _)| r.position);
    let (of_chunk, copies): (Vec<Row>, Vec<usize>) = of_chunk.into_iter().unzip();
    // At least one batch per thread: the batches' backward passes run side by side (each
    // product is too small for the matrix library to split well between threads).
    let threads = rayon::current_num_threads().max(1);
    let positions: usize = of_chunk.iter().map(|r| row_len(r, scoring.fixed_len)).sum();
    let budget = scoring.max_batch_tokens.min(positions.div_ceil(threads)).max(1);
    let planned = batches(&of_chunk, budget, scoring.fixed_len);
    for group in planned.chunks(threads) {
        // Per batch, on its own thread: each row's score differentiated with respect to its
        // final hidden state, placed at the row's scored position, then through the model.
        let grads: Vec<Result<Vec<f32>>> = group
            .par_iter()
            .map(|range| {
                let (batch, copies) = (&of_chunk[range.clone()], &copies[range.clone()]);
                let len = batch_len(batch, scoring.fixed_len);
                let n = batch.len();
                let at: Vec<i64> = batch.iter().zip(copies).map(|(r, &c)| (c * seq + r.position) as i64).collect();
                let at = Tensor::<1, Int>::from_data(TensorData::new(at, [n]), &last.device());
                let h = last.clone().select(0, at).reshape([n, 1, hidden]);
                let targets = batch.iter().map(|r| (r.target, r.foil, r.weight));
                let dlogits = head_logit_gradients(model, h.clone(), targets, scoring.target)?;
                let vocab = dlogits.dims()[1];
                let dh = tape.head_backward_at(h, dlogits.reshape([n, 1, vocab]))?;
                read(tape.backward(copies, dh * at_positions(batch, len, &last.device()))?)
            })
            .collect();
        for (range, grad) in group.iter().zip(grads) {
            let batch = &of_chunk[range.clone()];
            add_to_groups(sums, batch, &grad?, batch_len(batch, scoring.fixed_len), hidden);
            progress(range.len());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(position: usize) -> Row {
        Row { group: 0, scale: 1.0, weight: 1.0, position, target: 0, foil: None, occlude: None }
    }

    #[test]
    fn batches_respect_the_token_budget() {
        let rows: Vec<Row> = (0..10).map(|k| row(3 + k)).collect();
        let b = batches(&rows, 30, None);
        assert_eq!(b.iter().map(|r| r.len()).sum::<usize>(), 10);
        for r in &b {
            let len = rows[r.clone()].iter().map(|x| x.position + 1).max().unwrap_or(0);
            assert!(r.len() == 1 || r.len() * len <= 30, "{r:?}");
        }
        // A row longer than the budget still gets a batch of its own.
        assert_eq!(batches(&[row(100)], 10, None), vec![0..1]);
        // Rows of very different lengths are not padded to the longest.
        let rows: Vec<Row> = (0..20).map(|k| row(9 + k)).collect();
        for r in batches(&rows, 4096, None) {
            let len = rows[r.clone()].iter().map(|x| x.position + 1).max().unwrap_or(0);
            let real: usize = rows[r.clone()].iter().map(|x| x.position + 1).sum();
            assert!((r.len() * len) as f64 <= 1.2 * real as f64, "{r:?}");
        }
    }
}
