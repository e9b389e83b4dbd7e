//! The BERT family's backward pass with respect to the word embeddings, written by hand from the
//! layer library's backward pieces ([`Linear::backward`](crate::nn::Linear::backward),
//! [`LayerNorm::backward`], [`Attend::backward`](crate::nn::Attend::backward)), so that one
//! forward pass serves many gradients ([`ecco_core::InputGradients`]): every mask token's, and
//! every input scale's of integrated gradients.
//!
//! Per layer (post-norm), with `s1 = x + attn(x)`, `m = LN_1(s1)`, `s2 = m + W_down act(W_up m)`,
//! `y = LN_2(s2)`: `ds2 = LN_2ᵀ dy`, `dm = ds2 + W_upᵀ (act'(u) * W_downᵀ ds2)`, `ds1 = LN_1ᵀ dm`
//! and `dx = ds1 + W_qᵀ dq + W_kᵀ dk + W_vᵀ dv` from the attention's backward pass on
//! `W_oᵀ ds1`. The embeddings' norm comes last. Unlike GPT-2, attention reads both directions,
//! so every backward pass covers the whole sequence.

use burn::tensor::Tensor;
use ecco_core::{CaptureSpec, Hooks, InputGradients, Stack};

use crate::bert::layer::Layer;
use crate::bert::model::Bert;
use crate::nn::tape::Rows;
use crate::nn::{LayerNorm, merge_heads, split_heads};

/// What one layer's backward pass reads from the forward pass, batch = input copies.
#[derive(Clone, Debug)]
struct LayerTape {
    /// The attention norm's standardised input `[copies, seq, hidden]` and `1/std`.
    ln_1: (Tensor<3>, Tensor<3>),
    /// Queries, keys and values, `[copies, heads, seq, head_dim]`.
    q: Tensor<4>,
    k: Tensor<4>,
    v: Tensor<4>,
    /// Softmaxed attention weights, `[copies, heads, seq, seq]`.
    weights: Tensor<4>,
    /// The output norm's standardised input and `1/std`.
    ln_2: (Tensor<3>, Tensor<3>),
    /// The FFN nonlinearity's derivative at the up projection's output.
    act_grad: Tensor<3>,
}

impl LayerTape {
    /// The tape of the rows' copies.
    fn rows(&self, rows: &Rows) -> Self {
        let p3 = |t: &Tensor<3>| rows.pick(t);
        let p4 = |t: &Tensor<4>| rows.pick(t);
        Self {
            ln_1: (p3(&self.ln_1.0), p3(&self.ln_1.1)),
            q: p4(&self.q),
            k: p4(&self.k),
            v: p4(&self.v),
            weights: p4(&self.weights),
            ln_2: (p3(&self.ln_2.0), p3(&self.ln_2.1)),
            act_grad: p3(&self.act_grad),
        }
    }
}

/// A BERT forward pass over input copies `[copies, seq, hidden]`, kept for backward passes.
#[derive(Debug)]
pub struct Tape<'a> {
    model: &'a Bert,
    /// The embeddings' norm: standardised input and `1/std`.
    embeddings: (Tensor<3>, Tensor<3>),
    layers: Vec<LayerTape>,
    last_hidden: Tensor<3>,
}

/// `norm(x)` with the standardised input and `1/std` kept.
fn normed(norm: &LayerNorm, x: Tensor<3>) -> (Tensor<3>, (Tensor<3>, Tensor<3>)) {
    let kept = norm.standardise(x);
    (norm.affine(kept.0.clone()), kept)
}

/// One layer's forward pass (as [`Layer::forward`], no padding), keeping its tape.
fn forward(layer: &Layer, x: Tensor<3>, hooks: &mut ecco_core::BlockHooks<'_>) -> (Tensor<3>, LayerTape) {
    let a = &layer.attention;
    let heads = a.core.n_heads;
    let q = split_heads(a.query.forward(x.clone()), heads, None, hooks);
    let k = split_heads(a.key.forward(x.clone()), heads, None, hooks);
    let v = split_heads(a.value.forward(x.clone()), heads, None, hooks);
    let (weights, z) = a.core.attend(&q, &k, &v, None, crate::nn::Role::SelfAttention, hooks);
    let (m, ln_1) = normed(&a.layer_norm, x + a.output.forward(z));
    let u = layer.ffn.up.forward(m.clone());
    let act_grad = layer.ffn.act.derivative(u.clone());
    let (y, ln_2) = normed(&layer.output_layer_norm, m + layer.ffn.down.forward(layer.ffn.act.forward(u)));
    (y, LayerTape { ln_1, q, k, v, weights, ln_2, act_grad })
}

/// One layer's backward pass: `dy` `[rows, seq, hidden]` to the gradient of its input.
fn backward(layer: &Layer, t: &LayerTape, dy: Tensor<3>) -> Tensor<3> {
    let (a, ffn) = (&layer.attention, &layer.ffn);
    let ds2 = layer.output_layer_norm.backward(dy, &t.ln_2.0, &t.ln_2.1);
    let du = ffn.down.backward(ds2.clone()) * t.act_grad.clone();
    let dm = ds2 + ffn.up.backward(du);
    let ds1 = a.layer_norm.backward(dm, &t.ln_1.0, &t.ln_1.1);
    let (dq, dk, dv, _) = a.core.backward(a.output.backward(ds1.clone()), &t.q, &t.k, &t.v, &t.weights);
    ds1 + a.query.backward(merge_heads(dq)) + a.key.backward(merge_heads(dk)) + a.value.backward(merge_heads(dv))
}

impl Bert {
    /// Runs the forward pass over plain word embeddings `[copies, seq, hidden]` (no token types,
    /// no padding, as [`ecco_core::LanguageModel::forward`]) and keeps what
    /// [`InputGradients::backward`] reads.
    ///
    /// # Errors
    /// A sequence longer than the position embeddings.
    pub fn tape(&self, embeds: Tensor<3>) -> ecco_core::Result<Tape<'_>> {
        let seq = embeds.dims()[1];
        let max = self.config.max_positions();
        if seq > max {
            return Err(ecco_core::Error::SequenceTooLong { len: seq, max });
        }
        let (mut x, embeddings) = normed(&self.embeddings.layer_norm, self.embeddings.sum(embeds, None));
        // The tape records nothing: its hook points are emitted into a recorder that keeps none.
        let mut hooks = Hooks::new(CaptureSpec::none());
        let mut layers = Vec::with_capacity(self.layer.len());
        for (i, layer) in self.layer.iter().enumerate() {
            let (y, tape) = forward(layer, x, &mut hooks.block(Stack::Main, i));
            x = y;
            layers.push(tape);
        }
        Ok(Tape { model: self, embeddings, layers, last_hidden: x })
    }
}

impl InputGradients for Tape<'_> {
    fn last_hidden(&self) -> Tensor<3> {
        self.last_hidden.clone()
    }

    /// Bidirectional: the cotangents must cover the whole sequence.
    fn backward(&self, copies: &[usize], cotangents: Tensor<3>) -> ecco_core::Result<Tensor<3>> {
        let [n_copies, seq, hidden] = self.last_hidden.dims();
        let [rows, len, width] = cotangents.dims();
        let bad_copy = copies.iter().find(|&&c| c >= n_copies);
        if copies.len() != rows || len != seq || width != hidden || bad_copy.is_some() {
            return Err(ecco_core::Error::ShapeMismatch {
                name: format!("cotangents of input copies {copies:?} (of {n_copies})"),
                expected: vec![copies.len(), seq, hidden],
                found: vec![rows, len, width],
            });
        }
        let picked = Rows::new(copies, seq, &cotangents.device());
        let mut d = cotangents;
        for (layer, tape) in self.model.layer.iter().zip(&self.layers).rev() {
            d = backward(layer, &tape.rows(&picked), d);
        }
        let (xhat, rstd) = (picked.pick(&self.embeddings.0), picked.pick(&self.embeddings.1));
        Ok(self.model.embeddings.layer_norm.backward(d, &xhat, &rstd))
    }

    fn head_backward(&self, _dlogits: Tensor<3>) -> ecco_core::Result<Tensor<3>> {
        Err(ecco_core::Error::MissingInput("the MLM head's backward pass needs its input: use head_backward_at"))
    }

    /// The MLM head `decoder(LN(act(dense h))) + bias` backward: `dense ᵀ(act'(t) * LNᵀ(dlogits decoder))`.
    fn head_backward_at(&self, h: Tensor<3>, dlogits: Tensor<3>) -> ecco_core::Result<Tensor<3>> {
        let Some(head) = &self.model.mlm_head else {
            return Err(ecco_core::Error::MissingInput("the model has no MLM head"));
        };
        let decoder = head.decoder.as_ref().unwrap_or(&self.model.embeddings.word_embeddings);
        let [rows, len, vocab] = dlogits.dims();
        let [head_vocab, hidden] = decoder.dims();
        if vocab != head_vocab || h.dims() != [rows, len, hidden] {
            return Err(ecco_core::Error::ShapeMismatch {
                name: "dlogits and hidden states".to_owned(),
                expected: vec![rows, len, head_vocab],
                found: vec![rows, len, vocab],
            });
        }
        let t = head.dense.forward(h);
        let (xhat, rstd) = head.layer_norm.standardise(head.act.forward(t.clone()));
        let dg = dlogits.reshape([rows * len, vocab]).matmul(decoder.clone()).reshape([rows, len, hidden]);
        let dt = head.layer_norm.backward(dg, &xhat, &rstd) * head.act.derivative(t);
        Ok(head.dense.backward(dt))
    }
}
