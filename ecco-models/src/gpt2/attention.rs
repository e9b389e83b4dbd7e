//! GPT-2 causal self-attention (`modeling_gpt2.py`, `GPT2Attention` with eager attention).

use burn::tensor::{Tensor, activation};
use ecco_core::{BlockHooks, BlockSite};

use crate::nn::Conv1D;

/// One block's self-attention.
#[derive(Clone, Debug)]
pub struct Attention {
    /// Fused query/key/value projection, `[hidden, 3 * hidden]`.
    pub c_attn: Conv1D,
    /// Output projection, `[hidden, hidden]`.
    pub c_proj: Conv1D,
    /// Number of heads.
    pub n_head: usize,
    /// Scores are multiplied by this (`1/sqrt(head_dim)`, and `1/(layer+1)` in some variants).
    pub scale: f64,
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
    /// (emitted `[batch, seq, heads, head_dim]` as `attn.q`, `attn.k`, `attn.v`).
    pub fn heads(&self, x: Tensor<3>, hooks: &mut BlockHooks<'_>) -> (Tensor<4>, Tensor<4>, Tensor<4>) {
        let [batch, seq, hidden] = x.dims();
        let head_dim = hidden / self.n_head;
        let qkv = self.c_attn.forward(x);
        let mut split = |i: usize, site: BlockSite| {
            let t = qkv.clone().slice([0..batch, 0..seq, i * hidden..(i + 1) * hidden]).reshape([batch, seq, self.n_head, head_dim]);
            hooks.emit(site, t).swap_dims(1, 2)
        };
        (split(0, BlockSite::AttnQ), split(1, BlockSite::AttnK), split(2, BlockSite::AttnV))
    }

    /// The softmaxed weights `[batch, heads, seq, keys]` (emitted as `attn.pattern`) and the
    /// projected output `[batch, seq, hidden]` of queries attending to keys and values (`mask`
    /// as in [`Attention::forward`]; the heads' outputs are emitted as `attn.z`).
    pub fn attend(
        &self,
        q: &Tensor<4>,
        k: &Tensor<4>,
        v: &Tensor<4>,
        mask: Option<&Tensor<4>>,
        hooks: &mut BlockHooks<'_>,
    ) -> (Tensor<4>, Tensor<3>) {
        let [batch, _, seq, _] = q.dims();
        let hidden = self.c_proj.weight.dims()[0];
        let mut scores = q.clone().matmul(k.clone().swap_dims(2, 3)) * self.scale;
        if let Some(mask) = mask {
            scores = scores + mask.clone();
        }
        let weights = hooks.emit(BlockSite::AttnPattern, activation::softmax(scores, 3));
        let z = hooks.emit(BlockSite::AttnZ, weights.clone().matmul(v.clone()).swap_dims(1, 2));
        (weights, self.c_proj.forward(z.reshape([batch, seq, hidden])))
    }
}
