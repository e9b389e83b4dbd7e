//! Bidirectional self-attention with its output projection and post-norm
//! (`BertSelfAttention` with eager attention, `BertSelfOutput`).

use burn::tensor::{Tensor, activation};

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
    /// `LayerNorm(x + output(softmax(q k^T / sqrt(d) + mask) v))`; returns the weights too when
    /// `want_weights`.
    ///
    /// # Shapes
    /// `x`: `[batch, seq, hidden]`; `mask`: additive, `[batch, 1, 1, seq]`; weights
    /// `[batch, heads, seq, seq]`.
    pub fn forward(&self, x: Tensor<3>, mask: Option<&Tensor<4>>, want_weights: bool) -> (Tensor<3>, Option<Tensor<4>>) {
        let [batch, seq, hidden] = x.dims();
        let head_dim = hidden / self.n_heads;
        let split = |t: Tensor<3>| t.reshape([batch, seq, self.n_heads, head_dim]).swap_dims(1, 2);
        let q = split(self.query.forward(x.clone()));
        let k = split(self.key.forward(x.clone()));
        let v = split(self.value.forward(x.clone()));
        let mut scores = q.matmul(k.swap_dims(2, 3)) * (1.0 / (head_dim as f64).sqrt());
        if let Some(mask) = mask {
            scores = scores + mask.clone();
        }
        let weights = activation::softmax(scores, 3);
        let context = weights.clone().matmul(v).swap_dims(1, 2).reshape([batch, seq, hidden]);
        let out = self.layer_norm.forward(x + self.output.forward(context));
        (out, want_weights.then_some(weights))
    }
}
