//! One encoder layer: attention, then the FFN with its post-norm (`BertLayer`,
//! `BertIntermediate`, `BertOutput`).

use burn::tensor::Tensor;

use crate::activation::Activation;
use crate::bert::attention::Attention;
use crate::nn::{LayerNorm, Linear};

/// One encoder layer.
#[derive(Clone, Debug)]
pub struct Layer {
    /// Self-attention with its output projection and norm.
    pub attention: Attention,
    /// `intermediate.dense`, `[hidden, intermediate]`.
    pub intermediate: Linear,
    /// The nonlinearity after `intermediate`.
    pub act: Activation,
    /// `output.dense`, `[intermediate, hidden]`; its input is what Ecco calls the activations.
    pub output: Linear,
    /// `output.LayerNorm`, applied to the residual sum.
    pub output_layer_norm: LayerNorm,
}

/// What a layer returns.
#[derive(Debug)]
pub struct LayerOutput {
    /// `[batch, seq, hidden]`.
    pub hidden: Tensor<3>,
    /// Attention weights `[batch, heads, seq, seq]`, when asked for.
    pub attention: Option<Tensor<4>>,
    /// Input of `output.dense` (after the nonlinearity), `[batch, seq, intermediate]`, when asked for.
    pub activations: Option<Tensor<3>>,
}

impl Layer {
    /// Runs the layer.
    ///
    /// # Shapes
    /// `x`: `[batch, seq, hidden]`; `mask`: additive, `[batch, 1, 1, seq]`.
    pub fn forward(&self, x: Tensor<3>, mask: Option<&Tensor<4>>, want_attention: bool, want_activations: bool) -> LayerOutput {
        let (x, attention) = self.attention.forward(x, mask, want_attention);
        let acts = self.act.forward(self.intermediate.forward(x.clone()));
        let hidden = self.output_layer_norm.forward(x + self.output.forward(acts.clone()));
        LayerOutput { hidden, attention, activations: want_activations.then_some(acts) }
    }
}
