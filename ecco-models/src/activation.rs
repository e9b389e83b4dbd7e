//! The FFN nonlinearities Hugging Face configs name (`transformers/activations.py`, `ACT2FN`).

use burn::tensor::{Tensor, activation};

/// An FFN nonlinearity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// Exact GELU with erf (`gelu`).
    Gelu,
    /// Tanh approximation (`gelu_new`, `gelu_pytorch_tanh`, `gelu_fast`):
    /// `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`, `NewGELUActivation`.
    GeluTanh,
    /// `x * sigmoid(1.702 x)` (`quick_gelu`).
    QuickGelu,
    /// `max(x, 0)` (`relu`).
    Relu,
    /// `x * sigmoid(x)` (`silu`, `swish`).
    Silu,
}

impl Activation {
    /// The activation a Hugging Face config names, if supported.
    pub fn from_hf_name(name: &str) -> Option<Self> {
        Some(match name {
            "gelu" => Self::Gelu,
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Self::GeluTanh,
            "quick_gelu" => Self::QuickGelu,
            "relu" => Self::Relu,
            "silu" | "swish" => Self::Silu,
            _ => return None,
        })
    }

    /// Applies the nonlinearity elementwise.
    pub fn forward<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Self::Gelu => activation::gelu(x),
            Self::GeluTanh => activation::gelu_approximate(x),
            Self::QuickGelu => x.clone() * activation::sigmoid(x * 1.702),
            Self::Relu => activation::relu(x),
            Self::Silu => activation::silu(x),
        }
    }
}
