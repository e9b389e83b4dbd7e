//! One GPT-2 block: pre-norm attention and MLP with residuals (`GPT2Block`, `GPT2MLP`).

use burn::tensor::Tensor;
use ecco_core::{BlockHooks, BlockSite};

use crate::activation::Activation;
use crate::gpt2::attention::Attention;
use crate::nn::{LayerNorm, Linear, ffn};

/// The feed-forward network of a block.
#[derive(Clone, Debug)]
pub struct Mlp {
    /// `[hidden, inner]` (`Conv1D`).
    pub c_fc: Linear,
    /// `[inner, hidden]` (`Conv1D`); its input is what Ecco calls the block's activations.
    pub c_proj: Linear,
    /// The nonlinearity between them.
    pub act: Activation,
}

/// One transformer block.
#[derive(Clone, Debug)]
pub struct Block {
    /// Norm before attention.
    pub ln_1: LayerNorm,
    /// Causal self-attention.
    pub attn: Attention,
    /// Norm before the MLP.
    pub ln_2: LayerNorm,
    /// Feed-forward network.
    pub mlp: Mlp,
}

impl Block {
    /// Runs the block, emitting its hook points; returns its output and the keys and values
    /// for the cache.
    ///
    /// # Shapes
    /// `x`: `[batch, seq, hidden]`; `mask`: `[1, 1, seq, past + seq]`.
    pub fn forward(
        &self,
        x: Tensor<3>,
        past: Option<(Tensor<4>, Tensor<4>)>,
        mask: Option<&Tensor<4>>,
        hooks: &mut BlockHooks<'_>,
    ) -> (Tensor<3>, (Tensor<4>, Tensor<4>)) {
        let x = hooks.emit(BlockSite::ResidPre, x);
        let attn = self.attn.forward(self.ln_1.forward(x.clone()), past, mask, hooks);
        let attn_out = hooks.emit(BlockSite::AttnOut, attn.output);
        let x = hooks.emit(BlockSite::ResidMid, x + attn_out);
        let mlp = &self.mlp;
        let out = ffn::forward(&mlp.c_fc, None, &mlp.c_proj, mlp.act, self.ln_2.forward(x.clone()), hooks);
        let mlp_out = hooks.emit(BlockSite::MlpOut, out);
        (hooks.emit(BlockSite::ResidPost, x + mlp_out), attn.kv)
    }
}
