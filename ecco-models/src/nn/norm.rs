//! Normalisation layers: LayerNorm (GPT-2, BERT) and RMSNorm (T5; Llama; Gemma's `(1 + w)`
//! variant). Written out rather than burn-nn's because the hand-written backward pass needs the
//! standardised input and `1/std` of the forward pass ([`LayerNorm::standardise`]).

use burn::tensor::Tensor;

/// Layer normalisation over the last dimension with a learned scale and shift
/// (`torch.nn.LayerNorm`: biased variance, epsilon inside the square root).
#[derive(Clone, Debug)]
pub struct LayerNorm {
    /// Scale, `[hidden]`.
    pub weight: Tensor<1>,
    /// Shift, `[hidden]`.
    pub bias: Tensor<1>,
    /// Added to the variance.
    pub eps: f64,
}

impl LayerNorm {
    /// Normalises `x`, `[batch, seq, hidden]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.affine(self.standardise(x).0)
    }

    /// `(x - mean) / std` and `1 / std` (`[batch, seq, 1]`), `std = sqrt(var + eps)`: what
    /// [`LayerNorm::backward`] needs.
    pub fn standardise(&self, x: Tensor<3>) -> (Tensor<3>, Tensor<3>) {
        let (var, mean) = x.clone().var_mean_bias(2);
        let std = (var + self.eps).sqrt();
        ((x - mean) / std.clone(), std.recip())
    }

    /// Scale and shift standardised values.
    pub fn affine(&self, standardised: Tensor<3>) -> Tensor<3> {
        standardised * self.weight.clone().unsqueeze::<3>() + self.bias.clone().unsqueeze::<3>()
    }

    /// The gradient with respect to the input, given the output's `dy` `[rows, seq, hidden]` and
    /// the forward pass's [`LayerNorm::standardise`] results (their batch may be 1, broadcast):
    /// `(dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)) / std`, `dxhat = dy * weight`.
    pub fn backward(&self, dy: Tensor<3>, xhat: &Tensor<3>, rstd: &Tensor<3>) -> Tensor<3> {
        let dxhat = dy * self.weight.clone().unsqueeze::<3>();
        let mean = dxhat.clone().mean_dim(2);
        let mean_x = (dxhat.clone() * xhat.clone()).mean_dim(2);
        (dxhat - mean - xhat.clone() * mean_x) * rstd.clone()
    }
}

/// RMS normalisation with a learned scale, no mean subtraction and no bias: `T5LayerNorm`,
/// `LlamaRMSNorm` (`w * x / sqrt(mean(x^2) + eps)`) or, with `plus_one`, Gemma's
/// `(1 + w) * x / sqrt(mean(x^2) + eps)`.
#[derive(Clone, Debug)]
pub struct RmsNorm {
    /// Scale, `[d_model]`.
    pub weight: Tensor<1>,
    /// Added to the mean square.
    pub eps: f64,
    /// Scale by `1 + weight` (Gemma) instead of `weight`.
    pub plus_one: bool,
}

impl RmsNorm {
    /// Normalises `x`, `[batch, seq, d_model]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let variance = (x.clone() * x.clone()).mean_dim(2);
        let scale = if self.plus_one { self.weight.clone() + 1.0 } else { self.weight.clone() };
        x / (variance + self.eps).sqrt() * scale.unsqueeze::<3>()
    }
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use burn::tensor::{Device, Distribution, Tensor};

    use super::RmsNorm;

    /// Gemma's `(1 + w)` norm is the plain one with `1 + w` as its weight.
    #[test]
    fn plus_one_is_a_shifted_weight() {
        let device = Device::flex();
        let x = Tensor::<3>::random([2, 3, 8], Distribution::Default, &device);
        let w = Tensor::<1>::random([8], Distribution::Default, &device);
        let gemma = RmsNorm { weight: w.clone(), eps: 1e-6, plus_one: true }.forward(x.clone());
        let plain = RmsNorm { weight: w + 1.0, eps: 1e-6, plus_one: false }.forward(x);
        let diff: f32 = (gemma - plain).abs().max().into_scalar();
        assert!(diff == 0.0, "{diff}");
    }
}
