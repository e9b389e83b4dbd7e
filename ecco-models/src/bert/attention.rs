//! Bidirectional self-attention with its output projection and post-norm
//! (`BertSelfAttention` with eager attention, `BertSelfOutput`), around the shared [`Attend`].

use burn::tensor::Tensor;
use ecco_core::{BlockHooks, BlockSite};

use crate::nn::{Attend, LayerNorm, Linear, Role, split_heads};

/// One layer's self-attention block.
#[derive(Clone, Debug)]
pub struct Attention {
    /// `attention.self.query`.
    pub query: Linear,
    /// `attention.self.key`.
    pub key: Linear,
    /// `attention.self.value`.
    pub value: Linear,
    /// `attention.output.dense`.
    pub output: Linear,
    /// `attention.output.LayerNorm`, applied to the residual sum.
    pub layer_norm: LayerNorm,
    /// Heads, scaled by `1/sqrt(head_dim)`.
    pub core: Attend,
}

impl Attention {
    /// `LayerNorm(x + output(softmax(q k^T / sqrt(d) + mask) v))`, emitting `attn.q`, `attn.k`,
    /// `attn.v`, `attn.pattern`, `attn.z`, `attn_out` (before the residual sum and its norm)
    /// and `resid_mid` (after them).
    ///
    /// # Shapes
    /// `x`: `[batch, seq, hidden]`; `mask`: additive, `[batch, 1, 1, seq]`.
    pub fn forward(&self, x: Tensor<3>, mask: Option<&Tensor<4>>, hooks: &mut BlockHooks<'_>) -> Tensor<3> {
        let heads = self.core.n_heads;
        let q = split_heads(self.query.forward(x.clone()), heads, Some(BlockSite::AttnQ), hooks);
        let k = split_heads(self.key.forward(x.clone()), heads, Some(BlockSite::AttnK), hooks);
        let v = split_heads(self.value.forward(x.clone()), heads, Some(BlockSite::AttnV), hooks);
        let (_, z) = self.core.attend(&q, &k, &v, mask, Role::SelfAttention, hooks);
        let attn_out = hooks.emit(BlockSite::AttnOut, self.output.forward(z));
        hooks.emit(BlockSite::ResidMid, self.layer_norm.forward(x + attn_out))
    }
}
