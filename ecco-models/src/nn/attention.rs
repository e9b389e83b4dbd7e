//! Scaled dot-product attention over heads, shared by every architecture: multi-head,
//! grouped-query and multi-query (fewer key/value heads, repeated), any additive mask or bias
//! (causal, bidirectional, sliding-window, T5's relative-position bias; [`crate::nn::mask`]),
//! logit soft-capping (Gemma 2), and its backward pass. The projections around it (fused or
//! separate, with or without bias, rotary or not) belong to each model.
//!
//! burn-nn's `MultiHeadAttention` is not used: it emits no hook points (queries, keys, values,
//! pattern and per-head outputs are all hook points here), has no grouped-query layout, and
//! keeps no tape for a hand-written backward pass.

use burn::tensor::{Tensor, activation};
use ecco_core::{BlockHooks, BlockSite};

/// Which attention of a block a call is: what it emits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Self-attention: `attn.q`, `attn.k`, `attn.v` (through [`split_heads`]), `attn.pattern`
    /// and `attn.z`.
    SelfAttention,
    /// A decoder block's cross-attention: `cross_attn.pattern`.
    Cross,
}

/// The shape and scaling of one attention.
#[derive(Clone, Debug, PartialEq)]
pub struct Attend {
    /// Query heads.
    pub n_heads: usize,
    /// Key and value heads (`n_heads` for multi-head, 1 for multi-query, a divisor for
    /// grouped-query attention).
    pub n_kv_heads: usize,
    /// Width of one head.
    pub head_dim: usize,
    /// Scores are multiplied by this (`1/sqrt(head_dim)` usually; 1 for T5).
    pub scale: f64,
    /// Soft-capping of the scores, `cap * tanh(scores / cap)` (Gemma 2), before the mask.
    pub softcap: Option<f64>,
}

/// `[batch, seq, heads * head_dim]` split into heads: emitted as `site` in the hook layout
/// `[batch, seq, heads, head_dim]`, returned heads first, `[batch, heads, seq, head_dim]`.
pub fn split_heads(x: Tensor<3>, heads: usize, site: Option<BlockSite>, hooks: &mut BlockHooks<'_>) -> Tensor<4> {
    let [batch, seq, width] = x.dims();
    let t = x.reshape([batch, seq, heads, width / heads]);
    let t = match site {
        Some(site) => hooks.emit(site, t),
        None => t,
    };
    t.swap_dims(1, 2)
}

impl Attend {
    /// Multi-head attention with `n_heads` heads of `head_dim`, scaled by `scale`.
    pub fn multi_head(n_heads: usize, head_dim: usize, scale: f64) -> Self {
        Self { n_heads, n_kv_heads: n_heads, head_dim, scale, softcap: None }
    }

    /// Keys or values `[batch, kv_heads, keys, head_dim]` repeated for the query heads sharing
    /// them (`repeat_kv`), `[batch, heads, keys, head_dim]`.
    fn repeat_kv(&self, t: Tensor<4>) -> Tensor<4> {
        let groups = self.n_heads / self.n_kv_heads.max(1);
        if groups <= 1 {
            return t;
        }
        let [batch, kv, keys, d] = t.dims();
        t.unsqueeze_dim::<5>(2).repeat_dim(2, groups).reshape([batch, kv * groups, keys, d])
    }

    /// `softmax(scale q kᵀ + bias) v`: the weights `[batch, heads, seq, keys]` (emitted as
    /// `attn.pattern` or `cross_attn.pattern`) and the heads' outputs merged,
    /// `[batch, seq, heads * head_dim]` (emitted per head as `attn.z` by self-attention).
    ///
    /// # Shapes
    /// `q`: `[batch, heads, seq, head_dim]`; `k`, `v`: `[batch, kv_heads, keys, head_dim]`;
    /// `bias`: additive, broadcast to `[batch, heads, seq, keys]`.
    pub fn attend(
        &self,
        q: &Tensor<4>,
        k: &Tensor<4>,
        v: &Tensor<4>,
        bias: Option<&Tensor<4>>,
        role: Role,
        hooks: &mut BlockHooks<'_>,
    ) -> (Tensor<4>, Tensor<3>) {
        let [batch, heads, seq, d] = q.dims();
        let (k, v) = (self.repeat_kv(k.clone()), self.repeat_kv(v.clone()));
        let mut scores = q.clone().matmul(k.swap_dims(2, 3));
        // A scale of 1 (T5) is skipped rather than multiplied: the same bits as without it.
        if self.scale != 1.0 {
            scores = scores * self.scale;
        }
        if let Some(cap) = self.softcap {
            scores = (scores / cap).tanh() * cap;
        }
        if let Some(bias) = bias {
            scores = scores + bias.clone();
        }
        let own = role == Role::SelfAttention;
        let weights = hooks.emit(if own { BlockSite::AttnPattern } else { BlockSite::CrossAttnPattern }, activation::softmax(scores, 3));
        let z = weights.clone().matmul(v).swap_dims(1, 2);
        let z = if own { hooks.emit(BlockSite::AttnZ, z) } else { z };
        (weights, z.reshape([batch, seq, heads * d]))
    }

    /// The backward pass of [`Attend::attend`] (multi-head, no soft-capping) given the
    /// gradient of the merged output `dz` `[rows, seq, heads * head_dim]` and the forward
    /// pass's `q`, `k`, `v` and `weights` (batch 1 broadcast):
    /// `dP = dZ Vᵀ`, `dV = Pᵀ dZ`, `dS = P * (dP - rowsum(dP * P)) * scale`, `dQ = dS K`,
    /// `dK = dSᵀ Q`. Returns `(dq, dk, dv, dp)`, heads first.
    pub fn backward(
        &self,
        dz: Tensor<3>,
        q: &Tensor<4>,
        k: &Tensor<4>,
        v: &Tensor<4>,
        weights: &Tensor<4>,
    ) -> (Tensor<4>, Tensor<4>, Tensor<4>, Tensor<4>) {
        let [n, len, _] = dz.dims();
        let dc = dz.reshape([n, len, self.n_heads, self.head_dim]).swap_dims(1, 2);
        let dp = dc.clone().matmul(v.clone().swap_dims(2, 3));
        let dv = weights.clone().swap_dims(2, 3).matmul(dc);
        let rowsum = (dp.clone() * weights.clone()).sum_dim(3);
        let ds = weights.clone() * (dp.clone() - rowsum) * self.scale;
        let dq = ds.clone().matmul(k.clone());
        let dk = ds.swap_dims(2, 3).matmul(q.clone());
        (dq, dk, dv, dp)
    }
}

/// Heads-first `[rows, heads, seq, head_dim]` merged back to `[rows, seq, heads * head_dim]`.
pub fn merge_heads(t: Tensor<4>) -> Tensor<3> {
    let [n, heads, len, d] = t.dims();
    t.swap_dims(1, 2).reshape([n, len, heads * d])
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use burn::tensor::{Device, Distribution, Tensor};
    use ecco_core::{CaptureSpec, Hooks, Stack};

    use super::{Attend, Role};

    fn max_diff(a: Tensor<3>, b: Tensor<3>) -> f32 {
        (a - b).abs().max().into_scalar()
    }

    /// Grouped-query attention is multi-head attention with each key/value head repeated for
    /// its group of query heads; soft-capping is `cap * tanh(scores / cap)` before the mask.
    #[test]
    fn grouped_query_and_soft_capping() {
        let device = Device::flex();
        let mut hooks = Hooks::new(CaptureSpec::none());
        let mut h = hooks.block(Stack::Main, 0);
        let q = Tensor::<4>::random([1, 4, 3, 2], Distribution::Default, &device);
        let k = Tensor::<4>::random([1, 2, 3, 2], Distribution::Default, &device);
        let v = Tensor::<4>::random([1, 2, 3, 2], Distribution::Default, &device);
        let gqa = Attend { n_heads: 4, n_kv_heads: 2, head_dim: 2, scale: 0.5, softcap: None };
        // Heads 0, 1 read kv head 0; heads 2, 3 kv head 1.
        let repeat = |t: &Tensor<4>| {
            let h0 = t.clone().slice_dim(1, 0..1);
            let h1 = t.clone().slice_dim(1, 1..2);
            Tensor::cat(vec![h0.clone(), h0, h1.clone(), h1], 1)
        };
        let (_, ours) = gqa.attend(&q, &k, &v, None, Role::SelfAttention, &mut h);
        let mha = Attend::multi_head(4, 2, 0.5);
        let (_, theirs) = mha.attend(&q, &repeat(&k), &repeat(&v), None, Role::SelfAttention, &mut h);
        assert!(max_diff(ours, theirs) < 1e-6);

        let capped = Attend { softcap: Some(0.3), ..mha.clone() };
        let (w, _) = capped.attend(&q, &repeat(&k), &repeat(&v), None, Role::SelfAttention, &mut h);
        let scores = q.matmul(repeat(&k).swap_dims(2, 3)) * 0.5;
        let expected = burn::tensor::activation::softmax((scores / 0.3).tanh() * 0.3, 3);
        let diff: f32 = (w - expected).abs().max().into_scalar();
        assert!(diff < 1e-6, "{diff}");
    }
}
