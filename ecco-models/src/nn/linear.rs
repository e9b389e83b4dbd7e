//! The one linear-layer convention of every model: `y = x W + b` with `W` stored `[in, out]`.
//!
//! GPT-2's `Conv1D` stores its weight `[in, out]` already; `nn.Linear` checkpoints (BERT, T5)
//! store `[out, in]` and are transposed once at load time ([`Linear::load_torch`]), so that the
//! forward pass is a plain product and the backward pass `dy Wᵀ` ([`Linear::backward`]). burn-nn's
//! `Linear` is not used: it has no host view for decoding steps and no input-gradient piece.

use burn::tensor::{Device, Tensor, TensorData};

use crate::error::Result;
use crate::host::HostMatrix;
use crate::nn::product::{host_product, matmul_few_rows};
use crate::weights::WeightSource;

/// A linear map `x W + b`.
#[derive(Clone, Debug)]
pub struct Linear {
    /// `[in, out]`.
    pub weight: Tensor<2>,
    /// `[out]`; `None` for bias-free layers (T5).
    pub bias: Option<Tensor<1>>,
    /// `weight` read in place from the mapped checkpoint, on the CPU backend: one-row inputs
    /// (decoding steps) are multiplied by it directly.
    pub host: Option<HostMatrix>,
}

impl Linear {
    /// A layer without a host view.
    pub fn new(weight: Tensor<2>, bias: Option<Tensor<1>>) -> Self {
        Self { weight, bias, host: None }
    }

    /// Loads `{prefix}.weight` stored `[out, in]` as `nn.Linear` stores it (transposed here,
    /// once) and, when `bias`, `{prefix}.bias`.
    ///
    /// # Errors
    /// A missing or misshapen tensor.
    pub fn load_torch(src: &mut WeightSource, prefix: &str, d_in: usize, d_out: usize, bias: bool, device: &Device) -> Result<Self> {
        let w = src.take_f32(&format!("{prefix}.weight"), &[d_out, d_in])?;
        let mut t = vec![0f32; w.data.len()];
        for o in 0..d_out {
            for i in 0..d_in {
                t[i * d_out + o] = w.data[o * d_in + i];
            }
        }
        let bias = if bias { Some(src.take(&format!("{prefix}.bias"), [d_out], device)?) } else { None };
        Ok(Self::new(Tensor::from_data(TensorData::new(t, [d_in, d_out]), device), bias))
    }

    /// `x W + b`.
    ///
    /// # Shapes
    /// `[batch, seq, in]` to `[batch, seq, out]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [batch, seq, d_in] = x.dims();
        let d_out = self.weight.dims()[1];
        let x = x.reshape([batch * seq, d_in]);
        let y = host_product(&x, self.host.as_ref(), HostMatrix::left_mul).unwrap_or_else(|| matmul_few_rows(x, &self.weight, false));
        let y = match &self.bias {
            Some(bias) => y + bias.clone().unsqueeze::<2>(),
            None => y,
        };
        y.reshape([batch, seq, d_out])
    }

    /// The gradient with respect to the input of [`Linear::forward`]: `dy Wᵀ`.
    ///
    /// # Shapes
    /// `[rows, seq, out]` to `[rows, seq, in]`.
    pub fn backward(&self, dy: Tensor<3>) -> Tensor<3> {
        let [n, len, d_out] = dy.dims();
        let d_in = self.weight.dims()[0];
        dy.reshape([n * len, d_out]).matmul(self.weight.clone().transpose()).reshape([n, len, d_in])
    }
}
