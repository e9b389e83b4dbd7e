//! The feed-forward sublayer, plain (`down(act(up x))`: GPT-2, BERT, T5) or gated
//! (`down(act(gate x) * up x)`: T5 v1.1 / flan-t5, Llama), any [`Activation`]; its neurons (the
//! input of `down`) are the hook point `mlp.post`. Written out rather than burn-nn's
//! `PositionWiseFeedForward`, which is neither gated nor hooked.

use burn::tensor::Tensor;
use ecco_core::{BlockHooks, BlockSite};

use crate::activation::Activation;
use crate::nn::linear::Linear;

/// A feed-forward sublayer.
#[derive(Clone, Debug)]
pub struct Ffn {
    /// The input projection (`wi`, `wi_1` when gated), `[d_model, d_ff]`.
    pub up: Linear,
    /// The activated projection of a gated FFN (`wi_0`, `gate_proj`), `[d_model, d_ff]`.
    pub gate: Option<Linear>,
    /// The output projection (`wo`, `down_proj`), `[d_ff, d_model]`.
    pub down: Linear,
    /// The nonlinearity.
    pub act: Activation,
}

/// The neurons of an FFN: `act(up x)`, or `act(gate x) * up x` when gated.
///
/// # Shapes
/// `[batch, seq, d_model]` to `[batch, seq, d_ff]`.
pub fn neurons(up: &Linear, gate: Option<&Linear>, act: Activation, x: Tensor<3>) -> Tensor<3> {
    match gate {
        Some(gate) => act.forward(gate.forward(x.clone())) * up.forward(x),
        None => act.forward(up.forward(x)),
    }
}

/// The FFN's output, emitting its neurons as `mlp.post`: `down(mlp.post)`.
pub fn forward(up: &Linear, gate: Option<&Linear>, down: &Linear, act: Activation, x: Tensor<3>, hooks: &mut BlockHooks<'_>) -> Tensor<3> {
    let post = hooks.emit(BlockSite::MlpPost, neurons(up, gate, act, x));
    down.forward(post)
}

impl Ffn {
    /// [`forward`] with this FFN's layers.
    ///
    /// # Shapes
    /// `[batch, seq, d_model]` to `[batch, seq, d_model]`.
    pub fn forward(&self, x: Tensor<3>, hooks: &mut BlockHooks<'_>) -> Tensor<3> {
        forward(&self.up, self.gate.as_ref(), &self.down, self.act, x, hooks)
    }
}
