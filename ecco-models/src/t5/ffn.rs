//! The feed-forward network (`T5LayerFF.DenseReluDense`): `T5DenseActDense` (`wi`, `wo`; ReLU
//! in T5) or `T5DenseGatedActDense` (`wi_0`, `wi_1`, `wo`; `gelu_new` in T5 v1.1 / flan-t5).

use burn::tensor::Tensor;

use crate::activation::Activation;
use crate::t5::attention::linear;

/// One block's FFN, bias-free linear maps stored `[out, in]`.
#[derive(Clone, Debug)]
pub struct Ffn {
    /// `wi` (or `wi_0` when gated), `[d_ff, d_model]`.
    pub wi: Tensor<2>,
    /// `wi_1`, the linear gate, `[d_ff, d_model]`; `None` for the ungated FFN.
    pub wi_1: Option<Tensor<2>>,
    /// `wo`, `[d_model, d_ff]`; its input is what Ecco calls the activations.
    pub wo: Tensor<2>,
    /// The nonlinearity on `wi`.
    pub act: Activation,
}

impl Ffn {
    /// The input of `wo`: `act(wi x)`, or `act(wi_0 x) * wi_1 x` when gated.
    ///
    /// # Shapes
    /// `[batch, seq, d_model]` to `[batch, seq, d_ff]`.
    pub fn inner(&self, x: Tensor<3>) -> Tensor<3> {
        let h = self.act.forward(linear(x.clone(), &self.wi));
        match &self.wi_1 {
            Some(gate) => h * linear(x, gate),
            None => h,
        }
    }

    /// `wo` on the activations, `[batch, seq, d_ff]` to `[batch, seq, d_model]`.
    pub fn output(&self, acts: Tensor<3>) -> Tensor<3> {
        linear(acts, &self.wo)
    }
}
