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

/// `NewGELUActivation`, `0.5 x (1 + tanh(z))` with `z = sqrt(2/pi) (x + 0.044715 x^3)`, computed
/// as `x sigmoid(2z)` (the same function: `0.5 (1 + tanh(z)) = sigmoid(2z)`), and
/// `x + 0.044715 x^3` as `x (1 + 0.044715 x x)`. burn's `gelu_approximate` takes `powf(x, 3)`
/// and `tanh` is a libm `tanhf` per element, computed again in the backward pass; the CPU
/// backend's sigmoid is one fused `expf` pass with a fused backward. Together they were a tenth
/// of an attribution run's time.
fn gelu_tanh<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    const TWO_SQRT_2_OVER_PI: f64 = 2.0 * core::f64::consts::FRAC_2_SQRT_PI * core::f64::consts::FRAC_1_SQRT_2;
    let two_z = x.clone() * ((x.clone() * x.clone()) * 0.044715 + 1.0) * TWO_SQRT_2_OVER_PI;
    x * activation::sigmoid(two_z)
}
