//! Small building blocks shared by the architectures: layer norm, `nn.Linear` and GPT-2's `Conv1D`.

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
        let (var, mean) = x.clone().var_mean_bias(2);
        let normed = (x - mean) / (var + self.eps).sqrt();
        normed * self.weight.clone().unsqueeze::<3>() + self.bias.clone().unsqueeze::<3>()
    }
}

/// GPT-2's `Conv1D`: a linear layer whose weight is stored `[in, out]` (not transposed like
/// `nn.Linear`), `transformers/pytorch_utils.py`.
#[derive(Clone, Debug)]
pub struct Conv1D {
    /// `[in, out]`.
    pub weight: Tensor<2>,
    /// `[out]`.
    pub bias: Tensor<1>,
}

impl Conv1D {
    /// `x @ weight + bias`.
    ///
    /// # Shapes
    /// `[batch, seq, in]` to `[batch, seq, out]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [batch, seq, d_in] = x.dims();
        let d_out = self.weight.dims()[1];
        let y = x.reshape([batch * seq, d_in]).matmul(self.weight.clone()) + self.bias.clone().unsqueeze::<2>();
        y.reshape([batch, seq, d_out])
    }
}

/// `torch.nn.Linear`, its weight transposed once at load time to `[in, out]` (the checkpoint
/// stores `[out, in]`), so that the forward pass is a plain matmul.
#[derive(Clone, Debug)]
pub struct Linear {
    /// `[in, out]`.
    pub weight: Tensor<2>,
    /// `[out]`.
    pub bias: Tensor<1>,
}

impl Linear {
    /// `x @ weight + bias`.
    ///
    /// # Shapes
    /// `[batch, seq, in]` to `[batch, seq, out]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [batch, seq, d_in] = x.dims();
        let d_out = self.weight.dims()[1];
        let y = x.reshape([batch * seq, d_in]).matmul(self.weight.clone()) + self.bias.clone().unsqueeze::<2>();
        y.reshape([batch, seq, d_out])
    }
}
