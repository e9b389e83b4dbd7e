//! Small building blocks shared by the architectures: layer norm, `nn.Linear`, GPT-2's `Conv1D`,
//! and a matrix product for the few-row case of a decoding step.

pub mod rotary;

use burn::tensor::{Tensor, TensorData};

use crate::host::HostMatrix;

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

/// GPT-2's `Conv1D`: a linear layer whose weight is stored `[in, out]` (not transposed like
/// `nn.Linear`), `transformers/pytorch_utils.py`.
#[derive(Clone, Debug)]
pub struct Conv1D {
    /// `[in, out]`.
    pub weight: Tensor<2>,
    /// `[out]`.
    pub bias: Tensor<1>,
    /// `weight` read in place from the mapped checkpoint, on the CPU backend: one-row inputs
    /// (decoding steps) are multiplied by it directly.
    pub host: Option<HostMatrix>,
}

impl Conv1D {
    /// `x @ weight + bias`.
    ///
    /// # Shapes
    /// `[batch, seq, in]` to `[batch, seq, out]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [batch, seq, d_in] = x.dims();
        let d_out = self.weight.dims()[1];
        let x = x.reshape([batch * seq, d_in]);
        let y = host_product(&x, self.host.as_ref(), HostMatrix::left_mul).unwrap_or_else(|| matmul_few_rows(x, &self.weight, false))
            + self.bias.clone().unsqueeze::<2>();
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

/// `product(host, x)` for a one-row `x` `[1, in]` when the weight has a host view and `x` is
/// a plain tensor: `[1, out]`. `None` otherwise (more rows, autodiff, no view).
pub fn host_product(x: &Tensor<2>, host: Option<&HostMatrix>, product: fn(&HostMatrix, &[f32]) -> Vec<f32>) -> Option<Tensor<2>> {
    let host = host?;
    if x.dims()[0] != 1 || x.is_autodiff() {
        return None;
    }
    let values = x.clone().into_data().try_into_vec::<f32>().ok()?;
    let y = product(host, &values);
    let n = y.len();
    Some(Tensor::from_data(TensorData::new(y, [1, n]), &x.device()))
}

/// Most rows of `x` for which [`matmul_few_rows`] splits the weight between threads.
const FEW_ROWS: usize = 8;
/// Fewest output columns worth a split: 512 also splits GPT-2's output projections (768
/// columns; a fifth of a decoding step's weights), 0.1 s of 20 greedy tokens on distilgpt2.
const WIDE: usize = 512;

/// `x @ w` (or `x @ wᵀ` when `transposed`), for `x` `[rows, in]` and `w` `[in, out]`
/// (`[out, in]` when `transposed`).
///
/// A decoding step multiplies one row by every weight matrix: a matrix-vector product that
/// the CPU backend runs on one thread, bound by memory bandwidth. With few rows and a wide
/// output, the output columns are split into one slice of `w` per thread, multiplied in
/// parallel and joined; otherwise (and on autodiff tensors) this is a plain `matmul`.
pub fn matmul_few_rows(x: Tensor<2>, w: &Tensor<2>, transposed: bool) -> Tensor<2> {
    let [rows, _] = x.dims();
    let [a, b] = w.dims();
    let (d_in, d_out) = if transposed { (b, a) } else { (a, b) };
    let threads = rayon::current_num_threads();
    let oriented = |w: Tensor<2>| if transposed { w.transpose() } else { w };
    // Autodiff graphs are recorded on the calling thread only.
    if rows > FEW_ROWS || d_out < WIDE || threads < 2 || x.is_autodiff() {
        return x.matmul(oriented(w.clone()));
    }
    let chunk = d_out.div_ceil(threads);
    let ranges: Vec<_> = (0..d_out).step_by(chunk).map(|s| s..(s + chunk).min(d_out)).collect();
    let mut parts: Vec<Option<Tensor<2>>> = vec![None; ranges.len()];
    rayon::scope(|scope| {
        for (part, cols) in parts.iter_mut().zip(ranges) {
            let x = x.clone();
            let w = if transposed { w.clone().slice([cols, 0..d_in]) } else { w.clone().slice([0..d_in, cols]) };
            scope.spawn(move |_| *part = Some(x.matmul(oriented(w))));
        }
    });
    Tensor::cat(parts.into_iter().flatten().collect(), 1)
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use burn::tensor::{Device, Distribution, Tensor};

    use super::matmul_few_rows;

    #[test]
    fn split_product_equals_the_plain_one() {
        let device = Device::flex();
        let x = Tensor::<2>::random([2, 24], Distribution::Default, &device);
        for transposed in [false, true] {
            let shape = if transposed { [2051, 24] } else { [24, 2051] };
            let w = Tensor::<2>::random(shape, Distribution::Default, &device);
            let plain = x.clone().matmul(if transposed { w.clone().transpose() } else { w.clone() });
            let split = matmul_few_rows(x.clone(), &w, transposed);
            assert_eq!(split.dims(), [2, 2051]);
            let diff: f32 = (split - plain).abs().max().into_scalar();
            assert!(diff < 1e-5, "max difference {diff}");
        }
    }
}
