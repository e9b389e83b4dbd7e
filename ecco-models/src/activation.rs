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

    /// The derivative of the nonlinearity at `x`, elementwise (for hand-written backward
    /// passes).
    pub fn derivative<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        // `x sigmoid(a x)` has the derivative `s + a x s (1 - s)`, `s = sigmoid(a x)`.
        let swish = |x: Tensor<D>, a: f64| {
            let s = activation::sigmoid(x.clone() * a);
            s.clone() + x * s.clone() * (s.neg() + 1.0) * a
        };
        match self {
            // Phi(x) + x phi(x).
            Self::Gelu => {
                let cdf = ((x.clone() * core::f64::consts::FRAC_1_SQRT_2).erf() + 1.0) * 0.5;
                let pdf =
                    (x.clone() * x.clone() * -0.5).exp() * (0.5 * core::f64::consts::FRAC_2_SQRT_PI * core::f64::consts::FRAC_1_SQRT_2);
                cdf + x * pdf
            }
            // `x s(2z)`: `s + x s (1 - s) 2z'`, `2z' = 2 sqrt(2/pi) (1 + 3 * 0.044715 x^2)`.
            Self::GeluTanh => {
                let s = activation::sigmoid(two_z(x.clone()));
                let dz = (x.clone() * x.clone() * (3.0 * 0.044715) + 1.0) * TWO_SQRT_2_OVER_PI;
                s.clone() + x * s.clone() * (s.neg() + 1.0) * dz
            }
            Self::QuickGelu => swish(x, 1.702),
            Self::Relu => x.greater_elem(0.0).float(),
            Self::Silu => swish(x, 1.0),
        }
    }
}

/// `2 sqrt(2/pi)`.
const TWO_SQRT_2_OVER_PI: f64 = 2.0 * core::f64::consts::FRAC_2_SQRT_PI * core::f64::consts::FRAC_1_SQRT_2;

/// `2z = 2 sqrt(2/pi) (x + 0.044715 x^3)`, the argument of [`gelu_tanh`]'s sigmoid.
fn two_z<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    x.clone() * ((x.clone() * x) * 0.044715 + 1.0) * TWO_SQRT_2_OVER_PI
}

/// `NewGELUActivation`, `0.5 x (1 + tanh(z))` with `z = sqrt(2/pi) (x + 0.044715 x^3)`, computed
/// as `x sigmoid(2z)` (the same function: `0.5 (1 + tanh(z)) = sigmoid(2z)`), and
/// `x + 0.044715 x^3` as `x (1 + 0.044715 x x)`. burn's `gelu_approximate` takes `powf(x, 3)`
/// and `tanh` is a libm `tanhf` per element, computed again in the backward pass; the CPU
/// backend's sigmoid is one fused `expf` pass with a fused backward. Together they were a tenth
/// of an attribution run's time.
fn gelu_tanh<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    x.clone() * activation::sigmoid(two_z(x))
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use burn::tensor::{Device, Tensor, TensorData};

    use super::Activation;

    /// Every nonlinearity's derivative against autodiff's, on both sides of zero.
    #[test]
    fn derivatives_match_autodiff() {
        let device = Device::flex();
        let xs: Vec<f32> = (0..81).map(|i| (i as f32 - 40.0) / 8.0 + 0.01).collect();
        for act in [Activation::Gelu, Activation::GeluTanh, Activation::QuickGelu, Activation::Relu, Activation::Silu] {
            let x = Tensor::<1>::from_data(TensorData::new(xs.clone(), [xs.len()]), &device);
            let ours = act.derivative(x.clone()).into_data().try_into_vec::<f32>().unwrap_or_default();
            let xa = x.autodiff().require_grad();
            let grads = act.forward(xa.clone()).sum().backward();
            let theirs = xa.grad(&grads).map(|g| g.into_data().try_into_vec::<f32>().unwrap_or_default()).unwrap_or_default();
            assert_eq!(ours.len(), theirs.len(), "{act:?}");
            for (i, (o, t)) in ours.iter().zip(&theirs).enumerate() {
                assert!((o - t).abs() < 1e-5, "{act:?} at x = {}: {o} vs autodiff {t}", xs[i]);
            }
        }
    }
}
