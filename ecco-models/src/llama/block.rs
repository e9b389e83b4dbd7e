//! One decoder block: pre-norm attention and gated FFN with residuals (`LlamaDecoderLayer`),
//! and Gemma's sandwich of norms around each sublayer (`Gemma2DecoderLayer`).

use burn::tensor::Tensor;
use ecco_core::{BlockHooks, BlockSite};

use crate::llama::attention::Attention;
use crate::nn::{Ffn, RmsNorm};

/// One transformer block.
#[derive(Clone, Debug)]
pub struct Block {
    /// `input_layernorm`, before attention.
    pub input_norm: RmsNorm,
    /// Self-attention.
    pub attn: Attention,
    /// Gemma's `post_attention_layernorm`, on the attention's output before the residual.
    pub post_attn_norm: Option<RmsNorm>,
    /// The norm before the FFN (`post_attention_layernorm` in Llama, `pre_feedforward_layernorm`
    /// in Gemma).
    pub pre_ffn_norm: RmsNorm,
    /// The gated FFN; its `down` input is `mlp.post`.
    pub ffn: Ffn,
    /// Gemma's `post_feedforward_layernorm`, on the FFN's output before the residual.
    pub post_ffn_norm: Option<RmsNorm>,
}

impl Block {
    /// Runs the block, emitting its hook points; returns its output and the keys and values
    /// for the cache. `attn_out` and `mlp_out` are what each sublayer adds to the residual
    /// stream (after Gemma's post-norms).
    ///
    /// # Shapes
    /// `x`: `[batch, seq, hidden]`.
    pub fn forward(
        &self,
        x: Tensor<3>,
        past: Option<(Tensor<4>, Tensor<4>)>,
        hooks: &mut BlockHooks<'_>,
    ) -> (Tensor<3>, (Tensor<4>, Tensor<4>)) {
        let x = hooks.emit(BlockSite::ResidPre, x);
        let attn = self.attn.forward(self.input_norm.forward(x.clone()), past, hooks);
        let out = match &self.post_attn_norm {
            Some(norm) => norm.forward(attn.output),
            None => attn.output,
        };
        let attn_out = hooks.emit(BlockSite::AttnOut, out);
        let x = hooks.emit(BlockSite::ResidMid, x + attn_out);
        let out = self.ffn.forward(self.pre_ffn_norm.forward(x.clone()), hooks);
        let out = match &self.post_ffn_norm {
            Some(norm) => norm.forward(out),
            None => out,
        };
        let mlp_out = hooks.emit(BlockSite::MlpOut, out);
        (hooks.emit(BlockSite::ResidPost, x + mlp_out), attn.kv)
    }
}
