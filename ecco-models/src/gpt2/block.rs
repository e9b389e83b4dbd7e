//! One GPT-2 block: pre-norm attention and MLP with residuals (`GPT2Block`, `GPT2MLP`).

use burn::tensor::Tensor;

use crate::activation::Activation;
use crate::gpt2::attention::Attention;
use crate::nn::{Conv1D, LayerNorm};

/// The feed-forward network of a block.
#[derive(Clone, Debug)]
pub struct Mlp {
    /// `[hidden, inner]`.
    pub c_fc: Conv1D,
    /// `[inner, hidden]`; its input is what Ecco calls the block's activations.
    pub c_proj: Conv1D,
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

/// What a block returns.
#[derive(Debug)]
pub struct BlockOutput {
    /// `[batch, seq, hidden]`.
    pub hidden: Tensor<3>,
    /// Attention weights, when asked for.
    pub attention: Option<Tensor<4>>,
    /// Input of `mlp.c_proj` (after the nonlinearity), `[batch, seq, inner]`, when asked for.
    pub activations: Option<Tensor<3>>,
    /// Keys and values for the cache.
    pub kv: (Tensor<4>, Tensor<4>),
}

impl Block {
    /// Runs the block.
    ///
    /// # Shapes
    /// `x`: `[batch, seq, hidden]`; `mask`: `[1, 1, seq, past + seq]`.
    pub fn forward(
        &self,
        x: Tensor<3>,
        past: Option<(Tensor<4>, Tensor<4>)>,
        mask: Option<&Tensor<4>>,
        want_attention: bool,
        want_activations: bool,
    ) -> BlockOutput {
        let attn = self.attn.forward(self.ln_1.forward(x.clone()), past, mask, want_attention);
        let x = x + attn.output;
        let acts = self.mlp.act.forward(self.mlp.c_fc.forward(self.ln_2.forward(x.clone())));
        let hidden = x + self.mlp.c_proj.forward(acts.clone());
        BlockOutput { hidden, attention: attn.weights, activations: want_activations.then_some(acts), kv: attn.kv }
    }
}
