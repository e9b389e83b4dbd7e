//! One encoder layer: attention, then the FFN with its post-norm (`BertLayer`,
//! `BertIntermediate`, `BertOutput`).

use burn::tensor::Tensor;
use ecco_core::{BlockHooks, BlockSite};

use crate::bert::attention::Attention;
use crate::nn::{Ffn, LayerNorm};

/// One encoder layer.
#[derive(Clone, Debug)]
pub struct Layer {
    /// Self-attention with its output projection and norm.
    pub attention: Attention,
    /// `intermediate.dense` (up), the nonlinearity, `output.dense` (down; its input is what
    /// Ecco calls the activations).
    pub ffn: Ffn,
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
        let out = self.ffn.forward(x.clone(), hooks);
        let mlp_out = hooks.emit(BlockSite::MlpOut, out);
        hooks.emit(BlockSite::ResidPost, self.output_layer_norm.forward(x + mlp_out))
    }
}
