//! `ecco generate` and `ecco forward`: run the model (through the `ecco` library's
//! [`Lm::generate`](ecco::Lm::generate) and [`Lm::forward`](ecco::Lm::forward)) and write a
//! trace bundle.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use ecco::{ForwardOptions, GenerateOptions, Sampling};
use ecco_attrib::{AttributionTarget, Method, parse_methods};
use ecco_core::check_output_dir;

use crate::args::{CaptureArgs, InterventionArgs, ModelArgs};

/// Arguments of `ecco generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// The text to continue (an encoder-decoder such as T5: the encoder's input, `</s>` added).
    #[arg(long)]
    prompt: String,
    /// How many tokens to generate.
    #[arg(long, value_name = "N")]
    max_new_tokens: usize,
    /// Sample instead of greedy decoding.
    #[arg(long)]
    sample: bool,
    /// Sampling seed.
    #[arg(long, default_value_t = 0, requires = "sample")]
    seed: u64,
    /// Sampling temperature.
    #[arg(long, requires = "sample")]
    temperature: Option<f32>,
    /// Sample among the K most likely tokens.
    #[arg(long, value_name = "K", requires = "sample")]
    top_k: Option<usize>,
    /// Sample among the most likely tokens holding probability P.
    #[arg(long, value_name = "P", requires = "sample")]
    top_p: Option<f32>,
    #[command(flatten)]
    capture: CaptureArgs,
    #[command(flatten)]
    attribution: AttributionArgs,
    #[command(flatten)]
    interventions: InterventionArgs,
    /// Directory to write the trace bundle to.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

/// Attribution flags of `ecco generate`.
#[derive(Debug, Args)]
pub struct AttributionArgs {
    /// Attribution methods, comma separated: grad_x_input, gradient (saliency),
    /// integrated_gradients (ig), occlusion, attention_rollout (rollout; reads attention only,
    /// so the target and contrast flags do not apply to it).
    #[arg(long, value_name = "LIST")]
    attribution: Option<String>,
    /// What to differentiate: the target token's `prob` (Ecco) or its `logit`.
    #[arg(long, default_value = "prob", value_name = "prob|logit")]
    attribution_target: AttributionTarget,
    /// Contrastive attribution: score the target minus this foil token (a single-token text
    /// such as " dog", a raw token such as "Ġdog", or an id).
    #[arg(long, value_name = "TOKEN")]
    contrast_with: Option<String>,
    /// Integrated gradients' number of steps (captum's default: 50).
    #[arg(long, default_value_t = 50, value_name = "N")]
    ig_steps: usize,
}

impl AttributionArgs {
    /// The methods, checked before any work.
    fn methods(&self) -> Result<Vec<Method>> {
        ecco_attrib::check_ig_steps(self.ig_steps)?;
        Ok(match &self.attribution {
            Some(list) => parse_methods(list)?,
            None => Vec::new(),
        })
    }
}

/// Arguments of `ecco forward`.
#[derive(Debug, Args)]
pub struct ForwardArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// The text to run through the model (masked LMs: with mask tokens such as `[MASK]` or
    /// `<mask>`; special tokens such as `[CLS]` are added; T5: the encoder's input, `</s>`
    /// added, the decoder reading its start token and `--decoder-text`).
    #[arg(long)]
    text: String,
    #[command(flatten)]
    capture: CaptureArgs,
    /// Masked LMs: attribute the top prediction at each mask token (same methods and flags as
    /// `generate`, but not attention_rollout).
    #[command(flatten)]
    attribution: AttributionArgs,
    /// Encoder-decoders (T5): the decoder's input after its start token (default: the start
    /// token alone, the first step of generation). Tokenised without special tokens.
    #[arg(long, value_name = "TEXT")]
    decoder_text: Option<String>,
    /// Masked LMs: how many predictions per mask token go into `masked_predictions`.
    #[arg(long, default_value_t = 10, value_name = "K")]
    mask_topk: usize,
    #[command(flatten)]
    interventions: InterventionArgs,
    /// Directory to write the trace bundle to.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

/// `ecco generate`.
pub fn generate(args: &GenerateArgs) -> Result<()> {
    check_output_dir(&args.out)?;
    args.capture.layer_selection()?;
    let attribution = args.attribution.methods()?;
    let options = GenerateOptions {
        max_new_tokens: args.max_new_tokens,
        sampling: args.sample.then(|| Sampling {
            seed: args.seed,
            temperature: args.temperature.unwrap_or(1.0),
            top_k: args.top_k,
            top_p: args.top_p,
        }),
        attribution,
        attribution_target: args.attribution.attribution_target,
        contrast_with: args.attribution.contrast_with.clone(),
        ig_steps: args.attribution.ig_steps,
        activations: args.capture.activations,
        layers: args.capture.layers.clone(),
        hidden_states: args.capture.hidden_states,
        attention: args.capture.attention,
        capture: args.capture.hook_patterns()?,
        interventions: args.interventions.interventions()?,
        progress: true,
        control: None,
    };
    let lm = args.model.load()?;
    lm.generate(&args.prompt, &options)?.save(&args.out)
}

/// `ecco forward`.
pub fn forward(args: &ForwardArgs) -> Result<()> {
    check_output_dir(&args.out)?;
    args.capture.layer_selection()?;
    let attribution = args.attribution.methods()?;
    let options = ForwardOptions {
        attribution,
        attribution_target: args.attribution.attribution_target,
        contrast_with: args.attribution.contrast_with.clone(),
        ig_steps: args.attribution.ig_steps,
        activations: args.capture.activations,
        layers: args.capture.layers.clone(),
        hidden_states: args.capture.hidden_states,
        attention: args.capture.attention,
        capture: args.capture.hook_patterns()?,
        mask_topk: args.mask_topk,
        decoder_text: args.decoder_text.clone(),
        interventions: args.interventions.interventions()?,
        progress: true,
        control: None,
    };
    let lm = args.model.load()?;
    lm.forward(&args.text, &options)?.save(&args.out)
}
