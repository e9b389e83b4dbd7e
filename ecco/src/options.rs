//! What [`Lm::generate`](crate::Lm::generate) and [`Lm::forward`](crate::Lm::forward) record:
//! [`GenerateOptions`] and [`ForwardOptions`], mirroring Ecco's `generate` arguments and the
//! command line's flags.

use ecco_attrib::{AttributionTarget, Method};
use ecco_core::HookPattern;
use ecco_models::Sampling;

use crate::progress::Control;

/// Options of [`Lm::generate`](crate::Lm::generate), Ecco's `lm.generate(text, …)`.
///
/// Start from [`Default`] (4 greedy tokens, hidden states captured for the logit lens, no
/// attribution) and set what you need:
///
/// ```
/// use ecco::{GenerateOptions, Method};
/// let options = GenerateOptions { max_new_tokens: 2, attribution: vec![Method::GradXInput], activations: true, ..Default::default() };
/// assert!(options.hidden_states);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct GenerateOptions {
    /// How many tokens to generate (generation stops early at the end-of-sequence token).
    pub max_new_tokens: usize,
    /// `None`: greedy decoding (Ecco's default); `Some`: seeded sampling.
    pub sampling: Option<Sampling>,
    /// Attribution methods to run for every generated token (Ecco's `attribution=[…]`).
    pub attribution: Vec<Method>,
    /// What the gradient methods differentiate: the target token's probability (Ecco) or logit.
    pub attribution_target: AttributionTarget,
    /// Contrastive attribution: score the target minus this foil token (an id, a raw token or
    /// a one-token text such as `" dog"`).
    pub contrast_with: Option<String>,
    /// Integrated gradients' number of steps (captum's default: 50).
    pub ig_steps: usize,
    /// Capture FFN activations (for [`Output::run_nmf`](crate::Output::run_nmf) and the
    /// neuron views).
    pub activations: bool,
    /// Only these layers' activations (0-based); needs `activations`.
    pub layers: Option<Vec<usize>>,
    /// Capture the hidden states (for the logit lens: layer predictions, rankings).
    pub hidden_states: bool,
    /// Capture the attention weights.
    pub attention: bool,
    /// Capture these hook points under their own names (`--capture`; `docs/hooks.md`), e.g.
    /// `ecco::parse_hook_patterns("blocks.*.mlp.post")?`.
    pub capture: Vec<HookPattern>,
    /// Ablations and steering vectors applied in every forward pass (`--ablate`, `--steer`).
    pub interventions: crate::Interventions,
    /// Progress bars on stderr for long work (shown only on a terminal).
    pub progress: bool,
    /// A handle through which another thread follows the work's progress and stops it.
    pub control: Option<Control>,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        Self {
            max_new_tokens: 4,
            sampling: None,
            attribution: Vec::new(),
            attribution_target: AttributionTarget::Prob,
            contrast_with: None,
            ig_steps: 50,
            activations: false,
            layers: None,
            hidden_states: true,
            attention: false,
            capture: Vec::new(),
            interventions: crate::Interventions::default(),
            progress: true,
            control: None,
        }
    }
}

/// Options of [`Lm::forward`](crate::Lm::forward): one pass over a text, Ecco's `lm(inputs)`;
/// on a masked LM, the predictions at each mask token and their attributions; on an
/// encoder-decoder, the decoder's input ([`decoder_text`](Self::decoder_text)).
#[derive(Clone, Debug, PartialEq)]
pub struct ForwardOptions {
    /// Masked LMs: attribution methods for the top prediction at each mask token (not
    /// attention rollout).
    pub attribution: Vec<Method>,
    /// What the gradient methods differentiate.
    pub attribution_target: AttributionTarget,
    /// Contrastive attribution's foil token.
    pub contrast_with: Option<String>,
    /// Integrated gradients' number of steps.
    pub ig_steps: usize,
    /// Capture FFN activations.
    pub activations: bool,
    /// Only these layers' activations (0-based); needs `activations`.
    pub layers: Option<Vec<usize>>,
    /// Capture the hidden states.
    pub hidden_states: bool,
    /// Capture the attention weights.
    pub attention: bool,
    /// Capture these hook points under their own names (`--capture`; `docs/hooks.md`).
    pub capture: Vec<HookPattern>,
    /// Masked LMs: predictions kept per mask token.
    pub mask_topk: usize,
    /// Encoder-decoders (T5): the decoder's input after its start token (`None`: the start
    /// token alone, the first step of generation); tokenised without special tokens.
    pub decoder_text: Option<String>,
    /// Ablations and steering vectors applied to the pass (`--ablate`, `--steer`).
    pub interventions: crate::Interventions,
    /// Progress bars on stderr (shown only on a terminal).
    pub progress: bool,
    /// A handle through which another thread follows the work's progress and stops it.
    pub control: Option<Control>,
}

impl Default for ForwardOptions {
    fn default() -> Self {
        Self {
            attribution: Vec::new(),
            attribution_target: AttributionTarget::Prob,
            contrast_with: None,
            ig_steps: 50,
            activations: false,
            layers: None,
            hidden_states: true,
            attention: false,
            capture: Vec::new(),
            mask_topk: 10,
            decoder_text: None,
            interventions: crate::Interventions::default(),
            progress: true,
            control: None,
        }
    }
}

/// The parts both option structs share.
pub(crate) struct Request<'a> {
    pub attribution: &'a [Method],
    pub target: AttributionTarget,
    pub contrast_with: Option<&'a str>,
    pub ig_steps: usize,
    pub capture: ecco_core::CaptureSpec,
    pub layers_chosen: bool,
    pub interventions: &'a crate::Interventions,
    pub progress: bool,
    pub control: Option<&'a Control>,
}

/// The capture switches, refusing `layers` without `activations`.
fn capture(
    activations: bool,
    layers: Option<&Vec<usize>>,
    hidden_states: bool,
    attention: bool,
    hooks: &[HookPattern],
) -> anyhow::Result<ecco_core::CaptureSpec> {
    let layers = match layers {
        None => ecco_core::LayerSelection::All,
        Some(_) if !activations => anyhow::bail!("layers selects activation layers: capture activations too (--activations)"),
        Some(list) if list.is_empty() => anyhow::bail!("the layer list is empty"),
        Some(list) => ecco_core::LayerSelection::Only(list.clone()),
    };
    Ok(ecco_core::CaptureSpec { hidden_states, activations, attention, hooks: hooks.to_vec(), layers, ..ecco_core::CaptureSpec::none() })
}

impl Request<'_> {
    /// The flag the lower layers check, when someone may stop the work.
    pub(crate) fn cancel(&self) -> Option<ecco_core::Cancel> {
        self.control.map(|c| c.cancel_token().clone())
    }
}

impl GenerateOptions {
    pub(crate) fn request(&self) -> anyhow::Result<Request<'_>> {
        Ok(Request {
            attribution: &self.attribution,
            target: self.attribution_target,
            contrast_with: self.contrast_with.as_deref(),
            ig_steps: self.ig_steps,
            capture: capture(self.activations, self.layers.as_ref(), self.hidden_states, self.attention, &self.capture)?,
            layers_chosen: self.layers.is_some(),
            interventions: &self.interventions,
            progress: self.progress,
            control: self.control.as_ref(),
        })
    }
}

impl ForwardOptions {
    pub(crate) fn request(&self) -> anyhow::Result<Request<'_>> {
        Ok(Request {
            attribution: &self.attribution,
            target: self.attribution_target,
            contrast_with: self.contrast_with.as_deref(),
            ig_steps: self.ig_steps,
            capture: capture(self.activations, self.layers.as_ref(), self.hidden_states, self.attention, &self.capture)?,
            layers_chosen: self.layers.is_some(),
            interventions: &self.interventions,
            progress: self.progress,
            control: self.control.as_ref(),
        })
    }
}
