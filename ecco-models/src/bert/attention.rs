//! Bidirectional self-attention with its output projection and post-norm
//! (`BertSelfAttention` with eager attention, `BertSelfOutput`).

use burn::tensor::{Tensor, activation};
use ecco_core::{BlockHooks, BlockSite};

use crate::nn::{LayerNorm, Linear};

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
    /// Number of heads.
    pub n_heads: usize,
}

impl Attention {
    /// `LayerNorm(x + output(softmax(q k^T / sqrt(d) + mask) v))`, emitting `attn.q`, `attn.k`,
    /// `attn.v`, `attn.pattern`, `attn.z`, `attn_out` (before the residual sum and its norm)
    /// and `resid_mid` (after them).
    ///
    /// # Shapes
    /// `x`: `[batch, seq, hidden]`; `mask`: additive, `[batch, 1, 1, seq]`.
    pub fn forward(&self, x: Tensor<3>, mask: Option<&Tensor<4>>, hooks: &mut BlockHooks<'_>) -> Tensor<3> {
        let [batch, seq, hidden] = x.dims();
        let head_dim = hidden / self.n_heads;
        let mut split = |t: Tensor<3>, site: BlockSite| hooks.emit(site, t.reshape([batch, seq, self.n_heads, head_dim])).swap_dims(1, 2);
        let q = split(self.query.forward(x.clone()), BlockSite::AttnQ);
        let k = split(self.key.forward(x.clone()), BlockSite::AttnK);
        let v = split(self.value.forward(x.clone()), BlockSite::AttnV);
        let mut scores = q.matmul(k.swap_dims(2, 3)) * (1.0 / (head_dim as f64).sqrt());
        if let Some(mask) = mask {
            scores = scores + mask.clone();
        }
        let weights = hooks.emit(BlockSite::AttnPattern, activation::softmax(scores, 3));
        let z = hooks.emit(BlockSite::AttnZ, weights.matmul(v).swap_dims(1, 2));
        let attn_out = hooks.emit(BlockSite::AttnOut, self.output.forward(z.reshape([batch, seq, hidden])));
        hooks.emit(BlockSite::ResidMid, self.layer_norm.forward(x + attn_out))
    }
}
