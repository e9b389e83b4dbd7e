//! The report: every view a trace supports, for [`Output::to_html`](crate::Output::to_html)
//! and `ecco report`.

use anyhow::{Context, Result, bail};
use ecco_attrib::Lens;
use ecco_core::{ModelKind, TraceBundle};
use ecco_models::LoadedModel;
use ecco_viz::{NeuronRef, Report};

use crate::lens::LensInput;
use crate::nmf::{NmfOptions, factorise, stack_activations};
use crate::output::Output;
use crate::views;

/// What the report shows.
///
/// ```
/// let options = ecco::ReportOptions { components: 0, ..Default::default() };
/// assert_eq!(options.topk, 10);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct ReportOptions {
    /// Page title (default: the model's name and the text).
    pub title: Option<String>,
    /// Logit lens: `Normed` (final layer norm first, the default) or `Raw` (Ecco).
    pub lens: Lens,
    /// Position of the layer-predictions and rankings-watch views (default: the first
    /// generated token, or the first mask token).
    pub position: Option<usize>,
    /// Tokens per layer in the layer-predictions view.
    pub topk: usize,
    /// Token ids for the rankings-watch view.
    pub watch: Option<Vec<u32>>,
    /// NMF factors of the FFN activations (0: no NMF view).
    pub components: usize,
    /// Neurons of the activation heatmap (default: the 8 with the largest activation).
    pub neurons: Option<Vec<NeuronRef>>,
    /// Keys kept per query in the attention view.
    pub attention_topk: usize,
    /// A progress bar while the NMF runs.
    pub progress: bool,
    /// Score the attributions' faithfulness with these settings (the report's evaluation view;
    /// `ecco report --evaluate`). Runs the model many times: off by default.
    pub evaluate: Option<crate::EvaluateOptions>,
}

impl Default for ReportOptions {
    fn default() -> Self {
        Self {
            title: None,
            lens: Lens::Normed,
            position: None,
            topk: 10,
            watch: None,
            components: 5,
            neurons: None,
            attention_topk: 8,
            progress: true,
            evaluate: None,
        }
    }
}

/// The report of `bundle`; the logit-lens views need `model` (the one that made the trace).
///
/// # Errors
/// `topk` of 0, `watch` or `position` without a model, a position out of range, neurons not in
/// the trace, NMF errors.
pub fn build_report(bundle: &TraceBundle, model: Option<&LoadedModel>, options: &ReportOptions) -> Result<Report> {
    if options.topk == 0 {
        bail!("topk (--topk) must be at least 1");
    }
    let trace = &bundle.trace;
    if model.is_none() {
        if options.watch.is_some() {
            bail!("--watch needs --model (the logit lens runs the model's head)");
        }
        if options.position.is_some() {
            bail!("--position needs --model (the logit lens runs the model's head)");
        }
    }
    let mut report = Report::from_trace(trace)?;
    if let Some(title) = &options.title {
        report.title.clone_from(title);
    }
    // An encoder-decoder's encoder attention: its positions are the first of the trace's tokens.
    let stack = if trace.model.model_type == ModelKind::Causal { "decoder" } else { "encoder" };

    if let Some(att) = bundle.tensors.get(&format!("attention.{stack}")) {
        report.attention = Some(ecco_viz::attention_view(&format!("attention.{stack}"), att, options.attention_topk)?);
    }
    match stack_activations(bundle) {
        Some((acts_name, acts)) => {
            let acts = &acts;
            let stored = trace.activation_layers.clone().unwrap_or_else(|| (0..acts.shape.first().copied().unwrap_or(0)).collect());
            report.neurons = Some(ecco_viz::neurons_view(&acts_name, acts, &stored, options.neurons.as_deref(), 8)?);
            if options.components > 0 {
                let nmf = NmfOptions { components: options.components, progress: options.progress, ..NmfOptions::default() };
                let out = factorise(bundle, &nmf)?;
                report.nmf = Some(views::nmf_view(out.layers, &out.components, out.loadings, out.reconstruction_error));
            }
        }
        None if options.neurons.is_some() => bail!("--neurons: the trace has no FFN activations: make it with `--activations`"),
        None => {}
    }
    if let Some(evaluate) = &options.evaluate {
        let Some(model) = model else { bail!("--evaluate needs --model (evaluation runs the model that made the trace)") };
        report.evaluation = Some(views::evaluation_view(&crate::evaluate::evaluate(trace, model, evaluate)?));
    }
    // The lens views need hidden states; without them (and with no lens option asked for) the
    // page simply has none, as for a trace made without `--hidden-states` and no model.
    let has_hidden = ["hidden_states.decoder", "hidden_states.encoder"].into_iter().any(|n| bundle.tensors.get(n).is_some());
    if let Some(model) = model
        && (has_hidden || options.position.is_some() || options.watch.is_some())
    {
        lens_views(&mut report, bundle, model, options)?;
    }
    Ok(report)
}

/// Adds the layer-predictions, rankings and rankings-watch views, through the lens
/// [`Output`]'s methods use.
fn lens_views(report: &mut Report, bundle: &TraceBundle, model: &LoadedModel, options: &ReportOptions) -> Result<()> {
    let trace = &bundle.trace;
    let masked = trace.model.model_type == ModelKind::Masked;
    let name = if masked { "hidden_states.encoder" } else { "hidden_states.decoder" };
    if !bundle.tensors.contains_key(name) {
        // The lens views are left out, as every view a trace cannot support is; only asking
        // for one of them explicitly is an error.
        if options.watch.is_some() || options.position.is_some() {
            bail!("--watch and --position need the trace's hidden states: make it with `--hidden-states` (`hidden_states: true`)");
        }
        return Ok(());
    }
    let input = LensInput::new(bundle, model)?;
    // A masked LM predicts a mask token from that token's own hidden state (default: the
    // first mask); a causal LM predicts position P from the hidden state at P-1 (default: the
    // first generated token); an encoder-decoder's decoder likewise, after its start token.
    let first_mask = trace.masked_predictions.as_ref().and_then(|m| m.first()).map(|m| m.position);
    let position = match (options.position, first_mask) {
        (Some(p), _) => p,
        (None, Some(mask)) if masked => mask,
        (None, _) if trace.model.model_type == ModelKind::EncoderDecoder => trace.n_input_tokens + 1,
        (None, _) => trace.n_input_tokens.clamp(1, trace.tokens.len().saturating_sub(1).max(1)),
    };
    let lens = options.lens;
    let preds = input.layer_predictions(position, options.topk, None, lens).with_context(|| format!("--position {position}"))?;
    report.layer_predictions = Some(views::predictions_view(trace, &preds, position, lens, None));
    let (ids, n_input) = trace.lens_sequence();
    if !masked && ids.len() > n_input {
        report.rankings = Some(views::rankings_view(trace, input.rankings(lens)?, lens));
    }
    if let Some(watch) = &options.watch {
        let ranks = input.rankings_watch(watch, position, lens)?;
        let raw: Vec<String> = watch.iter().map(|&id| model.tokenizer.token(id)).collect();
        report.rankings_watch = Some(views::watch_view(trace, ranks, lens, position, watch, &raw));
    }
    Ok(())
}

impl Output {
    /// Every view the output supports, as the data of `ecco report`'s page.
    ///
    /// # Errors
    /// As [`Output::to_html`].
    pub fn report(&self, options: &ReportOptions) -> Result<Report> {
        build_report(self.bundle(), self.model().as_deref(), options)
    }

    /// One self-contained HTML page with every view the output supports (Ecco's notebook
    /// views: tokens, attributions, layer predictions, rankings, NMF, attention, neurons).
    ///
    /// # Errors
    /// Invalid `options` (a position out of range, unknown neurons), NMF errors.
    pub fn to_html(&self, options: &ReportOptions) -> Result<String> {
        Ok(ecco_viz::render_html(&self.report(options)?)?)
    }
}
