//! Interventions that change what a model computes, and activation patching.
//!
//! - [`Ablate`]: zero or mean ablation of a whole hook point, chosen neurons of a `[pos, d]`
//!   hook, or chosen heads of `attn.z`.
//! - [`patch`]: activation patching (for every block a pattern selects and every position, or
//!   every head of `attn.z`, the corrupted run with that activation replaced by the clean
//!   run's), many patched copies per forward pass; or attribution patching's linear estimate
//!   `(a_clean − a_corrupted) · ∂metric/∂a` of the same grid from one clean pass, one
//!   corrupted pass and one backward pass.

use std::collections::BTreeMap;
use std::sync::Arc;

use burn::tensor::{Int, Tensor, TensorData};
use ecco_core::{
    BlockSite, CaptureSpec, GradientProbe, HookPattern, HookPoint, HookTensor, Hooks, Intervention, LanguageModel, Logits, ModelInputs,
    Site, position_axis,
};

use crate::engine::{AttributionTarget, head_scores};
use crate::error::{Error, Result};
use crate::hook_gradients::{GradientPath, HookTarget, hook_gradients, resolve_points};

/// What an ablation puts in place of the ablated values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AblationMode {
    /// Zeros.
    #[default]
    Zero,
    /// The value's mean over the positions of the pass (per batch row, per unit).
    Mean,
}

/// Which part of a hook point an [`Ablate`] replaces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AblationUnits {
    /// The whole value.
    All,
    /// These indices of a `[pos, d]` hook's last axis (FFN neurons of `mlp.post`, residual
    /// dimensions).
    Neurons(Vec<usize>),
    /// These heads of an `[pos, heads, d_head]` hook (`attn.z`).
    Heads(Vec<usize>),
}

/// Ablation of a hook point: the chosen units replaced by zeros or by their mean over
/// positions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ablate {
    /// What is replaced.
    pub units: AblationUnits,
    /// By what.
    pub mode: AblationMode,
}

/// `[1, …, n at dim, …, 1]`: 1 at `indices`, 0 elsewhere.
fn indicator<const D: usize>(dim: usize, n: usize, indices: &[usize], device: &burn::tensor::Device) -> Tensor<D> {
    let mut values = vec![0.0_f32; n];
    for &i in indices {
        values[i] = 1.0;
    }
    let mut shape = [1; D];
    shape[dim] = n;
    Tensor::from_data(TensorData::new(values, shape), device)
}

impl Ablate {
    fn edit<const D: usize>(&self, point: &HookPoint, x: Tensor<D>) -> Result<Tensor<D>> {
        let dims = x.dims();
        let bad = |reason: String| ecco_core::Error::Intervention { hook: point.to_string(), reason };
        let replacement = match self.mode {
            AblationMode::Zero => x.zeros_like(),
            AblationMode::Mean => {
                let axis = position_axis(point) + 1;
                x.clone().mean_dim(axis).repeat_dim(axis, dims[axis])
            }
        };
        let (axis, indices, what) = match &self.units {
            AblationUnits::All => return Ok(replacement),
            AblationUnits::Neurons(indices) => (D - 1, indices, "neuron"),
            AblationUnits::Heads(indices) if D == 4 => (2, indices, "head"),
            AblationUnits::Heads(_) => return Err(bad("heads are ablated on an attn.z hook".to_owned()).into()),
        };
        if let Some(i) = indices.iter().find(|&&i| i >= dims[axis]) {
            return Err(bad(format!("{what} {i} is out of range (0..{})", dims[axis])).into());
        }
        let on = indicator::<D>(axis, dims[axis], indices, &x.device());
        Ok(x.clone() + (replacement - x) * on)
    }
}

impl Intervention for Ablate {
    fn apply(&self, point: &HookPoint, value: HookTensor) -> ecco_core::Result<HookTensor> {
        let out = match value {
            HookTensor::Rank3(t) => self.edit(point, t).map(HookTensor::Rank3),
            HookTensor::Rank4(t) => self.edit(point, t).map(HookTensor::Rank4),
        };
        out.map_err(|e| match e {
            Error::Core(e) => e,
            other => ecco_core::Error::Intervention { hook: point.to_string(), reason: other.to_string() },
        })
    }
}

/// A pattern and the intervention applied where it matches.
pub type HookEdit = (HookPattern, Arc<dyn Intervention>);

/// How [`patch`] computes the grid.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PatchMethod {
    /// Real activation patching: one patched forward pass per cell (batched).
    #[default]
    Activation,
    /// Attribution patching: the gradient estimate of every cell at once.
    Attribution,
}

/// What [`patch`] runs: two token sequences of one length and the metric
/// `logit(target) − logit(foil)` (or `logit(target)`) at `position`.
#[derive(Clone, Debug)]
pub struct PatchRequest<'a> {
    /// The clean run's token ids.
    pub clean: &'a [u32],
    /// The corrupted run's token ids (as long as `clean`).
    pub corrupted: &'a [u32],
    /// Where the metric reads the logits: the last position of a causal LM, the mask position
    /// of a masked LM.
    pub position: usize,
    /// The token whose logit the metric scores.
    pub target: u32,
    /// The token whose logit the metric subtracts.
    pub foil: Option<u32>,
    /// The hook points patched: one site (`resid_pre`, `attn_out`, `mlp_out`, `resid_post`,
    /// `mlp.post` per position; `attn.z` per head) in one or every block.
    pub hook: HookPattern,
    /// Real patching or its gradient estimate.
    pub method: PatchMethod,
    /// Interventions applied in every run (clean, corrupted, patched), before the patch.
    pub edits: &'a [HookEdit],
    /// Patched copies per forward pass (at least 1).
    pub batch: usize,
}

/// The patching grid: `effects[l][p]` is the metric of the corrupted run with block
/// `layers[l]`'s activation at position `p` (or head `p` of `attn.z`) patched from the clean
/// run, minus the corrupted run's metric.
#[derive(Clone, Debug, PartialEq)]
pub struct PatchGrid {
    /// The clean run's metric.
    pub clean: f32,
    /// The corrupted run's metric.
    pub corrupted: f32,
    /// The patched blocks.
    pub layers: Vec<usize>,
    /// Whether the columns are heads (`attn.z`) rather than positions.
    pub per_head: bool,
    /// `[layer][position or head]`.
    pub effects: Vec<Vec<f32>>,
}

/// The site a patch pattern names, refusing the sites patching does not cover.
fn patch_site(hook: &HookPattern) -> Result<BlockSite> {
    let site = hook.to_string();
    let point: Option<BlockSite> = match hook.site {
        ecco_core::SitePattern::Block(_, s) => Some(s),
        _ => None,
    };
    match point {
        Some(
            s @ (BlockSite::ResidPre
            | BlockSite::AttnOut
            | BlockSite::MlpOut
            | BlockSite::ResidPost
            | BlockSite::MlpPost
            | BlockSite::AttnZ),
        ) => Ok(s),
        _ => Err(Error::Invalid(format!(
            "cannot patch `{site}`: patch one of blocks.*.resid_pre, attn_out, mlp_out, resid_post, mlp.post, attn.z"
        ))),
    }
}

/// The embeddings of `ids`, `[copies, seq, hidden]`.
fn embed(model: &dyn LanguageModel, ids: &[u32], copies: usize) -> Tensor<3> {
    let data: Vec<i64> = ids.iter().map(|&i| i64::from(i)).collect();
    let e = model.embed(Tensor::<2, Int>::from_data(TensorData::new(data, [1, ids.len()]), model.device()));
    if copies == 1 { e } else { e.repeat_dim(0, copies) }
}

/// One forward pass over `embeds` with `edits`, keeping `keep`: the metric per batch row and
/// the kept hook values.
fn run(
    model: &dyn LanguageModel,
    embeds: Tensor<3>,
    edits: &[HookEdit],
    keep: &[HookPattern],
    request: &PatchRequest<'_>,
) -> Result<(Vec<f32>, BTreeMap<HookPoint, HookTensor>)> {
    let spec = CaptureSpec { hooks: keep.to_vec(), ..CaptureSpec::none() }.with_logits(Logits::Skip);
    let mut hooks = Hooks::new(spec);
    for (pattern, edit) in edits {
        hooks = hooks.with_intervention(*pattern, Arc::clone(edit));
    }
    let out = model.forward_hooked(ModelInputs::new(embeds), &mut hooks)?;
    let rows = out.last_hidden.dims()[0];
    let h = out.last_hidden.slice_dim(1, request.position..request.position + 1);
    let scores = head_scores(model, h, (0..rows).map(|_| (request.target, request.foil, 1.0)), AttributionTarget::Logit)?;
    let scores = scores.into_data().try_into_vec::<f32>().map_err(|e| Error::Readback(format!("{e:?}")))?;
    Ok((scores, out.hooks))
}

/// Replaces chosen cells of a hook by the clean run's: `x + (clean − x) · mask`, `mask` one
/// row per patched copy.
#[derive(Debug)]
struct PatchCells {
    clean: HookTensor,
    mask: HookTensor,
}

impl Intervention for PatchCells {
    fn apply(&self, _point: &HookPoint, value: HookTensor) -> ecco_core::Result<HookTensor> {
        Ok(match (value, &self.clean, &self.mask) {
            (HookTensor::Rank3(x), HookTensor::Rank3(c), HookTensor::Rank3(m)) => {
                HookTensor::Rank3(x.clone() + (c.clone() - x) * m.clone())
            }
            (HookTensor::Rank4(x), HookTensor::Rank4(c), HookTensor::Rank4(m)) => {
                HookTensor::Rank4(x.clone() + (c.clone() - x) * m.clone())
            }
            (value, ..) => value,
        })
    }
}

/// Activation patching or attribution patching over the grid `request.hook` selects.
///
/// # Errors
/// Sequences of different lengths, a position or token outside the model, a hook that
/// patching does not cover or that selects nothing, a failed forward or backward pass.
pub fn patch(model: &dyn LanguageModel, request: &PatchRequest<'_>) -> Result<PatchGrid> {
    let n = request.clean.len();
    if request.corrupted.len() != n {
        return Err(Error::Invalid(format!(
            "the clean text has {n} tokens and the corrupted text {}: patching needs the same length",
            request.corrupted.len()
        )));
    }
    if request.position >= n {
        return Err(Error::PositionOutOfRange { position: request.position, reason: format!("the sequence has {n} positions") });
    }
    let vocab = model.info().vocab_size;
    if let Some(t) = std::iter::once(request.target).chain(request.foil).find(|&t| t as usize >= vocab) {
        return Err(Error::Invalid(format!("token id {t} is outside the vocabulary (size {vocab})")));
    }
    let site = patch_site(&request.hook)?;
    let points = resolve_points(model, std::slice::from_ref(&request.hook))?;
    let layers: Vec<usize> = points.iter().filter_map(HookPoint::block_index).collect();
    let per_head = site == BlockSite::AttnZ;
    let keep = [request.hook];
    let (clean_metric, clean_acts) = run(model, embed(model, request.clean, 1), request.edits, &keep, request)?;
    let (corrupted_metric, corrupted_acts) = run(model, embed(model, request.corrupted, 1), request.edits, &keep, request)?;
    let (clean, corrupted) = (clean_metric[0], corrupted_metric[0]);
    let columns = if per_head { model.info().n_heads } else { n };
    let effects = match request.method {
        PatchMethod::Activation => activation_grid(model, request, &points, &clean_acts, columns, corrupted)?,
        PatchMethod::Attribution => attribution_grid(model, request, &points, &clean_acts, &corrupted_acts)?,
    };
    Ok(PatchGrid { clean, corrupted, layers, per_head, effects })
}

/// Real patching: every (block, column) cell as one batch row, `request.batch` rows per pass.
fn activation_grid(
    model: &dyn LanguageModel,
    request: &PatchRequest<'_>,
    points: &[HookPoint],
    clean_acts: &BTreeMap<HookPoint, HookTensor>,
    columns: usize,
    corrupted: f32,
) -> Result<Vec<Vec<f32>>> {
    let cells: Vec<(usize, usize)> = (0..points.len()).flat_map(|l| (0..columns).map(move |c| (l, c))).collect();
    let mut effects = vec![vec![0.0; columns]; points.len()];
    let device = model.device();
    for chunk in cells.chunks(request.batch.max(1)) {
        let rows = chunk.len();
        let mut edits = request.edits.to_vec();
        for (l, point) in points.iter().enumerate() {
            if !chunk.iter().any(|&(cl, _)| cl == l) {
                continue;
            }
            let clean = clean_acts.get(point).ok_or(Error::Empty("the clean run did not emit a patched hook point"))?.clone();
            let mut mask = vec![0.0_f32; rows * columns];
            for (row, &(cl, c)) in chunk.iter().enumerate() {
                if cl == l {
                    mask[row * columns + c] = 1.0;
                }
            }
            let data = TensorData::new(
                mask,
                if matches!(clean, HookTensor::Rank4(_)) { vec![rows, 1, columns, 1] } else { vec![rows, columns, 1] },
            );
            let mask = match clean {
                HookTensor::Rank3(_) => HookTensor::Rank3(Tensor::from_data(data, device)),
                HookTensor::Rank4(_) => HookTensor::Rank4(Tensor::from_data(data, device)),
            };
            edits.push((HookPattern::from(*point), Arc::new(PatchCells { clean, mask }) as Arc<dyn Intervention>));
        }
        let (metrics, _) = run(model, embed(model, request.corrupted, rows), &edits, &[], request)?;
        for (&(l, c), m) in chunk.iter().zip(metrics) {
            effects[l][c] = m - corrupted;
        }
    }
    Ok(effects)
}

/// Attribution patching: `(a_clean − a_corrupted) · ∂metric/∂a` at the corrupted run, summed
/// over the hook's width (and over positions for heads).
fn attribution_grid(
    model: &dyn LanguageModel,
    request: &PatchRequest<'_>,
    points: &[HookPoint],
    clean_acts: &BTreeMap<HookPoint, HookTensor>,
    corrupted_acts: &BTreeMap<HookPoint, HookTensor>,
) -> Result<Vec<Vec<f32>>> {
    let target = HookTarget { position: request.position, token: request.target, foil: request.foil, target: AttributionTarget::Logit };
    let embeds = embed(model, request.corrupted, 1);
    let gradients = if request.edits.is_empty() {
        hook_gradients(model, ModelInputs::new(embeds), std::slice::from_ref(&request.hook), target, GradientPath::Fastest)?
    } else {
        edited_gradients(model, embeds, request.edits, points, target)?
    };
    let mut effects = Vec::with_capacity(points.len());
    for point in points {
        let missing = || Error::Empty("a run did not emit a patched hook point");
        let clean = clean_acts.get(point).ok_or_else(missing)?;
        let corrupted = corrupted_acts.get(point).ok_or_else(missing)?;
        let grad = gradients.iter().find(|(p, _)| p == point).map(|(_, g)| g).ok_or_else(missing)?;
        let row = match (clean, corrupted, grad) {
            (HookTensor::Rank3(c), HookTensor::Rank3(x), HookTensor::Rank3(g)) => {
                let [_, pos, _] = c.dims();
                ((c.clone() - x.clone()) * g.clone()).sum_dim(2).reshape([pos])
            }
            (HookTensor::Rank4(c), HookTensor::Rank4(x), HookTensor::Rank4(g)) => {
                let [_, _, heads, _] = c.dims();
                // Heads: patched at every position, so summed over positions too.
                ((c.clone() - x.clone()) * g.clone()).sum_dim(3).sum_dim(1).reshape([heads])
            }
            _ => return Err(Error::Empty("a hook point's runs disagree on its rank")),
        };
        effects.push(row.into_data().try_into_vec::<f32>().map_err(|e| Error::Readback(format!("{e:?}")))?);
    }
    Ok(effects)
}

/// Hook gradients by autodiff with `edits` applied before the probes (the hand-written
/// backward pass knows no interventions).
fn edited_gradients(
    model: &dyn LanguageModel,
    embeds: Tensor<3>,
    edits: &[HookEdit],
    points: &[HookPoint],
    target: HookTarget,
) -> Result<Vec<(HookPoint, HookTensor)>> {
    let probe = Arc::new(GradientProbe::new());
    let mut hooks = Hooks::new(CaptureSpec::none().with_logits(Logits::Skip));
    for (pattern, edit) in edits {
        hooks = hooks.with_intervention(*pattern, Arc::clone(edit));
    }
    for point in points {
        hooks = hooks.with_intervention(HookPattern::from(*point), Arc::clone(&probe) as Arc<dyn Intervention>);
    }
    let out = model.forward_hooked(ModelInputs::new(embeds.autodiff()), &mut hooks)?;
    let h = out.last_hidden.slice_dim(1, target.position..target.position + 1);
    let score = head_scores(model, h, std::iter::once((target.token, target.foil, 1.0)), target.target)?.sum();
    let grads = score.backward();
    Ok(probe.gradients(&grads).into_iter().map(|(p, g)| (p, g.without_autodiff())).collect())
}

/// Whether `point` is a `[pos, d]` hook (neuron ablation and steering act on its last axis).
pub fn is_positional(point: &HookPoint) -> bool {
    match point.site {
        Site::Embed | Site::FinalNorm => true,
        Site::Block(_, site) => matches!(
            site,
            BlockSite::ResidPre | BlockSite::AttnOut | BlockSite::ResidMid | BlockSite::MlpPost | BlockSite::MlpOut | BlockSite::ResidPost
        ),
    }
}
