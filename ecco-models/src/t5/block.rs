//! One `T5Block`: pre-norm self-attention, (decoder only) pre-norm cross-attention, pre-norm
//! FFN, each added to the residual stream.

use burn::tensor::Tensor;
use ecco_core::{BlockHooks, BlockSite};

use crate::nn::{Ffn, RmsNorm, Role};
use crate::t5::attention::Attention;

/// A decoder block's cross-attention (`layer.1`).
#[derive(Clone, Debug)]
pub struct CrossAttention {
    /// `layer.1.layer_norm`.
    pub layer_norm: RmsNorm,
    /// `layer.1.EncDecAttention`.
    pub attention: Attention,
}

/// One block of either stack.
#[derive(Clone, Debug)]
pub struct Block {
    /// `layer.0.layer_norm`.
    pub self_norm: RmsNorm,
    /// `layer.0.SelfAttention`.
    pub self_attention: Attention,
    /// Decoder blocks only.
    pub cross: Option<CrossAttention>,
    /// `layer.{1|2}.layer_norm`.
    pub ff_norm: RmsNorm,
    /// `layer.{1|2}.DenseReluDense`: `wi` (up) or `wi_0` (gate) and `wi_1` (up), then `wo`
    /// (down); `T5DenseActDense` or `T5DenseGatedActDense`.
    pub ffn: Ffn,
}

/// Inputs of a block beyond the hidden states.
#[derive(Debug)]
pub struct BlockInputs<'a> {
    /// Cached self-attention keys and values (decoding), `[batch, heads, past, d_kv]`.
    pub past: Option<(Tensor<4>, Tensor<4>)>,
    /// Self-attention position bias plus the causal mask, `[1, heads, seq, past + seq]`.
    pub bias: &'a Tensor<4>,
    /// Cross-attention keys and values of the encoder output (decoder blocks).
    pub cross_kv: Option<(Tensor<4>, Tensor<4>)>,
}

impl Block {
    /// Runs the block on `x`, `[batch, seq, d_model]`, emitting its hook points (a decoder
    /// block's `resid_mid` after cross-attention, the FFN's input); returns its output and the
    /// self-attention keys and values including the past, for the cache.
    pub fn forward(&self, x: Tensor<3>, inputs: BlockInputs<'_>, hooks: &mut BlockHooks<'_>) -> (Tensor<3>, (Tensor<4>, Tensor<4>)) {
        let x = hooks.emit(BlockSite::ResidPre, x);
        let normed = self.self_norm.forward(x.clone());
        let q = self.self_attention.queries(normed.clone(), Role::SelfAttention, hooks);
        let (mut k, mut v) = self.self_attention.self_keys_values(normed, hooks);
        if let Some((past_k, past_v)) = inputs.past {
            k = Tensor::cat(vec![past_k, k], 2);
            v = Tensor::cat(vec![past_v, v], 2);
        }
        let out = self.self_attention.attend(q, k.clone(), v.clone(), Some(inputs.bias), Role::SelfAttention, hooks);
        let mut x = x + hooks.emit(BlockSite::AttnOut, out);
        if let (Some(cross), Some((ck, cv))) = (&self.cross, inputs.cross_kv) {
            // Cross-attention has no position bias (zeros) and, unpadded, no mask.
            let q = cross.attention.queries(cross.layer_norm.forward(x.clone()), Role::Cross, hooks);
            let out = cross.attention.attend(q, ck, cv, None, Role::Cross, hooks);
            x = x + out;
        }
        let x = hooks.emit(BlockSite::ResidMid, x);
        let out = self.ffn.forward(self.ff_norm.forward(x.clone()), hooks);
        let mlp_out = hooks.emit(BlockSite::MlpOut, out);
        (hooks.emit(BlockSite::ResidPost, x + mlp_out), (k, v))
    }
}
