//! The decoders' backward pass with respect to their input embeddings, written by hand (as
//! GPT-2's, [`crate::gpt2::backward`]) so that one forward pass serves every generated token's
//! gradient ([`ecco_core::InputGradients`]).
//!
//! It covers the configurations without q/k norm, soft-capping or sandwich norms: Llama
//! (SmolLM2, TinyLlama), Mistral and Qwen2. The others (Qwen3, Gemma 2 and 3) use burn's autodiff.
//!
//! Per block, with `a = rms_1(x)`, `x' = x + W_o attn(a)`, `b = rms_2(x')`,
//! `y = x' + W_down (act(W_gate b) * W_up b)`:
//! - RMSNorm `w * x * r`, `r = 1/sqrt(mean(x²) + eps)`: `dx = r (dxhat - xhat mean(dxhat xhat))`,
//!   `dxhat = dy * w`, `xhat = x r`.
//! - the gated FFN: `dg = dpost * up * act'(g)`, `du = dpost * act(g)`, `db = W_gateᵀ dg + W_upᵀ du`.
//! - attention as [`crate::nn::Attend::backward`] over the query heads, the keys' and values'
//!   gradients summed over the query heads that share them (grouped-query attention), and
//!   rotary's transpose (the turn by minus the angle) on the queries' and keys' gradients.

use burn::tensor::Tensor;
use ecco_core::{CaptureSpec, Hooks, InputGradients, Stack};

use crate::llama::block::Block;
use crate::llama::model::Decoder;
use crate::nn::tape::Rows;
use crate::nn::{RmsNorm, merge_heads};

/// `x`'s normalised value `xhat = x r` and `r = 1/sqrt(mean(x²) + eps)` (`[.., 1]`).
fn standardise(norm: &RmsNorm, x: Tensor<3>) -> (Tensor<3>, Tensor<3>) {
    let r = ((x.clone() * x.clone()).mean_dim(2) + norm.eps).sqrt().recip();
    (x * r.clone(), r)
}

/// The norm's scale (`1 + w` for Gemma).
fn norm_scale(norm: &RmsNorm) -> Tensor<3> {
    let w = if norm.plus_one { norm.weight.clone() + 1.0 } else { norm.weight.clone() };
    w.unsqueeze::<3>()
}

/// The gradient with respect to an RMSNorm's input.
fn rms_backward(norm: &RmsNorm, dy: Tensor<3>, xhat: &Tensor<3>, r: &Tensor<3>) -> Tensor<3> {
    let dxhat = dy * norm_scale(norm);
    let mean = (dxhat.clone() * xhat.clone()).mean_dim(2);
    (dxhat - xhat.clone() * mean) * r.clone()
}

/// What one block's backward pass reads from the forward pass, batch = input copies.
#[derive(Clone, Debug)]
struct BlockTape {
    /// `input_layernorm`'s `xhat` `[copies, seq, hidden]` and `r` `[copies, seq, 1]`.
    norm_1: (Tensor<3>, Tensor<3>),
    /// Queries (after rotary), `[copies, heads, seq, head_dim]`.
    q: Tensor<4>,
    /// Keys (after rotary) and values repeated for the query heads, `[copies, heads, seq, head_dim]`.
    k: Tensor<4>,
    v: Tensor<4>,
    /// Softmaxed attention weights, `[copies, heads, seq, seq]`.
    weights: Tensor<4>,
    /// The FFN norm's `xhat` and `r`.
    norm_2: (Tensor<3>, Tensor<3>),
    /// `up_proj`'s output, `act(gate)` and `act'(gate)`, `[copies, seq, inner]`.
    up: Tensor<3>,
    act: Tensor<3>,
    act_grad: Tensor<3>,
}

impl BlockTape {
    /// The tape of the rows' copies, first `len` positions.
    fn rows(&self, rows: &Rows) -> Self {
        let len = rows.len;
        let s3 = |t: &Tensor<3>| rows.pick(t).slice_dim(1, 0..len);
        let s4 = |t: &Tensor<4>, keys: bool| {
            let t = rows.pick(t).slice_dim(2, 0..len);
            if keys { t.slice_dim(3, 0..len) } else { t }
        };
        Self {
            norm_1: (s3(&self.norm_1.0), s3(&self.norm_1.1)),
            q: s4(&self.q, false),
            k: s4(&self.k, false),
            v: s4(&self.v, false),
            weights: s4(&self.weights, true),
            norm_2: (s3(&self.norm_2.0), s3(&self.norm_2.1)),
            up: s3(&self.up),
            act: s3(&self.act),
            act_grad: s3(&self.act_grad),
        }
    }
}

/// A decoder forward pass over input copies `[copies, seq, hidden]`, kept for backward passes.
#[derive(Debug)]
pub struct Tape<'a> {
    model: &'a Decoder,
    blocks: Vec<BlockTape>,
    /// The final norm's `xhat` and `r`.
    norm: (Tensor<3>, Tensor<3>),
    last_hidden: Tensor<3>,
}

/// Keys or values `[batch, kv_heads, seq, d]` repeated for `heads` query heads.
fn repeat_kv(t: Tensor<4>, heads: usize) -> Tensor<4> {
    let [batch, kv, seq, d] = t.dims();
    let groups = heads / kv.max(1);
    if groups <= 1 {
        return t;
    }
    t.unsqueeze_dim::<5>(2).repeat_dim(2, groups).reshape([batch, kv * groups, seq, d])
}

/// Gradients `[rows, heads, seq, d]` of repeated keys or values summed back to `kv` heads.
fn sum_groups(t: Tensor<4>, kv: usize) -> Tensor<4> {
    let [rows, heads, seq, d] = t.dims();
    if heads == kv {
        return t;
    }
    t.reshape([rows, kv, heads / kv, seq, d]).sum_dim(2).reshape([rows, kv, seq, d])
}

impl Decoder {
    /// Whether [`Decoder::tape`] covers this configuration (no q/k norm, soft-capping or
    /// sandwich norms).
    pub fn has_hand_backward(&self) -> bool {
        let c = &self.config;
        !c.qk_norm && c.attn_logit_softcapping.is_none() && c.final_logit_softcapping.is_none() && !c.sandwich_norms
    }

    /// Runs the forward pass over plain (unscaled) input embeddings `[copies, seq, hidden]` and
    /// keeps what [`InputGradients::backward`] reads.
    ///
    /// # Errors
    /// A sequence longer than the rotary tables.
    pub fn tape(&self, embeds: Tensor<3>) -> ecco_core::Result<Tape<'_>> {
        let seq = embeds.dims()[1];
        let max = self.info.max_positions.unwrap_or(usize::MAX);
        if seq > max {
            return Err(ecco_core::Error::SequenceTooLong { len: seq, max });
        }
        let scale = self.config.embedding_scale();
        let mut x = if scale == 1.0 { embeds } else { embeds * scale };
        // The tape records nothing: its hook points are emitted into a recorder that keeps none.
        let mut hooks = Hooks::new(CaptureSpec::none());
        let mut blocks = Vec::with_capacity(self.layers.len());
        for (i, block) in self.layers.iter().enumerate() {
            let (y, tape) = forward(block, x, &mut hooks.block(Stack::Main, i));
            x = y;
            blocks.push(tape);
        }
        let norm = standardise(&self.norm, x);
        let last_hidden = norm.0.clone() * norm_scale(&self.norm);
        Ok(Tape { model: self, blocks, norm, last_hidden })
    }
}

/// One block's forward pass (as [`Block::forward`] without Gemma's norms), keeping its tape.
fn forward(b: &Block, x: Tensor<3>, hooks: &mut ecco_core::BlockHooks<'_>) -> (Tensor<3>, BlockTape) {
    let attn = &b.attn;
    let heads = attn.core.n_heads;
    let norm_1 = standardise(&b.input_norm, x.clone());
    let a = norm_1.0.clone() * norm_scale(&b.input_norm);
    let split = |t: Tensor<3>, n: usize| {
        let [batch, seq, width] = t.dims();
        t.reshape([batch, seq, n, width / n]).swap_dims(1, 2)
    };
    let q = attn.rotary.apply(split(attn.q_proj.forward(a.clone()), heads), 0);
    let k = attn.rotary.apply(split(attn.k_proj.forward(a.clone()), attn.core.n_kv_heads), 0);
    let v = split(attn.v_proj.forward(a), attn.core.n_kv_heads);
    let seq = x.dims()[1];
    let mask = (seq > 1).then(|| crate::nn::window_mask(seq, 0, attn.window, &x.device()));
    let (weights, z) = attn.core.attend(&q, &k, &v, mask.as_ref(), crate::nn::Role::SelfAttention, hooks);
    let x = x + attn.o_proj.forward(z);
    let norm_2 = standardise(&b.pre_ffn_norm, x.clone());
    let h = norm_2.0.clone() * norm_scale(&b.pre_ffn_norm);
    let ffn = &b.ffn;
    let g = ffn.gate.as_ref().map_or_else(|| ffn.up.forward(h.clone()), |gate| gate.forward(h.clone()));
    let up = ffn.up.forward(h);
    let (act, act_grad) = (ffn.act.forward(g.clone()), ffn.act.derivative(g));
    let y = x + ffn.down.forward(act.clone() * up.clone());
    let tape = BlockTape { norm_1, q, k: repeat_kv(k, heads), v: repeat_kv(v, heads), weights, norm_2, up, act, act_grad };
    (y, tape)
}

/// One block's backward pass: `dy` `[rows, len, hidden]` to the gradient of its input, with `t`
/// the tape of the rows' input copies, first `len` positions (batch 1 is broadcast).
fn backward(b: &Block, t: &BlockTape, dy: Tensor<3>) -> Tensor<3> {
    let attn = &b.attn;
    let ffn = &b.ffn;
    // The gated FFN and its residual.
    let dpost = ffn.down.backward(dy.clone());
    let dg = dpost.clone() * t.up.clone() * t.act_grad.clone();
    let du = dpost * t.act.clone();
    let dh = match &ffn.gate {
        Some(gate) => gate.backward(dg) + ffn.up.backward(du),
        None => ffn.up.backward(dg),
    };
    let dx = dy + rms_backward(&b.pre_ffn_norm, dh, &t.norm_2.0, &t.norm_2.1);
    // Attention and its residual.
    let dz = attn.o_proj.backward(dx.clone());
    let (dq, dk, dv, _) = attn.core.backward(dz, &t.q, &t.k, &t.v, &t.weights);
    let kv = attn.core.n_kv_heads;
    let dq = attn.rotary.apply_transposed(dq, 0);
    let dk = attn.rotary.apply_transposed(sum_groups(dk, kv), 0);
    let dv = sum_groups(dv, kv);
    let da = attn.q_proj.backward(merge_heads(dq)) + attn.k_proj.backward(merge_heads(dk)) + attn.v_proj.backward(merge_heads(dv));
    dx + rms_backward(&b.input_norm, da, &t.norm_1.0, &t.norm_1.1)
}

impl InputGradients for Tape<'_> {
    fn last_hidden(&self) -> Tensor<3> {
        self.last_hidden.clone()
    }

    fn backward(&self, copies: &[usize], cotangents: Tensor<3>) -> ecco_core::Result<Tensor<3>> {
        let [n_copies, seq, hidden] = self.last_hidden.dims();
        let [rows, len, width] = cotangents.dims();
        let bad_copy = copies.iter().find(|&&c| c >= n_copies);
        if copies.len() != rows || len > seq || width != hidden || bad_copy.is_some() {
            return Err(ecco_core::Error::ShapeMismatch {
                name: format!("cotangents of input copies {copies:?} (of {n_copies})"),
                expected: vec![copies.len(), seq, hidden],
                found: vec![rows, len, width],
            });
        }
        let picked = Rows::new(copies, len, &cotangents.device());
        let pick = |t: &Tensor<3>| picked.pick(t).slice_dim(1, 0..len);
        let mut d = rms_backward(&self.model.norm, cotangents, &pick(&self.norm.0), &pick(&self.norm.1));
        for (block, tape) in self.model.layers.iter().zip(&self.blocks).rev() {
            d = backward(block, &tape.rows(&picked), d);
        }
        let scale = self.model.config.embedding_scale();
        Ok(if scale == 1.0 { d } else { d * scale })
    }

    fn head_backward(&self, dlogits: Tensor<3>) -> ecco_core::Result<Tensor<3>> {
        let [rows, len, vocab] = dlogits.dims();
        let head = self.model.lm_head.as_ref().unwrap_or(&self.model.embed_tokens);
        let [head_vocab, hidden] = head.dims();
        if vocab != head_vocab {
            return Err(ecco_core::Error::ShapeMismatch {
                name: "dlogits".to_owned(),
                expected: vec![rows, len, head_vocab],
                found: vec![rows, len, vocab],
            });
        }
        Ok(dlogits.reshape([rows * len, vocab]).matmul(head.clone()).reshape([rows, len, hidden]))
    }
}
