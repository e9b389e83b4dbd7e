//! GPT-2 causal self-attention (`modeling_gpt2.py`, `GPT2Attention` with eager attention): a
//! fused query/key/value projection around the shared [`Attend`].

use burn::tensor::Tensor;
use ecco_core::{BlockHooks, BlockSite};

use crate::nn::{Attend, Linear, Role, split_heads};

/// One block's self-attention.
#[derive(Clone, Debug)]
pub struct Attention {
    /// Fused query/key/value projection (`Conv1D`), `[hidden, 3 * hidden]`.
    pub c_attn: Linear,
    /// Output projection (`Conv1D`), `[hidden, hidden]`.
    pub c_proj: Linear,
    /// Heads and scaling: `1/sqrt(head_dim)`, and `1/(layer+1)` in some variants.
    pub core: Attend,
}

/// What one attention call returns.
#[derive(Debug)]
pub struct AttentionOutput {
    /// `[batch, seq, hidden]`.
    pub output: Tensor<3>,
    /// Keys and values including the past, `[batch, heads, past + seq, head_dim]`.
    pub kv: (Tensor<4>, Tensor<4>),
}

impl Attention {
    /// Attends from `x` to the cached `past` keys/values and to itself.
    ///
    /// `mask` is an additive causal mask `[1, 1, seq, past + seq]` (0 or a large negative);
    /// `None` when every key is visible (a single new token). Emits `attn.q`, `attn.k`,
    /// `attn.v` (the new positions), `attn.pattern` and `attn.z`.
    ///
    /// # Shapes
    /// `x`: `[batch, seq, hidden]`.
    pub fn forward(
        &self,
        x: Tensor<3>,
        past: Option<(Tensor<4>, Tensor<4>)>,
        mask: Option<&Tensor<4>>,
        hooks: &mut BlockHooks<'_>,
    ) -> AttentionOutput {
        let (q, mut k, mut v) = self.heads(x, hooks);
        if let Some((past_k, past_v)) = past {
            k = Tensor::cat(vec![past_k, k], 2);
            v = Tensor::cat(vec![past_v, v], 2);
        }
        let (_, output) = self.attend(&q, &k, &v, mask, hooks);
        AttentionOutput { output, kv: (k, v) }
    }

    /// Queries, keys and values of `x` `[batch, seq, hidden]`, each `[batch, heads, seq, head_dim]`
    /// (emitted as `attn.q`, `attn.k`, `attn.v`).
    pub fn heads(&self, x: Tensor<3>, hooks: &mut BlockHooks<'_>) -> (Tensor<4>, Tensor<4>, Tensor<4>) {
        let [batch, seq, hidden] = x.dims();
        let qkv = self.c_attn.forward(x);
        let heads = self.core.n_heads;
        let mut split = |i: usize, site: BlockSite| {
            split_heads(qkv.clone().slice([0..batch, 0..seq, i * hidden..(i + 1) * hidden]), heads, Some(site), hooks)
        };
        (split(0, BlockSite::AttnQ), split(1, BlockSite::AttnK), split(2, BlockSite::AttnV))
    }

    /// The softmaxed weights `[batch, heads, seq, keys]` and the projected output
    /// `[batch, seq, hidden]` of queries attending to keys and values (`mask` as in
    /// [`Attention::forward`]).
    pub fn attend(
        &self,
        q: &Tensor<4>,
        k: &Tensor<4>,
        v: &Tensor<4>,
        mask: Option<&Tensor<4>>,
        hooks: &mut BlockHooks<'_>,
    ) -> (Tensor<4>, Tensor<3>) {
        let (weights, z) = self.core.attend(q, k, v, mask, Role::SelfAttention, hooks);
        (weights, self.c_proj.forward(z))
    }
}
