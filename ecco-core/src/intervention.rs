//! Writable hooks: interventions that replace or edit a hook point's value during the forward
//! pass, the seam for ablation, steering and patching, and gradient probes that read the
//! gradient of a scalar at any hook point.
//!
//! An [`Intervention`] is registered on a [`HookPattern`](crate::HookPattern) with
//! [`Hooks::with_intervention`](crate::Hooks::with_intervention); the recorder calls it at every
//! hook point the pattern selects, with the value the model emitted (batch first), and the model
//! carries on with what it returns. [`Edit`] covers the usual edits; any type implementing the
//! trait (a closure in [`FnIntervention`]) may do more.

use std::fmt;
use std::sync::{Mutex, PoisonError};

use burn::tensor::{Gradients, Tensor, TensorData};

use crate::error::{Error, Result};
use crate::hooks::{BlockSite, HookPoint, Site};
use crate::recorder::HookTensor;

/// Replaces or edits a hook point's value during a forward pass.
pub trait Intervention: Send + Sync + fmt::Debug {
    /// The new value of `point` from the value the model emitted, `[batch, …]` (see
    /// [`HookTensor`]). It must keep the shape.
    ///
    /// # Errors
    /// A value that does not fit the edit (a neuron index past the width, a vector of another
    /// length); the forward pass then fails with it.
    fn apply(&self, point: &HookPoint, value: HookTensor) -> Result<HookTensor>;
}

/// The axis of a hook's shape (batch dropped) that counts positions: the queries of an
/// attention pattern, the first axis otherwise.
pub fn position_axis(point: &HookPoint) -> usize {
    match point.site {
        Site::Block(_, BlockSite::AttnPattern | BlockSite::CrossAttnPattern) => 1,
        _ => 0,
    }
}

/// Ready-made edits. Axes are those of the hook's shape with the batch dropped, as
/// `docs/hooks.md` lists them: for `blocks.{i}.mlp.post` `[pos, d_mlp]` axis 1 holds the
/// neurons; for `blocks.{i}.attn.z` `[pos, heads, d_head]` axis 1 holds the heads.
#[derive(Clone, Debug)]
pub enum Edit {
    /// Zero the whole value (zero ablation).
    Zero,
    /// Zero these indices of `axis` (neurons, heads, positions).
    ZeroIndices {
        /// The axis, batch dropped.
        axis: usize,
        /// The indices to zero.
        indices: Vec<usize>,
    },
    /// Add `scale * vector` along the last axis at every position (steering).
    Add {
        /// As long as the hook's last axis.
        vector: Vec<f32>,
        /// Multiplies the vector.
        scale: f32,
    },
    /// Replace the whole value; a batch of 1 is broadcast over the run's batch.
    Replace(HookTensor),
    /// Replace the values at these positions by those of `values` (a stored run of the same
    /// shape, batch 1 broadcast): activation patching.
    ReplacePositions {
        /// Positions along the hook's [`position_axis`].
        positions: Vec<usize>,
        /// The stored run's value of the hook.
        values: HookTensor,
    },
}

/// `[1, …, n, …, 1]` (rank `D`, `n` at `dim`): `on` at `indices`, `off` elsewhere.
fn axis_mask<const D: usize>(dim: usize, n: usize, indices: &[usize], on: f32, off: f32, x: &Tensor<D>) -> Tensor<D> {
    let mut values = vec![off; n];
    for &i in indices {
        values[i] = on;
    }
    let mut shape = [1; D];
    shape[dim] = n;
    Tensor::from_data(TensorData::new(values, shape), &x.device())
}

impl Edit {
    fn edit<const D: usize>(&self, point: &HookPoint, x: Tensor<D>, stored: Option<Tensor<D>>) -> Result<Tensor<D>> {
        let dims = x.dims();
        let bad = |reason: String| Error::Intervention { hook: point.to_string(), reason };
        let check_indices = |dim: usize, indices: &[usize], what: &str| match indices.iter().find(|&&i| i >= dims[dim]) {
            Some(i) => Err(bad(format!("{what} {i} is out of range (0..{})", dims[dim]))),
            None => Ok(()),
        };
        let fit = |values: Tensor<D>| {
            let v = values.dims();
            if v == dims {
                Ok(values)
            } else if v[0] == 1 && v[1..] == dims[1..] {
                Ok(values.repeat_dim(0, dims[0]))
            } else {
                Err(bad(format!("the stored value has shape {v:?}, the hook {dims:?}")))
            }
        };
        match self {
            Self::Zero => Ok(x.zeros_like()),
            Self::ZeroIndices { axis, indices } => {
                if axis + 1 >= D {
                    return Err(bad(format!("axis {axis} is out of range (the hook has {} axes)", D - 1)));
                }
                check_indices(axis + 1, indices, "index")?;
                let keep = axis_mask(axis + 1, dims[axis + 1], indices, 0.0, 1.0, &x);
                Ok(x * keep)
            }
            Self::Add { vector, scale } => {
                let width = dims[D - 1];
                if vector.len() != width {
                    return Err(bad(format!("the vector has {} values, the hook's last axis {width}", vector.len())));
                }
                let mut shape = [1; D];
                shape[D - 1] = width;
                let scaled: Vec<f32> = vector.iter().map(|v| v * scale).collect();
                Ok(x.clone() + Tensor::from_data(TensorData::new(scaled, shape), &x.device()))
            }
            Self::Replace(_) => fit(stored.ok_or_else(|| bad("the stored value has another rank".to_owned()))?),
            Self::ReplacePositions { positions, .. } => {
                let values = fit(stored.ok_or_else(|| bad("the stored value has another rank".to_owned()))?)?;
                let dim = position_axis(point) + 1;
                check_indices(dim, positions, "position")?;
                let on = axis_mask(dim, dims[dim], positions, 1.0, 0.0, &x);
                let keep = axis_mask(dim, dims[dim], positions, 0.0, 1.0, &x);
                Ok(x * keep + values * on)
            }
        }
    }
}

impl Intervention for Edit {
    fn apply(&self, point: &HookPoint, value: HookTensor) -> Result<HookTensor> {
        let stored = match self {
            Self::Replace(v) | Self::ReplacePositions { values: v, .. } => Some(v.clone()),
            _ => None,
        };
        Ok(match value {
            HookTensor::Rank3(t) => {
                let stored = stored.and_then(|s| if let HookTensor::Rank3(s) = s { Some(s) } else { None });
                HookTensor::Rank3(self.edit(point, t, stored)?)
            }
            HookTensor::Rank4(t) => {
                let stored = stored.and_then(|s| if let HookTensor::Rank4(s) = s { Some(s) } else { None });
                HookTensor::Rank4(self.edit(point, t, stored)?)
            }
        })
    }
}

/// An intervention written as a closure.
pub struct FnIntervention<F>(pub F);

impl<F> fmt::Debug for FnIntervention<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FnIntervention")
    }
}

impl<F> Intervention for FnIntervention<F>
where
    F: Fn(&HookPoint, HookTensor) -> Result<HookTensor> + Send + Sync,
{
    fn apply(&self, point: &HookPoint, value: HookTensor) -> Result<HookTensor> {
        (self.0)(point, value)
    }
}

/// Reads gradients at hook points with autodiff: adds a zero leaf that requires its gradient to
/// each hook point it is registered on, so that after `backward` the leaf's gradient is the
/// gradient with respect to the hook's value. The forward pass must run on an autodiff device
/// (input embeddings made with `.autodiff()`).
#[derive(Debug, Default)]
pub struct GradientProbe {
    leaves: Mutex<Vec<(HookPoint, HookTensor)>>,
}

impl GradientProbe {
    /// A probe with no leaves yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The gradient at each probed hook point, `[batch, …]` as the hook's value, in emission
    /// order (zeros where the scalar does not depend on the hook).
    pub fn gradients(&self, grads: &Gradients) -> Vec<(HookPoint, HookTensor)> {
        let leaves = self.leaves.lock().unwrap_or_else(PoisonError::into_inner);
        leaves
            .iter()
            .map(|(point, leaf)| {
                let grad = match leaf {
                    HookTensor::Rank3(t) => HookTensor::Rank3(t.grad(grads).unwrap_or_else(|| t.zeros_like().without_autodiff())),
                    HookTensor::Rank4(t) => HookTensor::Rank4(t.grad(grads).unwrap_or_else(|| t.zeros_like().without_autodiff())),
                };
                (*point, grad)
            })
            .collect()
    }
}

impl Intervention for GradientProbe {
    fn apply(&self, point: &HookPoint, value: HookTensor) -> Result<HookTensor> {
        if !value.is_autodiff() {
            return Err(Error::Intervention {
                hook: point.to_string(),
                reason: "gradients at hook points need an autodiff forward pass".to_owned(),
            });
        }
        let (leaf, out) = match value {
            HookTensor::Rank3(t) => {
                let leaf = Tensor::<3>::zeros(t.dims(), &t.device()).require_grad();
                (HookTensor::Rank3(leaf.clone()), HookTensor::Rank3(t + leaf))
            }
            HookTensor::Rank4(t) => {
                let leaf = Tensor::<4>::zeros(t.dims(), &t.device()).require_grad();
                (HookTensor::Rank4(leaf.clone()), HookTensor::Rank4(t + leaf))
            }
        };
        self.leaves.lock().unwrap_or_else(PoisonError::into_inner).push((*point, leaf));
        Ok(out)
    }
}
