//! GPT-2's backward pass with respect to its input embeddings, written by hand so that one
//! forward pass serves many gradients ([`ecco_core::InputGradients`]).
//!
//! Attributing `n` generated tokens takes `n` gradients of one sequence, each at its own scored
//! position. Autodiff needs a forward pass per gradient; here the forward pass over the whole
//! sequence runs once and keeps what the backward pass reads (each norm's standardised input
//! and `1/std`, the queries, keys, values and attention weights, the FFN nonlinearity's
//! derivative), and every gradient is one backward pass that broadcasts those. The causal mask
//! makes the first `len` positions of the forward pass the forward pass of the first `len`
//! tokens, so a gradient stops at its own scored position.
//!
//! Per block, with `a = ln_1(x)`, `x' = x + attn(a)`, `y = x' + W_proj act(W_fc ln_2(x'))`:
//! `dx' = dy + ln_2ᵀ(W_fcᵀ (act'(u) * W_projᵀ dy))` and `dx = dx' + ln_1ᵀ(W_qkvᵀ dqkv)`, where
//! `dqkv` is the softmax attention's backward pass: `dP = dC Vᵀ`, `dV = Pᵀ dC`,
//! `dS = P * (dP - rowsum(dP * P)) * scale`, `dQ = dS K`, `dK = dSᵀ Q`.
//!
//! The same pass gives the gradient at any hook point on the way
//! ([`InputGradients::hook_backward`]): each is one of the intermediate gradients above.

use burn::tensor::Tensor;
use ecco_core::{BlockSite, CaptureSpec, HookPoint, HookTensor, Hooks, InputGradients, Site, Stack};

use crate::gpt2::block::Block;
use crate::gpt2::model::Gpt2;
use crate::nn::tape::Rows;
use crate::nn::{causal_mask, merge_heads};

/// What one block's backward pass reads from the forward pass, batch = input copies.
#[derive(Clone, Debug)]
struct BlockTape {
    /// `ln_1`'s standardised input `[copies, seq, hidden]` and `1/std` `[copies, seq, 1]`.
    ln_1: (Tensor<3>, Tensor<3>),
    /// Queries, keys and values, `[copies, heads, seq, head_dim]`.
    q: Tensor<4>,
    k: Tensor<4>,
    v: Tensor<4>,
    /// Softmaxed attention weights, `[copies, heads, seq, seq]`.
    weights: Tensor<4>,
    /// `ln_2`'s standardised input and `1/std`.
    ln_2: (Tensor<3>, Tensor<3>),
    /// The FFN nonlinearity's derivative at `c_fc`'s output, `[copies, seq, inner]`.
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
            ln_1: (s3(&self.ln_1.0), s3(&self.ln_1.1)),
            q: s4(&self.q, false),
            k: s4(&self.k, false),
            v: s4(&self.v, false),
            weights: s4(&self.weights, true),
            ln_2: (s3(&self.ln_2.0), s3(&self.ln_2.1)),
            act_grad: s3(&self.act_grad),
        }
    }
}

/// A GPT-2 forward pass over input copies `[copies, seq, hidden]`, kept for backward passes.
#[derive(Debug)]
pub struct Tape<'a> {
    model: &'a Gpt2,
    blocks: Vec<BlockTape>,
    /// `ln_f`'s standardised input and `1/std`.
    ln_f: (Tensor<3>, Tensor<3>),
    last_hidden: Tensor<3>,
}

impl Gpt2 {
    /// Runs the forward pass over plain input embeddings `[copies, seq, hidden]` and keeps what
    /// [`InputGradients::backward`] reads.
    ///
    /// # Errors
    /// A sequence longer than the position embeddings.
    pub fn tape(&self, embeds: Tensor<3>) -> ecco_core::Result<Tape<'_>> {
        let [_, seq, hidden] = embeds.dims();
        if seq > self.config.n_positions {
            return Err(ecco_core::Error::SequenceTooLong { len: seq, max: self.config.n_positions });
        }
        let mut x = embeds + self.wpe.clone().slice([0..seq, 0..hidden]).unsqueeze::<3>();
        let mask = (seq > 1).then(|| causal_mask(seq, 0, &x.device()));
        let mut blocks = Vec::with_capacity(self.h.len());
        // The tape records nothing: its hook points are emitted into a recorder that keeps none.
        let mut hooks = Hooks::new(CaptureSpec::none());
        for (i, block) in self.h.iter().enumerate() {
            let (y, tape) = forward(block, x, mask.as_ref(), &mut hooks.block(Stack::Main, i));
            x = y;
            blocks.push(tape);
        }
        let ln_f = self.ln_f.standardise(x);
        let last_hidden = self.ln_f.affine(ln_f.0.clone());
        Ok(Tape { model: self, blocks, ln_f, last_hidden })
    }
}

/// One block's forward pass (as [`Block::forward`]), keeping its tape.
fn forward(b: &Block, x: Tensor<3>, mask: Option<&Tensor<4>>, hooks: &mut ecco_core::BlockHooks<'_>) -> (Tensor<3>, BlockTape) {
    let ln_1 = b.ln_1.standardise(x.clone());
    let (q, k, v) = b.attn.heads(b.ln_1.affine(ln_1.0.clone()), hooks);
    let (weights, attended) = b.attn.attend(&q, &k, &v, mask, hooks);
    let x = x + attended;
    let ln_2 = b.ln_2.standardise(x.clone());
    let u = b.mlp.c_fc.forward(b.ln_2.affine(ln_2.0.clone()));
    let act_grad = b.mlp.act.derivative(u.clone());
    let y = x + b.mlp.c_proj.forward(b.mlp.act.forward(u));
    (y, BlockTape { ln_1, q, k, v, weights, ln_2, act_grad })
}

/// Receives the gradient at a block's hook points during a backward pass.
type Record<'r> = Option<&'r mut dyn FnMut(BlockSite, HookTensor)>;

/// One block's backward pass: `dy` `[rows, len, hidden]` to the gradient of its input, with `t`
/// the tape of the rows' input copies, first `len` positions (batch 1 is broadcast). Hands the
/// gradient at each of the block's hook points to `record` when there is one (`resid_pre` is
/// the returned value).
fn backward(b: &Block, t: &BlockTape, dy: Tensor<3>, mut record: Record<'_>) -> Tensor<3> {
    let [n, len, hidden] = dy.dims();
    let heads = b.attn.core.n_heads;
    let mut put = |site: BlockSite, grad: &dyn Fn() -> HookTensor| {
        if let Some(r) = record.as_mut() {
            r(site, grad());
        }
    };
    put(BlockSite::ResidPost, &|| HookTensor::Rank3(dy.clone()));
    put(BlockSite::MlpOut, &|| HookTensor::Rank3(dy.clone()));
    // MLP and its residual.
    let dpost = b.mlp.c_proj.backward(dy.clone());
    put(BlockSite::MlpPost, &|| HookTensor::Rank3(dpost.clone()));
    let du = dpost * t.act_grad.clone();
    let dx = dy + b.ln_2.backward(b.mlp.c_fc.backward(du), &t.ln_2.0, &t.ln_2.1);
    put(BlockSite::ResidMid, &|| HookTensor::Rank3(dx.clone()));
    put(BlockSite::AttnOut, &|| HookTensor::Rank3(dx.clone()));
    // Attention and its residual.
    let dz = b.attn.c_proj.backward(dx.clone());
    put(BlockSite::AttnZ, &|| HookTensor::Rank4(dz.clone().reshape([n, len, heads, hidden / heads])));
    let (dq, dk, dv, dp) = b.attn.core.backward(dz, &t.q, &t.k, &t.v, &t.weights);
    put(BlockSite::AttnPattern, &|| HookTensor::Rank4(dp.clone()));
    for (site, d) in [(BlockSite::AttnQ, &dq), (BlockSite::AttnK, &dk), (BlockSite::AttnV, &dv)] {
        put(site, &|| HookTensor::Rank4(d.clone().swap_dims(1, 2)));
    }
    let dqkv = Tensor::cat(vec![merge_heads(dq), merge_heads(dk), merge_heads(dv)], 2);
    let dx = dx + b.ln_1.backward(b.attn.c_attn.backward(dqkv), &t.ln_1.0, &t.ln_1.1);
    put(BlockSite::ResidPre, &|| HookTensor::Rank3(dx.clone()));
    dx
}

impl Tape<'_> {
    /// [`InputGradients::hook_backward`]: the backward pass of [`InputGradients::backward`]
    /// over the whole sequence, keeping the gradients at `points` on the way.
    fn hook_gradients(&self, copy: usize, cotangent: Tensor<3>, points: &[HookPoint]) -> ecco_core::Result<Vec<(HookPoint, HookTensor)>> {
        let [n_copies, seq, hidden] = self.last_hidden.dims();
        let dims = cotangent.dims();
        if copy >= n_copies || dims != [1, seq, hidden] {
            return Err(ecco_core::Error::ShapeMismatch {
                name: format!("cotangent of input copy {copy} (of {n_copies})"),
                expected: vec![1, seq, hidden],
                found: dims.to_vec(),
            });
        }
        let mut found: Vec<(HookPoint, HookTensor)> = Vec::new();
        let wanted = |p: &HookPoint| points.contains(p);
        let final_norm = HookPoint::final_norm(Stack::Main);
        if wanted(&final_norm) {
            found.push((final_norm, HookTensor::Rank3(cotangent.clone())));
        }
        let picked = Rows::new(&[copy], seq, &cotangent.device());
        let ln_f = |t: &Tensor<3>| picked.pick(t);
        let mut d = self.model.ln_f.backward(cotangent, &ln_f(&self.ln_f.0), &ln_f(&self.ln_f.1));
        for (i, (block, tape)) in self.model.h.iter().zip(&self.blocks).enumerate().rev() {
            let mut record = |site: BlockSite, grad: HookTensor| {
                let point = HookPoint::block(Stack::Main, i, site);
                if wanted(&point) {
                    found.push((point, grad));
                }
            };
            let wants_block = points.iter().any(|p| p.stack == Stack::Main && matches!(p.site, Site::Block(b, _) if b == i));
            d = backward(
                block,
                &tape.rows(&picked),
                d,
                if wants_block { Some(&mut record as &mut dyn FnMut(BlockSite, HookTensor)) } else { None },
            );
        }
        let embed = HookPoint::embed(Stack::Main);
        if wanted(&embed) {
            found.push((embed, HookTensor::Rank3(d)));
        }
        Ok(found)
    }
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
        let ln_f = |t: &Tensor<3>| picked.pick(t).slice_dim(1, 0..len);
        let mut d = self.model.ln_f.backward(cotangents, &ln_f(&self.ln_f.0), &ln_f(&self.ln_f.1));
        for (block, tape) in self.model.h.iter().zip(&self.blocks).rev() {
            d = backward(block, &tape.rows(&picked), d, None);
        }
        Ok(d)
    }

    fn hook_backward(
        &self,
        copy: usize,
        cotangent: Tensor<3>,
        points: &[HookPoint],
    ) -> Option<ecco_core::Result<Vec<(HookPoint, HookTensor)>>> {
        Some(self.hook_gradients(copy, cotangent, points))
    }

    fn head_backward(&self, dlogits: Tensor<3>) -> ecco_core::Result<Tensor<3>> {
        let [rows, len, vocab] = dlogits.dims();
        let head = self.model.lm_head.as_ref().unwrap_or(&self.model.wte);
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
