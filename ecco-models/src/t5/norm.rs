//! `T5LayerNorm`: RMS normalisation with a learned scale, no mean subtraction and no bias.

use burn::tensor::Tensor;

/// `weight * x / sqrt(mean(x^2) + eps)` over the last dimension.
#[derive(Clone, Debug)]
pub struct RmsNorm {
    /// Scale, `[d_model]`.
    pub weight: Tensor<1>,
    /// Added to the mean square.
    pub eps: f64,
}

impl RmsNorm {
    /// Normalises `x`, `[batch, seq, d_model]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let variance = (x.clone() * x.clone()).mean_dim(2);
        x / (variance + self.eps).sqrt() * self.weight.clone().unsqueeze::<3>()
    }
}
