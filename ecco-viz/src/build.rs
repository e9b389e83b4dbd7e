//! Building views from a [`Trace`] and its tensors. The logit-lens and NMF views need a model or
//! a factorisation and are filled by their callers (the `ecco` command).

use ecco_core::{F32Tensor, ModelKind, Trace};

use crate::error::{Error, Result};
use crate::tokens::{PieceConvention, display_tokens};
use crate::views::{AttentionView, AttributionView, ModelSummary, NeuronRef, NeuronsView, Report, TokenEntry, TokensView};

/// Rounds to 4 significant digits: enough for a colour or a printed value, and it keeps the
/// embedded JSON small.
pub fn round_sig(x: f32) -> f32 {
    if x == 0.0 || !x.is_finite() {
        return if x.is_finite() { 0.0 } else { f32::NAN };
    }
    let scale = 10f32.powi(3 - x.abs().log10().floor() as i32);
    (x * scale).round() / scale
}

impl TokensView {
    /// The output sequence of `trace`.
    pub fn from_trace(trace: &Trace) -> Self {
        let convention = PieceConvention::detect(&trace.model.family, &trace.tokens);
        let shown = display_tokens(&trace.tokens, convention);
        let first_generated = first_target(trace);
        let tokens = trace
            .tokens
            .iter()
            .zip(shown)
            .enumerate()
            .map(|(i, (raw, d))| TokenEntry {
                id: trace.token_ids.get(i).copied().unwrap_or(0),
                raw: raw.clone(),
                text: d.text,
                word_start: d.word_start,
                generated: i >= first_generated,
            })
            .collect();
        Self { n_input: trace.n_input_tokens, convention: Some(convention), tokens }
    }
}

/// Index of the first generated token (encoder-decoder: after the decoder's start token).
fn first_target(trace: &Trace) -> usize {
    match trace.model.model_type {
        ModelKind::EncoderDecoder => trace.n_input_tokens + 1,
        _ => trace.n_input_tokens,
    }
}

impl Report {
    /// A report holding the views `trace.json` alone supports: the output sequence and the
    /// attributions. Add the others with [`attention_view`], [`neurons_view`] and the callers'
    /// lens and NMF results.
    ///
    /// # Errors
    /// [`Error::Inconsistent`] when an attribution row reads more tokens than the trace holds.
    pub fn from_trace(trace: &Trace) -> Result<Self> {
        let mut first = first_target(trace);
        let mut attributions = Vec::new();
        let mut methods: Vec<_> = trace.attributions.iter().collect();
        // A masked LM's row `k` explains its `k`-th mask token: the view can say so when the
        // masks are consecutive (one mask, the common case); otherwise it leaves them out
        // rather than label them wrongly.
        if trace.model.model_type == ModelKind::Masked {
            let masks: Vec<usize> = trace.masked_predictions.iter().flatten().map(|m| m.position).collect();
            match masks.first() {
                Some(&m) if masks.iter().enumerate().all(|(k, &p)| p == m + k) => first = m,
                _ => methods.clear(),
            }
        }
        for (method, rows) in methods {
            for (k, row) in rows.iter().enumerate() {
                if row.len() > trace.tokens.len() || first + k >= trace.tokens.len() {
                    return Err(Error::Inconsistent(format!(
                        "attribution `{method}` row {k} reads {} tokens; the trace has {}",
                        row.len(),
                        trace.tokens.len()
                    )));
                }
            }
            let rows = rows.iter().map(|r| r.iter().copied().map(round_sig).collect()).collect();
            attributions.push(AttributionView { method: method.clone(), first_target: first, rows });
        }
        Ok(Self {
            title: format!("ecco report: {}", trace.model.name),
            model: ModelSummary { name: trace.model.name.clone(), family: trace.model.family.clone(), n_layers: trace.model.n_layers },
            tokens: TokensView::from_trace(trace),
            attributions,
            ..Self::default()
        })
    }
}

/// The attention view of a `[layers, heads, query, key]` tensor, keeping the `top_k` strongest
/// keys of every query (and of the mean over heads).
///
/// # Errors
/// [`Error::Shape`] for a tensor of another rank or a non-square attention.
pub fn attention_view(name: &str, attention: &F32Tensor, top_k: usize) -> Result<AttentionView> {
    let [n_layers, n_heads, q, k] = match attention.shape[..] {
        [a, b, c, d] if c == d && attention.data.len() == a * b * c * d => [a, b, c, d],
        _ => {
            return Err(Error::Shape {
                name: name.to_owned(),
                found: attention.shape.clone(),
                expected: "[layers, heads, positions, positions]".into(),
            });
        }
    };
    let top_k = top_k.max(1).min(k);
    let mut heads = Vec::with_capacity(n_layers);
    let mut mean = Vec::with_capacity(n_layers);
    let mut avg = vec![0f32; k];
    for l in 0..n_layers {
        let mut layer = Vec::with_capacity(n_heads);
        for h in 0..n_heads {
            let base = (l * n_heads + h) * q * k;
            layer.push((0..q).map(|i| top_keys(&attention.data[base + i * k..base + (i + 1) * k], top_k)).collect());
        }
        heads.push(layer);
        let rows = (0..q)
            .map(|i| {
                avg.iter_mut().for_each(|a| *a = 0.0);
                for h in 0..n_heads {
                    let base = (l * n_heads + h) * q * k + i * k;
                    for (a, w) in avg.iter_mut().zip(&attention.data[base..base + k]) {
                        *a += w / n_heads as f32;
                    }
                }
                top_keys(&avg, top_k)
            })
            .collect();
        mean.push(rows);
    }
    Ok(AttentionView { layers: (0..n_layers).collect(), n_heads, n_positions: q, top_k, heads, mean })
}

/// The `top_k` largest entries of `row` as `[index, round(255 · w), …]`, dropping those that
/// round to 0.
fn top_keys(row: &[f32], top_k: usize) -> Vec<u32> {
    let mut order: Vec<usize> = (0..row.len()).collect();
    order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
    let mut out = Vec::with_capacity(2 * top_k);
    for &j in order.iter().take(top_k) {
        let w = (row[j].clamp(0.0, 1.0) * 255.0).round() as u32;
        if w > 0 {
            out.push(j as u32);
            out.push(w);
        }
    }
    out
}

/// The activation heatmap of chosen neurons from a `[layers, neurons, positions]` tensor whose
/// layers are `stored_layers`. With no neurons chosen, the `default_n` neurons with the largest
/// activation anywhere are shown.
///
/// # Errors
/// [`Error::Shape`] for a tensor of another rank, [`Error::OutOfRange`] for a neuron that is
/// not in the tensor.
pub fn neurons_view(
    name: &str,
    acts: &F32Tensor,
    stored_layers: &[usize],
    chosen: Option<&[NeuronRef]>,
    default_n: usize,
) -> Result<NeuronsView> {
    let [n_layers, n_neurons, n_pos] = match acts.shape[..] {
        [a, b, c] if acts.data.len() == a * b * c && stored_layers.len() == a => [a, b, c],
        _ => {
            return Err(Error::Shape { name: name.to_owned(), found: acts.shape.clone(), expected: "[layers, neurons, positions]".into() });
        }
    };
    let row = |li: usize, n: usize| -> &[f32] {
        let base = (li * n_neurons + n) * n_pos;
        &acts.data[base..base + n_pos]
    };
    let picked: Vec<(NeuronRef, usize)> = match chosen {
        Some(list) => list
            .iter()
            .map(|r| {
                let li = stored_layers.iter().position(|&l| l == r.layer).ok_or_else(|| {
                    Error::OutOfRange(format!("layer {} is not in the trace's activations (it holds layers {stored_layers:?})", r.layer))
                })?;
                if r.neuron >= n_neurons {
                    return Err(Error::OutOfRange(format!(
                        "neuron {} is out of range: layer {} has {n_neurons} neurons",
                        r.neuron, r.layer
                    )));
                }
                Ok((*r, li))
            })
            .collect::<Result<_>>()?,
        None => {
            let mut all: Vec<(f32, usize, usize)> = Vec::with_capacity(n_layers * n_neurons);
            for li in 0..n_layers {
                for n in 0..n_neurons {
                    let peak = row(li, n).iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    all.push((peak, li, n));
                }
            }
            all.sort_by(|a, b| b.0.total_cmp(&a.0));
            all.into_iter().take(default_n).map(|(_, li, n)| (NeuronRef { layer: stored_layers[li], neuron: n }, li)).collect()
        }
    };
    let values = picked.iter().map(|(r, li)| row(*li, r.neuron).iter().copied().map(round_sig).collect()).collect();
    Ok(NeuronsView { neurons: picked.into_iter().map(|p| p.0).collect(), values })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_keeps_four_significant_digits() {
        assert_eq!(round_sig(0.000_123_456), 0.000_123_5);
        assert_eq!(round_sig(1234.56), 1235.0);
        assert_eq!(round_sig(0.0), 0.0);
    }

    #[test]
    fn attention_keeps_the_strongest_keys() -> Result<()> {
        // 1 layer, 2 heads, 2 positions.
        let t = F32Tensor::new("a", vec![1, 2, 2, 2], vec![1.0, 0.0, 0.25, 0.75, 1.0, 0.0, 0.5, 0.5])
            .map_err(|e| Error::Inconsistent(e.to_string()))?;
        let v = attention_view("a", &t, 1)?;
        assert_eq!(v.heads[0][0], vec![vec![0, 255], vec![1, 191]]);
        assert_eq!(v.mean[0][1], vec![1, 159]);
        assert!(
            attention_view("a", &F32Tensor::new("b", vec![2, 2], vec![0.0; 4]).map_err(|e| Error::Inconsistent(e.to_string()))?, 1)
                .is_err()
        );
        Ok(())
    }

    #[test]
    fn neurons_default_to_the_strongest_and_check_choices() -> Result<()> {
        // layers [3, 5], 2 neurons, 2 positions.
        let t = F32Tensor::new("x", vec![2, 2, 2], vec![0.0, 1.0, 0.0, 0.5, 9.0, 0.0, 2.0, 0.0])
            .map_err(|e| Error::Inconsistent(e.to_string()))?;
        let v = neurons_view("x", &t, &[3, 5], None, 1)?;
        assert_eq!(v.neurons, vec![NeuronRef { layer: 5, neuron: 0 }]);
        assert_eq!(v.values, vec![vec![9.0, 0.0]]);
        assert!(neurons_view("x", &t, &[3, 5], Some(&[NeuronRef { layer: 4, neuron: 0 }]), 1).is_err());
        assert!(neurons_view("x", &t, &[3, 5], Some(&[NeuronRef { layer: 3, neuron: 2 }]), 1).is_err());
        Ok(())
    }
}
