//! One `T5Block`: pre-norm self-attention, (decoder only) pre-norm cross-attention, pre-norm
//! FFN, each added to the residual stream.

use burn::tensor::Tensor;

use crate::t5::attention::Attention;
use crate::t5::ffn::Ffn;
use crate::t5::norm::RmsNorm;

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
    /// `layer.{1|2}.DenseReluDense`.
    pub ffn: Ffn,
}

/// What a block returns.
#[derive(Debug)]
pub struct BlockOutput {
    /// `[batch, seq, d_model]`.
    pub hidden: Tensor<3>,
    /// Self-attention weights `[batch, heads, seq, keys]`, when asked for.
    pub attention: Option<Tensor<4>>,
    /// Cross-attention weights `[batch, heads, seq, encoder_seq]`, when asked for.
    pub cross_attention: Option<Tensor<4>>,
    /// Input of `DenseReluDense.wo`, `[batch, seq, d_ff]`, when asked for.
    pub activations: Option<Tensor<3>>,
    /// Self-attention keys and values including the past, for the cache.
    pub kv: (Tensor<4>, Tensor<4>),
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
    /// Record attention weights.
    pub want_attention: bool,
    /// Record the FFN activations.
    pub want_activations: bool,
}

impl Block {
    /// Runs the block on `x`, `[batch, seq, d_model]`.
    pub fn forward(&self, x: Tensor<3>, inputs: BlockInputs<'_>) -> BlockOutput {
        let normed = self.self_norm.forward(x.clone());
        let (mut k, mut v) = self.self_attention.keys_values(normed.clone());
        if let Some((past_k, past_v)) = inputs.past {
            k = Tensor::cat(vec![past_k, k], 2);
            v = Tensor::cat(vec![past_v, v], 2);
        }
        let (out, attention) = self.self_attention.attend(normed, k.clone(), v.clone(), Some(inputs.bias), inputs.want_attention);
        let mut x = x + out;
        let mut cross_attention = None;
        if let (Some(cross), Some((ck, cv))) = (&self.cross, inputs.cross_kv) {
            // Cross-attention has no position bias (zeros) and, unpadded, no mask.
            let (out, w) = cross.attention.attend(cross.layer_norm.forward(x.clone()), ck, cv, None, inputs.want_attention);
            x = x + out;
            cross_attention = w;
        }
        let acts = self.ffn.inner(self.ff_norm.forward(x.clone()));
        let hidden = x + self.ffn.output(acts.clone());
        BlockOutput { hidden, attention, cross_attention, activations: inputs.want_activations.then_some(acts), kv: (k, v) }
    }
}
