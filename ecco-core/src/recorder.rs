//! The one recorder every model emits its hook points into ([`Hooks`]), and the values it
//! holds ([`HookTensor`]).
//!
//! A model calls [`Hooks::emit`] once per hook point of a forward pass and carries on with what
//! it returns; it never decides what is stored. The recorder applies the interventions that
//! select the point ([`Intervention`]), then keeps the (edited) value when the
//! [`CaptureSpec`] asks for it: by name ([`CaptureSpec::hooks`]) or through the
//! `hidden_states` / `activations` / `attention` shorthands, which it assembles into
//! [`StackCaptures`] in their old layouts.

use std::collections::BTreeMap;
use std::sync::Arc;

use burn::tensor::Tensor;

use crate::capture::{CaptureSpec, Logits, StackCaptures};
use crate::error::{Error, Result};
use crate::hooks::{BlockSite, HookPattern, HookPoint, Site, Stack};
use crate::intervention::Intervention;
use crate::model::{ModelKind, ModelOutput};

/// A hook point's value, batch first: `[batch, pos, d]` for residual-stream and FFN hooks,
/// `[batch, pos, heads, d_head]` for `attn.q/k/v/z`, `[batch, heads, q_pos, k_pos]` for
/// attention patterns.
#[derive(Clone, Debug)]
pub enum HookTensor {
    /// A rank-3 value.
    Rank3(Tensor<3>),
    /// A rank-4 value.
    Rank4(Tensor<4>),
}

impl HookTensor {
    /// The value's shape, batch first.
    pub fn dims(&self) -> Vec<usize> {
        match self {
            Self::Rank3(t) => t.dims().to_vec(),
            Self::Rank4(t) => t.dims().to_vec(),
        }
    }

    /// Whether the value lives on an autodiff device.
    pub fn is_autodiff(&self) -> bool {
        match self {
            Self::Rank3(t) => t.is_autodiff(),
            Self::Rank4(t) => t.is_autodiff(),
        }
    }

    /// The value without its autodiff association (gradients stop here).
    #[must_use]
    pub fn without_autodiff(self) -> Self {
        match self {
            Self::Rank3(t) => Self::Rank3(t.without_autodiff()),
            Self::Rank4(t) => Self::Rank4(t.without_autodiff()),
        }
    }

    /// The value as row-major f32 with its shape, batch first.
    ///
    /// # Errors
    /// [`Error::Readback`] when the device cannot give it back.
    pub fn to_vec(&self) -> Result<(Vec<usize>, Vec<f32>)> {
        let data = match self {
            Self::Rank3(t) => t.clone().into_data(),
            Self::Rank4(t) => t.clone().into_data(),
        };
        let values = data.try_into_vec::<f32>().map_err(|e| Error::Readback(format!("{e:?}")))?;
        Ok((self.dims(), values))
    }
}

/// A tensor rank a hook point can have: the bridge between a model's typed tensors and
/// [`HookTensor`].
pub trait HookValue: Sized {
    /// Wraps the value.
    fn into_hook(self) -> HookTensor;
    /// Unwraps a value of this rank; `None` for another rank.
    fn from_hook(value: HookTensor) -> Option<Self>;
}

impl HookValue for Tensor<3> {
    fn into_hook(self) -> HookTensor {
        HookTensor::Rank3(self)
    }
    fn from_hook(value: HookTensor) -> Option<Self> {
        match value {
            HookTensor::Rank3(t) => Some(t),
            HookTensor::Rank4(_) => None,
        }
    }
}

impl HookValue for Tensor<4> {
    fn into_hook(self) -> HookTensor {
        HookTensor::Rank4(self)
    }
    fn from_hook(value: HookTensor) -> Option<Self> {
        match value {
            HookTensor::Rank4(t) => Some(t),
            HookTensor::Rank3(_) => None,
        }
    }
}

/// What the shorthands collect of one stack, assembled into [`StackCaptures`] at the end.
#[derive(Debug, Default)]
struct Shorthands {
    embed: Option<Tensor<3>>,
    resid_post: Vec<Tensor<3>>,
    final_norm: Option<Tensor<3>>,
    activations: Vec<(usize, Tensor<3>)>,
    attention: Vec<Tensor<4>>,
    cross_attention: Vec<Tensor<4>>,
}

impl Shorthands {
    /// Hidden states as Hugging Face returns them: the embedding output, every block's output
    /// but the last, and the last after the final norm.
    fn into_captures(mut self) -> (StackCaptures, Vec<Tensor<4>>) {
        let mut hidden_states = Vec::new();
        if let Some(embed) = self.embed {
            hidden_states.push(embed);
            if let Some(last) = self.final_norm {
                self.resid_post.pop();
                hidden_states.append(&mut self.resid_post);
                hidden_states.push(last);
            }
        }
        (StackCaptures { hidden_states, activations: self.activations, attention: self.attention }, self.cross_attention)
    }
}

/// The recorder of one forward pass: what to keep ([`CaptureSpec`]) and what to change
/// ([`Intervention`]s, each on the hook points a [`HookPattern`] selects).
///
/// ```
/// use ecco_core::{CaptureSpec, Hooks, parse_hook_patterns};
/// let spec = CaptureSpec { hooks: parse_hook_patterns("blocks.*.resid_post")?, ..CaptureSpec::none() };
/// let hooks = Hooks::new(spec);
/// # let _ = hooks;
/// # Ok::<(), ecco_core::HookNameError>(())
/// ```
#[derive(Debug)]
pub struct Hooks {
    spec: CaptureSpec,
    interventions: Vec<(HookPattern, Arc<dyn Intervention>)>,
    shorthands: BTreeMap<Stack, Shorthands>,
    named: BTreeMap<HookPoint, HookTensor>,
    error: Option<Error>,
}

impl Hooks {
    /// A recorder keeping what `spec` asks for and changing nothing.
    pub fn new(spec: CaptureSpec) -> Self {
        Self { spec, interventions: Vec::new(), shorthands: BTreeMap::new(), named: BTreeMap::new(), error: None }
    }

    /// Adds an intervention on the hook points `pattern` selects. Interventions on one point
    /// apply in the order they were added; the recorder keeps the value after all of them.
    #[must_use]
    pub fn with_intervention(mut self, pattern: HookPattern, intervention: Arc<dyn Intervention>) -> Self {
        self.interventions.push((pattern, intervention));
        self
    }

    /// What the forward pass records.
    pub fn spec(&self) -> &CaptureSpec {
        &self.spec
    }

    /// Which positions' logits the forward pass computes.
    pub fn logits(&self) -> Logits {
        self.spec.logits
    }

    /// Whether the shorthands or the named captures keep `point`.
    fn keeps(&self, point: &HookPoint) -> bool {
        let spec = &self.spec;
        let shorthand = match point.site {
            Site::Embed | Site::FinalNorm | Site::Block(_, BlockSite::ResidPost) => spec.hidden_states,
            Site::Block(i, BlockSite::MlpPost) => spec.wants_activations(i),
            Site::Block(_, BlockSite::AttnPattern | BlockSite::CrossAttnPattern) => spec.attention,
            Site::Block(..) => false,
        };
        shorthand || spec.hooks.iter().any(|p| p.matches(point))
    }

    /// The model's hook point `point` with value `value`: returns the value the model carries
    /// on with (changed by the interventions that select `point`) and keeps it when asked to.
    ///
    /// A failing intervention leaves the value as it was; the error comes out of
    /// [`Hooks::finish`].
    pub fn emit<T: HookValue + Clone>(&mut self, point: HookPoint, value: T) -> T {
        let keep = self.keeps(&point);
        let edits = self.interventions.iter().any(|(p, _)| p.matches(&point));
        if !keep && !edits {
            return value;
        }
        let original = value.clone();
        let mut value = value.into_hook();
        if edits {
            for (_, edit) in self.interventions.iter().filter(|(p, _)| p.matches(&point)) {
                match edit.apply(&point, value.clone()) {
                    Ok(v) if v.dims() == value.dims() => value = v,
                    Ok(v) => {
                        let reason = format!("changed the shape {:?} to {:?}", value.dims(), v.dims());
                        self.error.get_or_insert(Error::Intervention { hook: point.to_string(), reason });
                    }
                    Err(e) => {
                        self.error.get_or_insert(e);
                    }
                }
            }
        }
        if keep {
            self.keep(point, &value);
        }
        // Only values of the emitted shape were taken, so the rank is the emitted one.
        T::from_hook(value).unwrap_or(original)
    }

    fn keep(&mut self, point: HookPoint, value: &HookTensor) {
        let spec = &self.spec;
        let s = self.shorthands.entry(point.stack).or_default();
        match (point.site, value) {
            (Site::Embed, HookTensor::Rank3(t)) if spec.hidden_states => s.embed = Some(t.clone()),
            (Site::FinalNorm, HookTensor::Rank3(t)) if spec.hidden_states => s.final_norm = Some(t.clone()),
            (Site::Block(_, BlockSite::ResidPost), HookTensor::Rank3(t)) if spec.hidden_states => s.resid_post.push(t.clone()),
            (Site::Block(i, BlockSite::MlpPost), HookTensor::Rank3(t)) if spec.wants_activations(i) => s.activations.push((i, t.clone())),
            (Site::Block(_, BlockSite::AttnPattern), HookTensor::Rank4(t)) if spec.attention => s.attention.push(t.clone()),
            (Site::Block(_, BlockSite::CrossAttnPattern), HookTensor::Rank4(t)) if spec.attention => s.cross_attention.push(t.clone()),
            _ => {}
        }
        if spec.hooks.iter().any(|p| p.matches(&point)) {
            self.named.insert(point, value.clone());
        }
    }

    /// The first error of an intervention so far, taken out of the recorder (models call it
    /// after a decoding step, whose output is not a [`ModelOutput`]).
    ///
    /// # Errors
    /// That error.
    pub fn check(&mut self) -> Result<()> {
        match self.error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The forward pass's output: `logits` and `last_hidden` from the model, the captures from
    /// the recorder. `kind` says which stacks the model has (a causal model's one stack is the
    /// decoder, a masked model's the encoder), each of which gets its [`StackCaptures`].
    ///
    /// # Errors
    /// The first error of an intervention.
    pub fn finish(&mut self, kind: ModelKind, logits: Option<Tensor<3>>, last_hidden: Tensor<3>) -> Result<ModelOutput> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let mut take = |stack: Stack| std::mem::take(self.shorthands.entry(stack).or_default()).into_captures();
        let (encoder, decoder, cross_attention) = match kind {
            ModelKind::Causal => (None, Some(take(Stack::Main).0), Vec::new()),
            ModelKind::Masked => (Some(take(Stack::Main).0), None, Vec::new()),
            ModelKind::EncoderDecoder => {
                let (decoder, cross) = take(Stack::Decoder);
                (Some(take(Stack::Encoder).0), Some(decoder), cross)
            }
        };
        Ok(ModelOutput { logits, last_hidden, encoder, decoder, cross_attention, hooks: std::mem::take(&mut self.named) })
    }
}

/// The recorder seen from inside one block: hook points named by their [`BlockSite`].
#[derive(Debug)]
pub struct BlockHooks<'h> {
    hooks: &'h mut Hooks,
    stack: Stack,
    block: usize,
}

impl BlockHooks<'_> {
    /// [`Hooks::emit`] at `{stack}blocks.{block}.{site}`.
    pub fn emit<T: HookValue + Clone>(&mut self, site: BlockSite, value: T) -> T {
        self.hooks.emit(HookPoint::block(self.stack, self.block, site), value)
    }
}

impl Hooks {
    /// The recorder as block `block` of `stack` emits into it.
    pub fn block(&mut self, stack: Stack, block: usize) -> BlockHooks<'_> {
        BlockHooks { hooks: self, stack, block }
    }
}
