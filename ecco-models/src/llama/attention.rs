//! The decoders' self-attention (`LlamaAttention` and its Mistral, Qwen2/3 and Gemma 2/3
//! variants): separate q/k/v projections (biased in Qwen2), an optional RMSNorm of each head's
//! q and k (Qwen3, Gemma 3), rotary embeddings, grouped-query [`Attend`] with soft-capping
//! (Gemma 2) and a sliding window on some layers (Mistral, Gemma).

use std::sync::Arc;

use burn::tensor::Tensor;
use ecco_core::{BlockHooks, BlockSite};

use crate::nn::rotary::Rotary;
use crate::nn::{Attend, Linear, RmsNorm, Role, window_mask};

/// One block's self-attention.
#[derive(Clone, Debug)]
pub struct Attention {
    /// `q_proj`, `[hidden, heads * head_dim]`.
    pub q_proj: Linear,
    /// `k_proj`, `[hidden, kv_heads * head_dim]`.
    pub k_proj: Linear,
    /// `v_proj`, `[hidden, kv_heads * head_dim]`.
    pub v_proj: Linear,
    /// `o_proj`, `[heads * head_dim, hidden]`.
    pub o_proj: Linear,
    /// RMSNorm over each query head before rotary (`q_norm`, `[head_dim]`).
    pub q_norm: Option<RmsNorm>,
    /// RMSNorm over each key head before rotary (`k_norm`, `[head_dim]`).
    pub k_norm: Option<RmsNorm>,
    /// Heads, scaling and soft-capping.
    pub core: Attend,
    /// This layer's rotary tables (shared between the layers with the same settings).
    pub rotary: Arc<Rotary>,
    /// The sliding window of this layer, if it slides.
    pub window: Option<usize>,
}

/// What one attention call returns.
#[derive(Debug)]
pub struct AttentionOutput {
    /// `[batch, seq, hidden]`, after `o_proj`.
    pub output: Tensor<3>,
    /// Keys (after rotary) and values including the past, `[batch, kv_heads, past + seq, head_dim]`.
    pub kv: (Tensor<4>, Tensor<4>),
}

/// `[batch, seq, heads * d]` as `[batch, seq, heads, d]`, RMS-normalised per head when `norm`.
fn heads_of(x: Tensor<3>, heads: usize, norm: Option<&RmsNorm>) -> Tensor<4> {
    let [batch, seq, width] = x.dims();
    let d = width / heads;
    match norm {
        Some(norm) => norm.forward(x.reshape([batch, seq * heads, d])).reshape([batch, seq, heads, d]),
        None => x.reshape([batch, seq, heads, d]),
    }
}

impl Attention {
    /// Attends from `x` `[batch, seq, hidden]` (positions `past_len..past_len + seq`) to the
    /// cached keys/values and to itself, emitting `attn.q`, `attn.k` (after q/k norm and rotary),
    /// `attn.v`, `attn.pattern` and `attn.z`.
    pub fn forward(&self, x: Tensor<3>, past: Option<(Tensor<4>, Tensor<4>)>, hooks: &mut BlockHooks<'_>) -> AttentionOutput {
        let seq = x.dims()[1];
        let past_len = past.as_ref().map_or(0, |(k, _)| k.dims()[2]);
        let (heads, kv_heads) = (self.core.n_heads, self.core.n_kv_heads);
        let turn = |t: Tensor<4>| self.rotary.apply(t.swap_dims(1, 2), past_len);
        let q = turn(heads_of(self.q_proj.forward(x.clone()), heads, self.q_norm.as_ref()));
        let q = hooks.emit(BlockSite::AttnQ, q.swap_dims(1, 2)).swap_dims(1, 2);
        let k = turn(heads_of(self.k_proj.forward(x.clone()), kv_heads, self.k_norm.as_ref()));
        let mut k = hooks.emit(BlockSite::AttnK, k.swap_dims(1, 2)).swap_dims(1, 2);
        let mut v = hooks.emit(BlockSite::AttnV, heads_of(self.v_proj.forward(x), kv_heads, None)).swap_dims(1, 2);
        if let Some((past_k, past_v)) = past {
            k = Tensor::cat(vec![past_k, k], 2);
            v = Tensor::cat(vec![past_v, v], 2);
        }
        // A single new token sees every key unless the window hides the oldest.
        let keys = past_len + seq;
        let masked = seq > 1 || self.window.is_some_and(|w| keys > w);
        let mask = masked.then(|| window_mask(seq, past_len, self.window, &q.device()));
        let (_, z) = self.core.attend(&q, &k, &v, mask.as_ref(), Role::SelfAttention, hooks);
        AttentionOutput { output: self.o_proj.forward(z), kv: (k, v) }
    }
}
