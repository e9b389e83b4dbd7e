//! Interventions: ablation and steering in [`GenerateOptions`](crate::GenerateOptions) and
//! [`ForwardOptions`](crate::ForwardOptions), activation patching ([`Lm::patch`]) and
//! steering vectors ([`Lm::steering_vector`]).
//!
//! The specs are typed ([`Ablation`], [`Steering`]), parsed once from the command line's
//! strings, and checked against the model before any work: a hook the model lacks, a neuron
//! or head index past the hook's width, a vector of another width are one-line errors.

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use ecco_attrib::{Ablate, HookEdit, PatchMethod};
use ecco_core::{AppliedIntervention, BlockSite, Edit, F32Tensor, HookPattern, HookPoint, Intervention, ModelInfo, ModelKind, Site};
use serde::Serialize;

pub use ecco_attrib::{AblationMode, AblationUnits};

use crate::load::{Lm, resolve_token};

/// One `--ablate` spec: `HOOK` (the whole hook), `HOOK:17,300` (those neurons of a `[pos, d]`
/// hook such as `blocks.1.mlp.post`) or `HOOK:h3` (head 3 of `blocks.2.attn.z`).
///
/// ```
/// use ecco::{Ablation, AblationUnits};
/// let a: Ablation = "blocks.2.attn.z:h3,h5".parse()?;
/// assert_eq!(a.units, AblationUnits::Heads(vec![3, 5]));
/// # Ok::<(), ecco::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ablation {
    /// The hook points ablated (`*` for every block).
    pub hook: HookPattern,
    /// Which of their units.
    pub units: AblationUnits,
}

impl FromStr for Ablation {
    type Err = anyhow::Error;

    fn from_str(spec: &str) -> Result<Self> {
        let (hook, list) = match spec.split_once(':') {
            Some((hook, list)) => (hook, Some(list)),
            None => (spec, None),
        };
        let hook: HookPattern = hook.parse().with_context(|| format!("--ablate `{spec}`"))?;
        let Some(list) = list else { return Ok(Self { hook, units: AblationUnits::All }) };
        let items: Vec<&str> = list.split(',').map(str::trim).collect();
        if items.iter().all(|i| i.starts_with('h')) {
            let heads = items.iter().map(|i| i[1..].parse::<usize>()).collect::<Result<Vec<_>, _>>();
            let heads = heads.map_err(|_| anyhow::anyhow!("--ablate `{spec}`: heads are written h0,h3 (0-based)"))?;
            return Ok(Self { hook, units: AblationUnits::Heads(heads) });
        }
        let neurons = items.iter().map(|i| i.parse::<usize>()).collect::<Result<Vec<_>, _>>();
        let neurons = neurons.map_err(|_| anyhow::anyhow!("--ablate `{spec}`: neurons are written 17,300 and heads h3 (0-based)"))?;
        Ok(Self { hook, units: AblationUnits::Neurons(neurons) })
    }
}

/// One `--steer` spec: `scale` times `vector` added to `hook` at every position of every
/// forward pass.
#[derive(Clone, Debug, PartialEq)]
pub struct Steering {
    /// Where the vector is added: a `[pos, d]` hook (`blocks.3.resid_post`).
    pub hook: HookPattern,
    /// As wide as the hook.
    pub vector: Vec<f32>,
    /// Multiplies the vector.
    pub scale: f32,
    /// Where the vector came from (recorded in the trace).
    pub source: String,
}

impl Steering {
    /// Parses `HOOK:FILE[:SCALE]` and reads FILE (safetensors holding one tensor of shape
    /// `[d]`).
    ///
    /// # Errors
    /// A malformed spec, an unreadable file, a file with several tensors or a tensor that is
    /// not one vector.
    pub fn from_spec(spec: &str) -> Result<Self> {
        let Some((hook, rest)) = spec.split_once(':') else { bail!("--steer `{spec}`: write HOOK:FILE[:SCALE]") };
        let hook: HookPattern = hook.parse().with_context(|| format!("--steer `{spec}`"))?;
        let (file, scale) = match rest.rsplit_once(':') {
            Some((file, scale)) => match scale.parse::<f32>() {
                Ok(s) if s.is_finite() => (file, s),
                _ => bail!("--steer `{spec}`: the scale `{scale}` is not a finite number"),
            },
            None => (rest, 1.0),
        };
        let vector = read_vector(Path::new(file))?;
        Ok(Self { hook, vector, scale, source: file.to_owned() })
    }
}

/// The one vector of a steering-vector file.
fn read_vector(path: &Path) -> Result<Vec<f32>> {
    let reader = ecco_core::SafetensorsReader::open(path).with_context(|| format!("steering vector {}", path.display()))?;
    let names: Vec<&String> = reader.entries().keys().collect();
    let [name] = names.as_slice() else {
        bail!("steering vector {}: the file holds {} tensors; it must hold exactly one of shape [d]", path.display(), names.len());
    };
    let tensor = reader.read_f32(name).with_context(|| format!("steering vector {}", path.display()))?;
    if tensor.shape.len() != 1 {
        bail!("steering vector {}: tensor `{name}` has shape {:?}; it must be one vector [d]", path.display(), tensor.shape);
    }
    if tensor.data.iter().any(|v| !v.is_finite()) {
        bail!("steering vector {}: tensor `{name}` holds NaN or infinite values", path.display());
    }
    Ok(tensor.data)
}

/// The interventions of a run: ablations and steering vectors, applied in every forward pass
/// in this order (ablations first).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Interventions {
    /// Ablations (`--ablate`).
    pub ablate: Vec<Ablation>,
    /// What ablated values become (`--ablation zero|mean`).
    pub ablation: AblationMode,
    /// Steering vectors (`--steer`).
    pub steer: Vec<Steering>,
}

/// The width of a `[pos, d]` hook point's last axis, `None` for other hooks.
fn width(info: &ModelInfo, point: &HookPoint) -> Option<usize> {
    if !ecco_attrib::patching::is_positional(point) {
        return None;
    }
    Some(if point.site == Site::Block(point.block_index()?, BlockSite::MlpPost) { info.intermediate_size } else { info.hidden_size })
}

impl Interventions {
    /// Whether the run is left unchanged.
    pub fn is_empty(&self) -> bool {
        self.ablate.is_empty() && self.steer.is_empty()
    }

    /// Refuses what does not fit the model: an unknown hook, an index out of range, a vector
    /// of another width.
    pub(crate) fn check(&self, lm: &Lm) -> Result<()> {
        let model = lm.loaded().model.as_lm();
        let stacks = model.hook_stacks();
        let info = model.info();
        for a in &self.ablate {
            for point in a.hook.resolve(&stacks)? {
                match &a.units {
                    AblationUnits::All => {}
                    AblationUnits::Neurons(neurons) => {
                        let Some(width) = width(info, &point) else {
                            bail!(
                                "--ablate {}: neurons are chosen on a [pos, d] hook (mlp.post, resid_*, attn_out, mlp_out); heads of attn.z as h3",
                                a.hook
                            );
                        };
                        if let Some(i) = neurons.iter().find(|&&i| i >= width) {
                            bail!("--ablate {}: neuron {i} is out of range ({point} has {width})", a.hook);
                        }
                    }
                    AblationUnits::Heads(heads) => {
                        if point.site != Site::Block(point.block_index().unwrap_or(0), BlockSite::AttnZ) {
                            bail!("--ablate {}: heads are ablated on attn.z (blocks.2.attn.z:h3)", a.hook);
                        }
                        if let Some(h) = heads.iter().find(|&&h| h >= info.n_heads) {
                            bail!("--ablate {}: head {h} is out of range ({point} has {} heads)", a.hook, info.n_heads);
                        }
                    }
                }
            }
        }
        for s in &self.steer {
            for point in s.hook.resolve(&stacks)? {
                let Some(width) = width(info, &point) else {
                    bail!("--steer {}: steering adds to a [pos, d] hook (resid_pre, resid_post, attn_out, mlp_out, mlp.post)", s.hook);
                };
                if s.vector.len() != width {
                    bail!("--steer {}: the vector in {} has {} values, {point} is {width} wide", s.hook, s.source, s.vector.len());
                }
            }
        }
        Ok(())
    }

    /// The interventions as the recorder takes them.
    pub(crate) fn edits(&self) -> Vec<HookEdit> {
        let mut edits: Vec<HookEdit> = self
            .ablate
            .iter()
            .map(|a| (a.hook, Arc::new(Ablate { units: a.units.clone(), mode: self.ablation }) as Arc<dyn Intervention>))
            .collect();
        edits.extend(
            self.steer.iter().map(|s| (s.hook, Arc::new(Edit::Add { vector: s.vector.clone(), scale: s.scale }) as Arc<dyn Intervention>)),
        );
        edits
    }

    /// What the trace records.
    pub(crate) fn records(&self) -> Vec<AppliedIntervention> {
        let blank = |kind: &str, hook: &HookPattern| AppliedIntervention {
            kind: kind.to_owned(),
            hook: hook.to_string(),
            mode: None,
            neurons: None,
            heads: None,
            vector: None,
            scale: None,
            norm: None,
        };
        let mut records: Vec<AppliedIntervention> = self
            .ablate
            .iter()
            .map(|a| AppliedIntervention {
                mode: Some(mode_name(self.ablation).to_owned()),
                neurons: if let AblationUnits::Neurons(n) = &a.units { Some(n.clone()) } else { None },
                heads: if let AblationUnits::Heads(h) = &a.units { Some(h.clone()) } else { None },
                ..blank("ablate", &a.hook)
            })
            .collect();
        records.extend(self.steer.iter().map(|s| AppliedIntervention {
            vector: Some(s.source.clone()),
            scale: Some(s.scale),
            norm: Some(s.vector.iter().map(|v| v * v).sum::<f32>().sqrt()),
            ..blank("steer", &s.hook)
        }));
        records
    }
}

/// `zero` or `mean`.
fn mode_name(mode: AblationMode) -> &'static str {
    match mode {
        AblationMode::Zero => "zero",
        AblationMode::Mean => "mean",
    }
}

/// Options of [`Lm::patch`] (`ecco patch`).
#[derive(Clone, Debug, PartialEq)]
pub struct PatchOptions {
    /// The clean text.
    pub clean: String,
    /// The corrupted text (as many tokens as `clean`).
    pub corrupted: String,
    /// The token the metric scores: a one-token text (`" Paris"`), a raw token or an id.
    pub target: String,
    /// The token whose logit the metric subtracts.
    pub foil: Option<String>,
    /// The patched hook points (`blocks.*.resid_pre`).
    pub hook: HookPattern,
    /// Real patching or attribution patching.
    pub method: PatchMethod,
    /// Ablations applied in every run (clean, corrupted, patched).
    pub ablate: Vec<Ablation>,
    /// What ablated values become.
    pub ablation: AblationMode,
    /// Patched copies per forward pass.
    pub batch: usize,
}

impl PatchOptions {
    /// Patching `hook` from `clean` into `corrupted`, scoring `target`; no foil, real
    /// patching, 64 copies per pass.
    pub fn new(clean: &str, corrupted: &str, target: &str, hook: HookPattern) -> Self {
        Self {
            clean: clean.to_owned(),
            corrupted: corrupted.to_owned(),
            target: target.to_owned(),
            foil: None,
            hook,
            method: PatchMethod::Activation,
            ablate: Vec::new(),
            ablation: AblationMode::Zero,
            batch: 64,
        }
    }
}

/// The result of [`Lm::patch`], serialised as the contract's JSON.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Patching {
    /// The patched hook pattern.
    pub hook: String,
    /// `logit_diff` (with a foil) or `logit`.
    pub metric: String,
    /// `activation` or `attribution`.
    pub method: String,
    /// The clean run's metric.
    pub clean: f32,
    /// The corrupted run's metric.
    pub corrupted: f32,
    /// The patched blocks.
    pub layers: Vec<usize>,
    /// The clean run's tokens (the columns, unless `heads`).
    pub positions: Vec<String>,
    /// The corrupted run's tokens.
    pub corrupted_positions: Vec<String>,
    /// For `attn.z`: the heads (the columns of `effects`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heads: Option<Vec<usize>>,
    /// Where the metric reads the logits.
    pub metric_position: usize,
    /// `[layer][position or head]`: patched metric minus the corrupted metric.
    pub effects: Vec<Vec<f32>>,
    /// The interventions applied in every run.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub interventions: Vec<AppliedIntervention>,
}

impl Lm {
    /// Activation patching (Ecco has none; TransformerLens' `patching` utilities): for every
    /// block `options.hook` selects and every position (every head for `attn.z`), the metric
    /// of the corrupted text with that activation replaced by the clean text's, minus the
    /// corrupted metric. The metric is `logit(target) − logit(foil)` at the last position
    /// (a masked LM: at the mask token of the clean text).
    ///
    /// ```
    /// let lm = ecco::demo()?;
    /// let options = ecco::PatchOptions::new("The capital of France is", "The capital of Spain is", " Paris", "blocks.*.resid_pre".parse()?);
    /// let grid = lm.patch(&options)?;
    /// assert_eq!(grid.effects.len(), lm.info().n_layers);
    /// # Ok::<(), ecco::Error>(())
    /// ```
    ///
    /// # Errors
    /// Texts of different token lengths, a target or foil that is not one token, a hook that
    /// patching does not cover or the model lacks, an encoder-decoder, a masked LM without a
    /// mask token in the clean text.
    pub fn patch(&self, options: &PatchOptions) -> Result<Patching> {
        let loaded = self.loaded();
        let info = self.info();
        if info.kind == ModelKind::EncoderDecoder {
            bail!("patching runs on causal and masked LMs; {} is an encoder-decoder", loaded.name);
        }
        let masked = info.kind == ModelKind::Masked;
        let clean = loaded.tokenizer.encode(&options.clean, masked)?.ids;
        let corrupted = loaded.tokenizer.encode(&options.corrupted, masked)?.ids;
        if clean.is_empty() {
            return Err(ecco_models::Error::EmptyPrompt.into());
        }
        if clean.len() != corrupted.len() {
            bail!("--clean has {} tokens and --corrupted {}: patching needs texts of the same token length", clean.len(), corrupted.len());
        }
        if let Some(max) = info.max_positions
            && clean.len() > max
        {
            return Err(ecco_core::Error::SequenceTooLong { len: clean.len(), max }.into());
        }
        let position = if masked {
            let mask = loaded.tokenizer.mask_token_id();
            match clean.iter().position(|&id| Some(id) == mask) {
                Some(p) => p,
                None => bail!("patching a masked LM scores the prediction at a mask token: put one in --clean"),
            }
        } else {
            clean.len() - 1
        };
        let vocab = info.vocab_size;
        let target = resolve_token(&loaded.tokenizer, &options.target, vocab).context("--target")?;
        let foil = match &options.foil {
            Some(f) => Some(resolve_token(&loaded.tokenizer, f, vocab).context("--foil")?),
            None => None,
        };
        let interventions = Interventions { ablate: options.ablate.clone(), ablation: options.ablation, steer: Vec::new() };
        interventions.check(self)?;
        let edits = interventions.edits();
        let request = ecco_attrib::PatchRequest {
            clean: &clean,
            corrupted: &corrupted,
            position,
            target,
            foil,
            hook: options.hook,
            method: options.method,
            edits: &edits,
            batch: options.batch,
        };
        let grid = ecco_attrib::patch(loaded.model.as_lm(), &request)?;
        let tokens = |ids: &[u32]| ids.iter().map(|&id| loaded.tokenizer.token(id)).collect();
        Ok(Patching {
            hook: options.hook.to_string(),
            metric: if foil.is_some() { "logit_diff" } else { "logit" }.to_owned(),
            method: match options.method {
                PatchMethod::Activation => "activation",
                PatchMethod::Attribution => "attribution",
            }
            .to_owned(),
            clean: grid.clean,
            corrupted: grid.corrupted,
            layers: grid.layers,
            positions: tokens(&clean),
            corrupted_positions: tokens(&corrupted),
            heads: grid.per_head.then(|| (0..info.n_heads).collect()),
            metric_position: position,
            effects: grid.effects,
            interventions: interventions.records(),
        })
    }

    /// Contrastive activation addition's steering vector: the mean over pairs of the
    /// activation of `hook` (one `[pos, d]` hook point) at the positive text's last token minus
    /// the negative text's.
    ///
    /// # Errors
    /// No pairs, a hook that is not one `[pos, d]` hook point of the model, an empty text.
    pub fn steering_vector(&self, pairs: &[(String, String)], hook: HookPattern) -> Result<Vec<f32>> {
        let loaded = self.loaded();
        let model = loaded.model.as_lm();
        if pairs.is_empty() {
            bail!("a steering vector needs at least one --positive/--negative pair");
        }
        let points = hook.resolve(&model.hook_stacks())?;
        let [point] = points.as_slice() else { bail!("--hook {hook}: name one hook point (no `*`)") };
        if width(self.info(), point).is_none() {
            bail!("--hook {hook}: steering vectors are taken at a [pos, d] hook (resid_pre, resid_post, attn_out, mlp_out, mlp.post)");
        }
        let kind = self.info().kind;
        if kind == ModelKind::EncoderDecoder {
            bail!("steering vectors are taken on causal and masked LMs; {} is an encoder-decoder", loaded.name);
        }
        let spec = ecco_core::CaptureSpec { hooks: vec![hook], ..ecco_core::CaptureSpec::none() };
        let last = |text: &str| -> Result<Vec<f32>> {
            let ids = loaded.tokenizer.encode(text, kind == ModelKind::Masked)?.ids;
            if ids.is_empty() {
                return Err(ecco_models::Error::EmptyPrompt.into());
            }
            let (tensors, _) = ecco_models::capture_pass(model, &ids, &spec)?;
            let t = tensors.get(&point.to_string()).context("the capture pass did not record the hook")?;
            let d = t.shape[1];
            Ok(t.data[(t.shape[0] - 1) * d..].to_vec())
        };
        let mut sum: Vec<f32> = Vec::new();
        for (positive, negative) in pairs {
            let (p, n) = (last(positive)?, last(negative)?);
            if sum.is_empty() {
                sum = vec![0.0; p.len()];
            }
            for ((s, a), b) in sum.iter_mut().zip(p).zip(n) {
                *s += a - b;
            }
        }
        let n = pairs.len() as f32;
        Ok(sum.into_iter().map(|s| s / n).collect())
    }
}

/// Writes a steering vector as the one tensor of a safetensors file (`steering-vector`).
///
/// # Errors
/// The file cannot be written.
pub fn write_steering_vector(path: &Path, hook: &HookPattern, vector: &[f32]) -> Result<()> {
    let name = hook.to_string();
    let tensor = F32Tensor::new(&name, vec![vector.len()], vector.to_vec())?;
    ecco_core::write_safetensors(path, &BTreeMap::from([(name, tensor)]))?;
    Ok(())
}
