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
            Self::GeluTanh => gelu_tanh(x),
            Self::QuickGelu => x.clone() * activation::sigmoid(x * 1.702),
            Self::Relu => activation::relu(x),
            Self::Silu => activation::silu(x),
        }
    }
}

/// `NewGELUActivation` with `x + 0.044715 x^3` written as `x (1 + 0.044715 x x)`: burn's
/// `gelu_approximate` takes `powf(x, 3)`, a scalar libm call per element forward and again in
/// the backward pass, which made it a tenth of an attribution run's time.
fn gelu_tanh<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    const SQRT_2_OVER_PI: f64 = core::f64::consts::FRAC_2_SQRT_PI * core::f64::consts::FRAC_1_SQRT_2;
    let inner = x.clone() * ((x.clone() * x.clone()) * 0.044715 + 1.0) * SQRT_2_OVER_PI;
    (x * (inner.tanh() + 1.0)) * 0.5
}
