//! [`Output`]: what [`Lm::generate`](crate::Lm::generate) returns, Ecco's `OutputSeq`: the
//! trace bundle plus the model, with the analyses Ecco offers on it.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use anyhow::{Context, Result, bail};
use ecco_attrib::{LayerPrediction, Lens, Method};
use ecco_core::{ModelKind, Trace, TraceBundle};
use ecco_models::{DEMO_NAME, LoadedModel};

use crate::lens::LensInput;
use crate::load::Lm;
use crate::nmf::{NmfOptions, NmfOutcome, factorise};

/// A generation (or forward pass) with its captures and attributions, and the model that made
/// it: Ecco's `OutputSeq`.
///
/// ```
/// use ecco::{GenerateOptions, Lens, Method};
/// let lm = ecco::demo()?;
/// let options = GenerateOptions { max_new_tokens: 1, attribution: vec![Method::GradXInput], activations: true, ..Default::default() };
/// let output = lm.generate("The capital of France is", &options)?;
/// // " France" (position 3) drives " Paris" most.
/// let weights = &output.primary_attributions(Method::GradXInput)?[0];
/// let strongest = (0..weights.len()).max_by(|&a, &b| weights[a].total_cmp(&weights[b]));
/// assert_eq!(strongest, Some(3));
/// // The last layer ranks " Paris" first.
/// let ranks = output.rankings(Lens::Normed)?;
/// assert_eq!(ranks.last().map(|row| row[0]), Some(1));
/// let html = output.to_html(&ecco::ReportOptions::default())?;
/// assert!(html.starts_with("<!DOCTYPE html>"));
/// # Ok::<(), ecco::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Output {
    bundle: TraceBundle,
    model: Option<Arc<LoadedModel>>,
    /// The embedded demo model, loaded on first use for a demo trace without a model.
    demo: OnceLock<Option<Arc<LoadedModel>>>,
}

impl Output {
    /// An output of `bundle`, with the model that made it when known.
    pub(crate) fn new(bundle: TraceBundle, model: Option<Arc<LoadedModel>>) -> Self {
        Self { bundle, model, demo: OnceLock::new() }
    }

    /// Reads a trace bundle written by [`Output::save`] or `ecco generate --out DIR`. The logit
    /// lens needs its model: attach it with [`Output::with_model`] (a trace of the demo model
    /// gets it by itself when the `demo` feature is on).
    ///
    /// # Errors
    /// A missing or corrupt bundle.
    pub fn load(dir: &Path) -> Result<Self> {
        let bundle = TraceBundle::read(dir).with_context(|| format!("cannot read trace {}", dir.display()))?;
        Ok(Self::new(bundle, None))
    }

    /// This output with `lm` as the model the logit lens runs (it must be the one that made the
    /// trace; the lens checks).
    #[must_use]
    pub fn with_model(mut self, lm: &Lm) -> Self {
        self.model = Some(lm.shared());
        self
    }

    /// The model, if attached; a demo-model trace falls back on the embedded demo model.
    pub fn model(&self) -> Option<Arc<LoadedModel>> {
        if let Some(model) = &self.model {
            return Some(Arc::clone(model));
        }
        if self.bundle.trace.model.name != DEMO_NAME || !ecco_models::demo_available() {
            return None;
        }
        self.demo.get_or_init(|| crate::load::demo().ok().map(|lm| lm.shared())).clone()
    }

    /// The JSON part of the bundle: tokens, attributions, model shape, settings.
    pub fn trace(&self) -> &Trace {
        &self.bundle.trace
    }

    /// The whole bundle: the trace and the captured tensors (`hidden_states.decoder`,
    /// `activations.decoder`, `attention.decoder`; `….encoder` for a masked LM; both and
    /// `attention.cross` for an encoder-decoder).
    pub fn bundle(&self) -> &TraceBundle {
        &self.bundle
    }

    /// Every token, raw as the tokenizer gives it (`Ġworld`): the input then the generated ones.
    pub fn tokens(&self) -> &[String] {
        &self.bundle.trace.tokens
    }

    /// The generated tokens (raw; an encoder-decoder's after the decoder's start token).
    pub fn generated_tokens(&self) -> &[String] {
        let t = &self.bundle.trace;
        &t.tokens[t.first_generated().min(t.tokens.len())..]
    }

    /// The generated token ids (an encoder-decoder's after the decoder's start token).
    pub fn generated_ids(&self) -> &[u32] {
        let t = &self.bundle.trace;
        &t.token_ids[t.first_generated().min(t.token_ids.len())..]
    }

    /// The decoded text of the whole sequence; an encoder-decoder's: the generated text alone
    /// (special tokens skipped, as `tokenizer.decode(generated, skip_special_tokens=True)`).
    pub fn output_text(&self) -> &str {
        &self.bundle.trace.output_text
    }

    /// Writes the trace bundle (`trace.json` + `tensors.safetensors`) into `dir`, which must
    /// not exist or be empty: what `ecco report` and the other commands read.
    ///
    /// # Errors
    /// A non-empty `dir`, write failures.
    pub fn save(&self, dir: &Path) -> Result<()> {
        ecco_core::check_output_dir(dir)?;
        self.bundle.write(dir).with_context(|| format!("cannot write {}", dir.display()))
    }

    /// Ecco's `primary_attributions`: for each generated token (each mask token of a masked
    /// LM), how much every earlier token drove it under `method`; each row sums to 1.
    ///
    /// # Errors
    /// When the output was made without `method`.
    pub fn primary_attributions(&self, method: Method) -> Result<&[Vec<f32>]> {
        match self.bundle.trace.attributions.get(method.name()) {
            Some(rows) => Ok(rows),
            None => {
                bail!("the output has no {} attributions: ask for them in `attribution` (`--attribution {}`)", method.name(), method.name())
            }
        }
    }

    /// The model and hidden states the logit lens reads.
    fn lens<'a>(&'a self, model: &'a LoadedModel) -> Result<LensInput<'a>> {
        LensInput::new(&self.bundle, model)
    }

    /// The model the lens runs.
    fn lens_model(&self) -> Result<Arc<LoadedModel>> {
        match self.model() {
            Some(model) => Ok(model),
            None => bail!("the logit lens needs the model that made the trace: attach it with `Output::with_model` (`--model`)"),
        }
    }

    /// Ecco's `layer_predictions`: per layer (or only `layer`), the `topk` tokens its hidden
    /// state predicts for `position` (a causal LM predicts position P from the hidden state at
    /// P-1; a masked LM predicts a mask token from its own; an encoder-decoder's lens reads the
    /// decoder, `position` counting encoder + decoder tokens).
    ///
    /// # Errors
    /// No model or hidden states, a position or layer out of range, `topk` of 0.
    pub fn layer_predictions(&self, position: usize, topk: usize, layer: Option<usize>, lens: Lens) -> Result<Vec<Vec<LayerPrediction>>> {
        if topk == 0 {
            bail!("topk (--topk) must be at least 1");
        }
        let model = self.lens_model()?;
        self.lens(&model)?.layer_predictions(position, topk, layer, lens)
    }

    /// Ecco's `rankings`: `[layer][generated token]`, the rank (1 = top) each layer gives the
    /// token that was generated.
    ///
    /// # Errors
    /// No model or hidden states; a masked LM (it generates nothing: use
    /// [`Output::rankings_watch`]).
    pub fn rankings(&self, lens: Lens) -> Result<Vec<Vec<usize>>> {
        if self.bundle.trace.model.model_type == ModelKind::Masked {
            bail!(
                "rankings ranks generated tokens; a masked LM generates none: use `rankings-watch` or `layer-predictions` at the mask position"
            );
        }
        let model = self.lens_model()?;
        self.lens(&model)?.rankings(lens)
    }

    /// Ecco's `rankings_watch`: `[layer][watched token]`, the rank each layer gives each of
    /// `watch` (token ids, e.g. from [`Lm::token_id`]) at `position`.
    ///
    /// # Errors
    /// No model or hidden states, a position out of range, ids outside the vocabulary.
    pub fn rankings_watch(&self, watch: &[u32], position: usize, lens: Lens) -> Result<Vec<Vec<usize>>> {
        let model = self.lens_model()?;
        self.lens(&model)?.rankings_watch(watch, position, lens)
    }

    /// Ecco's `run_nmf`: factorises the captured FFN activations into `options.components`
    /// factors, each with its strength per position and its top neurons.
    ///
    /// # Errors
    /// No activations (generate with `activations: true`), an empty or unknown layer
    /// selection, no components.
    pub fn run_nmf(&self, options: &NmfOptions) -> Result<NmfOutcome> {
        factorise(&self.bundle, options)
    }

    /// Which attribution can you trust: deletion and insertion AUC, comprehensiveness and
    /// sufficiency of each method in the output (`options.methods`, or all), each beside a
    /// seeded random ranking (`ecco evaluate`). Needs the model that made the output.
    ///
    /// ```
    /// use ecco::{EvaluateOptions, GenerateOptions, Method};
    /// let lm = ecco::demo()?;
    /// let options = GenerateOptions { max_new_tokens: 1, attribution: vec![Method::GradXInput], ..Default::default() };
    /// let output = lm.generate("The capital of France is", &options)?;
    /// let scores = output.evaluate(&EvaluateOptions::default())?;
    /// let gxi = &scores.methods["grad_x_input"];
    /// // Removing the tokens grad x input ranks first loses " Paris" faster than a random order.
    /// assert!(gxi.scores.deletion_auc < gxi.random_baseline.scores.deletion_auc);
    /// # Ok::<(), ecco::Error>(())
    /// ```
    ///
    /// # Errors
    /// No model attached, a model that did not make the trace, no attributions (or not the
    /// methods asked for), an encoder-decoder trace, a baseline the tokenizer lacks.
    pub fn evaluate(&self, options: &crate::EvaluateOptions) -> Result<crate::Evaluation> {
        let Some(model) = self.model() else {
            bail!("evaluation runs the model that made the trace: attach it with `Output::with_model` (`--model`)");
        };
        crate::evaluate::evaluate(&self.bundle.trace, &model, options)
    }
}
