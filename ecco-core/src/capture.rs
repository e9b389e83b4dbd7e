//! What a forward pass records: the capture hooks' switches and their typed results.

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::hooks::HookPattern;

/// Which layers' FFN activations to record.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LayerSelection {
    /// Every layer of the stack.
    #[default]
    All,
    /// Only these layer numbers (0-based, any order, duplicates ignored).
    Only(Vec<usize>),
}

impl LayerSelection {
    /// The selected layer numbers in ascending order, checked against `n_layers`.
    ///
    /// # Errors
    /// [`Error::LayerOutOfRange`] when a selected layer is `>= n_layers`.
    pub fn resolve(&self, n_layers: usize) -> Result<Vec<usize>> {
        match self {
            Self::All => Ok((0..n_layers).collect()),
            Self::Only(layers) => {
                let mut layers = layers.clone();
                layers.sort_unstable();
                layers.dedup();
                if let Some(&layer) = layers.iter().find(|&&l| l >= n_layers) {
                    return Err(Error::LayerOutOfRange { layer, n_layers });
                }
                Ok(layers)
            }
        }
    }

    /// Whether `layer` is selected.
    pub fn contains(&self, layer: usize) -> bool {
        match self {
            Self::All => true,
            Self::Only(layers) => layers.contains(&layer),
        }
    }
}

/// Which positions' LM-head logits a forward pass computes.
///
/// The LM head is the most expensive matmul of a small model; skip it when only captures are
/// wanted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Logits {
    /// Every position: `[batch, seq, vocab]`.
    #[default]
    All,
    /// The last position only: `[batch, 1, vocab]`.
    Last,
    /// None: `ModelOutput::logits` is `None`.
    Skip,
}

/// What one forward pass records: hook points by name ([`CaptureSpec::hooks`]) and the three
/// shorthands of the first trace format, which the recorder ([`crate::Hooks`]) assembles from
/// hook points into [`StackCaptures`]: `hidden_states` (`embed`, each `blocks.{i}.resid_post`
/// but the last, `final_norm`), `activations` (`blocks.{i}.mlp.post`) and `attention`
/// (`blocks.{i}.attn.pattern`, and `decoder.blocks.{i}.cross_attn.pattern` into
/// [`ModelOutput::cross_attention`](crate::ModelOutput::cross_attention)).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureSpec {
    /// Record the embedding output and every block's output (`layers + 1` tensors).
    pub hidden_states: bool,
    /// Record the input of each block's FFN output projection (after the nonlinearity).
    pub activations: bool,
    /// Record the softmaxed attention weights of every block.
    pub attention: bool,
    /// Record these hook points under their own names
    /// ([`ModelOutput::hooks`](crate::ModelOutput::hooks)).
    #[serde(default)]
    pub hooks: Vec<HookPattern>,
    /// Which layers' activations to record.
    pub layers: LayerSelection,
    /// Which positions' logits to compute.
    pub logits: Logits,
}

impl CaptureSpec {
    /// Records nothing and computes logits at every position.
    pub fn none() -> Self {
        Self::default()
    }

    /// Records hidden states, activations of every layer and attention, and every position's logits.
    pub fn all() -> Self {
        Self {
            hidden_states: true,
            activations: true,
            attention: true,
            hooks: Vec::new(),
            layers: LayerSelection::All,
            logits: Logits::All,
        }
    }

    /// Whether anything at all is recorded.
    pub fn records_anything(&self) -> bool {
        self.hidden_states || self.activations || self.attention || !self.hooks.is_empty()
    }

    /// The same switches with `logits` instead.
    #[must_use]
    pub fn with_logits(mut self, logits: Logits) -> Self {
        self.logits = logits;
        self
    }

    /// Whether the activations of `layer` are to be recorded.
    pub fn wants_activations(&self, layer: usize) -> bool {
        self.activations && self.layers.contains(layer)
    }
}

/// What one stack (a decoder, or an encoder) recorded during a forward pass.
///
/// # Shapes
/// - `hidden_states[i]`: `[batch, seq, hidden]`; index 0 is the embedding output, index `i` the
///   output of block `i - 1`, the last one after the final norm (as Hugging Face returns them).
/// - `activations[j] = (layer, [batch, seq, neurons])`, in ascending layer order.
/// - `attention[i]`: `[batch, heads, query, key]`, softmaxed.
#[derive(Debug, Default)]
pub struct StackCaptures {
    /// Embedding output followed by every block's output; empty unless asked for.
    pub hidden_states: Vec<Tensor<3>>,
    /// `(layer, activations)` for each selected layer; empty unless asked for.
    pub activations: Vec<(usize, Tensor<3>)>,
    /// Attention weights of every block; empty unless asked for.
    pub attention: Vec<Tensor<4>>,
}
