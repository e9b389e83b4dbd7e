//! One encoder layer: attention, then the FFN with its post-norm (`BertLayer`,
//! `BertIntermediate`, `BertOutput`).

use burn::tensor::Tensor;
use ecco_core::{BlockHooks, BlockSite};

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

impl Layer {
    /// Runs the layer, emitting its hook points (`resid_post` after the output norm).
    ///
    /// # Shapes
    /// `x`: `[batch, seq, hidden]`; `mask`: additive, `[batch, 1, 1, seq]`.
    pub fn forward(&self, x: Tensor<3>, mask: Option<&Tensor<4>>, hooks: &mut BlockHooks<'_>) -> Tensor<3> {
        let x = hooks.emit(BlockSite::ResidPre, x);
        let x = self.attention.forward(x, mask, hooks);
        let post = hooks.emit(BlockSite::MlpPost, self.act.forward(self.intermediate.forward(x.clone())));
        let mlp_out = hooks.emit(BlockSite::MlpOut, self.output.forward(post));
        hooks.emit(BlockSite::ResidPost, self.output_layer_norm.forward(x + mlp_out))
    }
}
